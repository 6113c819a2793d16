/* core_seams.c — the core's transport and resolver seams under a fake io and a virtual clock,
 * run by spec/unit/core_seams_spec.lua (built by `make all`): `core_seams CASE` prints "ok". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sipub.h"

/* ---- the fake network ----------------------------------------------------------------- */

#define MAX_SENT 64
#define MAX_QUERIES 16

typedef struct sent {
  char host[64];
  int port;
  sipub_transport tp;
  char *data;
} sent;

typedef struct query {
  uint32_t id;
  char name[64];
  sipub_rr_type type;
} query;

typedef struct world {
  sent sent[MAX_SENT];
  int nsent;
  query q[MAX_QUERIES];
  int nq;
  int refuse_resolve, refuse_send;
  const char *sync_addr, *sync_error; /* answer from inside resolve() */
  uint64_t now;
  sipub_ua *ua;
} world;

static world W;
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

static int fake_send(void *ud, const sipub_dest *d, const char *data, size_t len)
{
  (void)ud;
  if (W.nsent == MAX_SENT || W.refuse_send) return -1;
  sent *s = &W.sent[W.nsent++];
  snprintf(s->host, sizeof s->host, "%s", d->host);
  s->port = d->port;
  s->tp = d->tp;
  s->data = malloc(len + 1);
  memcpy(s->data, data, len);
  s->data[len] = '\0';
  return 0;
}

static int fake_resolve(void *ud, uint32_t id, const char *name, sipub_rr_type type)
{
  (void)ud;
  if (W.refuse_resolve || W.nq == MAX_QUERIES) return -1;
  query *q = &W.q[W.nq++];
  q->id = id;
  snprintf(q->name, sizeof q->name, "%s", name);
  q->type = type;
  if (W.sync_addr || W.sync_error) {
    sipub_rr rr = { .type = SIPUB_RR_A, .name = W.sync_addr, .ttl = 60 };
    sipub_ua_resolved(W.ua, W.now, id, &rr, W.sync_addr ? 1 : 0, W.sync_error);
  }
  return 0;
}

static void setup(int with_resolver, sipub_transport tp)
{
  memset(&W, 0, sizeof W);
  sipub_config cfg = {
    .aor = "sip:alice@example.test", .via_host = "127.0.0.1", .via_port = 5062,
    .seed = 7, .transport = tp,
  };
  sipub_io io = { NULL, fake_send, with_resolver ? fake_resolve : NULL };
  W.ua = sipub_ua_new(&cfg, &io, 0);
}

static void teardown(void)
{
  sipub_ua_free(W.ua);
  for (int i = 0; i < W.nsent; i++) free(W.sent[i].data);
}

static sipub_pub *publish(const char *target)
{
  sipub_pub_config pc = { .target = target, .event = "presence", .expires = 3600 };
  int err = 0;
  sipub_pub *p = sipub_pub_new(W.ua, &pc, &err, NULL);
  check(p != NULL, "sipub_pub_new(%s): %d", target, err);
  if (p) sipub_pub_publish(p, "open", 4);
  return p;
}

static void advance(uint64_t ms)
{
  uint64_t to = W.now + ms;
  while (sipub_ua_next_deadline(W.ua) <= to) {
    W.now = sipub_ua_next_deadline(W.ua);
    sipub_ua_tick(W.ua, W.now);
  }
  W.now = to;
  sipub_ua_set_time(W.ua, to);
}

/* ---- events --------------------------------------------------------------------------- */

typedef struct seen {
  sipub_event_kind kind;
  sipub_pub *pub;
  int status;
  char cause[64], detail[160];
  size_t body_len;
} seen;

static seen EV[32];
static int nev;

static void drain(void)
{
  sipub_event ev;
  nev = 0;
  while (sipub_ua_poll(W.ua, &ev) && nev < 32) {
    seen *s = &EV[nev++];
    s->kind = ev.kind;
    s->pub = ev.pub;
    s->status = ev.status;
    snprintf(s->cause, sizeof s->cause, "%s", ev.cause ? ev.cause : "");
    snprintf(s->detail, sizeof s->detail, "%s", ev.detail ? ev.detail : "(null)");
    s->body_len = ev.response ? ev.response->body_len : 0;
  }
}

static int count(sipub_event_kind kind, sipub_pub *p)
{
  int n = 0;
  for (int i = 0; i < nev; i++) n += EV[i].kind == kind && (!p || EV[i].pub == p);
  return n;
}

