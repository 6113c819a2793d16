/* lsipub.c — the Lua binding (module sip.core): user agents and publications as userdata,
 * the private event loop and timers, and the in-memory transport with a virtual clock. */
#include "lsipub.h"
#include "sipub.h"
#include "sipub_uv.h"
#include "digest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <osipparser2/osip_parser.h>

#define UA_MT "sip.ua"
#define PUB_MT "sip.pub"
#define TIMER_MT "sip.timer"
#define LOOP_MT "sip.loop"

static char loop_key, deliver_key, response_mt_key, error_key, mainthread_key;

/* The context field holding the handlers of each event kind (see sip/emitter.lua), in the
 * order of sipub_event_kind. */
static const char *const handler_keys[] = { "_on_progress", "_on_published", "_on_failed",
                                            "_on_unpublished" };

/* ---- errors raised by callbacks -------------------------------------------------------- */

static void report_error(lua_State *L)
{
  const char *msg = lua_tostring(L, -1);
  if (!msg) msg = "(error object is not a string)";
  lua_rawgetp(L, LUA_REGISTRYINDEX, &error_key);
  if (lua_isfunction(L, -1)) {
    lua_pushstring(L, msg);
    if (lua_pcall(L, 1, 0, 0) == LUA_OK) return;
    fprintf(stderr, "sip: error in sip.on_error: %s\n", lua_tostring(L, -1));
  }
  lua_pop(L, 1);
  fprintf(stderr, "sip: error in event handler: %s\n", msg);
}

static int traceback(lua_State *L)
{
  const char *msg = lua_tostring(L, 1);
  if (!msg) msg = luaL_tolstring(L, 1, NULL);
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int lsipub_pcall(lua_State *L, int nargs)
{
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  int st = lua_pcall(L, nargs, 0, base);
  if (st != LUA_OK) {
    report_error(L);
    lua_pop(L, 1);
  }
  lua_remove(L, base);
  return st;
}

static int l_report_error(lua_State *L)
{
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  report_error(L);
  return 0;
}


lua_State *lsipub_mainthread(lua_State *L)
{
#if LUA_VERSION_NUM >= 502
  (void)mainthread_key;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
#else
  lua_rawgetp(L, LUA_REGISTRYINDEX, &mainthread_key);
#endif
  lua_State *m = lua_tothread(L, -1);
  lua_pop(L, 1);
  return m ? m : L;
}

/* ---- the private loop ------------------------------------------------------------------ */

typedef struct loop_box {
  uv_loop_t loop;
  int running;
} loop_box;

static void close_walk(uv_handle_t *h, void *arg)
{
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static int loop_gc(lua_State *L)
{
  loop_box *b = luaL_checkudata(L, 1, LOOP_MT);
  /* Handles of collected objects are closing already; close whatever is left, let their
   * close callbacks run, then release the loop. */
  for (int i = 0; i < 100 && uv_loop_close(&b->loop) == UV_EBUSY; i++) {
    uv_walk(&b->loop, close_walk, NULL);
    uv_run(&b->loop, UV_RUN_NOWAIT);
  }
  return 0;
}

static loop_box *get_loop_box(lua_State *L)
{
  lua_rawgetp(L, LUA_REGISTRYINDEX, &loop_key);
  loop_box *b = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (b) return b;
  b = lua_newuserdata(L, sizeof *b);
  memset(b, 0, sizeof *b);
  if (uv_loop_init(&b->loop) != 0) luaL_error(L, "sip: cannot create an event loop");
  luaL_newmetatable(L, LOOP_MT);
  lua_pushcfunction(L, loop_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &loop_key);
  return b;
}

uv_loop_t *lsipub_loop(lua_State *L)
{
  return &get_loop_box(L)->loop;
}

/* core.run([mode[, incremental]]). With incremental true, Lua 5.4's collector is made
 * incremental first if it is generational (the lua5.4 interpreter starts it so): a
 * generational major collection is not incremental, it marks and sweeps the whole heap in
 * one go, and with 100 000 publications (~150 MB of heap) that stops the loop for about a
 * second, long enough for refreshes to come late. The incremental collector spreads the
 * same work over small steps. */
static int l_run(lua_State *L)
{
  static const char *const modes[] = { "default", "once", "nowait", NULL };
  static const uv_run_mode umodes[] = { UV_RUN_DEFAULT, UV_RUN_ONCE, UV_RUN_NOWAIT };
  int m = luaL_checkoption(L, 1, "default", modes);
  loop_box *b = get_loop_box(L);
  if (b->running) return luaL_error(L, "sip.run: the loop is already running");
#if LUA_VERSION_NUM >= 504
  if (lua_toboolean(L, 2)) lua_gc(L, LUA_GCINC, 0, 0, 0); /* 0: parameters unchanged */
#endif
  b->running = 1;
  int alive = uv_run(&b->loop, umodes[m]);
  b->running = 0;
  lua_pushboolean(L, alive != 0);
  return 1;
}

/* Monotonic time in seconds (libuv's high-resolution clock). */
static int l_now(lua_State *L)
{
  lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e9);
  return 1;
}

static int l_stop(lua_State *L)
{
  uv_stop(lsipub_loop(L));
  return 0;
}

/* ---- timers ---------------------------------------------------------------------------- */

typedef struct ltimer {
  uv_timer_t h;
  lua_State *L;
  int fn_ref, self_ref;
} ltimer;

static void timer_free_cb(uv_handle_t *h)
{
  free(h->data);
}

static void timer_unanchor(ltimer *t)
{
  luaL_unref(t->L, LUA_REGISTRYINDEX, t->self_ref);
  t->self_ref = LUA_NOREF;
}

static void on_lua_timer(uv_timer_t *h)
{
  ltimer *t = h->data;
  lua_State *L = t->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->fn_ref);
  timer_unanchor(t);
  lsipub_pcall(L, 0);
}

