/* sipub.h — public C API of the protocol core: RFC 3903 publications carried by RFC 3261
 * non-INVITE client transactions. Sans I/O: bytes and time in, bytes and deadlines out. */
#ifndef SIPUB_H
#define SIPUB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SIPUB_VERSION "0.1.0"

typedef struct sipub_ua sipub_ua;
typedef struct sipub_pub sipub_pub;

/* Return codes of the calls below. */
enum {
  SIPUB_OK = 0,
  SIPUB_EINVAL = -1,   /* an argument is malformed (CR/LF in a header value, bad URI...) */
  SIPUB_ENOSTATE = -2, /* a refresh was asked for but nothing is published or pending */
  SIPUB_ECLOSED = -3,  /* the publication or its UA is closed */
  SIPUB_ENOMEM = -4
};

/* Transports. A reliable one (TCP, TLS) does its own retransmissions: no Timer E, Timer K = 0;
 * SIPS needs TLS on every hop. */
typedef enum sipub_transport { SIPUB_TP_UDP = 0, SIPUB_TP_TCP, SIPUB_TP_TLS } sipub_transport;

/* Where a request goes: the next hop's host (name or literal), port and transport. */
typedef struct sipub_dest {
  const char *host;
  int port;
  sipub_transport tp;
} sipub_dest;

/* The resolver seam: the core decides what to look up and in what order; a driver only runs
 * the queries and hands the answers back with sipub_ua_resolved(). SIPUB_RR_ADDR asks for
 * the addresses of a name (A and AAAA, whichever the driver's sockets can use); the others
 * are the records of RFC 3263 (NAPTR, then SRV), for the drivers to come. */
typedef enum sipub_rr_type {
  SIPUB_RR_ADDR = 1, /* query: A and AAAA; answers: one address each */
  SIPUB_RR_A,
  SIPUB_RR_AAAA,
  SIPUB_RR_SRV,
  SIPUB_RR_NAPTR
} sipub_rr_type;

/* One answer record. Strings are borrowed for the duration of sipub_ua_resolved(). */
typedef struct sipub_rr {
  sipub_rr_type type;
  const char *name;     /* ADDR/A/AAAA: the address as text (IPv6 without brackets);
                         * SRV: the target; NAPTR: the replacement */
  int port;             /* SRV */
  int priority, weight; /* SRV priority and weight; NAPTR order and preference */
  uint32_t ttl;         /* seconds the answer may be kept */
  const char *flags, *service; /* NAPTR; NULL otherwise */
} sipub_rr;

/* The I/O a driver gives the core.
 * send() returns 0 when the message was handed to the network, or a negative value when it
 * could not be (the transaction then fails with "Connection Error"). A failure found later
 * (an asynchronous send error, a refused or reset connection) is reported back with
 * sipub_ua_flow_failed(). dest.host is what the core chose: a name when resolve is NULL,
 * else always a literal address.
 * resolve() (optional) starts a query; the answer comes back through sipub_ua_resolved()
 * with the same query_id, later or from inside resolve() itself (a cache). It returns 0, or
 * a negative value when the query cannot start (the request fails at once). NULL: the core
 * sends to names as they are and the driver resolves them. Neither callback may call the
 * core otherwise (report failures after returning). */
typedef struct sipub_io {
  void *ud;
  int (*send)(void *ud, const sipub_dest *dest, const char *data, size_t len);
  int (*resolve)(void *ud, uint32_t query_id, const char *name, sipub_rr_type type);
} sipub_io;

/* Stream framing (RFC 3261 §18.3), shared by the core's stream flows and by servers such as
 * the test compositor: reads the message at the start of data. The header section ends at
 * the first empty line (CRLF CRLF; a bare LF line end is accepted as RFC 3261 §7.5 lets a
 * receiver be lenient); the body is Content-Length bytes (long or compact form). */
#define SIPUB_FRAME_MAX (64 * 1024) /* bytes of the largest message a stream may carry */
enum {
  SIPUB_FRAME_COMPLETE = 1,  /* msg_len bytes are one message */
  SIPUB_FRAME_MORE = 0,      /* the message is not complete yet: read more */
  SIPUB_FRAME_NO_LENGTH = -1, /* no Content-Length: unframeable on a stream (a datagram's
                              * message ends with the datagram) */
  SIPUB_FRAME_BAD = -2       /* a malformed Content-Length, or a message over SIPUB_FRAME_MAX */
};
typedef struct sipub_frame {
  size_t header_len;     /* bytes up to and including the empty line; 0 while not found */
  size_t msg_len;        /* header_len + Content-Length, once both are known (also with
                          * MORE: the bytes to wait for); else 0 */
  size_t cl_off, cl_len; /* where the Content-Length value is (cl_len 0: none found) */
} sipub_frame;
int sipub_frame_message(const char *data, size_t len, sipub_frame *out);