static const seen *first(sipub_event_kind kind, sipub_pub *p)
{
  for (int i = 0; i < nev; i++)
    if (EV[i].kind == kind && EV[i].pub == p) return &EV[i];
  return NULL;
}

/* ---- responses ------------------------------------------------------------------------ */

/* The value of header name in request req (up to CRLF), into out. */
static void header(const char *req, const char *name, char *out, size_t n)
{
  char key[40];
  snprintf(key, sizeof key, "\r\n%s: ", name);
  const char *p = strstr(req, key);
  out[0] = '\0';
  if (!p) return;
  p += strlen(key);
  size_t k = strcspn(p, "\r");
  snprintf(out, n, "%.*s", (int)k, p);
}

/* A 200 to the i-th request sent, with a body of body_len bytes. Returns a malloc'd text. */
static char *ok_for(int i, size_t body_len, size_t *len)
{
  char via[256], from[256], to[256], cid[128], cseq[64];
  const char *req = W.sent[i].data;
  header(req, "Via", via, sizeof via);
  header(req, "From", from, sizeof from);
  header(req, "To", to, sizeof to);
  header(req, "Call-ID", cid, sizeof cid);
  header(req, "CSeq", cseq, sizeof cseq);
  size_t cap = 2048 + body_len;
  char *r = malloc(cap);
  int n = snprintf(r, cap,
                   "SIP/2.0 200 OK\r\nVia: %s\r\nFrom: %s\r\nTo: %s;tag=esc\r\nCall-ID: %s\r\n"
                   "CSeq: %s\r\nSIP-ETag: e%d\r\nExpires: 3600\r\n%sContent-Length: %zu\r\n\r\n",
                   via, from, to, cid, cseq, i, body_len ? "Content-Type: text/plain\r\n" : "",
                   body_len);
  memset(r + n, 'x', body_len);
  *len = (size_t)n + body_len;
  return r;
}

static const sipub_dest TCP1 = { "127.0.0.1", 5070, SIPUB_TP_TCP };
static const sipub_dest TCP2 = { "127.0.0.2", 5070, SIPUB_TP_TCP };

static int feed(const sipub_dest *from, const char *d, size_t n)
{
  return sipub_ua_receive(W.ua, W.now, from, d, n);
}

/* ---- cases: stream framing ------------------------------------------------------------ */

static void split_read(void)
{
  setup(0, SIPUB_TP_UDP);
  sipub_pub *p = publish("sip:alice@127.0.0.1:5070;transport=tcp");
  check(W.nsent == 1 && W.sent[0].tp == SIPUB_TP_TCP, "one request over TCP");
  size_t len;
  char *r = ok_for(0, 0, &len);
  size_t cut = len / 3; /* inside the header section */
  check(feed(&TCP1, r, cut) == 0, "first part accepted");
  drain();
  check(nev == 0, "nothing delivered from a partial message (%d events)", nev);
  check(feed(&TCP1, r + cut, len - cut) == 0, "second part accepted");
  drain();
  check(count(SIPUB_EV_PUBLISHED, p) == 1 && nev == 1, "published once (%d events)", nev);
  free(r);
  teardown();
}

static void coalesced(void)
{
  setup(0, SIPUB_TP_TCP);
  sipub_pub *a = publish("sip:alice@127.0.0.1:5070");
  sipub_pub *b = publish("sip:bob@127.0.0.1:5070");
  check(W.nsent == 2 && W.sent[1].tp == SIPUB_TP_TCP, "two requests over TCP (config transport)");
  size_t l1, l2;
  char *r1 = ok_for(0, 0, &l1), *r2 = ok_for(1, 0, &l2);
  char *both = malloc(l1 + l2);
  memcpy(both, r1, l1);
  memcpy(both + l1, r2, l2);
  check(feed(&TCP1, both, l1 + l2) == 0, "read accepted");
  drain();
  check(count(SIPUB_EV_PUBLISHED, a) == 1 && count(SIPUB_EV_PUBLISHED, b) == 1 && nev == 2,
        "both published (%d events)", nev);
  free(r1);
  free(r2);
  free(both);
  teardown();
}

