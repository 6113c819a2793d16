/* ua.c — the user agent: its objects and lifetime, clock, random ids, the event queue that
 * poll() empties, and the entry points that are not about one publication. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

/* ---- helpers ------------------------------------------------------------------------- */

uint64_t rng_next(sipub_ua *ua)
{
  /* splitmix64: cheap and well distributed; branches only need to be unique. */
  uint64_t z = (ua->rng += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

char *random_token(sipub_ua *ua)
{
  char *s = malloc(17);
  if (!s) return NULL;
  msg_hex64(s, rng_next(ua));
  s[16] = '\0';
  return s;
}

void response_unref(response_ref *r)
{
  if (r && --r->refs == 0) {
    free((char *)r->r.data);
    free((char *)r->r.reason);
    free(r);
  }
}

void push_event(sipub_ua *ua, sipub_pub *pub, sipub_event_kind kind, response_ref *resp,
                const char *cause)
{
  push_event_detail(ua, pub, kind, resp, cause, NULL);
}

void push_event_detail(sipub_ua *ua, sipub_pub *pub, sipub_event_kind kind, response_ref *resp,
                       const char *cause, const char *detail)
{
  if (pub->released) return; /* nobody listens any more */
  /* The driver's reason may be a stack buffer: the event keeps its own copy. Out of memory,
   * the event still goes, without its detail. */
  char *copy = detail ? msg_strdup(detail) : NULL;
  if (ua->evq_len == ua->evq_cap) {
    size_t cap = ua->evq_cap ? ua->evq_cap * 2 : 16;
    queued_event *q = malloc(cap * sizeof *q);
    if (!q) {
      free(copy);
      return;
    }
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
  e->detail = copy;
  if (resp) resp->refs++;
  pub->pending_events++;
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

/* Overdue timers run at now, in deadline order, not at their missed instants: what they send
 * leaves now, so a late refresh counts its Timer F and the server's interval from now, and an
 * overdue Timer E sends once and re-arms from now (RFC 3261 §17.1.2.2) instead of emitting
 * every missed retransmission at once after a stall (a busy handler, a long collection). */
void sipub_ua_tick(sipub_ua *ua, uint64_t now_ms)
{
  if (now_ms > ua->now) ua->now = now_ms;
  while (ua->timers.n && ua->timers.v[0].at <= ua->now) {
    timer *t = ua->timers.v[0].t;
    timer_stop(&ua->timers, t);
    t->fire(ua, t);
  }
}

/* ---- events -------------------------------------------------------------------------- */

int sipub_ua_poll(sipub_ua *ua, sipub_event *ev)
{
  if (ua->current.pub) {
    sipub_pub *p = ua->current.pub;
    response_unref(ua->current.resp);
    free(ua->current.detail);
    ua->current.pub = NULL;
    ua->current.resp = NULL;
    ua->current.detail = NULL;
    p->held = 0;
    pub_maybe_free(p);
  }
  while (ua->evq_len) {
    queued_event e = ua->evq[ua->evq_head];
    ua->evq_head = (ua->evq_head + 1) % ua->evq_cap;
    ua->evq_len--;
    if (e.pub->released) { /* released after the event was queued */
      response_unref(e.resp);
      free(e.detail);
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
    ev->detail = e.detail;
    return 1;
  }
  return 0;
}

sipub_ua *sipub_ua_new(const sipub_config *cfg, const sipub_io *io, uint64_t now_ms)
{
  sipub_global_init();
  if (!cfg || !io || !io->send || sipub_config_check(cfg, NULL) != 0) return NULL;
  sipub_ua *ua = calloc(1, sizeof *ua);
  if (!ua) return NULL;
  ua->io = *io;
  ua->aor = msg_strdup(cfg->aor);
  ua->proxy_host = msg_strdup(cfg->proxy_host);
  ua->proxy_port = cfg->proxy_port ? cfg->proxy_port : 5060;
  ua->via_host = msg_strdup(cfg->via_host);
  ua->via_port = cfg->via_port;
  ua->user_agent = msg_strdup(cfg->user_agent);
  ua->transport = cfg->transport;
  ua->trace = cfg->trace;
  ua->trace_ud = cfg->trace_ud;
  ua->t1 = cfg->t1_ms ? cfg->t1_ms : 500;
  ua->t2 = cfg->t2_ms ? cfg->t2_ms : 4000;
  ua->t4 = cfg->t4_ms ? cfg->t4_ms : 5000;
  ua->rng = cfg->seed;
  /* No seed given: draw one, so that two processes never share branches, tags or Call-IDs. */
  if (!ua->rng && RAND_bytes((unsigned char *)&ua->rng, sizeof ua->rng) != 1)
    ua->rng = now_ms ^ (uint64_t)(uintptr_t)ua;
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
      (cfg->user_agent && !ua->user_agent) || txn_table_init(ua) != 0) {
    sipub_ua_free(ua);
    return NULL;
  }
  return ua;
}

void sipub_ua_free(sipub_ua *ua)
{
  if (!ua) return;
  while (ua->pubs) pub_free(ua->pubs);
  resolve_free_all(ua);
  flow_free_all(ua);
  txn_table_free(ua);
  response_unref(ua->current.resp);
  free(ua->current.detail);
  for (size_t i = 0; i < ua->evq_len; i++) {
    queued_event *e = &ua->evq[(ua->evq_head + i) % ua->evq_cap];
    response_unref(e->resp);
    free(e->detail);
  }
  free(ua->evq);
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
  if (ua->nactive_tx || ua->nwaiting_tx) return 1;
  for (const sipub_pub *p = ua->pubs; p; p = p->next)
    if (p->queued != Q_NONE) return 1;
  return 0;
}

size_t sipub_ua_count(const sipub_ua *ua)
{
  return ua->npubs;
}
