/* driver_faults.c — the libuv driver's batched sending under injected faults, run by
 * spec/driver_spec.lua (built by `make all`): sendmmsg(2) interposed to refuse, defer or cut short. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT, sendmmsg */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sipub_compositor.h"
#include "sipub.h"
#include "sipub_uv.h"

/* ---- the interposed system call ------------------------------------------------------- */

enum { PASS, EAGAIN_EVERY_3RD, SHORT, REFUSE_PORT };

static int mode, refuse_port, refusals_left;
static unsigned long calls, sent; /* sendmmsg calls, datagrams they sent */

static int port_of(const void *sa)
{
  const struct sockaddr *a = sa;
  if (a->sa_family == AF_INET) return ntohs(((const struct sockaddr_in *)sa)->sin_port);
  return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

/* The driver's sendmmsg resolves to this one (it is linked into this program); the real
 * call is libc's. REFUSE_PORT behaves as the kernel does: what comes before the refused
 * datagram is sent and counted, the refused one alone gets -1. */
int sendmmsg(int fd, struct mmsghdr *m, unsigned int n, int flags)
{
  static int (*real)(int, struct mmsghdr *, unsigned int, int);
  if (!real) *(void **)&real = dlsym(RTLD_NEXT, "sendmmsg");
  unsigned int k = n;
  calls++;
  if (mode == EAGAIN_EVERY_3RD && calls % 3 == 0) {
    errno = EAGAIN;
    return -1;
  }
  if (mode == SHORT) k = 1;
  if (mode == REFUSE_PORT && refusals_left > 0) {
    for (k = 0; k < n && port_of(m[k].msg_hdr.msg_name) != refuse_port; k++) continue;
    if (k == 0) {
      refusals_left--;
      errno = EPERM;
      return -1;
    }
  }
  int r = real(fd, m, k, flags);
  if (r > 0) sent += (unsigned long)r;
  return r;
}

/* ---- publications living initial -> refresh -> modify -> remove ----------------------- */

typedef struct run {
  uv_loop_t loop;
  sipub_uv *drv;
  sipub_ua *ua;
  sipub_compositor *comp[2];
  uv_timer_t guard;
  int ndest, n, w, started, done, timed_out;
  int published[2], failed[2], conn_errors[2], other_causes;
  unsigned long received, retransmissions; /* PUBLISH requests seen by the compositors */
  struct life *lives;
} run;

typedef struct life {
  run *r;
  sipub_pub *pub;
  int step, dest;
  char target[64];
} life;

static void start_one(run *r)
{
  life *l = &r->lives[r->started];
  int err = 0;
  l->r = r;
  l->dest = r->started % r->ndest;
  snprintf(l->target, sizeof l->target, "sip:u%d@127.0.0.1:%d", r->started,
           sipub_compositor_port(r->comp[l->dest]));
  r->started++;
  sipub_pub_config pc = { .target = l->target, .event = "presence", .expires = 600 };
  l->pub = sipub_pub_new(r->ua, &pc, &err, NULL);
  if (!l->pub) {
    fprintf(stderr, "sipub_pub_new: %d\n", err);
    exit(2);
  }
  sipub_pub_set_user(l->pub, l);
  sipub_pub_publish(l->pub, "B1", 2);
}

static void finish(run *r)
{
  uv_timer_stop(&r->guard);
  sipub_uv_close(r->drv);
  r->drv = NULL;
  for (int i = 0; i < r->ndest; i++) sipub_compositor_close(r->comp[i]);
}

static void on_after(void *ud)
{
  run *r = ud;
  sipub_event ev;
  while (sipub_ua_poll(r->ua, &ev)) {
    life *l = ev.user;
    switch (ev.kind) {
    case SIPUB_EV_PUBLISHED:
      r->published[l->dest]++;
      if (++l->step == 1) sipub_pub_publish(l->pub, NULL, 0);
      else if (l->step == 2) sipub_pub_publish(l->pub, "B2", 2);
      else sipub_pub_unpublish(l->pub);
      break;
    case SIPUB_EV_FAILED:
      r->failed[l->dest]++;
      if (strcmp(ev.cause, SIPUB_CAUSE_CONNECTION_ERROR) == 0) r->conn_errors[l->dest]++;
      else r->other_causes++;
      break;
    case SIPUB_EV_UNPUBLISHED:
      r->done++;
      if (r->started < r->n) start_one(r);
      break;
    default:
      break;
    }
  }
  if (r->done == r->n && r->drv) finish(r);
  else if (r->drv) sipub_uv_sync(r->drv);
}

static void on_log(void *ud, const sipub_compositor_outcome *o)
{
  run *r = ud;
  if (o->retransmission) r->retransmissions++;
  else if (o->number > 0) r->received++;
}

static void on_guard(uv_timer_t *t)
{
  run *r = t->data;
  r->timed_out = 1;
  finish(r);
}

static void close_walk(uv_handle_t *h, void *arg)
{
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* Runs n lives, w at a time, spread over ndest compositors, under the fault mode m. */
static run *run_lives(int m, int ndest, int n, int w)
{
  run *r = calloc(1, sizeof *r);
  int err = 0;
  r->ndest = ndest;
  r->n = n;
  r->w = w;
  r->lives = calloc((size_t)n, sizeof *r->lives);
  uv_loop_init(&r->loop);
  for (int i = 0; i < ndest; i++) {
    sipub_compositor_opts co = { .host = "127.0.0.1" };
    r->comp[i] = sipub_compositor_new(&r->loop, &co, &err);
    if (!r->comp[i]) {
      fprintf(stderr, "compositor: %s\n", uv_strerror(err));
      exit(2);
    }
    sipub_compositor_set_log(r->comp[i], on_log, r);
  }
  r->drv = sipub_uv_new(&r->loop, "127.0.0.1", 0, &err);
  if (!r->drv) {
    fprintf(stderr, "driver: %s\n", uv_strerror(err));
    exit(2);
  }
  sipub_config cfg = { .aor = "sip:faults@127.0.0.1", .via_host = "127.0.0.1",
                       .via_port = sipub_uv_port(r->drv), .seed = 42 };
  r->ua = sipub_ua_new(&cfg, sipub_uv_io(r->drv), sipub_uv_now(r->drv));
  if (!r->ua || sipub_uv_start(r->drv, r->ua, on_after, r) != 0) exit(2);
  uv_timer_init(&r->loop, &r->guard);
  r->guard.data = r;
  uv_timer_start(&r->guard, on_guard, 10000, 0);

  mode = m;
  refuse_port = ndest > 1 ? sipub_compositor_port(r->comp[1]) : -1;
  refusals_left = 1;
  calls = sent = 0;
  for (int i = 0; i < w && i < n; i++) start_one(r);
  on_after(r);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  mode = PASS;
  uv_close((uv_handle_t *)&r->guard, NULL);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  uv_walk(&r->loop, close_walk, NULL);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  uv_loop_close(&r->loop);
  sipub_ua_free(r->ua);
  return r;
}

static int failures;

static void check(const char *phase, int ok, const char *what)
{
  if (!ok) {
    printf("FAIL %s: %s\n", phase, what);
    failures++;
  }
}

static void report(const char *phase, const run *r)
{
  printf("%s: lives %d/%d, published %d+%d, failed %d+%d (Connection Error %d+%d, other %d), "
         "PUBLISH received %lu, retransmissions %lu, sendmmsg calls %lu for %lu datagrams\n",
         phase, r->done, r->n, r->published[0], r->published[1], r->failed[0], r->failed[1],
         r->conn_errors[0], r->conn_errors[1], r->other_causes, r->received, r->retransmissions,
         calls, sent);
  check(phase, !r->timed_out, "every life ends within 10 s");
  check(phase, r->done == r->n, "every life ends with unpublished");
}

static void free_run(run *r)
{
  free(r->lives);
  free(r);
}

int main(void)
{
  const int n = 300, w = 64;
  run *r;

  r = run_lives(PASS, 1, n, w);
  report("batched", r);
  check("batched", r->failed[0] == 0 && r->published[0] == 3 * n, "no failure, 3 published per life");
  check("batched", r->received == 4u * n && r->retransmissions == 0, "4 PUBLISH per life, none again");
  check("batched", calls > 0 && sent > calls, "several datagrams per sendmmsg");
  check("batched", sent + w == 4u * n, "every request made inside a callback batched");
  free_run(r);

  r = run_lives(EAGAIN_EVERY_3RD, 1, n, w);
  report("EAGAIN", r);
  check("EAGAIN", r->failed[0] == 0 && r->published[0] == 3 * n, "no failure, 3 published per life");
  check("EAGAIN", r->received == 4u * n && r->retransmissions == 0, "nothing lost: no retransmission");
  free_run(r);

  r = run_lives(SHORT, 1, n, w);
  report("short", r);
  check("short", r->failed[0] == 0 && r->published[0] == 3 * n, "no failure, 3 published per life");
  check("short", r->received == 4u * n && r->retransmissions == 0, "nothing lost: no retransmission");
  check("short", calls == sent, "one datagram per call");
  free_run(r);

  r = run_lives(REFUSE_PORT, 2, n, w);
  report("refused", r);
  check("refused", refusals_left == 0, "a queued datagram was refused");
  check("refused", r->failed[0] == 0 && r->published[0] == 3 * (n / 2), "the other dest unaffected");
  check("refused", r->conn_errors[1] > 0 && r->conn_errors[1] == r->failed[1] && r->other_causes == 0,
        "the refused dest's transactions fail with Connection Error, no time-out");
  check("refused", r->retransmissions == 0, "nothing retransmitted");
  free_run(r);

  printf("%s\n", failures ? "driver_faults: FAILED" : "driver_faults: ok");
  return failures ? 1 : 0;
}
