/* driver_uv.c — drives the sans-I/O core with libuv: datagrams in and out of one UDP socket,
 * a single timer following the core's next deadline, asynchronous name resolution. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sendmmsg(2) */
#endif
#include "sipub_uv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RECV_BUFFER_BYTES (4 * 1024 * 1024)

/* Receiving: libuv's recvmmsg mode cuts the buffer given by the alloc callback into 64 KiB
 * chunks, one datagram each, and reads at most 20 datagrams per recvmmsg(2) call. */
#define RECV_CHUNK_BYTES (64 * 1024)
#define RECV_CHUNKS 20

/* Sending: datagrams produced inside one of the driver's callbacks are queued and leave
 * together in sendmmsg(2) calls at its end (or once OUT_MAX are waiting). Some still go out
 * at once, after what is queued, so that a refusal by the kernel is send()'s result as
 * before: the first datagram to a dest and the first after a refusal (a bad address family,
 * an unreachable network, a forbidden address: every datagram is refused alike), and those
 * larger than OUT_DIRECT_BYTES (only a big one is refused on its own, with EMSGSIZE; and
 * copying it would cost more than the system call saved). */
#define OUT_MAX 64
#define OUT_DIRECT_BYTES 8192

/* A next hop: its address once resolved, and the datagrams waiting for it meanwhile. */
typedef struct pending_dgram {
  struct pending_dgram *next;
  size_t len;
  char data[];
} pending_dgram;

typedef struct dest {
  struct dest *next;
  char *host;
  int port;
  int state; /* 0 resolving, 1 resolved, -1 failed */
  struct sockaddr_storage addr;
  uv_getaddrinfo_t req;
  pending_dgram *queue, **tail;
  sipub_uv *drv;
  int proven;      /* a datagram went out to it directly: later ones may be queued */
  int send_failed; /* a queued datagram could not be sent: reported at the end of the batch */
} dest;

/* A datagram queued for the end of the batch: its bytes are in sipub_uv.obuf. */
typedef struct out_dgram {
  dest *d;
  size_t off, len;
} out_dgram;

typedef struct send_req {
  uv_udp_send_t req;
  sipub_uv *drv;
  char data[];
} send_req;

struct sipub_uv {
  uv_loop_t *loop;
  uv_udp_t udp;
  uv_timer_t timer;
  sipub_io io;
  sipub_ua *ua;
  sipub_uv_after_fn after;
  void *after_ud;
  dest *dests;
  int port;
  int family;
  int closing;
  int refs; /* handles and requests still owned by libuv */
  int fd;   /* the socket, for sendmmsg */
  int batching; /* > 0 inside a driver callback: sends are queued (io_send) */
  int in_recv;  /* datagrams of the current recvmmsg batch were given to the core */
  int any_failed; /* some dest has send_failed set */
  size_t nout;
  out_dgram out[OUT_MAX];
  char *obuf; /* the queued datagrams' bytes: the core keeps its own for retransmissions */
  size_t olen, ocap;
  char *rbuf; /* RECV_CHUNKS chunks: datagrams stay there until the next recvmmsg */
};

static void drv_unref(sipub_uv *drv)
{
  if (--drv->refs == 0) {
    while (drv->dests) {
      dest *d = drv->dests;
      drv->dests = d->next;
      while (d->queue) {
        pending_dgram *p = d->queue;
        d->queue = p->next;
        free(p);
      }
      free(d->host);
      free(d);
    }
    free(drv->obuf);
    free(drv->rbuf);
    free(drv);
  }
}

static void notify(sipub_uv *drv)
{
  if (!drv->closing && drv->after) drv->after(drv->after_ud);
}

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

/* Sends the queued datagrams, in order, with as few sendmmsg(2) calls as the kernel allows.
 * A datagram the kernel refuses marks its dest failed (reported by end_batch(), never from
 * here: this runs inside io_send too, where the core must not be re-entered) and the rest of
 * that dest's datagrams are dropped: their transactions fail with it. When the socket buffer
 * is full (EAGAIN), or libuv still holds datagrams from an earlier time, the rest go through
 * uv_udp_send(), behind them, as send_to() does. */
