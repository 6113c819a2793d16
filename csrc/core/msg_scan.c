/* msg_scan.c — the fast path of msg_parse_response: reads the common responses (one Via, plain
 * From/To, no challenge, no folding) in one pass without libosip2 and declines everything else. */
#include "msg.h"

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

/* Character classes, one bit each in cls[]. */
enum {
  C_TEXT = 1 << 0,      /* a header value byte: printable ASCII or horizontal tab */
  C_TOKEN = 1 << 1,     /* RFC 3261 token */
  C_DIGIT = 1 << 2,
  C_ALNUM = 1 << 3,
  C_HOST = 1 << 4,      /* host name or IPv4 address */
  C_IPV6 = 1 << 5,      /* inside the brackets of an IPv6 reference: hex digits, ':', '.' */
  C_USER = 1 << 6,      /* user part of a SIP URI, without escapes of : ; ? @ , */
  C_WORD = 1 << 7,      /* RFC 3261 word (Call-ID), less the double quote and the backslash */
  C_VIA_VALUE = 1 << 8, /* Via parameter value: token, or an IPv6 address (received=::1) */
};
#define L (C_TEXT | C_TOKEN | C_ALNUM | C_HOST | C_USER | C_WORD | C_VIA_VALUE) /* letter */
#define HL (L | C_IPV6)                                                        /* hex letter */
#define DG (HL | C_DIGIT)                                                      /* digit */
#define MARK (C_TEXT | C_TOKEN | C_USER | C_WORD | C_VIA_VALUE)                 /* ! % * + ' ~ _ - . */
static const uint16_t cls[256] = {
  ['0'] = DG, ['1'] = DG, ['2'] = DG, ['3'] = DG, ['4'] = DG, ['5'] = DG, ['6'] = DG, ['7'] = DG, ['8'] = DG, ['9'] = DG,
  ['A'] = HL, ['B'] = HL, ['C'] = HL, ['D'] = HL, ['E'] = HL, ['F'] = HL, ['G'] = L, ['H'] = L, ['I'] = L,
  ['J'] = L, ['K'] = L, ['L'] = L, ['M'] = L, ['N'] = L, ['O'] = L, ['P'] = L, ['Q'] = L, ['R'] = L,
  ['S'] = L, ['T'] = L, ['U'] = L, ['V'] = L, ['W'] = L, ['X'] = L, ['Y'] = L, ['Z'] = L,
  ['a'] = HL, ['b'] = HL, ['c'] = HL, ['d'] = HL, ['e'] = HL, ['f'] = HL, ['g'] = L, ['h'] = L, ['i'] = L,
  ['j'] = L, ['k'] = L, ['l'] = L, ['m'] = L, ['n'] = L, ['o'] = L, ['p'] = L, ['q'] = L, ['r'] = L,
  ['s'] = L, ['t'] = L, ['u'] = L, ['v'] = L, ['w'] = L, ['x'] = L, ['y'] = L, ['z'] = L,
  ['\t'] = C_TEXT, [' '] = C_TEXT,
  ['!'] = MARK, ['%'] = MARK, ['*'] = MARK, ['+'] = MARK, ['\''] = MARK, ['~'] = MARK, ['_'] = MARK,
  ['-'] = MARK | C_HOST, ['.'] = MARK | C_HOST | C_IPV6,
  ['`'] = C_TEXT | C_TOKEN | C_WORD | C_VIA_VALUE,
  ['$'] = C_TEXT | C_USER, ['&'] = C_TEXT | C_USER, ['='] = C_TEXT | C_USER,
  [':'] = C_TEXT | C_IPV6 | C_WORD | C_VIA_VALUE,
  ['['] = C_TEXT | C_WORD | C_VIA_VALUE, [']'] = C_TEXT | C_WORD | C_VIA_VALUE,
  ['('] = C_TEXT | C_WORD, [')'] = C_TEXT | C_WORD, ['<'] = C_TEXT | C_WORD, ['>'] = C_TEXT | C_WORD,
  ['/'] = C_TEXT | C_WORD, ['?'] = C_TEXT | C_WORD, ['{'] = C_TEXT | C_WORD, ['}'] = C_TEXT | C_WORD,
  ['"'] = C_TEXT, ['#'] = C_TEXT, [','] = C_TEXT, [';'] = C_TEXT, ['@'] = C_TEXT, ['\\'] = C_TEXT,
  ['^'] = C_TEXT, ['|'] = C_TEXT,
};
#undef L
#undef HL
#undef DG
#undef MARK