/* ---- message trace ----------------------------------------------------------------------
 * An optional callback (sipub_config.trace) that sees every request the core sends (its first
 * transmission and each retransmission), every response received that matched a transaction,
 * and every message dropped, with the reason: what an engineer reads like sngrep. The bytes
 * are those on the wire; digest secrets are never in them (an Authorization header carries a
 * response, not the password or HA1), nor in the notes. Unset, it costs one NULL check per
 * message. The callback must not call the core: it runs in the middle of a send or receive. */
typedef enum sipub_trace_dir {
  SIPUB_TRACE_SENT = 0, /* a request handed to the network */
  SIPUB_TRACE_RECEIVED, /* a response that matched its transaction */
  SIPUB_TRACE_DROPPED   /* a message dropped (received, or a send the transport refused) */
} sipub_trace_dir;

/* Why a message was dropped (sipub_trace.drop); sipub_drop_name() names each. */
typedef enum sipub_drop {
  SIPUB_DROP_NONE = 0,
  SIPUB_DROP_UNPARSEABLE,       /* not a SIP response, or libosip2 cannot read it */
  SIPUB_DROP_TOO_LARGE,         /* over the size limit (65535 bytes) */
  SIPUB_DROP_TOO_MANY_HEADERS,  /* over the header line limit (128) */
  SIPUB_DROP_NO_TRANSACTION,    /* no transaction matches its top Via branch */
  SIPUB_DROP_MISMATCH,          /* the branch matches, its CSeq or Call-ID does not */
  SIPUB_DROP_RETRANSMITTED_FINAL, /* a final response again: absorbed (Timer K) */
  SIPUB_DROP_FRAMING,           /* a stream that cannot be framed (Content-Length) */
  SIPUB_DROP_SEND_REFUSED,      /* a request the transport refused to send */
  SIPUB_DROP_COUNT
} sipub_drop;

typedef struct sipub_trace {
  sipub_trace_dir direction;
  int drop;                /* sipub_drop: why, when direction is SIPUB_TRACE_DROPPED; else 0 */
  unsigned retransmission; /* a request sent: 0 for its first transmission, n for the nth
                            * retransmission (Timer E) */
  const sipub_dest *flow;  /* where a request went, where a message came from; NULL when
                            * the driver did not name the source of a dropped datagram */
  const char *data;        /* the message's bytes (not NUL-terminated) */
  size_t len;
  const char *note;        /* words on it ("retransmission 2", "no transaction matches
                            * branch z9hG4bK..."), or NULL */
  uint64_t time_ms;        /* the core's clock */
} sipub_trace;

/* A short name of a drop reason ("unparseable", "no transaction"...): "" for none. */
const char *sipub_drop_name(int drop);

typedef struct sipub_config {
  const char *aor;        /* the UA's address of record (From) */
  const char *proxy_host; /* outbound proxy, or NULL: the target URI's host */
  int proxy_port;         /* 0: 5060 */
  const char *via_host;   /* sent-by written in Via */
  int via_port;
  const char *user_agent; /* NULL: no User-Agent header */
  sipub_transport transport; /* for next hops whose URI names none (sips: means TLS) */
  uint64_t seed;          /* seeds branch, tag and Call-ID generation; 0: a random one */
  unsigned t1_ms, t2_ms, t4_ms; /* 0: RFC 3261 defaults 500, 4000, 5000 */
  /* Digest credentials (RFC 3261 §22). auth_user NULL: no authentication. */
  const char *auth_user;
  const char *password;    /* or, instead, precomputed H(user:realm:password) per hash: */
  const char *ha1_md5, *ha1_sha256, *ha1_sha512_256;
  const char *realm;       /* answer only challenges of this realm, or NULL */
  /* The message trace (see sipub_trace), or NULL: none. Called with trace_ud. */
  void (*trace)(void *ud, const sipub_trace *t);
  void *trace_ud;
} sipub_config;

typedef enum sipub_event_kind {
  SIPUB_EV_PROGRESS = 0,
  SIPUB_EV_PUBLISHED,
  SIPUB_EV_FAILED,
  SIPUB_EV_UNPUBLISHED
} sipub_event_kind;

/* A received response as the events carry it. */
typedef struct sipub_response {
  int status;
  const char *reason;     /* the reason phrase on the wire */
  const char *data;       /* the whole message, as received (after Content-Length trimming) */
  size_t len;
  const char *body;       /* points into data */
  size_t body_len;
} sipub_response;

