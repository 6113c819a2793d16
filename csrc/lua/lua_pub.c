/* lua_pub.c — publications as userdata, ua:publish's one call into the core, the context
 * methods that run on every call (on, publish, unpublish, close, __index) in C, and the core's
 * input rules for the facade (core.check, core.parse_uri, core.argerror, core.defaults). */
#include "lsipub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lua_pub *wrap_pub(lua_State *L, lua_ua *u, sipub_pub *pub, int ua_idx, int ctx_idx);
static const char *rc_message(int rc);
static int raise_input_error(lua_State *L, const sipub_input_error *bad, const char *const *lines);

/* Raises "sip: cannot publish: why" where ua:publish was called. */
static int publish_error(lua_State *L, const char *why)
{
  luaL_where(L, 2);
  lua_pushfstring(L, "sip: cannot publish: %s", why);
  lua_concat(L, 2);
  return lua_error(L);
}

/* The string at idx (or NULL for nil) as the core's C string; the first one with a NUL
 * inside, which the core would read cut, is recorded in *bad as a control character. */
static const char *c_string(lua_State *L, int idx, int field, int index, sipub_input_error *bad)
{
  size_t len;
  const char *s = luaL_optlstring(L, idx, NULL, &len);
  if (s && strlen(s) != len && !bad->problem)
    *bad = (sipub_input_error){ field, index, SIPUB_BAD_CONTROL };
  return s;
}

/* ua:pub_new(ctx, target, event, content_type, expires, extra_headers, unpublish_on_close,
 *            etag, body) -> ctx: ua:publish's one call. Makes the publication of the context
 * ctx (its _h) and sends its initial PUBLISH (a refresh of etag's state when given). Bad input
 * raises "bad argument to 'publish' (<argument>: <message>)" at level 2, the caller of
 * ua:publish, which must call this as its last call but not a tail call. */
