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
    if (u->drv) {
      sipub_uv_close(u->drv);
      u->drv = NULL;
    }
    luaL_unref(L, LUA_REGISTRYINDEX, u->self_ref);
    u->self_ref = LUA_NOREF;
  }
}

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
        lsipub_pcall(L, kind == LUA_TTABLE ? 5 : 2);
      }
      if (u->core) lsipub_unanchor(L, lp);
      lua_settop(L, slot);
    }
    lua_settop(L, slot - 1);
    u->draining = 0;
  }
  if (!u->core) return;
  check_closed(L, u);
  if (u->drv) sipub_uv_sync(u->drv);
}

static void after_io(void *ud)
{
  lua_ua *u = ud;
  lsipub_drain(u->L, u);
}

static void on_defer(uv_timer_t *t)
{
  lua_ua *u = t->data;
  lsipub_drain(u->L, u);
}

static void free_handle(uv_handle_t *h)
{
  free(h);
}

/* After a user call: its events (a send that failed at once, say) are not delivered inside
 * the call, where the caller may not have attached handlers yet, but on the next loop turn
 * (virtual transport: the next advance or receive). Inside a handler, the dispatch loop
 * running below delivers them. */
void lsipub_settle(lua_State *L, lua_ua *u)
{
  if (!u->core || u->draining) return;
  check_closed(L, u);
  if (u->drv) sipub_uv_sync(u->drv);
  if (u->defer && sipub_ua_pending(u->core)) uv_timer_start(u->defer, on_defer, 0, 0);
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

static int is_wildcard(const char *h)
{
  return !h || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0 || strcmp(h, "[::]") == 0;
}

/* core.ua_new{ aor, proxy_host, proxy_port, via_host, user_agent, local_address,
 *              local_port, virtual, seed } */
static int l_ua_new(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *aor = lsipub_opt_string(L, 1, "aor");
  const char *proxy = lsipub_opt_string(L, 1, "proxy_host");
  const char *via = lsipub_opt_string(L, 1, "via_host");
  const char *ua_name = lsipub_opt_string(L, 1, "user_agent");
  const char *laddr = lsipub_opt_string(L, 1, "local_address");
  lua_Integer lport = lsipub_opt_integer(L, 1, "local_port", 0);
  lua_getfield(L, 1, "virtual");
  int virt = lua_toboolean(L, -1);
  lua_pop(L, 1);
  luaL_argcheck(L, aor != NULL, 1, "aor is required");
  luaL_argcheck(L, lport >= 0 && lport <= 65535, 1, "local_port out of range");

  lua_ua *u = lua_newuserdata(L, sizeof *u);
  memset(u, 0, sizeof *u);
  u->self_ref = LUA_NOREF;
  luaL_setmetatable(L, UA_MT);
  u->L = lsipub_mainthread(L);
  u->virt = virt;
  u->proxy_port = (int)lsipub_opt_integer(L, 1, "proxy_port", 5060);
  if (proxy && !(u->proxy_host = strdup(proxy))) return luaL_error(L, "out of memory");

  sipub_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.aor = aor;
  cfg.proxy_host = proxy;
  cfg.proxy_port = u->proxy_port;
  cfg.user_agent = ua_name;
  cfg.seed = (uint64_t)lsipub_opt_integer(L, 1, "seed", 0);
  cfg.auth_user = lsipub_opt_string(L, 1, "auth_user");
  cfg.password = lsipub_opt_string(L, 1, "password");
  cfg.ha1_md5 = lsipub_opt_string(L, 1, "ha1_md5");
  cfg.ha1_sha256 = lsipub_opt_string(L, 1, "ha1_sha256");
  cfg.ha1_sha512_256 = lsipub_opt_string(L, 1, "ha1_sha512_256");
  cfg.realm = lsipub_opt_string(L, 1, "realm");
  if (!cfg.seed && uv_random(NULL, NULL, &cfg.seed, sizeof cfg.seed, 0, NULL) != 0)
    cfg.seed = (uint64_t)uv_hrtime() ^ (uint64_t)(uintptr_t)u;

  char via_buf[64];
  sipub_io vio = { u, lsipub_virt_send, NULL }; /* no resolver: the test network takes names */
  const sipub_io *io = &vio;
  uint64_t now = 0;
  if (virt) {
    cfg.via_host = via ? via : "127.0.0.1";
    cfg.via_port = lport ? (int)lport : 5060;
  } else {
    int err = 0;
    const char *bind = laddr ? laddr : "0.0.0.0";
    u->drv = sipub_uv_new(lsipub_loop(L), bind, (int)lport, &err);
    if (!u->drv)
      return luaL_error(L, "sip.UA.new: cannot bind UDP %s:%d: %s", bind, (int)lport,
                        uv_strerror(err));
    if (!via) {
      if (!is_wildcard(bind)) via = bind;
      else {
        sipub_uv_guess_via_host(u->drv, proxy, via_buf, sizeof via_buf);
        via = via_buf;
      }
    }
    cfg.via_host = via;
    cfg.via_port = sipub_uv_port(u->drv);
    io = sipub_uv_io(u->drv);
    now = sipub_uv_now(u->drv);
  }
  u->core = sipub_ua_new(&cfg, io, now);
  if (!u->core) return luaL_error(L, "sip.UA.new: cannot create the user agent");
  if (u->drv && sipub_uv_start(u->drv, u->core, after_io, u) != 0)
    return luaL_error(L, "sip.UA.new: cannot receive on the UDP socket");
  if (u->drv) {
    u->defer = malloc(sizeof *u->defer);
    if (!u->defer) return luaL_error(L, "out of memory");
    uv_timer_init(lsipub_loop(L), u->defer);
    u->defer->data = u;
  }
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

void lsipub_ua_time(lua_ua *u)
{
  if (u->drv) sipub_ua_set_time(u->core, sipub_uv_now(u->drv));
}

static int l_ua_gc(lua_State *L)
{
  lua_ua *u = luaL_checkudata(L, 1, UA_MT);
  for (lua_pub *lp = u->first; lp; lp = lp->next) { /* at lua_close, any order */
    lp->pub = NULL;
    lp->ua = NULL;
  }
  u->first = u->last = NULL;
  if (u->defer) {
    uv_close((uv_handle_t *)u->defer, free_handle);
    u->defer = NULL;
  }
  if (u->drv) {
    sipub_uv_close(u->drv);
    u->drv = NULL;
  }
  if (u->core) {
    sipub_ua_free(u->core);
    u->core = NULL;
  }
  for (size_t i = 0; i < u->nvsent; i++) {
    free(u->vsent[i].data);
    free(u->vsent[i].host);
  }
  free(u->vsent);
  u->vsent = NULL;
  u->nvsent = 0;
  free(u->proxy_host);
  u->proxy_host = NULL;
  return 0;
}

/* Closes every publication (each by its own policy: unpublish or forget), oldest first,
 * then the UA: new publications are refused and, once nothing is left in flight, the
 * socket closes and the UA can be collected. */
static int l_ua_close(lua_State *L)
{
  lua_ua *u = lsipub_check_ua(L, 1);
  if (!u->closing) {
    lsipub_ua_time(u);
    for (lua_pub *lp = u->first; lp; lp = lp->next) {
      if (lp->pub && !sipub_pub_closed(lp->pub)) {
        sipub_pub_close(lp->pub);
        lsipub_unanchor(L, lp);
      }
    }
    u->closing = 1;
    sipub_ua_close(u->core);
  }
  lsipub_settle(L, u);
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
  if (u->drv) lua_pushinteger(L, sipub_uv_port(u->drv));
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
  lsipub_vtransport_methods(L);
  lua_pop(L, 2);
  luaL_setfuncs(L, funcs, 0);
}
