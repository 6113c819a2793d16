/* inmem.h — the in-memory transport and responder of the C core benchmarks: keeps the last
 * request sent and answers it with a 200 OK built from a template (Via/From/To/Call-ID/CSeq). */
#ifndef BENCH_INMEM_H
#define BENCH_INMEM_H

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sipub.h"

typedef struct inmem {
  const char *req; /* the last request sent; the core keeps it alive until its final */
  size_t req_len;
  unsigned long sent;
  unsigned long etag;
  char resp[4096];
  size_t resp_len;
} inmem;

__attribute__((unused)) static int inmem_send(void *ud, const sipub_dest *d, const char *data, size_t len)
{
  inmem *m = ud;
  (void)d;
  m->req = data;
  m->req_len = len;
  m->sent++;
  return 0;
}

static void inmem_put(inmem *m, const char *s, size_t n)
{
  if (m->resp_len + n < sizeof m->resp) {
    memcpy(m->resp + m->resp_len, s, n);
    m->resp_len += n;
  }
}

/* Copies the header line that starts with name (a full "Name:" prefix) into the response. */
static void inmem_copy(inmem *m, const char *name, const char *suffix)
{
  size_t nl = strlen(name);
  const char *p = m->req, *end = m->req + m->req_len;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) break;
    size_t n = (size_t)(eol - p) - (eol > p && eol[-1] == '\r');
    if (n == 0) break; /* end of the header section */
    if (n > nl && strncasecmp(p, name, nl) == 0) {
      inmem_put(m, p, n);
      if (suffix) inmem_put(m, suffix, strlen(suffix));
      inmem_put(m, "\r\n", 2);
      return;
    }
    p = eol + 1;
  }
}

/* Builds the 200 OK to the last request: Expires 0 for a remove (no SIP-ETag). */
__attribute__((noinline)) static const char *inmem_reply(inmem *m, int expires, size_t *len)
{
  char line[96];
  int remove = strstr(m->req, "\r\nExpires: 0\r\n") != NULL;
  m->resp_len = 0;
  inmem_put(m, "SIP/2.0 200 OK\r\n", 16);
  inmem_copy(m, "Via:", ";received=127.0.0.1");
  inmem_copy(m, "From:", NULL);
  inmem_copy(m, "To:", ";tag=esc1");
  inmem_copy(m, "Call-ID:", NULL);
  inmem_copy(m, "CSeq:", NULL);
  if (remove) {
    inmem_put(m, "Expires: 0\r\n", 12);
  } else {
    int n = snprintf(line, sizeof line, "SIP-ETag: %lx.5eed\r\nExpires: %d\r\n", ++m->etag, expires);
    inmem_put(m, line, (size_t)n);
  }
  inmem_put(m, "Server: inmem\r\nContent-Length: 0\r\n\r\n", 37);
  *len = m->resp_len;
  return m->resp;
}

#endif
