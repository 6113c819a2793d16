/* txn.c — the RFC 3261 §17.1.2 non-INVITE client transaction: branch table, matching of
 * responses, Timer E (retransmission), F (timeout) and K; it reports to its owner (txn_ops). */
#include "core.h"

#include <stdlib.h>
#include <string.h>

static size_t bucket_of(const sipub_ua *ua, uint64_t branch)
{
  return (size_t)(branch ^ (branch >> 32)) & (ua->nbuckets - 1);
}

static int table_grow(sipub_ua *ua)
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

static void pump_fire(sipub_ua *ua, timer *tm);

int txn_table_init(sipub_ua *ua)
{
  ua->pump.fire = pump_fire;
  return table_grow(ua);
}

static txn *find(const sipub_ua *ua, uint64_t branch)
{
  if (!ua->nbuckets) return NULL;
  for (txn *t = ua->buckets[bucket_of(ua, branch)]; t; t = t->hnext)
    if (t->branch == branch) return t;
  return NULL;
}

/* Active transactions (Trying or Proceeding) are also on a list, for a failed flow; waiting
 * ones on the window's queue, through the same links. */
static void unlist(sipub_ua *ua, txn *t)
{
  if (t->state == TX_COMPLETED) return;
  if (t->state == TX_WAITING) {
    if (t->aprev) t->aprev->anext = t->anext; else ua->wait_head = t->anext;
    if (t->anext) t->anext->aprev = t->aprev; else ua->wait_tail = t->aprev;
    t->aprev = t->anext = NULL;
    ua->nwaiting_tx--;
    return;
  }
  if (t->aprev) t->aprev->anext = t->anext; else ua->active = t->anext;
  if (t->anext) t->anext->aprev = t->aprev;
  t->aprev = t->anext = NULL;
  ua->nactive_tx--;
  /* A slot is free: the next waiting one starts at the next safe point (the pump). */
  if (ua->wait_head && !ua->pump.idx) timer_start(&ua->timers, &ua->pump, ua->now);
}

static void destroy(sipub_ua *ua, txn *t)
{
  txn **pp = &ua->buckets[bucket_of(ua, t->branch)];
  while (*pp && *pp != t) pp = &(*pp)->hnext;
  if (*pp) *pp = t->hnext;
  timer_stop(&ua->timers, &t->tm);
  if (t->wait) resolve_forget_txn(t);
  unlist(ua, t);
  ua->ntx--;
  free(t->req);
  free(t);
}

static void fire(sipub_ua *ua, timer *tm);

txn *txn_new(sipub_ua *ua)
{
  if (ua->ntx + 1 > ua->nbuckets && table_grow(ua) != 0) return NULL;
  txn *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  do t->branch = rng_next(ua); while (find(ua, t->branch));
  t->tm.fire = fire;
  t->state = TX_TRYING;
  return t;
}

void txn_discard(sipub_ua *ua, txn *t)
{
  (void)ua;
  if (!t) return;
  free(t->req);
  free(t);
}

static int send_request(sipub_ua *ua, txn *t)
{
  int rc = ua->io.send(ua->io.ud, &t->flow, t->req, t->req_len);
  if (ua->trace) trace_sent(ua, t, rc);
  return rc;
}

/* Why a send failed, for the event's detail (the driver's send() gives no reason). */
static char *refused(const txn *t)
{
  static const char *const tp[] = { "udp", "tcp", "tls" };
  return msg_format("%s:%d (%s): the transport refused the request", t->flow.host, t->flow.port,
                    tp[t->flow.tp]);
}

/* t ends after a send its driver turned down. */
static void fail_refused(sipub_ua *ua, txn *t)
{
  char *why = refused(t);
  txn_fail(ua, t, SIPUB_CAUSE_CONNECTION_ERROR, why);
  free(why);
}

/* Timer F always; Timer E once something was sent over an unreliable flow. */
static void arm(sipub_ua *ua, txn *t)
{
  uint64_t at = t->f_at;
  if (!t->reliable && t->flow.host && t->e_at < at) at = t->e_at;
  timer_start(&ua->timers, &t->tm, at);
}

/* Moves t to the active list and sends it the first time (or asks the resolver for its host
 * first), Timer E and F counted from now. -1 when refused at once (*detail: why, or NULL). */
