/* lua_pub.c — publications as userdata, the context methods that run on every call (on,
 * publish, unpublish, close, __index) and ua:publish's usual case, in C. */
#include "lsipub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <osipparser2/osip_parser.h>

static lua_pub *wrap_pub(lua_State *L, lua_ua *u, sipub_pub *pub, int ua_idx, int ctx_idx);
static const char *rc_message(int rc);


/* ua:pub_new(ctx, target, event, content_type, expires, extra_headers, unpublish_on_close,
 *            etag) */
int lsipub_l_pub_new(lua_State *L)
{
  lua_ua *u = lsipub_check_ua(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  sipub_pub_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.target = luaL_checkstring(L, 3);
  cfg.event = luaL_checkstring(L, 4);
  cfg.content_type = luaL_optstring(L, 5, NULL);
  cfg.expires = (int)luaL_checkinteger(L, 6);
  cfg.unpublish_on_close = lua_toboolean(L, 8);
  cfg.etag = luaL_optstring(L, 9, NULL);
  const char *lines[65];
  size_t n = 0;
  if (!lua_isnoneornil(L, 7)) {
    luaL_checktype(L, 7, LUA_TTABLE);
    n = (size_t)lua_rawlen(L, 7);
    luaL_argcheck(L, n < sizeof lines / sizeof lines[0], 7, "too many extra headers (64 at most)");
    for (size_t i = 0; i < n; i++) {
      lua_rawgeti(L, 7, (lua_Integer)i + 1);
      lines[i] = lua_tostring(L, -1);
      luaL_argcheck(L, lines[i] != NULL, 7, "extra headers must be strings");
      lua_pop(L, 1); /* still referenced by the table */
    }
  }
  lines[n] = NULL;
  cfg.extra_headers = lines;

  int err = 0;
  sipub_pub *pub = sipub_pub_new(u->core, &cfg, &err);
  if (!pub) {
    if (err == SIPUB_ECLOSED) return luaL_error(L, "the user agent is closed");
    if (err == SIPUB_ENOMEM) return luaL_error(L, "out of memory");
    return luaL_error(L, "invalid publication (target, event, content type or extra headers)");
  }
  wrap_pub(L, u, pub, 1, 2);
  return 1;
}

/* Pushes the userdata of a new publication of the UA at ua_idx, anchoring the context at
 * ctx_idx. */
static lua_pub *wrap_pub(lua_State *L, lua_ua *u, sipub_pub *pub, int ua_idx, int ctx_idx)
{
  lua_pub *lp = lua_newuserdata(L, sizeof *lp);
  lp->pub = pub;
  lp->ua = u;
  lp->ctx_ref = LUA_NOREF;
  lp->next = NULL;
  lp->prev = u->last;
  if (u->last) u->last->next = lp; else u->first = lp;
  u->last = lp;
  sipub_pub_set_user(pub, lp); /* from here on, l_pub_gc releases it */
  luaL_setmetatable(L, PUB_MT);
  /* The UA outlives its publications: its userdata is the user value (Lua 5.1: the table
   * the UA shares with all its publications). */
#if LUA_VERSION_NUM >= 503
  lua_pushvalue(L, ua_idx);
#else
  lua_getuservalue(L, ua_idx);
#endif
  lua_setuservalue(L, -2);
  lua_pushvalue(L, ctx_idx);
  lp->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return lp;
}

static lua_pub *check_pub(lua_State *L)
{
  lua_pub *lp = luaL_checkudata(L, 1, PUB_MT);
  if (!lp->pub || !lp->ua || !lp->ua->core) luaL_argerror(L, 1, "the publication has been released");
  return lp;
}


static int pub_result(lua_State *L, lua_pub *lp, lua_State *saved, int rc)
{
  lsipub_leave(L, lp->ua, saved);
  if (lp->ua->core) lsipub_unanchor(L, lp);
  if (rc == SIPUB_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, rc_message(rc));
  return 2;
}

static int l_pub_publish(lua_State *L)
{
  lua_pub *lp = check_pub(L);
  size_t len = 0;
  const char *body = luaL_optlstring(L, 2, NULL, &len);
  lua_State *saved = lsipub_enter(L, lp->ua);
  return pub_result(L, lp, saved, sipub_pub_publish(lp->pub, body, len));
}

static int l_pub_resume(lua_State *L)
{
  lua_pub *lp = check_pub(L);
  size_t len = 0;
  const char *body = luaL_checklstring(L, 2, &len);
  lua_State *saved = lsipub_enter(L, lp->ua);
  return pub_result(L, lp, saved, sipub_pub_resume(lp->pub, body, len));
}

/* Nothing once the publication is closed (closing already unpublished it, or forgot it). */
static int l_pub_unpublish(lua_State *L)
{
  lua_pub *lp = check_pub(L);
  if (sipub_pub_closed(lp->pub)) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_State *saved = lsipub_enter(L, lp->ua);
  return pub_result(L, lp, saved, sipub_pub_unpublish(lp->pub));
}

static int l_pub_close(lua_State *L)
{
  lua_pub *lp = check_pub(L);
  lua_State *saved = lsipub_enter(L, lp->ua);
  return pub_result(L, lp, saved, sipub_pub_close(lp->pub));
}

static int l_pub_etag(lua_State *L)
{
  lua_pub *lp = check_pub(L);
  const char *e = sipub_pub_etag(lp->pub);
  if (e) lua_pushstring(L, e); else lua_pushnil(L);
  return 1;
}

/* "closed" once closed, else "published" while an entity-tag is held, else "idle". */
static int l_pub_state(lua_State *L)
{
  lua_pub *lp = check_pub(L);
  lua_pushstring(L, sipub_pub_closed(lp->pub) ? "closed" : sipub_pub_etag(lp->pub) ? "published" : "idle");
  return 1;
}

static int l_pub_active(lua_State *L)
{
  lua_pub *lp = check_pub(L);
  lua_pushboolean(L, sipub_pub_active(lp->pub));
  return 1;
}

static int l_pub_gc(lua_State *L)
{
  lua_pub *lp = luaL_checkudata(L, 1, PUB_MT);
  lua_ua *u = lp->ua;
  if (u) {
    if (lp->pub && u->core) sipub_pub_release(lp->pub);
    if (lp->prev) lp->prev->next = lp->next; else u->first = lp->next;
    if (lp->next) lp->next->prev = lp->prev; else u->last = lp->prev;
  }
  lp->pub = NULL;
  lp->ua = NULL;
  lp->prev = lp->next = NULL;
  return 0;
}

/* ---- context methods ------------------------------------------------------------------- */

/* The methods that run on every event or publication (sip/context.lua installs them), in C
 * so that a call costs one call: the usual case is done here, every other one (an argument
 * to refuse with its message, a second handler, a `once`, a handle that is not ours) goes to
 * the Lua function of the same name in upvalue 1, which raises one level further up. */

static const char *rc_message(int rc)
{
  return rc == SIPUB_ENOSTATE ? "nothing is published to refresh"
       : rc == SIPUB_ECLOSED ? "closed"
       : rc == SIPUB_ENOMEM ? "out of memory" : "invalid argument";
}

/* Calls the Lua fallback named `name` with the arguments as given; returns its results. */
static int ctx_slow(lua_State *L, const char *name)
{
  int n = lua_gettop(L);
  lua_getfield(L, lua_upvalueindex(1), name);
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

/* The publication of the context at index 1 (its _h field, a userdata whose metatable is
 * upvalue 2: the publications' one), or NULL. */
static lua_pub *ctx_pub(lua_State *L)
{
  if (lua_type(L, 1) != LUA_TTABLE) return NULL;
  lua_pushliteral(L, "_h");
  lua_rawget(L, 1);
  lua_pub *lp = NULL;
  if (lua_type(L, -1) == LUA_TUSERDATA && lua_getmetatable(L, -1)) {
    if (lua_rawequal(L, -1, lua_upvalueindex(2))) lp = lua_touserdata(L, -2);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (!lp || !lp->pub || !lp->ua || !lp->ua->core) return NULL;
  return lp;
}

/* Index of event (a string at idx) in handler_keys, or -1. */
static int event_index(lua_State *L, int idx)
{
  static const char *const names[] = { "progress", "published", "failed", "unpublished" };
  if (lua_type(L, idx) != LUA_TSTRING) return -1;
  const char *e = lua_tostring(L, idx);
  for (int i = 0; i < 4; i++)
    if (strcmp(e, names[i]) == 0) return i;
  return -1;
}

/* ctx:on(event, fn) when event has no handler yet: the function is the field's value. */
static int ctx_on(lua_State *L)
{
  int k = event_index(L, 2);
  if (k < 0 || lua_type(L, 1) != LUA_TTABLE || lua_type(L, 3) != LUA_TFUNCTION || lua_gettop(L) != 3)
    return ctx_slow(L, "on");
  lua_pushstring(L, lsipub_handler_keys[k]);
  lua_pushvalue(L, -1);
  if (lua_rawget(L, 1) != LUA_TNIL) {
    lua_settop(L, 3);
    return ctx_slow(L, "on");
  }
  lua_pop(L, 1);
  lua_pushvalue(L, 3);
  lua_rawset(L, 1);
  lua_settop(L, 1);
  return 1;
}

/* ctx:publish([body]): initial or modify with a body, a refresh without one (or with ""). */
static int ctx_publish(lua_State *L)
{
  int t = lua_type(L, 2);
  lua_pub *lp = ctx_pub(L);
  if (!lp || (t != LUA_TNIL && t != LUA_TNONE && t != LUA_TSTRING)) return ctx_slow(L, "publish");
  size_t len = 0;
  const char *body = t == LUA_TSTRING ? lua_tolstring(L, 2, &len) : NULL;
  if (body && len == 0) body = NULL;
  lua_State *saved = lsipub_enter(L, lp->ua);
  int rc = sipub_pub_publish(lp->pub, body, len);
  lsipub_leave(L, lp->ua, saved);
  if (lp->ua->core) lsipub_unanchor(L, lp);
  if (rc == SIPUB_ECLOSED) return luaL_error(L, "sip: publish on a closed context");
  if (rc != SIPUB_OK) return luaL_error(L, "sip: cannot publish: %s", rc_message(rc));
  if (body) {
    lua_pushliteral(L, "body");
    lua_pushvalue(L, 2);
    lua_rawset(L, 1);
  }
  lua_settop(L, 1);
  return 1;
}

/* ctx:unpublish() and ctx:close(): op on the publication unless it is closed already. */
static int ctx_call(lua_State *L, const char *name, int (*op)(sipub_pub *))
{
  lua_pub *lp = ctx_pub(L);
  if (!lp) return ctx_slow(L, name);
  if (!sipub_pub_closed(lp->pub)) {
    lua_State *saved = lsipub_enter(L, lp->ua);
    op(lp->pub);
    lsipub_leave(L, lp->ua, saved);
    if (lp->ua->core) lsipub_unanchor(L, lp);
  }
  lua_settop(L, 1);
  return 1;
}

/* ctx:unpublish(): removes the published state; nothing once the context is closed. */
static int ctx_unpublish(lua_State *L) { return ctx_call(L, "unpublish", sipub_pub_unpublish); }

/* ctx:close(): unpublishes (unpublishOnClose) or forgets the state; idempotent. */
static int ctx_close(lua_State *L) { return ctx_call(L, "close", sipub_pub_close); }

/* Context.__index: a method (upvalue 1: the methods table), else etag or state from the
 * core. */
static int ctx_index(lua_State *L)
{
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL || lua_type(L, 2) != LUA_TSTRING) return 1;
  const char *k = lua_tostring(L, 2);
  int etag = strcmp(k, "etag") == 0;
  if (!etag && strcmp(k, "state") != 0) return 1; /* nil */
  lua_pushliteral(L, "_h");
  lua_rawget(L, 1);
  lua_pub *lp = luaL_testudata(L, -1, PUB_MT);
  if (!lp || !lp->pub || !lp->ua || !lp->ua->core)
    return luaL_error(L, "sip: the context has no publication");
  if (etag) {
    const char *e = sipub_pub_etag(lp->pub);
    if (e) lua_pushstring(L, e); else lua_pushnil(L);
  } else {
    lua_pushstring(L, sipub_pub_closed(lp->pub) ? "closed" : sipub_pub_etag(lp->pub) ? "published" : "idle");
  }
  return 1;
}

/* core.context_methods(methods, fallbacks) -> { on, publish, unpublish, close, __index }:
 * the C methods (upvalues: the Lua fallbacks of the same names, the publications'
 * metatable) and the __index function of contexts over the methods table. */
static int l_context_methods(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  static const luaL_Reg fns[] = {
    { "on", ctx_on }, { "publish", ctx_publish }, { "unpublish", ctx_unpublish },
    { "close", ctx_close }, { NULL, NULL }
  };
  lua_createtable(L, 0, 5);
  for (const luaL_Reg *f = fns; f->name; f++) {
    lua_pushvalue(L, 2);
    luaL_getmetatable(L, PUB_MT);
    lua_pushcclosure(L, f->func, 2);
    lua_setfield(L, -2, f->name);
  }
  lua_pushvalue(L, 1);
  lua_pushcclosure(L, ctx_index, 1);
  lua_setfield(L, -2, "__index");
  return 1;
}

/* Parses s as a URI that also reads back inside <> (To, From: otherwise no request could
 * carry it); NULL when it does not, or when a port is not 1..65535. */
static osip_uri_t *parse_uri(const char *s, size_t len, long *port)
{
  osip_uri_t *u = NULL;
  sipub_global_init();
  *port = 0;
  if (strlen(s) != len || osip_uri_init(&u) != 0) return NULL;
  if (osip_uri_parse(u, s) != 0 || !u->scheme || !u->host || !*u->host) {
    osip_uri_free(u);
    return NULL;
  }
  osip_from_t *f = NULL;
  char *na = malloc(len + 3);
  int in_name_addr = 0;
  if (na) {
    na[0] = '<';
    memcpy(na + 1, s, len);
    na[len + 1] = '>';
    na[len + 2] = '\0';
    in_name_addr = osip_from_init(&f) == 0 && osip_from_parse(f, na) == 0;
    osip_from_free(f);
    free(na);
  }
  if (in_name_addr && u->port) {
    char *end;
    *port = strtol(u->port, &end, 10);
    if (*end || *port <= 0 || *port > 65535) in_name_addr = 0;
  }
  if (!in_name_addr) {
    osip_uri_free(u);
    return NULL;
  }
  return u;
}

/* core.parse_uri(s) -> { scheme, user, host, port } or nil */
static int l_parse_uri(lua_State *L)
{
  size_t len;
  long port;
  const char *s = luaL_checklstring(L, 1, &len);
  osip_uri_t *u = parse_uri(s, len, &port);
  if (!u) return 0;
  lua_createtable(L, 0, 4);
  lua_pushstring(L, u->scheme);
  lua_setfield(L, -2, "scheme");
  if (u->username) {
    lua_pushstring(L, u->username);
    lua_setfield(L, -2, "user");
  }
  lua_pushstring(L, u->host);
  lua_setfield(L, -2, "host");
  if (port) {
    lua_pushinteger(L, port);
    lua_setfield(L, -2, "port");
  }
  osip_uri_free(u);
  return 1;
}

/* core.check_target(s) -> nil when s is fit for a publication's target; "control" when it
 * holds a control character (CR, LF, NUL... but tab); "uri" when it is not a sip: or sips:
 * URI that To can carry (no <, > or white space in it). One pass and no table: this runs
 * on every publish. */
static const char *target_problem(const char *s, size_t len)
{
  long port;
  int bad_uri = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c < 32 && c != '\t') || c == 127) return "control";
    if (c == '<' || c == '>' || c == ' ' || c == '\t') bad_uri = 1;
  }
  osip_uri_t *u = bad_uri ? NULL : parse_uri(s, len, &port);
  int ok = u && (osip_strcasecmp(u->scheme, "sip") == 0 || osip_strcasecmp(u->scheme, "sips") == 0);
  if (u) osip_uri_free(u);
  return ok ? NULL : "uri";
}