static void flush(sipub_uv *drv)
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
        drv->out[at[0]].d->send_failed = 1;
        drv->any_failed = 1;
        i = at[0] + 1;
      }
    }
  }
  for (; i < n; i++) {
    out_dgram *o = &drv->out[i];
    if (o->d->send_failed) continue;
    if (send_later(drv, (struct sockaddr *)&o->d->addr, drv->obuf + o->off, o->len) != 0) {
      o->d->send_failed = 1;
      drv->any_failed = 1;
    }
  }
  drv->nout = 0;
  drv->olen = 0;
}

/* Sends a datagram to a resolved dest: queued inside a batch, at once otherwise. The return
 * value is io_send's: -1 when the datagram is known not to leave. */
static int deliver(sipub_uv *drv, dest *d, const char *data, size_t len)
{
  if (d->send_failed) return -1; /* refused earlier in this batch: it would be again */
  if (!drv->batching || !d->proven || len > OUT_DIRECT_BYTES) {
    if (drv->nout) flush(drv); /* keep the order of datagrams */
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
  if (drv->nout == OUT_MAX) flush(drv);
  return 0;
}

static void begin_batch(sipub_uv *drv)
{
  drv->batching++;
}

/* The end of a driver callback: sends what it queued, then reports the dests that refused
 * a datagram to the core (every transaction to them fails with "Connection Error", as the
 * io contract says for a failure found after send() returned) and lets the application see
 * the events; what that sends is flushed in turn. */
static void end_batch(sipub_uv *drv)
{
  if (drv->batching > 1) {
    drv->batching--;
    return;
  }
  while (!drv->closing) {
    if (drv->nout) flush(drv);
    if (!drv->any_failed) break;
    drv->any_failed = 0;
    for (dest *d = drv->dests; d; d = d->next) {
      if (!d->send_failed) continue;
      d->send_failed = 0;
      d->proven = 0;
      sipub_ua_dest_failed(drv->ua, d->host, d->port);
    }
    notify(drv);
    sipub_uv_sync(drv);
  }
  drv->batching = 0;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
  dest *d = req->data;
  sipub_uv *drv = d->drv;
  if (status == 0 && res) {
    memcpy(&d->addr, res->ai_addr, res->ai_addrlen);
    d->state = 1;
  } else {
    d->state = -1;
  }
  if (res) uv_freeaddrinfo(res);
  if (!drv->closing) {
    int failed = d->state != 1;
    begin_batch(drv);
    while (d->queue) {
      pending_dgram *p = d->queue;
      d->queue = p->next;
      if (!failed && deliver(drv, d, p->data, p->len) != 0) failed = 1;
      free(p);
    }
    d->tail = &d->queue;
    if (failed) sipub_ua_dest_failed(drv->ua, d->host, d->port); /* state -1: resolve again next time */
    notify(drv);
    end_batch(drv);
  }
  drv_unref(drv);
}

static int literal_addr(const char *host, int port, struct sockaddr_storage *ss)
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
  if (uv_ip4_addr(h, port, (struct sockaddr_in *)ss) == 0) return 0;
  if (uv_ip6_addr(h, port, (struct sockaddr_in6 *)ss) == 0) return 0;
  return -1;
}