static int go(sipub_ua *ua, txn *t, char **detail)
{
  t->state = TX_TRYING;
  t->anext = ua->active;
  if (ua->active) ua->active->aprev = t;
  ua->active = t;
  ua->nactive_tx++;
  t->started = ua->now;
  t->answers_at_start = ua->answers;
  t->e_interval = ua->t1;
  t->e_at = ua->now + ua->t1;
  /* Timer F counts from here even when the first send waits for the resolver: the owner
   * hears of the request within 64*T1 whatever the network and the resolver do. */
  t->f_at = ua->now + 64 * (uint64_t)ua->t1;
  *detail = NULL;
  int route = resolve_route(ua, t, detail);
  if (route > 0 && send_request(ua, t) != 0) {
    *detail = refused(t);
    route = -1;
  }
  if (route < 0) return -1;
  arm(ua, t);
  return 0;
}

int txn_start(sipub_ua *ua, txn *t, const txn_request *rq, const txn_ops *ops, void *owner,
              char **detail)
{
  size_t b = bucket_of(ua, t->branch);
  t->hnext = ua->buckets[b];
  ua->buckets[b] = t;
  ua->ntx++;

  t->ops = ops;
  t->owner = owner;
  t->dest = rq->dest;
  t->call_id = rq->call_id;
  t->cseq = rq->cseq;
  t->req = rq->data;
  t->req_len = rq->len;
  /* A reliable transport retransmits for us: no Timer E, and Timer K = 0 (RFC 3261 §17.1.2.2). */
  t->reliable = rq->dest.tp != SIPUB_TP_UDP;
  *detail = NULL;
  if (ua->wait_head || ua->nactive_tx >= TXN_WINDOW) { /* in order, behind the others */
    t->state = TX_WAITING;
    t->aprev = ua->wait_tail;
    if (ua->wait_tail) ua->wait_tail->anext = t; else ua->wait_head = t;
    ua->wait_tail = t;
    ua->nwaiting_tx++;
    return 0;
  }
  if (go(ua, t, detail) != 0) {
    t->owner = NULL;
    destroy(ua, t);
    return -1;
  }
  return 0;
}

/* Also a timer: due when a slot freed (unlist) with transactions waiting. */
void txn_pump(sipub_ua *ua)
{
  timer_stop(&ua->timers, &ua->pump);
  while (ua->wait_head && ua->nactive_tx < TXN_WINDOW) {
    txn *t = ua->wait_head;
    char *detail = NULL;
    unlist(ua, t);
    if (go(ua, t, &detail) != 0) txn_fail(ua, t, SIPUB_CAUSE_CONNECTION_ERROR, detail);
    free(detail);
  }
}

static void pump_fire(sipub_ua *ua, timer *tm)
{
  (void)tm;
  txn_pump(ua);
}

void txn_send_first(sipub_ua *ua, txn *t)
{
  if (send_request(ua, t) != 0) {
    fail_refused(ua, t);
    return;
  }
  t->e_interval = ua->t1;
  t->e_at = ua->now + ua->t1;
  arm(ua, t);
}

void txn_abandon(sipub_ua *ua, txn *t)
{
  if (t) destroy(ua, t);
}

/* Moves t to Completed (Timer K absorbs retransmitted finals) or destroys it. */
static void complete(sipub_ua *ua, txn *t)
{
  if (t->reliable) { /* Timer K = 0 */
    destroy(ua, t);
    return;
  }
  unlist(ua, t);
  t->state = TX_COMPLETED;
  t->owner = NULL;
  t->call_id = NULL;
  free(t->req);
  t->req = NULL;
  timer_start(&ua->timers, &t->tm, ua->now + ua->t4);
}

/* The transaction ended without a response (timeout, transport error): tell the owner. */
void txn_fail(sipub_ua *ua, txn *t, const char *cause, const char *detail)
{
  const txn_ops *ops = t->ops;
  void *owner = t->owner;
  destroy(ua, t);
  if (owner) ops->final(owner, NULL, NULL, cause, detail);
}

static int same_dest(const sipub_dest *a, const sipub_dest *b);

/* Every waiting transaction to dest ends with a timeout (collected first: the owners told
 * may start new ones). */
