/* check.c — the rules for what a caller may give: URIs, tokens, media types, header lines.
 * Nothing that fails them reaches a request. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

#include <osipparser2/osip_parser.h>

/* ---- publications -------------------------------------------------------------------- */

/* Headers the core writes itself: an extra header of one of these would appear twice. */
static int own_header(const char *name, size_t n)
{
  static const char *const own[] = {
    "Via", "v", "From", "f", "To", "t", "Call-ID", "i", "CSeq", "Max-Forwards", "Event", "o",
    "Expires", "SIP-If-Match", "Content-Type", "c", "Content-Length", "l", "Authorization",
    "Proxy-Authorization", NULL
  };
  for (const char *const *o = own; *o; o++)
    if (strlen(*o) == n && osip_strncasecmp(*o, name, n) == 0) return 1;
  return 0;
}

/* Splits "Name: value" lines; rejects control characters, lines without a name and the
 * headers the core writes. */
int check_split_extra(sipub_pub *p, const char *const *lines)
{
  size_t n = 0;
  while (lines && lines[n]) n++;
  if (!n) return 0;
  p->extra_names = calloc(n, sizeof *p->extra_names);
  p->extra_values = calloc(n, sizeof *p->extra_values);
  if (!p->extra_names || !p->extra_values) return SIPUB_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const char *l = lines[i], *colon = strchr(l, ':');
    if (!msg_header_safe(l, strlen(l)) || !colon) return SIPUB_EINVAL;
    const char *ne = colon, *v = colon + 1;
    while (ne > l && (ne[-1] == ' ' || ne[-1] == '\t')) ne--;
    if (ne == l) return SIPUB_EINVAL;
    for (const char *c = l; c < ne; c++)
      if (*c == ' ' || *c == '\t') return SIPUB_EINVAL;
    while (*v == ' ' || *v == '\t') v++;
    if (own_header(l, (size_t)(ne - l))) return SIPUB_EINVAL;
    p->extra_names[i] = strndup(l, (size_t)(ne - l));
    p->extra_values[i] = strdup(v);
    p->n_extra = i + 1;
    if (!p->extra_names[i] || !p->extra_values[i]) return SIPUB_ENOMEM;
  }
  return 0;
}

/* A port as a URI writes it: 1 to 65535 in decimal digits. */
static int valid_port(const char *port)
{
  if (!port) return 1;
  if (!*port || strlen(port) > 5) return 0;
  for (const char *c = port; *c; c++)
    if (*c < '0' || *c > '9') return 0;
  long v = atol(port);
  return v >= 1 && v <= 65535;
}

/* A sip: or sips: URI that libosip2 reads both alone (Request-URI) and in a name-addr
 * (To, From): the request built from it is then well-formed. */
/* *verbatim (when not NULL): whether libosip2 writes s back unchanged. */
int check_uri(const char *s, int *verbatim)
{
  osip_uri_t *u = NULL;
  osip_from_t *f = NULL;
  if (!msg_header_safe(s, strlen(s)) || strchr(s, '<') || strchr(s, '>')) return 0;
  if (osip_uri_init(&u) != 0) return 0;
  int ok = osip_uri_parse(u, s) == 0 && u->scheme && u->host && *u->host &&
           (osip_strcasecmp(u->scheme, "sip") == 0 || osip_strcasecmp(u->scheme, "sips") == 0) &&
           valid_port(u->port);
  if (ok && verbatim) *verbatim = msg_uri_same_text(u, s);
  osip_uri_free(u);
  if (ok) {
    char *na = msg_format("<%s>", s);
    ok = na && osip_from_init(&f) == 0 && osip_from_parse(f, na) == 0;
    osip_from_free(f);
    free(na);
  }
  return ok;
}

/* An event package name: an RFC 3261 token (RFC 6665 event-type). */
static int token_char(unsigned char c);

int check_token(const char *s)
{
  if (!s || !*s) return 0;
  for (; *s; s++)
    if (!token_char((unsigned char)*s)) return 0;
  return 1;
}

static int token_char(unsigned char c)
{
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c && strchr("-.!%*_+`'~", c));
}

static const char *skip_token(const char *s)
{
  while (token_char((unsigned char)*s)) s++;
  return s;
}

static const char *skip_sws(const char *s)
{
  while (*s == ' ' || *s == '\t') s++;
  return s;
}

/* RFC 3261 §20.15: type "/" subtype *( ";" token "=" ( token / quoted-string ) ), ASCII. A
 * looser value can come out of libosip2 garbled (a Content-Type line swallowing the next),
 * which the request template's check against libosip2 (fuzz/fuzz_pubnew.c) finds. */
int check_content_type(const char *s)
{
  const char *p = skip_token(s);
  if (p == s || *p++ != '/') return 0;
  const char *q = skip_token(p);
  if (q == p) return 0;
  for (p = skip_sws(q); *p; p = skip_sws(p)) {
    if (*p++ != ';') return 0;
    p = skip_sws(p);
    q = skip_token(p);
    if (q == p) return 0;
    p = skip_sws(q);
    if (*p++ != '=') return 0;
    p = skip_sws(p);
    if (*p == '"') {
      /* libosip2 splits parameters on ';' even inside quotes: keep to what it carries whole
       * (a boundary, type="application/rlmi+xml", start="<cid@host>"). */
      for (p++; *p != '"'; p++)
        if (!token_char((unsigned char)*p) && !(*p && strchr("/:@?=<>", *p))) return 0;
      p++;
    } else {
      q = skip_token(p);
      if (q == p) return 0;
      p = q;
    }
  }
  return 1;
}
