/* fuzz_pubnew.c — libFuzzer target: sipub_pub_new() and the requests built from fuzzed target,
 * event, content type, extra headers and body; a request must never carry an injected line. */
#include "sipub.h"
#include "msg.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Input: a flags byte, then NUL-separated fields: target, event, content type, body, then
 * extra header lines (at most 8). Flags bit 0: no outbound proxy (the target's host is the
 * next hop); bit 1: default content type; bits 2-3: expires 1, 3600, 2^31-1, or 0. */

static char *last;
static size_t last_len;
static int sends;

static int fake_send(void *ud, const sipub_dest *d, const char *data, size_t len)
{
  (void)ud;
  if (!d || !d->host) __builtin_trap();
#ifdef FUZZ_STRICT
  /* Known, reported (fuzz/regressions/pubnew/target-port-invalid): without an outbound proxy
   * the C API takes "sip:a@h:0", ":99999", ":-5", ":5x" and sends to port 0, 99999, -5, 5. */
  if (d->port <= 0 || d->port > 65535) __builtin_trap();
#endif
  free(last);
  last = malloc(len + 1);
  if (!last) abort();
  memcpy(last, data, len);
  last[len] = '\0';
  last_len = len;
  sends++;
  return 0;
}

static int name_is(const char *line, size_t n, const char *name)
{
  size_t k = strlen(name);
  return n > k && strncasecmp(line, name, k) == 0 && line[k] == ':';
}

/* Every header line of the request must be one the core writes or one of the extra headers
 * it accepted: a line of any other name was injected through a value. */
static void check_request(const char *const *extra, size_t n_extra, const char *body,
                          size_t body_len, int with_body)
{
  static const char *const own[] = { "Via", "Max-Forwards", "From", "To", "Call-ID", "CSeq",
                                     "Event", "Expires", "SIP-If-Match", "User-Agent",
                                     "Content-Type", "Content-Length" };
  if (!last || strncmp(last, "PUBLISH ", 8) != 0) __builtin_trap();
  const char *end = strstr(last, "\r\n\r\n");
  if (!end) __builtin_trap();
  int vias = 0, events = 0, expires = 0, ctypes = 0;
  const char *l = strstr(last, "\r\n") + 2;
  while (l < end + 2) {
    const char *e = strstr(l, "\r\n");
    size_t n = (size_t)(e - l);
    int ok = 0;
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) ok |= name_is(l, n, own[i]);
    for (size_t i = 0; i < n_extra; i++) {
      const char *colon = strchr(extra[i], ':');
      size_t k = (size_t)(colon - extra[i]);
      while (k && (extra[i][k - 1] == ' ' || extra[i][k - 1] == '\t')) k--;
      ok |= n > k && strncasecmp(l, extra[i], k) == 0 && l[k] == ':'; /* libosip2 capitalises */
    }
    if (!ok) __builtin_trap();
    vias += name_is(l, n, "Via");
    events += name_is(l, n, "Event");
    expires += name_is(l, n, "Expires");
    ctypes += name_is(l, n, "Content-Type");
    for (size_t i = 0; i < n; i++)
      if (l[i] == '\r' || l[i] == '\n' || l[i] == '\0') __builtin_trap();
    l = e + 2;
  }
  if (vias < 1 || events < 1 || expires < 1) __builtin_trap();
  /* A body always with its Content-Type (a content type libosip2 could not parse used to be
   * accepted and dropped: fuzz/regressions/pubnew/unparsable-content-type). */
  /* (The C API lets an extra header repeat one the core writes — Lua refuses those.) */
  int extra_ctype = 0;
  for (size_t i = 0; i < n_extra; i++)
    extra_ctype |= strncasecmp(extra[i], "Content-Type", 12) == 0 || strncasecmp(extra[i], "c:", 2) == 0 ||
                   strncasecmp(extra[i], "c ", 2) == 0;
  if (!extra_ctype && with_body && ctypes != 1) __builtin_trap();
  if (!extra_ctype && !with_body && ctypes != 0) __builtin_trap();
  /* The body goes out byte-exact. */
  size_t got = last_len - (size_t)(end + 4 - last);
  if (with_body && (got != body_len || memcmp(end + 4, body, body_len) != 0)) __builtin_trap();
  if (!with_body && got != 0) __builtin_trap();
}

