/* check.c — the one set of rules for what a caller may give (URIs, tokens, media types, header
 * lines, hosts), public as sipub_check_*: the core, the binding and the Lua facade all ask here. */
#include "core.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <osipparser2/osip_parser.h>

const char *sipub_problem_text(int problem)
{
  static const char *const text[SIPUB_BAD_COUNT] = {
    [SIPUB_BAD_NONE] = "",
    [SIPUB_BAD_EMPTY] = "must not be empty",
    [SIPUB_BAD_CONTROL] = "must not contain CR, LF, NUL or other control characters",
    [SIPUB_BAD_URI] = "expected a sip: or sips: URI",
    [SIPUB_BAD_SCHEME] = "expected a sip: or sips: URI, not another scheme",
    [SIPUB_BAD_PORT] = "a URI's port is 1 to 65535",
    [SIPUB_BAD_ESCAPE] = "%00 (an escaped NUL) would cut the URI",
    [SIPUB_BAD_TOKEN] = "expected a token (letters, digits and -.!%*_+`'~)",
    [SIPUB_BAD_MEDIA_TYPE] = "expected a media type such as \"application/pidf+xml\"",
    [SIPUB_BAD_HEADER_LINE] = "expected \"Name: value\"",
    [SIPUB_BAD_OWN_HEADER] = "names a header the library writes",
    [SIPUB_BAD_HOST] = "expected a host name, an IPv4 address or an [IPv6] reference",
    [SIPUB_BAD_ADDRESS] = "expected an IPv4 or IPv6 address",
    [SIPUB_BAD_RANGE] = "out of range",
    [SIPUB_BAD_TOO_MANY] = "64 extra headers at most",
  };
  return problem >= 0 && problem < SIPUB_BAD_COUNT ? text[problem] : "invalid";
}

/* ---- characters ------------------------------------------------------------------------ */

/* Empty, or a control character (a NUL within len among them): the first two rules of all. */
static int text_problem(const char *s, size_t len)
{
  if (!s || !len) return SIPUB_BAD_EMPTY;
  return msg_header_safe(s, len) ? 0 : SIPUB_BAD_CONTROL;
}

/* RFC 3261 token characters: alphanumerics and -.!%*_+`'~ (a table: every response's
 * entity-tag is checked). */
