/* driver_uv.c — drives the sans-I/O core with libuv: datagrams in and out of one UDP socket,
 * a single timer following the core's next deadline, asynchronous name resolution. */
#include "sipub_uv.h"

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
} dest;

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
  int in_recv;  /* datagrams of the current recvmmsg batch were given to the core */
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

static int send_to(sipub_uv *drv, const struct sockaddr *sa, const char *data, size_t len)
{
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  int rc = uv_udp_try_send(&drv->udp, &b, 1, sa);
  if (rc >= 0) return 0;
  if (rc != UV_EAGAIN && rc != UV_ENOSYS) return -1;
  /* The socket buffer is full: hand libuv a copy to send when it can. */
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
    while (d->queue) {
      pending_dgram *p = d->queue;
      d->queue = p->next;
      if (!failed && send_to(drv, (struct sockaddr *)&d->addr, p->data, p->len) != 0) failed = 1;
      free(p);
    }
    d->tail = &d->queue;
    if (failed) sipub_ua_dest_failed(drv->ua, d->host, d->port); /* state -1: resolve again next time */
    notify(drv);
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
  if (drv->closing) return -1;
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
  if (d->state == 1) return send_to(drv, (struct sockaddr *)&d->addr, data, len);

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
 * core gets every datagram as it comes; the application is told once per batch. */
static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags)
{
  sipub_uv *drv = h->data;
  if (drv->closing) return;
  if (nread > 0 && addr && !(flags & UV_UDP_PARTIAL)) {
    drv->in_recv = 1;
    sipub_ua_receive(drv->ua, uv_now(drv->loop), buf->base, (size_t)nread);
  }
  if ((flags & UV_UDP_MMSG_CHUNK) || !drv->in_recv) return;
  drv->in_recv = 0;
  notify(drv);
}

static void on_timer(uv_timer_t *t)
{
  sipub_uv *drv = t->data;
  uv_update_time(drv->loop);
  sipub_ua_tick(drv->ua, uv_now(drv->loop));
  notify(drv);
  sipub_uv_sync(drv);
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
  drv->closing = 1;
  drv->ua = NULL;
  for (dest *d = drv->dests; d; d = d->next)
    if (d->state == 0) uv_cancel((uv_req_t *)&d->req);
  uv_close((uv_handle_t *)&drv->udp, on_close);
  uv_close((uv_handle_t *)&drv->timer, on_close);
}
