/* fuzz_stream.c — libFuzzer target: the core's stream flows (flow.c over frame.c). Responses
 * cut at input-chosen points, keep-alives between, must arrive as whole datagrams would. */
#include "sipub.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Input: byte 0 picks the responses' shapes (compact Content-Length, bodies); the next bytes
 * are read sizes (1..64, cycling) for feeding the framed stream, and keep-alive counts; after
 * a 0xFF byte, the rest is raw bytes fed to another flow in reads of input-chosen sizes.
 * Properties: the well-formed stream gives each publication exactly one `published`, with
 * its body, and never a framing error; raw bytes never crash or leak, and a flow that
 * returned <0 starts afresh. */
#define FAIL() __builtin_trap()
#define NPUBS 4

static char *reqs[NPUBS];
static int nreq;

static int fake_send(void *ud, const sipub_dest *d, const char *data, size_t len)
{
  (void)ud;
  if (d->tp != SIPUB_TP_TCP) FAIL(); /* a stream flow: no retransmission either */
  if (nreq == NPUBS) FAIL();
  reqs[nreq] = malloc(len + 1);
  memcpy(reqs[nreq], data, len);
  reqs[nreq++][len] = '\0';
  return 0;
}

static void header(const char *req, const char *name, char *out, size_t n)
{
  char key[40];
  snprintf(key, sizeof key, "\r\n%s: ", name);
  const char *p = strstr(req, key);
  out[0] = '\0';
  if (!p) FAIL();
  p += strlen(key);
  snprintf(out, n, "%.*s", (int)strcspn(p, "\r"), p);
}

/* A 200 to request i, with body_len bytes of body, appended to *s. */
static void append_ok(char **s, size_t *len, int i, size_t body_len, int compact)
{
  char via[256], from[256], to[256], cid[128], cseq[64], head[1400];
  header(reqs[i], "Via", via, sizeof via);
  header(reqs[i], "From", from, sizeof from);
  header(reqs[i], "To", to, sizeof to);
  header(reqs[i], "Call-ID", cid, sizeof cid);
  header(reqs[i], "CSeq", cseq, sizeof cseq);
  int n = snprintf(head, sizeof head,
                   "SIP/2.0 200 OK\r\nVia: %s\r\nFrom: %s\r\nTo: %s;tag=x\r\nCall-ID: %s\r\n"
                   "CSeq: %s\r\nSIP-ETag: e%d\r\nExpires: 60\r\n%s%s %zu\r\n\r\n", via, from,
                   to, cid, cseq, i, body_len ? "Content-Type: text/plain\r\n" : "",
                   compact ? "l:" : "Content-Length:", body_len);
  *s = realloc(*s, *len + (size_t)n + body_len);
  memcpy(*s + *len, head, (size_t)n);
  memset(*s + *len + n, 'b', body_len);
  *len += (size_t)n + body_len;
}

/* The message trace is on: every record's bytes and note are read (an overread shows under
 * the sanitizers) and its fields are checked. */
static volatile unsigned trace_sum;
static void fuzz_trace(void *ud, const sipub_trace *t)
{
  (void)ud;
  unsigned sum = 0;
  for (size_t i = 0; i < t->len; i++) sum += (unsigned char)t->data[i];
  if (t->note) sum += (unsigned)strlen(t->note);
  if (t->flow) sum += (unsigned)strlen(t->flow->host);
  if ((t->direction == SIPUB_TRACE_DROPPED) != (t->drop != SIPUB_DROP_NONE)) abort();
  if (t->drop < 0 || t->drop >= SIPUB_DROP_COUNT || !*sipub_drop_name(t->drop) != !t->drop) abort();
  trace_sum += sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
  if (size < 1) return 0;
  sipub_config cfg = { .aor = "sip:f@example.test", .via_host = "127.0.0.1", .seed = 1,
                       .transport = SIPUB_TP_TCP, .trace = fuzz_trace };
  sipub_io io = { NULL, fake_send, NULL };
  sipub_ua *ua = sipub_ua_new(&cfg, &io, 0);
  sipub_pub *pubs[NPUBS];
  nreq = 0;
  for (int i = 0; i < NPUBS; i++) {
    char target[64];
    snprintf(target, sizeof target, "sip:u%d@127.0.0.1:5070", i);
    sipub_pub_config pc = { .target = target, .event = "presence", .expires = 60 };
    pubs[i] = sipub_pub_new(ua, &pc, NULL, NULL);
    sipub_pub_publish(pubs[i], "s", 1);
  }
  if (nreq != NPUBS) FAIL();

  /* The framed stream: four responses with keep-alives around them. */
  size_t pos = 1, end = size, slen = 0, bodies[NPUBS];
  const uint8_t *sep = memchr(in, 0xFF, size);
  if (sep) end = (size_t)(sep - in);
  char *s = NULL;
  for (int i = 0; i < NPUBS; i++) {
    size_t crlf = pos < end ? in[pos++] % 3 : 0;
    s = realloc(s, slen + 4);
    for (size_t k = 0; k < crlf; k++) memcpy(s + slen, "\r\n", 2), slen += 2;
    bodies[i] = (in[0] >> i & 1) ? (size_t)(i + 1) * 700 : 0;
    append_ok(&s, &slen, i, bodies[i], in[0] >> (4 + i) & 1);
  }
  static const sipub_dest tcp1 = { "127.0.0.1", 5070, SIPUB_TP_TCP };
  for (size_t off = 0; off < slen;) {
    size_t n = pos < end ? (size_t)(in[pos++] % 64) + 1 : 64;
    if (n > slen - off) n = slen - off;
    if (sipub_ua_receive(ua, 1, &tcp1, s + off, n) != 0) FAIL();
    off += n;
  }
  free(s);
  int published[NPUBS] = { 0 };
  sipub_event ev;
  while (sipub_ua_poll(ua, &ev)) {
    int i = 0;
    while (i < NPUBS && pubs[i] != ev.pub) i++;
    if (i == NPUBS || ev.kind != SIPUB_EV_PUBLISHED || !ev.response) FAIL();
    if (ev.response->body_len != bodies[i]) FAIL();
    published[i]++;
  }
  for (int i = 0; i < NPUBS; i++)
    if (published[i] != 1) FAIL();

  /* Raw bytes into another flow. */
  if (sep) {
    static const sipub_dest tcp2 = { "127.0.0.2", 5070, SIPUB_TP_TCP };
    const uint8_t *r = sep + 1, *rend = in + size;
    while (r < rend) {
      size_t n = (size_t)(*r % 128) + 1;
      r++;
      if (n > (size_t)(rend - r)) n = (size_t)(rend - r);
      sipub_ua_receive(ua, 2, &tcp2, (const char *)r, n);
      r += n;
      while (sipub_ua_poll(ua, &ev)) continue;
    }
  }
  sipub_ua_free(ua);
  for (int i = 0; i < nreq; i++) free(reqs[i]);
  return 0;
}
