/* fuzz_response.c — libFuzzer target: datagrams, clock jumps and user calls fed to a sipub_ua
 * whose publications sit in every protocol state; checks event order and frees everything. */
#include "sipub.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Input format (see fuzz/README.md): chunks separated by the byte 0xFF. The first byte of a
 * chunk picks what it is (its value modulo 4):
 *   'T' (0) template: the next byte picks a recorded request (0 = the newest), the rest is a
 *           response in which $V $B $F $T $I $C $N $L $$ are replaced from that request;
 *   'U' (1) user call: next bytes = publication, action, then the body;
 *   'R' (2) raw datagram: the rest, as is;
 *   'K' (3) clock: the next three bytes are a jump in ms (big-endian), then tick. */
#ifdef FUZZ_DEBUG
#define FAIL() (fprintf(stderr, "invariant broken at %s:%d\n", __FILE__, __LINE__), __builtin_trap())
#else
#define FAIL() __builtin_trap()
#endif

#define SEP 0xFF
#define NPUBS 12
#define NREQ 64
#define MAXREQ 8192

static struct {
  char *req[NREQ]; /* the last requests sent, a ring */
  size_t len[NREQ];
  size_t n, head;  /* count, index of the next slot */
  int fail_next;   /* the next sends fail */
} net;

static int fake_send(void *ud, const sipub_dest *d, const char *data, size_t len)
{
  (void)ud;
  if (!d || !d->host || !data || !len) FAIL();
  if (net.fail_next > 0) {
    net.fail_next--;
    return -1;
  }
  size_t slot = net.head;
  free(net.req[slot]);
  net.req[slot] = malloc(len + 1);
  if (!net.req[slot]) abort();
  memcpy(net.req[slot], data, len);
  net.req[slot][len] = '\0';
  net.len[slot] = len;
#ifdef FUZZ_DEBUG
  fprintf(stderr, "  sent %.*s\n", (int)(strstr(data, "\r\n") - data), data);
#endif
  net.head = (net.head + 1) % NREQ;
  if (net.n < NREQ) net.n++;
  return 0;
}

static void net_reset(void)
{
  for (size_t i = 0; i < NREQ; i++) {
    free(net.req[i]);
    net.req[i] = NULL;
  }
  memset(&net, 0, sizeof net);
}

/* The k-th newest recorded request (k modulo the count), or NULL. */
static const char *recorded(size_t k)
{
  if (!net.n) return NULL;
  k %= net.n;
  return net.req[(net.head + NREQ - 1 - k) % NREQ];
}

/* ---- a growable output buffer ------------------------------------------------------------ */

typedef struct buf {
  char *p;
  size_t n, cap;
} buf;

