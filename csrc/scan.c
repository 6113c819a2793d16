/* scan.c — the fast path of msg_parse_response: reads the common responses (one Via, plain
 * From/To, no challenge, no folding) in one pass without libosip2 and declines everything else. */
#include "scan.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The subset is chosen so that libosip2 (osip_message_parse, then msg_parse_response's checks)
 * is known to accept each message the scanner accepts and to yield the same fields;
 * fuzz/fuzz_scan.c checks that property. Whatever is unusual (line folding, bare CR or LF,
 * control or non-ASCII bytes, a second Via, a header libosip2 parses itself other than Via,
 * From, To, Call-ID, CSeq, Content-Length, a plain Allow and a plain Contact, a comma in a value
 * read here, a display name...) is declined: libosip2 reads it as before. */

typedef struct span {
  const char *p;
  size_t n;
} span;

static int is_digit(unsigned char c)
{
  return c >= '0' && c <= '9';
}

static int is_alnum(unsigned char c)
{
  return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

/* RFC 3261 token */
static int is_token(unsigned char c)
{
  if (is_alnum(c)) return 1;
  switch (c) {
  case '-': case '.': case '!': case '%': case '*': case '_': case '+': case '`': case '\'': case '~':
    return 1;
  default:
    return 0;
  }
}

/* A header value byte: printable ASCII or horizontal tab. */
static int is_text(unsigned char c)
{
  return (c >= 0x20 && c < 0x7f) || c == '\t';
}

static int is_host(unsigned char c)
{
  return is_alnum(c) || c == '-' || c == '.';
}

/* Inside the brackets of an IPv6 reference: hex digits, colons (and dots of an embedded IPv4). */
static int is_ipv6(unsigned char c)
{
  return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') || c == ':' || c == '.';
}

/* The user part of a SIP URI, without escapes of ':', ';', '?', '@' or ','. */
static int is_user(unsigned char c)
{
  if (is_alnum(c)) return 1;
  switch (c) {
  case '-': case '_': case '.': case '!': case '~': case '*': case '\'': case '%': case '+':
  case '&': case '=': case '$':
    return 1;
  default:
    return 0;
  }
}

/* RFC 3261 word (Call-ID), less the double quote and the backslash. */
static int is_word(unsigned char c)
{
  if (is_token(c)) return 1;
  switch (c) {
  case '(': case ')': case '<': case '>': case ':': case '/': case '[': case ']': case '?':
  case '{': case '}':
    return 1;
  default:
    return 0;
  }
}

/* 1 when s (n bytes) is the lower-case name lc, compared case-insensitively. */
static int name_is(const char *s, size_t n, const char *lc, size_t lc_n)
{
  if (n != lc_n) return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)(s[i] | 0x20) != (unsigned char)lc[i] && s[i] != lc[i]) return 0;
  return 1;
}

enum {
  H_OTHER,       /* unknown to libosip2: kept as a generic header, skipped here */
  H_OSIP,        /* parsed by libosip2 itself (may fail the message): declined */
  H_VIA, H_FROM, H_TO, H_CALL_ID, H_CSEQ, H_CLEN, H_ALLOW, H_CONTACT,
  H_ETAG, H_EXPIRES, H_MIN_EXPIRES, H_RETRY_AFTER,
  H_N
};

#define NAME(s, h) { s, sizeof s - 1, h }
static const struct {
  const char *name;
  size_t len;
  int h;
} names[] = {
  NAME("via", H_VIA), NAME("v", H_VIA), NAME("from", H_FROM), NAME("f", H_FROM),
  NAME("to", H_TO), NAME("t", H_TO), NAME("call-id", H_CALL_ID), NAME("i", H_CALL_ID),
  NAME("cseq", H_CSEQ), NAME("content-length", H_CLEN), NAME("l", H_CLEN),
  NAME("sip-etag", H_ETAG), NAME("expires", H_EXPIRES), NAME("min-expires", H_MIN_EXPIRES),
  NAME("retry-after", H_RETRY_AFTER), NAME("allow", H_ALLOW),
  NAME("contact", H_CONTACT), NAME("m", H_CONTACT),
  /* the other headers libosip2 parses (osip_parser_cfg.c) */
  NAME("accept", H_OSIP), NAME("accept-encoding", H_OSIP), NAME("accept-language", H_OSIP),
  NAME("alert-info", H_OSIP), NAME("authentication-info", H_OSIP),
  NAME("authorization", H_OSIP), NAME("c", H_OSIP), NAME("call-info", H_OSIP),
  NAME("content-encoding", H_OSIP), NAME("content-type", H_OSIP),
  NAME("e", H_OSIP), NAME("error-info", H_OSIP), NAME("mime-version", H_OSIP),
  NAME("proxy-authenticate", H_OSIP), NAME("proxy-authentication-info", H_OSIP),
  NAME("proxy-authorization", H_OSIP), NAME("record-route", H_OSIP), NAME("route", H_OSIP),
  NAME("www-authenticate", H_OSIP),
};

