/* publish.c — the protocol core and its libuv driver used from plain C, without Lua:
 * publishes one body, refreshes it once, removes it and exits with the outcome. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sipub.h"
#include "sipub_uv.h"

typedef struct app {
  sipub_ua *ua;
  sipub_uv *drv;
  sipub_pub *pub;
  int published, done, failed;
} app;

static const char *const names[] = { "progress", "published", "failed", "unpublished" };

static void on_activity(void *ud)
{
  app *a = ud;
  sipub_event ev;
  while (sipub_ua_poll(a->ua, &ev)) {
    /* detail says why a transport failed: "example.test: unknown node or service"... */
    printf("%s %d %s%s%s%s%s\n", names[ev.kind], ev.status, ev.cause,
           sipub_pub_etag(ev.pub) ? " etag=" : "", sipub_pub_etag(ev.pub) ? sipub_pub_etag(ev.pub) : "",
           ev.detail ? ": " : "", ev.detail ? ev.detail : "");
    if (ev.kind == SIPUB_EV_PUBLISHED && ++a->published == 1) {
      sipub_pub_publish(a->pub, NULL, 0); /* refresh now */
    } else if (ev.kind == SIPUB_EV_PUBLISHED) {
      sipub_pub_unpublish(a->pub);
    } else if (ev.kind == SIPUB_EV_FAILED) {
      a->failed = 1;
    } else if (ev.kind == SIPUB_EV_UNPUBLISHED) {
      a->done = 1;
    }
  }
  if (a->done && !sipub_ua_busy(a->ua)) {
    sipub_uv_close(a->drv); /* releases the loop */
    a->drv = NULL;
  } else {
    sipub_uv_sync(a->drv);
  }
}

int main(int argc, char **argv)
{
  if (argc < 4) {
    fprintf(stderr, "usage: %s PROXY_HOST PROXY_PORT TARGET_URI [BODY]\n", argv[0]);
    return 2;
  }
  app a;
  memset(&a, 0, sizeof a);
  int err = 0;
  uv_loop_t *loop = uv_default_loop();
  a.drv = sipub_uv_new(loop, "127.0.0.1", 0, &err);
  if (!a.drv) {
    fprintf(stderr, "bind: %s\n", uv_strerror(err));
    return 1;
  }
  sipub_config cfg = {
    .aor = argv[3], .proxy_host = argv[1], .proxy_port = atoi(argv[2]),
    .via_host = "127.0.0.1", .via_port = sipub_uv_port(a.drv), .user_agent = "publish-example",
    .seed = uv_hrtime(),
  };
  a.ua = sipub_ua_new(&cfg, sipub_uv_io(a.drv), sipub_uv_now(a.drv));
  sipub_pub_config pc = { .target = argv[3], .event = "presence", .content_type = "text/plain",
                          .expires = 600, .unpublish_on_close = 1 };
  a.pub = sipub_pub_new(a.ua, &pc, &err, NULL);
  if (!a.ua || !a.pub || sipub_uv_start(a.drv, a.ua, on_activity, &a) != 0) {
    fprintf(stderr, "cannot start (%d)\n", err);
    return 1;
  }
  const char *body = argc > 4 ? argv[4] : "open";
  sipub_pub_publish(a.pub, body, strlen(body));
  on_activity(&a);
  uv_run(loop, UV_RUN_DEFAULT);
  sipub_ua_free(a.ua);
  uv_loop_close(loop);
  return a.failed ? 1 : 0;
}
