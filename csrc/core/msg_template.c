/* msg_template.c — request templates: libosip2's text of a publication's request cut around
 * the fields that change, filled with a few copies; per-UA skeletons for the usual shape. */
#include "msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <osipparser2/osip_parser.h>

static int starts(const char *s, size_t n, const char *prefix)
{
  size_t k = strlen(prefix);
  return n >= k && memcmp(s, prefix, k) == 0;
}

/* Writes v in decimal at p; returns the end. */
static char *put_uint(char *p, unsigned long long v)
{
  char tmp[24];
  int n = 0;
  do tmp[n++] = (char)('0' + v % 10); while ((v /= 10) != 0);
  while (n) *p++ = tmp[--n];
  return p;
}

static char *put(char *p, const char *s, size_t n)
{
  memcpy(p, s, n);
  return p + n;
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

int msg_template_fill(const msg_template *t, const msg_request *r, char **out, size_t *len)
{
  const char *const piece = t->text;
  int with_body = r->body != NULL;
  if (with_body && r->body_len == 0) return msg_build_request(r, out, len);
  size_t etag_len = r->etag ? strlen(r->etag) : 0;
  size_t auth_len[2] = { 0, 0 }, auth_name_len[2] = { 0, 0 };
  size_t n = t->len[MSG_TPL_HEAD] + 16 + t->len[MSG_TPL_CALL] + 10 + sizeof " PUBLISH\r\n" +
             (with_body ? t->len[MSG_TPL_CTYPE] : 0) + t->len[MSG_TPL_MID] +
             sizeof "Expires: \r\n" + 11 + t->len[MSG_TPL_TAIL] +
             sizeof "Content-Length: \r\n\r\n" + 20 + r->body_len + 1;
  if (r->etag) n += sizeof "SIP-If-Match: \r\n" + etag_len;
  for (size_t i = 0; i < r->n_auth; i++) {
    auth_name_len[i] = strlen(r->auth_names[i]);
    auth_len[i] = strlen(r->auth_values[i]);
    n += auth_name_len[i] + 4 + auth_len[i];
  }
  char *buf = malloc(n), *p = buf;
  if (!buf) return -1;

  p = put(p, piece + t->off[MSG_TPL_HEAD], t->len[MSG_TPL_HEAD]);
  msg_hex64(p, r->branch);
  p += 16;
  p = put(p, piece + t->off[MSG_TPL_CALL], t->len[MSG_TPL_CALL]);
  p = put_uint(p, r->cseq);
  p = PUT_LIT(p, " PUBLISH\r\n");
  if (with_body) p = put(p, piece + t->off[MSG_TPL_CTYPE], t->len[MSG_TPL_CTYPE]);
  p = put(p, piece + t->off[MSG_TPL_MID], t->len[MSG_TPL_MID]);
  p = PUT_LIT(p, "Expires: ");
  if (r->expires < 0) *p++ = '-';
  p = put_uint(p, r->expires < 0 ? -(unsigned long long)r->expires : (unsigned long long)r->expires);
  p = PUT_LIT(p, "\r\n");
  if (r->etag) {
    p = PUT_LIT(p, "SIP-If-Match: ");
    p = put(p, r->etag, etag_len);
    p = PUT_LIT(p, "\r\n");
  }
  p = put(p, piece + t->off[MSG_TPL_TAIL], t->len[MSG_TPL_TAIL]);
  for (size_t i = 0; i < r->n_auth; i++) {
    p = put(p, r->auth_names[i], auth_name_len[i]);
    p = PUT_LIT(p, ": ");
    p = put(p, r->auth_values[i], auth_len[i]);
    p = PUT_LIT(p, "\r\n");
  }
  /* As libosip2 writes it: a body's length right-aligned in five columns, else 0 (from 100 000
   * bytes on, libosip2 overwrites the ": " before the number; a UDP datagram is smaller). */
  p = PUT_LIT(p, "Content-Length: ");
  if (with_body) {
    char num[24];
    char *e = put_uint(num, r->body_len);
    for (ptrdiff_t pad = 5 - (e - num); pad > 0; pad--) *p++ = ' ';
    p = put(p, num, (size_t)(e - num));
  } else {
    *p++ = '0';
  }
  p = PUT_LIT(p, "\r\n\r\n");
  if (with_body) p = put(p, r->body, r->body_len);
  *p = '\0';
  *out = buf;
  *len = (size_t)(p - buf);
  return 0;
}

void msg_template_clear(msg_template *t)
{
  free(t->text);
  memset(t, 0, sizeof *t);
}

/* Fills t and builds the same request with libosip2: 0 when both texts are equal. */
static int template_agrees(const msg_template *t, msg_request r, int with_body)
{
  static const char *const auth_names[2] = { "Authorization", "Proxy-Authorization" };
  static const char *const auth_values[2] = { "Digest username=\"u\", nc=00000001",
                                              "Digest username=\"p\"" };
  r.branch = 0x0123456789abcdefULL;
  r.cseq = 4294967295u;
  r.expires = 3600;
  r.etag = "e1.x";
  r.body = with_body ? "<a/>" : NULL;
  r.body_len = with_body ? 4 : 0;
  r.n_auth = 2;
  r.auth_names[0] = auth_names[0];
  r.auth_names[1] = auth_names[1];
  r.auth_values[0] = auth_values[0];
  r.auth_values[1] = auth_values[1];
  char *a = NULL, *b = NULL;
  size_t na = 0, nb = 0;
  int rc = -1;
  if (msg_template_fill(t, &r, &a, &na) == 0 && msg_build_request(&r, &b, &nb) == 0)
    rc = na == nb && memcmp(a, b, na) == 0 ? 0 : -1;
  free(a);
  free(b);
  return rc;
}

int msg_template_init(msg_template *t, const msg_request *fixed)
{
  memset(t, 0, sizeof *t);
  /* The prototype: every field that changes set to a value easy to find in the text. */
  msg_request r = *fixed;
  r.branch = 0;
  r.cseq = 1;
  r.expires = 0;
  r.etag = NULL;
  r.n_auth = 0;
  r.body = "x";
  r.body_len = 1;
  char *text = NULL;
  size_t n = 0;
  if (msg_build_request(&r, &text, &n) != 0) return -1;

  /* Walk the header lines, cutting the pieces: the text must have the expected shape. */
  static const char branch0[] = ";branch=" MSG_BRANCH_PREFIX "0000000000000000";
  enum { IN_HEAD, IN_CALL, AFTER_CSEQ, IN_MID, IN_TAIL, DONE } at = IN_HEAD;
  uint32_t off[MSG_TPL_NPIECES] = { 0 }, end[MSG_TPL_NPIECES] = { 0 };
  const char *s = text;
  int ok = 0;
  size_t i = 0;
  while (i < n && at != DONE) {
    const char *eol = strstr(s + i, "\r\n");
    if (!eol) break;
    size_t line_len = (size_t)(eol - (s + i)), next = i + line_len + 2;
    const char *l = s + i;
    if (i == 0) {
      if (!starts(l, line_len, "PUBLISH ")) break;
    } else if (at == IN_HEAD) {
      const char *b = starts(l, line_len, "Via: ") ? strstr(l, branch0) : NULL;
      if (!b || b > eol) break;
      end[MSG_TPL_HEAD] = (uint32_t)(b - s) + 8 + (uint32_t)strlen(MSG_BRANCH_PREFIX);
      off[MSG_TPL_CALL] = end[MSG_TPL_HEAD] + 16;
      at = IN_CALL;
    } else if (at == IN_CALL) {
      if (starts(l, line_len, "CSeq: ")) {
        if (line_len != strlen("CSeq: 1 PUBLISH") || !starts(l, line_len, "CSeq: 1 PUBLISH")) break;
        end[MSG_TPL_CALL] = (uint32_t)i + 6;
        off[MSG_TPL_CTYPE] = end[MSG_TPL_CTYPE] = off[MSG_TPL_MID] = (uint32_t)next;
        at = AFTER_CSEQ;
      }
    } else if (at == AFTER_CSEQ && starts(l, line_len, "Content-Type: ")) {
      end[MSG_TPL_CTYPE] = off[MSG_TPL_MID] = (uint32_t)next;
      at = IN_MID;
    } else if (at == AFTER_CSEQ || at == IN_MID) {
      at = IN_MID;
      if (line_len == strlen("Expires: 0") && starts(l, line_len, "Expires: 0")) {
        end[MSG_TPL_MID] = (uint32_t)i;
        off[MSG_TPL_TAIL] = (uint32_t)next;
        at = IN_TAIL;
      }
    } else if (at == IN_TAIL && starts(l, line_len, "Content-Length: ")) {
      end[MSG_TPL_TAIL] = (uint32_t)i;
      ok = strcmp(l, "Content-Length:     1\r\n\r\nx") == 0;
      at = DONE;
    }
    i = next;
  }
  if (ok) {
    size_t total = 0;
    for (int k = 0; k < MSG_TPL_NPIECES; k++) total += end[k] - off[k];
    t->text = malloc(total ? total : 1);
    if (t->text) {
      uint32_t at_off = 0;
      for (int k = 0; k < MSG_TPL_NPIECES; k++) {
        t->off[k] = at_off;
        t->len[k] = end[k] - off[k];
        memcpy(t->text + at_off, s + off[k], t->len[k]);
        at_off += t->len[k];
      }
    }
  }
  free(text);
  return t->text ? 0 : -1;
}

int msg_template_check(const msg_template *t, const msg_request *fixed)
{
  return template_agrees(t, *fixed, 1) == 0 && template_agrees(t, *fixed, 0) == 0 ? 0 : -1;
}

/* ---- template skeletons ---------------------------------------------------------------- */

/* Stand-ins a skeleton is built with, replaced in each derived template. */
#define SKEL_URI "sip:skel-9f3c2a1e@skel.invalid"
#define SKEL_TAG "skeltag9f3c2a1e"
#define SKEL_CID "skelcid9f3c2a1e"

static const char *const skel_from[3] = { SKEL_URI, SKEL_TAG, SKEL_CID };

int msg_template_derive(const msg_skeleton *skel, const char *uri, const char *from_tag,
                        const char *call_id, msg_template *out)
{
  const char *const to[3] = { uri, from_tag, call_id };
  size_t to_len[3] = { strlen(uri), strlen(from_tag), strlen(call_id) }, total = 0;
  const msg_template *t = &skel->t;
  memset(out, 0, sizeof *out);
  for (int k = 0; k < MSG_TPL_NPIECES; k++) total += t->len[k];
  for (int h = 0; h < MSG_SKEL_HOLES; h++)
    total += to_len[skel->what[h]] - strlen(skel_from[skel->what[h]]);
  if (!(out->text = malloc(total ? total : 1))) return -1;
  /* Pieces are contiguous in t->text: copy it whole, putting values in for the stand-ins,
   * and shift each piece's offset by what the holes before it added. */
  char *d = out->text;
  uint32_t src = 0;
  int h = 0;
  for (int k = 0; k < MSG_TPL_NPIECES; k++) {
    uint32_t end = t->off[k] + t->len[k];
    out->off[k] = (uint32_t)(d - out->text);
    while (src < end) {
      uint32_t stop = h < MSG_SKEL_HOLES && skel->at[h] < end ? skel->at[h] : end;
      memcpy(d, t->text + src, stop - src);
      d += stop - src;
      src = stop;
      if (src == end) break;
      int w = skel->what[h++];
      memcpy(d, to[w], to_len[w]);
      d += to_len[w];
      src += (uint32_t)strlen(skel_from[w]);
    }
    out->len[k] = (uint32_t)(d - out->text) - out->off[k];
  }
  return 0;
}

int msg_template_skeleton(msg_skeleton *skel, const msg_request *fixed)
{
  msg_request r = *fixed;
  memset(skel, 0, sizeof *skel);
  if (r.n_extra) return -1;
  r.ruri = r.to_uri = SKEL_URI;
  r.from_tag = SKEL_TAG;
  r.call_id = SKEL_CID;
  if (msg_template_init(&skel->t, &r) != 0) return -1;
  /* Find the stand-ins: the target twice, the tag and the Call-ID once, each inside one
   * piece, and nowhere else (an event named like one makes this fail). */
  const msg_template *t = &skel->t;
  unsigned counts[3] = { 0, 0, 0 }, n = 0;
  int ok = 1;
  for (int k = 0; k < MSG_TPL_NPIECES && ok; k++) {
    const char *p = t->text + t->off[k], *end = p + t->len[k];
    while (p < end && ok) {
      int w = -1;
      for (int i = 0; i < 3 && w < 0; i++) {
        size_t fl = strlen(skel_from[i]);
        if ((size_t)(end - p) >= fl && memcmp(p, skel_from[i], fl) == 0) w = i;
      }
      if (w < 0) { p++; continue; }
      if (n == MSG_SKEL_HOLES) { ok = 0; break; }
      skel->at[n] = (uint32_t)(p - t->text);
      skel->what[n++] = (unsigned char)w;
      counts[w]++;
      p += strlen(skel_from[w]);
    }
  }
  ok = ok && n == MSG_SKEL_HOLES && counts[0] == 2 && counts[1] == 1 && counts[2] == 1;
  /* Another stand-in overlapping a found one would not be seen by the scan above: check
   * that no "skel" is left once the values are in. */
  msg_template probe;
  if (ok && msg_template_derive(skel, "sip:a@b", "t", "c", &probe) == 0) {
    for (int k = 0; k < MSG_TPL_NPIECES && ok; k++)
      ok = !memmem(probe.text + probe.off[k], probe.len[k], "skel", 4);
    msg_template_clear(&probe);
  } else {
    ok = 0;
  }
  if (!ok || msg_template_check(t, &r) != 0) {
    msg_template_clear(&skel->t);
    return -1;
  }
  return 0;
}

int msg_uri_same_text(struct osip_uri *parsed, const char *text)
{
  char *back = NULL;
  int same = osip_uri_to_str(parsed, &back) == 0 && back && strcmp(back, text) == 0;
  osip_free(back);
  return same;
}

void msg_uri_free(struct osip_uri *u)
{
  if (u) osip_uri_free(u);
}

int msg_uri_verbatim(const char *uri)
{
  osip_uri_t *u = NULL;
  int same = 0;
  if (osip_uri_init(&u) != 0) return 0;
  if (osip_uri_parse(u, uri) == 0) same = msg_uri_same_text(u, uri);
  osip_uri_free(u);
  return same;
}
