/* core.c — the protocol core: RFC 3903 publication state machine on top of RFC 3261
 * non-INVITE client transactions, with a timer heap and an event queue; no I/O of its own. */
#include "sipub.h"
#include "message.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <osipparser2/osip_parser.h>

#define MAX_423_RETRIES 2
#define MIN_RETRY_MS 50 /* below this, a retry could not be answered before the state ends */

/* ---- timers: a binary min-heap of deadlines embedded in their owners ------------------- */

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

static void heap_place(heap *h, size_t i, heap_entry e)
{
  h->v[i] = e;
  e.t->idx = i + 1;
}

static void heap_up(heap *h, size_t i)
{
  heap_entry e = h->v[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (h->v[p].at <= e.at) break;
    heap_place(h, i, h->v[p]);
    i = p;
  }
  heap_place(h, i, e);
}

static void heap_down(heap *h, size_t i)
{
  heap_entry e = h->v[i];
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = l;
    if (l >= h->n) break;
    if (r < h->n && h->v[r].at < h->v[l].at) m = r;
    if (h->v[m].at >= e.at) break;
    heap_place(h, i, h->v[m]);
    i = m;
  }
  heap_place(h, i, e);
}

static void timer_stop(heap *h, timer *t)
{
  if (!t->idx) return;
  size_t i = t->idx - 1;
  t->idx = 0;
  h->n--;
  if (i == h->n) return;
  heap_place(h, i, h->v[h->n]);
  if (i > 0 && h->v[(i - 1) / 2].at > h->v[i].at) heap_up(h, i);
  else heap_down(h, i);
}

static int timer_start(heap *h, timer *t, uint64_t at)
{
  t->at = at;
  if (t->idx) { /* re-armed: move it from where it is */
    size_t i = t->idx - 1;
    h->v[i].at = at;
    if (i > 0 && h->v[(i - 1) / 2].at > at) heap_up(h, i);
    else heap_down(h, i);
    return 0;
  }
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 64;
    heap_entry *v = realloc(h->v, cap * sizeof *v);
    if (!v) return -1;
    h->v = v;
    h->cap = cap;
  }
  h->v[h->n].at = at;
  h->v[h->n].t = t;
  h->n++;
  heap_up(h, h->n - 1);
  return 0;
}

/* ---- data ---------------------------------------------------------------------------- */

typedef enum { OP_INITIAL, OP_REFRESH, OP_MODIFY, OP_REMOVE } op_kind;
typedef enum { Q_NONE, Q_PUBLISH, Q_REFRESH, Q_REMOVE } queued_kind;
typedef enum { TX_TRYING, TX_PROCEEDING, TX_COMPLETED } tx_state;

typedef struct txn txn;
struct txn {
  timer tm;          /* next of Timer E / Timer F, or Timer K once completed */
  uint64_t branch;
  txn *hnext;        /* hash chain */
  sipub_pub *pub;    /* NULL once completed */
  tx_state state;
  op_kind op;
  uint32_t cseq;
  int expires;       /* the Expires it carried */
  int last_1xx;
  uint64_t started;   /* first transmission: the server's interval starts no earlier */
  uint64_t e_at, f_at;
  unsigned e_interval;
  char *req;
  size_t req_len;
};

