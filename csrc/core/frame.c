/* frame.c — the one SIP message framer (RFC 3261 §18.3): where a message in a byte stream
 * ends, by Content-Length. Used by the core's stream flows (flow.c) and the test compositor. */
#include "sipub.h"

#include <string.h>
#include <strings.h>

/* The offset just past the empty line that ends the header section, or 0. A bare LF is
 * taken as a line end too (RFC 3261 §7.5 lets a receiver be lenient), so "\n\n" and
 * "\n\r\n" end it as "\r\n\r\n" does. */
static size_t header_end(const char *d, size_t len)
{
  const char *p = d, *end = d + len;
  while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
    if (p + 1 < end && p[1] == '\n') return (size_t)(p - d) + 2;
    if (p + 2 < end && p[1] == '\r' && p[2] == '\n') return (size_t)(p - d) + 3;
    p++;
  }
  return 0;
}

/* Reads a Content-Length value: digits between optional whitespace. -1 when malformed or
 * beyond SIPUB_FRAME_MAX (a stream buffer is never allowed to grow past it). */
static long length_value(const char *v, size_t n)
{
  size_t k = 0;
  long x = 0;
  while (k < n && (v[k] == ' ' || v[k] == '\t')) k++;
  if (k == n) return -1;
  for (; k < n && v[k] >= '0' && v[k] <= '9'; k++) {
    x = x * 10 + (v[k] - '0');
    if (x > SIPUB_FRAME_MAX) return -1;
  }
  while (k < n && (v[k] == ' ' || v[k] == '\t' || v[k] == '\r')) k++;
  return k == n ? x : -1;
}

int sipub_frame_message(const char *data, size_t len, sipub_frame *f)
{
  memset(f, 0, sizeof *f);
  size_t hdr = header_end(data, len < SIPUB_FRAME_MAX ? len : SIPUB_FRAME_MAX);
  if (!hdr) return len >= SIPUB_FRAME_MAX ? SIPUB_FRAME_BAD : SIPUB_FRAME_MORE;
  f->header_len = hdr;
  long cl = -2;
  for (size_t i = 0; i < hdr;) {
    const char *line = data + i;
    const char *eol = memchr(line, '\n', hdr - i);
    size_t n = eol ? (size_t)(eol - line) : hdr - i, name = 0;
    if (n > 14 && strncasecmp(line, "Content-Length", 14) == 0) name = 14;
    else if (n > 1 && (line[0] == 'l' || line[0] == 'L')) name = 1; /* compact form */
    if (name) {
      size_t j = name;
      while (j < n && (line[j] == ' ' || line[j] == '\t')) j++;
      if (j < n && line[j] == ':') {
        size_t end = n;
        while (end > j + 1 && (line[end - 1] == '\r' || line[end - 1] == ' ' || line[end - 1] == '\t'))
          end--;
        f->cl_off = i + j + 1;
        f->cl_len = end - (j + 1);
        cl = length_value(line + j + 1, end - (j + 1));
        break;
      }
    }
    i += n + 1;
  }
  if (cl == -2) return SIPUB_FRAME_NO_LENGTH;
  if (cl < 0 || hdr + (size_t)cl > SIPUB_FRAME_MAX) return SIPUB_FRAME_BAD;
  f->msg_len = hdr + (size_t)cl;
  return len < f->msg_len ? SIPUB_FRAME_MORE : SIPUB_FRAME_COMPLETE;
}