static int classify(const char *name, size_t n)
{
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].len == n && name_is(name, n, names[i].name, names[i].len)) return names[i].h;
  return H_OTHER;
}

/* Skips 1*token at *p (before e); 0 when there is none. */
static int skip_token(const char **p, const char *e)
{
  const char *q = *p;
  while (q < e && is_token((unsigned char)*q)) q++;
  if (q == *p) return 0;
  *p = q;
  return 1;
}

/* Skips host [":" port] at *p: a host name or IPv4 address, or an IPv6 reference; a port of
 * one to five digits. */
static int skip_hostport(const char **p, const char *e)
{
  const char *q = *p, *s;
  if (q < e && *q == '[') {
    s = ++q;
    while (q < e && is_ipv6((unsigned char)*q)) q++;
    if (q == s || q >= e || *q != ']') return 0;
    q++;
  } else {
    s = q;
    while (q < e && is_host((unsigned char)*q)) q++;
    if (q == s) return 0;
  }
  if (q < e && *q == ':') {
    s = ++q;
    while (q < e && is_digit((unsigned char)*q)) q++;
    if (q == s || q - s > 5) return 0;
  }
  *p = q;
  return 1;
}

/* Skips one ";name[=value]" (tokens both; the value may also be an IPv6 address when ipv6)
 * at *p; the name and value (n = 0: none) are set. */
static int skip_param(const char **p, const char *e, span *name, span *value, int ipv6)
{
  const char *q = *p;
  if (q >= e || *q != ';') return 0;
  name->p = ++q;
  if (!skip_token(&q, e)) return 0;
  name->n = (size_t)(q - name->p);
  value->p = NULL;
  value->n = 0;
  if (q < e && *q == '=') {
    value->p = ++q;
    while (q < e && (is_token((unsigned char)*q) ||
                     (ipv6 && (*q == ':' || *q == '[' || *q == ']'))))
      q++;
    value->n = (size_t)(q - value->p);
    if (!value->n) return 0;
  }
  *p = q;
  return 1;
}

/* Via: "SIP/2.0/" transport SP host [":" port] *(";" token ["=" (token / IPv6 address)]).
 * *branch is the value of the first branch parameter (n = 0: none, or without a value). */
static int scan_via(span v, span *branch)
{
  const char *p = v.p, *e = v.p + v.n;
  int found = 0;
  branch->p = NULL;
  branch->n = 0;
  if (v.n < 8 || memcmp(p, "SIP/2.0/", 8) != 0) return 0;
  p += 8;
  const char *t = p;
  while (p < e && is_alnum((unsigned char)*p)) p++;
  if (p == t || p >= e || *p != ' ') return 0;
  p++;
  if (!skip_hostport(&p, e)) return 0;
  while (p < e) {
    span name, value;
    if (!skip_param(&p, e, &name, &value, 1)) return 0;
    if (!found && name_is(name.p, name.n, "branch", 6)) {
      found = 1;
      *branch = value;
    }
  }
  return 1;
}

/* A SIP URI: ("sip:" / "sips:") [user "@"] host [":" port], then, inside angle brackets only,
 * *(";" token ["=" token]). libosip2 refuses an address shorter than 6 characters. */
static int skip_uri(const char **p, const char *e, int with_params)
{
  const char *q = *p, *u;
  if (e - q >= 4 && memcmp(q, "sip:", 4) == 0) q += 4;
  else if (e - q >= 5 && memcmp(q, "sips:", 5) == 0) q += 5;
  else return 0;
  u = q;
  while (q < e && is_user((unsigned char)*q)) q++;
  if (q < e && *q == '@') {
    if (q == u) return 0;
    q++;
  } else {
    q = u; /* no user part */
  }
  if (!skip_hostport(&q, e)) return 0;
  if (with_params)
    while (q < e && *q == ';') {
      span name, value;
      if (!skip_param(&q, e, &name, &value, 0)) return 0;
    }
  if (q - *p < 6) return 0;
  *p = q;
  return 1;
}

