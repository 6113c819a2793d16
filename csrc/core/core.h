/* core.h — the core's internal types (UA, publication, transaction, timers, events) and the
 * functions its files share. Internal to the core: never included by drivers or bindings. */
#ifndef SIPUB_CORE_H
#define SIPUB_CORE_H

#include "sipub.h"
#include "msg.h"

#include <stddef.h>
#include <stdint.h>

#define MAX_423_RETRIES 2
#define MIN_RETRY_MS 50 /* below this, a retry could not be answered before the state ends */
/* Transactions a UA keeps in flight at once; later ones wait their turn (txn.c). Sending
 * 100 000 removes at once overflowed socket buffers and retransmitted them in lockstep. */
#define TXN_WINDOW 256

/* ---- timers: a binary min-heap of deadlines embedded in their owners (heap.c) ---------- */

typedef struct timer timer;
typedef void (*timer_fn)(sipub_ua *ua, timer *t);
struct timer {
  uint64_t at;
  size_t idx; /* position in the heap + 1; 0 when not armed */
  timer_fn fire;
};

/* Each entry carries its deadline: sifting compares contiguous keys instead of chasing a
 * pointer per comparison (100 000 armed timers make a heap about 17 levels deep). */
typedef struct heap_entry {
  uint64_t at;
  timer *t;
} heap_entry;

typedef struct heap {
  heap_entry *v;
  size_t n, cap;
} heap;

void timer_stop(heap *h, timer *t);
int timer_start(heap *h, timer *t, uint64_t at);

/* ---- data ---------------------------------------------------------------------------- */

typedef enum { OP_INITIAL, OP_REFRESH, OP_MODIFY, OP_REMOVE } op_kind;
typedef enum { Q_NONE, Q_PUBLISH, Q_REFRESH, Q_REMOVE } queued_kind;
typedef enum { TX_WAITING, TX_TRYING, TX_PROCEEDING, TX_COMPLETED } tx_state;

typedef struct txn txn;
typedef struct response_ref response_ref;

/* What a transaction reports to its owner (the publication policy, publish.c). */
typedef struct txn_ops {
  /* A provisional response, the first of each status code. */
  void (*provisional)(void *owner, response_ref *resp);
  /* The end: a final response (mr, resp), or none (mr NULL; cause: a timeout or a transport
   * error, detail: the transport's reason in words, or NULL; borrowed for the call). The
   * transaction is gone or Completed when this runs. */
  void (*final)(void *owner, const msg_response *mr, response_ref *resp, const char *cause,
                const char *detail);
} txn_ops;

/* A request to send: where (host borrowed: it must outlive the transaction's owner), what,
 * and the CSeq number and Call-ID its responses must carry (call_id borrowed likewise). */
typedef struct txn_request {
  sipub_dest dest;
  const char *call_id;
  uint32_t cseq;
  char *data; /* malloc'd; the transaction owns it from txn_start() on */
  size_t len;
} txn_request;

struct txn {
  timer tm;          /* next of Timer E / Timer F, or Timer K once completed */
  uint64_t branch;
  txn *hnext;        /* hash chain */
  txn *aprev, *anext; /* the UA's active (Trying, Proceeding) or window-waiting transactions */
  const txn_ops *ops;
  void *owner;       /* NULL once Completed */
  sipub_dest dest;   /* the next hop as routed: host may be a name */
  sipub_dest flow;   /* where the bytes go: dest, or the address the resolver gave for it
                      * (flow.host then points at addr); host NULL while waiting for it */
  char addr[64];
  struct rname *wait; /* the name whose answer it waits for (resolve.c), or NULL */
  txn *wprev, *wnext; /* the other transactions waiting for it */
  const char *call_id;
  int reliable;      /* follows dest.tp: no Timer E, Timer K = 0 */
  tx_state state;
  uint32_t cseq;
  int last_1xx;
  uint64_t answers_at_start; /* ua->answers then: equal at Timer F, nothing was answered */
  uint64_t started;  /* first transmission: the server's interval starts no earlier */
  uint64_t e_at, f_at;
  unsigned e_interval;
  unsigned nsent;    /* transmissions so far, counted only when traced (trace.c); it fills
                      * the hole before req: the struct keeps its size */
  char *req;
  size_t req_len;
};

/* What a finished request was: its operation, the Expires it carried, its first sending. */
typedef struct sent_info {
  op_kind op;
  int expires;
  uint64_t started; /* when the request was first sent */
} sent_info;

