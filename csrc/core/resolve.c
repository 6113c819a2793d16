/* resolve.c — the resolver seam: which names the core asks io.resolve() about, the answers
 * it keeps (per name, until their TTL or a flow failure), and the requests waiting for them. */
#include "core.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A name asked about: a query out (query != 0, its requests waiting), or an answer kept. */
typedef struct rname {
  struct rname *next;
  char *name;
  uint32_t query;
  char **addrs;     /* in the driver's order; the first is used (fail-over comes with SRV) */
  size_t naddr;
  uint64_t expires; /* when the answer goes stale */
  txn *waiting;
  int asking;       /* inside io.resolve(): an answer given at once waits for resolve_route */
  char *error;      /* such an answer's error */
} rname;

/* An IPv4 literal, a bracketed IPv6 one (as URIs write them), or a bare IPv6 one (as a
 * configured proxy may be given): nothing to resolve. */
static int is_literal(const char *host)
{
  unsigned char buf[sizeof(struct in6_addr)];
  char v6[64];
  size_t n = strlen(host);
  if (inet_pton(AF_INET, host, buf) == 1) return 1;
  if (host[0] == '[' && n > 2 && n - 2 < sizeof v6 && host[n - 1] == ']') {
    memcpy(v6, host + 1, n - 2);
    v6[n - 2] = '\0';
    return inet_pton(AF_INET6, v6, buf) == 1;
  }
  return inet_pton(AF_INET6, host, buf) == 1;
}

static void drop_answer(rname *r)
{
  for (size_t i = 0; i < r->naddr; i++) free(r->addrs[i]);
  free(r->addrs);
  r->addrs = NULL;
  r->naddr = 0;
}

static void unlink_name(sipub_ua *ua, rname *r)
{
  rname **pp = &ua->names;
  while (*pp && *pp != r) pp = &(*pp)->next;
  if (*pp) *pp = r->next;
  drop_answer(r);
  free(r->error);
  free(r->name);
  free(r);
}

static void use_address(txn *t, const char *addr)
{
  size_t n = strlen(addr);
  memcpy(t->addr, addr, n + 1); /* answers longer than addr are never kept */
  t->flow = t->dest;
  t->flow.host = t->addr;
}

static void wait_on(rname *r, txn *t)
{
  t->wait = r;
  t->wprev = NULL;
  t->wnext = r->waiting;
  if (r->waiting) r->waiting->wprev = t;
  r->waiting = t;
  t->flow.host = NULL;
}

void resolve_forget_txn(txn *t)
{
  rname *r = t->wait;
  if (t->wprev) t->wprev->wnext = t->wnext; else r->waiting = t->wnext;
  if (t->wnext) t->wnext->wprev = t->wprev;
  t->wait = NULL;
  t->wprev = t->wnext = NULL;
  /* The entry stays: its query is still out, and the answer will serve the next request. */
}

int resolve_route(sipub_ua *ua, txn *t, char **detail)
{
  if (!ua->io.resolve || is_literal(t->dest.host)) {
    t->flow = t->dest;
    return 1;
  }
  /* The scan that finds the name also drops the stale answers it passes: the list holds the
   * names in use, not every name ever asked about. */
  rname *r = ua->names, *next;
  for (; r && strcasecmp(r->name, t->dest.host) != 0; r = next) {
    next = r->next;
    if (!r->query && ua->now >= r->expires) unlink_name(ua, r);
  }
  if (r && r->naddr && ua->now < r->expires) {
    use_address(t, r->addrs[0]);
    return 1;
  }
  if (r && r->query) { /* asked already: one query per name */
    wait_on(r, t);
    return 0;
  }
  if (r) {
    drop_answer(r); /* stale */
  } else {
    if (!(r = calloc(1, sizeof *r)) || !(r->name = strdup(t->dest.host))) {
      free(r);
      *detail = msg_format("%s: out of memory", t->dest.host);
      return -1;
    }
    r->next = ua->names;
    ua->names = r;
  }
  if (++ua->last_query == 0) ua->last_query = 1;
  r->query = ua->last_query;
  r->asking = 1;
  int rc = ua->io.resolve(ua->io.ud, r->query, r->name, SIPUB_RR_ADDR);
  r->asking = 0;
  if (rc != 0) {
    *detail = msg_format("%s: the resolver could not start a query", r->name);
    unlink_name(ua, r);
    return -1;
  }
  if (!r->query) { /* answered at once (a cache, a hosts table): no waiting */
    if (r->naddr) {
      use_address(t, r->addrs[0]);
      return 1;
    }
    *detail = r->error;
    r->error = NULL;
    unlink_name(ua, r);
    return -1;
  }
  wait_on(r, t);
  return 0;
}