static void big_body(void)
{
  setup(0, SIPUB_TP_TCP);
  sipub_pub *p = publish("sip:alice@127.0.0.1:5070");
  size_t len;
  char *r = ok_for(0, 20000, &len);
  int rc = 0;
  for (size_t off = 0; off < len; off += 4096) /* reads of 4 KiB */
    rc |= feed(&TCP1, r + off, len - off < 4096 ? len - off : 4096);
  drain();
  check(rc == 0, "reads accepted");
  const seen *e = first(SIPUB_EV_PUBLISHED, p);
  check(e && e->body_len == 20000 && nev == 1, "published with its 20000-byte body");
  free(r);
  teardown();
}

static void bad_length(void)
{
  static const char *const bad[] = {
    "SIP/2.0 200 OK\r\nContent-Length: 12abc\r\n\r\n",
    "SIP/2.0 200 OK\r\nCSeq: 1 PUBLISH\r\n\r\n",          /* none: unframeable on a stream */
    "SIP/2.0 200 OK\r\nContent-Length: 999999999\r\n\r\n", /* over SIPUB_FRAME_MAX */
  };
  for (int k = 0; k < 3; k++) {
    setup(0, SIPUB_TP_TCP);
    sipub_pub *a = publish("sip:alice@127.0.0.1:5070");
    sipub_pub *b = publish("sip:bob@127.0.0.2:5070"); /* another flow */
    int rc = feed(&TCP1, bad[k], strlen(bad[k]));
    drain();
    const seen *e = first(SIPUB_EV_FAILED, a);
    check(rc < 0, "case %d: receive returns <0 (%d)", k, rc);
    check(e && strcmp(e->cause, "Connection Error") == 0 && strstr(e->detail, "127.0.0.1:5070"),
          "case %d: the flow's transaction failed with a detail (%s)", k, e ? e->detail : "none");
    check(!first(SIPUB_EV_FAILED, b), "case %d: the other flow's transaction is untouched", k);
    /* The flow's buffer is gone: a good message on a new connection from the peer works. */
    size_t len;
    char *r = ok_for(1, 0, &len);
    check(feed(&TCP2, r, len) == 0, "case %d: other flow still reads", k);
    drain();
    check(count(SIPUB_EV_PUBLISHED, b) == 1, "case %d: the other publication published", k);
    free(r);
    teardown();
  }
  /* A header section that never ends is cut at SIPUB_FRAME_MAX. */
  setup(0, SIPUB_TP_TCP);
  publish("sip:alice@127.0.0.1:5070");
  char *junk = malloc(8192);
  memset(junk, 'a', 8192);
  int rc = 0;
  for (int i = 0; i < 16 && rc == 0; i++) rc = feed(&TCP1, junk, 8192);
  check(rc < 0, "an endless header section is a framing error");
  free(junk);
  teardown();
}

static void keepalive(void)
{
  setup(0, SIPUB_TP_TCP);
  sipub_pub *a = publish("sip:alice@127.0.0.1:5070");
  sipub_pub *b = publish("sip:bob@127.0.0.1:5070");
  check(feed(&TCP1, "\r\n", 2) == 0, "a pong alone");
  drain();
  check(nev == 0, "a pong delivers nothing");
  size_t l1, l2;
  char *r1 = ok_for(0, 0, &l1), *r2 = ok_for(1, 0, &l2);
  char buf[4096];
  size_t n = 0;
  memcpy(buf + n, "\r\n\r\n", 4), n += 4;
  memcpy(buf + n, r1, l1), n += l1;
  memcpy(buf + n, "\r\n", 2), n += 2;
  memcpy(buf + n, r2, l2), n += l2;
  memcpy(buf + n, "\r", 1), n += 1; /* a pong cut in two */
  check(feed(&TCP1, buf, n) == 0 && feed(&TCP1, "\n", 1) == 0, "reads accepted");
  drain();
  check(count(SIPUB_EV_PUBLISHED, a) == 1 && count(SIPUB_EV_PUBLISHED, b) == 1 && nev == 2,
        "both published around the keep-alives (%d events)", nev);
  free(r1);
  free(r2);
  teardown();
}

/* ---- cases: reliability per flow ------------------------------------------------------ */

