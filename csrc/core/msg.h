/* msg.h — building PUBLISH requests and reading responses with libosip2: the only
 * place of the core that knows the SIP syntax. Internal to the core. */
#ifndef SIPUB_MSG_H
#define SIPUB_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "digest.h"
#include "sipub.h"

#define MSG_MAX_CHALLENGES 4

#define MSG_BRANCH_PREFIX "z9hG4bK"

typedef struct msg_request {
  const char *ruri;
  const char *via_host;
  int via_port;
  sipub_transport transport; /* written in Via */
  uint64_t branch;
  const char *from_uri;
  const char *from_tag;
  const char *to_uri;
  const char *call_id;
  uint32_t cseq;
  const char *event;
  int expires;
  const char *etag;          /* NULL: no SIP-If-Match */
  const char *content_type;  /* used only with a body */
  const char *body;          /* NULL: no body */
  size_t body_len;
  char *const *extra_names;  /* n_extra names and values */
  char *const *extra_values;
  size_t n_extra;
  const char *user_agent;    /* NULL: none */
  const char *auth_names[2]; /* Authorization / Proxy-Authorization, n_auth of them */
  const char *auth_values[2];
  size_t n_auth;
} msg_request;

/* Builds the request text with libosip2; *out is released with free(). Returns 0, or -1. */
int msg_build_request(const msg_request *r, char **out, size_t *len);

/* A publication's request template: the text libosip2 writes for the fields that stay the
 * same across its requests (request line, Via up to the branch, From, To, Call-ID,
 * Content-Type, Max-Forwards, extra headers, Event, User-Agent), cut around the fields that
 * change (branch, CSeq number, Expires, SIP-If-Match, Authorization, Content-Length, body).
 * Filling it costs a few copies instead of a libosip2 message built, printed and freed. */
enum { MSG_TPL_HEAD, MSG_TPL_CALL, MSG_TPL_CTYPE, MSG_TPL_MID, MSG_TPL_TAIL, MSG_TPL_NPIECES };
typedef struct msg_template {
  char *text;                   /* the pieces, one allocation */
  uint32_t off[MSG_TPL_NPIECES], len[MSG_TPL_NPIECES];
} msg_template;

/* Prepares t from r's fixed fields (r->content_type must be set): 0, or -1 when libosip2's
 * text does not have the expected shape (t left empty: use msg_build_request()). */
int msg_template_init(msg_template *t, const msg_request *r);
/* 0 when filling t gives, byte for byte, what msg_build_request() gives for a request with a
 * body and one without (every variable field set). The shape depends on libosip2's version and
 * on the header names, not on the values (fuzz/fuzz_pubnew.c checks that). */
int msg_template_check(const msg_template *t, const msg_request *r);
/* Builds r's request from t (r's fixed fields must be those t was made from). */
int msg_template_fill(const msg_template *t, const msg_request *r, char **out, size_t *len);
void msg_template_clear(msg_template *t);

/* The template of publications without extra headers, made once for an event and content
 * type (r's other fields as for msg_template_init; its URIs, From tag and Call-ID ignored):
 * each publication's template is derived from it by putting in its target URI (Request-URI
 * and To), From tag and Call-ID, which libosip2 writes exactly as given when
 * msg_uri_verbatim(target) holds (tags and Call-IDs are hex). 0, or -1. */
#define MSG_SKEL_HOLES 4
typedef struct msg_skeleton {
  msg_template t;
  uint32_t at[MSG_SKEL_HOLES];       /* where the stand-ins are in t.text, in order */
  unsigned char what[MSG_SKEL_HOLES]; /* 0 target URI, 1 From tag, 2 Call-ID */
} msg_skeleton;
int msg_template_skeleton(msg_skeleton *skel, const msg_request *r);
int msg_template_derive(const msg_skeleton *skel, const char *uri, const char *from_tag,
                        const char *call_id, msg_template *out);
/* 1 when libosip2 parses uri and writes it back unchanged; msg_uri_same_text does the
 * writing back for a URI already parsed from text. */
struct osip_uri;
int msg_uri_verbatim(const char *uri);
int msg_uri_same_text(struct osip_uri *parsed, const char *text);
/* osip_uri_free, NULL allowed: for files that do not include libosip2. */
void msg_uri_free(struct osip_uri *u);

/* Writes v as 16 lower-case hex digits (branches, tags, Call-IDs). Inline: it runs for
 * every request (its branch) and every response (reading one back). */
static inline void msg_hex64(char out[16], uint64_t v)
{
  static const char hex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; i--, v >>= 4) out[i] = hex[v & 0xf];
}

