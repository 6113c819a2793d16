/* uv_resolve.c — the libuv driver's side of the resolver seam, run by
 * spec/unit/core_seams_spec.lua (built by `make all`): publishes to localhost; prints "ok". */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sipub.h"
#include "sipub_compositor.h"
#include "sipub_uv.h"

static int failures;

static void check(int ok, const char *what, ...)
{
  if (ok) return;
  va_list ap;
  va_start(ap, what);
  printf("FAIL: ");
  vprintf(what, ap);
  printf("\n");
  va_end(ap);
  failures++;
}

typedef struct uv_run_ctx {
  sipub_uv *drv;
  sipub_ua *ua;
  sipub_compositor *comp;
  uv_timer_t guard;
  int published, failed, ended, expected;
  unsigned long received;
  char detail[160];
} uv_run_ctx;

static void uv_finish(uv_run_ctx *c)
{
  if (!c->drv) return;
  uv_timer_stop(&c->guard);
  uv_close((uv_handle_t *)&c->guard, NULL);
  sipub_uv_close(c->drv);
  sipub_compositor_close(c->comp);
  c->drv = NULL;
}

static void uv_after(void *ud)
{
  uv_run_ctx *c = ud;
  sipub_event ev;
  while (sipub_ua_poll(c->ua, &ev)) {
    if (ev.kind == SIPUB_EV_PUBLISHED) c->published++, c->ended++;
    if (ev.kind == SIPUB_EV_FAILED) {
      c->failed++, c->ended++;
      snprintf(c->detail, sizeof c->detail, "%s / %s", ev.cause, ev.detail ? ev.detail : "(null)");
    }
  }
  if (c->ended == c->expected) uv_finish(c);
  else if (c->drv) sipub_uv_sync(c->drv);
}

static void uv_guard(uv_timer_t *t)
{
  uv_finish(t->data);
}

static void uv_log(void *ud, const sipub_compositor_outcome *o)
{
  uv_run_ctx *c = ud;
  if (o->number > 0 && !o->retransmission) c->received++;
}

/* Publications to "localhost" through the real driver: the core asks uv_getaddrinfo once,
 * then sends to the literal address it answered; the compositor answers. */
static void uv_resolve(void)
{
  uv_loop_t loop;
  uv_run_ctx c;
  int err = 0;
  memset(&c, 0, sizeof c);
  uv_loop_init(&loop);
  sipub_compositor_opts co = { .host = "127.0.0.1" };
  c.comp = sipub_compositor_new(&loop, &co, &err);
  c.drv = sipub_uv_new(&loop, "127.0.0.1", 0, &err);
  check(c.comp && c.drv, "compositor and driver");
  if (!c.comp || !c.drv) return;
  sipub_compositor_set_log(c.comp, uv_log, &c);
  sipub_config cfg = { .aor = "sip:seams@127.0.0.1", .via_host = "127.0.0.1",
                       .via_port = sipub_uv_port(c.drv), .seed = 3 };
  c.ua = sipub_ua_new(&cfg, sipub_uv_io(c.drv), sipub_uv_now(c.drv));
  sipub_uv_start(c.drv, c.ua, uv_after, &c);
  uv_timer_init(&loop, &c.guard);
  c.guard.data = &c;
  uv_timer_start(&c.guard, uv_guard, 10000, 0);
  char target[64];
  sipub_pub *p[3];
  for (int i = 0; i < 3; i++) {
    snprintf(target, sizeof target, "sip:u%d@localhost:%d", i, sipub_compositor_port(c.comp));
    sipub_pub_config pc = { .target = target, .event = "presence", .expires = 600 };
    p[i] = sipub_pub_new(c.ua, &pc, &err, NULL);
    sipub_pub_publish(p[i], "open", 4);
  }
  c.expected = 3;
  sipub_uv_sync(c.drv);
  uv_run(&loop, UV_RUN_DEFAULT);
  check(c.published == 3 && c.received == 3, "3 published through localhost (%d published, %lu "
        "received, %d failed: %s)", c.published, c.received, c.failed, c.detail);
  sipub_ua_free(c.ua);
  uv_run(&loop, UV_RUN_DEFAULT);
  check(uv_loop_close(&loop) == 0, "the loop ends with no handle left");
}

int main(void)
{
  uv_resolve();
  printf("%s\n", failures ? "uv_resolve: FAILED" : "ok");
  return failures ? 1 : 0;
}
