/* publish.c — the RFC 3903 policy: one request in flight per publication, the newest intent
 * queued, refresh at 0.9 x the granted Expires, 412/423 recovery, back-off, outcomes. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

/* ---- requests ------------------------------------------------------------------------ */

/* The UA's skeleton for p's event, content type and transport (made from r's fixed fields),
 * rebuilt when another kind comes: publications of one kind cost no libosip2 build each. */
static int ua_skeleton(sipub_ua *ua, const sipub_pub *p, const msg_request *r)
{
  if (ua->skel.t.text && ua->skel_tp == p->dest_tp && strcmp(ua->skel_event, p->event) == 0 &&
      strcmp(ua->skel_ctype, p->content_type) == 0)
    return 0;
  msg_template_clear(&ua->skel.t);
  free(ua->skel_event);
  free(ua->skel_ctype);
  ua->skel_event = strdup(p->event);
  ua->skel_ctype = strdup(p->content_type);
  ua->skel_tp = p->dest_tp;
  if (!ua->skel_event || !ua->skel_ctype || msg_template_skeleton(&ua->skel, r) != 0) {
    msg_template_clear(&ua->skel.t);
    return -1;
  }
  return 0;
}

/* p's template, made on its first request: derived from the UA's skeleton when p has no extra
 * headers and a target libosip2 writes back as given, else cut from libosip2's text and
 * checked against it (once per UA, and for each publication with extra headers: another
 * libosip2 version may print headers in another order). On failure every request of p is
 * built by libosip2. */
static void make_template(sipub_pub *p, const msg_request *r)
{
  sipub_ua *ua = p->ua;
  p->tpl_tried = 1;
  if (!p->n_extra && p->uri_verbatim && ua_skeleton(ua, p, r) == 0 &&
      msg_template_derive(&ua->skel, p->target, p->from_tag, p->call_id, &p->tpl) == 0)
    return;
  if (ua->tpl_shape >= 0 && msg_template_init(&p->tpl, r) == 0 && (!ua->tpl_shape || p->n_extra)) {
    int ok = msg_template_check(&p->tpl, r) == 0;
    if (!p->n_extra) ua->tpl_shape = ok ? 1 : -1;
    if (!ok) msg_template_clear(&p->tpl);
  }
}

static void on_provisional(void *owner, response_ref *resp)
{
  sipub_pub *p = owner;
  push_event(p->ua, p, SIPUB_EV_PROGRESS, resp, sipub_reason_phrase(resp->r.status));
}

static void on_final(void *owner, const msg_response *mr, response_ref *resp, const char *cause,
                     const char *detail)
{
  sipub_pub *p = owner;
  sent_info si = p->inflight;
  p->tx = NULL;
  pub_final(p, &si, mr, resp, cause, detail);
  pub_maybe_free(p);
}

static const txn_ops pub_txn_ops = { on_provisional, on_final };

