/* compositor.c — the test Event State Compositor: processes PUBLISH per RFC 3903 §6 (489,
 * 400, 423, 412, new entity-tag per success), expires state, answers retransmissions. */
#include "sipub_compositor.h"
#include "sipub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <osipparser2/osip_parser.h>

/* ---- a string-keyed hash map --------------------------------------------------------- */

typedef struct mnode {
  struct mnode *next;
  uint64_t h;
  char *key;
  void *val;
} mnode;

typedef struct map {
  mnode **b;
  size_t n, cap;
} map;

static uint64_t hash_str(const char *s)
{
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static int map_grow(map *m)
{
  size_t cap = m->cap ? m->cap * 2 : 256;
  mnode **b = calloc(cap, sizeof *b);
  if (!b) return -1;
  for (size_t i = 0; i < m->cap; i++) {
    for (mnode *x = m->b[i], *next; x; x = next) {
      next = x->next;
      x->next = b[x->h & (cap - 1)];
      b[x->h & (cap - 1)] = x;
    }
  }
  free(m->b);
  m->b = b;
  m->cap = cap;
  return 0;
}

static void *map_get(const map *m, const char *key)
{
  if (!m->cap) return NULL;
  uint64_t h = hash_str(key);
  for (mnode *x = m->b[h & (m->cap - 1)]; x; x = x->next)
    if (x->h == h && strcmp(x->key, key) == 0) return x->val;
  return NULL;
}

static int map_put(map *m, const char *key, void *val)
{
  if (m->n + 1 > m->cap && map_grow(m) != 0) return -1;
  mnode *x = malloc(sizeof *x);
  if (!x || !(x->key = strdup(key))) { free(x); return -1; }
  x->h = hash_str(key);
  x->val = val;
  x->next = m->b[x->h & (m->cap - 1)];
  m->b[x->h & (m->cap - 1)] = x;
  m->n++;
  return 0;
}

static void *map_del(map *m, const char *key)
{
  if (!m->cap) return NULL;
  uint64_t h = hash_str(key);
  for (mnode **pp = &m->b[h & (m->cap - 1)]; *pp; pp = &(*pp)->next) {
    mnode *x = *pp;
    if (x->h == h && strcmp(x->key, key) == 0) {
      void *v = x->val;
      *pp = x->next;
      free(x->key);
      free(x);
      m->n--;
      return v;
    }
  }
  return NULL;
}

/* Removes every value for which drop(val) is true (drop frees it). */
static void map_sweep(map *m, int (*drop)(void *val, void *ud), void *ud)
{
  for (size_t i = 0; i < m->cap; i++) {
    for (mnode **pp = &m->b[i]; *pp;) {
      mnode *x = *pp;
      if (drop(x->val, ud)) {
        *pp = x->next;
        free(x->key);
        free(x);
        m->n--;
      } else {
        pp = &x->next;
      }
    }
  }
}

/* ---- state --------------------------------------------------------------------------- */

typedef struct entry {
  char *etag, *uri, *event, *body, *ctype;
  size_t body_len;
  uint64_t expires_at;
} entry;

typedef struct cached {
  char *resp;      /* NULL: the request is dropped, its retransmissions too */
  size_t len;
  int code;
  uint64_t ready_at, until;
} cached;

typedef struct delayed {
  uv_timer_t t;
  sipub_compositor *c;
  struct delayed *prev, *next;
  struct sockaddr_storage to;
  size_t len;
  char data[];
} delayed;

struct sipub_compositor {
  uv_loop_t *loop;
  uv_udp_t udp;
  uv_timer_t sweep;
  int port, min_expires, max_expires, default_expires;
  char **events;
  sipub_compositor_hook hook;
  void *hook_ud;
  sipub_compositor_log log;
  void *log_ud;
  map by_etag;  /* etag -> entry */
  map cache;    /* branch + method -> cached */
  delayed *delayed; /* answers waiting for their delay */
  uint64_t rng, counter;
  unsigned long number;
  int closing, refs;
  sipub_compositor_header *hdrs; /* the hook's header list, reused */
  size_t hdrs_cap;
  char *hdrbuf;
  size_t hdrbuf_cap;
  char out[65536]; /* the answer being built */
  char buf[65536]; /* the datagram being read */
};

static void entry_free(entry *e)
{
  free(e->etag);
  free(e->uri);
  free(e->event);
  free(e->body);
  free(e->ctype);
  free(e);
}

static void cached_free(cached *k)
{
  free(k->resp);
  free(k);
}

static int drop_expired_entry(void *val, void *ud)
{
  entry *e = val;
  if (e->expires_at > *(uint64_t *)ud) return 0;
  entry_free(e);
  return 1;
}

static int drop_old_cached(void *val, void *ud)
{
  cached *k = val;
  if (k->until > *(uint64_t *)ud) return 0;
  cached_free(k);
  return 1;
}

static int drop_all_entries(void *val, void *ud)
{
  entry_free(val);
  return 1;
}

static int drop_all_cached(void *val, void *ud)
{
  cached_free(val);
  return 1;
}

static void unref(sipub_compositor *c)
{
  if (--c->refs) return;
  map_sweep(&c->by_etag, drop_all_entries, NULL);
  map_sweep(&c->cache, drop_all_cached, NULL);
  free(c->by_etag.b);
  free(c->cache.b);
  for (char **e = c->events; e && *e; e++) free(*e);
  free(c->events);
  free(c->hdrs);
  free(c->hdrbuf);
  free(c);
}

static char *new_etag(sipub_compositor *c)
{
  uint64_t z = (c->rng += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  char buf[40];
  snprintf(buf, sizeof buf, "%llx.%08x", (unsigned long long)++c->counter, (unsigned)(z ^ (z >> 31)));
  return strdup(buf);
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

/* ---- framing ------------------------------------------------------------------------- */

/* The offset of the body (just past the blank line), or 0 when there is none. */
static size_t header_end(const char *d, size_t len)
{
  for (size_t i = 0; i + 1 < len; i++) {
    if (d[i] != '\n') continue;
    if (d[i + 1] == '\n') return i + 2;
    if (d[i + 1] == '\r' && i + 2 < len && d[i + 2] == '\n') return i + 3;
  }
  return 0;
}

/* The Content-Length (long or compact form) in the header section: its value, -1 when
 * absent, -2 when malformed; voff and vlen locate the value text. */
static long content_length(const char *d, size_t hdr_len, size_t *voff, size_t *vlen)
{
  for (size_t i = 0; i < hdr_len;) {
    const char *line = d + i;
    const char *eol = memchr(line, '\n', hdr_len - i);
    size_t n = eol ? (size_t)(eol - line) : hdr_len - i;
    size_t name = 0;
    if (n > 14 && strncasecmp(line, "Content-Length", 14) == 0) name = 14;
    else if (n > 1 && (line[0] == 'l' || line[0] == 'L')) name = 1;
    if (name) {
      size_t j = name;
      while (j < n && (line[j] == ' ' || line[j] == '\t')) j++;
      if (j < n && line[j] == ':') {
        size_t k = ++j, end = n;
        while (end > k && (line[end - 1] == '\r' || line[end - 1] == ' ' || line[end - 1] == '\t')) end--;
        *voff = i + k;
        *vlen = end - k;
        while (k < end && (line[k] == ' ' || line[k] == '\t')) k++;
        if (k == end) return -2;
        long v = 0;
        for (; k < end; k++) {
          if (line[k] < '0' || line[k] > '9' || v > 100000000L) return -2;
          v = v * 10 + (line[k] - '0');
        }
        return v;
      }
    }
    i += n + 1;
  }
  return -1;
}

/* Splits the header section into (name, value) pairs for the hook, in c->hdrs. */
static size_t scan_headers(sipub_compositor *c, const char *d, size_t hdr_len)
{
  size_t need = 2 * hdr_len + 16, n = 0, lines = 1;
  for (size_t i = 0; i < hdr_len; i++) lines += d[i] == '\n';
  if (need > c->hdrbuf_cap) {
    char *b = realloc(c->hdrbuf, need);
    if (!b) return 0;
    c->hdrbuf = b;
    c->hdrbuf_cap = need;
  }
  if (lines > c->hdrs_cap) {
    sipub_compositor_header *h = realloc(c->hdrs, lines * sizeof *h);
    if (!h) return 0;
    c->hdrs = h;
    c->hdrs_cap = lines;
  }
  char *w = c->hdrbuf;
  const char *p = memchr(d, '\n', hdr_len); /* skip the request line */
  size_t i = p ? (size_t)(p - d) + 1 : hdr_len;
  while (i < hdr_len) {
    const char *line = d + i;
    const char *eol = memchr(line, '\n', hdr_len - i);
    size_t len = eol ? (size_t)(eol - line) : hdr_len - i;
    i += len + 1;
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t')) len--;
    if (!len) continue;
    if ((line[0] == ' ' || line[0] == '\t') && n) { /* continuation of the previous value */
      while (len && (*line == ' ' || *line == '\t')) line++, len--;
      w[-1] = ' ';
      memcpy(w, line, len);
      w += len;
      *w++ = '\0';
      continue;
    }
    const char *colon = memchr(line, ':', len);
    if (!colon) continue;
    size_t nl = (size_t)(colon - line);
    while (nl && (line[nl - 1] == ' ' || line[nl - 1] == '\t')) nl--;
    const char *v = colon + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    c->hdrs[n].name = w;
    memcpy(w, line, nl);
    w += nl;
    *w++ = '\0';
    c->hdrs[n].value = w;
    memcpy(w, v, (size_t)(end - v));
    w += end - v;
    *w++ = '\0';
    n++;
  }
  return n;
}

/* ---- answering ----------------------------------------------------------------------- */

typedef struct out {
  char *p;
  size_t n, cap;
  int full;
} out;

static void put(out *o, const char *s, size_t n)
{
  if (o->full || n > o->cap - o->n) {
    o->full = 1;
    return;
  }
  memcpy(o->p + o->n, s, n);
  o->n += n;
}

static void puts2(out *o, const char *a, const char *b)
{
  put(o, a, strlen(a));
  if (b) put(o, b, strlen(b));
  put(o, "\r\n", 2);
}

/* Sets (or adds) a Via parameter on the request's own parsed Via. */
static void set_via_param(osip_via_t *v, const char *name, const char *value)
{
  osip_generic_param_t *p = NULL;
  osip_via_param_get_byname(v, (char *)name, &p);
  if (p) {
    osip_free(p->gvalue);
    p->gvalue = osip_strdup(value);
  } else {
    osip_generic_param_add(&v->via_params, osip_strdup(name), osip_strdup(value));
  }
}

/* Builds the answer to req in c->out: Via (with received, and rport filled when asked for, on
 * the top one), From, To (tagged), Call-ID, CSeq, the extra header lines, Server and
 * Content-Length. Edits req's parsed Via and To in place. Returns the length, 0 on failure. */
static size_t build_response(sipub_compositor *c, osip_message_t *req, int code, const char *reason,
                             const char *extra, const char *src_host, int src_port)
{
  out o = { c->out, 0, sizeof c->out, 0 };
  char line[96];
  const char *phrase = reason && *reason ? reason : sipub_reason_phrase(code);
  snprintf(line, sizeof line, "SIP/2.0 %d %s\r\n", code, *phrase ? phrase : "Unknown");
  put(&o, line, strlen(line));
  for (int i = 0; i < osip_list_size(&req->vias); i++) {
    osip_via_t *v = osip_list_get(&req->vias, i);
    char *s = NULL;
    if (i == 0) {
      osip_generic_param_t *rp = NULL;
      osip_via_param_get_byname(v, "rport", &rp);
      if (rp) {
        snprintf(line, sizeof line, "%d", src_port);
        set_via_param(v, "rport", line);
      }
      set_via_param(v, "received", src_host);
    }
    if (osip_via_to_str(v, &s) != 0) return 0;
    puts2(&o, "Via: ", s);
    osip_free(s);
  }
  char *s = NULL;
  if (req->from && osip_from_to_str(req->from, &s) == 0) {
    puts2(&o, "From: ", s);
    osip_free(s);
  }
  if (req->to) {
    osip_generic_param_t *tag = NULL;
    osip_to_get_tag(req->to, &tag);
    if (!tag) osip_to_set_tag(req->to, osip_strdup("esc1"));
    if (osip_to_to_str(req->to, &s) == 0) {
      puts2(&o, "To: ", s);
      osip_free(s);
    }
  }
  if (req->call_id && req->call_id->number) {
    put(&o, "Call-ID: ", 9);
    put(&o, req->call_id->number, strlen(req->call_id->number));
    if (req->call_id->host) {
      put(&o, "@", 1);
      put(&o, req->call_id->host, strlen(req->call_id->host));
    }
    put(&o, "\r\n", 2);
  }
  if (req->cseq && req->cseq->number && req->cseq->method) {
    put(&o, "CSeq: ", 6);
    put(&o, req->cseq->number, strlen(req->cseq->number));
    put(&o, " ", 1);
    puts2(&o, req->cseq->method, NULL);
  }
  if (extra) put(&o, extra, strlen(extra));
  static const char tail[] = "Server: sip-compositor\r\nContent-Length: 0\r\n\r\n";
  put(&o, tail, sizeof tail - 1);
  return o.full ? 0 : o.n;
}

static void appendf(char *buf, size_t size, const char *f, const char *name, const char *value)
{
  size_t n = strlen(buf);
  if (n < size) snprintf(buf + n, size - n, f, name, value);
}

static const char *header_value(osip_message_t *m, const char *name)
{
  osip_header_t *h = NULL;
  if (osip_message_header_get_byname(m, name, 0, &h) >= 0 && h) return h->hvalue ? h->hvalue : "";
  return NULL;
}

static long parse_expires(const char *s)
{
  if (!s) return -1;
  while (*s == ' ') s++;
  if (*s < '0' || *s > '9') return -2;
  char *end;
  long v = strtol(s, &end, 10);
  while (*end == ' ') end++;
  return *end || v > 0x7fffffffL ? -2 : v;
}

/* The event package of an Event value: the token before any parameter. NULL when absent or
 * empty; "" when it does not fit (no package is that long). */
static const char *event_package(const char *v, char *buf, size_t size)
{
  if (!v) return NULL;
  while (*v == ' ' || *v == '\t') v++;
  size_t n = strcspn(v, "; \t");
  if (!n) return NULL;
  if (n >= size) return "";
  memcpy(buf, v, n);
  buf[n] = '\0';
  return buf;
}

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
    appendf(extra, extra_size, "%s: %s\r\n", "Allow-Events", list);
    return 489;
  }
  if (expires == -2) return 400;
  if (expires == -1) expires = c->default_expires;
  if (expires > 0 && c->min_expires && expires < c->min_expires) {
    snprintf(num, sizeof num, "%d", c->min_expires);
    appendf(extra, extra_size, "%s: %s\r\n", "Min-Expires", num);
    return 423;
  }
  if (expires > c->max_expires) expires = c->max_expires;

  entry *e = NULL;
  if (if_match) {
    e = map_get(&c->by_etag, if_match);
    if (e && e->expires_at <= now) { /* expired: as good as gone */
      map_del(&c->by_etag, if_match);
      entry_free(e);
      e = NULL;
    }
    if (!e || strcmp(e->uri, uri) != 0 || strcasecmp(e->event, event) != 0) return 412;
    map_del(&c->by_etag, if_match);
    if (expires == 0) {
      entry_free(e);
      appendf(extra, extra_size, "%s: %s\r\n", "Expires", "0");
      *granted = 0;
      return 200;
    }
    free(e->etag);
    e->etag = NULL;
  } else {
    if (!body || expires == 0) return 400;
    e = calloc(1, sizeof *e);
    if (!e || !(e->uri = strdup(uri)) || !(e->event = strdup(event))) {
      if (e) entry_free(e);
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
  e->etag = new_etag(c);
  e->expires_at = now + (uint64_t)expires * 1000;
  if (!e->etag || map_put(&c->by_etag, e->etag, e) != 0) {
    entry_free(e);
    return 500;
  }
  appendf(extra, extra_size, "%s: %s\r\n", "SIP-ETag", e->etag);
  snprintf(num, sizeof num, "%ld", expires);
  appendf(extra, extra_size, "%s: %s\r\n", "Expires", num);
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

  /* Framing (RFC 3261 §18.3): bytes past Content-Length are not the message; a datagram that
   * ends before it is answered 400, its header section parsed on its own. */
  size_t body_off = header_end(data, len), cl_off = 0, cl_len = 0;
  if (!body_off) return;
  long cl = content_length(data, body_off, &cl_off, &cl_len);
  int bad_framing = cl == -2 || (cl >= 0 && (size_t)cl > len - body_off);
  if (cl >= 0 && !bad_framing) len = body_off + (size_t)cl;
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
  const char *event = header_value(m, "event");
  if (!event) event = header_value(m, "o");
  oc.event = event = event_package(event, evbuf, sizeof evbuf);
  oc.if_match = header_value(m, "sip-if-match");
  oc.expires = parse_expires(header_value(m, "expires"));
  osip_via_t *via = osip_list_get(&m->vias, 0);
  osip_generic_param_t *br = NULL;
  osip_via_param_get_byname(via, "branch", &br);
  const char *branch = br && br->gvalue ? br->gvalue : NULL;
  char key[256];
  int keyed = branch && (size_t)snprintf(key, sizeof key, "%s %s", branch, m->sip_method) < sizeof key;
  uint64_t now = uv_now(c->loop);
  cached *k = keyed ? map_get(&c->cache, key) : NULL;
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
    appendf(extra, sizeof extra, "%s: %s\r\n", "Allow", "PUBLISH, OPTIONS");
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
      rq.n_headers = scan_headers(c, data, body_off);
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
    rlen = build_response(c, m, code, act.reason, extra, src, src_port);
    if (!rlen) code = 0;
  }
  oc.code = code;
  oc.delay = act.delay > 0 ? act.delay : 0;
  if (keyed && (k = calloc(1, sizeof *k))) {
    k->code = code;
    k->len = rlen;
    k->ready_at = now + (uint64_t)(oc.delay * 1000 + 0.5);
    k->until = k->ready_at + 32000;
    if ((rlen && !(k->resp = malloc(rlen))) || map_put(&c->cache, key, k) != 0) {
      cached_free(k);
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
  map_sweep(&c->by_etag, drop_expired_entry, &now);
  map_sweep(&c->cache, drop_old_cached, &now);
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

size_t sipub_compositor_count(sipub_compositor *c)
{
  uv_update_time(c->loop); /* may be called between loop runs */
  uint64_t now = uv_now(c->loop);
  map_sweep(&c->by_etag, drop_expired_entry, &now);
  return c->by_etag.n;
}

void sipub_compositor_each(sipub_compositor *c, sipub_compositor_each_fn fn, void *ud)
{
  uv_update_time(c->loop);
  uint64_t now = uv_now(c->loop);
  map_sweep(&c->by_etag, drop_expired_entry, &now);
  for (size_t i = 0; i < c->by_etag.cap; i++)
    for (mnode *x = c->by_etag.b[i]; x; x = x->next) {
      entry *e = x->val;
      fn(ud, e->uri, e->event, e->etag, e->body, e->body_len, e->ctype,
         (double)(e->expires_at - now) / 1000.0);
    }
}

void sipub_compositor_clear(sipub_compositor *c)
{
  map_sweep(&c->by_etag, drop_all_entries, NULL);
  map_sweep(&c->cache, drop_all_cached, NULL);
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