static ltimer *check_timer(lua_State *L)
{
  ltimer **box = luaL_checkudata(L, 1, TIMER_MT);
  return *box;
}

static int l_timer(lua_State *L)
{
  lua_Number secs = luaL_checknumber(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_argcheck(L, secs >= 0, 1, "seconds must be >= 0");
  ltimer **box = lua_newuserdata(L, sizeof *box);
  *box = NULL;
  luaL_setmetatable(L, TIMER_MT);
  ltimer *t = calloc(1, sizeof *t);
  if (!t) return luaL_error(L, "sip.timer: out of memory");
  *box = t;
  t->L = lsipub_mainthread(L);
  uv_timer_init(lsipub_loop(L), &t->h);
  t->h.data = t;
  lua_pushvalue(L, 2);
  t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, -1);
  t->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  uv_timer_start(&t->h, on_lua_timer, (uint64_t)(secs * 1000 + 0.5), 0);
  return 1;
}

static int l_timer_stop(lua_State *L)
{
  ltimer *t = check_timer(L);
  if (t) {
    uv_timer_stop(&t->h);
    timer_unanchor(t);
  }
  return 0;
}

/* A guard timer that should not keep sip.run() going by itself. */
static int l_timer_unref(lua_State *L)
{
  ltimer *t = check_timer(L);
  if (t) uv_unref((uv_handle_t *)&t->h);
  lua_settop(L, 1);
  return 1;
}

static int l_timer_gc(lua_State *L)
{
  ltimer **box = luaL_checkudata(L, 1, TIMER_MT);
  ltimer *t = *box;
  if (t) {
    luaL_unref(L, LUA_REGISTRYINDEX, t->fn_ref);
    uv_close((uv_handle_t *)&t->h, timer_free_cb);
    *box = NULL;
  }
  return 0;
}

/* ---- user agents ----------------------------------------------------------------------- */

typedef struct vdgram {
  char *data;
  size_t len;
  char *host;
  int port;
} vdgram;

typedef struct lua_pub lua_pub;

typedef struct lua_ua {
  lua_State *L; /* main thread, for loop callbacks */
  sipub_ua *core;
  sipub_uv *drv;
  int virt;
  uint64_t vnow;
  long vfail;
  vdgram *vsent;
  size_t nvsent, capvsent;
  char *proxy_host;
  int proxy_port;
  uv_timer_t *defer; /* delivers the events of user calls on the next loop turn */
  lua_pub *first, *last; /* its publications' userdata, oldest first (for close) */
  int self_ref;
  int draining, closing, closed;
} lua_ua;

/* A publication's userdata. Its user value keeps the UA alive; ctx_ref anchors the context
 * table while the publication is open or has work in flight. */
struct lua_pub {
  sipub_pub *pub;
  lua_ua *ua;         /* NULL once the UA is collected */
  lua_pub *prev, *next;
  int ctx_ref;
};

static lua_ua *check_ua(lua_State *L, int idx)
{
  lua_ua *u = luaL_checkudata(L, idx, UA_MT);
  if (!u->core) luaL_argerror(L, idx, "the user agent has been collected");
  return u;
}

static void maybe_unanchor(lua_State *L, lua_pub *lp)
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
  lua_rawgetp(L, LUA_REGISTRYINDEX, &response_mt_key);
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
static void drain(lua_State *L, lua_ua *u)
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
      lua_pushstring(L, handler_keys[ev.kind]);
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
          lua_rawgetp(L, LUA_REGISTRYINDEX, &deliver_key);
          lua_insert(L, ctx + 1);
          lua_pushvalue(L, ctx);
          lua_insert(L, ctx + 2);
        }
        if (ev.response && made) lua_pushvalue(L, slot); else lua_pushnil(L);
        lua_pushstring(L, ev.cause ? ev.cause : "");
        lsipub_pcall(L, kind == LUA_TTABLE ? 5 : 2);
      }
      if (u->core) maybe_unanchor(L, lp);
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
  drain(u->L, u);
}

static void on_defer(uv_timer_t *t)
{
  lua_ua *u = t->data;
  drain(u->L, u);
}

static void free_handle(uv_handle_t *h)
{
  free(h);
}

/* After a user call: its events (a send that failed at once, say) are not delivered inside
 * the call, where the caller may not have attached handlers yet, but on the next loop turn
 * (virtual transport: the next advance or receive). Inside a handler, the dispatch loop
 * running below delivers them. */
static void settle(lua_State *L, lua_ua *u)
{
  if (!u->core || u->draining) return;
  check_closed(L, u);
  if (u->drv) sipub_uv_sync(u->drv);
  if (u->defer && sipub_ua_pending(u->core)) uv_timer_start(u->defer, on_defer, 0, 0);
}