typedef struct sipub_event {
  sipub_event_kind kind;
  sipub_pub *pub;
  void *user;                     /* sipub_pub_set_user() value of pub */
  const sipub_response *response; /* NULL for a timeout or a transport error */
  int status;                     /* response status, or 0 */
  const char *cause;              /* standard phrase, "Request Timeout", ... */
  /* Why a transport failed, in words, or NULL: the reason a driver gave to
   * sipub_ua_flow_failed() ("connection reset by peer"), a name that did not resolve
   * ("example.test: Domain name not found"), a send the driver refused ("192.0.2.1:5060
   * (tcp): the transport refused the request"), a stream that could not be framed. Set on
   * `failed` and `unpublished` events of cause "Connection Error". Owned by the core, valid
   * until the next sipub_ua_poll(). */
  const char *detail;
} sipub_event;

/* Causes that are not a reason phrase. */
extern const char *const SIPUB_CAUSE_REQUEST_TIMEOUT;  /* "Request Timeout" */
extern const char *const SIPUB_CAUSE_CONNECTION_ERROR; /* "Connection Error" */
extern const char *const SIPUB_CAUSE_PROTOCOL_ERROR;   /* "Protocol Error" */

/* The standard reason phrase of a status code, "" when the code has none. */
const char *sipub_reason_phrase(int code);
/* Iterates the phrase table: returns the code at index i (and its phrase), or 0 past the end. */
int sipub_reason_phrase_at(size_t i, const char **phrase);

/* The request-digest (lower-case hex) a client answering one digest challenge computes
 * (RFC 2617, RFC 7616): for checking against published vectors. algorithm NULL: MD5; qop NULL
 * (none), "auth" or "auth-int"; ha1 instead of password. */
typedef struct sipub_digest_input {
  const char *algorithm, *qop, *realm, *nonce, *cnonce, *user, *password, *ha1, *method, *uri;
  const char *body;
  size_t body_len;
  uint32_t nc;
} sipub_digest_input;
/* 0, or SIPUB_EINVAL for an unsupported algorithm or qop or a missing field. */
int sipub_digest_response(const sipub_digest_input *in, char out[129]);

/* One-time libosip2 parser initialisation; safe to call repeatedly. */
void sipub_global_init(void);

/* ---- input rules: one set, for the core, its bindings and their callers ------------------ */

/* Defaults a binding shows its users (the core takes NULL content type as the first). */
#define SIPUB_DEFAULT_CONTENT_TYPE "text/plain"
#define SIPUB_DEFAULT_EXPIRES 3600
#define SIPUB_DEFAULT_UNPUBLISH_ON_CLOSE 1
#define SIPUB_MAX_EXTRA_HEADERS 64

/* What is wrong with an input; 0 (SIPUB_BAD_NONE) when nothing is. */
typedef enum sipub_problem {
  SIPUB_BAD_NONE = 0,
  SIPUB_BAD_EMPTY,        /* empty (or missing) */
  SIPUB_BAD_CONTROL,      /* a control character: CR, LF, NUL... (tab is allowed) */
  SIPUB_BAD_URI,          /* not a URI libosip2 reads, and writes back with the same meaning */
  SIPUB_BAD_SCHEME,       /* a URI of another scheme than sip: or sips: */
  SIPUB_BAD_PORT,         /* a URI port outside 1..65535 */
  SIPUB_BAD_ESCAPE,       /* %00 in a URI: libosip2 would cut the URI there */
  SIPUB_BAD_TOKEN,        /* not an RFC 3261 token (event package, entity-tag) */
  SIPUB_BAD_MEDIA_TYPE,   /* not type/subtype[;name=value...] */
  SIPUB_BAD_HEADER_LINE,  /* an extra header that is not "Name: value" */
  SIPUB_BAD_OWN_HEADER,   /* an extra header the library writes itself (Via, CSeq...) */
  SIPUB_BAD_HOST,         /* not a host name, IPv4 address or [IPv6] reference */
  SIPUB_BAD_ADDRESS,      /* not an IPv4 or IPv6 address */
  SIPUB_BAD_RANGE,        /* a number out of range (expires < 1) */
  SIPUB_BAD_TOO_MANY,     /* more than SIPUB_MAX_EXTRA_HEADERS extra headers */
  SIPUB_BAD_COUNT
} sipub_problem;

/* Default English text of a problem ("must not be empty"...): "" for SIPUB_BAD_NONE. */
const char *sipub_problem_text(int problem);