/* Keeps the address records of an answer; the smallest TTL bounds how long. */
static int keep_answer(sipub_ua *ua, rname *r, const sipub_rr *rr, size_t n)
{
  uint32_t ttl = UINT32_MAX;
  if (!(r->addrs = calloc(n ? n : 1, sizeof *r->addrs))) return -1;
  for (size_t i = 0; i < n; i++) {
    if (rr[i].type != SIPUB_RR_ADDR && rr[i].type != SIPUB_RR_A && rr[i].type != SIPUB_RR_AAAA)
      continue;
    if (!rr[i].name || strlen(rr[i].name) >= sizeof ((txn *)0)->addr) continue;
    if (!(r->addrs[r->naddr] = strdup(rr[i].name))) return -1;
    r->naddr++;
    if (rr[i].ttl < ttl) ttl = rr[i].ttl;
  }
  r->expires = ua->now + (ttl == UINT32_MAX ? 0 : (uint64_t)ttl * 1000);
  return r->naddr ? 0 : -1;
}

void sipub_ua_resolved(sipub_ua *ua, uint64_t now_ms, uint32_t query_id, const sipub_rr *answers,
                       size_t n, const char *error)
{
  if (now_ms > ua->now) ua->now = now_ms;
  rname *r = ua->names;
  while (r && !(r->query && r->query == query_id)) r = r->next;
  if (!r) return;
  r->query = 0;
  if (r->asking) { /* from inside io.resolve(): resolve_route() takes it from here */
    if (error || keep_answer(ua, r, answers, n) != 0) {
      drop_answer(r);
      r->error = msg_format("%s: %s", r->name, error ? error : "no address");
    }
    return;
  }
  txn *w = r->waiting;
  r->waiting = NULL;
  for (txn *t = w; t; t = t->wnext) t->wait = NULL;
  if (!error && keep_answer(ua, r, answers, n) == 0) {
    /* A copy: a failed send reaches the publication, whose next request may find this
     * answer already stale (TTL 0) and drop it. */
    char addr[sizeof w->addr];
    memcpy(addr, r->addrs[0], strlen(r->addrs[0]) + 1);
    while (w) {
      txn *t = w;
      w = t->wnext;
      t->wprev = t->wnext = NULL;
      use_address(t, addr);
      txn_send_first(ua, t); /* a refusal fails t alone: the others still try */
    }
    return;
  }
  /* No answer is kept: the next request asks again. */
  char *detail = msg_format("%s: %s", r->name, error ? error : "no address");
  unlink_name(ua, r);
  while (w) {
    txn *t = w;
    w = t->wnext;
    t->wprev = t->wnext = NULL;
    txn_fail(ua, t, SIPUB_CAUSE_CONNECTION_ERROR, detail ? detail : "name not resolved");
  }
  free(detail);
}

void resolve_flow_failed(sipub_ua *ua, const sipub_dest *flow)
{
  for (rname *r = ua->names, *next; r; r = next) {
    next = r->next;
    for (size_t i = 0; i < r->naddr; i++)
      if (strcmp(r->addrs[i], flow->host) == 0) {
        if (r->query) drop_answer(r);
        else unlink_name(ua, r);
        break;
      }
  }
}

void resolve_free_all(sipub_ua *ua)
{
  while (ua->names) {
    rname *r = ua->names;
    for (txn *t = r->waiting; t; t = t->wnext) t->wait = NULL;
    unlink_name(ua, r);
  }
}
