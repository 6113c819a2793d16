/* uv_udp.c — the libuv driver's UDP socket: datagrams to literal addresses, queued inside a
 * batch and sent with sendmmsg(2); datagrams read with recvmmsg and handed to the core. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sendmmsg(2) */
#endif
#include "uv_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct send_req {
  uv_udp_send_t req;
  sipub_uv *drv;
  char data[];
} send_req;

static void on_send_done(uv_udp_send_t *req, int status)
{
  send_req *s = (send_req *)req;
  sipub_uv *drv = s->drv;
  free(s);
  drv_unref(drv);
}

/* Hands libuv a copy to send when the socket can take it, behind what it already holds. */
static int send_later(sipub_uv *drv, const struct sockaddr *sa, const char *data, size_t len)
{
  uv_buf_t b;
  send_req *s = malloc(sizeof *s + len);
  if (!s) return -1;
  memcpy(s->data, data, len);
  s->drv = drv;
  b = uv_buf_init(s->data, (unsigned)len);
  if (uv_udp_send(&s->req, &drv->udp, &b, 1, sa, on_send_done) != 0) {
    free(s);
    return -1;
  }
  drv->refs++;
  return 0;
}

static int send_to(sipub_uv *drv, const struct sockaddr *sa, const char *data, size_t len)
{
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  int rc = uv_udp_try_send(&drv->udp, &b, 1, sa);
  if (rc >= 0) return 0;
  if (rc != UV_EAGAIN && rc != UV_ENOSYS) return -1;
  /* The socket buffer is full (or libuv still holds earlier datagrams). */
  return send_later(drv, sa, data, len);
}

