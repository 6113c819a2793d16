/* core_roundtrip.c — cost of PUBLISH round trips in the C core alone (build, parse, match,
 * state machine, timers, events) on the in-memory transport: for callgrind, or counting mallocs.
 * Modes: refresh K, life K, scale K SECS (K publications refreshing on the virtual clock);
 * traced-refresh K: refresh K with a message trace that only counts (the trace's own cost). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inmem.h"
#include "sipub.h"
#ifdef COUNT_ALLOC
#include "countalloc.h"
#endif

#define BODY1 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
  "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:bench@127.0.0.1\">\n" \
  "<tuple id=\"t1\"><status><basic>open</basic></status></tuple>\n</presence>\n"
#define BODY2 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
  "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:bench@127.0.0.1\">\n" \
  "<tuple id=\"t1\"><status><basic>closed</basic></status></tuple>\n</presence>\n"

static inmem net;
static sipub_ua *ua;
static uint64_t now = 1000;
static unsigned long events, published, failures;

/* Allocations per phase of a round trip (COUNT_ALLOC builds): request (build and send),
 * response (parse, match, state machine), events (poll), timers (tick). */
#ifdef COUNT_ALLOC
enum { PH_REQUEST, PH_RESPONSE, PH_EVENTS, PH_TIMERS, PH_N };
static unsigned long long phase_allocs[PH_N];
static unsigned long long phase_mark;
#define PHASE_BEGIN() (phase_mark = ca_count.allocs)
#define PHASE_END(ph) (phase_allocs[ph] += ca_count.allocs - phase_mark)
#else
#define PHASE_BEGIN() ((void)0)
#define PHASE_END(ph) ((void)0)
#endif

/* Answers the request just sent, delivers the response and drains the events. */
static void answer(void)
{
  size_t len;
  const char *r = inmem_reply(&net, 3600, &len);
  PHASE_BEGIN();
  sipub_ua_receive(ua, now, NULL, r, len);
  PHASE_END(PH_RESPONSE);
  sipub_event ev;
  PHASE_BEGIN();
  while (sipub_ua_poll(ua, &ev)) {
    events++;
    if (ev.kind == SIPUB_EV_PUBLISHED) published++;
    if (ev.kind == SIPUB_EV_FAILED) failures++;
  }
  PHASE_END(PH_EVENTS);
}

static sipub_pub *new_pub(unsigned long i)
{
  char target[64];
  snprintf(target, sizeof target, "sip:u%lu@127.0.0.1", i);
  sipub_pub_config pc = { .target = target, .event = "presence",
                          .content_type = "application/pidf+xml", .expires = 3600,
                          .unpublish_on_close = 1 };
  int err = 0;
  sipub_pub *p = sipub_pub_new(ua, &pc, &err, NULL);
  if (!p) {
    fprintf(stderr, "core_roundtrip: sipub_pub_new failed (%d)\n", err);
    exit(1);
  }
  return p;
}

/* K refreshes of one publication: one PUBLISH round trip each. */
__attribute__((noinline)) static unsigned long run_refresh(sipub_pub *p, unsigned long k)
{
  unsigned long tx = 0;
  for (unsigned long i = 0; i < k; i++) {
    now += 10; /* Timer K of earlier transactions expires as time goes by */
    PHASE_BEGIN();
    sipub_ua_tick(ua, now);
    PHASE_END(PH_TIMERS);
    sipub_ua_set_time(ua, now);
    PHASE_BEGIN();
    sipub_pub_publish(p, NULL, 0);
    PHASE_END(PH_REQUEST);
    answer();
    tx++;
  }
  return tx;
}

/* K whole lives: new publication, initial, refresh, modify, remove, release. */
__attribute__((noinline)) static unsigned long run_life(unsigned long k)
{
  unsigned long tx = 0;
  for (unsigned long i = 0; i < k; i++) {
    now += 10;
    sipub_ua_tick(ua, now);
    sipub_ua_set_time(ua, now);
    sipub_pub *p = new_pub(i);
    sipub_pub_publish(p, BODY1, sizeof BODY1 - 1);
    answer();
    sipub_pub_publish(p, NULL, 0);
    answer();
    sipub_pub_publish(p, BODY2, sizeof BODY2 - 1);
    answer();
    sipub_pub_unpublish(p);
    answer();
    sipub_pub_close(p);
    sipub_pub_release(p);
    tx += 4;
  }
  return tx;
}

/* ---- scale: K publications, granted 10..30 s, refreshing by themselves on the virtual clock */

#define SCALE_MAX_SENT 65536
static const char *scale_req[SCALE_MAX_SENT];
static size_t scale_len[SCALE_MAX_SENT], scale_n;
static unsigned long scale_refreshes, scale_late;

static int scale_send(void *ud, const sipub_dest *d, const char *data, size_t len)
{
  (void)ud;
  (void)d;
  if (scale_n == SCALE_MAX_SENT) return -1;
  scale_req[scale_n] = data; /* alive until its final response */
  scale_len[scale_n++] = len;
  return 0;
}

/* Answers every queued request with a 200 granting what it asked for (not measured). */
__attribute__((noinline)) static void scale_answer_all(void)
{
  for (size_t i = 0; i < scale_n; i++) {
    net.req = scale_req[i];
    net.req_len = scale_len[i];
    const char *e = strstr(net.req, "\r\nExpires: ");
    int expires = e ? atoi(e + 11) : 3600;
    size_t len;
    const char *r = inmem_reply(&net, expires, &len);
    if (strstr(net.req, "\r\nSIP-If-Match: ")) scale_refreshes++;
    sipub_ua_receive(ua, now, NULL, r, len);
  }
  scale_n = 0;
}