static int l_check_target(lua_State *L)
{
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  const char *problem = target_problem(s, len);
  if (!problem) return 0;
  lua_pushstring(L, problem);
  return 1;
}

/* ---- ua:publish's usual case ----------------------------------------------------------- */

/* core.publish_fast(ua_core, target, event, body, options) -> ctx | nil, message | nil.
 * Upvalues: the contexts' metatable and the shared empty extraHeaders. Does ua:publish for
 * the usual arguments in one call: a target, event and body that sip/ua.lua accepts, and
 * options nil or a plain table with only contentType and/or expires. Returns nil, and does
 * nothing, for anything else (sip/ua.lua then checks and raises as before); nil and the
 * reason when the publication was made but its PUBLISH could not be (sip/ua.lua raises). */
static int l_publish_fast(lua_State *L)
{
  lua_settop(L, 5);
  lua_ua *u = luaL_testudata(L, 1, UA_MT);
  if (!u || !u->core || u->closing) return 0;
  size_t tlen, elen, blen;
  if (lua_type(L, 2) != LUA_TSTRING || lua_type(L, 3) != LUA_TSTRING || lua_type(L, 4) != LUA_TSTRING)
    return 0;
  const char *target = lua_tolstring(L, 2, &tlen);
  const char *event = lua_tolstring(L, 3, &elen);
  const char *body = lua_tolstring(L, 4, &blen);
  /* The core checks the event's and the content type's grammar on C strings: one with a NUL
   * inside would be cut there, so those go to sip/ua.lua's checks. */
  if (tlen == 0 || elen == 0 || blen == 0 || strlen(event) != elen) return 0;

  /* options: the defaults, or contentType / expires */
  lua_pushliteral(L, "text/plain"); /* 6: content type */
  lua_Integer expires = 3600;
  int t = lua_type(L, 5);
  if (t == LUA_TTABLE) {
    if (lua_getmetatable(L, 5)) return 0;
    lua_pushnil(L);
    while (lua_next(L, 5)) {
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
      if (strcmp(k, "contentType") == 0) {
        size_t clen;
        if (lua_type(L, -1) != LUA_TSTRING || strlen(lua_tolstring(L, -1, &clen)) != clen) return 0;
        lua_copy(L, -1, 6);
      } else if (strcmp(k, "expires") == 0) {
        if (lua_type(L, -1) != LUA_TNUMBER) return 0;
        if (lua_isinteger(L, -1)) {
          expires = lua_tointeger(L, -1);
        } else {
          lua_Number n = lua_tonumber(L, -1);
          if (!(n >= 1 && n <= 2147483647.0) || n != (lua_Number)(lua_Integer)n) return 0;
          expires = (lua_Integer)n;
        }
        if (expires < 1 || expires > 2147483647) return 0;
      } else {
        return 0;
      }
      lua_pop(L, 1);
    }
  } else if (t != LUA_TNIL) {
    return 0;
  }
  if (target_problem(target, tlen)) return 0;

  sipub_pub_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.target = target;
  cfg.event = event;
  cfg.content_type = lua_tostring(L, 6);
  cfg.expires = (int)expires;
  cfg.unpublish_on_close = 1;
  int err = 0;
  lua_State *saved = lsipub_enter(L, u);
  sipub_pub *pub = sipub_pub_new(u->core, &cfg, &err);
  if (!pub) {
    lsipub_leave(L, u, saved);
    return 0; /* sip/ua.lua tries again and raises the error */
  }

  /* ctx.options */
  lua_createtable(L, 0, 4); /* 7 */
  lua_pushliteral(L, "extraHeaders");
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_rawset(L, 7);
  lua_pushliteral(L, "contentType");
  lua_pushvalue(L, 6);
  lua_rawset(L, 7);
  lua_pushliteral(L, "expires");
  lua_pushinteger(L, expires);
  lua_rawset(L, 7);
  lua_pushliteral(L, "unpublishOnClose");
  lua_pushboolean(L, 1);
  lua_rawset(L, 7);
  /* the context: the fields of Context.new */
  lua_createtable(L, 0, 5); /* 8 */
  lua_pushliteral(L, "target");
  lua_pushvalue(L, 2);
  lua_rawset(L, 8);
  lua_pushliteral(L, "event");
  lua_pushvalue(L, 3);
  lua_rawset(L, 8);
  lua_pushliteral(L, "options");
  lua_pushvalue(L, 7);
  lua_rawset(L, 8);
  lua_pushliteral(L, "body");
  lua_pushvalue(L, 4);
  lua_rawset(L, 8);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setmetatable(L, 8);
  lua_pushliteral(L, "_h");
  lua_pub *lp = wrap_pub(L, u, pub, 1, 8);
  lua_rawset(L, 8);

  int rc = sipub_pub_publish(lp->pub, body, blen);
  lsipub_leave(L, u, saved);
  if (u->core) lsipub_unanchor(L, lp);
  if (rc == SIPUB_OK) {
    lua_pushvalue(L, 8);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, rc_message(rc));
  return 2;
}

/* core.publish_fast_for(context_mt, no_headers) -> publish_fast */
static int l_publish_fast_for(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_pushcclosure(L, l_publish_fast, 2);
  return 1;
}

void lsipub_pub_open(lua_State *L)
{
  static const luaL_Reg pub_methods[] = {
    { "publish", l_pub_publish }, { "resume", l_pub_resume }, { "unpublish", l_pub_unpublish },
    { "close", l_pub_close }, { "etag", l_pub_etag }, { "state", l_pub_state },
    { "active", l_pub_active }, { NULL, NULL }
  };
  static const luaL_Reg funcs[] = {
    { "parse_uri", l_parse_uri }, { "check_target", l_check_target },
    { "context_methods", l_context_methods }, { "publish_fast_for", l_publish_fast_for },
    { NULL, NULL }
  };
  lsipub_new_class(L, PUB_MT, pub_methods, l_pub_gc);
  luaL_setfuncs(L, funcs, 0);
}