static void reliable(void)
{
  setup(0, SIPUB_TP_UDP);
  sipub_pub *p = publish("sip:alice@127.0.0.1:5070;transport=tcp");
  advance(31999);
  check(W.nsent == 1, "no retransmission over TCP (%d sends)", W.nsent);
  drain();
  check(nev == 0, "no timeout before 64*T1");
  advance(1);
  drain();
  const seen *e = first(SIPUB_EV_FAILED, p);
  check(e && strcmp(e->cause, "Request Timeout") == 0, "Timer F at 64*T1");
  teardown();

  /* Timer K = 0: once answered, only the refresh (0.9 x 3600 s) is armed. */
  setup(0, SIPUB_TP_UDP);
  publish("sip:alice@127.0.0.1:5070;transport=tcp");
  size_t len;
  char *r = ok_for(0, 0, &len);
  advance(100);
  feed(&TCP1, r, len);
  drain();
  check(sipub_ua_next_deadline(W.ua) == 3240000, "no Timer K over TCP (next deadline %llu)",
        (unsigned long long)sipub_ua_next_deadline(W.ua));
  free(r);
  teardown();
}

static void udp_unchanged(void)
{
  setup(0, SIPUB_TP_UDP);
  sipub_pub *p = publish("sip:alice@127.0.0.1:5070");
  check(W.nsent == 1 && W.sent[0].tp == SIPUB_TP_UDP && strcmp(W.sent[0].host, "127.0.0.1") == 0,
        "sent over UDP to the target");
  advance(500);
  check(W.nsent == 2, "Timer E at T1");
  advance(1000);
  check(W.nsent == 3, "Timer E at 2*T1");
  size_t len;
  char *r = ok_for(0, 0, &len);
  /* A datagram from a named UDP flow, or from none: both are one message; a partial one is
   * dropped, not kept for later. */
  check(feed(&(sipub_dest){ "127.0.0.1", 5070, SIPUB_TP_UDP }, r, len / 2) == 0, "half a datagram");
  drain();
  check(nev == 0, "half a datagram is dropped");
  check(feed(NULL, r, len) == 0, "a datagram");
  drain();
  check(count(SIPUB_EV_PUBLISHED, p) == 1, "published");
  check(sipub_ua_next_deadline(W.ua) == W.now + 5000, "Timer K = T4 over UDP");
  free(r);
  teardown();
}

static void flow_failed(void)
{
  setup(0, SIPUB_TP_TCP);
  sipub_pub *a = publish("sip:alice@127.0.0.1:5070");
  sipub_pub *b = publish("sip:bob@127.0.0.2:5070");
  sipub_pub *c = publish("sip:carol@127.0.0.1:5071");
  sipub_ua_flow_failed(W.ua, &TCP1, "connection reset by peer");
  drain();
  const seen *fa = first(SIPUB_EV_FAILED, a), *ua = first(SIPUB_EV_UNPUBLISHED, a);
  check(fa && strcmp(fa->cause, "Connection Error") == 0 &&
        strcmp(fa->detail, "connection reset by peer") == 0, "a failed with the detail");
  check(ua && strcmp(ua->detail, "connection reset by peer") == 0, "unpublished carries it too");
  check(!first(SIPUB_EV_FAILED, b) && !first(SIPUB_EV_FAILED, c) && nev == 2,
        "only that flow's transactions fail (%d events)", nev);
  /* The wrapper: UDP, no detail. */
  sipub_ua_dest_failed(W.ua, "127.0.0.2", 5070); /* a TCP flow: not the UDP one */
  drain();
  check(nev == 0, "dest_failed names the UDP flow only");
  teardown();

  setup(0, SIPUB_TP_UDP);
  sipub_pub *d = publish("sip:dave@127.0.0.1:5070");
  sipub_ua_dest_failed(W.ua, "127.0.0.1", 5070);
  drain();
  const seen *fd = first(SIPUB_EV_FAILED, d);
  check(fd && strcmp(fd->cause, "Connection Error") == 0 && strcmp(fd->detail, "(null)") == 0,
        "dest_failed: Connection Error without detail");
  /* A send the driver refuses at once: the detail names the flow. */
  W.refuse_send = 1;
  sipub_pub *e = publish("sip:erin@127.0.0.1:5070;transport=tls");
  drain();
  fd = first(SIPUB_EV_FAILED, e);
  check(fd && strcmp(fd->detail, "127.0.0.1:5070 (tls): the transport refused the request") == 0,
        "a refused send names its flow (%s)", fd ? fd->detail : "none");
  teardown();
}

/* ---- cases: the resolver -------------------------------------------------------------- */

static void answer(uint32_t id, const char *addr, uint32_t ttl)
{
  sipub_rr rr = { .type = SIPUB_RR_A, .name = addr, .ttl = ttl };
  sipub_ua_resolved(W.ua, W.now, id, &rr, 1, NULL);
}