static int io_send(void *ud, const sipub_dest *target, const char *data, size_t len)
{
  sipub_uv *drv = ud;
  /* UDP only: a request for TCP or TLS is refused, never sent in clear over UDP. */
  if (drv->closing || target->tp != SIPUB_TP_UDP) return -1;
  dest *d = drv->dests;
  while (d && !(d->port == target->port && strcmp(d->host, target->host) == 0)) d = d->next;
  if (!d) {
    d = calloc(1, sizeof *d);
    if (!d || !(d->host = strdup(target->host))) { free(d); return -1; }
    d->port = target->port;
    d->drv = drv;
    d->tail = &d->queue;
    d->next = drv->dests;
    drv->dests = d;
    d->state = literal_addr(d->host, d->port, &d->addr) == 0 ? 1 : -1;
  }
  if (d->state == 1) return deliver(drv, d, data, len);

  /* Not resolved yet: queue the datagram and resolve (once at a time). */
  pending_dgram *p = malloc(sizeof *p + len);
  if (!p) return -1;
  p->next = NULL;
  p->len = len;
  memcpy(p->data, data, len);
  *d->tail = p;
  d->tail = &p->next;
  if (d->state == -1) {
    struct addrinfo hints;
    char port[16];
    memset(&hints, 0, sizeof hints);
    hints.ai_family = drv->family;
    hints.ai_socktype = SOCK_DGRAM;
    snprintf(port, sizeof port, "%d", d->port);
    d->req.data = d;
    d->state = 0;
    if (uv_getaddrinfo(drv->loop, &d->req, on_resolved, d->host, port, &hints) != 0) {
      d->state = -1;
      d->queue = NULL;
      d->tail = &d->queue;
      free(p);
      return -1;
    }
    drv->refs++;
  }
  return 0;
}

/* The same buffer every time: the core copies what it keeps before receive() returns, and
 * the application sees the datagrams of a batch only after the last of them. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  sipub_uv *drv = h->data;
  *buf = uv_buf_init(drv->rbuf, RECV_CHUNKS * RECV_CHUNK_BYTES);
}

/* With recvmmsg, libuv calls this once per datagram (UV_UDP_MMSG_CHUNK), then once with
 * UV_UDP_MMSG_FREE and nread 0; without it (or when nothing was read), once per call. The
 * core gets every datagram as it comes; the application is told once per batch, and the
 * requests its handlers make leave together when the batch ends. */
static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags)
{
  sipub_uv *drv = h->data;
  if (drv->closing) return;
  if (nread > 0 && addr && !(flags & UV_UDP_PARTIAL)) {
    if (!drv->in_recv) {
      drv->in_recv = 1;
      begin_batch(drv);
    }
    sipub_ua_receive(drv->ua, uv_now(drv->loop), NULL, buf->base, (size_t)nread);
  }
  if ((flags & UV_UDP_MMSG_CHUNK) || !drv->in_recv) return;
  drv->in_recv = 0;
  notify(drv);
  end_batch(drv);
}

static void on_timer(uv_timer_t *t)
{
  sipub_uv *drv = t->data;
  begin_batch(drv);
  uv_update_time(drv->loop);
  sipub_ua_tick(drv->ua, uv_now(drv->loop));
  notify(drv);
  sipub_uv_sync(drv);
  end_batch(drv);
}

static void on_close(uv_handle_t *h)
{
  drv_unref(h->data);
}

sipub_uv *sipub_uv_new(uv_loop_t *loop, const char *host, int port, int *err)
{
  struct sockaddr_storage ss;
  int rc;
  sipub_uv *drv = calloc(1, sizeof *drv);
  if (!drv) { *err = UV_ENOMEM; return NULL; }
  if (literal_addr(host, port, &ss) != 0) { free(drv); *err = UV_EINVAL; return NULL; }
  drv->loop = loop;
  drv->family = ss.ss_family == AF_INET6 ? AF_UNSPEC : AF_INET;
  drv->io.ud = drv;
  drv->io.send = io_send;
  drv->fd = -1;
  if (!(drv->rbuf = malloc(RECV_CHUNKS * RECV_CHUNK_BYTES))) {
    free(drv);
    *err = UV_ENOMEM;
    return NULL;
  }
  if ((rc = uv_udp_init_ex(loop, &drv->udp, AF_UNSPEC | UV_UDP_RECVMMSG)) != 0) {
    free(drv->rbuf);
    free(drv);
    *err = rc;
    return NULL;
  }
  drv->udp.data = drv;
  drv->refs = 1;
  uv_timer_init(loop, &drv->timer);
  drv->timer.data = drv;
  drv->refs++;
  if ((rc = uv_udp_bind(&drv->udp, (struct sockaddr *)&ss, 0)) != 0) {
    *err = rc;
    sipub_uv_close(drv);
    return NULL;
  }
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&drv->udp, &fd) == 0) drv->fd = fd;
  struct sockaddr_storage bound;
  int len = sizeof bound;
  uv_udp_getsockname(&drv->udp, (struct sockaddr *)&bound, &len);
  drv->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
  return drv;
}

