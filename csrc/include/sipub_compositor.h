/* compositor.h — a small RFC 3903 Event State Compositor on libuv + libosip2 for tests and
 * demos: entity-tags, SIP-If-Match (412), Min-Expires (423), expiry, scripted answers. */
#ifndef SIPUB_COMPOSITOR_H
#define SIPUB_COMPOSITOR_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct sipub_compositor sipub_compositor;

typedef struct sipub_compositor_opts {
  const char *host;        /* a loopback address unless any_address */
  int port;                /* 0: any */
  int min_expires;         /* 0: no minimum (no 423) */
  int max_expires;         /* 0: 86400 */
  int default_expires;     /* 0: 3600 */
  const char *const *events; /* NULL-terminated list of accepted packages, NULL: any */
  int any_address;
} sipub_compositor_opts;

/* One header line of a request as received: name as written (compact forms stay compact),
 * value with surrounding whitespace removed and continuation lines joined. */
typedef struct sipub_compositor_header {
  const char *name, *value;
} sipub_compositor_header;

/* What a PUBLISH looked like, for the hook. Pointers are valid during the call only. */
typedef struct sipub_compositor_request {
  const char *method, *uri, *event, *etag, *content_type, *call_id, *branch;
  const char *body;        /* NULL when the request has none */
  size_t body_len;
  long expires;            /* -1 absent, -2 malformed */
  unsigned long cseq;
  const char *data;        /* the raw request (up to the end of its Content-Length) */
  size_t len;
  const char *source_host;
  int source_port;
  unsigned long number;    /* 1 for the first PUBLISH received, not counting retransmissions */
  const sipub_compositor_header *headers; /* every header line, in order */
  size_t n_headers;
} sipub_compositor_request;

/* The hook's answer. Leave it as given (code 0) for the compositor's own processing. */
typedef struct sipub_compositor_action {
  int code;                /* answer this code instead of processing the request */
  char reason[64];         /* "" : the standard phrase */
  char headers[1024];      /* extra header lines "Name: value\r\n", added to the answer */
  double delay;            /* seconds to wait before answering */
  int drop;                /* stay silent (retransmissions too) */
} sipub_compositor_action;

typedef void (*sipub_compositor_hook)(void *ud, const sipub_compositor_request *req,
                                      sipub_compositor_action *act);

/* What a request got, for a log line: called once per request received (retransmissions
 * included), after the answer was decided. Pointers are valid during the call only. */
typedef struct sipub_compositor_outcome {
  unsigned long number;    /* the PUBLISH number, 0 for other methods and retransmissions */
  const char *method, *uri, *event, *if_match; /* event, if_match: NULL when absent */
  long expires;            /* requested: -1 absent, -2 malformed */
  int code;                /* the status answered, 0 when nothing is (dropped, or a
                              retransmission while the answer is delayed) */
  int retransmission;      /* 1: matched to an earlier transaction, not processed again */
  const char *etag;        /* the SIP-ETag answered, or NULL */
  long granted;            /* the Expires answered, or -1 */
  double delay;            /* seconds until the answer is sent */
} sipub_compositor_outcome;

typedef void (*sipub_compositor_log)(void *ud, const sipub_compositor_outcome *o);

/* NULL with *err = a libuv error code (UV_EINVAL for a non-loopback host). */
sipub_compositor *sipub_compositor_new(uv_loop_t *loop, const sipub_compositor_opts *o, int *err);
void sipub_compositor_set_hook(sipub_compositor *c, sipub_compositor_hook hook, void *ud);
void sipub_compositor_set_log(sipub_compositor *c, sipub_compositor_log log, void *ud);
int sipub_compositor_port(const sipub_compositor *c);
size_t sipub_compositor_count(sipub_compositor *c); /* live (unexpired) publications */

typedef void (*sipub_compositor_each_fn)(void *ud, const char *uri, const char *event,
                                         const char *etag, const char *body, size_t body_len,
                                         const char *content_type, double expires_in);
void sipub_compositor_each(sipub_compositor *c, sipub_compositor_each_fn fn, void *ud);
/* Forgets every publication, as a restart would: later refreshes get 412. */
void sipub_compositor_clear(sipub_compositor *c);
/* Closes the socket and timers (delayed answers are not sent); memory is released once
 * libuv is done with them. No hook or log call happens afterwards. */
void sipub_compositor_close(sipub_compositor *c);

#endif