/* In-memory transport: datagrams are kept for _vsent(); _vfail(n) makes sends fail. */
static int virt_send(void *ud, const sipub_dest *d, const char *data, size_t len)
{
  lua_ua *u = ud;
  if (u->vfail > 0) {
    u->vfail--;
    return -1;
  }
  if (u->nvsent == u->capvsent) {
    size_t cap = u->capvsent ? u->capvsent * 2 : 16;
    vdgram *v = realloc(u->vsent, cap * sizeof *v);
    if (!v) return -1;
    u->vsent = v;
    u->capvsent = cap;
  }
  vdgram *g = &u->vsent[u->nvsent];
  g->data = malloc(len);
  g->host = strdup(d->host);
  if (!g->data || !g->host) {
    free(g->data);
    free(g->host);
    return -1;
  }
  memcpy(g->data, data, len);
  g->len = len;
  g->port = d->port;
  u->nvsent++;
  return 0;
}

static const char *opt_string(lua_State *L, int t, const char *k)
{
  lua_getfield(L, t, k);
  const char *s = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
  lua_pop(L, 1); /* the string stays referenced by the table */
  return s;
}

static lua_Integer opt_integer(lua_State *L, int t, const char *k, lua_Integer def)
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
  const char *aor = opt_string(L, 1, "aor");
  const char *proxy = opt_string(L, 1, "proxy_host");
  const char *via = opt_string(L, 1, "via_host");
  const char *ua_name = opt_string(L, 1, "user_agent");
  const char *laddr = opt_string(L, 1, "local_address");
  lua_Integer lport = opt_integer(L, 1, "local_port", 0);
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
  u->proxy_port = (int)opt_integer(L, 1, "proxy_port", 5060);
  if (proxy && !(u->proxy_host = strdup(proxy))) return luaL_error(L, "out of memory");

  sipub_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.aor = aor;
  cfg.proxy_host = proxy;
  cfg.proxy_port = u->proxy_port;
  cfg.user_agent = ua_name;
  cfg.seed = (uint64_t)opt_integer(L, 1, "seed", 0);
  cfg.auth_user = opt_string(L, 1, "auth_user");
  cfg.password = opt_string(L, 1, "password");
  cfg.ha1_md5 = opt_string(L, 1, "ha1_md5");
  cfg.ha1_sha256 = opt_string(L, 1, "ha1_sha256");
  cfg.ha1_sha512_256 = opt_string(L, 1, "ha1_sha512_256");
  cfg.realm = opt_string(L, 1, "realm");
  if (!cfg.seed && uv_random(NULL, NULL, &cfg.seed, sizeof cfg.seed, 0, NULL) != 0)
    cfg.seed = (uint64_t)uv_hrtime() ^ (uint64_t)(uintptr_t)u;

  char via_buf[64];
  sipub_io vio = { u, virt_send };
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

static void ua_time(lua_ua *u)
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
  lua_ua *u = check_ua(L, 1);
  if (!u->closing) {
    ua_time(u);
    for (lua_pub *lp = u->first; lp; lp = lp->next) {
      if (lp->pub && !sipub_pub_closed(lp->pub)) {
        sipub_pub_close(lp->pub);
        maybe_unanchor(L, lp);
      }
    }
    u->closing = 1;
    sipub_ua_close(u->core);
  }
  settle(L, u);
  return 0;
}

static int l_ua_state(lua_State *L)
{
  lua_ua *u = check_ua(L, 1);
  lua_pushstring(L, u->closed ? "closed" : u->closing ? "closing" : "open");
  lua_pushinteger(L, (lua_Integer)sipub_ua_count(u->core));
  return 2;
}

static int l_ua_port(lua_State *L)
{
  lua_ua *u = check_ua(L, 1);
  if (u->drv) lua_pushinteger(L, sipub_uv_port(u->drv));
  else lua_pushnil(L);
  return 1;
}

static lua_pub *wrap_pub(lua_State *L, lua_ua *u, sipub_pub *pub, int ua_idx, int ctx_idx);

/* ua:pub_new(ctx, target, event, content_type, expires, extra_headers, unpublish_on_close,
 *            etag) */
