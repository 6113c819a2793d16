/* uv_dns.c — the libuv driver's side of the resolver seam: runs the core's address queries
 * with uv_getaddrinfo (libuv's thread pool) and hands the answers back to the core. */
#include "uv_int.h"

#include <stdlib.h>
#include <string.h>

/* getaddrinfo(3) does not say how long an answer holds: the core keeps it this long (and
 * drops it at once when a flow to the address fails). */
#define ADDR_TTL_S 60
#define MAX_ADDRS 16

struct dns_query {
  uv_getaddrinfo_t req;
  sipub_uv *drv;
  dns_query *prev, *next;
  uint32_t id;
};

static void unlink_query(dns_query *q)
{
  if (q->prev) q->prev->next = q->next; else q->drv->queries = q->next;
  if (q->next) q->next->prev = q->prev;
}

/* The answer as records: each address once (getaddrinfo may repeat one per socket type). */
static size_t to_records(const struct addrinfo *res, sipub_rr *rr, char text[][64])
{
  size_t n = 0;
  for (const struct addrinfo *a = res; a && n < MAX_ADDRS; a = a->ai_next) {
    int v6 = a->ai_family == AF_INET6;
    if (a->ai_family != AF_INET && !v6) continue;
    if ((v6 ? uv_ip6_name((const struct sockaddr_in6 *)a->ai_addr, text[n], 64)
            : uv_ip4_name((const struct sockaddr_in *)a->ai_addr, text[n], 64)) != 0)
      continue;
    size_t k = 0;
    while (k < n && strcmp(text[k], text[n]) != 0) k++;
    if (k < n) continue;
    rr[n] = (sipub_rr){ .type = v6 ? SIPUB_RR_AAAA : SIPUB_RR_A, .name = text[n], .ttl = ADDR_TTL_S };
    n++;
  }
  return n;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
  dns_query *q = req->data;
  sipub_uv *drv = q->drv;
  unlink_query(q);
  if (!drv->closing && drv->ua) { /* (no core yet: its requests time out) */
    sipub_rr rr[MAX_ADDRS];
    char text[MAX_ADDRS][64];
    size_t n = status == 0 ? to_records(res, rr, text) : 0;
    drv_begin_batch(drv);
    uv_update_time(drv->loop);
    /* What the requests waiting for it send leaves in this batch. */
    sipub_ua_resolved(drv->ua, uv_now(drv->loop), q->id, rr, n, status ? uv_strerror(status) : NULL);
    drv_notify(drv);
    sipub_uv_sync(drv);
    drv_end_batch(drv);
  }
  if (res) uv_freeaddrinfo(res);
  free(q);
  drv_unref(drv);
}

/* io.resolve. Only addresses are asked for now (NAPTR and SRV need a DNS library). The
 * family follows the socket's: an IPv4 socket cannot reach an IPv6 address. */
int dns_resolve(void *ud, uint32_t query_id, const char *name, sipub_rr_type type)
{
  sipub_uv *drv = ud;
  if (drv->closing || type != SIPUB_RR_ADDR) return -1;
  dns_query *q = calloc(1, sizeof *q);
  if (!q) return -1;
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = drv->family;
  hints.ai_socktype = SOCK_DGRAM;
  q->drv = drv;
  q->id = query_id;
  q->req.data = q;
  if (uv_getaddrinfo(drv->loop, &q->req, on_resolved, name, NULL, &hints) != 0) {
    free(q);
    return -1;
  }
  q->next = drv->queries;
  if (q->next) q->next->prev = q;
  drv->queries = q;
  drv->refs++;
  return 0;
}

/* Closing: queries not started yet are cancelled (their callback runs with UV_ECANCELED);
 * those running finish in the thread pool and are ignored. */
void dns_cancel_all(sipub_uv *drv)
{
  for (dns_query *q = drv->queries; q; q = q->next) uv_cancel((uv_req_t *)&q->req);
}
