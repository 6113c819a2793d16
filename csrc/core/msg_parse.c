/* msg_parse.c — reading a response: msg_scan.c's fast path first, else a framing check and
 * libosip2, giving the fields the transaction and the publication policy need. */
#include "msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <osipparser2/osip_parser.h>

/* Finds the end of the header section; returns the offset of the body, or 0. */
static size_t header_end(const char *d, size_t len)
{
  for (size_t i = 0; i + 3 < len; i++)
    if (d[i] == '\r' && d[i + 1] == '\n' && d[i + 2] == '\r' && d[i + 3] == '\n') return i + 4;
  return 0;
}

/* The Content-Length value (long or compact form) in the header section, or -1 when absent,
 * -2 when malformed. */
static long find_content_length(const char *d, size_t hdr_len)
{
  size_t i = 0;
  while (i < hdr_len) {
    const char *line = d + i;
    const char *eol = memchr(line, '\n', hdr_len - i);
    size_t n = eol ? (size_t)(eol - line) : hdr_len - i;
    size_t name_len = 0;
    if (n > 15 && strncasecmp(line, "Content-Length", 14) == 0) name_len = 14;
    else if (n > 1 && (line[0] == 'l' || line[0] == 'L') && (line[1] == ':' || line[1] == ' ' || line[1] == '\t')) name_len = 1;
    if (name_len) {
      size_t j = name_len;
      while (j < n && (line[j] == ' ' || line[j] == '\t')) j++;
      if (j < n && line[j] == ':') {
        char num[24];
        size_t k = 0;
        j++;
        while (j < n && k + 1 < sizeof num && line[j] != '\r') num[k++] = line[j++];
        num[k] = '\0';
        long v = msg_parse_seconds(num);
        return v < 0 ? -2 : v;
      }
    }
    i += n + 1;
  }
  return -1;
}


/* Reads a response: fast is 0 for libosip2 alone, 1 to try the scanner (scan.c) first. */
static int parse_response(const char *data, size_t len, msg_response *out, int fast)
{
  memset(out, 0, sizeof *out);
  out->expires = out->min_expires = out->retry_after = -1;
  if (len > MSG_MAX_SIZE) return -1;
  if (fast && msg_scan_response(data, len, out)) return 0; /* framed and read by scan.c */
  if (len < 12 || memcmp(data, "SIP/2.0 ", 8) != 0) return -1;

  size_t body_off = header_end(data, len);
  if (!body_off) return -1;
  /* Bounded before libosip2, whose cost grows with the square of the header count. The
   * status line and the blank line end with a line feed too. */
  size_t lfs = 0;
  for (const char *q = data; (q = memchr(q, '\n', (size_t)(data + body_off - q))) != NULL; q++)
    if (++lfs > MSG_MAX_HEADER_LINES + 2) return -1;
  long cl = find_content_length(data, body_off);
  if (cl == -2) return -1;
  size_t avail = len - body_off;
  if (cl >= 0) {
    if ((size_t)cl > avail) return -1; /* truncated datagram */
    avail = (size_t)cl;                /* bytes past Content-Length are not the message */
  }
  out->len = body_off + avail;
  out->body_off = body_off;
  out->body_len = avail;

  osip_message_t *m = NULL;
  int rc = -1;
  if (osip_message_init(&m) != 0) return -1;
  if (osip_message_parse(m, data, out->len) != 0) goto done;
  if (!MSG_IS_RESPONSE(m) || m->status_code < 100 || m->status_code > 699) goto done;
  if (!m->from || !m->to || !m->call_id || !m->cseq || !m->cseq->method || !m->cseq->number)
    goto done;
  if (osip_list_size(&m->vias) != 1) goto done;

  osip_via_t *via = osip_list_get(&m->vias, 0);
  osip_generic_param_t *br = NULL;
  osip_via_param_get_byname(via, "branch", &br);
  out->branch = msg_parse_branch(br ? br->gvalue : NULL, br && br->gvalue ? strlen(br->gvalue) : 0, &out->branch_ours);

  out->status = m->status_code;
  out->reason = msg_strdup(m->reason_phrase ? m->reason_phrase : "");
  out->cseq_publish = strcmp(m->cseq->method, "PUBLISH") == 0;
  long cseq = msg_parse_seconds(m->cseq->number);
  if (cseq < 0) goto done;
  out->cseq = (uint32_t)cseq;
  if (m->call_id->host) {
    size_t n = strlen(m->call_id->number) + strlen(m->call_id->host) + 2;
    out->call_id = malloc(n);
    if (out->call_id) snprintf(out->call_id, n, "%s@%s", m->call_id->number, m->call_id->host);
  } else {
    out->call_id = msg_strdup(m->call_id->number);
  }

  osip_header_t *h = NULL;
  if (osip_message_header_get_byname(m, "sip-etag", 0, &h) >= 0 && h && h->hvalue && *h->hvalue)
    out->etag = msg_strdup(h->hvalue);
  h = NULL;
  if (osip_message_header_get_byname(m, "expires", 0, &h) >= 0 && h)
    out->expires = msg_parse_seconds(h->hvalue);
  h = NULL;
  if (osip_message_header_get_byname(m, "min-expires", 0, &h) >= 0 && h)
    out->min_expires = msg_parse_seconds(h->hvalue);
  h = NULL;
  if (osip_message_header_get_byname(m, "retry-after", 0, &h) >= 0 && h && h->hvalue) {
    /* delta-seconds, possibly followed by a comment or parameters */
    char num[16];
    size_t k = 0;
    const char *v = h->hvalue;
    while (*v == ' ' || *v == '\t') v++;
    while (k + 1 < sizeof num && v[k] >= '0' && v[k] <= '9') { num[k] = v[k]; k++; }
    num[k] = '\0';
    /* Beyond 2^31 - 1 is still a value, "much later": saturated, not read as absent. */
    out->retry_after = !k ? -1 : msg_parse_seconds(num) < 0 ? 0x7fffffffL : msg_parse_seconds(num);
  }
  if (!out->reason || !out->call_id) goto done;
  if (m->status_code == 401 || m->status_code == 407) {
    osip_list_t *l = m->status_code == 401 ? &m->www_authenticates : &m->proxy_authenticates;
    for (int i = 0; i < osip_list_size(l) && out->nchallenges < MSG_MAX_CHALLENGES; i++)
      if (dg_from_header(osip_list_get(l, i), m->status_code == 407,
                         &out->challenges[out->nchallenges]) == 0)
        out->nchallenges++;
  }
  rc = 0;
done:
  osip_message_free(m);
  if (rc != 0) msg_response_clear(out);
  return rc;
}

int msg_parse_response(const char *data, size_t len, msg_response *out)
{
  return parse_response(data, len, out, 1);
}

int msg_parse_response_fast(const char *data, size_t len, msg_response *out)
{
  memset(out, 0, sizeof *out);
  out->expires = out->min_expires = out->retry_after = -1;
  if (len > MSG_MAX_SIZE || !msg_scan_response(data, len, out)) return -1;
  return 0;
}

int msg_parse_response_osip(const char *data, size_t len, msg_response *out)
{
  return parse_response(data, len, out, 0);
}

void msg_response_clear(msg_response *r)
{
  for (int i = 0; i < r->nchallenges; i++) dg_clear(&r->challenges[i]);
  r->nchallenges = 0;
  free(r->reason);
  free(r->call_id);
  free(r->etag);
  r->reason = r->call_id = r->etag = NULL;
}