static int l_pub_new(lua_State *L)
{
  lua_ua *u = check_ua(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  sipub_pub_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.target = luaL_checkstring(L, 3);
  cfg.event = luaL_checkstring(L, 4);
  cfg.content_type = luaL_optstring(L, 5, NULL);
  cfg.expires = (int)luaL_checkinteger(L, 6);
  cfg.unpublish_on_close = lua_toboolean(L, 8);
  cfg.etag = luaL_optstring(L, 9, NULL);
  const char *lines[65];
  size_t n = 0;
  if (!lua_isnoneornil(L, 7)) {
    luaL_checktype(L, 7, LUA_TTABLE);
    n = (size_t)lua_rawlen(L, 7);
    luaL_argcheck(L, n < sizeof lines / sizeof lines[0], 7, "too many extra headers (64 at most)");
    for (size_t i = 0; i < n; i++) {
      lua_rawgeti(L, 7, (lua_Integer)i + 1);
      lines[i] = lua_tostring(L, -1);
      luaL_argcheck(L, lines[i] != NULL, 7, "extra headers must be strings");
      lua_pop(L, 1); /* still referenced by the table */
    }
  }
  lines[n] = NULL;
  cfg.extra_headers = lines;

  int err = 0;
  sipub_pub *pub = sipub_pub_new(u->core, &cfg, &err);
  if (!pub) {
    if (err == SIPUB_ECLOSED) return luaL_error(L, "the user agent is closed");
    if (err == SIPUB_ENOMEM) return luaL_error(L, "out of memory");
    return luaL_error(L, "invalid publication (target, event, content type or extra headers)");
  }
  wrap_pub(L, u, pub, 1, 2);
  return 1;
}

/* Pushes the userdata of a new publication of the UA at ua_idx, anchoring the context at
 * ctx_idx. */
static lua_pub *wrap_pub(lua_State *L, lua_ua *u, sipub_pub *pub, int ua_idx, int ctx_idx)
{
  lua_pub *lp = lua_newuserdata(L, sizeof *lp);
  lp->pub = pub;
  lp->ua = u;
  lp->ctx_ref = LUA_NOREF;
  lp->next = NULL;
  lp->prev = u->last;
  if (u->last) u->last->next = lp; else u->first = lp;
  u->last = lp;
  sipub_pub_set_user(pub, lp); /* from here on, l_pub_gc releases it */
  luaL_setmetatable(L, PUB_MT);
  /* The UA outlives its publications: its userdata is the user value (Lua 5.1: the table
   * the UA shares with all its publications). */
#if LUA_VERSION_NUM >= 503
  lua_pushvalue(L, ua_idx);
#else
  lua_getuservalue(L, ua_idx);
#endif
  lua_setuservalue(L, -2);
  lua_pushvalue(L, ctx_idx);
  lp->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return lp;
}

static lua_pub *check_pub(lua_State *L)
{
  lua_pub *lp = luaL_checkudata(L, 1, PUB_MT);
  if (!lp->pub || !lp->ua || !lp->ua->core) luaL_argerror(L, 1, "the publication has been released");
  return lp;
}

static const char *rc_message(int rc);

static int pub_result(lua_State *L, lua_pub *lp, int rc)
{
  settle(L, lp->ua);
  if (lp->ua->core) maybe_unanchor(L, lp);
  if (rc == SIPUB_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, rc_message(rc));
  return 2;
}

static int l_pub_publish(lua_State *L)
{
  lua_pub *lp = check_pub(L);
  size_t len = 0;
  const char *body = luaL_optlstring(L, 2, NULL, &len);
  ua_time(lp->ua);
  return pub_result(L, lp, sipub_pub_publish(lp->pub, body, len));
}

static int l_pub_resume(lua_State *L)
{
  lua_pub *lp = check_pub(L);
  size_t len = 0;
  const char *body = luaL_checklstring(L, 2, &len);
  ua_time(lp->ua);
  return pub_result(L, lp, sipub_pub_resume(lp->pub, body, len));
}

/* Nothing once the publication is closed (closing already unpublished it, or forgot it). */
static int l_pub_unpublish(lua_State *L)
{
  lua_pub *lp = check_pub(L);
  if (sipub_pub_closed(lp->pub)) {
    lua_pushboolean(L, 1);
    return 1;
  }
  ua_time(lp->ua);
  return pub_result(L, lp, sipub_pub_unpublish(lp->pub));
}

static int l_pub_close(lua_State *L)
{
  lua_pub *lp = check_pub(L);
  ua_time(lp->ua);
  return pub_result(L, lp, sipub_pub_close(lp->pub));
}

static int l_pub_etag(lua_State *L)
{
  lua_pub *lp = check_pub(L);
  const char *e = sipub_pub_etag(lp->pub);
  if (e) lua_pushstring(L, e); else lua_pushnil(L);
  return 1;
}

/* "closed" once closed, else "published" while an entity-tag is held, else "idle". */
static int l_pub_state(lua_State *L)
{
  lua_pub *lp = check_pub(L);
  lua_pushstring(L, sipub_pub_closed(lp->pub) ? "closed" : sipub_pub_etag(lp->pub) ? "published" : "idle");
  return 1;
}

static int l_pub_active(lua_State *L)
{
  lua_pub *lp = check_pub(L);
  lua_pushboolean(L, sipub_pub_active(lp->pub));
  return 1;
}

static int l_pub_gc(lua_State *L)
{
  lua_pub *lp = luaL_checkudata(L, 1, PUB_MT);
  lua_ua *u = lp->ua;
  if (u) {
    if (lp->pub && u->core) sipub_pub_release(lp->pub);
    if (lp->prev) lp->prev->next = lp->next; else u->first = lp->next;
    if (lp->next) lp->next->prev = lp->prev; else u->last = lp->prev;
  }
  lp->pub = NULL;
  lp->ua = NULL;
  lp->prev = lp->next = NULL;
  return 0;
}

/* ---- context methods ------------------------------------------------------------------- */

/* The methods that run on every event or publication (sip/context.lua installs them), in C
 * so that a call costs one call: the usual case is done here, every other one (an argument
 * to refuse with its message, a second handler, a `once`, a handle that is not ours) goes to
 * the Lua function of the same name in upvalue 1, which raises one level further up. */

static const char *rc_message(int rc)
{
  return rc == SIPUB_ENOSTATE ? "nothing is published to refresh"
       : rc == SIPUB_ECLOSED ? "closed"
       : rc == SIPUB_ENOMEM ? "out of memory" : "invalid argument";
}

/* Calls the Lua fallback named `name` with the arguments as given; returns its results. */
static int ctx_slow(lua_State *L, const char *name)
{
  int n = lua_gettop(L);
  lua_getfield(L, lua_upvalueindex(1), name);
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

/* The publication of the context at index 1 (its _h field, a userdata whose metatable is
 * upvalue 2: the publications' one), or NULL. */
static lua_pub *ctx_pub(lua_State *L)
{
  if (lua_type(L, 1) != LUA_TTABLE) return NULL;
  lua_pushliteral(L, "_h");
  lua_rawget(L, 1);
  lua_pub *lp = NULL;
  if (lua_type(L, -1) == LUA_TUSERDATA && lua_getmetatable(L, -1)) {
    if (lua_rawequal(L, -1, lua_upvalueindex(2))) lp = lua_touserdata(L, -2);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (!lp || !lp->pub || !lp->ua || !lp->ua->core) return NULL;
  return lp;
}

/* Index of event (a string at idx) in handler_keys, or -1. */
static int event_index(lua_State *L, int idx)
{
  static const char *const names[] = { "progress", "published", "failed", "unpublished" };
  if (lua_type(L, idx) != LUA_TSTRING) return -1;
  const char *e = lua_tostring(L, idx);
  for (int i = 0; i < 4; i++)
    if (strcmp(e, names[i]) == 0) return i;
  return -1;
}

/* ctx:on(event, fn) when event has no handler yet: the function is the field's value. */
static int ctx_on(lua_State *L)
{
  int k = event_index(L, 2);
  if (k < 0 || lua_type(L, 1) != LUA_TTABLE || lua_type(L, 3) != LUA_TFUNCTION || lua_gettop(L) != 3)
    return ctx_slow(L, "on");
  lua_pushstring(L, handler_keys[k]);
  lua_pushvalue(L, -1);
  if (lua_rawget(L, 1) != LUA_TNIL) {
    lua_settop(L, 3);
    return ctx_slow(L, "on");
  }
  lua_pop(L, 1);
  lua_pushvalue(L, 3);
  lua_rawset(L, 1);
  lua_settop(L, 1);
  return 1;
}

/* ctx:publish([body]): initial or modify with a body, a refresh without one (or with ""). */
static int ctx_publish(lua_State *L)
{
  int t = lua_type(L, 2);
  lua_pub *lp = ctx_pub(L);
  if (!lp || (t != LUA_TNIL && t != LUA_TNONE && t != LUA_TSTRING)) return ctx_slow(L, "publish");
  size_t len = 0;
  const char *body = t == LUA_TSTRING ? lua_tolstring(L, 2, &len) : NULL;
  if (body && len == 0) body = NULL;
  ua_time(lp->ua);
  int rc = sipub_pub_publish(lp->pub, body, len);
  settle(L, lp->ua);
  if (lp->ua->core) maybe_unanchor(L, lp);
  if (rc == SIPUB_ECLOSED) return luaL_error(L, "sip: publish on a closed context");
  if (rc != SIPUB_OK) return luaL_error(L, "sip: cannot publish: %s", rc_message(rc));
  if (body) {
    lua_pushliteral(L, "body");
    lua_pushvalue(L, 2);
    lua_rawset(L, 1);
  }
  lua_settop(L, 1);
  return 1;
}

/* ctx:unpublish() and ctx:close(): op on the publication unless it is closed already. */
static int ctx_call(lua_State *L, const char *name, int (*op)(sipub_pub *))
{
  lua_pub *lp = ctx_pub(L);
  if (!lp) return ctx_slow(L, name);
  if (!sipub_pub_closed(lp->pub)) {
    ua_time(lp->ua);
    op(lp->pub);
    settle(L, lp->ua);
    if (lp->ua->core) maybe_unanchor(L, lp);
  }
  lua_settop(L, 1);
  return 1;
}

/* ctx:unpublish(): removes the published state; nothing once the context is closed. */
static int ctx_unpublish(lua_State *L) { return ctx_call(L, "unpublish", sipub_pub_unpublish); }

/* ctx:close(): unpublishes (unpublishOnClose) or forgets the state; idempotent. */
static int ctx_close(lua_State *L) { return ctx_call(L, "close", sipub_pub_close); }

/* Context.__index: a method (upvalue 1: the methods table), else etag or state from the
 * core. */
static int ctx_index(lua_State *L)
{
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL || lua_type(L, 2) != LUA_TSTRING) return 1;
  const char *k = lua_tostring(L, 2);
  int etag = strcmp(k, "etag") == 0;
  if (!etag && strcmp(k, "state") != 0) return 1; /* nil */
  lua_pushliteral(L, "_h");
  lua_rawget(L, 1);
  lua_pub *lp = luaL_testudata(L, -1, PUB_MT);
  if (!lp || !lp->pub || !lp->ua || !lp->ua->core)
    return luaL_error(L, "sip: the context has no publication");
  if (etag) {
    const char *e = sipub_pub_etag(lp->pub);
    if (e) lua_pushstring(L, e); else lua_pushnil(L);
  } else {
    lua_pushstring(L, sipub_pub_closed(lp->pub) ? "closed" : sipub_pub_etag(lp->pub) ? "published" : "idle");
  }
  return 1;
}

/* core.context_methods(methods, fallbacks) -> { on, publish, unpublish, close, __index }:
 * the C methods (upvalues: the Lua fallbacks of the same names, the publications'
 * metatable) and the __index function of contexts over the methods table. */
static int l_context_methods(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  static const luaL_Reg fns[] = {
    { "on", ctx_on }, { "publish", ctx_publish }, { "unpublish", ctx_unpublish },
    { "close", ctx_close }, { NULL, NULL }
  };
  lua_createtable(L, 0, 5);
  for (const luaL_Reg *f = fns; f->name; f++) {
    lua_pushvalue(L, 2);
    luaL_getmetatable(L, PUB_MT);
    lua_pushcclosure(L, f->func, 2);
    lua_setfield(L, -2, f->name);
  }
  lua_pushvalue(L, 1);
  lua_pushcclosure(L, ctx_index, 1);
  lua_setfield(L, -2, "__index");
  return 1;
}

/* ---- the virtual transport and clock --------------------------------------------------- */

static lua_ua *check_virtual(lua_State *L)
{
  lua_ua *u = check_ua(L, 1);
  if (!u->virt) luaL_argerror(L, 1, "not a virtual-transport user agent");
  return u;
}

static int l_vsent(lua_State *L)
{
  lua_ua *u = check_virtual(L);
  lua_createtable(L, (int)u->nvsent, 0);
  for (size_t i = 0; i < u->nvsent; i++) {
    lua_createtable(L, 0, 3);
    lua_pushlstring(L, u->vsent[i].data, u->vsent[i].len);
    lua_setfield(L, -2, "data");
    lua_pushstring(L, u->vsent[i].host);
    lua_setfield(L, -2, "host");
    lua_pushinteger(L, u->vsent[i].port);
    lua_setfield(L, -2, "port");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
    free(u->vsent[i].data);
    free(u->vsent[i].host);
  }
  u->nvsent = 0;
  return 1;
}

static int l_vreceive(lua_State *L)
{
  lua_ua *u = check_virtual(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  sipub_ua_receive(u->core, u->vnow, data, len);
  drain(L, u);
  return 0;
}

static int l_vadvance(lua_State *L)
{
  lua_ua *u = check_virtual(L);
  lua_Integer ms = luaL_checkinteger(L, 2);
  luaL_argcheck(L, ms >= 0, 2, "cannot go back in time");
  uint64_t target = u->vnow + (uint64_t)ms;
  drain(L, u); /* events of earlier user calls */
  for (;;) {
    if (!u->core) break;
    uint64_t d = sipub_ua_next_deadline(u->core);
    if (d > target || u->closed) break;
    if (d > u->vnow) u->vnow = d;
    sipub_ua_tick(u->core, u->vnow);
    drain(L, u);
  }
  u->vnow = target;
  if (u->core) sipub_ua_set_time(u->core, target);
  return 0;
}

static int l_vnow(lua_State *L)
{
  lua_ua *u = check_virtual(L);
  lua_pushinteger(L, (lua_Integer)u->vnow);
  return 1;
}

static int l_vfail(lua_State *L)
{
  lua_ua *u = check_virtual(L);
  u->vfail = (long)luaL_checkinteger(L, 2);
  return 0;
}

/* ---- module functions ------------------------------------------------------------------ */

/* core.set_dispatch(deliver, response_mt): the function that runs a list of handlers
 * (Emitter.deliver) and the metatable of response objects. */
static int l_set_dispatch(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &response_mt_key);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &deliver_key);
  return 0;
}

static int l_set_error_handler(lua_State *L)
{
  if (!lua_isnil(L, 1)) luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &error_key);
  return 0;
}

