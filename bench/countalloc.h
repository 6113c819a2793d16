/* countalloc.h — counters of the interposed allocator (countalloc.c): calls and live bytes
 * of malloc/calloc/realloc/free in the whole process, libosip2's included. */
#ifndef BENCH_COUNTALLOC_H
#define BENCH_COUNTALLOC_H

#include <stddef.h>

typedef struct ca_counters {
  unsigned long long allocs;   /* blocks allocated: malloc, calloc, realloc(NULL), aligned */
  unsigned long long reallocs; /* realloc of a live block (grown or moved) */
  unsigned long long frees;
  long long live;            /* sum of malloc_usable_size() of live blocks */
} ca_counters;

extern ca_counters ca_count;

#endif