int lsipub_l_pub_new(lua_State *L)
{
  lua_ua *u = lsipub_check_ua(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  sipub_input_error bad = { SIPUB_FIELD_NONE, -1, SIPUB_BAD_NONE };
  sipub_pub_config cfg;
  memset(&cfg, 0, sizeof cfg);
  luaL_checkstring(L, 3);
  luaL_checkstring(L, 4);
  cfg.target = c_string(L, 3, SIPUB_FIELD_TARGET, -1, &bad);
  cfg.event = c_string(L, 4, SIPUB_FIELD_EVENT, -1, &bad);
  cfg.content_type = c_string(L, 5, SIPUB_FIELD_CONTENT_TYPE, -1, &bad);
  cfg.expires = (int)luaL_checkinteger(L, 6);
  cfg.unpublish_on_close = lua_toboolean(L, 8);
  cfg.etag = c_string(L, 9, SIPUB_FIELD_ETAG, -1, &bad);
  size_t blen;
  const char *body = luaL_checklstring(L, 10, &blen);
  /* One line more than the core takes, so that the core finds there are too many. */
  const char *lines[SIPUB_MAX_EXTRA_HEADERS + 2];
  size_t n = 0;
  if (!lua_isnoneornil(L, 7)) {
    luaL_checktype(L, 7, LUA_TTABLE);
    n = (size_t)lua_rawlen(L, 7);
    if (n > SIPUB_MAX_EXTRA_HEADERS + 1) n = SIPUB_MAX_EXTRA_HEADERS + 1;
    for (size_t i = 0; i < n; i++) {
      lua_rawgeti(L, 7, (lua_Integer)i + 1);
      luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 7, "extra headers must be strings");
      lines[i] = c_string(L, -1, SIPUB_FIELD_EXTRA_HEADER, (int)i, &bad);
      lua_pop(L, 1); /* still referenced by the table */
    }
  }
  lines[n] = NULL;
  cfg.extra_headers = lines;

  if (bad.problem) return raise_input_error(L, &bad, lines);
  int err = 0;
  lua_State *saved = lsipub_enter(L, u);
  sipub_pub *pub = sipub_pub_new(u->core, &cfg, &err, &bad);
  if (!pub) {
    lsipub_leave(L, u, saved);
    if (err == SIPUB_EINVAL) return raise_input_error(L, &bad, lines);
    return publish_error(L, err == SIPUB_ECLOSED ? "the user agent is closed" : "out of memory");
  }
  lua_pushliteral(L, "_h");
  lua_pub *lp = wrap_pub(L, u, pub, 1, 2);
  lua_rawset(L, 2);
  int rc = cfg.etag ? sipub_pub_resume(pub, body, blen) : sipub_pub_publish(pub, body, blen);
  lsipub_leave(L, u, saved);
  if (u->core) lsipub_unanchor(L, lp);
  if (rc != SIPUB_OK) return publish_error(L, rc_message(rc));
  lua_settop(L, 2);
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

/* ---- input rules: the core's, for the facade ---------------------------------------------- */

static const char *const problem_names[SIPUB_BAD_COUNT] = {
  NULL, "empty", "control", "uri", "scheme", "port", "escape", "token", "media_type",
  "header_line", "own_header", "host", "address", "range", "too_many"
};

/* The rules core.check knows; show: a refused value is quoted in the message (not header
 * lines or values, which may hold credentials). */
static const struct rule {
  const char *kind;
  int (*check)(const char *, size_t);
  int show;
} rules[] = {
  { "uri", sipub_check_uri, 1 }, { "token", sipub_check_token, 1 },
  { "media_type", sipub_check_media_type, 1 }, { "header_value", sipub_check_header_value, 0 },
  { "header_line", sipub_check_header_line, 0 }, { "etag", sipub_check_etag, 0 },
  { "host", sipub_check_host, 1 }, { "address", sipub_check_address, 1 }, { NULL, NULL, 0 }
};

/* Pushes the message for problem in value (len bytes): the core's text, and what was given
 * (an own header's name; a shown value, cut at 80 bytes). */
static void push_message(lua_State *L, int problem, const char *value, size_t len, int show)
{
  const char *text = sipub_problem_text(problem);
  if (problem == SIPUB_BAD_OWN_HEADER) {
    size_t n = strcspn(value, ":");
    while (n && (value[n - 1] == ' ' || value[n - 1] == '\t')) n--;
    lua_pushfstring(L, "%s (%s)", text, lua_pushlstring(L, value, n));
    lua_remove(L, -2);
  } else if (show && problem != SIPUB_BAD_EMPTY && problem != SIPUB_BAD_CONTROL) {
    lua_pushlstring(L, value, len > 80 ? 80 : len);
    lua_pushfstring(L, "%s, got \"%s%s\"", text, lua_tostring(L, -1), len > 80 ? "..." : "");
    lua_remove(L, -2);
  } else {
    lua_pushstring(L, text);
  }
}

/* Raises "bad argument to 'fname' (what: msg)" where the function at level called. */
static int arg_error(lua_State *L, int level, const char *fname, const char *what, const char *msg)
{
  luaL_where(L, level);
  lua_pushfstring(L, "bad argument to '%s' (%s: %s)", fname, what, msg);
  lua_concat(L, 2);
  return lua_error(L);
}

/* core.argerror(fname, what, msg, level): the one wording of a bad argument (sip/check.lua). */
static int l_argerror(lua_State *L)
{
  const char *fname = luaL_checkstring(L, 1), *what = luaL_checkstring(L, 2);
  const char *msg = luaL_checkstring(L, 3);
  return arg_error(L, (int)luaL_optinteger(L, 4, 1), fname, what, msg);
}

/* The input error of a ua:pub_new call, named as ua:publish's arguments. */
static int raise_input_error(lua_State *L, const sipub_input_error *bad, const char *const *lines)
{
  static const struct { int field, idx, show; const char *what; } args[] = {
    { SIPUB_FIELD_TARGET, 3, 1, "target" }, { SIPUB_FIELD_EVENT, 4, 1, "event" },
    { SIPUB_FIELD_CONTENT_TYPE, 5, 1, "options.contentType" },
    { SIPUB_FIELD_EXPIRES, 6, 0, "options.expires" }, { SIPUB_FIELD_ETAG, 9, 0, "options.etag" },
  };
  const char *what = "options.extraHeaders", *value = "";
  size_t len = 0;
  int show = 0;
  char buf[48];
  for (size_t i = 0; i < sizeof args / sizeof args[0]; i++)
    if (args[i].field == bad->field) {
      what = args[i].what;
      show = args[i].show;
      value = lua_isstring(L, args[i].idx) ? lua_tolstring(L, args[i].idx, &len) : "";
    }
  if (bad->field == SIPUB_FIELD_EXTRA_HEADER && bad->index >= 0) {
    snprintf(buf, sizeof buf, "options.extraHeaders[%d]", bad->index + 1);
    what = buf;
    value = lines[bad->index];
    len = strlen(value);
  }
  push_message(L, bad->problem, value, len, show);
  return arg_error(L, 2, "publish", what, lua_tostring(L, -1));
}

/* core.check(kind, value) -> nil | problem, message: value against the core's rule of that
 * kind ("uri", "token", "media_type", "header_value", "header_line", "etag", "host",
 * "address"). */
static int l_check(lua_State *L)
{
  const char *kind = luaL_checkstring(L, 1);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  for (const struct rule *r = rules; r->kind; r++)
    if (strcmp(kind, r->kind) == 0) {
      int problem = r->check(s, len);
      if (!problem) return 0;
      lua_pushstring(L, problem_names[problem]);
      push_message(L, problem, s, len, r->show);
      return 2;
    }
  return luaL_argerror(L, 1, "unknown kind of input");
}

/* core.parse_uri(s) -> { scheme, user, host, port } | nil, problem, message */
static int l_parse_uri(lua_State *L)
{
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  sipub_uri_parts parts;
  char *buf = lua_newuserdata(L, len + 3);
  int problem = sipub_uri_split(s, len, &parts, buf, len + 3);
  if (problem) {
    lua_pushnil(L);
    lua_pushstring(L, problem_names[problem]);
    push_message(L, problem, s, len, 1);
    return 3;
  }
  lua_createtable(L, 0, 4);
  lua_pushstring(L, parts.scheme);
  lua_setfield(L, -2, "scheme");
  if (parts.user) {
    lua_pushstring(L, parts.user);
    lua_setfield(L, -2, "user");
  }
  lua_pushstring(L, parts.host);
  lua_setfield(L, -2, "host");
  if (parts.port) {
    lua_pushinteger(L, parts.port);
    lua_setfield(L, -2, "port");
  }
  return 1;
}

/* core.defaults: the publish options' defaults, as the core states them. */
static void push_defaults(lua_State *L)
{
  lua_createtable(L, 0, 3);
  lua_pushliteral(L, SIPUB_DEFAULT_CONTENT_TYPE);
  lua_setfield(L, -2, "contentType");
  lua_pushinteger(L, SIPUB_DEFAULT_EXPIRES);
  lua_setfield(L, -2, "expires");
  lua_pushboolean(L, SIPUB_DEFAULT_UNPUBLISH_ON_CLOSE);
  lua_setfield(L, -2, "unpublishOnClose");
}

void lsipub_pub_open(lua_State *L)
{
  static const luaL_Reg pub_methods[] = {
    { "publish", l_pub_publish }, { "resume", l_pub_resume }, { "unpublish", l_pub_unpublish },
    { "close", l_pub_close }, { "etag", l_pub_etag }, { "state", l_pub_state },
    { "active", l_pub_active }, { NULL, NULL }
  };
  static const luaL_Reg funcs[] = {
    { "check", l_check }, { "parse_uri", l_parse_uri }, { "argerror", l_argerror },
    { "context_methods", l_context_methods }, { NULL, NULL }
  };
  lsipub_new_class(L, PUB_MT, pub_methods, l_pub_gc);
  luaL_setfuncs(L, funcs, 0);
  push_defaults(L);
  lua_setfield(L, -2, "defaults");
}