static inline int in(unsigned cls_bit, char c)
{
  return cls[(unsigned char)c] & cls_bit;
}

/* Skips the bytes of class cls_bit from *p (before e); returns how many. */
static inline size_t skip(unsigned cls_bit, const char **p, const char *e)
{
  const char *q = *p;
  while (q < e && in(cls_bit, *q)) q++;
  size_t n = (size_t)(q - *p);
  *p = q;
  return n;
}

/* 1 when the n bytes at s are the lower-case name lc, compared case-insensitively: the
 * names compared here are tokens, in which only letters change under | 0x20. */
static int name_is(const char *s, const char *lc, size_t n)
{
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

/* The header a name (a token of n bytes) stands for, by length first. Every header libosip2
 * parses itself (osip_parser_cfg.c) is H_OSIP unless read here. */
static int classify(const char *s, size_t n)
{
  /* IS(lc): the name is lc. A name listed under another length does not compile. */
#define IS(lc) ((void)sizeof(char[sizeof lc - 1 == N ? 1 : -1]), name_is(s, lc, N))
#define LEN(len, ...) case len: { enum { N = len }; return __VA_ARGS__; }
  switch (n) {
  case 1:
    switch (s[0] | 0x20) {
    case 'v': return H_VIA;
    case 'f': return H_FROM;
    case 't': return H_TO;
    case 'i': return H_CALL_ID;
    case 'l': return H_CLEN;
    case 'm': return H_CONTACT;
    case 'c': case 'e': return H_OSIP; /* Content-Type, Content-Encoding */
    default: return H_OTHER;
    }
  LEN(2, IS("to") ? H_TO : H_OTHER)
  LEN(3, IS("via") ? H_VIA : H_OTHER)
  LEN(4, IS("from") ? H_FROM : IS("cseq") ? H_CSEQ : H_OTHER)
  LEN(5, IS("allow") ? H_ALLOW : IS("route") ? H_OSIP : H_OTHER)
  LEN(6, IS("accept") ? H_OSIP : H_OTHER)
  LEN(7, IS("call-id") ? H_CALL_ID : IS("contact") ? H_CONTACT : IS("expires") ? H_EXPIRES : H_OTHER)
  LEN(8, IS("sip-etag") ? H_ETAG : H_OTHER)
  LEN(9, IS("call-info") ? H_OSIP : H_OTHER)
  LEN(10, IS("alert-info") || IS("error-info") ? H_OSIP : H_OTHER)
  LEN(11, IS("min-expires") ? H_MIN_EXPIRES : IS("retry-after") ? H_RETRY_AFTER : H_OTHER)
  LEN(12, IS("content-type") || IS("mime-version") || IS("record-route") ? H_OSIP : H_OTHER)
  LEN(13, IS("authorization") ? H_OSIP : H_OTHER)
  LEN(14, IS("content-length") ? H_CLEN : H_OTHER)
  LEN(15, IS("accept-encoding") || IS("accept-language") ? H_OSIP : H_OTHER)
  LEN(16, IS("content-encoding") || IS("www-authenticate") ? H_OSIP : H_OTHER)
  LEN(18, IS("proxy-authenticate") ? H_OSIP : H_OTHER)
  LEN(19, IS("authentication-info") || IS("proxy-authorization") ? H_OSIP : H_OTHER)
  LEN(25, IS("proxy-authentication-info") ? H_OSIP : H_OTHER)
  default: return H_OTHER;
  }
#undef IS
#undef LEN
}

/* Skips host [":" port] at *p: a host name or IPv4 address, or an IPv6 reference; a port of
 * one to five digits. */
static int skip_hostport(const char **p, const char *e)
{
  const char *q = *p;
  if (q < e && *q == '[') {
    q++;
    if (!skip(C_IPV6, &q, e) || q >= e || *q != ']') return 0;
    q++;
  } else if (!skip(C_HOST, &q, e)) {
    return 0;
  }
  if (q < e && *q == ':') {
    q++;
    size_t n = skip(C_DIGIT, &q, e);
    if (n < 1 || n > 5) return 0;
  }
  *p = q;
  return 1;
}

/* Skips one ";" token ["=" value] at *p, the value of class vclass; the name and the value
 * (n = 0: none) are set. */
static int skip_param(const char **p, const char *e, unsigned vclass, span *name, span *value)
{
  const char *q = *p;
  if (q >= e || *q != ';') return 0;
  name->p = ++q;
  if (!(name->n = skip(C_TOKEN, &q, e))) return 0;
  value->p = NULL;
  value->n = 0;
  if (q < e && *q == '=') {
    value->p = ++q;
    if (!(value->n = skip(vclass, &q, e))) return 0;
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
  if (!skip(C_ALNUM, &p, e) || p >= e || *p != ' ') return 0;
  p++;
  if (!skip_hostport(&p, e)) return 0;
  while (p < e) {
    span name, value;
    if (!skip_param(&p, e, C_VIA_VALUE, &name, &value)) return 0;
    if (!found && name.n == 6 && name_is(name.p, "branch", 6)) {
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
  if (skip(C_USER, &q, e) && q < e && *q == '@') q++;
  else q = u; /* no user part (an empty one is declined: "@" is no host) */
  if (!skip_hostport(&q, e)) return 0;
  if (with_params)
    while (q < e && *q == ';') {
      span name, value;
      if (!skip_param(&q, e, C_TOKEN, &name, &value)) return 0;
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
    if (!skip_param(&p, e, C_TOKEN, &name, &value)) return 0;
  }
  return 1;
}

/* Call-ID: 1*word ["@" 1*word]. */
static int scan_call_id(span v)
{
  const char *p = v.p, *e = v.p + v.n;
  if (!skip(C_WORD, &p, e)) return 0;
  if (p < e && *p == '@') {
    p++;
    if (!skip(C_WORD, &p, e)) return 0;
  }
  return p == e;
}

/* Allow: token *(*WSP "," *WSP token), each method a value libosip2 keeps as it is. */
static int scan_allow(span v)
{
  const char *p = v.p, *e = v.p + v.n;
  for (;;) {
    if (!skip(C_TOKEN, &p, e)) return 0;
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
  for (; i < n && i < max && s[i] >= '0' && s[i] <= '9'; i++) {
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

int msg_scan_response(const char *data, size_t len, msg_response *out)
{
  const char *p = data, *end = data + len;
  if (len < 14 || memcmp(p, "SIP/2.0 ", 8) != 0) return 0;
  p += 8;
  if (p[0] < '1' || p[0] > '6' || !in(C_DIGIT, p[1]) || !in(C_DIGIT, p[2]) ||
      p[3] != ' ')
    return 0;
  int status = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
  if (status == 401 || status == 407) return 0; /* challenges: libosip2 reads them */
  p += 4;
  span reason = { p, 0 };
  while (p < end && (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f) p++;
  if (end - p < 2 || p[0] != '\r' || p[1] != '\n') return 0;
  reason.n = (size_t)(p - reason.p);
  p += 2;

  /* Header lines up to the blank line. With no bare CR or LF anywhere, that blank line ends
   * the first CRLFCRLF, where msg_parse_response's framing ends the header section too. */
  span val[H_N];
  int count[H_N] = { 0 };
  size_t clen_raw = 0, lines = 0;
  for (;;) {
    if (end - p < 2) return 0;
    if (p[0] == '\r' && p[1] == '\n') break;
    if (++lines > MSG_MAX_HEADER_LINES) return 0; /* refused by the libosip2 path too */
    const char *name = p;
    size_t name_len = skip(C_TOKEN, &p, end);
    if (!name_len || p >= end || *p != ':') return 0; /* also a folded line, or space before the colon */
    const char *v = ++p;
    skip(C_TEXT, &p, end);
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n') return 0;
    const char *ve = p;
    p += 2;
    int h = classify(name, name_len);
    if (h == H_OTHER) continue;
    if (h == H_OSIP) return 0;
    if (h == H_CLEN) clen_raw = (size_t)(ve - v);
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
  size_t body_off = (size_t)(p + 2 - data);
  if (len > MSG_MAX_SIZE) return 0;
  if (!count[H_VIA] || !count[H_FROM] || !count[H_TO] || !count[H_CALL_ID] || !count[H_CSEQ])
    return 0;

  /* Framing as msg_parse_response does it: the body is what follows the blank line, cut to
   * Content-Length, which must not run past the datagram. That framing reads at most 23
   * bytes of the Content-Length value: a longer one is left to it. */
  size_t body_len = len - body_off;
  if (count[H_CLEN]) {
    long cl = clen_raw <= 23 ? seconds(val[H_CLEN]) : -1;
    if (cl < 0 || (size_t)cl > body_len) return 0;
    body_len = (size_t)cl;
  }

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
  if (skip(C_TOKEN, &m, method.p + method.n) != method.n || !method.n) return 0;

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
    if (retry_after < 0 && used) retry_after = 0x7fffffffL; /* "much later", not absent */
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
  out->branch = msg_parse_branch(branch.p, branch.n, &out->branch_ours);
  out->cseq = (uint32_t)cseq;
  out->cseq_publish = method.n == 7 && memcmp(method.p, "PUBLISH", 7) == 0;
  out->call_id = id;
  out->etag = tag;
  out->expires = expires;
  out->min_expires = min_expires;
  out->retry_after = retry_after;
  out->len = body_off + body_len;
  out->body_off = body_off;
  out->body_len = body_len;
  return 1;
}

/* ---- the cheap pre-match ---------------------------------------------------------------- */

/* The end of the header line at p (before its CR LF), continuation lines included. */
static const char *header_end_at(const char *p, const char *end)
{
  for (;;) {
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    if (!lf) return end;
    if (lf + 1 >= end || (lf[1] != ' ' && lf[1] != '\t')) return lf > p && lf[-1] == '\r' ? lf - 1 : lf;
    p = lf + 1;
  }
}

static int lws(char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The branch parameter of the first Via value in [p, e): its id and shape. */
static void peek_branch(const char *p, const char *e, msg_ids *ids)
{
  for (; p < e && *p != ','; p++) {
    if (*p != ';') continue;
    const char *q = p + 1;
    while (q < e && lws(*q)) q++;
    if (e - q < 6 || !name_is(q, "branch", 6)) continue;
    q += 6;
    while (q < e && lws(*q)) q++;
    if (q >= e || *q != '=') continue;
    q++;
    while (q < e && lws(*q)) q++;
    const char *v = q;
    size_t n = skip(C_TOKEN, &q, e);
    ids->branch = msg_parse_branch(v, n, &ids->branch_ours);
    return;
  }
}

int msg_peek_ids(const char *data, size_t len, msg_ids *ids)
{
  const char *end = data + len, *p;
  int via = 0, cseq = 0, call_id = 0;
  memset(ids, 0, sizeof *ids);
  if (len < 12 || memcmp(data, "SIP/2.0 ", 8) != 0 || !(p = memchr(data, '\n', len))) return -1;
  for (p++; p < end && !(via && cseq && call_id);) {
    if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n')) break; /* the blank line */
    const char *name = p;
    size_t n = skip(C_TOKEN, &p, end);
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    const char *he = header_end_at(p, end);
    if (n && p < he && *p == ':') {
      const char *v = p + 1;
      while (v < he && lws(*v)) v++;
      if (!via && ((n == 1 && (*name | 0x20) == 'v') || (n == 3 && name_is(name, "via", 3)))) {
        via = 1;
        peek_branch(v, he, ids);
      } else if (!cseq && n == 4 && name_is(name, "cseq", 4)) {
        size_t used;
        long long num = 0;
        for (used = 0; v + used < he && used < 10 && v[used] >= '0' && v[used] <= '9'; used++)
          num = num * 10 + (v[used] - '0');
        cseq = 1;
        ids->has_cseq = used > 0 && num <= 0xffffffffLL;
        ids->cseq = (uint32_t)num;
      } else if (!call_id && ((n == 1 && (*name | 0x20) == 'i') || (n == 7 && name_is(name, "call-id", 7)))) {
        const char *ve = he;
        call_id = 1;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        if (!memchr(v, '\n', (size_t)(ve - v))) { /* folded: left to the full parse */
          ids->call_id = v;
          ids->call_id_len = (size_t)(ve - v);
        }
      }
    }
    const char *lf = memchr(he, '\n', (size_t)(end - he));
    if (!lf) break;
    p = lf + 1;
  }
  return ids->branch_ours ? 0 : -1;
}