/* The request template: filled with fuzzed values, it must give what libosip2 builds, byte
 * for byte (the core checks one template per UA, and those with extra headers, at run time;
 * this checks that the values, as the core accepts them, never change the shape). */
static void check_template(const char *target, const char *event, const char *ctype,
                           const char *body, size_t body_len, const char *const *extra,
                           size_t n_extra, const uint8_t *data, size_t size)
{
  char *names[8], *values[8];
  for (size_t i = 0; i < n_extra; i++) { /* split as the core does (it accepted them) */
    const char *colon = strchr(extra[i], ':'), *ne = colon, *v = colon + 1;
    while (ne > extra[i] && (ne[-1] == ' ' || ne[-1] == '\t')) ne--;
    while (*v == ' ' || *v == '\t') v++;
    names[i] = strndup(extra[i], (size_t)(ne - extra[i]));
    values[i] = strdup(v);
  }
  msg_request r = {
    .ruri = target, .via_host = "127.0.0.1", .via_port = 5062, .from_uri = "sip:alice@example.com",
    .from_tag = "0f1b2c3d4e5f6a7b", .to_uri = target, .call_id = "c1d2e3f4a5b6c7d8", .event = event,
    .content_type = ctype ? ctype : "text/plain", .user_agent = (size & 1) ? "fuzz" : NULL,
    .extra_names = names, .extra_values = values, .n_extra = n_extra,
  };
  msg_template t;
  if (msg_template_init(&t, &r) != 0) {
    /* Only when libosip2 cannot build the request at all. */
    char *x = NULL;
    size_t nx = 0;
    r.body = "x";
    r.body_len = 1;
    if (msg_build_request(&r, &x, &nx) == 0) __builtin_trap();
    goto done;
  }
  if (msg_template_check(&t, &r) != 0) __builtin_trap();
  /* Without extra headers and with a target libosip2 writes as given, the core derives the
   * template from the UA's skeleton: it must be the same template. */
  if (!n_extra && msg_uri_verbatim(target)) {
    msg_skeleton skel;
    msg_template d;
    if (msg_template_skeleton(&skel, &r) != 0) {
      /* Refused (the core then builds p's template itself) only when a value holds a stand-in. */
      if (!strcasestr(event, "skel") && !strcasestr(r.content_type, "skel")) __builtin_trap();
    } else {
      if (msg_template_derive(&skel, target, r.from_tag, r.call_id, &d) != 0) __builtin_trap();
      for (int k = 0; k < MSG_TPL_NPIECES; k++)
        if (d.len[k] != t.len[k] || memcmp(d.text + d.off[k], t.text + t.off[k], t.len[k]) != 0)
          __builtin_trap();
      msg_template_clear(&skel.t);
      msg_template_clear(&d);
    }
  }
  uint64_t v = 0;
  for (size_t i = 0; i < size; i++) v = v * 131 + data[i];
  for (int with_body = 0; with_body < 2; with_body++) {
    r.branch = v;
    r.cseq = (uint32_t)(v >> 7);
    r.expires = (int)(v % 100000);
    r.etag = (v & 2) ? event : NULL;
    r.body = with_body ? body : NULL;
    r.body_len = with_body ? body_len : 0;
    char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    if (msg_template_fill(&t, &r, &a, &na) != 0 || msg_build_request(&r, &b, &nb) != 0) __builtin_trap();
    if (na != nb || memcmp(a, b, na) != 0) __builtin_trap();
    free(a);
    free(b);
  }
  msg_template_clear(&t);
done:
  for (size_t i = 0; i < n_extra; i++) {
    free(names[i]);
    free(values[i]);
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  sipub_global_init();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1) return 0;
  uint8_t flags = data[0];
  /* Split the rest on NUL into a fresh NUL-terminated copy. */
  char *copy = malloc(size);
  if (!copy) abort();
  memcpy(copy, data + 1, size - 1);
  copy[size - 1] = '\0';
  const char *field[12] = { 0 };
  size_t nf = 0, flen[12] = { 0 };
  for (char *p = copy; nf < 12 && p < copy + size;) {
    field[nf] = p;
    flen[nf] = strlen(p);
    p += flen[nf] + 1;
    nf++;
  }
  if (nf < 3) {
    free(copy);
    return 0;
  }

  sipub_config cfg = {
    .aor = "sip:alice@example.com", .proxy_host = (flags & 1) ? NULL : "127.0.0.1",
    .proxy_port = 5060, .via_host = "127.0.0.1", .via_port = 5062, .user_agent = "fuzz",
    .seed = 7,
  };
  sipub_io io = { NULL, fake_send, NULL };
  sipub_ua *ua = sipub_ua_new(&cfg, &io, 0);
  if (!ua) abort();

  static const int expires[] = { 1, 3600, 2147483647, 0 };
  const char *extra[9] = { 0 };
  size_t n_extra = 0;
  for (size_t i = 4; i < nf && n_extra < 8; i++) extra[n_extra++] = field[i];
  sipub_pub_config pc = {
    .target = field[0], .event = field[1], .content_type = (flags & 2) ? NULL : field[2],
    .expires = expires[(flags >> 2) & 3], .extra_headers = extra, .unpublish_on_close = 1,
  };
  /* A non-NULL empty body is an "initial" by the C contract, but fails as "Connection
   * Error" without sending (reported; Lua cannot pass one): always give one byte at least. */
  const char *body = nf > 3 && flen[3] ? field[3] : "-";
  size_t body_len = nf > 3 && flen[3] ? flen[3] : 1;
  int err = 0;
  sipub_pub *p = sipub_pub_new(ua, &pc, &err, NULL);
  if (!p) {
    if (err == 0 || sends) __builtin_trap(); /* a refusal sends nothing */
  } else {
    if (pc.expires <= 0) __builtin_trap(); /* must have been refused */
    check_template(pc.target, pc.event, pc.content_type, body, body_len, extra, n_extra, data, size);
    sipub_pub_publish(p, body, body_len);
    if (sends != 1) {
      /* Known, reported (fuzz/regressions/pubnew/one-char-host): a target such as "sip:b"
       * passes the check, but "<sip:b>" cannot be built into To: nothing is sent and the
       * publication fails with "Connection Error". It must at least be reported so. */
#ifdef FUZZ_STRICT
      __builtin_trap();
#endif
      sipub_event ev;
      int failed = 0, unpublished = 0;
      while (sipub_ua_poll(ua, &ev)) {
        failed += ev.kind == SIPUB_EV_FAILED;
        unpublished += ev.kind == SIPUB_EV_UNPUBLISHED && failed;
      }
      if (sends != 0 || failed != 1 || unpublished != 1) __builtin_trap();
      sipub_pub_release(p);
      goto done;
    }
    check_request(extra, n_extra, body, body_len, 1);
    /* A 200 with an entity-tag, then a refresh and a remove: their requests too. */
    const char *via = strstr(last, "\r\nVia: ");
    const char *cid = strstr(last, "\r\nCall-ID: ");
    const char *cseq = strstr(last, "\r\nCSeq: ");
    const char *from = strstr(last, "\r\nFrom: ");
    const char *to = strstr(last, "\r\nTo: ");
    if (!via || !cid || !cseq || !from || !to) __builtin_trap();
    size_t cap = last_len + 256;
    char *resp = malloc(cap);
    if (!resp) abort();
    int n = snprintf(resp, cap, "SIP/2.0 200 OK%.*s%.*s;tag=x%.*s%.*s%.*s\r\nSIP-ETag: e1\r\n"
                     "Content-Length: 0\r\n\r\n",
                     (int)(strstr(via + 2, "\r\n") - via), via,
                     (int)(strstr(to + 2, "\r\n") - to), to,
                     (int)(strstr(from + 2, "\r\n") - from), from,
                     (int)(strstr(cid + 2, "\r\n") - cid), cid,
                     (int)(strstr(cseq + 2, "\r\n") - cseq), cseq);
    sipub_ua_receive(ua, 10, NULL, resp, (size_t)n);
    free(resp);
    sipub_event ev;
    int published = 0;
    while (sipub_ua_poll(ua, &ev)) published |= ev.kind == SIPUB_EV_PUBLISHED;
    if (published) {
      sipub_pub_publish(p, NULL, 0);
      if (sends != 2) __builtin_trap();
      check_request(extra, n_extra, NULL, 0, 0);
    }
    sipub_pub_release(p);
  }
done:
  sipub_ua_free(ua);
  free(last);
  last = NULL;
  sends = 0;
  free(copy);
  return 0;
}
