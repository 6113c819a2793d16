/* auth.c — digest credentials in use: answering a 401/407 challenge by repeating the request,
 * and the cached challenge answered pre-emptively (nc + 1) on later requests to the same hop. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

/* A 401/407: answers the strongest usable challenge by sending the same operation again
 * (new branch, CSeq + 1), once per challenge and once more for stale=true. Returns 1 when
 * it did; the challenge is then not reported (no event). */
int auth_answer_challenge(sipub_pub *p, const sent_info *si, const msg_response *mr)
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

/* Adds the answer to the cached challenge of each kind whose next hop is p's: a fresh
 * Authorization / Proxy-Authorization with nc + 1. values[] are malloc'd for the caller. */
void auth_add_headers(sipub_pub *p, msg_request *r, char *values[2])
{
  sipub_ua *ua = p->ua;
  for (int k = 0; k < 2; k++) {
    auth_slot *a = &ua->auth[k];
    if (!a->valid || a->dest_port != p->dest_port || strcmp(a->dest_host, p->dest_host) != 0)
      continue;
    values[k] = dg_authorization(&a->ch, &ua->creds, "PUBLISH", p->target, r->body, r->body_len,
                                 ++a->nc);
    if (values[k]) {
      r->auth_names[r->n_auth] = k ? "Proxy-Authorization" : "Authorization";
      r->auth_values[r->n_auth++] = values[k];
    }
  }
}
