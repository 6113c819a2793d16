/* pub.c — publication objects: creation from checked input, the calls an application makes
 * (publish, resume, unpublish, close, release) and when a publication may be freed. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

void pub_free(sipub_pub *p);

void pub_maybe_free(sipub_pub *p)
{
  if (p->released && !p->tx && p->queued == Q_NONE && !p->pending_events && !p->held &&
      !p->refresh.idx)
    pub_free(p);
}

sipub_pub *sipub_pub_new(sipub_ua *ua, const sipub_pub_config *cfg, int *err,
                         sipub_input_error *bad)
{
  int e = SIPUB_EINVAL, verbatim = 0;
  sipub_pub *p = NULL;
  struct osip_uri *target = NULL; /* the one parse of the target */
  if (bad) *bad = (sipub_input_error){ SIPUB_FIELD_NONE, -1, SIPUB_BAD_NONE };
  if (ua->closing) { e = SIPUB_ECLOSED; goto fail; }
  if (check_pub_config(cfg, &target, &verbatim, bad) != 0) goto fail;
  p = calloc(1, sizeof *p);
  if (!p) { e = SIPUB_ENOMEM; goto fail; }
  p->ua = ua;
  p->refresh.fire = pub_refresh_fire;
  p->uri_verbatim = verbatim;
  p->target = strdup(cfg->target);
  p->event = strdup(cfg->event);
  p->content_type = strdup(cfg->content_type ? cfg->content_type : SIPUB_DEFAULT_CONTENT_TYPE);
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
  if ((e = check_split_extra(p, cfg->extra_headers)) != 0) goto fail;
  if ((e = route_set_dest(p, target)) != 0) goto fail;
  msg_uri_free(target);
  target = NULL;
  if (cfg->etag) {
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
  msg_uri_free(target);
  if (p) {
    p->released = 1;
    pub_free(p);
  }
  if (err) *err = e;
  return NULL;
}

void pub_free(sipub_pub *p)
{
  sipub_ua *ua = p->ua;
  txn_abandon(ua, p->tx);
  p->tx = NULL;
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
  if (p->tx) { /* the timer watches the state the request in flight refreshes: kept */
    p->queued = Q_REMOVE;
    return 0;
  }
  timer_stop(&p->ua->timers, &p->refresh);
  p->queued = Q_NONE;
  p->recovering = 0; /* a 412 recovery waiting to retry: the state is no longer wanted */
  p->retry_pending = 0;
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
