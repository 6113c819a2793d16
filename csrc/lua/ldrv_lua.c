/* ldrv_lua.c — a driver written in Lua: the core's sends go to the driver table's send(),
 * and Lua hands back responses, time and failures (sip.testing's network; hosts with a loop). */
#include "lsipub.h"

#include <stdlib.h>
#include <string.h>

/* The driver table (a registry reference) and which optional methods it has, read once. */
typedef struct lua_drv {
  lua_ua *u;
  int ref;
  int has_now, has_sync, has_defer, has_close, has_event;
  int port;
} lua_drv;

static const char *const tp_names[] = { "udp", "tcp", "tls" };

/* Pushes the driver's method `name` and the driver table (its self); 0 when it has none. */
static int push_method(lua_State *L, lua_drv *d, const char *name)
{
  lua_rawgeti(L, LUA_REGISTRYINDEX, d->ref);
  lua_getfield(L, -1, name);
  if (!lua_isfunction(L, -1)) {
    lua_pop(L, 2);
    return 0;
  }
  lua_insert(L, -2);
  return 1;
}

/* The thread to call the driver on: the one calling into the core, else the main thread. */
static lua_State *thread_of(lua_drv *d)
{
  return d->u->cur ? d->u->cur : d->u->L;
}

/* io.send: drv:send(data, host, port, transport) -> true, or false/nil when refused. An error
 * raised by the driver counts as a refusal, and is reported like a handler's. */
static int io_send(void *ud, const sipub_dest *dest, const char *data, size_t len)
{
  lua_drv *d = ud;
  lua_State *L = thread_of(d);
  if (!lua_checkstack(L, 8) || !push_method(L, d, "send")) return -1;
  lua_pushlstring(L, data, len);
  lua_pushstring(L, dest->host);
  lua_pushinteger(L, dest->port);
  lua_pushstring(L, tp_names[dest->tp]);
  if (lua_pcall(L, 5, 1, 0) != LUA_OK) {
    lsipub_report_error(L);
    lua_pop(L, 1);
    return -1;
  }
  int ok = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return ok ? 0 : -1;
}

/* Calls an optional method with an integer argument (or none when arg < 0), errors reported,
 * on L: the thread calling into the binding. Never on the main thread while a coroutine runs:
 * in nginx the main thread carries a stale request context, and host APIs called there
 * (ngx.timer.at, ngx.semaphore) would act on it. */
static void call_optional(lua_State *L, lua_drv *d, const char *name, lua_Integer arg, int with_arg)
{
  if (!lua_checkstack(L, 4) || !push_method(L, d, name)) return;
  if (with_arg) {
    if (arg >= 0) lua_pushinteger(L, arg); else lua_pushnil(L);
  }
  if (lua_pcall(L, with_arg ? 2 : 1, 0, 0) != LUA_OK) {
    lsipub_report_error(L);
    lua_pop(L, 1);
  }
}

static uint64_t now_ms(lua_ua *u)
{
  lua_drv *d = u->drv;
  lua_State *L = thread_of(d);
  uint64_t t = sipub_ua_now(u->core);
  if (!lua_checkstack(L, 4) || !push_method(L, d, "now")) return t;
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lsipub_report_error(L);
  } else if (lua_isnumber(L, -1) && lua_tonumber(L, -1) >= 0) {
    t = (uint64_t)lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return t;
}

static void sync_deadline(lua_State *L, lua_ua *u)
{
  lua_drv *d = u->drv;
  if (!d->has_sync) return;
  uint64_t at = sipub_ua_next_deadline(u->core);
  call_optional(L, d, "sync", at == UINT64_MAX ? -1 : (lua_Integer)at, 1);
}

static void defer(lua_State *L, lua_ua *u)
{
  lua_drv *d = u->drv;
  if (d->has_defer) call_optional(L, d, "defer", 0, 0);
}

static int port(lua_ua *u)
{
  return ((lua_drv *)u->drv)->port;
}

static void close_drv(lua_State *L, lua_ua *u)
{
  lua_drv *d = u->drv;
  if (d->has_close) call_optional(L, d, "close", 0, 0);
}