/* From / To / Contact: "<" SIP-URI ">" or a SIP URI without parameters, then
 * *(";" token ["=" token]). No display name. */
static int scan_addr(span v)
{
  const char *p = v.p, *e = v.p + v.n;
  if (p < e && *p == '<') {
    p++;
    if (!skip_uri(&p, e, 1) || p >= e || *p != '>') return 0;
    p++;
  } else if (!skip_uri(&p, e, 0)) {
    return 0;
  }
  while (p < e) {
    span name, value;
    if (!skip_param(&p, e, &name, &value, 0)) return 0;
  }
  return 1;
}

/* Call-ID: 1*word ["@" 1*word]. */
static int scan_call_id(span v)
{
  size_t at = 0, n_at = 0;
  if (!v.n) return 0;
  for (size_t i = 0; i < v.n; i++) {
    unsigned char c = (unsigned char)v.p[i];
    if (c == '@') {
      at = i;
      n_at++;
    } else if (!is_word(c)) {
      return 0;
    }
  }
  return n_at == 0 || (n_at == 1 && at > 0 && at + 1 < v.n);
}

/* Allow: token *(*WSP "," *WSP token), each method a value libosip2 keeps as it is. */
static int scan_allow(span v)
{
  const char *p = v.p, *e = v.p + v.n;
  for (;;) {
    if (!skip_token(&p, e)) return 0;
    while (p < e && (*p == ' ' || *p == '\t')) p++;
    if (p == e) return 1;
    if (*p++ != ',') return 0;
    while (p < e && (*p == ' ' || *p == '\t')) p++;
  }
}

/* Up to `max` leading digits of s as a number no larger than 2^31 - 1; -1 when there is none,
 * or larger. *used is the number of digits read. */
static long digits(const char *s, size_t n, size_t max, size_t *used)
{
  long long v = 0;
  size_t i = 0;
  for (; i < n && i < max && is_digit((unsigned char)s[i]); i++) {
    v = v * 10 + (s[i] - '0');
    if (v > 0x7fffffffLL) v = 0x80000000LL; /* saturates: already out of range */
  }
  *used = i;
  return i && v <= 0x7fffffffLL ? (long)v : -1;
}

/* msg_parse_seconds of a value (already trimmed of spaces and tabs): -1 unless all digits. */
static long seconds(span v)
{
  size_t used;
  long s = digits(v.p, v.n, v.n, &used);
  return used == v.n ? s : -1;
}

static int has_comma(span v)
{
  return memchr(v.p, ',', v.n) != NULL;
}

static char *dup_span(span s)
{
  char *d = malloc(s.n + 1);
  if (d) {
    memcpy(d, s.p, s.n);
    d[s.n] = '\0';
  }
  return d;
}

/* The top Via branch, as parse_branch (message.c) reads it: z9hG4bK and 16 lower-case hex
 * digits of ours. */
static uint64_t branch_value(span b, int *ours)
{
  const size_t plen = sizeof MSG_BRANCH_PREFIX - 1;
  uint64_t v = 0;
  *ours = 0;
  if (b.n != plen + 16 || memcmp(b.p, MSG_BRANCH_PREFIX, plen) != 0) return 0;
  for (size_t i = plen; i < b.n; i++) {
    int c = (unsigned char)b.p[i], x;
    if (c >= '0' && c <= '9') x = c - '0';
    else if (c >= 'a' && c <= 'f') x = c - 'a' + 10;
    else return 0;
    v = (v << 4) | (uint64_t)x;
  }
  *ours = 1;
  return v;
}

