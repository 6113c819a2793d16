/* lua_ua.c — user agents as userdata (sip.core.ua_new): the core and its driver, the delivery
 * of the core's events to the contexts' handlers, and closing. */
#include "lsipub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lua_ua *lsipub_check_ua(lua_State *L, int idx)
{
  lua_ua *u = luaL_checkudata(L, idx, UA_MT);
  if (!u->core) luaL_argerror(L, idx, "the user agent has been collected");
  return u;
}

void lsipub_unanchor(lua_State *L, lua_pub *lp)
{
  if (lp->ctx_ref != LUA_NOREF && lp->pub && sipub_pub_closed(lp->pub) &&
      !sipub_pub_active(lp->pub)) {
    luaL_unref(L, LUA_REGISTRYINDEX, lp->ctx_ref);
    lp->ctx_ref = LUA_NOREF;
  }
}

/* The response object of an event: a table with the fields the handlers read and the
 * sip.response metatable (header access). The message is copied: the object stays valid
 * after the handler returns. */
static void push_response(lua_State *L, const sipub_response *r)
{
  lua_createtable(L, 0, 4);
  lua_pushliteral(L, "status_code");
  lua_pushinteger(L, r->status);
  lua_rawset(L, -3);
  lua_pushliteral(L, "reason_phrase");
  lua_pushstring(L, r->reason);
  lua_rawset(L, -3);
  lua_pushliteral(L, "body");
  if (r->body_len) lua_pushlstring(L, r->body, r->body_len); else lua_pushliteral(L, "");
  lua_rawset(L, -3);
  lua_pushliteral(L, "data");
  lua_pushlstring(L, r->data, r->len);
  lua_rawset(L, -3);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &lsipub_response_mt_key);
  lua_setmetatable(L, -2);
}

static void check_closed(lua_State *L, lua_ua *u)
{
  if (u->closing && !u->closed && !sipub_ua_busy(u->core) && !sipub_ua_pending(u->core)) {
    u->closed = 1;
    if (u->ops->close) u->ops->close(L, u);
    luaL_unref(L, LUA_REGISTRYINDEX, u->self_ref);
    u->self_ref = LUA_NOREF;
    /* The trace function may hold the UA (a closure): it goes with the UA's last message. */
    luaL_unref(L, LUA_REGISTRYINDEX, u->trace_ref);
    u->trace_ref = LUA_NOREF;
  }
}

/* ---- the message trace --------------------------------------------------------------- */

static const char *const trace_dirs[] = { "sent", "received", "dropped" };

/* The core's trace callback: trace(direction, text, remote, note, time, reason) in protected
 * mode, on the thread calling into the core (else the main thread), right as the message
 * leaves or arrives. An error goes to sip.on_error like a handler's; the core goes on. */
static void on_trace(void *ud, const sipub_trace *t)
{
  static const char *const tp[] = { "udp", "tcp", "tls" };
  lua_ua *u = ud;
  if (u->trace_ref == LUA_NOREF || u->tracing) return;
  lua_State *L = u->cur ? u->cur : u->L;
  if (!lua_checkstack(L, 10)) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, u->trace_ref);
  lua_pushstring(L, trace_dirs[t->direction]);
  lua_pushlstring(L, t->data, t->len);
  if (t->flow && t->flow->host) {
    int v6 = strchr(t->flow->host, ':') != NULL;
    lua_pushfstring(L, v6 ? "%s:[%s]:%d" : "%s:%s:%d", tp[t->flow->tp], t->flow->host,
                    t->flow->port);
  } else {
    lua_pushnil(L);
  }
  if (t->note) lua_pushstring(L, t->note); else lua_pushnil(L);
  lua_pushnumber(L, (lua_Number)t->time_ms / 1000.0);
  if (t->drop) lua_pushstring(L, sipub_drop_name(t->drop)); else lua_pushnil(L);
  u->tracing = 1;
  lsipub_pcall(L, 6);
  u->tracing = 0;
}

