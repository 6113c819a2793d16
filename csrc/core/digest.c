/* digest.c — digest challenges read with libosip2's header parser and answered with
 * OpenSSL's hashes (MD5, SHA-256, SHA-512/256), qop auth, auth-int or none (RFC 2069). */
#include "digest.h"
#include "msg.h"
#include "sipub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <osipparser2/osip_parser.h>

static const char *const hash_names[DG_NHASH] = { "MD5", "SHA-256", "SHA-512-256" };

static const EVP_MD *md_of(dg_hash h)
{
  switch (h) {
  case DG_MD5: return EVP_md5();
  case DG_SHA256: return EVP_sha256();
  case DG_SHA512_256: return EVP_sha512_256();
  default: return NULL;
  }
}

int dg_hex(dg_hash hash, const char *data, size_t len, char *out)
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  const EVP_MD *type = md_of(hash);
  if (!type || !EVP_Digest(data, len, md, &n, type, NULL)) return -1;
  for (unsigned int i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", md[i]);
  out[2 * n] = '\0';
  return 0;
}

int dg_algorithm(const char *name, dg_hash *hash, int *sess)
{
  for (int h = 0; h < DG_NHASH; h++) {
    size_t n = strlen(hash_names[h]);
    if (strncasecmp(name, hash_names[h], n) == 0) {
      if (name[n] == '\0') { *hash = (dg_hash)h; *sess = 0; return 0; }
      if (strcasecmp(name + n, "-sess") == 0) { *hash = (dg_hash)h; *sess = 1; return 0; }
    }
  }
  return -1;
}

/* libosip2 keeps quoted-strings with their quotes and escapes. */
static char *unquote(const char *s)
{
  if (!s) return NULL;
  size_t n = strlen(s);
  if (n < 2 || s[0] != '"' || s[n - 1] != '"') return strdup(s);
  char *out = malloc(n), *o = out;
  if (!out) return NULL;
  for (size_t i = 1; i + 1 < n; i++) {
    if (s[i] == '\\' && i + 2 < n) i++;
    *o++ = s[i];
  }
  *o = '\0';
  return out;
}

/* qop-options is a quoted, comma-separated list: take auth when offered, else auth-int. */
static int pick_qop(const char *options, dg_qop *qop)
{
  if (!options) { *qop = DG_QOP_NONE; return 0; }
  char *list = unquote(options);
  if (!list) return -1;
  int auth = 0, auth_int = 0;
  char *save = NULL;
  for (char *t = strtok_r(list, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
    if (strcasecmp(t, "auth") == 0) auth = 1;
    else if (strcasecmp(t, "auth-int") == 0) auth_int = 1;
  }
  free(list);
  if (!auth && !auth_int) return -1;
  *qop = auth ? DG_QOP_AUTH : DG_QOP_AUTH_INT;
  return 0;
}

void dg_clear(dg_challenge *c)
{
  free(c->realm);
  free(c->nonce);
  free(c->opaque);
  memset(c, 0, sizeof *c);
}

int dg_copy(dg_challenge *dst, const dg_challenge *src)
{
  *dst = *src;
  dst->realm = strdup(src->realm);
  dst->nonce = strdup(src->nonce);
  dst->opaque = src->opaque ? strdup(src->opaque) : NULL;
  if (!dst->realm || !dst->nonce || (src->opaque && !dst->opaque)) {
    dg_clear(dst);
    return -1;
  }
  return 0;
}

int dg_parse(const char *value, int proxy, dg_challenge *out)
{
  osip_www_authenticate_t *w = NULL;
  memset(out, 0, sizeof *out);
  if (!value || osip_www_authenticate_init(&w) != 0) return -1;
  int rc = osip_www_authenticate_parse(w, value) == 0 ? dg_from_header(w, proxy, out) : -1;
  osip_www_authenticate_free(w);
  return rc;
}

int dg_from_header(const void *header, int proxy, dg_challenge *out)
{
  const osip_www_authenticate_t *w = header;
  int rc = -1;
  memset(out, 0, sizeof *out);
  if (!w->auth_type || strcasecmp(w->auth_type, "Digest") != 0 || !w->realm || !w->nonce)
    goto done;
  out->proxy = proxy;
  if (w->algorithm) {
    char *alg = unquote(w->algorithm);
    int bad = !alg || dg_algorithm(alg, &out->hash, &out->sess) != 0;
    free(alg);
    if (bad) goto done;
    out->algorithm_given = 1;
  } else {
    out->hash = DG_MD5;
  }
  if (pick_qop(w->qop_options, &out->qop) != 0) goto done;
  if (w->stale) {
    char *st = unquote(w->stale);
    out->stale = st && strcasecmp(st, "true") == 0;
    free(st);
  }
  out->realm = unquote(w->realm);
  out->nonce = unquote(w->nonce);
  out->opaque = w->opaque ? unquote(w->opaque) : NULL;
  if (!out->realm || !out->nonce || (w->opaque && !out->opaque)) goto done;
  rc = 0;
done:
  if (rc != 0) dg_clear(out);
  return rc;
}

int dg_usable(const dg_challenge *c, const dg_credentials *cr)
{
  if (!cr->user) return 0;
  if (cr->realm && strcmp(cr->realm, c->realm) != 0) return 0;
  return cr->password != NULL || cr->ha1[c->hash] != NULL;
}

int dg_strength(const dg_challenge *c)
{
  return (int)c->hash;
}

static int hash_of(dg_hash h, char *s, char *out)
{
  int rc = s ? dg_hex(h, s, strlen(s), out) : -1;
  if (s) {
    OPENSSL_cleanse(s, strlen(s)); /* inputs may hold the password */
    free(s);
  }
  return rc;
}

int dg_response(const dg_challenge *c, const dg_credentials *cr, const char *method,
                const char *uri, const char *body, size_t body_len, uint32_t nc,
                const char *cnonce, char *out)
{
  char ha1[129], ha2[129], hbody[129], ncs[9];
  if (cr->ha1[c->hash] && !cr->password) {
    snprintf(ha1, sizeof ha1, "%s", cr->ha1[c->hash]);
  } else if (!cr->password ||
             hash_of(c->hash, msg_format("%s:%s:%s", cr->user, c->realm, cr->password), ha1) != 0) {
    return -1;
  }
  if (c->sess && hash_of(c->hash, msg_format("%s:%s:%s", ha1, c->nonce, cnonce), ha1) != 0) return -1;
  if (c->qop == DG_QOP_AUTH_INT) {
    if (dg_hex(c->hash, body ? body : "", body ? body_len : 0, hbody) != 0 ||
        hash_of(c->hash, msg_format("%s:%s:%s", method, uri, hbody), ha2) != 0)
      return -1;
  } else if (hash_of(c->hash, msg_format("%s:%s", method, uri), ha2) != 0) {
    return -1;
  }
  snprintf(ncs, sizeof ncs, "%08x", (unsigned)nc);
  int rc;
  if (c->qop == DG_QOP_NONE)
    rc = hash_of(c->hash, msg_format("%s:%s:%s", ha1, c->nonce, ha2), out);
  else
    rc = hash_of(c->hash, msg_format("%s:%s:%s:%s:%s:%s", ha1, c->nonce, ncs, cnonce,
                               c->qop == DG_QOP_AUTH ? "auth" : "auth-int", ha2), out);
  OPENSSL_cleanse(ha1, sizeof ha1);
  return rc;
}

/* A quoted-string for a header parameter: quotes and backslashes escaped; malloc'd. */
static char *quoted(const char *s)
{
  char *out = malloc(strlen(s) * 2 + 3), *o = out;
  if (!out) return NULL;
  *o++ = '"';
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') *o++ = '\\';
    *o++ = *s;
  }
  *o++ = '"';
  *o = '\0';
  return out;
}

