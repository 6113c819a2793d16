/* mem_core.c — bytes the C core keeps per idle published publication: N publications
 * published over the in-memory transport, Timer K run out, heap use measured before/after. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "countalloc.h"
#include "inmem.h"
#include "sipub.h"

#define BODY1 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
  "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:bench@127.0.0.1\">\n" \
  "<tuple id=\"t1\"><status><basic>open</basic></status></tuple>\n</presence>\n"

int main(int argc, char **argv)
{
  unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000;
  static inmem net;
  uint64_t now = 1000;
  sipub_config cfg = { .aor = "sip:bench@127.0.0.1", .proxy_host = "127.0.0.1", .proxy_port = 5070,
                       .via_host = "127.0.0.1", .via_port = 5099, .user_agent = "mem-core",
                       .seed = 7 };
  sipub_io io = { &net, inmem_send, NULL };
  sipub_global_init();
  sipub_ua *ua = sipub_ua_new(&cfg, &io, now);
  if (!ua) return 1;
  sipub_pub **pubs = calloc(n, sizeof *pubs); /* the caller's own array: not counted */
  if (!pubs) return 1;

  struct mallinfo2 m0 = mallinfo2();
  ca_counters c0 = ca_count;
  unsigned long published = 0;
  for (unsigned long i = 0; i < n; i++) {
    char target[64];
    snprintf(target, sizeof target, "sip:u%lu@127.0.0.1", i);
    sipub_pub_config pc = { .target = target, .event = "presence",
                            .content_type = "application/pidf+xml", .expires = 3600,
                            .unpublish_on_close = 1 };
    int err = 0;
    pubs[i] = sipub_pub_new(ua, &pc, &err, NULL);
    if (!pubs[i]) return 1;
    sipub_pub_publish(pubs[i], BODY1, sizeof BODY1 - 1);
    size_t len;
    const char *r = inmem_reply(&net, 3600, &len);
    sipub_ua_receive(ua, now, NULL, r, len);
    sipub_event ev;
    while (sipub_ua_poll(ua, &ev)) published += ev.kind == SIPUB_EV_PUBLISHED;
  }
  now += 6000; /* Timer K (5 s) of every completed transaction fires: only publications stay */
  sipub_ua_tick(ua, now);
  struct mallinfo2 m1 = mallinfo2();
  ca_counters c1 = ca_count;
  double per_mi = (double)((long long)m1.uordblks - (long long)m0.uordblks) / (double)n;
  double per_live = (double)(c1.live - c0.live) / (double)n;
  double blocks = (double)((long long)(c1.allocs - c0.allocs) - (long long)(c1.frees - c0.frees)) / (double)n;
  printf("RESULT mem_core n=%lu published=%lu count=%zu body=%zu per_pub_heap=%.1f per_pub_usable=%.1f "
         "blocks_per_pub=%.2f\n",
         n, published, sipub_ua_count(ua), sizeof BODY1 - 1, per_mi, per_live, blocks);
  sipub_ua_free(ua);
  free(pubs);
  return published == n ? 0 : 1;
}
