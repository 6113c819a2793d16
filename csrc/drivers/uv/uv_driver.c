/* uv_driver.c — drives the sans-I/O core with libuv: the driver object and its lifetime, one
 * timer following the core's next deadline, and the batches its callbacks run in. */
#include "uv_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void drv_unref(sipub_uv *drv)
{
  if (--drv->refs == 0) {
    udp_free_dests(drv);
    free(drv->obuf);
    free(drv->rbuf);
    free(drv);
  }
}

void drv_notify(sipub_uv *drv)
{
  if (!drv->closing && drv->after) drv->after(drv->after_ud);
}

void drv_begin_batch(sipub_uv *drv)
{
  drv->batching++;
}

/* The end of a driver callback: sends what it queued, then reports the dests that refused
 * a datagram to the core (every transaction to them fails with "Connection Error", as the
 * io contract says for a failure found after send() returned, the kernel's reason as the
 * detail) and lets the application see the events; what that sends is flushed in turn. */
void drv_end_batch(sipub_uv *drv)
{
  if (drv->batching > 1) {
    drv->batching--;
    return;
  }
  while (!drv->closing) {
    if (drv->nout) udp_flush(drv);
    if (!drv->any_failed) break;
    drv->any_failed = 0;
    for (dest *d = drv->dests; d; d = d->next) {
      if (!d->send_failed) continue;
      char reason[160];
      sipub_dest flow = { d->host, d->port, SIPUB_TP_UDP };
      snprintf(reason, sizeof reason, "%.64s:%d %s", d->host, d->port, uv_strerror(uv_translate_sys_error(d->send_errno)));
      d->send_failed = 0;
      d->proven = 0;
      sipub_ua_flow_failed(drv->ua, &flow, reason);
    }
    drv_notify(drv);
    sipub_uv_sync(drv);
  }
  drv->batching = 0;
}

static void on_timer(uv_timer_t *t)
{
  sipub_uv *drv = t->data;
  drv_begin_batch(drv);
  uv_update_time(drv->loop);
  sipub_ua_tick(drv->ua, uv_now(drv->loop));
  drv_notify(drv);
  sipub_uv_sync(drv);
  drv_end_batch(drv);
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
  if (udp_literal_addr(host, port, &ss) != 0) { free(drv); *err = UV_EINVAL; return NULL; }
  drv->loop = loop;
  drv->family = ss.ss_family == AF_INET6 ? AF_UNSPEC : AF_INET;
  drv->io.ud = drv;
  drv->io.send = udp_send;
  drv->io.resolve = dns_resolve;
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
  if (udp_literal_addr(next_hop, 5060, &ss) == 0) {
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
  return uv_udp_recv_start(&drv->udp, udp_on_alloc, udp_on_recv);
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
  if (drv->nout) udp_flush(drv); /* what the core was told is sent still leaves */
  drv->closing = 1;
  drv->ua = NULL;
  dns_cancel_all(drv);
  uv_close((uv_handle_t *)&drv->udp, on_close);
  uv_close((uv_handle_t *)&drv->timer, on_close);
}