static void fail_waiting(sipub_ua *ua, const sipub_dest *dest)
{
  size_t n = 0;
  for (txn *w = ua->wait_head; w; w = w->anext)
    if (same_dest(&w->dest, dest)) n++;
  txn **v = n ? malloc(n * sizeof *v) : NULL;
  if (!v) return;
  n = 0;
  for (txn *w = ua->wait_head; w; w = w->anext)
    if (same_dest(&w->dest, dest)) v[n++] = w;
  for (size_t i = 0; i < n; i++) txn_fail(ua, v[i], SIPUB_CAUSE_REQUEST_TIMEOUT, NULL);
  free(v);
}

static void fire(sipub_ua *ua, timer *tm)
{
  txn *t = (txn *)tm; /* the timer is the first member */
  if (t->state == TX_COMPLETED) { /* Timer K */
    destroy(ua, t);
    return;
  }
  if (ua->now >= t->f_at || !t->flow.host) { /* Timer F */
    /* Nothing at all was answered since t left: the requests waiting for the same next hop
     * would each wait for a slot and time out in turn (a closing UA with 100 000 removes and
     * a dead server would take hours); they end now, as t does, unsent. */
    if (ua->answers == t->answers_at_start && ua->wait_head) fail_waiting(ua, &t->dest);
    txn_fail(ua, t, SIPUB_CAUSE_REQUEST_TIMEOUT, NULL);
    return;
  }
  /* Timer E: retransmit, doubling up to T2 in Trying, every T2 in Proceeding. */
  if (send_request(ua, t) != 0) {
    fail_refused(ua, t);
    return;
  }
  if (t->state == TX_TRYING) {
    t->e_interval = t->e_interval * 2 < ua->t2 ? t->e_interval * 2 : ua->t2;
  } else {
    t->e_interval = ua->t2;
  }
  t->e_at = ua->now + t->e_interval;
  arm(ua, t);
}

static int same_dest(const sipub_dest *a, const sipub_dest *b)
{
  return a->port == b->port && a->tp == b->tp && strcmp(a->host, b->host) == 0;
}

/* Matches the flow a transaction's bytes went over (not its next hop's name: a driver knows
 * only the address it was given). Those still waiting for the resolver have none. */
static int over_flow(const txn *t, const sipub_dest *flow)
{
  return t->flow.host && same_dest(&t->flow, flow);
}

void txn_flow_failed(sipub_ua *ua, const sipub_dest *flow, const char *cause, const char *detail)
{
  /* Collect first: an owner told of the failure may start new transactions, to this flow
   * too (they are not failed: their own send says whether the flow works again). */
  size_t n = 0;
  for (txn *t = ua->active; t; t = t->anext)
    if (over_flow(t, flow)) n++;
  if (!n) return;
  txn **v = malloc(n * sizeof *v);
  if (!v) return;
  n = 0;
  for (txn *t = ua->active; t; t = t->anext)
    if (over_flow(t, flow)) v[n++] = t;
  for (size_t i = 0; i < n; i++) txn_fail(ua, v[i], cause, detail);
  free(v);
}

/* ---- receiving ----------------------------------------------------------------------- */

static response_ref *response_copy(msg_response *mr, const char *data)
{
  response_ref *resp = calloc(1, sizeof *resp);
  char *copy = malloc(mr->len + 1);
  if (!resp || !copy) {
    free(resp);
    free(copy);
    return NULL;
  }
  memcpy(copy, data, mr->len);
  copy[mr->len] = '\0';
  resp->r.status = mr->status;
  resp->r.reason = mr->reason;
  mr->reason = NULL;
  resp->r.data = copy;
  resp->r.len = mr->len;
  resp->r.body = copy + mr->body_off;
  resp->r.body_len = mr->body_len;
  resp->refs = 1;
  return resp;
}

/* Match first: a message that belongs to no live transaction costs one pass over its line
 * starts, never a parse (libosip2's cost grows with the square of the header count, and an
 * off-path sender knows no branch). What it reads is only a candidate: the parse decides. */
static int prematch(sipub_ua *ua, const char *data, size_t len)
{
  msg_ids ids;
  if (msg_peek_ids(data, len, &ids) != 0) return 0;
  txn *t = find(ua, ids.branch);
  /* Completed: a retransmitted final, absorbed here; waiting: nothing was sent yet. */
  if (!t || t->state == TX_COMPLETED || t->state == TX_WAITING) return 0;
  if (ids.has_cseq && ids.cseq != t->cseq) return 0;
  if (ids.call_id && (!t->call_id || strlen(t->call_id) != ids.call_id_len ||
                      memcmp(t->call_id, ids.call_id, ids.call_id_len) != 0))
    return 0;
  return 1;
}