static const unsigned char TOKEN_CHARS[256] = {
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
  0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

static int token_char(unsigned char c)
{
  return TOKEN_CHARS[c];
}

static const char *skip_token(const char *s, const char *end)
{
  while (s < end && token_char((unsigned char)*s)) s++;
  return s;
}

static const char *skip_sws(const char *s, const char *end)
{
  while (s < end && (*s == ' ' || *s == '\t')) s++;
  return s;
}

int sipub_check_header_value(const char *s, size_t len)
{
  return text_problem(s, len);
}

int sipub_check_token(const char *s, size_t len)
{
  /* One pass: no control character is a token character; the text rule only names the
   * problem of a value that is not a token. */
  if (s && len && skip_token(s, s + len) == s + len) return 0;
  int bad = text_problem(s, len);
  return bad ? bad : SIPUB_BAD_TOKEN;
}

/* RFC 3903 §11.3.1: entity-tag = token. */
int sipub_check_etag(const char *s, size_t len)
{
  return sipub_check_token(s, len);
}

/* RFC 3261 §20.15: type "/" subtype *( ";" token "=" ( token / quoted-string ) ), ASCII. A
 * looser value can come out of libosip2 garbled (a Content-Type line swallowing the next),
 * which the request template's check against libosip2 (fuzz/fuzz_pubnew.c) finds. */
int sipub_check_media_type(const char *s, size_t len)
{
  int bad = text_problem(s, len);
  if (bad) return bad;
  const char *end = s + len, *p = skip_token(s, end), *q;
  if (p == s || p == end || *p++ != '/') return SIPUB_BAD_MEDIA_TYPE;
  if ((q = skip_token(p, end)) == p) return SIPUB_BAD_MEDIA_TYPE;
  for (p = skip_sws(q, end); p < end; p = skip_sws(p, end)) {
    if (*p++ != ';') return SIPUB_BAD_MEDIA_TYPE;
    p = skip_sws(p, end);
    if ((q = skip_token(p, end)) == p) return SIPUB_BAD_MEDIA_TYPE;
    p = skip_sws(q, end);
    if (p == end || *p++ != '=') return SIPUB_BAD_MEDIA_TYPE;
    p = skip_sws(p, end);
    if (p < end && *p == '"') {
      /* libosip2 splits parameters on ';' even inside quotes: keep to what it carries whole
       * (a boundary, type="application/rlmi+xml", start="<cid@host>"). */
      for (p++; p < end && *p != '"'; p++)
        if (!token_char((unsigned char)*p) && !strchr("/:@?=<>", *p)) return SIPUB_BAD_MEDIA_TYPE;
      if (p++ == end) return SIPUB_BAD_MEDIA_TYPE;
    } else {
      if ((q = skip_token(p, end)) == p) return SIPUB_BAD_MEDIA_TYPE;
      p = q;
    }
  }
  return 0;
}

/* ---- headers ----------------------------------------------------------------------------- */

/* Headers the core writes itself: an extra header of one of these would appear twice (or,
 * for the credentials, answer a challenge the core answers). */
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

/* The name of "Name: value" ends at *name_end; the value starts at *value. */
static int split_line(const char *line, size_t len, const char **name_end, const char **value)
{
  int bad = text_problem(line, len);
  if (bad) return bad;
  const char *end = line + len, *colon = memchr(line, ':', len);
  if (!colon) return SIPUB_BAD_HEADER_LINE;
  const char *ne = colon;
  while (ne > line && (ne[-1] == ' ' || ne[-1] == '\t')) ne--;
  if (ne == line || skip_token(line, ne) != ne) return SIPUB_BAD_HEADER_LINE;
  if (own_header(line, (size_t)(ne - line))) return SIPUB_BAD_OWN_HEADER;
  *name_end = ne;
  *value = skip_sws(colon + 1, end);
  return 0;
}

int sipub_check_header_line(const char *line, size_t len)
{
  const char *ne, *v;
  return split_line(line, len, &ne, &v);
}

/* Copies lines already checked (check_pub_config) into p as names and values. */
int check_split_extra(sipub_pub *p, const char *const *lines)
{
  size_t n = 0;
  while (lines && lines[n]) n++;
  if (!n) return 0;
  p->extra_names = calloc(n, sizeof *p->extra_names);
  p->extra_values = calloc(n, sizeof *p->extra_values);
  if (!p->extra_names || !p->extra_values) return SIPUB_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const char *ne, *v;
    size_t len = strlen(lines[i]);
    if (split_line(lines[i], len, &ne, &v) != 0) return SIPUB_EINVAL;
    p->extra_names[i] = strndup(lines[i], (size_t)(ne - lines[i]));
    p->extra_values[i] = strndup(v, (size_t)(lines[i] + len - v));
    p->n_extra = i + 1;
    if (!p->extra_names[i] || !p->extra_values[i]) return SIPUB_ENOMEM;
  }
  return 0;
}

/* ---- hosts ------------------------------------------------------------------------------- */

static int ip_literal(int af, const char *s, size_t len)
{
  char buf[INET6_ADDRSTRLEN + 1];
  unsigned char out[sizeof(struct in6_addr)];
  if (len >= sizeof buf) return 0;
  memcpy(buf, s, len);
  buf[len] = '\0';
  return inet_pton(af, buf, out) == 1;
}

int sipub_check_address(const char *s, size_t len)
{
  int bad = text_problem(s, len);
  if (bad) return bad;
  return ip_literal(AF_INET, s, len) || ip_literal(AF_INET6, s, len) ? 0 : SIPUB_BAD_ADDRESS;
}

static int alnum(unsigned char c)
{
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* hostname = *( domainlabel "." ) toplabel [ "." ], labels alphanumeric with inner hyphens
 * (IPv4 addresses read as one); IPv6reference = "[" IPv6address "]". */
int sipub_check_host(const char *s, size_t len)
{
  int bad = text_problem(s, len);
  if (bad) return bad;
  if (s[0] == '[')
    return len > 2 && s[len - 1] == ']' && ip_literal(AF_INET6, s + 1, len - 2) ? 0 : SIPUB_BAD_HOST;
  size_t label = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '.') {
      if (!label || s[i - 1] == '-') return SIPUB_BAD_HOST;
      label = 0;
    } else if (alnum(c) || (c == '-' && label)) {
      if (++label > 63) return SIPUB_BAD_HOST;
    } else {
      return SIPUB_BAD_HOST;
    }
  }
  return s[len - 1] == '-' || (len == 1 && s[0] == '.') ? SIPUB_BAD_HOST : 0;
}

