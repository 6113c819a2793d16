/* sipub_uv.h — the libuv driver of the protocol core: one UDP socket, one timer and the
 * core's name queries (uv_getaddrinfo) on a uv_loop_t. Usable from plain C, without Lua. */
#ifndef SIPUB_UV_H
#define SIPUB_UV_H

#include <uv.h>
#include "sipub.h"

typedef struct sipub_uv sipub_uv;

/* Called after the driver fed the core (a batch of datagrams read at once, a timer, a send
 * failure, a resolver answer): drain the events with sipub_ua_poll(), then call sipub_uv_sync().
 * Requests made meanwhile (in this callback, or by the core inside the driver's callbacks)
 * are queued and leave together in one sendmmsg(2) when it returns; the first to a next
 * hop and big ones go out at once, so that a refusal is still send()'s result. A queued
 * datagram the kernel refuses later fails every transaction to its next hop
 * (sipub_ua_flow_failed, the kernel's reason as the events' detail) and this callback runs
 * again. Requests made outside the driver's
 * callbacks leave at once, as before. */
typedef void (*sipub_uv_after_fn)(void *ud);

/* Binds a UDP socket on host:port (port 0: any). NULL with *err = a libuv error code. */
sipub_uv *sipub_uv_new(uv_loop_t *loop, const char *host, int port, int *err);
/* The transport and resolver seams to give sipub_ua_new(): sends go to literal addresses
 * only (others are refused); the core asks for names' addresses through io.resolve, which
 * runs uv_getaddrinfo in the socket's family, answers being kept 60 s (getaddrinfo gives no
 * TTL). */
const sipub_io *sipub_uv_io(sipub_uv *drv);
/* The bound port. */
int sipub_uv_port(const sipub_uv *drv);
/* The address to write in Via for requests to next_hop when bound to a wildcard address:
 * the local address the kernel would use to reach it (loopback for a loopback hop). */
void sipub_uv_guess_via_host(const sipub_uv *drv, const char *next_hop, char *out, size_t n);
/* Connects the driver to its core and starts receiving. */
int sipub_uv_start(sipub_uv *drv, sipub_ua *ua, sipub_uv_after_fn after, void *ud);
/* Re-arms the timer for the core's next deadline; call after every call into the core. */
void sipub_uv_sync(sipub_uv *drv);
/* The loop's clock in ms, refreshed. */
uint64_t sipub_uv_now(sipub_uv *drv);
/* Closes the socket and the timer; the driver frees itself once libuv is done with it.
 * The core must not be used with this driver afterwards. */
void sipub_uv_close(sipub_uv *drv);

#endif