/* For the trace only (the matching above stays as lean as without one): why a response was
 * dropped, by the cheap read (mr NULL), or by the parse (mr: its result, or NULL with
 * parsed set when the parse refused it). */
static void trace_drop(sipub_ua *ua, const sipub_dest *from, const char *data, size_t len,
                       const msg_response *mr, int parse_failed)
{
  msg_ids ids;
  match_result why;
  int read = msg_peek_ids(data, len, &ids) == 0;
  uint64_t branch = mr ? mr->branch : ids.branch;
  txn *t = mr ? (mr->branch_ours ? find(ua, mr->branch) : NULL) : read ? find(ua, ids.branch) : NULL;
  if (parse_failed) why = MATCH_UNPARSED;
  else if (!mr && !read) why = MATCH_UNREAD;
  else if (!t) why = MATCH_NO_TXN;
  else if (t->state == TX_COMPLETED) why = MATCH_COMPLETED;
  else if (t->state == TX_WAITING) why = MATCH_NOT_SENT;
  else if (mr ? !mr->cseq_publish || mr->cseq != t->cseq : ids.has_cseq && ids.cseq != t->cseq)
    why = MATCH_CSEQ;
  else why = MATCH_CALL_ID;
  trace_unmatched(ua, from, data, len, why, branch, t);
}

void txn_receive(sipub_ua *ua, const sipub_dest *from, const char *data, size_t len)
{
  msg_response mr;
  /* The usual shape is read by the scanner in one linear pass, bounded by the size and
   * header-count limits. Only what it declines goes to libosip2, whose cost grows with the
   * square of the header count: that is matched first (one pass over the line starts) and
   * parsed only when it belongs to a live transaction. */
  if (msg_parse_response_fast(data, len, &mr) != 0) {
    if (!prematch(ua, data, len)) {
      if (ua->trace) trace_drop(ua, from, data, len, NULL, 0);
      return;
    }
    if (msg_parse_response_osip(data, len, &mr) != 0) {
      if (ua->trace) trace_drop(ua, from, data, len, NULL, 1);
      return;
    }
  }
  txn *t = mr.branch_ours ? find(ua, mr.branch) : NULL;
  if (!t || !mr.cseq_publish || mr.cseq != t->cseq || t->state == TX_COMPLETED || /* absorbed */
      t->state == TX_WAITING || /* nothing was sent yet */
      !t->call_id || strcmp(mr.call_id, t->call_id) != 0) {
    if (ua->trace) trace_drop(ua, from, data, len, &mr, 0);
    goto done;
  }

  ua->answers++; /* the next hop is alive */
  if (ua->trace) trace_received(ua, t, from, data, len);
  response_ref *resp = response_copy(&mr, data);
  if (!resp) goto done;
  const txn_ops *ops = t->ops;
  void *owner = t->owner;
  if (mr.status < 200) {
    if (t->state == TX_TRYING) t->state = TX_PROCEEDING;
    if (!t->reliable && t->e_interval != ua->t2) { /* Proceeding: retransmit every T2 */
      t->e_interval = ua->t2;
      t->e_at = ua->now + ua->t2;
      arm(ua, t);
    }
    if (mr.status != t->last_1xx) {
      t->last_1xx = mr.status;
      ops->provisional(owner, resp);
    }
  } else {
    complete(ua, t);
    ops->final(owner, &mr, resp, NULL, NULL);
  }
  response_unref(resp);
done:
  msg_response_clear(&mr);
  if (ua->pump.idx) txn_pump(ua); /* a slot freed: the next waiting request leaves now */
}

void txn_table_free(sipub_ua *ua)
{
  for (size_t i = 0; i < ua->nbuckets; i++) {
    txn *t = ua->buckets[i];
    while (t) {
      txn *next = t->hnext;
      free(t->req);
      free(t);
      t = next;
    }
  }
  free(ua->buckets);
  ua->buckets = NULL;
  ua->nbuckets = 0;
}