static const char *const event_names[] = { "progress", "published", "failed", "unpublished" };

/* Whether the handler at the top (a list: always) can see its arguments: a Lua function
 * without parameters or `...` cannot, and then no response object is made for it. */
static int takes_arguments(lua_State *L, int kind)
{
#if LUA_VERSION_NUM >= 502
  if (kind == LUA_TFUNCTION) {
    lua_Debug ar;
    lua_pushvalue(L, -1);
    if (lua_getinfo(L, ">u", &ar)) return ar.nparams > 0 || ar.isvararg;
  }
#else
  (void)L;
  (void)kind;
#endif
  return 1;
}

/* Delivers queued events to the handlers, then re-arms the timer. The handlers of an event
 * are read from the context (sip/emitter.lua): none costs nothing (no response object is
 * made), a lone function is called here, a list goes through Emitter.deliver. Handlers may
 * call back into the core; the events they cause are delivered by this same loop, in order. */
void lsipub_drain(lua_State *L, lua_ua *u)
{
  if (!u->core) return;
  if (!u->draining) {
    sipub_event ev;
    const sipub_response *last = NULL; /* the response of the previous event */
    int made = 0;                      /* its object is in the slot */
    u->draining = 1;
    lua_pushnil(L); /* slot for the response object shared by consecutive events */
    int slot = lua_gettop(L);
    while (u->core && sipub_ua_poll(u->core, &ev)) {
      if (ev.response != last) { /* only consecutive events share one (the core keeps it) */
        last = ev.response;
        made = 0;
      }
      lua_pub *lp = ev.user;
      if (!lp || lp->ctx_ref == LUA_NOREF) continue;
      lua_rawgeti(L, LUA_REGISTRYINDEX, lp->ctx_ref); /* keeps the context alive meanwhile */
      int ctx = lua_gettop(L);
      if (u->ops->event) { /* the driver runs the handlers */
        lua_pushstring(L, event_names[ev.kind]);
        if (ev.response) {
          if (!made) {
            push_response(L, ev.response);
            lua_replace(L, slot);
            made = 1;
          }
          lua_pushvalue(L, slot);
        } else {
          lua_pushnil(L);
        }
        lua_pushstring(L, ev.cause ? ev.cause : "");
        if (ev.detail) lua_pushstring(L, ev.detail); else lua_pushnil(L);
        u->ops->event(L, u);
        if (u->core) lsipub_unanchor(L, lp);
        lua_settop(L, slot);
        continue;
      }
      lua_pushstring(L, lsipub_handler_keys[ev.kind]);
      lua_pushvalue(L, -1);
      lua_rawget(L, ctx);
      int kind = lua_type(L, -1);
      if (kind == LUA_TFUNCTION || kind == LUA_TTABLE) {
        if (ev.response && !made && takes_arguments(L, kind)) {
          push_response(L, ev.response);
          lua_replace(L, slot);
          made = 1;
        }
        if (kind == LUA_TTABLE) { /* deliver(ctx, key, list, response, cause) */
          lua_rawgetp(L, LUA_REGISTRYINDEX, &lsipub_deliver_key);
          lua_insert(L, ctx + 1);
          lua_pushvalue(L, ctx);
          lua_insert(L, ctx + 2);
        }
        if (ev.response && made) lua_pushvalue(L, slot); else lua_pushnil(L);
        lua_pushstring(L, ev.cause ? ev.cause : "");
        /* A third argument says why, when the cause alone does not (which host, which step). */
        if (ev.detail) lua_pushstring(L, ev.detail); else lua_pushnil(L);
        lsipub_pcall(L, kind == LUA_TTABLE ? 6 : 3);
      }
      if (u->core) lsipub_unanchor(L, lp);
      lua_settop(L, slot);
    }
    lua_settop(L, slot - 1);
    u->draining = 0;
  }
  if (!u->core) return;
  check_closed(L, u);
  if (u->ops->sync) u->ops->sync(L, u);
}