static void free_drv(lua_ua *u)
{
  lua_drv *d = u->drv;
  if (!d) return;
  luaL_unref(u->L, LUA_REGISTRYINDEX, d->ref);
  free(d);
}

/* driver:event(ctx, name, response, cause, detail): the driver runs the handlers itself. */
static void event(lua_State *L, lua_ua *u)
{
  lua_drv *d = u->drv;
  lua_rawgeti(L, LUA_REGISTRYINDEX, d->ref);
  lua_getfield(L, -1, "event");
  lua_insert(L, -7); /* method, ctx, name, response, cause, detail, driver */
  lua_insert(L, -6); /* method, driver, ctx, name, response, cause, detail */
  if (lua_pcall(L, 6, 0, 0) != LUA_OK) {
    lsipub_report_error(L);
    lua_pop(L, 1);
  }
}

/* The four combinations of an optional clock and an optional event delivery. */
static const lsipub_driver_ops lua_ops[2][2] = {
  { { "lua", NULL, NULL, sync_deadline, defer, port, close_drv, free_drv, NULL },
    { "lua", NULL, NULL, sync_deadline, defer, port, close_drv, free_drv, event } },
  { { "lua", NULL, now_ms, sync_deadline, defer, port, close_drv, free_drv, NULL },
    { "lua", NULL, now_ms, sync_deadline, defer, port, close_drv, free_drv, event } },
};

static int has_function(lua_State *L, int idx, const char *name)
{
  lua_getfield(L, idx, name);
  int yes = lua_isfunction(L, -1);
  lua_pop(L, 1);
  return yes;
}

void lsipub_driver_lua(lua_State *L, lua_ua *u, int idx, const lsipub_driver_args *a,
                       sipub_config *cfg, sipub_io *io, uint64_t *t)
{
  if (!has_function(L, idx, "send")) luaL_error(L, "sip.UA.new: the driver has no send method");
  lua_drv *d = calloc(1, sizeof *d);
  if (!d) luaL_error(L, "out of memory");
  d->u = u;
  d->has_now = has_function(L, idx, "now");
  d->has_sync = has_function(L, idx, "sync");
  d->has_defer = has_function(L, idx, "defer");
  d->has_close = has_function(L, idx, "close");
  d->has_event = has_function(L, idx, "event");
  lua_Integer p = lsipub_opt_integer(L, idx, "port", -1);
  d->port = p >= 0 && p <= 65535 ? (int)p : -1;
  lua_pushvalue(L, idx);
  d->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  u->drv = d;
  u->ops = &lua_ops[d->has_now][d->has_event];
  cfg->via_host = a->via_host ? a->via_host : "127.0.0.1";
  cfg->via_port = a->local_port ? a->local_port : d->port > 0 ? d->port : 5060;
  io->ud = d;
  io->send = io_send;
  *t = (uint64_t)lsipub_opt_integer(L, idx, "clock", 0);
}

/* ---- what a Lua driver calls: the UA userdata's methods ------------------------------------ */

static lua_ua *check_lua_driven(lua_State *L)
{
  lua_ua *u = lsipub_check_ua(L, 1);
  if (u->ops->free != free_drv) luaL_argerror(L, 1, "not a user agent with a Lua driver");
  return u;
}

static sipub_transport check_transport(lua_State *L, int idx)
{
  static const char *const names[] = { "udp", "tcp", "tls", NULL };
  return (sipub_transport)luaL_checkoption(L, idx, "udp", names);
}

/* ua:_receive(data[, host, port, transport]) -> true, or false when the stream flow it came
 * from must be closed (a framing error: its transactions failed). Bytes from a tcp or tls
 * flow are a stream the core frames (a message may come in pieces, or several at once); a
 * udp datagram is one message. The events are delivered before this returns. */
