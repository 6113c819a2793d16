/* msg_util.c — small helpers of the core's SIP text handling: header-value safety, decimal
 * seconds, formatted strings, hex ids and our branch parameter. No libosip2 here. */
#include "msg.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int msg_header_safe(const char *s, size_t len)
{
  /* RFC 3261 header values hold no control characters but horizontal tab. */
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f) return 0;
  }
  return 1;
}

long msg_parse_seconds(const char *s)
{
  if (!s) return -1;
  while (*s == ' ' || *s == '\t') s++;
  if (!isdigit((unsigned char)*s)) return -1;
  long v = 0;
  for (; isdigit((unsigned char)*s); s++) {
    v = v * 10 + (*s - '0');
    if (v > 0x7fffffffL) return -1;
  }
  while (*s == ' ' || *s == '\t') s++;
  return *s ? -1 : v;
}

char *msg_format(const char *f, ...)
{
  va_list ap;
  va_start(ap, f);
  int n = vsnprintf(NULL, 0, f, ap);
  va_end(ap);
  if (n < 0) return NULL;
  char *s = malloc((size_t)n + 1);
  if (!s) return NULL;
  va_start(ap, f);
  vsnprintf(s, (size_t)n + 1, f, ap);
  va_end(ap);
  return s;
}

void msg_hex64(char out[16], uint64_t v)
{
  static const char hex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; i--, v >>= 4) out[i] = hex[v & 0xf];
}

char *msg_strdup(const char *s)
{
  return s ? strdup(s) : NULL;
}

uint64_t msg_parse_branch(const char *b, size_t len, int *ours)
{
  size_t plen = sizeof MSG_BRANCH_PREFIX - 1;
  uint64_t v = 0;
  *ours = 0;
  if (!b || len != plen + 16 || memcmp(b, MSG_BRANCH_PREFIX, plen) != 0) return 0;
  for (size_t i = plen; i < len; i++) {
    int c = (unsigned char)b[i], x;
    if (c >= '0' && c <= '9') x = c - '0';
    else if (c >= 'a' && c <= 'f') x = c - 'a' + 10;
    else return 0;
    v = (v << 4) | (uint64_t)x;
  }
  *ours = 1;
  return v;
}