static socklen_t addr_len(const struct sockaddr_storage *ss)
{
  return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static int is_transient(int e)
{
  return e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS;
}

static void mark_failed(sipub_uv *drv, dest *d, int e)
{
  d->send_failed = 1;
  d->send_errno = e;
  drv->any_failed = 1;
}

/* Sends the queued datagrams, in order, with as few sendmmsg(2) calls as the kernel allows.
 * A datagram the kernel refuses marks its dest failed (reported by drv_end_batch(), never
 * from here: this runs inside udp_send too, where the core must not be re-entered) and the
 * rest of that dest's datagrams are dropped: their transactions fail with it. When the
 * socket buffer is full (EAGAIN), or libuv still holds datagrams from an earlier time, the
 * rest go through uv_udp_send(), behind them, as send_to() does. */
void udp_flush(sipub_uv *drv)
{
  size_t i = 0, n = drv->nout;
  if (uv_udp_get_send_queue_count(&drv->udp) == 0) {
    while (i < n) {
      struct mmsghdr m[OUT_MAX];
      struct iovec iov[OUT_MAX];
      size_t at[OUT_MAX], k = 0;
      for (size_t j = i; j < n; j++) {
        out_dgram *o = &drv->out[j];
        if (o->d->send_failed) continue;
        iov[k].iov_base = drv->obuf + o->off;
        iov[k].iov_len = o->len;
        memset(&m[k], 0, sizeof m[k]);
        m[k].msg_hdr.msg_name = &o->d->addr;
        m[k].msg_hdr.msg_namelen = addr_len(&o->d->addr);
        m[k].msg_hdr.msg_iov = &iov[k];
        m[k].msg_hdr.msg_iovlen = 1;
        at[k++] = j;
      }
      if (k == 0) {
        i = n;
        break;
      }
      int r = sendmmsg(drv->fd, m, (unsigned)k, 0);
      if (r > 0) {
        i = at[r - 1] + 1;
      } else if (r < 0 && errno == EINTR) {
        i = at[0];
      } else if (r < 0 && is_transient(errno)) {
        i = at[0];
        break;
      } else { /* the first of them was refused: the kernel says why only for that one */
        mark_failed(drv, drv->out[at[0]].d, r < 0 ? errno : EIO);
        i = at[0] + 1;
      }
    }
  }
  for (; i < n; i++) {
    out_dgram *o = &drv->out[i];
    if (o->d->send_failed) continue;
    if (send_later(drv, (struct sockaddr *)&o->d->addr, drv->obuf + o->off, o->len) != 0)
      mark_failed(drv, o->d, ENOMEM);
  }
  drv->nout = 0;
  drv->olen = 0;
}

/* Sends a datagram: queued inside a batch, at once otherwise. The return value is
 * udp_send's: -1 when the datagram is known not to leave. */
static int deliver(sipub_uv *drv, dest *d, const char *data, size_t len)
{
  if (d->send_failed) return -1; /* refused earlier in this batch: it would be again */
  if (!drv->batching || !d->proven || len > OUT_DIRECT_BYTES) {
    if (drv->nout) udp_flush(drv); /* keep the order of datagrams */
    if (d->send_failed) return -1;
    if (send_to(drv, (struct sockaddr *)&d->addr, data, len) != 0) return -1;
    d->proven = 1;
    return 0;
  }
  if (drv->olen + len > drv->ocap) {
    size_t cap = drv->ocap ? drv->ocap : 16384;
    while (cap < drv->olen + len) cap *= 2;
    char *b = realloc(drv->obuf, cap);
    if (!b) return -1;
    drv->obuf = b;
    drv->ocap = cap;
  }
  memcpy(drv->obuf + drv->olen, data, len);
  drv->out[drv->nout++] = (out_dgram){ d, drv->olen, len };
  drv->olen += len;
  if (drv->nout == OUT_MAX) udp_flush(drv);
  return 0;
}

int udp_literal_addr(const char *host, int port, struct sockaddr_storage *ss)
{
  char h[64];
  size_t n = strlen(host);
  if (n >= sizeof h) return -1;
  if (host[0] == '[' && n > 2 && host[n - 1] == ']') { /* [v6] from a URI */
    memcpy(h, host + 1, n - 2);
    h[n - 2] = '\0';
  } else {
    memcpy(h, host, n + 1);
  }
  memset(ss, 0, sizeof *ss);
  if (uv_ip4_addr(h, port, (struct sockaddr_in *)ss) == 0) return 0;
  if (uv_ip6_addr(h, port, (struct sockaddr_in6 *)ss) == 0) return 0;
  return -1;
}

/* io.send. UDP only: a request for TCP or TLS is refused, never sent in clear over UDP. The
 * core resolves names through io.resolve (uv_dns.c) before sending, so a host that is not a
 * literal address is refused too: resolving here would hide a second cache from the core. */
int udp_send(void *ud, const sipub_dest *target, const char *data, size_t len)
{
  sipub_uv *drv = ud;
  if (drv->closing || target->tp != SIPUB_TP_UDP) return -1;
  dest *d = drv->dests;
  while (d && !(d->port == target->port && strcmp(d->host, target->host) == 0)) d = d->next;
  if (!d) {
    struct sockaddr_storage ss;
    if (udp_literal_addr(target->host, target->port, &ss) != 0) return -1;
    d = calloc(1, sizeof *d);
    if (!d || !(d->host = strdup(target->host))) {
      free(d);
      return -1;
    }
    d->port = target->port;
    d->addr = ss;
    d->next = drv->dests;
    drv->dests = d;
  }
  return deliver(drv, d, data, len);
}

void udp_free_dests(sipub_uv *drv)
{
  while (drv->dests) {
    dest *d = drv->dests;
    drv->dests = d->next;
    free(d->host);
    free(d);
  }
}

/* The same buffer every time: the core copies what it keeps before receive() returns, and
 * the application sees the datagrams of a batch only after the last of them. */
void udp_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  sipub_uv *drv = h->data;
  *buf = uv_buf_init(drv->rbuf, RECV_CHUNKS * RECV_CHUNK_BYTES);
}

/* With recvmmsg, libuv calls this once per datagram (UV_UDP_MMSG_CHUNK), then once with
 * UV_UDP_MMSG_FREE and nread 0; without it (or when nothing was read), once per call. The
 * core gets every datagram as it comes; the application is told once per batch, and the
 * requests its handlers make leave together when the batch ends. */
void udp_on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                 unsigned flags)
{
  sipub_uv *drv = h->data;
  if (drv->closing) return;
  if (nread > 0 && addr && !(flags & UV_UDP_PARTIAL)) {
    if (!drv->in_recv) {
      drv->in_recv = 1;
      drv_begin_batch(drv);
    }
    /* The source is named only for a traced UA: formatting it costs, and the core does
     * not need it to match a datagram. */
    char host[64];
    sipub_dest from = { host, 0, SIPUB_TP_UDP };
    const sipub_dest *fp = NULL;
    if (sipub_ua_tracing(drv->ua) && uv_ip_name(addr, host, sizeof host) == 0) {
      from.port = ntohs(addr->sa_family == AF_INET6
                          ? ((const struct sockaddr_in6 *)addr)->sin6_port
                          : ((const struct sockaddr_in *)addr)->sin_port);
      fp = &from;
    }
    sipub_ua_receive(drv->ua, uv_now(drv->loop), fp, buf->base, (size_t)nread);
  }
  if ((flags & UV_UDP_MMSG_CHUNK) || !drv->in_recv) return;
  drv->in_recv = 0;
  drv_notify(drv);
  drv_end_batch(drv);
}
