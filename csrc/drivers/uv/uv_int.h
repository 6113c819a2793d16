/* uv_int.h — the libuv driver's internal types and the functions its files share: the driver
 * object (uv_driver.c), UDP batching and receiving (uv_udp.c), name resolution (uv_dns.c). */
#ifndef SIPUB_UV_INT_H
#define SIPUB_UV_INT_H

#include "sipub_uv.h"

#include <sys/socket.h>

/* Receiving: libuv's recvmmsg mode cuts the buffer given by the alloc callback into 64 KiB
 * chunks, one datagram each, and reads at most 20 datagrams per recvmmsg(2) call. */
#define RECV_BUFFER_BYTES (4 * 1024 * 1024)
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

/* A next hop: a literal address (the core resolves names through uv_dns.c first). */
typedef struct dest {
  struct dest *next;
  char *host; /* as the core wrote it: reported back with it */
  int port;
  struct sockaddr_storage addr;
  int proven;      /* a datagram went out to it directly: later ones may be queued */
  int send_failed; /* a queued datagram could not be sent: reported at the end of the batch */
  int send_errno;  /* why, for the report */
} dest;

/* A datagram queued for the end of the batch: its bytes are in sipub_uv.obuf. */
typedef struct out_dgram {
  dest *d;
  size_t off, len;
} out_dgram;

typedef struct dns_query dns_query;

struct sipub_uv {
  uv_loop_t *loop;
  uv_udp_t udp;
  uv_timer_t timer;
  sipub_io io;
  sipub_ua *ua;
  sipub_uv_after_fn after;
  void *after_ud;
  dest *dests;
  dns_query *queries; /* getaddrinfo requests in flight, cancelled by close */
  int port;
  int family;
  int closing;
  int refs; /* handles and requests still owned by libuv */
  int fd;   /* the socket, for sendmmsg */
  int batching; /* > 0 inside a driver callback: sends are queued (udp_send) */
  int in_recv;  /* datagrams of the current recvmmsg batch were given to the core */
  int any_failed; /* some dest has send_failed set */
  size_t nout;
  out_dgram out[OUT_MAX];
  char *obuf; /* the queued datagrams' bytes: the core keeps its own for retransmissions */
  size_t olen, ocap;
  char *rbuf; /* RECV_CHUNKS chunks: datagrams stay there until the next recvmmsg */
};

/* uv_driver.c */
void drv_unref(sipub_uv *drv);
void drv_notify(sipub_uv *drv);
void drv_begin_batch(sipub_uv *drv);
void drv_end_batch(sipub_uv *drv);

/* uv_udp.c */
/* A literal address ("1.2.3.4", "::1" or "[::1]") and port as a socket address; 0, or -1. */
int udp_literal_addr(const char *host, int port, struct sockaddr_storage *ss);
int udp_send(void *ud, const sipub_dest *target, const char *data, size_t len);
void udp_flush(sipub_uv *drv);
void udp_free_dests(sipub_uv *drv);
void udp_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
void udp_on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                 unsigned flags);

/* uv_dns.c */
int dns_resolve(void *ud, uint32_t query_id, const char *name, sipub_rr_type type);
void dns_cancel_all(sipub_uv *drv);

#endif