static void resolver(void)
{
  setup(1, SIPUB_TP_UDP);
  sipub_pub *p[3];
  p[0] = publish("sip:alice@example.test");
  p[1] = publish("sip:bob@EXAMPLE.test");
  p[2] = publish("sip:carol@example.test");
  check(W.nq == 1 && W.q[0].type == SIPUB_RR_ADDR && strcmp(W.q[0].name, "example.test") == 0,
        "one ADDR query for one name (%d)", W.nq);
  check(W.nsent == 0, "sends wait for the answer");
  advance(2000);
  check(W.nsent == 0, "no Timer E while waiting");
  answer(W.q[0].id, "192.0.2.7", 60);
  check(W.nsent == 3, "three sends once answered (%d)", W.nsent);
  for (int i = 0; i < W.nsent; i++)
    check(strcmp(W.sent[i].host, "192.0.2.7") == 0 && W.sent[i].port == 5060,
          "send %d to the answered address (%s:%d)", i, W.sent[i].host, W.sent[i].port);
  advance(500);
  check(W.nsent == 6, "Timer E from the first send (%d)", W.nsent);
  /* Cached: a new publication goes at once. */
  publish("sip:dave@example.test");
  check(W.nq == 1 && W.nsent == 7 && strcmp(W.sent[6].host, "192.0.2.7") == 0, "cached answer used");
  /* Timer F counts from the start, not from the answer. */
  advance(32000 - 2500 - 1);
  drain();
  check(count(SIPUB_EV_FAILED, NULL) == 0, "no timeout yet");
  advance(1);
  drain();
  check(count(SIPUB_EV_FAILED, p[0]) == 1 && count(SIPUB_EV_FAILED, p[2]) == 1,
        "Timer F at 64*T1 from the start");
  /* A flow failure to the address forgets it: the next request asks again. */
  sipub_ua_dest_failed(W.ua, "192.0.2.7", 5060);
  drain();
  publish("sip:erin@example.test");
  check(W.nq == 2, "asked again after a flow failure (%d)", W.nq);
  answer(W.q[1].id, "192.0.2.8", 1);
  check(strcmp(W.sent[W.nsent - 1].host, "192.0.2.8") == 0, "the new address is used");
  /* TTL expiry: asked again. */
  advance(1000);
  publish("sip:frank@example.test");
  check(W.nq == 3, "asked again after the TTL (%d)", W.nq);
  /* A stale query id is ignored. */
  answer(W.q[0].id, "192.0.2.99", 60);
  check(strcmp(W.sent[W.nsent - 1].host, "192.0.2.99") != 0, "stale answer ignored");
  /* Literal addresses are never asked about. */
  int before = W.nq;
  publish("sip:gina@192.0.2.1");
  publish("sip:hank@[2001:db8::1]:5070");
  check(W.nq == before && strstr(W.sent[W.nsent - 1].host, "2001:db8::1") &&
        W.sent[W.nsent - 1].port == 5070, "literals go out at once (%s)", W.sent[W.nsent - 1].host);
  teardown();
}

static void resolver_error(void)
{
  setup(1, SIPUB_TP_UDP);
  sipub_pub *a = publish("sip:alice@nowhere.test");
  sipub_pub *b = publish("sip:bob@nowhere.test");
  sipub_ua_resolved(W.ua, W.now, W.q[0].id, NULL, 0, "Domain name not found");
  drain();
  const seen *e = first(SIPUB_EV_FAILED, a);
  check(e && strcmp(e->cause, "Connection Error") == 0 &&
        strcmp(e->detail, "nowhere.test: Domain name not found") == 0,
        "failed with a detail naming the host (%s)", e ? e->detail : "none");
  check(count(SIPUB_EV_FAILED, b) == 1 && W.nsent == 0, "every waiting request failed, nothing sent");
  /* No answer at all, and a resolver that cannot start a query. */
  sipub_pub *c = publish("sip:carol@nowhere.test");
  check(W.nq == 2, "an error is not cached");
  sipub_ua_resolved(W.ua, W.now, W.q[1].id, NULL, 0, NULL);
  drain();
  e = first(SIPUB_EV_FAILED, c);
  check(e && strcmp(e->detail, "nowhere.test: no address") == 0, "empty answer (%s)", e ? e->detail : "none");
  W.refuse_resolve = 1;
  sipub_pub *d = publish("sip:dave@nowhere.test");
  drain();
  e = first(SIPUB_EV_FAILED, d);
  check(e && strstr(e->detail, "nowhere.test"), "a refused query fails at once");
  /* No answer within 64*T1: Timer F; the late answer sends nothing and is kept. */
  W.refuse_resolve = 0;
  sipub_pub *f = publish("sip:frank@nowhere.test");
  advance(32000);
  drain();
  e = first(SIPUB_EV_FAILED, f);
  check(e && strcmp(e->cause, "Request Timeout") == 0, "Timer F while waiting for the resolver");
  answer(W.q[W.nq - 1].id, "192.0.2.9", 60);
  check(W.nsent == 0, "nothing sent for a transaction that is gone");
  publish("sip:gina@nowhere.test");
  check(W.nsent == 1 && strcmp(W.sent[0].host, "192.0.2.9") == 0, "the late answer serves the next one");
  teardown();
}

