/* compositor.c — the test Event State Compositor: processes PUBLISH per RFC 3903 §6 (489,
 * 400, 423, 412, new entity-tag per success), answers retransmissions; its UDP socket and timers. */
#include "compositor_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void unref(sipub_compositor *c)
{
  if (--c->refs) return;
  store_map_sweep(&c->by_etag, store_drop_all_entries, NULL);
  store_map_sweep(&c->cache, store_drop_all_cached, NULL);
  free(c->by_etag.b);
  free(c->cache.b);
  for (char **e = c->events; e && *e; e++) free(*e);
  free(c->events);
  free(c->hdrs);
  free(c->hdrbuf);
  free(c);
}

/* ---- sending ------------------------------------------------------------------------- */

static void send_now(sipub_compositor *c, const struct sockaddr *to, const char *data, size_t len)
{
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  uv_udp_try_send(&c->udp, &b, 1, to); /* a full socket buffer loses it, as the network may */
}

static void delayed_closed(uv_handle_t *h)
{
  delayed *d = h->data;
  sipub_compositor *c = d->c;
  free(d);
  unref(c);
}

static void delayed_unlink(delayed *d)
{
  if (d->prev) d->prev->next = d->next;
  else d->c->delayed = d->next;
  if (d->next) d->next->prev = d->prev;
  d->prev = d->next = NULL;
}

static void on_delayed(uv_timer_t *t)
{
  delayed *d = t->data;
  delayed_unlink(d);
  if (!d->c->closing) send_now(d->c, (struct sockaddr *)&d->to, d->data, d->len);
  uv_close((uv_handle_t *)t, delayed_closed);
}