static void settle(lua_State *L, lua_ua *u)
{
  if (!u->core || u->draining) return;
  check_closed(L, u);
  if (u->ops->sync) u->ops->sync(L, u);
  if (u->ops->defer && sipub_ua_pending(u->core)) u->ops->defer(L, u);
}

lua_State *lsipub_enter(lua_State *L, lua_ua *u)
{
  /* The core is in the middle of a send or a receive: it cannot be called now. */
  if (u->tracing) luaL_error(L, "sip: a trace function cannot call into its user agent");
  lua_State *saved = u->cur;
  u->cur = L;
  if (u->ops->now) sipub_ua_set_time(u->core, u->ops->now(u));
  return saved;
}

void lsipub_leave(lua_State *L, lua_ua *u, lua_State *saved)
{
  u->cur = saved;
  settle(L, u);
}

const char *lsipub_opt_string(lua_State *L, int t, const char *k)
{
  lua_getfield(L, t, k);
  const char *s = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
  lua_pop(L, 1); /* the string stays referenced by the table */
  return s;
}

lua_Integer lsipub_opt_integer(lua_State *L, int t, const char *k, lua_Integer def)
{
  lua_getfield(L, t, k);
  lua_Integer v = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : def;
  lua_pop(L, 1);
  return v;
}

/* core.ua_new{ aor, proxy_host, proxy_port, via_host, user_agent, local_address,
 *              local_port, seed, credentials..., trace, driver }: driver, a table, is a driver
 * written in Lua (see ldrv_lua.c); without it, the libuv driver. */
static int l_ua_new(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  lsipub_driver_args a;
  const char *aor = lsipub_opt_string(L, 1, "aor");
  a.proxy_host = lsipub_opt_string(L, 1, "proxy_host");
  a.via_host = lsipub_opt_string(L, 1, "via_host");
  a.local_address = lsipub_opt_string(L, 1, "local_address");
  lua_Integer lport = lsipub_opt_integer(L, 1, "local_port", 0);
  luaL_argcheck(L, aor != NULL, 1, "aor is required");
  luaL_argcheck(L, lport >= 0 && lport <= 65535, 1, "local_port out of range");
  a.local_port = (int)lport;

  lua_getfield(L, 1, "driver");
  int lua_driver = lua_istable(L, -1);
  lua_pop(L, 1);
  /* The libuv loop is made before the UA, so that it is finalized after it (newest first). */
  if (!lua_driver) lsipub_loop(L);
  lua_ua *u = lua_newuserdata(L, sizeof *u);
  memset(u, 0, sizeof *u);
  u->self_ref = LUA_NOREF;
  u->trace_ref = LUA_NOREF;
  luaL_setmetatable(L, UA_MT);
  int ud = lua_gettop(L);
  u->L = lsipub_mainthread(L);

  sipub_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.aor = aor;
  cfg.proxy_host = a.proxy_host;
  cfg.proxy_port = (int)lsipub_opt_integer(L, 1, "proxy_port", 5060);
  cfg.user_agent = lsipub_opt_string(L, 1, "user_agent");
  cfg.seed = (uint64_t)lsipub_opt_integer(L, 1, "seed", 0); /* 0: the core draws one */
  cfg.auth_user = lsipub_opt_string(L, 1, "auth_user");
  cfg.password = lsipub_opt_string(L, 1, "password");
  cfg.ha1_md5 = lsipub_opt_string(L, 1, "ha1_md5");
  cfg.ha1_sha256 = lsipub_opt_string(L, 1, "ha1_sha256");
  cfg.ha1_sha512_256 = lsipub_opt_string(L, 1, "ha1_sha512_256");
  cfg.realm = lsipub_opt_string(L, 1, "realm");
  lua_getfield(L, 1, "trace"); /* a function, or the core gets none (and pays nothing) */
  if (lua_isfunction(L, -1)) {
    u->trace_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    cfg.trace = on_trace;
    cfg.trace_ud = u;
  } else {
    lua_pop(L, 1);
  }

  sipub_io io;
  memset(&io, 0, sizeof io);
  uint64_t now = 0;
  lua_getfield(L, 1, "driver");
  if (lua_istable(L, -1)) lsipub_driver_lua(L, u, lua_gettop(L), &a, &cfg, &io, &now);
  else lsipub_driver_uv(L, u, &a, &cfg, &io, &now);
  u->core = sipub_ua_new(&cfg, &io, now);
  if (!u->core) return lsipub_error_at(L, 2, "sip.UA.new: cannot create the user agent");
  lua_settop(L, ud); /* the driver's strings are copied by now */
  if (u->ops->start) u->ops->start(L, u);
#if LUA_VERSION_NUM < 503
  /* Lua 5.1: a user value must be a table; this one, { ua }, is shared by its publications. */
  lua_createtable(L, 1, 0);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, 1);
  lua_setuservalue(L, -2);