/* Parses s as a URI that also reads back inside <> (To, From: otherwise no request could
 * carry it); NULL when it does not, or when a port is not 1..65535. */
static osip_uri_t *parse_uri(const char *s, size_t len, long *port)
{
  osip_uri_t *u = NULL;
  sipub_global_init();
  *port = 0;
  if (strlen(s) != len || osip_uri_init(&u) != 0) return NULL;
  if (osip_uri_parse(u, s) != 0 || !u->scheme || !u->host || !*u->host) {
    osip_uri_free(u);
    return NULL;
  }
  osip_from_t *f = NULL;
  char *na = malloc(len + 3);
  int in_name_addr = 0;
  if (na) {
    na[0] = '<';
    memcpy(na + 1, s, len);
    na[len + 1] = '>';
    na[len + 2] = '\0';
    in_name_addr = osip_from_init(&f) == 0 && osip_from_parse(f, na) == 0;
    osip_from_free(f);
    free(na);
  }
  if (in_name_addr && u->port) {
    char *end;
    *port = strtol(u->port, &end, 10);
    if (*end || *port <= 0 || *port > 65535) in_name_addr = 0;
  }
  if (!in_name_addr) {
    osip_uri_free(u);
    return NULL;
  }
  return u;
}

/* core.parse_uri(s) -> { scheme, user, host, port } or nil */
static int l_parse_uri(lua_State *L)
{
  size_t len;
  long port;
  const char *s = luaL_checklstring(L, 1, &len);
  osip_uri_t *u = parse_uri(s, len, &port);
  if (!u) return 0;
  lua_createtable(L, 0, 4);
  lua_pushstring(L, u->scheme);
  lua_setfield(L, -2, "scheme");
  if (u->username) {
    lua_pushstring(L, u->username);
    lua_setfield(L, -2, "user");
  }
  lua_pushstring(L, u->host);
  lua_setfield(L, -2, "host");
  if (port) {
    lua_pushinteger(L, port);
    lua_setfield(L, -2, "port");
  }
  osip_uri_free(u);
  return 1;
}

