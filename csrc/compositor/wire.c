/* wire.c — the test compositor's wire format: a request's header lines for the hook, and the
 * answer built from the request's own Via, From, To, Call-ID and CSeq. */
#include "compositor_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Splits the header section into (name, value) pairs for the hook, in c->hdrs. */
size_t wire_scan_headers(sipub_compositor *c, const char *d, size_t hdr_len)
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
size_t wire_build_response(sipub_compositor *c, osip_message_t *req, int code, const char *reason,
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

void wire_appendf(char *buf, size_t size, const char *f, const char *name, const char *value)
{
  size_t n = strlen(buf);
  if (n < size) snprintf(buf + n, size - n, f, name, value);
}

const char *wire_header_value(osip_message_t *m, const char *name)
{
  osip_header_t *h = NULL;
  if (osip_message_header_get_byname(m, name, 0, &h) >= 0 && h) return h->hvalue ? h->hvalue : "";
  return NULL;
}

long wire_parse_expires(const char *s)
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
const char *wire_event_package(const char *v, char *buf, size_t size)
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