#endif
  lua_pushvalue(L, -1);
  u->self_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* an open UA is never collected */
  return 1;
}

static int l_ua_gc(lua_State *L)
{
  lua_ua *u = luaL_checkudata(L, 1, UA_MT);
  for (lua_pub *lp = u->first; lp; lp = lp->next) { /* at lua_close, any order */
    lp->pub = NULL;
    lp->ua = NULL;
  }
  u->first = u->last = NULL;
  if (u->ops && u->ops->free) u->ops->free(u);
  u->ops = NULL;
  u->drv = NULL;
  if (u->core) {
    sipub_ua_free(u->core);
    u->core = NULL;
  }
  luaL_unref(L, LUA_REGISTRYINDEX, u->trace_ref);
  u->trace_ref = LUA_NOREF;
  return 0;
}

/* Closes every publication (each by its own policy: unpublish or forget), oldest first,
 * then the UA: new publications are refused and, once nothing is left in flight, the
 * socket closes and the UA can be collected. */
static int l_ua_close(lua_State *L)
{
  lua_ua *u = lsipub_check_ua(L, 1);
  lua_State *saved = lsipub_enter(L, u);
  if (!u->closing) {
    for (lua_pub *lp = u->first; lp; lp = lp->next) {
      if (lp->pub && !sipub_pub_closed(lp->pub)) {
        sipub_pub_close(lp->pub);
        lsipub_unanchor(L, lp);
      }
    }
    u->closing = 1;
    sipub_ua_close(u->core);
  }
  lsipub_leave(L, u, saved);
  return 0;
}

static int l_ua_state(lua_State *L)
{
  lua_ua *u = lsipub_check_ua(L, 1);
  lua_pushstring(L, u->closed ? "closed" : u->closing ? "closing" : "open");
  lua_pushinteger(L, (lua_Integer)sipub_ua_count(u->core));
  return 2;
}

static int l_ua_port(lua_State *L)
{
  lua_ua *u = lsipub_check_ua(L, 1);
  int port = u->ops->port ? u->ops->port(u) : -1;
  if (port >= 0) lua_pushinteger(L, port);
  else lua_pushnil(L);
  return 1;
}

void lsipub_ua_open(lua_State *L)
{
  static const luaL_Reg ua_methods[] = {
    { "pub_new", lsipub_l_pub_new }, { "close", l_ua_close }, { "state", l_ua_state },
    { "port", l_ua_port }, { NULL, NULL }
  };
  static const luaL_Reg funcs[] = { { "ua_new", l_ua_new }, { NULL, NULL } };
  lsipub_new_class(L, UA_MT, ua_methods, l_ua_gc);
  luaL_getmetatable(L, UA_MT);
  lua_getfield(L, -1, "__index");
  lsipub_driver_lua_methods(L);
  lua_pop(L, 2);
  luaL_setfuncs(L, funcs, 0);
}
