/* store.c — the test compositor's state: a string-keyed hash map, the publications it holds
 * by entity-tag, the answers cached for retransmissions, and the calls that list them. */
#include "compositor_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_str(const char *s)
{
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static int map_grow(map *m)
{
  size_t cap = m->cap ? m->cap * 2 : 256;
  mnode **b = calloc(cap, sizeof *b);
  if (!b) return -1;
  for (size_t i = 0; i < m->cap; i++) {
    for (mnode *x = m->b[i], *next; x; x = next) {
      next = x->next;
      x->next = b[x->h & (cap - 1)];
      b[x->h & (cap - 1)] = x;
    }
  }
  free(m->b);
  m->b = b;
  m->cap = cap;
  return 0;
}

void *store_map_get(const map *m, const char *key)
{
  if (!m->cap) return NULL;
  uint64_t h = hash_str(key);
  for (mnode *x = m->b[h & (m->cap - 1)]; x; x = x->next)
    if (x->h == h && strcmp(x->key, key) == 0) return x->val;
  return NULL;
}

int store_map_put(map *m, const char *key, void *val)
{
  if (m->n + 1 > m->cap && map_grow(m) != 0) return -1;
  mnode *x = malloc(sizeof *x);
  if (!x || !(x->key = strdup(key))) { free(x); return -1; }
  x->h = hash_str(key);
  x->val = val;
  x->next = m->b[x->h & (m->cap - 1)];
  m->b[x->h & (m->cap - 1)] = x;
  m->n++;
  return 0;
}

void *store_map_del(map *m, const char *key)
{
  if (!m->cap) return NULL;
  uint64_t h = hash_str(key);
  for (mnode **pp = &m->b[h & (m->cap - 1)]; *pp; pp = &(*pp)->next) {
    mnode *x = *pp;
    if (x->h == h && strcmp(x->key, key) == 0) {
      void *v = x->val;
      *pp = x->next;
      free(x->key);
      free(x);
      m->n--;
      return v;
    }
  }
  return NULL;
}

void store_map_sweep(map *m, int (*drop)(void *val, void *ud), void *ud)
{
  for (size_t i = 0; i < m->cap; i++) {
    for (mnode **pp = &m->b[i]; *pp;) {
      mnode *x = *pp;
      if (drop(x->val, ud)) {
        *pp = x->next;
        free(x->key);
        free(x);
        m->n--;
      } else {
        pp = &x->next;
      }
    }
  }
}

void store_entry_free(entry *e)
{
  free(e->etag);
  free(e->uri);
  free(e->event);
  free(e->body);
  free(e->ctype);
  free(e);
}

void store_cached_free(cached *k)
{
  free(k->resp);
  free(k);
}

int store_drop_expired_entry(void *val, void *ud)
{
  entry *e = val;
  if (e->expires_at > *(uint64_t *)ud) return 0;
  store_entry_free(e);
  return 1;
}

int store_drop_old_cached(void *val, void *ud)
{
  cached *k = val;
  if (k->until > *(uint64_t *)ud) return 0;
  store_cached_free(k);
  return 1;
}

int store_drop_all_entries(void *val, void *ud)
{
  store_entry_free(val);
  return 1;
}

int store_drop_all_cached(void *val, void *ud)
{
  store_cached_free(val);
  return 1;
}

char *store_new_etag(sipub_compositor *c)
{
  uint64_t z = (c->rng += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  char buf[40];
  snprintf(buf, sizeof buf, "%llx.%08x", (unsigned long long)++c->counter, (unsigned)(z ^ (z >> 31)));
  return strdup(buf);
}

size_t sipub_compositor_count(sipub_compositor *c)
{
  uv_update_time(c->loop); /* may be called between loop runs */
  uint64_t now = uv_now(c->loop);
  store_map_sweep(&c->by_etag, store_drop_expired_entry, &now);
  return c->by_etag.n;
}

void sipub_compositor_each(sipub_compositor *c, sipub_compositor_each_fn fn, void *ud)
{
  uv_update_time(c->loop);
  uint64_t now = uv_now(c->loop);
  store_map_sweep(&c->by_etag, store_drop_expired_entry, &now);
  for (size_t i = 0; i < c->by_etag.cap; i++)
    for (mnode *x = c->by_etag.b[i]; x; x = x->next) {
      entry *e = x->val;
      fn(ud, e->uri, e->event, e->etag, e->body, e->body_len, e->ctype,
         (double)(e->expires_at - now) / 1000.0);
    }
}

void sipub_compositor_clear(sipub_compositor *c)
{
  store_map_sweep(&c->by_etag, store_drop_all_entries, NULL);
  store_map_sweep(&c->cache, store_drop_all_cached, NULL);
}