/* core.check_target(s) -> nil when s is fit for a publication's target; "control" when it
 * holds a control character (CR, LF, NUL... but tab); "uri" when it is not a sip: or sips:
 * URI that To can carry (no <, > or white space in it). One pass and no table: this runs
 * on every publish. */
static const char *target_problem(const char *s, size_t len)
{
  long port;
  int bad_uri = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c < 32 && c != '\t') || c == 127) return "control";
    if (c == '<' || c == '>' || c == ' ' || c == '\t') bad_uri = 1;
  }
  osip_uri_t *u = bad_uri ? NULL : parse_uri(s, len, &port);
  int ok = u && (osip_strcasecmp(u->scheme, "sip") == 0 || osip_strcasecmp(u->scheme, "sips") == 0);
  if (u) osip_uri_free(u);
  return ok ? NULL : "uri";
}

static int l_check_target(lua_State *L)
{
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  const char *problem = target_problem(s, len);
  if (!problem) return 0;
  lua_pushstring(L, problem);
  return 1;
}

/* ---- ua:publish's usual case ----------------------------------------------------------- */

/* core.publish_fast(ua_core, target, event, body, options) -> ctx | nil, message | nil.
 * Upvalues: the contexts' metatable and the shared empty extraHeaders. Does ua:publish for
 * the usual arguments in one call: a target, event and body that sip/ua.lua accepts, and
 * options nil or a plain table with only contentType and/or expires. Returns nil, and does
 * nothing, for anything else (sip/ua.lua then checks and raises as before); nil and the
 * reason when the publication was made but its PUBLISH could not be (sip/ua.lua raises). */