/* A next hop or a sent-by as a driver takes it: a host, or an IPv6 address unbracketed. */
static int check_hop(const char *s)
{
  size_t len = s ? strlen(s) : 0;
  return sipub_check_address(s, len) == 0 ? 0 : sipub_check_host(s, len);
}

/* ---- URIs -------------------------------------------------------------------------------- */

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

static int hex_digit(char c)
{
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Whether a and b are the same text once %XX escapes are decoded (RFC 3261 §19.1.4: an
 * escaped character equals itself unescaped), i.e. libosip2's write-back b of a sends the
 * same URI. */
static int same_unescaped(const char *a, const char *b)
{
  for (;;) {
    int ca = (unsigned char)*a, cb = (unsigned char)*b, h, l;
    if (ca == '%' && (h = hex_digit(a[1])) >= 0 && (l = hex_digit(a[2])) >= 0) { ca = h * 16 + l; a += 2; }
    if (cb == '%' && (h = hex_digit(b[1])) >= 0 && (l = hex_digit(b[2])) >= 0) { cb = h * 16 + l; b += 2; }
    if (ca != cb) return 0;
    if (!*a) return 1;
    a++;
    b++;
  }
}

/* The scheme's problem: 0 for sip: or sips:, SIPUB_BAD_SCHEME for another scheme, SIPUB_BAD_URI
 * when s does not start with one. */
static int scheme_problem(const char *s, size_t len)
{
  size_t i = 0;
  while (i < len && (alnum((unsigned char)s[i]) || (i && strchr("+-.", s[i])))) i++;
  if (!i || i == len || s[i] != ':') return SIPUB_BAD_URI;
  if ((i == 3 && osip_strncasecmp(s, "sip", 3) == 0) || (i == 4 && osip_strncasecmp(s, "sips", 4) == 0))
    return 0;
  return SIPUB_BAD_SCHEME;
}

/* The rules of sipub_check_uri on s (NUL-terminated at len), keeping libosip2's parse in *out
 * (when not NULL; the caller frees it) and whether it writes s back unchanged in *verbatim.
 * Shorter than 6 bytes: libosip2 reads "<sip:a>" in no name-addr (osip_from_parse), so no To
 * could carry it; a differential run over a million generated URIs found no other case where
 * a URI that parses fails inside <>, so this parse is the only one. */
int check_uri_parse(const char *s, size_t len, struct osip_uri **out, int *verbatim)
{
  int bad = text_problem(s, len);
  if (bad) return bad;
  if ((bad = scheme_problem(s, len))) return bad;
  if (len < 6 || strpbrk(s, "<>\" \t")) return SIPUB_BAD_URI;
  for (const char *e = strchr(s, '%'); e; e = strchr(e + 1, '%'))
    if (e[1] == '0' && e[2] == '0') return SIPUB_BAD_ESCAPE;
  osip_uri_t *u = NULL;
  if (osip_uri_init(&u) != 0) return SIPUB_BAD_URI;
  char *back = NULL;
  if (osip_uri_parse(u, s) != 0 || !u->host || !*u->host || osip_uri_to_str(u, &back) != 0)
    bad = SIPUB_BAD_URI;
  else if (!valid_port(u->port))
    bad = SIPUB_BAD_PORT;
  else if (check_hop(u->host)) /* libosip2 keeps an IPv6 reference's address, unbracketed */
    bad = SIPUB_BAD_HOST;
  else if (!same_unescaped(s, back))
    bad = SIPUB_BAD_URI;
  else if (verbatim)
    *verbatim = strcmp(s, back) == 0;
  osip_free(back);
  if (bad || !out) osip_uri_free(u);
  else *out = u;
  return bad;
}

int sipub_check_uri(const char *s, size_t len)
{
  int bad = text_problem(s, len);
  if (bad) return bad;
  char *copy = strndup(s, len); /* s need not end at len */
  if (!copy) return SIPUB_BAD_URI;
  sipub_global_init();
  bad = check_uri_parse(copy, len, NULL, NULL);
  free(copy);
  return bad;
}

static char *put(char **at, const char *s)
{
  char *start = *at;
  size_t n = strlen(s) + 1;
  memcpy(start, s, n);
  *at += n;
  return start;
}

int sipub_uri_split(const char *s, size_t len, sipub_uri_parts *out, char *buf, size_t size)
{
  int bad = text_problem(s, len);
  if (bad) return bad;
  char *copy = strndup(s, len);
  if (!copy) return SIPUB_BAD_URI;
  sipub_global_init();
  osip_uri_t *u = NULL;
  bad = check_uri_parse(copy, len, &u, NULL);
  free(copy);
  if (bad) return bad;
  /* libosip2 decodes and unbrackets: each part is no longer than its text in s. */
  size_t need = strlen(u->scheme) + strlen(u->host) + (u->username ? strlen(u->username) : 0) + 3;
  if (need > size) {
    osip_uri_free(u);
    return SIPUB_BAD_URI;
  }
  char *at = buf;
  out->scheme = put(&at, u->scheme);
  out->user = u->username ? put(&at, u->username) : NULL;
  out->host = put(&at, u->host);
  out->port = u->port ? atoi(u->port) : 0;
  osip_uri_free(u);
  return 0;
}

/* ---- configurations ---------------------------------------------------------------------- */

static int report(sipub_input_error *bad, int field, int index, int problem)
{
  if (bad) {
    bad->field = field;
    bad->index = index;
    bad->problem = problem;
  }
  return problem ? SIPUB_EINVAL : 0;
}

static int cstr_problem(int (*rule)(const char *, size_t), const char *s)
{
  return rule(s, s ? strlen(s) : 0);
}

/* The rules of sipub_pub_new, in the order of the arguments of a publish call; the target's
 * parse is kept in *target on success. */
int check_pub_config(const sipub_pub_config *cfg, struct osip_uri **target, int *verbatim,
                     sipub_input_error *bad)
{
  const char *t = cfg->target;
  int e, field = SIPUB_FIELD_NONE, index = -1;
  if ((e = check_uri_parse(t, t ? strlen(t) : 0, target, verbatim)))
    return report(bad, SIPUB_FIELD_TARGET, -1, e);
  if ((e = cstr_problem(sipub_check_token, cfg->event))) field = SIPUB_FIELD_EVENT;
  else if (cfg->content_type && (e = cstr_problem(sipub_check_media_type, cfg->content_type)))
    field = SIPUB_FIELD_CONTENT_TYPE;
  else if (cfg->expires <= 0) field = SIPUB_FIELD_EXPIRES, e = SIPUB_BAD_RANGE;
  for (size_t n = 0; !e && cfg->extra_headers && cfg->extra_headers[n]; n++) {
    field = SIPUB_FIELD_EXTRA_HEADER;
    if (n == SIPUB_MAX_EXTRA_HEADERS) e = SIPUB_BAD_TOO_MANY;
    else if ((e = cstr_problem(sipub_check_header_line, cfg->extra_headers[n]))) index = (int)n;
  }
  if (!e && cfg->etag && (e = cstr_problem(sipub_check_etag, cfg->etag))) field = SIPUB_FIELD_ETAG;
  if (e) {
    osip_uri_free(*target);
    *target = NULL;
    return report(bad, field, index, e);
  }
  return report(bad, SIPUB_FIELD_NONE, -1, 0);
}

int sipub_config_check(const sipub_config *cfg, sipub_input_error *bad)
{
  int e;
  const char *creds[] = { cfg->auth_user, cfg->password, cfg->ha1_md5, cfg->ha1_sha256,
                          cfg->ha1_sha512_256, cfg->realm };
  sipub_global_init();
  if ((e = check_uri_parse(cfg->aor, cfg->aor ? strlen(cfg->aor) : 0, NULL, NULL)))
    return report(bad, SIPUB_FIELD_AOR, -1, e);
  if (cfg->proxy_host && (e = check_hop(cfg->proxy_host)))
    return report(bad, SIPUB_FIELD_PROXY, -1, e);
  if ((e = check_hop(cfg->via_host))) return report(bad, SIPUB_FIELD_VIA_HOST, -1, e);
  if (cfg->user_agent && (e = cstr_problem(sipub_check_header_value, cfg->user_agent)))
    return report(bad, SIPUB_FIELD_USER_AGENT, -1, e);
  for (size_t i = 0; i < sizeof creds / sizeof creds[0]; i++)
    if (creds[i] && (e = cstr_problem(sipub_check_header_value, creds[i])))
      return report(bad, SIPUB_FIELD_CREDENTIALS, (int)i, e);
  return report(bad, SIPUB_FIELD_NONE, -1, 0);
}
