/* heap.c — the core's timers: a binary min-heap of deadlines embedded in their owners, so
 * that 100 000 publications arm, move and stop their timers in O(log n) without allocating. */
#include "core.h"

#include <stdlib.h>

/* Each entry carries its deadline: sifting compares contiguous keys instead of chasing a
 * pointer per comparison (100 000 armed timers make a heap about 17 levels deep). */

static void heap_place(heap *h, size_t i, heap_entry e)
{
  h->v[i] = e;
  e.t->idx = i + 1;
}

static void heap_up(heap *h, size_t i)
{
  heap_entry e = h->v[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (h->v[p].at <= e.at) break;
    heap_place(h, i, h->v[p]);
    i = p;
  }
  heap_place(h, i, e);
}

static void heap_down(heap *h, size_t i)
{
  heap_entry e = h->v[i];
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = l;
    if (l >= h->n) break;
    if (r < h->n && h->v[r].at < h->v[l].at) m = r;
    if (h->v[m].at >= e.at) break;
    heap_place(h, i, h->v[m]);
    i = m;
  }
  heap_place(h, i, e);
}

void timer_stop(heap *h, timer *t)
{
  if (!t->idx) return;
  size_t i = t->idx - 1;
  t->idx = 0;
  h->n--;
  if (i == h->n) return;
  heap_place(h, i, h->v[h->n]);
  if (i > 0 && h->v[(i - 1) / 2].at > h->v[i].at) heap_up(h, i);
  else heap_down(h, i);
}

int timer_start(heap *h, timer *t, uint64_t at)
{
  t->at = at;
  if (t->idx) { /* re-armed: move it from where it is */
    size_t i = t->idx - 1;
    h->v[i].at = at;
    if (i > 0 && h->v[(i - 1) / 2].at > at) heap_up(h, i);
    else heap_down(h, i);
    return 0;
  }
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 64;
    heap_entry *v = realloc(h->v, cap * sizeof *v);
    if (!v) return -1;
    h->v = v;
    h->cap = cap;
  }
  h->v[h->n].at = at;
  h->v[h->n].t = t;
  h->n++;
  heap_up(h, h->n - 1);
  return 0;
}