static void put(buf *b, const char *s, size_t n)
{
  if (b->n + n + 1 > b->cap) {
    size_t cap = (b->n + n + 1) * 2;
    char *p = realloc(b->p, cap);
    if (!p) abort();
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

/* The value of the first header `name` (long form) of a request, up to CRLF. */
static int header_value(const char *req, const char *name, const char **v, size_t *n)
{
  size_t nl = strlen(name);
  for (const char *l = strstr(req, "\r\n"); l; l = strstr(l, "\r\n")) {
    l += 2;
    if (l[0] == '\r') return 0; /* end of the header section */
    if (strncmp(l, name, nl) == 0 && l[nl] == ':') {
      const char *s = l + nl + 1;
      while (*s == ' ') s++;
      const char *e = strstr(s, "\r\n");
      if (!e) return 0;
      *v = s;
      *n = (size_t)(e - s);
      return 1;
    }
  }
  return 0;
}

/* Expands a response template from request req: $V Via, $B branch, $F From, $T To, $I Call-ID,
 * $C CSeq, $N CSeq number, $L the length of what follows the first blank line, $$ '$'. */
static void expand(buf *out, const char *tpl, size_t n, const char *req)
{
  size_t lpos = (size_t)-1;
  for (size_t i = 0; i < n; i++) {
    if (tpl[i] != '$' || i + 1 == n) {
      put(out, tpl + i, 1);
      continue;
    }
    char c = tpl[++i];
    const char *v = NULL;
    size_t vn = 0;
    switch (c) {
    case 'V': header_value(req, "Via", &v, &vn); break;
    case 'F': header_value(req, "From", &v, &vn); break;
    case 'T': header_value(req, "To", &v, &vn); break;
    case 'I': header_value(req, "Call-ID", &v, &vn); break;
    case 'C': header_value(req, "CSeq", &v, &vn); break;
    case 'N':
      if (header_value(req, "CSeq", &v, &vn)) {
        size_t k = 0;
        while (k < vn && v[k] != ' ') k++;
        vn = k;
      }
      break;
    case 'B':
      if (header_value(req, "Via", &v, &vn)) {
        const char *b = memmem(v, vn, "branch=", 7);
        if (b) {
          size_t k = 7;
          while (b + k < v + vn && b[k] != ';' && b[k] != ',') k++;
          vn = k - 7;
          v = b + 7;
        } else {
          v = NULL;
        }
      }
      break;
    case 'L':
      lpos = out->n; /* filled in below */
      put(out, "$L", 2);
      continue;
    case '$': v = "$"; vn = 1; break;
    default: put(out, tpl + i - 1, 2); continue;
    }
    if (v) put(out, v, vn);
  }
  if (lpos != (size_t)-1) {
    /* $L: the number of bytes after the first blank line (not counting the placeholder
     * itself when it sits there). */
    const char *hdr_end = memmem(out->p, out->n, "\r\n\r\n", 4);
    size_t body_at = hdr_end ? (size_t)(hdr_end - out->p) + 4 : out->n;
    size_t blen = out->n - body_at - (lpos >= body_at ? 2 : 0);
    char num[24];
    int k = snprintf(num, sizeof num, "%zu", blen);
    buf nb = { 0 };
    put(&nb, out->p, lpos);
    put(&nb, num, (size_t)k);
    put(&nb, out->p + lpos + 2, out->n - lpos - 2);
    free(out->p);
    *out = nb;
  }
}

/* ---- the user agent and its publications ---------------------------------------------- */

static sipub_ua *ua;
static sipub_pub *pubs[NPUBS];
static uint64_t now;

/* Events: checks their shape and order, reads every byte of each response (ASan sees an
 * out-of-bounds or freed buffer). A `failed` must be followed at once by `unpublished`. */
static void drain(void)
{
  sipub_event ev;
  sipub_pub *expect_unpublished = NULL;
  volatile unsigned sum = 0;
  while (sipub_ua_poll(ua, &ev)) {
    int known = 0;
    for (int i = 0; i < NPUBS; i++) known |= pubs[i] == ev.pub;
    if (!known || ev.user != (void *)ev.pub) FAIL();
    if (expect_unpublished && (ev.kind != SIPUB_EV_UNPUBLISHED || ev.pub != expect_unpublished))
      FAIL();
    expect_unpublished = ev.kind == SIPUB_EV_FAILED ? ev.pub : NULL;
#ifdef FUZZ_DEBUG
    static const char *const kinds[] = { "progress", "published", "failed", "unpublished" };
    for (int i = 0; i < NPUBS; i++)
      if (pubs[i] == ev.pub) fprintf(stderr, "  event pub%d %s(%d, %s)\n", i, kinds[ev.kind], ev.status, ev.cause);
#endif
    if (!ev.cause) FAIL();
    if (ev.response) {
      const sipub_response *r = ev.response;
      if (r->status != ev.status || r->status < 100 || r->status > 699 || !r->reason ||
          !r->data || r->body < r->data || r->body + r->body_len > r->data + r->len)
        FAIL();
      for (size_t i = 0; i < r->len; i++) sum += (unsigned char)r->data[i];
      for (const char *c = r->reason; *c; c++) sum += (unsigned char)*c;
    }
    /* (The entity-tag itself may be gone by now: the same call can fail the queued request
     * that followed the 2xx; spec/unit/model_spec.lua checks entity-tags.) */
    if (ev.kind == SIPUB_EV_PUBLISHED && (!ev.response || ev.status < 200 || ev.status > 299))
      FAIL();
    /* progress without a response: only a Timer F that will be retried, or a refresh of a
     * stopped publication that failed without one (its remove follows) */
    if (ev.kind == SIPUB_EV_PROGRESS && !ev.response && ev.cause != SIPUB_CAUSE_REQUEST_TIMEOUT &&
        ev.cause != SIPUB_CAUSE_CONNECTION_ERROR)
      FAIL();
  }
  if (expect_unpublished) FAIL();
  (void)sum;
}

static void receive(const char *data, size_t len)
{
  sipub_ua_receive(ua, now, NULL, data, len);
  drain();
}

/* Answers the newest request with a response built from template tpl. */
static void answer(const char *tpl)
{
  const char *req = recorded(0);
  if (!req) return;
  buf b = { 0 };
  expand(&b, tpl, strlen(tpl), req);
  receive(b.p, b.n);
  free(b.p);
}

static sipub_pub *new_pub(const char *target, int expires, int unpublish_on_close, int i)
{
  static const char *const extra[] = { "X-Fuzz: 1", "Priority: normal", NULL };
  sipub_pub_config pc = {
    .target = target, .event = "presence", .content_type = "application/pidf+xml",
    .expires = expires, .extra_headers = extra, .unpublish_on_close = unpublish_on_close,
  };
  int err = 0;
  sipub_pub *p = sipub_pub_new(ua, &pc, &err, NULL);
  if (!p) FAIL();
  sipub_pub_set_user(p, p);
  pubs[i] = p;
  return p;
}

#define HDRS "Via: $V\r\nFrom: $F\r\nTo: $T;tag=srv\r\nCall-ID: $I\r\nCSeq: $C\r\n"
#define OK_ETAG(tag) "SIP/2.0 200 OK\r\n" HDRS "SIP-ETag: " tag "\r\nExpires: 60\r\nContent-Length: 0\r\n\r\n"

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

/* Twelve publications, one per state worth reaching. */
static void setup(void)
{
  sipub_config cfg = {
    .aor = "sip:alice@example.com", .proxy_host = "127.0.0.1", .proxy_port = 5060,
    .via_host = "127.0.0.1", .via_port = 5062, .user_agent = "fuzz", .seed = 42,
    .auth_user = "alice", .password = "secret", /* 401/407 challenges are answered */
    .trace = fuzz_trace,
  };
  sipub_io io = { NULL, fake_send, NULL };
  now = 1000;
  ua = sipub_ua_new(&cfg, &io, now);
  if (!ua) abort();
  const char *T = "sip:alice@example.com";
  sipub_pub *p;

  /* 0: initial pending */
  p = new_pub(T, 3600, 1, 0);
  sipub_pub_publish(p, "B0", 2);
  /* 1: published */
  p = new_pub(T, 3600, 1, 1);
  sipub_pub_publish(p, "B1", 2);
  answer(OK_ETAG("e1"));
  /* 2: refresh in flight */
  p = new_pub(T, 3600, 1, 2);
  sipub_pub_publish(p, "B2", 2);
  answer(OK_ETAG("e2"));
  sipub_pub_publish(p, NULL, 0);
  /* 3: modify queued behind a refresh */
  p = new_pub(T, 3600, 1, 3);
  sipub_pub_publish(p, "B3", 2);
  answer(OK_ETAG("e3"));
  sipub_pub_publish(p, NULL, 0);
  sipub_pub_publish(p, "B3b", 3);
  /* 4: remove in flight */
  p = new_pub(T, 3600, 1, 4);
  sipub_pub_publish(p, "B4", 2);
  answer(OK_ETAG("e4"));
  sipub_pub_unpublish(p);
  /* 5: closed, remove in flight */
  p = new_pub(T, 3600, 1, 5);
  sipub_pub_publish(p, "B5", 2);
  answer(OK_ETAG("e5"));
  sipub_pub_close(p);
  /* 6: recovering after a 412 to a refresh (an initial in flight) */
  p = new_pub(T, 3600, 1, 6);
  sipub_pub_publish(p, "B6", 2);
  answer(OK_ETAG("e6"));
  sipub_pub_publish(p, NULL, 0);
  answer("SIP/2.0 412 Conditional Request Failed\r\n" HDRS "Content-Length: 0\r\n\r\n");
  /* 7: after a 423 (the retry with Min-Expires in flight) */
  p = new_pub(T, 30, 1, 7);
  sipub_pub_publish(p, "B7", 2);
  answer("SIP/2.0 423 Interval Too Brief\r\n" HDRS "Min-Expires: 60\r\nContent-Length: 0\r\n\r\n");
  /* 8: initial pending, a remove queued */
  p = new_pub(T, 3600, 1, 8);
  sipub_pub_publish(p, "B8", 2);
  sipub_pub_unpublish(p);
  /* 9: closed without unpublishing while the initial is pending */
  p = new_pub(T, 3600, 0, 9);
  sipub_pub_publish(p, "B9", 2);
  sipub_pub_close(p);
  /* 10: a 1xx received (Proceeding) */
  p = new_pub(T, 3600, 1, 10);
  sipub_pub_publish(p, "B10", 3);
  answer("SIP/2.0 100 Trying\r\n" HDRS "Content-Length: 0\r\n\r\n");
  /* 11: another target (no proxy), published then a modify in flight */
  p = new_pub("sip:bob@example.org:5080", 120, 1, 11);
  sipub_pub_publish(p, "B11", 3);
  answer(OK_ETAG("e11"));
  sipub_pub_publish(p, "B11b", 4);
  drain();
}

static void user_call(const uint8_t *d, size_t n)
{
  if (n < 2) return;
  int i = d[0] % NPUBS;
  sipub_pub *p = pubs[i];
  const char *body = (const char *)d + 2;
  size_t blen = n - 2;
  switch (d[1] % 10) {
  case 0: if (p) sipub_pub_publish(p, body, blen); break;
  case 1: if (p) sipub_pub_publish(p, NULL, 0); break;
  case 2: if (p) sipub_pub_unpublish(p); break;
  case 3: if (p) sipub_pub_close(p); break;
  case 4: /* the caller lets go; the core frees it once idle */
    if (p) {
      sipub_pub_release(p);
      pubs[i] = NULL;
    }
    break;
  case 5: net.fail_next = 1 + d[1] / 10 % 3; break;
  case 6: sipub_ua_dest_failed(ua, "127.0.0.1", 5060); break;
  case 7: sipub_ua_close(ua); break;
  case 8: if (p && sipub_pub_etag(p) == NULL && !sipub_pub_closed(p)) sipub_pub_publish(p, "Bx", 2); break;
  default: sipub_ua_set_time(ua, now); break;
  }
  drain();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  sipub_global_init();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  setup();
  size_t start = 0;
  for (size_t i = 0; i <= size; i++) {
    if (i < size && data[i] != SEP) continue;
    const uint8_t *c = data + start;
    size_t n = i - start;
    start = i + 1;
    if (n == 0) {
      receive("", 0); /* an empty datagram */
      continue;
    }
    switch (c[0] % 4) {
    case 0: { /* template */
      const char *req = n > 1 ? recorded(c[1]) : NULL;
      if (!req) break;
      buf b = { 0 };
      expand(&b, (const char *)c + 2, n - 2, req);
      receive(b.p ? b.p : "", b.n);
      free(b.p);
      break;
    }
    case 1: user_call(c + 1, n - 1); break;
    case 2: receive((const char *)c + 1, n - 1); break;
    case 3: {
      uint64_t jump = 0;
      for (size_t k = 1; k < 4 && k < n; k++) jump = jump << 8 | c[k];
      now += jump;
      sipub_ua_tick(ua, now);
      drain();
      break;
    }
    }
  }
  /* Let every transaction end (Timer F, K) and the refreshes fire once. */
  now += 40000;
  sipub_ua_tick(ua, now);
  drain();
  if (sipub_ua_next_deadline(ua) < now) FAIL();
  sipub_ua_free(ua);
  ua = NULL;
  memset(pubs, 0, sizeof pubs);
  net_reset();
  return 0;
}
