/* hostile.c — CPU per hostile response datagram handed to the core (issue 13 #3): N datagrams
 * of L header lines with a Content-Type, unmatched (a foreign branch) and matched (the branch,
 * CSeq and Call-ID of the transaction in flight); prints the worst and the mean per datagram.
 * Usage: hostile [N [LINES]] (defaults 10, 8000). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inmem.h" /* its responder is not used here */
#include "sipub.h"

static double cpu_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Copies the value of header `name` ("Via:") of the request into out (up to the CR). */
static void header_of(const inmem *m, const char *name, char *out, size_t cap)
{
  const char *p = strstr(m->req, name);
  if (!p) { out[0] = '\0'; return; }
  p += strlen(name);
  while (*p == ' ') p++;
  size_t n = strcspn(p, "\r\n");
  if (n >= cap) n = cap - 1;
  memcpy(out, p, n);
  out[n] = '\0';
}

/* A 200 to the request in m with `lines` extra header lines and a Content-Type; with a
 * foreign branch when !matched; the extra lines before Via when late (the pre-match then
 * reads them all). Returns a malloc'd datagram. */
static char *make(const inmem *m, unsigned lines, int matched, int late, size_t *len)
{
  char via[512], from[512], to[512], cid[256], cseq[64];
  header_of(m, "\r\nVia:", via, sizeof via);
  header_of(m, "\r\nFrom:", from, sizeof from);
  header_of(m, "\r\nTo:", to, sizeof to);
  header_of(m, "\r\nCall-ID:", cid, sizeof cid);
  header_of(m, "\r\nCSeq:", cseq, sizeof cseq);
  if (!matched) {
    char *b = strstr(via, "branch=z9hG4bK");
    if (b) memcpy(b + 14, "0123456789abcdef", 16);
  }
  size_t cap = 4096 + (size_t)lines * 8;
  char *d = malloc(cap);
  size_t at = (size_t)sprintf(d, "SIP/2.0 200 OK\r\n");
  for (unsigned i = 0; late && i < lines; i++) at += (size_t)sprintf(d + at, "X:%u\r\n", i % 100);
  at += (size_t)sprintf(d + at, "Via: %s\r\nFrom: %s\r\nTo: %s;tag=x\r\nCall-ID: %s\r\n"
                        "CSeq: %s\r\nSIP-ETag: e1\r\nContent-Type: text/plain\r\n", via, from, to, cid, cseq);
  for (unsigned i = 0; !late && i < lines; i++) at += (size_t)sprintf(d + at, "X:%u\r\n", i % 100);
  at += (size_t)sprintf(d + at, "Content-Length: 0\r\n\r\n");
  *len = at;
  return d;
}

int main(int argc, char **argv)
{
  (void)inmem_reply;
  int count = argc > 1 ? atoi(argv[1]) : 10;
  unsigned lines = argc > 2 ? (unsigned)atoi(argv[2]) : 8000;
  static inmem net;
  sipub_io io = { &net, inmem_send, NULL };
  sipub_config cfg = { .aor = "sip:bench@127.0.0.1", .proxy_host = "127.0.0.1", .proxy_port = 5060,
                       .via_host = "127.0.0.1", .via_port = 5062, .seed = 7 };
  uint64_t now = 1000;
  sipub_ua *ua = sipub_ua_new(&cfg, &io, now);
  sipub_pub_config pc = { .target = "sip:u@127.0.0.1", .event = "presence",
                          .content_type = "text/plain", .expires = 3600 };
  sipub_pub *p = sipub_pub_new(ua, &pc, NULL, NULL);
  if (!ua || !p || sipub_pub_publish(p, "x", 1) != 0 || !net.req) {
    fprintf(stderr, "hostile: setup failed\n");
    return 1;
  }
  for (int k = 0; k < 4; k++) {
    int matched = k & 1, late = k >> 1;
    size_t len;
    char *d = make(&net, lines, matched, late, &len);
    double worst = 0, total = 0;
    for (int i = 0; i < count; i++) {
      double t0 = cpu_now();
      sipub_ua_receive(ua, now, NULL, d, len);
      double dt = cpu_now() - t0;
      total += dt;
      if (dt > worst) worst = dt;
    }
    sipub_event ev;
    int published = 0;
    while (sipub_ua_poll(ua, &ev)) published += ev.kind == SIPUB_EV_PUBLISHED;
    printf("hostile %s%s: %d datagrams of %u header lines (%zu bytes): worst %.3f ms, mean %.3f ms CPU%s\n",
           matched ? "matched" : "unmatched", late ? ", Via last" : "", count, lines, len, worst * 1e3, total / count * 1e3,
           published ? " (accepted)" : "");
    free(d);
  }
  sipub_ua_free(ua);
  return 0;
}