/* Starts a transaction for op. On a local failure the publication fails at once. */
void pub_send(sipub_pub *p, op_kind op)
{
  sipub_ua *ua = p->ua;
  sent_info si = { op, op == OP_REMOVE ? 0 : p->req_expires, ua->now };
  txn *t = txn_new(ua);
  if (!t) {
    pub_final(p, &si, NULL, NULL, SIPUB_CAUSE_CONNECTION_ERROR, NULL);
    return;
  }
  int with_body = op == OP_INITIAL || op == OP_MODIFY;
  msg_request r = {
    .ruri = p->target, .via_host = ua->via_host, .via_port = ua->via_port,
    .transport = p->dest_tp, .branch = t->branch, .from_uri = ua->aor,
    .from_tag = p->from_tag, .to_uri = p->target, .call_id = p->call_id, .cseq = ++p->cseq,
    .event = p->event, .expires = si.expires, .etag = op == OP_INITIAL ? NULL : p->etag,
    .content_type = p->content_type, .body = with_body ? (p->body ? p->body : "") : NULL,
    .body_len = with_body ? p->body_len : 0, .extra_names = p->extra_names,
    .extra_values = p->extra_values, .n_extra = p->n_extra, .user_agent = ua->user_agent,
  };
  char *auth_values[2] = { NULL, NULL };
  auth_add_headers(p, &r, auth_values);
  if (!p->tpl_tried) make_template(p, &r);
  txn_request rq = { { p->dest_host, p->dest_port, p->dest_tp }, p->call_id, r.cseq, NULL, 0 };
  int built = p->tpl.text ? msg_template_fill(&p->tpl, &r, &rq.data, &rq.len)
                          : msg_build_request(&r, &rq.data, &rq.len);
  free(auth_values[0]);
  free(auth_values[1]);
  if (built != 0) {
    txn_discard(ua, t);
    pub_final(p, &si, NULL, NULL, SIPUB_CAUSE_CONNECTION_ERROR, NULL);
    return;
  }
  timer_stop(&ua->timers, &p->refresh); /* this request refreshes; its 2xx re-arms */
  p->retry_pending = 0;
  /* While a refresh or modify is in flight the timer watches the granted state: when it
   * expires unanswered the loss is reported then, not at Timer F, up to 32 s later. */
  if ((op == OP_REFRESH || op == OP_MODIFY) && p->valid_until > ua->now)
    timer_start(&ua->timers, &p->refresh, p->valid_until);
  p->inflight = si;
  p->tx = t;
  char *detail = NULL;
  if (txn_start(ua, t, &rq, &pub_txn_ops, p, &detail) != 0) {
    p->tx = NULL;
    pub_final(p, &si, NULL, NULL, SIPUB_CAUSE_CONNECTION_ERROR, detail);
    free(detail);
  }
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

void pub_forget(sipub_pub *p)
{
  free(p->etag);
  p->etag = NULL;
  p->recovering = 0;
  p->recover_until = 0;
  p->retries_423 = 0;
  p->valid_until = 0;
  p->backoff_ms = 0;
  p->retry_pending = 0;
  timer_stop(&p->ua->timers, &p->refresh);
}

void pub_refresh_fire(sipub_ua *ua, timer *tm)
{
  sipub_pub *p = (sipub_pub *)((char *)tm - offsetof(sipub_pub, refresh));
  if (p->tx) {
    /* The granted state expired with its refresh unanswered: the loss is reported now, not at
     * Timer F (up to 32 s later). The request goes on: a late 2xx says the server took it in
     * time and the publication is back (`published`); any other end is not reported again. */
    pub_forget(p);
    p->loss_reported = 1;
    push_event(ua, p, SIPUB_EV_FAILED, NULL, SIPUB_CAUSE_REQUEST_TIMEOUT);
    push_event(ua, p, SIPUB_EV_UNPUBLISHED, NULL, SIPUB_CAUSE_REQUEST_TIMEOUT);
  } else {
    op_kind op = p->retry_pending ? p->retry_op : OP_REFRESH;
    p->retry_pending = 0;
    if (!p->closed && (p->etag || (op == OP_INITIAL && p->recovering && p->body))) pub_send(p, op);
  }
  pub_maybe_free(p);
}

/* A refresh or modify that failed for a passing reason (408, 480, 500, 503, 504, Timer F)
 * while the state the server granted is still valid, or a 412 recovery's initial while the
 * application still wants its state (for one requested interval): try again after a back-off
 * of 1 s, doubling up to 32 s, shortened to half of the time left, reporting `progress`. A
 * Retry-After can lengthen the wait, never shorten it (Retry-After: 0 to every try would be a
 * storm); one beyond the time left gives up, as does a wait under MIN_RETRY_MS. */
static int pub_retry_transient(sipub_pub *p, const sent_info *si, const msg_response *mr,
                               response_ref *resp, const char *cause)
{
  sipub_ua *ua = p->ua;
  uint64_t until;
  if (p->closed || p->queued == Q_REMOVE) return 0;
  if ((si->op == OP_REFRESH || si->op == OP_MODIFY) && p->etag) until = p->valid_until;
  else if (si->op == OP_INITIAL && p->recovering && p->body) until = p->recover_until;
  else return 0;
  if (mr) {
    int st = mr->status;
    if (st != 408 && st != 480 && st != 500 && st != 503 && st != 504) return 0;
  } else if (cause != SIPUB_CAUSE_REQUEST_TIMEOUT) {
    return 0;
  }
  if (ua->now >= until) return 0;
  uint64_t remaining = until - ua->now;
  uint64_t delay = p->backoff_ms ? (uint64_t)p->backoff_ms * 2 : 1000;
  if (delay > 32000) delay = 32000;
  p->backoff_ms = (unsigned)delay;
  /* Short intervals leave little time: fit the tries into what is left of it. */
  if (delay >= remaining) delay = remaining / 2;
  if (mr && mr->retry_after >= 0) {
    uint64_t asked = (uint64_t)mr->retry_after * 1000;
    if (asked >= remaining) return 0; /* the server asks for longer than the state lasts */
    if (asked > delay) delay = asked;
  }
  if (delay < MIN_RETRY_MS) return 0;
  if (si->op == OP_INITIAL) {
    p->retry_op = OP_INITIAL; /* it carries the newest body anyway */
  } else {
    p->retry_op = si->op == OP_MODIFY || p->queued == Q_PUBLISH ? OP_MODIFY : OP_REFRESH;
  }
  p->queued = Q_NONE; /* the retry carries the newest body */
  p->retry_pending = 1;
  timer_start(&ua->timers, &p->refresh, ua->now + delay);
  push_event(ua, p, SIPUB_EV_PROGRESS, resp, cause);
  return 1;
}

/* RFC 3903 §11.3: an entity-tag is a token. Anything else (spaces, commas, folding) could
 * not be echoed in SIP-If-Match as given: it counts as none. */
static int etag_usable(const char *etag)
{
  return sipub_check_etag(etag, strlen(etag)) == SIPUB_BAD_NONE;
}

/* Handles the end of the request in flight: a final response (mr, resp), or a failure
 * without one (mr NULL, cause set, and detail when the transport said why). */
void pub_final(sipub_pub *p, const sent_info *si, const msg_response *mr,
               response_ref *resp, const char *cause, const char *detail)
{
  sipub_ua *ua = p->ua;
  op_kind op = si->op;
  int sent_expires = si->expires;
  int status = mr ? mr->status : 0;
  const char *phrase = mr ? sipub_reason_phrase(status) : cause;

  p->tx = NULL;
  timer_stop(&ua->timers, &p->refresh); /* the state watch of the request that ended */
  if (p->loss_reported) {
    p->loss_reported = 0;
    /* Only a 2xx that keeps the state (with a usable entity-tag) is news; the rest ends the
     * request quietly (no challenge answered, no recovery: the application was told). */
    if (!mr || status < 200 || status >= 300 || op == OP_REMOVE || mr->expires == 0 || !mr->etag ||
        !etag_usable(mr->etag))
      goto next;
  }
  if (mr && (status == 401 || status == 407) && auth_answer_challenge(p, si, mr)) return;
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
    /* An entity-tag is a token (RFC 3903 §11.3.1); anything else would be echoed into
     * SIP-If-Match altered or split: it counts as none. */
    if (mr->etag && etag_usable(mr->etag)) {
      free(p->etag);
      p->etag = msg_strdup(mr->etag);
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
      p->recover_until = ua->now + (uint64_t)p->req_expires * 1000;
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

  /* Stopped (a remove queued) while a refresh or modify was in flight: a failed request leaves
   * the server's state as it was (RFC 3903 §6), held by the same entity-tag until it expires,
   * so the remove still goes, and its outcome is the one reported. Only a 412 or a 2xx (or the
   * expiry) says the state is gone. */
  if (p->queued == Q_REMOVE && p->etag && (op == OP_REFRESH || op == OP_MODIFY) &&
      (!p->valid_until || ua->now < p->valid_until)) {
    push_event(ua, p, SIPUB_EV_PROGRESS, resp, mr ? phrase : cause);
    goto next;
  }

  /* Every other outcome ends the publication; the last body is kept for a new start. */
  pub_forget(p);
  push_event_detail(ua, p, SIPUB_EV_FAILED, resp, mr ? phrase : cause, mr ? NULL : detail);
  push_event_detail(ua, p, SIPUB_EV_UNPUBLISHED, resp, mr ? phrase : cause, mr ? NULL : detail);
  if (p->queued == Q_REMOVE || p->queued == Q_REFRESH) p->queued = Q_NONE;

next:
  pub_run_queue(p);
}
