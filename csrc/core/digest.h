/* digest.h — HTTP digest authentication for SIP requests (RFC 3261 §22, RFC 7616/8760):
 * reading challenges, choosing one, computing responses with OpenSSL. Internal to the core. */
#ifndef SIPUB_DIGEST_H
#define SIPUB_DIGEST_H

#include <stddef.h>
#include <stdint.h>

typedef enum { DG_MD5 = 0, DG_SHA256 = 1, DG_SHA512_256 = 2, DG_NHASH = 3 } dg_hash;
typedef enum { DG_QOP_NONE = 0, DG_QOP_AUTH = 1, DG_QOP_AUTH_INT = 2 } dg_qop;

typedef struct dg_challenge {
  int proxy;         /* from Proxy-Authenticate (407) rather than WWW-Authenticate (401) */
  char *realm, *nonce, *opaque; /* unquoted; opaque may be NULL */
  dg_hash hash;
  int sess;          /* the -sess variant */
  int algorithm_given; /* the challenge named its algorithm (echoed in the answer) */
  dg_qop qop;        /* the qop this client will use */
  int stale;
} dg_challenge;

typedef struct dg_credentials {
  const char *user;
  const char *password;      /* NULL when only HA1 values are known */
  const char *ha1[DG_NHASH]; /* precomputed H(user:realm:password) per hash, or NULL */
  const char *realm;         /* answer only this realm, or NULL */
} dg_credentials;

/* Reads one challenge header value ("Digest realm=..., nonce=..."). Returns 0 when it is a
 * digest challenge this client can answer (algorithm and qop supported). */
int dg_parse(const char *value, int proxy, dg_challenge *out);
/* The same from a header libosip2 already parsed (an osip_www_authenticate_t). */
int dg_from_header(const void *header, int proxy, dg_challenge *out);
void dg_clear(dg_challenge *c);
int dg_copy(dg_challenge *dst, const dg_challenge *src);

/* 1 when cr can answer c (realm allowed, a password or an HA1 for its hash). */
int dg_usable(const dg_challenge *c, const dg_credentials *cr);
/* Strength for choosing among challenges (RFC 8760: SHA-512-256 > SHA-256 > MD5). */
int dg_strength(const dg_challenge *c);

/* The request-digest (lower-case hex) into out (at least 129 bytes); 0 or -1. */
int dg_response(const dg_challenge *c, const dg_credentials *cr, const char *method,
                const char *uri, const char *body, size_t body_len, uint32_t nc,
                const char *cnonce, char *out);
/* The Authorization / Proxy-Authorization value, malloc'd; NULL on failure. A fresh cnonce
 * is drawn from OpenSSL's random generator. */
char *dg_authorization(const dg_challenge *c, const dg_credentials *cr, const char *method,
                       const char *uri, const char *body, size_t body_len, uint32_t nc);

/* Parses an algorithm name ("MD5", "SHA-256-sess", ...); -1 when unsupported. */
int dg_algorithm(const char *name, dg_hash *hash, int *sess);
/* Hex digest of data with hash into out (at least 129 bytes); 0 or -1. */
int dg_hex(dg_hash hash, const char *data, size_t len, char *out);

#endif