static int l_publish_fast(lua_State *L)
{
  lua_settop(L, 5);
  lua_ua *u = luaL_testudata(L, 1, UA_MT);
  if (!u || !u->core || u->closing) return 0;
  size_t tlen, elen, blen;
  if (lua_type(L, 2) != LUA_TSTRING || lua_type(L, 3) != LUA_TSTRING || lua_type(L, 4) != LUA_TSTRING)
    return 0;
  const char *target = lua_tolstring(L, 2, &tlen);
  const char *event = lua_tolstring(L, 3, &elen);
  const char *body = lua_tolstring(L, 4, &blen);
  /* The core checks the event's and the content type's grammar on C strings: one with a NUL
   * inside would be cut there, so those go to sip/ua.lua's checks. */
  if (tlen == 0 || elen == 0 || blen == 0 || strlen(event) != elen) return 0;

  /* options: the defaults, or contentType / expires */
  lua_pushliteral(L, "text/plain"); /* 6: content type */
  lua_Integer expires = 3600;
  int t = lua_type(L, 5);
  if (t == LUA_TTABLE) {
    if (lua_getmetatable(L, 5)) return 0;
    lua_pushnil(L);
    while (lua_next(L, 5)) {
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
      if (strcmp(k, "contentType") == 0) {
        size_t clen;
        if (lua_type(L, -1) != LUA_TSTRING || strlen(lua_tolstring(L, -1, &clen)) != clen) return 0;
        lua_copy(L, -1, 6);
      } else if (strcmp(k, "expires") == 0) {
        if (lua_type(L, -1) != LUA_TNUMBER) return 0;
        if (lua_isinteger(L, -1)) {
          expires = lua_tointeger(L, -1);
        } else {
          lua_Number n = lua_tonumber(L, -1);
          if (!(n >= 1 && n <= 2147483647.0) || n != (lua_Number)(lua_Integer)n) return 0;
          expires = (lua_Integer)n;
        }
        if (expires < 1 || expires > 2147483647) return 0;
      } else {
        return 0;
      }
      lua_pop(L, 1);
    }
  } else if (t != LUA_TNIL) {
    return 0;
  }
  if (target_problem(target, tlen)) return 0;

  sipub_pub_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.target = target;
  cfg.event = event;
  cfg.content_type = lua_tostring(L, 6);
  cfg.expires = (int)expires;
  cfg.unpublish_on_close = 1;
  int err = 0;
  ua_time(u);
  sipub_pub *pub = sipub_pub_new(u->core, &cfg, &err);
  if (!pub) return 0; /* sip/ua.lua tries again and raises the error */

  /* ctx.options */
  lua_createtable(L, 0, 4); /* 7 */
  lua_pushliteral(L, "extraHeaders");
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_rawset(L, 7);
  lua_pushliteral(L, "contentType");
  lua_pushvalue(L, 6);
  lua_rawset(L, 7);
  lua_pushliteral(L, "expires");
  lua_pushinteger(L, expires);
  lua_rawset(L, 7);
  lua_pushliteral(L, "unpublishOnClose");
  lua_pushboolean(L, 1);
  lua_rawset(L, 7);
  /* the context: the fields of Context.new */
  lua_createtable(L, 0, 5); /* 8 */
  lua_pushliteral(L, "target");
  lua_pushvalue(L, 2);
  lua_rawset(L, 8);
  lua_pushliteral(L, "event");
  lua_pushvalue(L, 3);
  lua_rawset(L, 8);
  lua_pushliteral(L, "options");
  lua_pushvalue(L, 7);
  lua_rawset(L, 8);
  lua_pushliteral(L, "body");
  lua_pushvalue(L, 4);
  lua_rawset(L, 8);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setmetatable(L, 8);
  lua_pushliteral(L, "_h");
  lua_pub *lp = wrap_pub(L, u, pub, 1, 8);
  lua_rawset(L, 8);

  int rc = sipub_pub_publish(lp->pub, body, blen);
  settle(L, u);
  if (u->core) maybe_unanchor(L, lp);
  if (rc == SIPUB_OK) {
    lua_pushvalue(L, 8);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, rc_message(rc));
  return 2;
}

