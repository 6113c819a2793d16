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

char *msg_strdup(const char *s)
{
  return s ? strdup(s) : NULL;
}