struct sipub_pub {
  sipub_ua *ua;
  sipub_pub *prev, *next; /* the UA's list */
  void *user;
  timer refresh;
  char *target, *event, *content_type, *call_id, *from_tag;
  char **extra_names, **extra_values;
  size_t n_extra;
  char *dest_host;
  int dest_port;
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
  queued_kind queued;
  int closed, unpublish_on_close, released, listed;
  int recovering;   /* an initial PUBLISH sent after a 412 is in flight */
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

typedef struct response_ref {
  sipub_response r;
  int refs;
} response_ref;

typedef struct queued_event {
  sipub_event_kind kind;
  sipub_pub *pub;
  response_ref *resp;
  int status;
  const char *cause;
} queued_event;

/* The last challenge answered, reused pre-emptively with an incremented nc for later
 * requests to the same next hop, so that a steady-state refresh costs one round trip. */
typedef struct auth_slot {
  int valid;
  dg_challenge ch;
  uint32_t nc;
  char *dest_host;
  int dest_port;
} auth_slot;

struct sipub_ua {
  sipub_io io;
  dg_credentials creds;
  char *cred_strings[6]; /* owned copies behind creds, wiped when freed */
  auth_slot auth[2];     /* WWW-Authenticate, Proxy-Authenticate */
  char *aor, *proxy_host, *via_host, *user_agent;
  int proxy_port, via_port, reliable;
  unsigned t1, t2, t4;
  uint64_t now, rng;
  int closing;
  int tpl_shape;         /* request templates: 0 unchecked, 1 agree with libosip2, -1 not */
  msg_skeleton skel;     /* the skeleton of templates without extra headers, for: */
  char *skel_event, *skel_ctype;
  heap timers;
  txn **buckets;
  size_t nbuckets, ntx, nactive_tx;
  sipub_pub *pubs;
  size_t npubs;
  queued_event *evq;
  size_t evq_head, evq_len, evq_cap;
  queued_event current; /* the event last handed out by poll */
};

/* ---- helpers ------------------------------------------------------------------------- */

static char *xstrdup(const char *s)
{
  return s ? strdup(s) : NULL;
}

static uint64_t rng_next(sipub_ua *ua)
{
  /* splitmix64: cheap and well distributed; branches only need to be unique. */
  uint64_t z = (ua->rng += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static char *random_token(sipub_ua *ua)
{
  char *s = malloc(17);
  if (!s) return NULL;
  msg_hex64(s, rng_next(ua));
  s[16] = '\0';
  return s;
}

static void response_unref(response_ref *r)
{
  if (r && --r->refs == 0) {
    free((char *)r->r.data);
    free((char *)r->r.reason);
    free(r);
  }
}

static void push_event(sipub_ua *ua, sipub_pub *pub, sipub_event_kind kind, response_ref *resp,
                       const char *cause)
{
  if (pub->released) return; /* nobody listens any more */
  if (ua->evq_len == ua->evq_cap) {
    size_t cap = ua->evq_cap ? ua->evq_cap * 2 : 16;
    queued_event *q = malloc(cap * sizeof *q);
    if (!q) return;
    for (size_t i = 0; i < ua->evq_len; i++) q[i] = ua->evq[(ua->evq_head + i) % ua->evq_cap];
    free(ua->evq);
    ua->evq = q;
    ua->evq_cap = cap;
    ua->evq_head = 0;
  }
  queued_event *e = &ua->evq[(ua->evq_head + ua->evq_len++) % ua->evq_cap];
  e->kind = kind;
  e->pub = pub;
  e->resp = resp;
  e->status = resp ? resp->r.status : 0;
  e->cause = cause;
  if (resp) resp->refs++;
  pub->pending_events++;
}

static void pub_free(sipub_pub *p);

static void pub_maybe_free(sipub_pub *p)
{
  if (p->released && !p->tx && p->queued == Q_NONE && !p->pending_events && !p->held &&
      !p->refresh.idx)
    pub_free(p);
}

/* ---- transactions -------------------------------------------------------------------- */

static size_t bucket_of(const sipub_ua *ua, uint64_t branch)
{
  return (size_t)(branch ^ (branch >> 32)) & (ua->nbuckets - 1);
}

static int tx_table_grow(sipub_ua *ua)
{
  size_t n = ua->nbuckets ? ua->nbuckets * 2 : 256;
  txn **b = calloc(n, sizeof *b);
  if (!b) return -1;
  for (size_t i = 0; i < ua->nbuckets; i++) {
    txn *t = ua->buckets[i];
    while (t) {
      txn *next = t->hnext;
      size_t k = (size_t)(t->branch ^ (t->branch >> 32)) & (n - 1);
      t->hnext = b[k];
      b[k] = t;
      t = next;
    }
  }
  free(ua->buckets);
  ua->buckets = b;
  ua->nbuckets = n;
  return 0;
}

static txn *tx_find(const sipub_ua *ua, uint64_t branch)
{
  if (!ua->nbuckets) return NULL;
  for (txn *t = ua->buckets[bucket_of(ua, branch)]; t; t = t->hnext)
    if (t->branch == branch) return t;
  return NULL;
}

static void tx_destroy(sipub_ua *ua, txn *t)
{
  txn **pp = &ua->buckets[bucket_of(ua, t->branch)];
  while (*pp && *pp != t) pp = &(*pp)->hnext;
  if (*pp) *pp = t->hnext;
  timer_stop(&ua->timers, &t->tm);
  if (t->state != TX_COMPLETED) ua->nactive_tx--;
  ua->ntx--;
  free(t->req);
  free(t);
}

static void tx_fire(sipub_ua *ua, timer *tm);
typedef struct sent_info {
  op_kind op;
  int expires;
  uint64_t started; /* when the request was first sent */
} sent_info;
static int pub_answer_challenge(sipub_pub *p, const sent_info *si, const msg_response *mr);
static int pub_retry_transient(sipub_pub *p, const sent_info *si, const msg_response *mr,
                               response_ref *resp, const char *cause);
static void pub_final(sipub_pub *p, const sent_info *si, const msg_response *mr,
                      response_ref *resp, const char *cause);

/* Moves t to Completed (Timer K absorbs retransmitted finals) or destroys it. */
static void tx_complete(sipub_ua *ua, txn *t)
{
  if (ua->reliable) { /* Timer K = 0 */
    tx_destroy(ua, t);
    return;
  }
  ua->nactive_tx--;
  t->state = TX_COMPLETED;
  t->pub = NULL;
  free(t->req);
  t->req = NULL;
  timer_start(&ua->timers, &t->tm, ua->now + ua->t4);
}

/* The transaction failed without a response (timeout, transport error). */
static void tx_fail(sipub_ua *ua, txn *t, const char *cause)
{
  sipub_pub *p = t->pub;
  sent_info si = { t->op, t->expires, t->started };
  p->tx = NULL;
  tx_destroy(ua, t);
  pub_final(p, &si, NULL, NULL, cause);
}

static int tx_send(sipub_ua *ua, txn *t)
{
  sipub_dest d = { t->pub->dest_host, t->pub->dest_port };
  return ua->io.send(ua->io.ud, &d, t->req, t->req_len);
}

static void tx_arm(sipub_ua *ua, txn *t)
{
  uint64_t at = t->f_at;
  if (!ua->reliable && t->e_at < at) at = t->e_at;
  timer_start(&ua->timers, &t->tm, at);
}

static void tx_fire(sipub_ua *ua, timer *tm)
{
  txn *t = (txn *)tm; /* the timer is the first member */
  if (t->state == TX_COMPLETED) { /* Timer K */
    tx_destroy(ua, t);
    return;
  }
  sipub_pub *p = t->pub;
  if (ua->now >= t->f_at) { /* Timer F */
    tx_fail(ua, t, SIPUB_CAUSE_REQUEST_TIMEOUT);
    pub_maybe_free(p);
    return;
  }
  /* Timer E: retransmit, doubling up to T2 in Trying, every T2 in Proceeding. */
  if (tx_send(ua, t) != 0) {
    tx_fail(ua, t, SIPUB_CAUSE_CONNECTION_ERROR);
    pub_maybe_free(p);
    return;
  }
  if (t->state == TX_TRYING) {
    t->e_interval = t->e_interval * 2 < ua->t2 ? t->e_interval * 2 : ua->t2;
  } else {
    t->e_interval = ua->t2;
  }
  t->e_at = ua->now + t->e_interval;
  tx_arm(ua, t);
}

/* ---- requests ------------------------------------------------------------------------ */

/* The UA's skeleton for p's event and content type (made from r's fixed fields), rebuilt
 * when another pair comes: publications of one kind cost no libosip2 build each. */
static int ua_skeleton(sipub_ua *ua, const sipub_pub *p, const msg_request *r)
{
  if (ua->skel.t.text && strcmp(ua->skel_event, p->event) == 0 && strcmp(ua->skel_ctype, p->content_type) == 0)
    return 0;
  msg_template_clear(&ua->skel.t);
  free(ua->skel_event);
  free(ua->skel_ctype);
  ua->skel_event = strdup(p->event);
  ua->skel_ctype = strdup(p->content_type);
  if (!ua->skel_event || !ua->skel_ctype || msg_template_skeleton(&ua->skel, r) != 0) {
    msg_template_clear(&ua->skel.t);
    return -1;
  }
  return 0;
}

/* Starts a transaction for op. On a local failure the publication fails at once. */
static void pub_send(sipub_pub *p, op_kind op)
{
  sipub_ua *ua = p->ua;
  txn *t = calloc(1, sizeof *t);
  sent_info si = { op, op == OP_REMOVE ? 0 : p->req_expires, ua->now };
  if (!t || (ua->ntx + 1 > ua->nbuckets && tx_table_grow(ua) != 0)) {
    free(t);
    pub_final(p, &si, NULL, NULL, SIPUB_CAUSE_CONNECTION_ERROR);
    return;
  }
  do t->branch = rng_next(ua); while (tx_find(ua, t->branch));
  t->tm.fire = tx_fire;
  t->op = op;
  t->cseq = ++p->cseq;
  t->expires = op == OP_REMOVE ? 0 : p->req_expires;
  t->pub = p;

  int with_body = op == OP_INITIAL || op == OP_MODIFY;
  msg_request r = {
    .ruri = p->target, .via_host = ua->via_host, .via_port = ua->via_port,
    .reliable = ua->reliable, .branch = t->branch, .from_uri = ua->aor,
    .from_tag = p->from_tag, .to_uri = p->target, .call_id = p->call_id, .cseq = t->cseq,
    .event = p->event, .expires = t->expires, .etag = op == OP_INITIAL ? NULL : p->etag,
    .content_type = p->content_type, .body = with_body ? (p->body ? p->body : "") : NULL,
    .body_len = with_body ? p->body_len : 0, .extra_names = p->extra_names,
    .extra_values = p->extra_values, .n_extra = p->n_extra, .user_agent = ua->user_agent,
  };
  char *auth_values[2] = { NULL, NULL };
  for (int k = 0; k < 2; k++) {
    auth_slot *a = &ua->auth[k];
    if (!a->valid || a->dest_port != p->dest_port || strcmp(a->dest_host, p->dest_host) != 0)
      continue;
    auth_values[k] = dg_authorization(&a->ch, &ua->creds, "PUBLISH", p->target, r.body,
                                      r.body_len, ++a->nc);
    if (auth_values[k]) {
      r.auth_names[r.n_auth] = k ? "Proxy-Authorization" : "Authorization";
      r.auth_values[r.n_auth++] = auth_values[k];
    }
  }
  if (!p->tpl_tried) {
    p->tpl_tried = 1;
    if (!p->n_extra && p->uri_verbatim && ua_skeleton(ua, p, &r) == 0 &&
        msg_template_derive(&ua->skel, p->target, p->from_tag, p->call_id, &p->tpl) == 0)
      goto built_template;
    /* The template's shape is checked against libosip2 once per UA (another libosip2 version
     * may print headers in another order) and for each publication with extra headers. On
     * failure, every request of p is built by libosip2. */
    if (ua->tpl_shape >= 0 && msg_template_init(&p->tpl, &r) == 0 && (!ua->tpl_shape || p->n_extra)) {
      int ok = msg_template_check(&p->tpl, &r) == 0;
      if (!p->n_extra) ua->tpl_shape = ok ? 1 : -1;
      if (!ok) msg_template_clear(&p->tpl);
    }
  built_template:;
  }
  int built = p->tpl.text ? msg_template_fill(&p->tpl, &r, &t->req, &t->req_len)
                          : msg_build_request(&r, &t->req, &t->req_len);
  free(auth_values[0]);
  free(auth_values[1]);
  if (built != 0) {
    free(t);
    pub_final(p, &si, NULL, NULL, SIPUB_CAUSE_CONNECTION_ERROR);
    return;
  }

  size_t b = bucket_of(ua, t->branch);
  t->hnext = ua->buckets[b];
  ua->buckets[b] = t;
  ua->ntx++;
  ua->nactive_tx++;
  p->tx = t;
  timer_stop(&ua->timers, &p->refresh); /* this request refreshes; its 2xx re-arms */

  t->started = ua->now;
  t->e_interval = ua->t1;
  t->e_at = ua->now + ua->t1;
  t->f_at = ua->now + 64 * (uint64_t)ua->t1;
  if (tx_send(ua, t) != 0) {
    tx_fail(ua, t, SIPUB_CAUSE_CONNECTION_ERROR);
    return;
  }
  tx_arm(ua, t);
}

/* Sends what was asked for while a request was in flight, with the newest entity-tag. */
static void pub_run_queue(sipub_pub *p)
{
  queued_kind q = p->queued;
  p->queued = Q_NONE;
  switch (q) {
  case Q_PUBLISH:
    pub_send(p, p->etag ? OP_MODIFY : OP_INITIAL);
    break;
  case Q_REFRESH:
    if (p->etag) pub_send(p, OP_REFRESH);
    break;
  case Q_REMOVE:
    if (p->etag) pub_send(p, OP_REMOVE);
    break;
  case Q_NONE:
    break;
  }
}

static void pub_forget(sipub_pub *p)
{
  free(p->etag);
  p->etag = NULL;
  p->recovering = 0;
  p->retries_423 = 0;
  p->valid_until = 0;
  p->backoff_ms = 0;
  p->retry_pending = 0;
  timer_stop(&p->ua->timers, &p->refresh);
}

static void pub_refresh_fire(sipub_ua *ua, timer *tm)
{
  sipub_pub *p = (sipub_pub *)((char *)tm - offsetof(sipub_pub, refresh));
  (void)ua;
  op_kind op = p->retry_pending ? p->retry_op : OP_REFRESH;
  p->retry_pending = 0;
  if (!p->tx && p->etag && !p->closed) pub_send(p, op);
  pub_maybe_free(p);
}

/* A 401/407: answers the strongest usable challenge by sending the same operation again
 * (new branch, CSeq + 1), once per challenge and once more for stale=true. Returns 1 when
 * it did; the challenge is then not reported (no event). */
static int pub_answer_challenge(sipub_pub *p, const sent_info *si, const msg_response *mr)
{
  sipub_ua *ua = p->ua;
  const dg_challenge *best = NULL;
  for (int i = 0; i < mr->nchallenges; i++) {
    const dg_challenge *c = &mr->challenges[i];
    if (dg_usable(c, &ua->creds) && (!best || dg_strength(c) > dg_strength(best))) best = c;
  }
  if (!best) return 0;
  int k = best->proxy ? 1 : 0;
  if (p->auth_rounds[k] > 0) {
    if (!best->stale || p->auth_stale_used[k]) return 0;
    p->auth_stale_used[k] = 1;
  }
  auth_slot *a = &ua->auth[k];
  dg_challenge copy;
  char *host = strdup(p->dest_host);
  if (!host || dg_copy(&copy, best) != 0) {
    free(host);
    return 0;
  }
  dg_clear(&a->ch);
  free(a->dest_host);
  a->ch = copy;
  a->nc = 0;
  a->dest_host = host;
  a->dest_port = p->dest_port;
  a->valid = 1;
  p->auth_rounds[k]++;
  pub_send(p, si->op == OP_INITIAL || !p->etag ? OP_INITIAL : si->op);
  return 1;
}

/* A refresh or modify that failed for a passing reason (408, 480, 500, 503, 504, Timer F)
 * while the state the server granted is still valid: try again after a back-off (1 s,
 * doubling up to 32 s, shortened to half of the validity left; or the Retry-After the
 * server asked for), reporting `progress`. The publication is given up only when the state
 * would expire before the next try could be answered. */
static int pub_retry_transient(sipub_pub *p, const sent_info *si, const msg_response *mr,
                               response_ref *resp, const char *cause)
{
  sipub_ua *ua = p->ua;
  if ((si->op != OP_REFRESH && si->op != OP_MODIFY) || !p->etag || p->closed ||
      p->queued == Q_REMOVE || !p->valid_until)
    return 0;
  if (mr) {
    int st = mr->status;
    if (st != 408 && st != 480 && st != 500 && st != 503 && st != 504) return 0;
  } else if (cause != SIPUB_CAUSE_REQUEST_TIMEOUT) {
    return 0;
  }
  if (ua->now >= p->valid_until) return 0;
  uint64_t remaining = p->valid_until - ua->now, delay;
  if (mr && mr->retry_after >= 0) {
    delay = (uint64_t)mr->retry_after * 1000;
    if (delay >= remaining) return 0; /* the server asks for longer than the state lasts */
  } else {
    delay = p->backoff_ms ? (uint64_t)p->backoff_ms * 2 : 1000;
    if (delay > 32000) delay = 32000;
    p->backoff_ms = (unsigned)delay;
    /* Short intervals leave little time: fit the tries into what is left of it. */
    if (delay >= remaining) delay = remaining / 2;
    if (delay < MIN_RETRY_MS) return 0;
  }
  p->retry_op = si->op == OP_MODIFY || p->queued == Q_PUBLISH ? OP_MODIFY : OP_REFRESH;
  p->queued = Q_NONE; /* the retry carries the newest body */
  p->retry_pending = 1;
  timer_start(&ua->timers, &p->refresh, ua->now + delay);
  push_event(ua, p, SIPUB_EV_PROGRESS, resp, cause);
  return 1;
}

/* Handles the end of the request in flight: a final response (mr, resp), or a failure
 * without one (t == NULL, cause set). */
static void pub_final(sipub_pub *p, const sent_info *si, const msg_response *mr,
                      response_ref *resp, const char *cause)
{
  sipub_ua *ua = p->ua;
  op_kind op = si->op;
  int sent_expires = si->expires;
  int status = mr ? mr->status : 0;
  const char *phrase = mr ? sipub_reason_phrase(status) : cause;

  p->tx = NULL;
  if (mr && (status == 401 || status == 407) && pub_answer_challenge(p, si, mr)) return;
  memset(p->auth_rounds, 0, sizeof p->auth_rounds);
  memset(p->auth_stale_used, 0, sizeof p->auth_stale_used);
  if (mr && status >= 200 && status < 300) {
    if (op == OP_REMOVE) {
      pub_forget(p);
      push_event(ua, p, SIPUB_EV_UNPUBLISHED, resp, phrase);
      goto next;
    }
    if (mr->expires == 0) { /* the server ended the publication */
      pub_forget(p);
      push_event(ua, p, SIPUB_EV_UNPUBLISHED, resp, phrase);
      goto next;
    }
    if (mr->etag) {
      free(p->etag);
      p->etag = xstrdup(mr->etag);
    } else if (op == OP_INITIAL || !p->etag) {
      /* Nothing could refresh or remove this publication: report it now, not later. */
      pub_forget(p);
      push_event(ua, p, SIPUB_EV_FAILED, resp, SIPUB_CAUSE_PROTOCOL_ERROR);
      push_event(ua, p, SIPUB_EV_UNPUBLISHED, resp, SIPUB_CAUSE_PROTOCOL_ERROR);
      goto next;
    }
    p->recovering = 0;
    p->retries_423 = 0;
    if (p->closed) {
      /* Closed while this was in flight: no `published`; the queued remove follows. */
      if (!p->unpublish_on_close) pub_forget(p);
      goto next;
    }
    /* The granted interval runs from when the server took the request, which is no later
     * than its first transmission: count from there, not from this (perhaps slow) answer. */
    long granted = mr->expires > 0 ? mr->expires : sent_expires;
    p->valid_until = si->started + (uint64_t)granted * 1000;
    p->backoff_ms = 0;
    p->retry_pending = 0;
    timer_start(&ua->timers, &p->refresh, si->started + (uint64_t)granted * 900);
    push_event(ua, p, SIPUB_EV_PUBLISHED, resp, phrase);
    goto next;
  }

  if (mr && status == 412) {
    if (op == OP_REMOVE || p->queued == Q_REMOVE) { /* the state is gone: nothing to remove */
      pub_forget(p);
      p->queued = Q_NONE;
      push_event(ua, p, SIPUB_EV_UNPUBLISHED, resp, phrase);
      goto next;
    }
    if ((op == OP_REFRESH || op == OP_MODIFY) && !p->recovering && p->body && !p->closed) {
      pub_forget(p);
      p->recovering = 1;
      if (p->queued == Q_PUBLISH || p->queued == Q_REFRESH) p->queued = Q_NONE;
      push_event(ua, p, SIPUB_EV_PROGRESS, resp, phrase);
      pub_send(p, OP_INITIAL);
      p->recovering = p->tx != NULL;
      return;
    }
  }

  if (mr && status == 423 && op != OP_REMOVE && mr->min_expires > sent_expires &&
      p->retries_423 < MAX_423_RETRIES && !p->closed) {
    p->retries_423++;
    p->req_expires = (int)mr->min_expires;
    if ((op == OP_MODIFY || op == OP_INITIAL) && p->queued == Q_PUBLISH) p->queued = Q_NONE;
    push_event(ua, p, SIPUB_EV_PROGRESS, resp, phrase);
    if (op == OP_INITIAL || !p->etag) pub_send(p, OP_INITIAL);
    else pub_send(p, op);
    return;
  }

  if (pub_retry_transient(p, si, mr, resp, mr ? phrase : cause)) return;

  /* Every other outcome ends the publication; the last body is kept for a new start. */
  pub_forget(p);
  push_event(ua, p, SIPUB_EV_FAILED, resp, mr ? phrase : cause);
  push_event(ua, p, SIPUB_EV_UNPUBLISHED, resp, mr ? phrase : cause);
  if (p->queued == Q_REMOVE || p->queued == Q_REFRESH) p->queued = Q_NONE;

next:
  pub_run_queue(p);
}

/* ---- receiving ----------------------------------------------------------------------- */

void sipub_ua_receive(sipub_ua *ua, uint64_t now_ms, const char *data, size_t len)
{
  msg_response mr;
  if (now_ms > ua->now) ua->now = now_ms;
  if (msg_parse_response(data, len, &mr) != 0) return;
  txn *t = mr.branch_ours ? tx_find(ua, mr.branch) : NULL;
  if (!t || !mr.cseq_publish || mr.cseq != t->cseq) goto done;
  if (t->state == TX_COMPLETED) goto done; /* a retransmitted final: absorbed */
  sipub_pub *p = t->pub;
  if (strcmp(mr.call_id, p->call_id) != 0) goto done;

  response_ref *resp = calloc(1, sizeof *resp);
  char *copy = malloc(mr.len + 1);
  if (!resp || !copy) { free(resp); free(copy); goto done; }
  memcpy(copy, data, mr.len);
  copy[mr.len] = '\0';
  resp->r.status = mr.status;
  resp->r.reason = mr.reason;
  mr.reason = NULL;
  resp->r.data = copy;
  resp->r.len = mr.len;
  resp->r.body = copy + mr.body_off;
  resp->r.body_len = mr.body_len;
  resp->refs = 1;

  if (mr.status < 200) {
    if (t->state == TX_TRYING) t->state = TX_PROCEEDING;
    if (!ua->reliable && t->e_interval != ua->t2) { /* Proceeding: retransmit every T2 */
      t->e_interval = ua->t2;
      t->e_at = ua->now + ua->t2;
      tx_arm(ua, t);
    }
    if (mr.status != t->last_1xx) {
      t->last_1xx = mr.status;
      push_event(ua, p, SIPUB_EV_PROGRESS, resp, sipub_reason_phrase(mr.status));
    }
  } else {
    sent_info si = { t->op, t->expires, t->started };
    p->tx = NULL;
    tx_complete(ua, t);
    pub_final(p, &si, &mr, resp, NULL);
    pub_maybe_free(p);
  }
  response_unref(resp);
done:
  msg_response_clear(&mr);
}

/* ---- clock --------------------------------------------------------------------------- */

void sipub_ua_set_time(sipub_ua *ua, uint64_t now_ms)
{
  if (now_ms > ua->now) ua->now = now_ms;
}

uint64_t sipub_ua_now(const sipub_ua *ua)
{
  return ua->now;
}

uint64_t sipub_ua_next_deadline(const sipub_ua *ua)
{
  return ua->timers.n ? ua->timers.v[0].at : UINT64_MAX;
}

void sipub_ua_tick(sipub_ua *ua, uint64_t now_ms)
{
  while (ua->timers.n && ua->timers.v[0].at <= now_ms) {
    timer *t = ua->timers.v[0].t;
    if (t->at > ua->now) ua->now = t->at; /* each timer runs at its own instant */
    timer_stop(&ua->timers, t);
    t->fire(ua, t);
  }
  if (now_ms > ua->now) ua->now = now_ms;
}

void sipub_ua_dest_failed(sipub_ua *ua, const char *host, int port)
{
  int again = 1;
  while (again) { /* failing one may start another request: rescan */
    again = 0;
    for (sipub_pub *p = ua->pubs; p; p = p->next) {
      if (p->tx && p->dest_port == port && strcmp(p->dest_host, host) == 0) {
        tx_fail(ua, p->tx, SIPUB_CAUSE_CONNECTION_ERROR);
        pub_maybe_free(p);
        again = 1;
        break;
      }
    }
  }
}

/* ---- events -------------------------------------------------------------------------- */

int sipub_ua_poll(sipub_ua *ua, sipub_event *ev)
{
  if (ua->current.pub) {
    sipub_pub *p = ua->current.pub;
    response_unref(ua->current.resp);
    ua->current.pub = NULL;
    ua->current.resp = NULL;
    p->held = 0;
    pub_maybe_free(p);
  }
  while (ua->evq_len) {
    queued_event e = ua->evq[ua->evq_head];
    ua->evq_head = (ua->evq_head + 1) % ua->evq_cap;
    ua->evq_len--;
    if (e.pub->released) { /* released after the event was queued */
      response_unref(e.resp);
      e.pub->pending_events--;
      pub_maybe_free(e.pub);
      continue;
    }
    ua->current = e;
    e.pub->pending_events--;
    e.pub->held = 1;
    ev->kind = e.kind;
    ev->pub = e.pub;
    ev->user = e.pub->user;
    ev->response = e.resp ? &e.resp->r : NULL;
    ev->status = e.status;
    ev->cause = e.cause;
    return 1;
  }
  return 0;
}

/* ---- user agent ---------------------------------------------------------------------- */

void sipub_global_init(void)
{
  static int done; /* libosip2's parser tables: one-time and read-only afterwards */
  if (!done) {
    parser_init();
    /* libosip2 would print parse errors of hostile or broken datagrams to stderr: give
     * its tracer no output and no level (its trace state is process-wide). */
    osip_trace_initialize(TRACE_LEVEL0, NULL);
    for (int level = 0; level < END_TRACE_LEVEL; level++)
      osip_trace_disable_level((osip_trace_level_t)level);
    done = 1;
  }
}

static int valid_uri(const char *s, int *verbatim);

sipub_ua *sipub_ua_new(const sipub_config *cfg, const sipub_io *io, uint64_t now_ms)
{
  sipub_global_init();
  if (!cfg || !io || !io->send || !cfg->aor || !cfg->via_host || !valid_uri(cfg->aor, NULL)) return NULL;
  sipub_ua *ua = calloc(1, sizeof *ua);
  if (!ua) return NULL;
  ua->io = *io;
  ua->aor = xstrdup(cfg->aor);
  ua->proxy_host = xstrdup(cfg->proxy_host);
  ua->proxy_port = cfg->proxy_port ? cfg->proxy_port : 5060;
  ua->via_host = xstrdup(cfg->via_host);
  ua->via_port = cfg->via_port;
  ua->user_agent = xstrdup(cfg->user_agent);
  ua->reliable = cfg->reliable;
  ua->t1 = cfg->t1_ms ? cfg->t1_ms : 500;
  ua->t2 = cfg->t2_ms ? cfg->t2_ms : 4000;
  ua->t4 = cfg->t4_ms ? cfg->t4_ms : 5000;
  ua->rng = cfg->seed;
  ua->now = now_ms;
  const char *cred_in[6] = { cfg->auth_user, cfg->password, cfg->ha1_md5, cfg->ha1_sha256,
                             cfg->ha1_sha512_256, cfg->realm };
  for (int i = 0; i < 6; i++)
    if (cred_in[i] && !(ua->cred_strings[i] = strdup(cred_in[i]))) {
      sipub_ua_free(ua);
      return NULL;
    }
  ua->creds.user = ua->cred_strings[0];
  ua->creds.password = ua->cred_strings[1];
  ua->creds.ha1[DG_MD5] = ua->cred_strings[2];
  ua->creds.ha1[DG_SHA256] = ua->cred_strings[3];
  ua->creds.ha1[DG_SHA512_256] = ua->cred_strings[4];
  ua->creds.realm = ua->cred_strings[5];
  if (!ua->aor || !ua->via_host || (cfg->proxy_host && !ua->proxy_host) ||
      (cfg->user_agent && !ua->user_agent) || tx_table_grow(ua) != 0) {
    sipub_ua_free(ua);
    return NULL;
  }
  return ua;
}

void sipub_ua_free(sipub_ua *ua)
{
  if (!ua) return;
  while (ua->pubs) pub_free(ua->pubs);
  for (size_t i = 0; i < ua->nbuckets; i++) {
    txn *t = ua->buckets[i];
    while (t) {
      txn *next = t->hnext;
      free(t->req);
      free(t);
      t = next;
    }
  }
  response_unref(ua->current.resp);
  for (size_t i = 0; i < ua->evq_len; i++) response_unref(ua->evq[(ua->evq_head + i) % ua->evq_cap].resp);
  free(ua->evq);
  free(ua->buckets);
  free(ua->timers.v);
  for (int i = 0; i < 6; i++) {
    if (ua->cred_strings[i]) OPENSSL_cleanse(ua->cred_strings[i], strlen(ua->cred_strings[i]));
    free(ua->cred_strings[i]);
  }
  for (int k = 0; k < 2; k++) {
    dg_clear(&ua->auth[k].ch);
    free(ua->auth[k].dest_host);
  }
  msg_template_clear(&ua->skel.t);
  free(ua->skel_event);
  free(ua->skel_ctype);
  free(ua->aor);
  free(ua->proxy_host);
  free(ua->via_host);
  free(ua->user_agent);
  free(ua);
}

void sipub_ua_close(sipub_ua *ua)
{
  ua->closing = 1;
}

size_t sipub_ua_pending(const sipub_ua *ua)
{
  return ua->evq_len;
}

int sipub_ua_busy(const sipub_ua *ua)
{
  if (ua->nactive_tx) return 1;
  for (const sipub_pub *p = ua->pubs; p; p = p->next)
    if (p->queued != Q_NONE) return 1;
  return 0;
}

size_t sipub_ua_count(const sipub_ua *ua)
{
  return ua->npubs;
}

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
static int split_extra(sipub_pub *p, const char *const *lines)
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

/* Where requests go: the outbound proxy, else the target URI's host and port. */
static int pick_dest(sipub_pub *p, const char *target)
{
  sipub_ua *ua = p->ua;
  if (ua->proxy_host) {
    p->dest_host = strdup(ua->proxy_host);
    p->dest_port = ua->proxy_port;
    return p->dest_host ? 0 : SIPUB_ENOMEM;
  }
  osip_uri_t *u = NULL;
  if (osip_uri_init(&u) != 0) return SIPUB_ENOMEM;
  int rc = SIPUB_EINVAL;
  if (osip_uri_parse(u, target) == 0 && u->host && *u->host) {
    p->dest_host = strdup(u->host);
    p->dest_port = u->port ? atoi(u->port) : 5060;
    rc = p->dest_host ? 0 : SIPUB_ENOMEM;
  }
  osip_uri_free(u);
  return rc;
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
static int valid_uri(const char *s, int *verbatim)
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

static int valid_token(const char *s)
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
static int valid_content_type(const char *s)
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

sipub_pub *sipub_pub_new(sipub_ua *ua, const sipub_pub_config *cfg, int *err)
{
  int e = SIPUB_EINVAL, verbatim = 0;
  sipub_pub *p = NULL;
  if (ua->closing) { e = SIPUB_ECLOSED; goto fail; }
  if (!cfg->target || !valid_uri(cfg->target, &verbatim) || !cfg->event || !valid_token(cfg->event) ||
      cfg->expires <= 0 || (cfg->content_type && !valid_content_type(cfg->content_type)))
    goto fail;
  p = calloc(1, sizeof *p);
  if (!p) { e = SIPUB_ENOMEM; goto fail; }
  p->ua = ua;
  p->refresh.fire = pub_refresh_fire;
  p->uri_verbatim = verbatim;
  p->target = strdup(cfg->target);
  p->event = strdup(cfg->event);
  p->content_type = strdup(cfg->content_type ? cfg->content_type : "text/plain");
  p->expires_opt = p->req_expires = cfg->expires;
  p->unpublish_on_close = cfg->unpublish_on_close;
  p->call_id = random_token(ua);
  p->from_tag = random_token(ua);
  /* A random start leaves room for many requests under 2^31 (RFC 3261 §8.1.1.5). */
  p->cseq = (uint32_t)(rng_next(ua) % 10000);
  if (!p->target || !p->event || !p->content_type || !p->call_id || !p->from_tag) {
    e = SIPUB_ENOMEM;
    goto fail;
  }
  if ((e = split_extra(p, cfg->extra_headers)) != 0) goto fail;
  if ((e = pick_dest(p, cfg->target)) != 0) goto fail;
  if (cfg->etag) {
    if (!*cfg->etag || !msg_header_safe(cfg->etag, strlen(cfg->etag))) goto fail;
    if (!(p->etag = strdup(cfg->etag))) { e = SIPUB_ENOMEM; goto fail; }
    /* Unknown expiry: assume the state lasts one requested interval from now. */
    p->valid_until = ua->now + (uint64_t)p->req_expires * 1000;
  }
  p->next = ua->pubs;
  if (ua->pubs) ua->pubs->prev = p;
  ua->pubs = p;
  ua->npubs++;
  p->listed = 1;
  if (err) *err = 0;
  return p;
fail:
  if (p) {
    p->released = 1;
    pub_free(p);
  }
  if (err) *err = e;
  return NULL;
}

static void pub_free(sipub_pub *p)
{
  sipub_ua *ua = p->ua;
  if (p->tx) {
    p->tx->pub = NULL;
    tx_destroy(ua, p->tx);
  }
  timer_stop(&ua->timers, &p->refresh);
  if (p->prev) p->prev->next = p->next;
  else if (ua->pubs == p) ua->pubs = p->next;
  if (p->next) p->next->prev = p->prev;
  if (p->listed) ua->npubs--;
  for (size_t i = 0; i < p->n_extra; i++) {
    free(p->extra_names[i]);
    free(p->extra_values[i]);
  }
  free(p->extra_names);
  free(p->extra_values);
  free(p->target);
  free(p->event);
  free(p->content_type);
  free(p->call_id);
  free(p->from_tag);
  free(p->dest_host);
  free(p->etag);
  msg_template_clear(&p->tpl);
  free(p->body);
  free(p);
}

void sipub_pub_set_user(sipub_pub *p, void *user)
{
  p->user = user;
}

void *sipub_pub_user(const sipub_pub *p)
{
  return p->user;
}

/* Keeps a copy of body as the publication's state (sent by initial/modify, and by a 412
 * recovery). */
static int pub_set_body(sipub_pub *p, const char *body, size_t len)
{
  char *copy = malloc(len + 1);
  if (!copy) return SIPUB_ENOMEM;
  memcpy(copy, body, len);
  copy[len] = '\0';
  free(p->body);
  p->body = copy;
  p->body_len = len;
  return 0;
}

int sipub_pub_publish(sipub_pub *p, const char *body, size_t len)
{
  if (p->closed || p->ua->closing) return SIPUB_ECLOSED;
  if (body && !len) return SIPUB_EINVAL; /* an initial or modify carries state (RFC 3903 §4) */
  if (body) {
    if (pub_set_body(p, body, len) != 0) return SIPUB_ENOMEM;
    if (p->tx) {
      p->queued = Q_PUBLISH;
      return 0;
    }
    pub_send(p, p->etag ? OP_MODIFY : OP_INITIAL);
    return 0;
  }
  if (p->tx) {
    /* The request in flight refreshes; a refresh replaces a queued remove. */
    if (p->queued == Q_REMOVE) p->queued = Q_REFRESH;
    return 0;
  }
  if (!p->etag) return SIPUB_ENOSTATE;
  pub_send(p, OP_REFRESH);
  return 0;
}

int sipub_pub_resume(sipub_pub *p, const char *body, size_t len)
{
  if (p->closed || p->ua->closing) return SIPUB_ECLOSED;
  if (!p->etag || p->tx) return SIPUB_ENOSTATE;
  if (pub_set_body(p, body, len) != 0) return SIPUB_ENOMEM;
  pub_send(p, OP_REFRESH);
  return 0;
}

int sipub_pub_unpublish(sipub_pub *p)
{
  timer_stop(&p->ua->timers, &p->refresh);
  if (p->tx) {
    p->queued = Q_REMOVE;
    return 0;
  }
  p->queued = Q_NONE;
  if (p->etag) pub_send(p, OP_REMOVE);
  return 0;
}

int sipub_pub_close(sipub_pub *p)
{
  if (p->closed) return 0;
  p->closed = 1;
  if (p->unpublish_on_close) return sipub_pub_unpublish(p);
  p->queued = Q_NONE;
  pub_forget(p);
  return 0;
}

void sipub_pub_release(sipub_pub *p)
{
  p->released = 1;
  p->user = NULL;
  p->queued = p->tx ? p->queued : Q_NONE;
  if (!p->tx) timer_stop(&p->ua->timers, &p->refresh);
  pub_maybe_free(p);
}

const char *sipub_pub_etag(const sipub_pub *p)
{
  return p->etag;
}

int sipub_pub_closed(const sipub_pub *p)
{
  return p->closed;
}

int sipub_pub_active(const sipub_pub *p)
{
  return p->tx != NULL || p->queued != Q_NONE || p->refresh.idx != 0 || p->pending_events;
}
