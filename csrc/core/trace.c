/* trace.c — the message trace: the records handed to sipub_config.trace for each request sent,
 * response matched and message dropped, with the words that say why. Called only when set. */
#include "core.h"

#include <stdio.h>
#include <string.h>

static const char *const drop_names[SIPUB_DROP_COUNT] = {
  "", "unparseable", "too large", "too many headers", "no transaction", "mismatch",
  "retransmitted final", "framing error", "send refused"
};

const char *sipub_drop_name(int drop)
{
  return drop > 0 && drop < SIPUB_DROP_COUNT ? drop_names[drop] : "";
}

int sipub_ua_tracing(const sipub_ua *ua)
{
  return ua && ua->trace != NULL;
}

static void emit(sipub_ua *ua, sipub_trace_dir dir, int drop, unsigned retrans,
                 const sipub_dest *flow, const char *data, size_t len, const char *note)
{
  sipub_trace t = { dir, drop, retrans, flow, data, len, note, ua->now };
  ua->trace(ua->trace_ud, &t);
}

void trace_sent(sipub_ua *ua, txn *t, int rc)
{
  char note[64];
  unsigned n = t->nsent;
  if (rc != 0) {
    snprintf(note, sizeof note, "the transport refused %s",
             n ? "a retransmission" : "the request");
    emit(ua, SIPUB_TRACE_DROPPED, SIPUB_DROP_SEND_REFUSED, n, &t->flow, t->req, t->req_len, note);
    return;
  }
  t->nsent++;
  if (n) snprintf(note, sizeof note, "retransmission %u", n);
  emit(ua, SIPUB_TRACE_SENT, 0, n, &t->flow, t->req, t->req_len, n ? note : NULL);
}

void trace_received(sipub_ua *ua, const txn *t, const sipub_dest *from, const char *data,
                    size_t len)
{
  /* A datagram whose source the driver did not name came back over the request's flow. */
  emit(ua, SIPUB_TRACE_RECEIVED, 0, 0, from && from->host ? from : &t->flow, data, len, NULL);
}

void trace_dropped(sipub_ua *ua, const sipub_dest *from, const char *data, size_t len, int drop,
                   const char *note)
{
  emit(ua, SIPUB_TRACE_DROPPED, drop, 0, from && from->host ? from : NULL, data, len, note);
}

/* Header lines before the blank line (or the end): the parser's bound. */
static size_t header_lines(const char *d, size_t len)
{
  size_t n = 0;
  const char *end = d + len;
  for (const char *p = d; p < end;) {
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    if (!lf) break;
    p = lf + 1;
    if (p < end && (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n'))) break;
    n++;
  }
  return n;
}

/* Why a message the cheap read or the parse refused was dropped. */
static int diagnose(const char *data, size_t len, match_result why, char *note, size_t size)
{
  if (len > MSG_MAX_SIZE) {
    snprintf(note, size, "%zu bytes: over the limit of %d", len, MSG_MAX_SIZE);
    return SIPUB_DROP_TOO_LARGE;
  }
  if (len < 12 || memcmp(data, "SIP/2.0 ", 8) != 0) {
    snprintf(note, size, "not a SIP response");
    return SIPUB_DROP_UNPARSEABLE;
  }
  if (header_lines(data, len) > MSG_MAX_HEADER_LINES) {
    snprintf(note, size, "more than %d header lines", MSG_MAX_HEADER_LINES);
    return SIPUB_DROP_TOO_MANY_HEADERS;
  }
  if (why == MATCH_UNREAD) {
    snprintf(note, size, "no transaction: its top Via has no branch of ours");
    return SIPUB_DROP_NO_TRANSACTION;
  }
  snprintf(note, size, "a malformed response (a header missing or unreadable, or a "
                       "Content-Length beyond the data)");
  return SIPUB_DROP_UNPARSEABLE;
}

void trace_unmatched(sipub_ua *ua, const sipub_dest *from, const char *data, size_t len,
                     match_result why, uint64_t branch, const txn *t)
{
  char note[160], b[sizeof MSG_BRANCH_PREFIX + 16];
  int drop;
  memcpy(b, MSG_BRANCH_PREFIX, sizeof MSG_BRANCH_PREFIX - 1);
  msg_hex64(b + sizeof MSG_BRANCH_PREFIX - 1, branch);
  b[sizeof b - 1] = '\0';
  switch (why) {
  case MATCH_NO_TXN:
    drop = SIPUB_DROP_NO_TRANSACTION;
    snprintf(note, sizeof note, "no transaction matches branch %s", b);
    break;
  case MATCH_NOT_SENT:
    drop = SIPUB_DROP_NO_TRANSACTION;
    snprintf(note, sizeof note, "the transaction of branch %s has sent nothing yet", b);
    break;
  case MATCH_COMPLETED:
    drop = SIPUB_DROP_RETRANSMITTED_FINAL;
    snprintf(note, sizeof note, "a final response again for branch %s: absorbed", b);
    break;
  case MATCH_CSEQ:
    drop = SIPUB_DROP_MISMATCH;
    snprintf(note, sizeof note, "branch %s matches, its CSeq does not (%u PUBLISH expected)", b,
             t ? (unsigned)t->cseq : 0u);
    break;
  case MATCH_CALL_ID:
    drop = SIPUB_DROP_MISMATCH;
    snprintf(note, sizeof note, "branch %s matches, its Call-ID does not", b);
    break;
  default:
    drop = diagnose(data, len, why, note, sizeof note);
    break;
  }
  trace_dropped(ua, from, data, len, drop, note);
}