static void send_later(sipub_compositor *c, const struct sockaddr *to, const char *data, size_t len,
                       double delay)
{
  delayed *d = malloc(sizeof *d + len);
  if (!d) return;
  d->c = c;
  memcpy(&d->to, to, to->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
  d->len = len;
  memcpy(d->data, data, len);
  uv_timer_init(c->loop, &d->t);
  d->t.data = d;
  d->prev = NULL;
  d->next = c->delayed;
  if (d->next) d->next->prev = d;
  c->delayed = d;
  c->refs++;
  uv_timer_start(&d->t, on_delayed, (uint64_t)(delay * 1000 + 0.5), 0);
}


/* ---- the rules ----------------------------------------------------------------------- */

static int event_allowed(const sipub_compositor *c, const char *ev)
{
  if (!c->events) return 1;
  for (char **e = c->events; *e; e++)
    if (strcasecmp(*e, ev) == 0) return 1;
  return 0;
}

/* RFC 3903 §6, in its order. Fills the code and the extra headers of the answer, and the
 * entity-tag and interval it grants. */
static int process(sipub_compositor *c, osip_message_t *m, const char *uri, const char *event,
                   long expires, const char *if_match, const char *body, size_t body_len,
                   char *extra, size_t extra_size, const char **etag_out, long *granted)
{
  uint64_t now = uv_now(c->loop);
  char num[32];
  if (!event || !*event) return 489;
  if (!event_allowed(c, event)) {
    size_t n = 0;
    char list[256] = "";
    for (char **e = c->events; *e; e++) n += (size_t)snprintf(list + n, n < sizeof list ? sizeof list - n : 0, "%s%s", n ? ", " : "", *e);
    wire_appendf(extra, extra_size, "%s: %s\r\n", "Allow-Events", list);
    return 489;
  }
  if (expires == -2) return 400;
  if (expires == -1) expires = c->default_expires;
  if (expires > 0 && c->min_expires && expires < c->min_expires) {
    snprintf(num, sizeof num, "%d", c->min_expires);
    wire_appendf(extra, extra_size, "%s: %s\r\n", "Min-Expires", num);
    return 423;
  }
  if (expires > c->max_expires) expires = c->max_expires;

  entry *e = NULL;
  if (if_match) {
    e = store_map_get(&c->by_etag, if_match);
    if (e && e->expires_at <= now) { /* expired: as good as gone */
      store_map_del(&c->by_etag, if_match);
      store_entry_free(e);
      e = NULL;
    }
    if (!e || strcmp(e->uri, uri) != 0 || strcasecmp(e->event, event) != 0) return 412;
    store_map_del(&c->by_etag, if_match);
    if (expires == 0) {
      store_entry_free(e);
      wire_appendf(extra, extra_size, "%s: %s\r\n", "Expires", "0");
      *granted = 0;
      return 200;
    }
    free(e->etag);
    e->etag = NULL;
  } else {
    if (!body || expires == 0) return 400;
    e = calloc(1, sizeof *e);
    if (!e || !(e->uri = strdup(uri)) || !(e->event = strdup(event))) {
      if (e) store_entry_free(e);
      return 500;
    }
  }
  if (body) {
    osip_content_type_t *ct = osip_message_get_content_type(m);
    char *ctype = NULL;
    if (ct) osip_content_type_to_str(ct, &ctype);
    free(e->body);
    free(e->ctype);
    e->body = malloc(body_len + 1);
    if (e->body) {
      memcpy(e->body, body, body_len);
      e->body[body_len] = '\0';
    }
    e->body_len = body_len;
    e->ctype = ctype ? strdup(ctype) : NULL;
    osip_free(ctype);
  }
  e->etag = store_new_etag(c);
  e->expires_at = now + (uint64_t)expires * 1000;
  if (!e->etag || store_map_put(&c->by_etag, e->etag, e) != 0) {
    store_entry_free(e);
    return 500;
  }
  wire_appendf(extra, extra_size, "%s: %s\r\n", "SIP-ETag", e->etag);
  snprintf(num, sizeof num, "%ld", expires);
  wire_appendf(extra, extra_size, "%s: %s\r\n", "Expires", num);
  *etag_out = e->etag;
  *granted = expires;
  return 200;
}

static void handle(sipub_compositor *c, const char *data, size_t len, const struct sockaddr *from)
{
  osip_message_t *m = NULL;
  char *scratch = NULL, *uri = NULL;
  char src[64] = "";
  int src_port = 0;
  if (len < 4 || memcmp(data, "SIP/", 4) == 0) return; /* responses are not for us */
  if (from->sa_family == AF_INET) {
    uv_ip4_name((const struct sockaddr_in *)from, src, sizeof src);
    src_port = ntohs(((const struct sockaddr_in *)from)->sin_port);
  } else {
    uv_ip6_name((const struct sockaddr_in6 *)from, src, sizeof src);
    src_port = ntohs(((const struct sockaddr_in6 *)from)->sin6_port);
  }

  /* Framing (RFC 3261 §18.3) by the core's framer, with a datagram's tolerances: a message
   * without Content-Length ends with its datagram (only a stream needs the header); bytes
   * past Content-Length are not the message; a datagram that ends before it, or a malformed
   * value, is answered 400, its header section parsed on its own. The framer also ends the
   * header section at a bare LF line end, which hand-written test requests use. */
  sipub_frame fr;
  int framing = sipub_frame_message(data, len, &fr);
  size_t body_off = fr.header_len, cl_off = fr.cl_off, cl_len = fr.cl_len;
  if (!body_off) return;
  int bad_framing = framing == SIPUB_FRAME_BAD || framing == SIPUB_FRAME_MORE;
  if (framing == SIPUB_FRAME_COMPLETE) len = fr.msg_len;
  const char *pdata = data;
  size_t plen = len;
  if (bad_framing) {
    if (!(scratch = malloc(body_off))) return;
    memcpy(scratch, data, body_off);
    memset(scratch + cl_off, ' ', cl_len);
    if (cl_len) scratch[cl_off] = '0';
    pdata = scratch;
    plen = body_off;
  }

  if (osip_message_init(&m) != 0) goto done;
  if (osip_message_parse(m, pdata, plen) != 0 || !MSG_IS_REQUEST(m) || !m->sip_method ||
      osip_list_size(&m->vias) < 1 || strcmp(m->sip_method, "ACK") == 0)
    goto done;

  sipub_compositor_outcome oc = { .method = m->sip_method, .expires = -1, .granted = -1 };
  oc.uri = osip_uri_to_str(m->req_uri, &uri) == 0 ? uri : "";
  char evbuf[128];
  const char *event = wire_header_value(m, "event");
  if (!event) event = wire_header_value(m, "o");
  oc.event = event = wire_event_package(event, evbuf, sizeof evbuf);
  oc.if_match = wire_header_value(m, "sip-if-match");
  oc.expires = wire_parse_expires(wire_header_value(m, "expires"));
  osip_via_t *via = osip_list_get(&m->vias, 0);
  osip_generic_param_t *br = NULL;
  osip_via_param_get_byname(via, "branch", &br);
  const char *branch = br && br->gvalue ? br->gvalue : NULL;
  char key[256];
  int keyed = branch && (size_t)snprintf(key, sizeof key, "%s %s", branch, m->sip_method) < sizeof key;
  uint64_t now = uv_now(c->loop);
  cached *k = keyed ? store_map_get(&c->cache, key) : NULL;
  if (k) { /* a retransmission: the same answer again, once it is due */
    if (k->resp && now >= k->ready_at) {
      send_now(c, from, k->resp, k->len);
      oc.code = k->code;
    }
    oc.retransmission = 1;
    if (c->log) c->log(c->log_ud, &oc);
    goto done;
  }

  int code;
  char extra[2048] = "";
  sipub_compositor_action act;
  memset(&act, 0, sizeof act);
  if (bad_framing || !m->cseq || !m->call_id || !m->from || !m->to) {
    code = 400;
  } else if (strcmp(m->sip_method, "PUBLISH") != 0) {
    code = strcmp(m->sip_method, "OPTIONS") == 0 ? 200 : 405;
    wire_appendf(extra, sizeof extra, "%s: %s\r\n", "Allow", "PUBLISH, OPTIONS");
  } else {
    const char *if_match = oc.if_match;
    long expires = oc.expires;
    osip_body_t *b = NULL;
    osip_message_get_body(m, 0, &b);
    const char *body = b && b->length ? b->body : NULL;
    size_t body_len = b ? b->length : 0;
    oc.number = ++c->number;
    if (c->hook) {
      char *cid = NULL, *ctype = NULL;
      osip_content_type_t *ctt = osip_message_get_content_type(m);
      osip_call_id_to_str(m->call_id, &cid);
      if (ctt) osip_content_type_to_str(ctt, &ctype);
      sipub_compositor_request rq = {
        .method = m->sip_method, .uri = oc.uri, .event = event, .etag = if_match,
        .content_type = ctype, .call_id = cid, .branch = branch, .body = body,
        .body_len = body_len, .expires = expires,
        .cseq = strtoul(m->cseq->number ? m->cseq->number : "0", NULL, 10),
        .data = data, .len = len, .source_host = src, .source_port = src_port,
        .number = c->number,
      };
      rq.n_headers = wire_scan_headers(c, data, body_off);
      rq.headers = c->hdrs;
      c->hook(c->hook_ud, &rq, &act);
      osip_free(cid);
      osip_free(ctype);
    }
    if (c->closing || act.drop) code = 0;
    else if (act.code) code = act.code;
    else code = process(c, m, oc.uri, event, expires, if_match, body, body_len, extra,
                        sizeof extra, &oc.etag, &oc.granted);
  }
  if (c->closing) goto done;

  size_t rlen = 0;
  if (code) {
    size_t n = strlen(extra);
    snprintf(extra + n, sizeof extra - n, "%s", act.headers);
    rlen = wire_build_response(c, m, code, act.reason, extra, src, src_port);
    if (!rlen) code = 0;
  }
  oc.code = code;
  oc.delay = act.delay > 0 ? act.delay : 0;
  if (keyed && (k = calloc(1, sizeof *k))) {
    k->code = code;
    k->len = rlen;
    k->ready_at = now + (uint64_t)(oc.delay * 1000 + 0.5);
    k->until = k->ready_at + 32000;
    if ((rlen && !(k->resp = malloc(rlen))) || store_map_put(&c->cache, key, k) != 0) {
      store_cached_free(k);
    } else if (rlen) {
      memcpy(k->resp, c->out, rlen);
    }
  }
  if (rlen) {
    if (oc.delay > 0) send_later(c, from, c->out, rlen, oc.delay);
    else send_now(c, from, c->out, rlen);
  }
  if (c->log) c->log(c->log_ud, &oc);
done:
  osip_free(uri);
  if (m) osip_message_free(m);
  free(scratch);
}

/* ---- libuv plumbing ------------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  sipub_compositor *c = h->data;
  *buf = uv_buf_init(c->buf, sizeof c->buf);
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags)
{
  sipub_compositor *c = h->data;
  if (nread > 0 && addr && !c->closing && !(flags & UV_UDP_PARTIAL))
    handle(c, buf->base, (size_t)nread, addr);
}

static void on_sweep(uv_timer_t *t)
{
  sipub_compositor *c = t->data;
  uint64_t now = uv_now(c->loop);
  store_map_sweep(&c->by_etag, store_drop_expired_entry, &now);
  store_map_sweep(&c->cache, store_drop_old_cached, &now);
}

static void on_closed(uv_handle_t *h)
{
  unref(h->data);
}

static int is_loopback(const struct sockaddr_storage *ss)
{
  if (ss->ss_family == AF_INET)
    return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
  const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
  static const unsigned char lo[16] = { [15] = 1 };
  return memcmp(a, lo, 16) == 0;
}

sipub_compositor *sipub_compositor_new(uv_loop_t *loop, const sipub_compositor_opts *o, int *err)
{
  struct sockaddr_storage ss;
  const char *host = o->host ? o->host : "127.0.0.1";
  sipub_global_init();
  memset(&ss, 0, sizeof ss);
  if (uv_ip4_addr(host, o->port, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(host, o->port, (struct sockaddr_in6 *)&ss) != 0) {
    *err = UV_EINVAL;
    return NULL;
  }
  if (!o->any_address && !is_loopback(&ss)) {
    *err = UV_EINVAL;
    return NULL;
  }
  sipub_compositor *c = calloc(1, sizeof *c);
  if (!c) { *err = UV_ENOMEM; return NULL; }
  c->loop = loop;
  c->min_expires = o->min_expires > 0 ? o->min_expires : 0;
  c->max_expires = o->max_expires > 0 ? o->max_expires : 86400;
  c->default_expires = o->default_expires > 0 ? o->default_expires : 3600;
  c->rng = uv_hrtime();
  if (o->events) {
    size_t n = 0;
    while (o->events[n]) n++;
    c->events = calloc(n + 1, sizeof *c->events);
    for (size_t i = 0; c->events && i < n; i++) c->events[i] = strdup(o->events[i]);
  }
  int rc = uv_udp_init(loop, &c->udp);
  if (rc != 0) { free(c->events); free(c); *err = rc; return NULL; }
  c->udp.data = c;
  uv_timer_init(loop, &c->sweep);
  c->sweep.data = c;
  c->refs = 3; /* the two handles and the owner */
  if ((rc = uv_udp_bind(&c->udp, (struct sockaddr *)&ss, 0)) != 0) {
    *err = rc;
    sipub_compositor_close(c);
    return NULL;
  }
  /* A client with many publications sends refreshes in bursts: the default receive buffer
   * (about a hundred small datagrams) would drop some, and each costs a retransmission. The
   * kernel caps the size at net.core.rmem_max; failing to raise it is not an error. */
  int rcvbuf = 4 << 20;
  uv_recv_buffer_size((uv_handle_t *)&c->udp, &rcvbuf);
  if ((rc = uv_udp_recv_start(&c->udp, on_alloc, on_recv)) != 0) {
    *err = rc;
    sipub_compositor_close(c);
    return NULL;
  }
  struct sockaddr_storage bound;
  int blen = sizeof bound;
  uv_udp_getsockname(&c->udp, (struct sockaddr *)&bound, &blen);
  c->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
  uv_timer_start(&c->sweep, on_sweep, 1000, 1000);
  uv_unref((uv_handle_t *)&c->sweep); /* housekeeping only: never keeps the loop alive */
  return c;
}

void sipub_compositor_set_hook(sipub_compositor *c, sipub_compositor_hook hook, void *ud)
{
  c->hook = hook;
  c->hook_ud = ud;
}

void sipub_compositor_set_log(sipub_compositor *c, sipub_compositor_log log, void *ud)
{
  c->log = log;
  c->log_ud = ud;
}

int sipub_compositor_port(const sipub_compositor *c)
{
  return c->port;
}

void sipub_compositor_close(sipub_compositor *c)
{
  if (c->closing) return;
  c->closing = 1;
  while (c->delayed) { /* answers not sent yet are lost, as with a server going down */
    delayed *d = c->delayed;
    delayed_unlink(d);
    uv_close((uv_handle_t *)&d->t, delayed_closed);
  }
  uv_close((uv_handle_t *)&c->udp, on_closed);
  uv_close((uv_handle_t *)&c->sweep, on_closed);
  unref(c);
}