const sipub_io *sipub_uv_io(sipub_uv *drv)
{
  return &drv->io;
}

int sipub_uv_port(const sipub_uv *drv)
{
  return drv->port;
}

void sipub_uv_guess_via_host(const sipub_uv *drv, const char *next_hop, char *out, size_t n)
{
  struct sockaddr_storage ss, local;
  snprintf(out, n, "127.0.0.1");
  if (!next_hop) return;
  if (strcmp(next_hop, "localhost") == 0) return;
  if (literal_addr(next_hop, 5060, &ss) == 0) {
    /* Ask the kernel which source address it would use: connecting a UDP socket sends
     * nothing. Plain sockets, so that this never runs the loop re-entrantly. */
    socklen_t len = sizeof local;
    int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
    if (fd < 0) return;
    if (connect(fd, (struct sockaddr *)&ss, ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                                    : sizeof(struct sockaddr_in6)) == 0 &&
        getsockname(fd, (struct sockaddr *)&local, &len) == 0) {
      if (local.ss_family == AF_INET) uv_ip4_name((struct sockaddr_in *)&local, out, n);
      else {
        char h[64];
        uv_ip6_name((struct sockaddr_in6 *)&local, h, sizeof h);
        snprintf(out, n, "[%s]", h);
      }
    }
    close(fd);
    return;
  }
  /* A host name: the first non-loopback IPv4 address of this machine. */
  uv_interface_address_t *ifs;
  int count;
  if (uv_interface_addresses(&ifs, &count) != 0) return;
  for (int i = 0; i < count; i++) {
    if (!ifs[i].is_internal && ifs[i].address.address4.sin_family == AF_INET) {
      uv_ip4_name(&ifs[i].address.address4, out, n);
      break;
    }
  }
  uv_free_interface_addresses(ifs, count);
}

int sipub_uv_start(sipub_uv *drv, sipub_ua *ua, sipub_uv_after_fn after, void *ud)
{
  drv->ua = ua;
  drv->after = after;
  drv->after_ud = ud;
  /* Answers to many publications can arrive in a burst (a refresh wave, a loop stalled by a
   * garbage collection): a larger receive buffer keeps them instead of dropping them, which
   * would cost a retransmission and, with short Expires, a late refresh. The kernel caps it
   * at net.core.rmem_max; failing to raise it is not an error. */
  int size = RECV_BUFFER_BYTES;
  uv_recv_buffer_size((uv_handle_t *)&drv->udp, &size);
  return uv_udp_recv_start(&drv->udp, on_alloc, on_recv);
}

uint64_t sipub_uv_now(sipub_uv *drv)
{
  uv_update_time(drv->loop);
  return uv_now(drv->loop);
}

void sipub_uv_sync(sipub_uv *drv)
{
  if (drv->closing || !drv->ua) return;
  uint64_t d = sipub_ua_next_deadline(drv->ua);
  if (d == UINT64_MAX) {
    uv_timer_stop(&drv->timer);
    return;
  }
  uint64_t now = uv_now(drv->loop);
  uv_timer_start(&drv->timer, on_timer, d > now ? d - now : 0, 0);
}

void sipub_uv_close(sipub_uv *drv)
{
  if (drv->closing) return;
  if (drv->nout) flush(drv); /* what the core was told is sent still leaves */
  drv->closing = 1;
  drv->ua = NULL;
  for (dest *d = drv->dests; d; d = d->next)
    if (d->state == 0) uv_cancel((uv_req_t *)&d->req);
  uv_close((uv_handle_t *)&drv->udp, on_close);
  uv_close((uv_handle_t *)&drv->timer, on_close);
}