/* secs virtual seconds in 10 ms steps: timers fire, refreshes go out and are answered. */
__attribute__((noinline)) static unsigned long run_scale(unsigned long secs)
{
  sipub_event ev;
  for (unsigned long step = 0; step < secs * 100; step++) {
    now += 10;
    sipub_ua_tick(ua, now);
    scale_answer_all();
    while (sipub_ua_poll(ua, &ev)) {
      events++;
      if (ev.kind == SIPUB_EV_FAILED) failures++;
      if (ev.kind == SIPUB_EV_PROGRESS) scale_late++;
    }
  }
  return scale_refreshes;
}

static int scale_main(unsigned long k, unsigned long secs)
{
  sipub_config cfg = { .aor = "sip:bench@127.0.0.1", .proxy_host = "127.0.0.1", .proxy_port = 5070,
                       .via_host = "127.0.0.1", .via_port = 5099, .user_agent = "core-roundtrip",
                       .seed = 42 };
  sipub_io io = { &net, scale_send, NULL };
  ua = sipub_ua_new(&cfg, &io, now);
  if (!ua) return 1;
  for (unsigned long i = 0; i < k; i++) {
    char target[64];
    snprintf(target, sizeof target, "sip:s%lu@127.0.0.1", i);
    sipub_pub_config pc = { .target = target, .event = "presence",
                            .content_type = "application/pidf+xml", .expires = (int)(10 + i % 21),
                            .unpublish_on_close = 1 };
    sipub_pub *p = sipub_pub_new(ua, &pc, NULL, NULL);
    if (!p || sipub_pub_publish(p, BODY1, sizeof BODY1 - 1) != SIPUB_OK) return 1;
    if (scale_n == SCALE_MAX_SENT) scale_answer_all();
  }
  scale_answer_all();
  while (sipub_ua_poll(ua, &(sipub_event){ 0 })) {}
  unsigned long refreshes = run_scale(secs);
  printf("RESULT core_scale pubs=%lu secs=%lu refreshes=%lu per_sec=%.0f failures=%lu progress=%lu\n",
         k, secs, refreshes, (double)refreshes / (double)secs, failures, scale_late);
  sipub_ua_free(ua);
  return failures ? 1 : 0;
}

static unsigned long traced_bytes, traced_msgs;

static void count_trace(void *ud, const sipub_trace *t)
{
  (void)ud;
  traced_msgs++;
  traced_bytes += t->len;
}

int main(int argc, char **argv)
{
  const char *mode = argc > 1 ? argv[1] : "refresh";
  unsigned long k = argc > 2 ? strtoul(argv[2], NULL, 10) : 10000;
  if (strcmp(mode, "scale") == 0) return scale_main(k, argc > 3 ? strtoul(argv[3], NULL, 10) : 60);
  sipub_config cfg = { .aor = "sip:bench@127.0.0.1", .proxy_host = "127.0.0.1", .proxy_port = 5070,
                       .via_host = "127.0.0.1", .via_port = 5099, .user_agent = "core-roundtrip",
                       .seed = 42 };
  if (strcmp(mode, "traced-refresh") == 0) cfg.trace = count_trace;
  sipub_io io = { &net, inmem_send, NULL };
  ua = sipub_ua_new(&cfg, &io, now);
  if (!ua) return 1;

  /* Warm-up, outside the measured function: one publication published. */
  sipub_pub *p = new_pub(999999);
  sipub_pub_publish(p, BODY1, sizeof BODY1 - 1);
  answer();
  size_t req_len = net.req_len;

#ifdef COUNT_ALLOC
  ca_counters c0 = ca_count;
#endif
  unsigned long tx = strcmp(mode, "life") == 0 ? run_life(k) : run_refresh(p, k);
#ifdef COUNT_ALLOC
  ca_counters c1 = ca_count;
  (void)req_len;
  printf("RESULT core_allocs mode=%s tx=%lu allocs_per_tx=%.2f reallocs_per_tx=%.2f frees_per_tx=%.2f "
         "request=%.2f response=%.2f events=%.2f timers=%.2f\n",
         mode, tx, (double)(c1.allocs - c0.allocs) / (double)tx,
         (double)(c1.reallocs - c0.reallocs) / (double)tx, (double)(c1.frees - c0.frees) / (double)tx,
         (double)phase_allocs[PH_REQUEST] / (double)tx, (double)phase_allocs[PH_RESPONSE] / (double)tx,
         (double)phase_allocs[PH_EVENTS] / (double)tx, (double)phase_allocs[PH_TIMERS] / (double)tx);
#else
  printf("RESULT core_rt mode=%s tx=%lu events=%lu published=%lu failures=%lu initial_req_bytes=%zu "
         "last_req_bytes=%zu resp_bytes=%zu\n",
         mode, tx, events, published, failures, req_len, net.req_len, net.resp_len);
  if (traced_msgs) printf("RESULT core_trace messages=%lu bytes=%lu\n", traced_msgs, traced_bytes);
#endif
  sipub_ua_free(ua);
  return failures ? 1 : 0;
}