typedef struct msg_response {
  int status;
  char *reason;
  uint64_t branch;       /* the 64-bit id of a branch this core generated */
  int branch_ours;       /* 1 when the top Via branch has our shape */
  uint32_t cseq;
  int cseq_publish;      /* 1 when the CSeq method is PUBLISH */
  char *call_id;
  char *etag;            /* SIP-ETag or NULL */
  long expires;          /* Expires: -1 absent or invalid */
  long min_expires;      /* Min-Expires: -1 absent or invalid */
  long retry_after;      /* Retry-After delta-seconds, 2^31 - 1 at most: -1 absent or invalid */
  dg_challenge challenges[MSG_MAX_CHALLENGES]; /* answerable digest challenges (401/407) */
  int nchallenges;
  size_t len;            /* bytes of the message after Content-Length trimming */
  size_t body_off, body_len;
} msg_response;

/* Bounds on what one response may cost (issue 13 #3): libosip2's parse grows with the square
 * of the header count, so a response with more header lines (status and blank line aside) or
 * larger than a UDP datagram is dropped before it, by the scanner and by the libosip2 path
 * alike. No real answer to a PUBLISH comes near them; a long line costs linear time. */
#define MSG_MAX_SIZE 65535
#define MSG_MAX_HEADER_LINES 128

/* What a response must match, read cheaply (one pass over the line starts, no allocation):
 * the top Via's branch, the CSeq number and the Call-ID (pointing into the datagram). */
typedef struct msg_ids {
  uint64_t branch;
  int branch_ours;
  int has_cseq;
  uint32_t cseq;
  const char *call_id; /* NULL: not read (folded, absent) */
  size_t call_id_len;
} msg_ids;

/* 0 when data starts like a response whose top Via has a branch of our shape (ids filled),
 * else -1: it cannot belong to any transaction of ours. A mismatch here means the full parse
 * would not match either; a match is only a candidate (the full parse decides). */
int msg_peek_ids(const char *data, size_t len, msg_ids *ids);

/* Reads a response. Returns 0, or -1 when it must be dropped (not a response, does not
 * parse, several Via values, a mandatory header missing, Content-Length beyond the data). */
int msg_parse_response(const char *data, size_t len, msg_response *out);
void msg_response_clear(msg_response *r);

/* Parses a decimal delta-seconds value (surrounding whitespace allowed); -1 if invalid. */
long msg_parse_seconds(const char *s);

/* snprintf into a malloc'd buffer of the right size (URIs, tags and digest inputs have no
 * length limit); NULL when out of memory. */
char *msg_format(const char *f, ...) __attribute__((format(printf, 1, 2)));

/* 1 when s (len bytes) holds no control character (CR, LF, NUL...) but horizontal tab. */
int msg_header_safe(const char *s, size_t len);


/* strdup that passes NULL through. */
char *msg_strdup(const char *s);

/* The 64-bit id of a branch this core generated (MSG_BRANCH_PREFIX and 16 lower-case hex
 * digits), from the len bytes at b; *ours 0 when the branch has another shape. */
static inline uint64_t msg_parse_branch(const char *b, size_t len, int *ours)
{
  size_t plen = sizeof MSG_BRANCH_PREFIX - 1;
  uint64_t v = 0;
  *ours = 0;
  if (!b || len != plen + 16 || memcmp(b, MSG_BRANCH_PREFIX, plen) != 0) return 0;
  for (size_t i = plen; i < len; i++) {
    int c = (unsigned char)b[i], x;
    if (c >= '0' && c <= '9') x = c - '0';
    else if (c >= 'a' && c <= 'f') x = c - 'a' + 10;
    else return 0;
    v = (v << 4) | (uint64_t)x;
  }
  *ours = 1;
  return v;
}

/* Reads a response datagram (len bytes). Returns 1 when it lies in the subset the scanner
 * knows libosip2 reads the same way: out is filled as msg_parse_response fills it (strings
 * malloc'd, released by msg_response_clear; the framing, len, body_off and body_len, as
 * msg_parse_response computes it; no challenge). Returns 0 otherwise (or out of memory),
 * out untouched. */
int msg_scan_response(const char *data, size_t len, msg_response *out);

/* The fast path alone: 0 when the scanner read the response (out filled), -1 when it declined
 * (out cleared: read it with msg_parse_response_osip). */
int msg_parse_response_fast(const char *data, size_t len, msg_response *out);

/* msg_parse_response without the fast path: libosip2 alone. The reference the differential
 * fuzz target (fuzz/fuzz_scan.c) holds msg_parse_response to. */
int msg_parse_response_osip(const char *data, size_t len, msg_response *out);

#endif