/* core.publish_fast_for(context_mt, no_headers) -> publish_fast */
static int l_publish_fast_for(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_pushcclosure(L, l_publish_fast, 2);
  return 1;
}

/* core.digest{ algorithm, user, realm, password | ha1, nonce, cnonce, nc, qop, method, uri,
 *              body } -> the request-digest (hex), as a client answering that challenge. */
static int l_digest(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  dg_challenge c;
  dg_credentials cr;
  memset(&c, 0, sizeof c);
  memset(&cr, 0, sizeof cr);
  const char *alg = opt_string(L, 1, "algorithm");
  if (dg_algorithm(alg ? alg : "MD5", &c.hash, &c.sess) != 0) return luaL_error(L, "unsupported algorithm");
  const char *qop = opt_string(L, 1, "qop");
  c.qop = !qop ? DG_QOP_NONE : strcmp(qop, "auth") == 0 ? DG_QOP_AUTH
        : strcmp(qop, "auth-int") == 0 ? DG_QOP_AUTH_INT : (dg_qop)-1;
  if ((int)c.qop < 0) return luaL_error(L, "unsupported qop");
  c.realm = (char *)opt_string(L, 1, "realm");
  c.nonce = (char *)opt_string(L, 1, "nonce");
  cr.user = opt_string(L, 1, "user");
  cr.password = opt_string(L, 1, "password");
  cr.ha1[c.hash] = opt_string(L, 1, "ha1");
  const char *method = opt_string(L, 1, "method"), *uri = opt_string(L, 1, "uri");
  const char *cnonce = opt_string(L, 1, "cnonce");
  size_t body_len = 0;
  lua_getfield(L, 1, "body");
  const char *body = lua_tolstring(L, -1, &body_len);
  lua_pop(L, 1);
  lua_Integer nc = opt_integer(L, 1, "nc", 1);
  char out[129];
  if (!c.realm || !c.nonce || !cr.user || !method || !uri ||
      dg_response(&c, &cr, method, uri, body, body_len, (uint32_t)nc, cnonce ? cnonce : "", out) != 0)
    return luaL_error(L, "digest: missing or invalid fields");
  lua_pushstring(L, out);
  return 1;
}

static int l_reason_phrases(lua_State *L)
{
  const char *phrase;
  int code;
  lua_newtable(L);
  for (size_t i = 0; (code = sipub_reason_phrase_at(i, &phrase)) != 0; i++) {
    lua_pushstring(L, phrase);
    lua_rawseti(L, -2, code);
  }
  return 1;
}

static void new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc)
{
  luaL_newmetatable(L, name);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}

__attribute__((visibility("default"))) int luaopen_sip_core(lua_State *L)
{
  static const luaL_Reg ua_methods[] = {
    { "pub_new", l_pub_new }, { "close", l_ua_close }, { "state", l_ua_state },
    { "port", l_ua_port }, { "_vsent", l_vsent }, { "_vreceive", l_vreceive },
    { "_vadvance", l_vadvance }, { "_vnow", l_vnow }, { "_vfail", l_vfail },
    { NULL, NULL }
  };
  static const luaL_Reg pub_methods[] = {
    { "publish", l_pub_publish }, { "resume", l_pub_resume }, { "unpublish", l_pub_unpublish },
    { "close", l_pub_close }, { "etag", l_pub_etag }, { "state", l_pub_state },
    { "active", l_pub_active }, { NULL, NULL }
  };
  static const luaL_Reg timer_methods[] = {
    { "stop", l_timer_stop }, { "unref", l_timer_unref }, { NULL, NULL }
  };
  static const luaL_Reg funcs[] = {
    { "ua_new", l_ua_new }, { "run", l_run }, { "stop", l_stop }, { "timer", l_timer },
    { "now", l_now }, { "digest", l_digest },
    { "set_dispatch", l_set_dispatch }, { "set_error_handler", l_set_error_handler },
    { "report_error", l_report_error }, { "parse_uri", l_parse_uri },
    { "check_target", l_check_target }, { "context_methods", l_context_methods },
    { "publish_fast_for", l_publish_fast_for },
    { "reason_phrases", l_reason_phrases }, { NULL, NULL }
  };

  sipub_global_init();
  /* The loop first: at lua_close finalizers run newest first, so every user agent, timer
   * and compositor closes its handles before the loop itself is torn down. */
  get_loop_box(L);
#if LUA_VERSION_NUM < 502
  lua_pushthread(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &mainthread_key);
#endif
  new_class(L, UA_MT, ua_methods, l_ua_gc);
  new_class(L, PUB_MT, pub_methods, l_pub_gc);
  new_class(L, TIMER_MT, timer_methods, l_timer_gc);

  luaL_newlib(L, funcs);
  lua_pushstring(L, SIPUB_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushstring(L, SIPUB_CAUSE_REQUEST_TIMEOUT);
  lua_setfield(L, -2, "REQUEST_TIMEOUT");
  lua_pushstring(L, SIPUB_CAUSE_CONNECTION_ERROR);
  lua_setfield(L, -2, "CONNECTION_ERROR");
  lua_pushstring(L, SIPUB_CAUSE_PROTOCOL_ERROR);
  lua_setfield(L, -2, "PROTOCOL_ERROR");
  lsipub_compositor_open(L);
  return 1;
}
