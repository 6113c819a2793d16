/* msg_build.c — a PUBLISH request built and printed by libosip2: the reference that request
 * templates (msg_template.c) reproduce, and the path for requests no template fits. */
#include "msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <osipparser2/osip_parser.h>

static int set_uri(osip_message_t *m, const char *ruri)
{
  osip_uri_t *u = NULL;
  if (osip_uri_init(&u) != 0) return -1;
  if (osip_uri_parse(u, ruri) != 0) { osip_uri_free(u); return -1; }
  osip_message_set_uri(m, u);
  return 0;
}

/* Sets one header from a formatted value; libosip2 copies what it keeps. */
static int set_msg_format(int (*setter)(osip_message_t *, const char *), osip_message_t *m, char *value)
{
  int rc = value ? setter(m, value) : -1;
  free(value);
  return rc == 0 ? 0 : -1;
}

int msg_build_request(const msg_request *r, char **out, size_t *len)
{
  osip_message_t *m = NULL;
  char num[32];
  int rc = -1;

  if (osip_message_init(&m) != 0) return -1;
  osip_message_set_method(m, osip_strdup("PUBLISH"));
  osip_message_set_version(m, osip_strdup("SIP/2.0"));
  if (set_uri(m, r->ruri) != 0) goto done;

  if (set_msg_format(osip_message_set_via, m,
              msg_format("SIP/2.0/%s %s:%d;branch=" MSG_BRANCH_PREFIX "%016llx;rport",
                  r->transport == SIPUB_TP_TLS ? "TLS" : r->transport == SIPUB_TP_TCP ? "TCP" : "UDP", r->via_host, r->via_port,
                  (unsigned long long)r->branch)) != 0)
    goto done;
  osip_message_set_max_forwards(m, "70");
  if (set_msg_format(osip_message_set_from, m, msg_format("<%s>;tag=%s", r->from_uri, r->from_tag)) != 0)
    goto done;
  if (set_msg_format(osip_message_set_to, m, msg_format("<%s>", r->to_uri)) != 0) goto done;
  if (osip_message_set_call_id(m, r->call_id) != 0) goto done;
  snprintf(num, sizeof num, "%u PUBLISH", (unsigned)r->cseq);
  osip_message_set_cseq(m, num);

  /* Extra headers first, then the RFC 3903 ones, each exactly once. */
  for (size_t i = 0; i < r->n_extra; i++)
    osip_message_set_header(m, r->extra_names[i], r->extra_values[i]);
  osip_message_set_header(m, "Event", r->event);
  snprintf(num, sizeof num, "%d", r->expires);
  osip_message_set_header(m, "Expires", num);
  if (r->etag) osip_message_set_header(m, "SIP-If-Match", r->etag);
  if (r->user_agent) osip_message_set_user_agent(m, r->user_agent);
  for (size_t i = 0; i < r->n_auth; i++) osip_message_set_header(m, r->auth_names[i], r->auth_values[i]);
  if (r->body) {
    osip_message_set_content_type(m, r->content_type);
    if (osip_message_set_body(m, r->body, r->body_len) != 0) goto done;
  }

  char *s = NULL;
  size_t n = 0;
  if (osip_message_to_str(m, &s, &n) != 0) goto done;
  /* libosip2 allocates with its own allocator; hand back malloc'd memory. */
  *out = malloc(n + 1);
  if (*out) { memcpy(*out, s, n); (*out)[n] = '\0'; *len = n; rc = 0; }
  osip_free(s);
done:
  osip_message_free(m);
  return rc;
}