/* Each returns 0 or the problem of s (len bytes: a NUL inside is a control character). */
int sipub_check_uri(const char *s, size_t len);          /* a sip: or sips: URI */
int sipub_check_token(const char *s, size_t len);        /* RFC 3261 token (event package) */
int sipub_check_media_type(const char *s, size_t len);   /* a Content-Type value */
int sipub_check_header_value(const char *s, size_t len); /* any header value */
/* An extra header "Name: value": the name a token, not one the library writes (Via, From,
 * To, Call-ID, CSeq, Max-Forwards, Event, Expires, SIP-If-Match, Content-Type,
 * Content-Length, Authorization, Proxy-Authorization and the compact forms). */
int sipub_check_header_line(const char *line, size_t len);
int sipub_check_etag(const char *s, size_t len);         /* RFC 3903 entity-tag: a token */
/* RFC 3261 host: hostname / IPv4address / "[" IPv6address "]" (a Via sent-by). */
int sipub_check_host(const char *s, size_t len);
int sipub_check_address(const char *s, size_t len);      /* an IPv4 or IPv6 literal */

/* The parts of a URI (what a caller needs of an outbound proxy's or its own URI). */
typedef struct sipub_uri_parts {
  const char *scheme, *user; /* user NULL when the URI has none (escapes decoded) */
  const char *host;          /* an IPv6 reference without its brackets */
  int port;                  /* 0 when the URI names none */
} sipub_uri_parts;
/* sipub_check_uri's rules; when s passes, its parts, copied into buf (size >= len + 3). */
int sipub_uri_split(const char *s, size_t len, sipub_uri_parts *out, char *buf, size_t size);

/* Which input a problem is in. */
typedef enum sipub_field {
  SIPUB_FIELD_NONE = 0,
  SIPUB_FIELD_TARGET, SIPUB_FIELD_EVENT, SIPUB_FIELD_CONTENT_TYPE, SIPUB_FIELD_EXPIRES,
  SIPUB_FIELD_EXTRA_HEADER, SIPUB_FIELD_ETAG,   /* sipub_pub_config */
  SIPUB_FIELD_AOR, SIPUB_FIELD_PROXY, SIPUB_FIELD_VIA_HOST, SIPUB_FIELD_USER_AGENT,
  SIPUB_FIELD_CREDENTIALS                       /* sipub_config */
} sipub_field;

typedef struct sipub_input_error {
  int field;   /* sipub_field */
  int index;   /* SIPUB_FIELD_EXTRA_HEADER: which line, from 0 (-1: too many lines);
                  SIPUB_FIELD_CREDENTIALS: 0 auth_user, 1 password, 2-4 ha1_*, 5 realm; else -1 */
  int problem; /* sipub_problem */
} sipub_input_error;

/* ---- user agent --------------------------------------------------------------------- */

/* NULL on bad input (see sipub_config_check) or when out of memory. */
sipub_ua *sipub_ua_new(const sipub_config *cfg, const sipub_io *io, uint64_t now_ms);
/* 0 when sipub_ua_new() takes cfg's strings (aor a sip:/sips: URI; proxy_host and via_host
 * host names or IP addresses; user agent and credentials without control characters); else
 * SIPUB_EINVAL with *bad (when not NULL) saying which and what. */
int sipub_config_check(const sipub_config *cfg, sipub_input_error *bad);
/* Frees everything without sending anything. */
void sipub_ua_free(sipub_ua *ua);
/* True when the UA has a trace callback: a driver may then name the source of each datagram
 * it hands to sipub_ua_receive() (which costs it the formatting of an address). */
int sipub_ua_tracing(const sipub_ua *ua);

/* The current time in ms (any monotonic origin). Call before user calls so that their
 * timers start from the right instant; receive() and tick() take the time themselves. */
void sipub_ua_set_time(sipub_ua *ua, uint64_t now_ms);
uint64_t sipub_ua_now(const sipub_ua *ua);

/* Bytes arrived from the network over the flow from (its transport, and the peer's host and
 * port as the driver names it). from NULL or UDP: data is one datagram. TCP/TLS: data is the
 * next piece of a byte stream; the core frames messages across reads (one buffer per flow)
 * and skips the CRLF keep-alives of RFC 5626 between them. Malformed or unmatched messages
 * are dropped (the trace, when set, says which and why; it is also where from's host and
 * port show: a UDP datagram's source may be given, or from left NULL). Returns 0, or a negative value when the stream cannot be framed any
 * more (a bad or missing Content-Length, a message over SIPUB_FRAME_MAX): the flow's buffer
 * is dropped, its transactions failed, and the driver must close the connection. */
