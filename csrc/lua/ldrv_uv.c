/* ldrv_uv.c — the binding's libuv driver: a user agent's UDP socket and timer (sipub_uv) on
 * the Lua state's private loop, and the deferred delivery of events on the next loop turn. */
#include "lsipub.h"
#include "sipub_uv.h"

#include <stdlib.h>
#include <string.h>

#include <uv.h>

typedef struct uv_drv {
  sipub_uv *io;
  uv_timer_t *defer; /* delivers the events of user calls on the next loop turn */
} uv_drv;

static void free_handle(uv_handle_t *h)
{
  free(h);
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

static void start(lua_State *L, lua_ua *u)
{
  uv_drv *d = u->drv;
  if (sipub_uv_start(d->io, u->core, after_io, u) != 0)
    luaL_error(L, "sip.UA.new: cannot receive on the UDP socket");
}

static uint64_t now_ms(lua_ua *u)
{
  return sipub_uv_now(((uv_drv *)u->drv)->io);
}

static void sync_timer(lua_State *L, lua_ua *u)
{
  uv_drv *d = u->drv;
  if (d->io) sipub_uv_sync(d->io);
}

static void defer(lua_State *L, lua_ua *u)
{
  uv_drv *d = u->drv;
  if (d->defer) uv_timer_start(d->defer, on_defer, 0, 0);
}

static int port(lua_ua *u)
{
  uv_drv *d = u->drv;
  return d->io ? sipub_uv_port(d->io) : -1;
}

static void close_io(lua_State *L, lua_ua *u)
{
  uv_drv *d = u->drv;
  if (d->io) sipub_uv_close(d->io);
  d->io = NULL;
}

static void free_drv(lua_ua *u)
{
  uv_drv *d = u->drv;
  if (!d) return;
  if (d->defer) uv_close((uv_handle_t *)d->defer, free_handle);
  if (d->io) sipub_uv_close(d->io);
  free(d);
}

static const lsipub_driver_ops uv_ops = { "udp", start, now_ms, sync_timer, defer, port, close_io, free_drv, NULL };

static int is_wildcard(const char *h)
{
  return !h || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0 || strcmp(h, "[::]") == 0;
}

void lsipub_driver_uv(lua_State *L, lua_ua *u, const lsipub_driver_args *a, sipub_config *cfg,
                      sipub_io *io, uint64_t *t)
{
  uv_drv *d = calloc(1, sizeof *d);
  if (!d) luaL_error(L, "out of memory");
  u->ops = &uv_ops;
  u->drv = d; /* from here on, the UA's finalizer frees it */
  d->defer = malloc(sizeof *d->defer);
  if (!d->defer) luaL_error(L, "out of memory");
  uv_timer_init(lsipub_loop(L), d->defer);
  d->defer->data = u;

  int err = 0;
  const char *bind = a->local_address ? a->local_address : "0.0.0.0";
  d->io = sipub_uv_new(lsipub_loop(L), bind, a->local_port, &err);
  if (!d->io)
    lsipub_error_at(L, 2, "sip.UA.new: cannot bind UDP %s:%d: %s", bind, a->local_port, uv_strerror(err));
  if (a->via_host) {
    cfg->via_host = a->via_host;
  } else if (!is_wildcard(bind)) {
    cfg->via_host = bind;
  } else {
    char via[64];
    sipub_uv_guess_via_host(d->io, a->proxy_host, via, sizeof via);
    lua_pushstring(L, via); /* kept on the stack until the core has copied it */
    cfg->via_host = lua_tostring(L, -1);
  }
  cfg->via_port = sipub_uv_port(d->io);
  *io = *sipub_uv_io(d->io);
  *t = sipub_uv_now(d->io);
}