int msg_scan_response(const char *data, size_t hdr_len, msg_response *out)
{
  const char *p = data, *end = data + hdr_len;
  /* The caller framed the message: data[hdr_len - 4 .. hdr_len) is the first CRLFCRLF, so
   * every scan below stops at a CR before the end. */
  if (hdr_len < 18 || memcmp(p, "SIP/2.0 ", 8) != 0) return 0;
  p += 8;
  if (p[0] < '1' || p[0] > '6' || !is_digit((unsigned char)p[1]) || !is_digit((unsigned char)p[2]) ||
      p[3] != ' ')
    return 0;
  int status = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
  if (status == 401 || status == 407) return 0; /* challenges: libosip2 reads them */
  span reason = { p + 4, 0 };
  for (p += 4; (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f; p++) {}
  if (p[0] != '\r' || p[1] != '\n') return 0;
  reason.n = (size_t)(p - reason.p);
  p += 2;

  span val[H_N];
  int count[H_N] = { 0 };
  while (p < end - 2) {
    const char *name = p;
    while (is_token((unsigned char)*p)) p++;
    size_t name_len = (size_t)(p - name);
    if (!name_len || *p != ':') return 0; /* also a folded line, or space before the colon */
    const char *v = ++p;
    while (is_text((unsigned char)*p)) p++;
    if (p[0] != '\r' || p[1] != '\n') return 0;
    const char *ve = p;
    p += 2;
    int h = classify(name, name_len);
    if (h == H_OTHER) continue;
    if (h == H_OSIP) return 0;
    while (v < ve && (*v == ' ' || *v == '\t')) v++; /* trimmed as osip_clrncpy does */
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    span value = { v, (size_t)(ve - v) };
    if (h == H_ALLOW || h == H_CONTACT) { /* may repeat: each one is checked here */
      if (!(h == H_ALLOW ? scan_allow(value) : scan_addr(value))) return 0;
      continue;
    }
    if (count[h]++) return 0;
    val[h] = value;
  }
  if (p != end - 2) return 0;
  if (!count[H_VIA] || !count[H_FROM] || !count[H_TO] || !count[H_CALL_ID] || !count[H_CSEQ])
    return 0;

  span branch;
  if (!scan_via(val[H_VIA], &branch) || !scan_addr(val[H_FROM]) || !scan_addr(val[H_TO]) ||
      !scan_call_id(val[H_CALL_ID]))
    return 0;

  /* CSeq: 1*10DIGIT SP token */
  span cs = val[H_CSEQ];
  size_t used;
  long cseq = digits(cs.p, cs.n, 10, &used);
  if (cseq < 0 || used >= cs.n || cs.p[used] != ' ') return 0;
  span method = { cs.p + used + 1, cs.n - used - 1 };
  const char *m = method.p;
  if (!skip_token(&m, method.p + method.n) || m != method.p + method.n) return 0;

  if (count[H_CLEN] && (val[H_CLEN].n > 10 || seconds(val[H_CLEN]) < 0)) return 0;

  span etag = { NULL, 0 };
  if (count[H_ETAG]) {
    etag = val[H_ETAG];
    for (size_t i = 0; i < etag.n; i++) {
      unsigned char c = (unsigned char)etag.p[i];
      if (c <= 0x20 || c >= 0x7f || c == ',') return 0;
    }
  }
  long expires = -1, min_expires = -1, retry_after = -1;
  if (count[H_EXPIRES]) {
    if (has_comma(val[H_EXPIRES])) return 0;
    expires = seconds(val[H_EXPIRES]);
  }
  if (count[H_MIN_EXPIRES]) {
    if (has_comma(val[H_MIN_EXPIRES])) return 0;
    min_expires = seconds(val[H_MIN_EXPIRES]);
  }
  if (count[H_RETRY_AFTER]) {
    /* delta-seconds, possibly followed by a comment or parameters: its first 15 digits, as
     * msg_parse_response reads them */
    if (has_comma(val[H_RETRY_AFTER])) return 0;
    retry_after = digits(val[H_RETRY_AFTER].p, val[H_RETRY_AFTER].n, 15, &used);
  }

  char *r = dup_span(reason), *id = dup_span(val[H_CALL_ID]), *tag = etag.n ? dup_span(etag) : NULL;
  if (!r || !id || (etag.n && !tag)) {
    free(r);
    free(id);
    free(tag);
    return 0;
  }
  out->status = status;
  out->reason = r;
  out->branch = branch_value(branch, &out->branch_ours);
  out->cseq = (uint32_t)cseq;
  out->cseq_publish = method.n == 7 && memcmp(method.p, "PUBLISH", 7) == 0;
  out->call_id = id;
  out->etag = tag;
  out->expires = expires;
  out->min_expires = min_expires;
  out->retry_after = retry_after;
  return 1;
}