char *dg_authorization(const dg_challenge *c, const dg_credentials *cr, const char *method,
                       const char *uri, const char *body, size_t body_len, uint32_t nc)
{
  unsigned char rnd[16];
  char cnonce[33], resp[129], qop[96] = "", *out = NULL;
  if (RAND_bytes(rnd, sizeof rnd) != 1) return NULL;
  for (size_t i = 0; i < sizeof rnd; i++) sprintf(cnonce + 2 * i, "%02x", rnd[i]);
  if (dg_response(c, cr, method, uri, body, body_len, nc, cnonce, resp) != 0) return NULL;
  if (c->qop != DG_QOP_NONE)
    snprintf(qop, sizeof qop, ", qop=%s, nc=%08x, cnonce=\"%s\"",
             c->qop == DG_QOP_AUTH ? "auth" : "auth-int", (unsigned)nc, cnonce);
  char *user = quoted(cr->user), *realm = quoted(c->realm), *nonce = quoted(c->nonce);
  char *quri = quoted(uri), *opaque = c->opaque ? quoted(c->opaque) : NULL;
  if (user && realm && nonce && quri && (!c->opaque || opaque))
    out = msg_format("Digest username=%s, realm=%s, nonce=%s, uri=%s, response=\"%s\", algorithm=%s%s%s%s%s",
               user, realm, nonce, quri, resp, hash_names[c->hash], c->sess ? "-sess" : "", qop,
               opaque ? ", opaque=" : "", opaque ? opaque : "");
  free(user);
  free(realm);
  free(nonce);
  free(quri);
  free(opaque);
  return out;
}

int sipub_digest_response(const sipub_digest_input *in, char out[129])
{
  dg_challenge c;
  dg_credentials cr;
  memset(&c, 0, sizeof c);
  memset(&cr, 0, sizeof cr);
  if (dg_algorithm(in->algorithm ? in->algorithm : "MD5", &c.hash, &c.sess) != 0) return SIPUB_EINVAL;
  if (!in->qop) c.qop = DG_QOP_NONE;
  else if (strcmp(in->qop, "auth") == 0) c.qop = DG_QOP_AUTH;
  else if (strcmp(in->qop, "auth-int") == 0) c.qop = DG_QOP_AUTH_INT;
  else return SIPUB_EINVAL;
  c.realm = (char *)in->realm;
  c.nonce = (char *)in->nonce;
  cr.user = in->user;
  cr.password = in->password;
  cr.ha1[c.hash] = in->ha1;
  if (!c.realm || !c.nonce || !cr.user || !in->method || !in->uri) return SIPUB_EINVAL;
  return dg_response(&c, &cr, in->method, in->uri, in->body, in->body_len, in->nc,
                     in->cnonce ? in->cnonce : "", out) == 0 ? 0 : SIPUB_EINVAL;
}