int sipub_ua_receive(sipub_ua *ua, uint64_t now_ms, const sipub_dest *from, const char *data,
                     size_t len);
/* Fires every timer due at now_ms, in deadline order. */
void sipub_ua_tick(sipub_ua *ua, uint64_t now_ms);
/* The earliest deadline (absolute ms), or UINT64_MAX when no timer is armed. */
uint64_t sipub_ua_next_deadline(const sipub_ua *ua);
/* The flow to flow (as send() was given it, or as receive() named it) failed: every
 * transaction in flight over it ends with "Connection Error", the event's detail carrying
 * reason (copied; may be NULL), a stream buffer of that flow is dropped, and an address
 * learnt from the resolver for it is forgotten (the next request asks again). A driver
 * reports a stream connection that closed, even cleanly, the same way: a message cut by the
 * close is dropped, and no response can come back over it. */
void sipub_ua_flow_failed(sipub_ua *ua, const sipub_dest *flow, const char *reason);
/* sipub_ua_flow_failed() for the UDP flow to host:port, without a reason. */
void sipub_ua_dest_failed(sipub_ua *ua, const char *host, int port);
/* The answer to the query query_id of io.resolve(): n records (copied; for an ADDR query,
 * records of type ADDR, A or AAAA, the first being used), or error (a reason in words,
 * copied) when the name did not resolve, which fails the requests waiting for it. An answer
 * is kept for its smallest TTL, even when the requests that asked are gone; an error is not
 * kept. An unknown query_id is ignored. */
void sipub_ua_resolved(sipub_ua *ua, uint64_t now_ms, uint32_t query_id, const sipub_rr *answers,
                       size_t n, const char *error);

/* Pops the next event; returns 0 when there is none. The event, and its response, stay
 * valid until the next call. */
int sipub_ua_poll(sipub_ua *ua, sipub_event *ev);

/* Marks the UA closing: new publications are refused. Publications are closed by the
 * caller (each with its own policy). */
void sipub_ua_close(sipub_ua *ua);
/* True while a transaction is in flight or a request is queued. */
int sipub_ua_busy(const sipub_ua *ua);
size_t sipub_ua_count(const sipub_ua *ua); /* live publications */
size_t sipub_ua_pending(const sipub_ua *ua); /* events waiting for sipub_ua_poll() */

/* ---- publications ------------------------------------------------------------------- */

typedef struct sipub_pub_config {
  const char *target;       /* Request-URI and To */
  const char *event;        /* Event package */
  const char *content_type; /* NULL: SIPUB_DEFAULT_CONTENT_TYPE */
  int expires;              /* > 0 (SIPUB_DEFAULT_EXPIRES is the usual value) */
  const char *const *extra_headers; /* "Name: value" lines, NULL-terminated, may be NULL */
  int unpublish_on_close;
  const char *etag;         /* an entity-tag persisted earlier, to resume with; or NULL */
} sipub_pub_config;

/* Creates a publication (nothing is sent). NULL with *err set (SIPUB_EINVAL on bad input,
 * SIPUB_ECLOSED, SIPUB_ENOMEM); on bad input *bad (when not NULL) says which field, which
 * extra header and what is wrong. The target is parsed once, here; what routing needs of it
 * (host, port, transport) is kept. */
sipub_pub *sipub_pub_new(sipub_ua *ua, const sipub_pub_config *cfg, int *err,
                         sipub_input_error *bad);

void sipub_pub_set_user(sipub_pub *pub, void *user);
void *sipub_pub_user(const sipub_pub *pub);

/* body != NULL: initial or modify; body == NULL: refresh. */
int sipub_pub_publish(sipub_pub *pub, const char *body, size_t len);
/* For a publication created with an entity-tag: keeps body as the state and refreshes the
 * server's publication; a 412 falls back to an initial PUBLISH with body. */
int sipub_pub_resume(sipub_pub *pub, const char *body, size_t len);
int sipub_pub_unpublish(sipub_pub *pub);
/* Unpublishes (unpublish_on_close) or forgets the entity-tag locally; idempotent. */
int sipub_pub_close(sipub_pub *pub);
/* The caller drops its reference; the core frees the publication once nothing is pending. */
void sipub_pub_release(sipub_pub *pub);

const char *sipub_pub_etag(const sipub_pub *pub); /* NULL when none */
int sipub_pub_closed(const sipub_pub *pub);
/* True while a request is in flight or queued, or the publication is published (refreshing). */
int sipub_pub_active(const sipub_pub *pub);

#ifdef __cplusplus
}
#endif
#endif