struct sipub_pub {
  sipub_ua *ua;
  sipub_pub *prev, *next; /* the UA's list */
  void *user;
  timer refresh;
  char *target, *event, *content_type, *call_id, *from_tag;
  char **extra_names, **extra_values;
  size_t n_extra;
  char *dest_host;  /* the next hop: outbound proxy or the target's host */
  int dest_port;
  sipub_transport dest_tp;
  int expires_opt;  /* the configured expires */
  int req_expires;  /* what requests ask for: expires_opt, raised by 423 */
  uint32_t cseq;
  char *etag;
  msg_template tpl; /* its requests' fixed text (tpl.text NULL: built by libosip2 each time) */
  int tpl_tried;
  int uri_verbatim; /* libosip2 writes the target as given */
  char *body;       /* the last body given */
  size_t body_len;
  txn *tx;          /* in flight */
  sent_info inflight; /* what tx carries */
  queued_kind queued;
  int closed, unpublish_on_close, released, listed;
  int recovering;   /* an initial PUBLISH sent after a 412 is in flight or waits to be retried */
  uint64_t recover_until; /* a recovery is retried until then: one requested interval */
  int loss_reported;       /* the state expired under the request in flight: told already */
  int retries_423;
  uint64_t valid_until;    /* when the state the server granted expires (0: none) */
  unsigned backoff_ms;     /* the last back-off after a transient refresh failure */
  int retry_pending;       /* the refresh timer is a retry of retry_op */
  op_kind retry_op;
  int auth_rounds[2];      /* challenges answered for the request in flight: 401, 407 */
  int auth_stale_used[2];  /* the extra retry a stale=true challenge allows */
  unsigned pending_events; /* queued events */
  int held;                /* its event is the one poll handed out last */
};

struct response_ref {
  sipub_response r;
  int refs;
};

typedef struct queued_event {
  sipub_event_kind kind;
  sipub_pub *pub;
  response_ref *resp;
  int status;
  const char *cause;
  char *detail; /* owned */
} queued_event;

/* The last challenge answered, reused pre-emptively with an incremented nc for later
 * requests to the same next hop, so that a steady-state refresh costs one round trip. */
typedef struct auth_slot {
  int valid;
  dg_challenge ch;
  uint32_t nc;
  char *dest_host;  /* the next hop: outbound proxy or the target's host */
  int dest_port;
  sipub_transport dest_tp;
} auth_slot;

struct sipub_ua {
  sipub_io io;
  dg_credentials creds;
  char *cred_strings[6]; /* owned copies behind creds, wiped when freed */
  auth_slot auth[2];     /* WWW-Authenticate, Proxy-Authenticate */
  char *aor, *proxy_host, *via_host, *user_agent;
  int proxy_port, via_port;
  sipub_transport transport; /* for URIs that do not name one */
  unsigned t1, t2, t4;
  uint64_t now, rng;
  int closing;
  int tpl_shape;         /* request templates: 0 unchecked, 1 agree with libosip2, -1 not */
  msg_skeleton skel;     /* the skeleton of templates without extra headers, for: */
  char *skel_event, *skel_ctype;
  sipub_transport skel_tp;
  heap timers;
  txn **buckets;         /* transactions by branch */
  txn *active;           /* those Trying or Proceeding */
  txn *wait_head, *wait_tail; /* started beyond the window: sent in this order */
  timer pump;            /* due when a slot of the window is free for a waiting one */
  uint64_t answers;      /* responses that matched a transaction, ever */
  size_t nbuckets, ntx, nactive_tx, nwaiting_tx;
  sipub_pub *pubs;
  size_t npubs;
  queued_event *evq;
  size_t evq_head, evq_len, evq_cap;
  queued_event current; /* the event last handed out by poll */
  struct stream_buf *streams; /* partial messages of stream flows (flow.c) */
  struct rname *names;   /* names asked of io.resolve and their answers (resolve.c) */
  void (*trace)(void *ud, const sipub_trace *t); /* the message trace, or NULL (trace.c) */
  void *trace_ud;
  uint32_t last_query;
};

/* ua.c */
uint64_t rng_next(sipub_ua *ua);
char *random_token(sipub_ua *ua);
void response_unref(response_ref *r);
void push_event(sipub_ua *ua, sipub_pub *pub, sipub_event_kind kind, response_ref *resp,
                const char *cause);
/* push_event with a transport detail (copied; NULL: none). */
void push_event_detail(sipub_ua *ua, sipub_pub *pub, sipub_event_kind kind, response_ref *resp,
                       const char *cause, const char *detail);

/* pub.c */
void pub_free(sipub_pub *p);
void pub_maybe_free(sipub_pub *p);

/* txn.c */
int txn_table_init(sipub_ua *ua);
void txn_table_free(sipub_ua *ua);
/* A transaction with a fresh branch (to write in the request), not started; NULL: no memory. */
txn *txn_new(sipub_ua *ua);
void txn_discard(sipub_ua *ua, txn *t); /* one never started */
/* Sends rq (or waits for the resolver's answer for its host first) and arms Timer E/F, or
 * queues it behind the window (started when a slot frees; a failure is then reported through
 * ops). -1 when an immediate first send was refused or the name cannot be asked: t is gone,
 * ops are not called (the caller reports it) and *detail is a malloc'd reason or NULL. */
