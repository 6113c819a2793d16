/* lsipub.c — luaopen_sip_core: the module table, built by each part of the binding's *_open
 * function (luasystem style), and the few module functions that belong to no part. */
#include "lsipub.h"
#include "sipub.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char lsipub_loop_key, lsipub_deliver_key, lsipub_response_mt_key, lsipub_error_key,
    lsipub_mainthread_key;

/* The context field holding the handlers of each event kind (see sip/emitter.lua), in the
 * order of sipub_event_kind. */
const char *const lsipub_handler_keys[] = { "_on_progress", "_on_published", "_on_failed",
                                            "_on_unpublished" };

/* core.set_dispatch(deliver, response_mt): the function that runs a list of handlers
 * (Emitter.deliver) and the metatable of response objects. */
static int l_set_dispatch(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lsipub_response_mt_key);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lsipub_deliver_key);
  return 0;
}

static int l_set_error_handler(lua_State *L)
{
  if (!lua_isnil(L, 1)) luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lsipub_error_key);
  return 0;
}

/* core.digest{ algorithm, user, realm, password | ha1, nonce, cnonce, nc, qop, method, uri,
 *              body } -> the request-digest (hex), as a client answering that challenge. */
static int l_digest(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  sipub_digest_input in;
  memset(&in, 0, sizeof in);
  in.algorithm = lsipub_opt_string(L, 1, "algorithm");
  in.qop = lsipub_opt_string(L, 1, "qop");
  in.realm = lsipub_opt_string(L, 1, "realm");
  in.nonce = lsipub_opt_string(L, 1, "nonce");
  in.user = lsipub_opt_string(L, 1, "user");
  in.password = lsipub_opt_string(L, 1, "password");
  in.ha1 = lsipub_opt_string(L, 1, "ha1");
  in.method = lsipub_opt_string(L, 1, "method");
  in.uri = lsipub_opt_string(L, 1, "uri");
  in.cnonce = lsipub_opt_string(L, 1, "cnonce");
  lua_getfield(L, 1, "body");
  in.body = lua_tolstring(L, -1, &in.body_len);
  lua_pop(L, 1);
  in.nc = (uint32_t)lsipub_opt_integer(L, 1, "nc", 1);
  char out[129];
  int rc = sipub_digest_response(&in, out);
  if (rc != 0) {
    sipub_digest_input probe = { in.algorithm, NULL, "r", "n", NULL, "u", "p", NULL, "M", "u", NULL, 0, 1 };
    char tmp[129];
    if (sipub_digest_response(&probe, tmp) != 0) return luaL_error(L, "unsupported algorithm");
    if (in.qop && strcmp(in.qop, "auth") != 0 && strcmp(in.qop, "auth-int") != 0)
      return luaL_error(L, "unsupported qop");
    return luaL_error(L, "digest: missing or invalid fields");
  }
  lua_pushstring(L, out);
  return 1;
}

static int l_reason_phrases(lua_State *L)
{
  const char *phrase;
  int code;
  lua_newtable(L);
  for (size_t i = 0; (code = sipub_reason_phrase_at(i, &phrase)) != 0; i++) {
    lua_pushstring(L, phrase);
    lua_rawseti(L, -2, code);
  }
  return 1;
}

void lsipub_new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc)
{
  luaL_newmetatable(L, name);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}

__attribute__((visibility("default"))) int luaopen_sip_core(lua_State *L)
{
  static const luaL_Reg funcs[] = {
    { "digest", l_digest }, { "set_dispatch", l_set_dispatch },
    { "set_error_handler", l_set_error_handler }, { "reason_phrases", l_reason_phrases },
    { NULL, NULL }
  };
  sipub_global_init();
  luaL_newlib(L, funcs);
  lsipub_loop_open(L); /* first: the loop is finalized last */
  lsipub_ua_open(L);
  lsipub_pub_open(L);
  lsipub_compositor_open(L);
  lua_pushstring(L, SIPUB_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushstring(L, SIPUB_CAUSE_REQUEST_TIMEOUT);
  lua_setfield(L, -2, "REQUEST_TIMEOUT");
  lua_pushstring(L, SIPUB_CAUSE_CONNECTION_ERROR);
  lua_setfield(L, -2, "CONNECTION_ERROR");
  lua_pushstring(L, SIPUB_CAUSE_PROTOCOL_ERROR);
  lua_setfield(L, -2, "PROTOCOL_ERROR");
  return 1;
}

int lsipub_error_at(lua_State *L, int level, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  luaL_where(L, level);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_concat(L, 2);
  return lua_error(L);
}
