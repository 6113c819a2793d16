/* compositor_int.h — the test compositor's internal types and the functions its files share:
 * the store of publications and cached answers (store.c), the wire format (wire.c). */
#ifndef SIPUB_COMPOSITOR_INT_H
#define SIPUB_COMPOSITOR_INT_H

#include "sipub_compositor.h"
#include "sipub.h"

#include <osipparser2/osip_parser.h>

/* ---- a string-keyed hash map (store.c) ------------------------------------------------ */

typedef struct mnode {
  struct mnode *next;
  uint64_t h;
  char *key;
  void *val;
} mnode;

typedef struct map {
  mnode **b;
  size_t n, cap;
} map;

void *store_map_get(const map *m, const char *key);
int store_map_put(map *m, const char *key, void *val);
void *store_map_del(map *m, const char *key);
/* Removes every value for which drop(val) is true (drop frees it). */
void store_map_sweep(map *m, int (*drop)(void *val, void *ud), void *ud);

/* ---- state ---------------------------------------------------------------------------- */

typedef struct entry {
  char *etag, *uri, *event, *body, *ctype;
  size_t body_len;
  uint64_t expires_at;
} entry;

typedef struct cached {
  char *resp;      /* NULL: the request is dropped, its retransmissions too */
  size_t len;
  int code;
  uint64_t ready_at, until;
} cached;

typedef struct delayed {
  uv_timer_t t;
  sipub_compositor *c;
  struct delayed *prev, *next;
  struct sockaddr_storage to;
  size_t len;
  char data[];
} delayed;

struct sipub_compositor {
  uv_loop_t *loop;
  uv_udp_t udp;
  uv_timer_t sweep;
  int port, min_expires, max_expires, default_expires;
  char **events;
  sipub_compositor_hook hook;
  void *hook_ud;
  sipub_compositor_log log;
  void *log_ud;
  map by_etag;  /* etag -> entry */
  map cache;    /* branch + method -> cached */
  delayed *delayed; /* answers waiting for their delay */
  uint64_t rng, counter;
  unsigned long number;
  int closing, refs;
  sipub_compositor_header *hdrs; /* the hook's header list, reused */
  size_t hdrs_cap;
  char *hdrbuf;
  size_t hdrbuf_cap;
  char out[65536]; /* the answer being built */
  char buf[65536]; /* the datagram being read */
};

/* store.c */
void store_entry_free(entry *e);
void store_cached_free(cached *k);
/* store_map_sweep predicates: ud points at the current time (uint64_t) for the first two. */
int store_drop_expired_entry(void *val, void *ud);
int store_drop_old_cached(void *val, void *ud);
int store_drop_all_entries(void *val, void *ud);
int store_drop_all_cached(void *val, void *ud);
char *store_new_etag(sipub_compositor *c);

/* wire.c */
/* Splits the header section into (name, value) pairs for the hook, in c->hdrs. */
size_t wire_scan_headers(sipub_compositor *c, const char *d, size_t hdr_len);
/* Builds the answer to req in c->out; returns its length, 0 on failure. */
size_t wire_build_response(sipub_compositor *c, osip_message_t *req, int code, const char *reason,
                           const char *extra, const char *src_host, int src_port);
void wire_appendf(char *buf, size_t size, const char *f, const char *name, const char *value);
const char *wire_header_value(osip_message_t *m, const char *name);
/* An Expires value: -1 absent, -2 malformed. */
long wire_parse_expires(const char *s);
/* The event package of an Event value, NULL when absent or empty, "" when too long. */
const char *wire_event_package(const char *v, char *buf, size_t size);

#endif