int txn_start(sipub_ua *ua, txn *t, const txn_request *rq, const txn_ops *ops, void *owner,
              char **detail);
/* The owner goes away: t ends without a report. */
void txn_abandon(sipub_ua *ua, txn *t);
/* Every active transaction whose bytes go over flow ends with cause and detail. */
void txn_flow_failed(sipub_ua *ua, const sipub_dest *flow, const char *cause, const char *detail);
/* The resolver answered for t (t->flow set): its first transmission. */
void txn_send_first(sipub_ua *ua, txn *t);
/* t ends without a response: the owner hears cause and detail. */
void txn_fail(sipub_ua *ua, txn *t, const char *cause, const char *detail);
/* One framed response from the network, over the flow from (NULL: not named). */
void txn_receive(sipub_ua *ua, const sipub_dest *from, const char *data, size_t len);
/* Starts waiting transactions while the window has room (at a safe point: no owner's
 * callback is running). */
void txn_pump(sipub_ua *ua);

/* publish.c */
void pub_send(sipub_pub *p, op_kind op);
void pub_forget(sipub_pub *p);
void pub_refresh_fire(sipub_ua *ua, timer *tm);
void pub_final(sipub_pub *p, const sent_info *si, const msg_response *mr, response_ref *resp,
               const char *cause, const char *detail);

/* auth.c */
int auth_answer_challenge(sipub_pub *p, const sent_info *si, const msg_response *mr);
void auth_add_headers(sipub_pub *p, msg_request *r, char *values[2]);

/* check.c */
/* sipub_check_uri's rules on s (NUL-terminated at len); on success the parse is kept in *out
 * (when not NULL, for the caller to free) and *verbatim (when not NULL) says whether
 * libosip2 writes s back unchanged. */
int check_uri_parse(const char *s, size_t len, struct osip_uri **out, int *verbatim);
/* All of sipub_pub_new's rules: 0 with the target's parse in *target, or SIPUB_EINVAL. */
int check_pub_config(const sipub_pub_config *cfg, struct osip_uri **target, int *verbatim,
                     sipub_input_error *bad);
/* Copies extra header lines that passed check_pub_config into p, as names and values. */
int check_split_extra(sipub_pub *p, const char *const *lines);

/* route.c */
/* Where p's requests go, from its target's parse: the outbound proxy, else its host and port. */
int route_set_dest(sipub_pub *p, struct osip_uri *target);

/* trace.c — each is called only when ua->trace is set: the caller tests it, so that a UA
 * without a trace pays one NULL check per message. */
/* Why txn_receive did not match a response (0: it did). */
typedef enum {
  MATCH_OK = 0,
  MATCH_UNREAD,     /* the cheap read found no branch of ours (or no response at all) */
  MATCH_UNPARSED,   /* the full parse refused it */
  MATCH_NO_TXN,     /* no transaction has its branch */
  MATCH_NOT_SENT,   /* the transaction waits behind the window: nothing sent yet */
  MATCH_COMPLETED,  /* a final response again */
  MATCH_CSEQ,       /* CSeq number or method differs */
  MATCH_CALL_ID     /* Call-ID differs */
} match_result;
/* t's request was handed to io.send(), which returned rc (non-zero: refused). */
void trace_sent(sipub_ua *ua, txn *t, int rc);
/* A response matched t. */
void trace_received(sipub_ua *ua, const txn *t, const sipub_dest *from, const char *data,
                    size_t len);
/* A response that matched nothing (why; branch: its top Via's branch when read; t: the
 * transaction of that branch, or NULL). */
void trace_unmatched(sipub_ua *ua, const sipub_dest *from, const char *data, size_t len,
                     match_result why, uint64_t branch, const txn *t);
/* Bytes of a stream flow that cannot be framed (note: why, in words). */
void trace_dropped(sipub_ua *ua, const sipub_dest *from, const char *data, size_t len, int drop,
                   const char *note);

/* flow.c */
void flow_free_all(sipub_ua *ua);

/* resolve.c */
/* Where t's bytes go: 1 with t->flow set (a literal host, no resolver, or a cached answer);
 * 0 when t waits for an answer (asked now or earlier); -1 when the name cannot be asked
 * (*detail: a malloc'd reason). */
int resolve_route(sipub_ua *ua, txn *t, char **detail);
/* t ends while it waits for an answer. */
void resolve_forget_txn(txn *t);
/* Addresses learnt for a failed flow are forgotten. */
void resolve_flow_failed(sipub_ua *ua, const sipub_dest *flow);
void resolve_free_all(sipub_ua *ua);

#endif
