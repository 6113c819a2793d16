/* flow.c — receiving by flow: datagrams as they come, byte streams (TCP, TLS) framed into
 * messages (frame.c) across reads, one buffer per flow; and failing a flow. */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A stream flow's bytes that do not make a whole message yet (no entry when there are none). */
typedef struct stream_buf {
  struct stream_buf *next;
  sipub_transport tp;
  int port;
  char *host;
  char *data;
  size_t len, cap;
  size_t need; /* the buffered message's whole length once its header section is in, or 0 */
} stream_buf;

static int same_flow(const stream_buf *s, const sipub_dest *d)
{
  return s->tp == d->tp && s->port == d->port && strcmp(s->host, d->host) == 0;
}

static stream_buf **find_stream(sipub_ua *ua, const sipub_dest *flow)
{
  stream_buf **pp = &ua->streams;
  while (*pp && !same_flow(*pp, flow)) pp = &(*pp)->next;
  return pp;
}

static void stream_free(stream_buf *s)
{
  free(s->host);
  free(s->data);
  free(s);
}

static void flow_drop(sipub_ua *ua, const sipub_dest *flow)
{
  stream_buf **pp = find_stream(ua, flow);
  if (!*pp) return;
  stream_buf *s = *pp;
  *pp = s->next;
  stream_free(s);
}

void flow_free_all(sipub_ua *ua)
{
  while (ua->streams) {
    stream_buf *s = ua->streams;
    ua->streams = s->next;
    stream_free(s);
  }
}

/* CR and LF between messages: RFC 5626 keep-alive pongs (and the CRLF RFC 3261 §7.5 says
 * to ignore before a start line). */
static size_t skip_crlf(const char *d, size_t len)
{
  size_t i = 0;
  while (i < len && (d[i] == '\r' || d[i] == '\n')) i++;
  return i;
}

/* Delivers the whole messages at the start of d; returns the bytes used (a partial message
 * stays, its length in *need when known), or -1 on a framing error. */
static long deliver_messages(sipub_ua *ua, const sipub_dest *from, const char *d, size_t len,
                             size_t *need)
{
  size_t used = 0;
  *need = 0;
  for (;;) {
    used += skip_crlf(d + used, len - used);
    if (used == len) return (long)used;
    sipub_frame f;
    int r = sipub_frame_message(d + used, len - used, &f);
    if (r == SIPUB_FRAME_MORE) {
      *need = f.msg_len;
      return (long)used;
    }
    if (r != SIPUB_FRAME_COMPLETE) return -1;
    txn_receive(ua, from, d + used, f.msg_len);
    used += f.msg_len;
  }
}

/* The flow fails; the bytes that could not be framed (data, len) are traced as dropped. */
static void stream_error(sipub_ua *ua, const sipub_dest *from, const char *why, const char *data,
                         size_t len)
{
  char detail[160];
  snprintf(detail, sizeof detail, "%s from %.64s:%d", why, from->host, from->port);
  if (ua->trace) trace_dropped(ua, from, data, len, SIPUB_DROP_FRAMING, detail);
  sipub_ua_flow_failed(ua, from, detail);
}

/* Keeps data (the start of a cut message) in a new buffer of the flow; NULL when out of
 * memory (a stream that lost bytes cannot be framed again). */
static stream_buf *stream_new(sipub_ua *ua, const sipub_dest *from)
{
  stream_buf *s = calloc(1, sizeof *s);
  if (!s || !(s->host = strdup(from->host))) {
    free(s);
    return NULL;
  }
  s->tp = from->tp;
  s->port = from->port;
  s->next = ua->streams;
  ua->streams = s;
  return s;
}

/* A stream read: whole messages are read from data itself, only a cut one is copied. The
 * driver must not call the core re-entrantly from io.send() (no driver does), so the flow's
 * buffer stays put while its messages are delivered. */
static int receive_stream(sipub_ua *ua, const sipub_dest *from, const char *data, size_t len)
{
  stream_buf *s = *find_stream(ua, from);
  size_t need = 0;
  const char *bad = data; /* where framing stands: the read, or the flow's buffer */
  size_t bad_len = len;
  if (!s) {
    long used = deliver_messages(ua, from, data, len, &need);
    if (used < 0) goto unframeable;
    data += used;
    len -= (size_t)used;
    if (!len) return 0;
    if (!(s = stream_new(ua, from))) goto no_memory;
    s->need = need;
  }
  /* What stays after delivering is a cut message the framer accepted, so under
   * SIPUB_FRAME_MAX: the buffer never holds more than that and one read. */
  if (s->len + len > s->cap) {
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->len + len) cap *= 2;
    char *b = realloc(s->data, cap);
    if (!b) goto no_memory;
    s->data = b;
    s->cap = cap;
  }
  memcpy(s->data + s->len, data, len);
  s->len += len;
  if (s->len < s->need) return 0; /* a body still coming: not framed again until it is in */
  long used = deliver_messages(ua, from, s->data, s->len, &s->need);
  if (used < 0) {
    bad = s->data;
    bad_len = s->len;
    goto unframeable;
  }
  memmove(s->data, s->data + used, s->len - (size_t)used);
  s->len -= (size_t)used;
  if (!s->len) /* a flow keeps a buffer only while a message is cut: many flows cost nothing */
    flow_drop(ua, from);
  return 0;
unframeable:
  stream_error(ua, from, "unframeable message", bad, bad_len);
  return -1;
no_memory:
  stream_error(ua, from, "out of memory for a message", data, len);
  return -1;
}

int sipub_ua_receive(sipub_ua *ua, uint64_t now_ms, const sipub_dest *from, const char *data,
                     size_t len)
{
  if (now_ms > ua->now) ua->now = now_ms;
  if (!from || from->tp == SIPUB_TP_UDP || !from->host) {
    txn_receive(ua, from, data, len);
    return 0;
  }
  return receive_stream(ua, from, data, len);
}

void sipub_ua_flow_failed(sipub_ua *ua, const sipub_dest *flow, const char *reason)
{
  if (!flow || !flow->host) return;
  flow_drop(ua, flow);
  resolve_flow_failed(ua, flow);
  txn_flow_failed(ua, flow, SIPUB_CAUSE_CONNECTION_ERROR, reason);
}

void sipub_ua_dest_failed(sipub_ua *ua, const char *host, int port)
{
  sipub_dest d = { host, port, SIPUB_TP_UDP };
  sipub_ua_flow_failed(ua, &d, NULL);
}
