/* fuzz_scan.c — libFuzzer differential target: msg_parse_response (the scan.c fast path, then
 * libosip2) against libosip2 alone on the same datagram; any difference in outcome or field traps. */
#include "msg.h"
#include "sipub.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The input is one datagram, as sipub_ua_receive gets it. The property: whenever the scanner
 * accepts a message, libosip2 accepts it too and yields the same fields, so msg_parse_response
 * behaves exactly as msg_parse_response_osip on every input. Built with -DFUZZ_DEBUG, the
 * differing field is printed; FUZZ_SCAN_STATS=1 in the environment prints at exit how many
 * inputs libosip2 accepted and how many of them the fast path took. */
#ifdef FUZZ_DEBUG
#define FAIL(what) (fprintf(stderr, "fast path differs from libosip2: %s\n", what), __builtin_trap())
#else
#define FAIL(what) __builtin_trap()
#endif

static unsigned long n_inputs, n_osip_ok, n_fast;

static void stats(void)
{
  fprintf(stderr, "fuzz_scan: %lu inputs, %lu read by libosip2, %lu of them by the fast path\n",
          n_inputs, n_osip_ok, n_fast);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  sipub_global_init(); /* libosip2's parser tables */
  const char *s = getenv("FUZZ_SCAN_STATS");
  if (s && *s == '1') atexit(stats);
  return 0;
}

static int str_differs(const char *a, const char *b)
{
  if (!a || !b) return a != b;
  return strcmp(a, b) != 0;
}

/* Traps unless a and b carry the same fields. */
static void same(const msg_response *a, const msg_response *b)
{
  if (a->status != b->status) FAIL("status");
  if (!a->reason || !b->reason || strcmp(a->reason, b->reason) != 0) FAIL("reason");
  if (a->branch != b->branch) FAIL("branch");
  if (a->branch_ours != b->branch_ours) FAIL("branch_ours");
  if (a->cseq != b->cseq) FAIL("cseq");
  if (a->cseq_publish != b->cseq_publish) FAIL("cseq_publish");
  if (!a->call_id || !b->call_id || strcmp(a->call_id, b->call_id) != 0) FAIL("call_id");
  if (str_differs(a->etag, b->etag)) FAIL("etag");
  if (a->expires != b->expires) FAIL("expires");
  if (a->min_expires != b->min_expires) FAIL("min_expires");
  if (a->retry_after != b->retry_after) FAIL("retry_after");
  if (a->len != b->len) FAIL("len");
  if (a->body_off != b->body_off) FAIL("body_off");
  if (a->body_len != b->body_len) FAIL("body_len");
  if (a->nchallenges != b->nchallenges) FAIL("nchallenges");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *d = (const char *)data;
  msg_response ref, got, fast;
  n_inputs++;

  int rc_ref = msg_parse_response_osip(d, size, &ref);
  int rc_got = msg_parse_response(d, size, &got);
  if (rc_ref != rc_got) FAIL(rc_ref ? "accepted what libosip2 drops" : "dropped what libosip2 reads");
  /* The scanner on its own: when it accepts, libosip2 reads the datagram, with these fields
   * and no challenge. */
  memset(&fast, 0, sizeof fast);
  int took = msg_scan_response(d, size, &fast);
  if (took && rc_ref != 0) FAIL("scanner accepts what libosip2 drops");
  if (rc_ref == 0) {
    n_osip_ok++;
    same(&ref, &got);
    if (took) {
      n_fast++;
      same(&ref, &fast);
    }
#ifdef FUZZ_DEBUG
    fprintf(stderr, "%s: %d %s\n", took ? "fast path" : "libosip2 only", ref.status, ref.reason);
#endif
  }
  msg_response_clear(&fast);
  msg_response_clear(&ref);
  msg_response_clear(&got);
  return 0;
}
