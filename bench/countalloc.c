/* countalloc.c — a counting allocator interposed over glibc's (forwarding to __libc_*), so a
 * benchmark can count allocations per round trip and the bytes a publication keeps. */
#include "countalloc.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

ca_counters ca_count;

static void *took(void *p)
{
  if (p) {
    ca_count.allocs++;
    ca_count.live += (long long)malloc_usable_size(p);
  }
  return p;
}

void *malloc(size_t n)
{
  return took(__libc_malloc(n));
}

void *calloc(size_t n, size_t size)
{
  return took(__libc_calloc(n, size));
}

void *realloc(void *p, size_t n)
{
  if (!p) return took(__libc_realloc(p, n));
  long long before = (long long)malloc_usable_size(p);
  void *q = __libc_realloc(p, n);
  ca_count.reallocs++;
  if (q) {
    ca_count.live += (long long)malloc_usable_size(q) - before;
  } else if (n == 0) { /* freed */
    ca_count.frees++;
    ca_count.live -= before;
  }
  return q;
}

void free(void *p)
{
  if (!p) return;
  ca_count.frees++;
  ca_count.live -= (long long)malloc_usable_size(p);
  __libc_free(p);
}

void *memalign(size_t align, size_t n)
{
  return took(__libc_memalign(align, n));
}

void *aligned_alloc(size_t align, size_t n)
{
  return took(__libc_memalign(align, n));
}

int posix_memalign(void **out, size_t align, size_t n)
{
  void *p = took(__libc_memalign(align, n));
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