/* A driver with a cache may answer from inside resolve(). */
static void resolver_sync(void)
{
  setup(1, SIPUB_TP_UDP);
  W.sync_addr = "192.0.2.50";
  publish("sip:alice@cached.test");
  check(W.nq == 1 && W.nsent == 1 && strcmp(W.sent[0].host, "192.0.2.50") == 0,
        "sent at once to the address answered inside resolve()");
  publish("sip:bob@cached.test");
  check(W.nq == 1 && W.nsent == 2, "and kept for the next");
  W.sync_addr = NULL;
  W.sync_error = "not in the cache";
  sipub_pub *p = publish("sip:carol@uncached.test");
  drain();
  const seen *e = first(SIPUB_EV_FAILED, p);
  check(e && strcmp(e->detail, "uncached.test: not in the cache") == 0,
        "an error answered inside resolve() fails at once (%s)", e ? e->detail : "none");
  advance(1000);
  check(sipub_ua_next_deadline(W.ua) != UINT64_MAX && W.nsent == 4, "the others retransmit");
  teardown();
}

static void no_resolver(void)
{
  setup(0, SIPUB_TP_UDP);
  publish("sip:alice@example.test");
  check(W.nsent == 1 && strcmp(W.sent[0].host, "example.test") == 0 && W.sent[0].port == 5060,
        "sent to the name at once (old behaviour)");
  teardown();
}

/* ---- the framer itself ---------------------------------------------------------------- */

static void framer(void)
{
  sipub_frame f;
  const char *m = "SIP/2.0 200 OK\r\nl: 3\r\n\r\nabcREST";
  check(sipub_frame_message(m, strlen(m), &f) == SIPUB_FRAME_COMPLETE && f.msg_len == strlen(m) - 4,
        "compact form");
  const char *lf = "PUBLISH sip:a@b SIP/2.0\nContent-Length: 2\n\nok";
  check(sipub_frame_message(lf, strlen(lf), &f) == SIPUB_FRAME_COMPLETE && f.msg_len == strlen(lf),
        "bare LF line ends");
  check(sipub_frame_message(m, 10, &f) == SIPUB_FRAME_MORE && f.header_len == 0, "need more");
  const char *nl = "SIP/2.0 200 OK\r\n\r\n";
  check(sipub_frame_message(nl, strlen(nl), &f) == SIPUB_FRAME_NO_LENGTH, "no Content-Length");
  const char *bad = "SIP/2.0 200 OK\r\nContent-Length: x\r\n\r\n";
  check(sipub_frame_message(bad, strlen(bad), &f) == SIPUB_FRAME_BAD && f.cl_len == 2 &&
        bad[f.cl_off + (bad[f.cl_off] == ' ')] == 'x', "bad value located");
}

int main(int argc, char **argv)
{
  static const struct { const char *name; void (*fn)(void); } cases[] = {
    { "split_read", split_read }, { "coalesced", coalesced }, { "big_body", big_body },
    { "bad_length", bad_length }, { "keepalive", keepalive }, { "reliable", reliable },
    { "udp_unchanged", udp_unchanged }, { "flow_failed", flow_failed },
    { "resolver", resolver }, { "resolver_error", resolver_error },
    { "resolver_sync", resolver_sync }, { "no_resolver", no_resolver }, { "framer", framer },
  };
  int ran = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (argc > 1 && strcmp(argv[1], cases[i].name) != 0) continue;
    cases[i].fn();
    ran++;
  }
  if (!ran) {
    printf("unknown case\n");
    return 2;
  }
  printf("%s\n", failures ? "core_seams: FAILED" : "ok");
  return failures ? 1 : 0;
}