static int l_receive(lua_State *L)
{
  lua_ua *u = check_lua_driven(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  const char *host = luaL_optstring(L, 3, NULL);
  sipub_dest from = { host ? host : "", (int)luaL_optinteger(L, 4, 0), check_transport(L, 5) };
  lua_State *saved = lsipub_enter(L, u);
  int rc = sipub_ua_receive(u->core, sipub_ua_now(u->core), host ? &from : NULL, data, len);
  lsipub_drain(L, u);
  u->cur = saved;
  lua_pushboolean(L, rc >= 0);
  return 1;
}

/* ua:_tick(ms): the clock is at ms: runs the timers due by then, each at its own deadline,
 * delivering the events of each before the next (as a loop would). */
static int l_tick(lua_State *L)
{
  lua_ua *u = check_lua_driven(L);
  lua_Integer ms = luaL_checkinteger(L, 2);
  luaL_argcheck(L, ms >= 0, 2, "time must be >= 0");
  lua_State *saved = lsipub_enter(L, u);
  lsipub_drain(L, u); /* events of earlier user calls first */
  for (;;) {
    if (!u->core || u->closed) break;
    uint64_t d = sipub_ua_next_deadline(u->core);
    if (d > (uint64_t)ms) break;
    sipub_ua_tick(u->core, d > sipub_ua_now(u->core) ? d : sipub_ua_now(u->core));
    lsipub_drain(L, u);
  }
  if (u->core) sipub_ua_set_time(u->core, (uint64_t)ms);
  u->cur = saved;
  return 0;
}

/* ua:_deadline() -> the core's next deadline in ms, or nil. */
static int l_deadline(lua_State *L)
{
  lua_ua *u = check_lua_driven(L);
  uint64_t d = sipub_ua_next_deadline(u->core);
  if (d == UINT64_MAX) lua_pushnil(L); else lua_pushinteger(L, (lua_Integer)d);
  return 1;
}

/* ua:_now() -> the core's clock in ms. */
static int l_now(lua_State *L)
{
  lua_ua *u = check_lua_driven(L);
  lua_pushinteger(L, (lua_Integer)sipub_ua_now(u->core));
  return 1;
}

/* ua:_drain(): delivers the events waiting (a driver's defer() asks for this). */
static int l_drain(lua_State *L)
{
  lua_ua *u = check_lua_driven(L);
  lua_State *saved = u->cur; /* the drain's sends are made on this thread (see thread_of) */
  u->cur = L;
  lsipub_drain(L, u);
  u->cur = saved;
  return 0;
}

/* ua:_dest_failed(host, port): every transaction to that next hop fails ("Connection
 * Error"), as when a send is refused after it was accepted. */
static int l_dest_failed(lua_State *L)
{
  lua_ua *u = check_lua_driven(L);
  const char *host = luaL_checkstring(L, 2);
  int port = (int)luaL_checkinteger(L, 3);
  lua_State *saved = lsipub_enter(L, u);
  sipub_ua_dest_failed(u->core, host, port);
  lsipub_drain(L, u);
  u->cur = saved;
  return 0;
}

/* ua:_flow_failed(host, port, transport, reason): the flow is gone (a connection reset, a
 * refused datagram): its transactions fail with "Connection Error", reason as the detail. */
static int l_flow_failed(lua_State *L)
{
  lua_ua *u = check_lua_driven(L);
  sipub_dest flow = { luaL_checkstring(L, 2), (int)luaL_checkinteger(L, 3), check_transport(L, 4) };
  const char *reason = luaL_optstring(L, 5, NULL);
  lua_State *saved = lsipub_enter(L, u);
  sipub_ua_flow_failed(u->core, &flow, reason);
  lsipub_drain(L, u);
  u->cur = saved;
  return 0;
}

void lsipub_driver_lua_methods(lua_State *L)
{
  static const luaL_Reg m[] = {
    { "_receive", l_receive }, { "_tick", l_tick }, { "_deadline", l_deadline },
    { "_now", l_now }, { "_drain", l_drain }, { "_dest_failed", l_dest_failed }, { "_flow_failed", l_flow_failed },
    { NULL, NULL }
  };
  luaL_setfuncs(L, m, 0);
}
