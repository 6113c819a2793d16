/* lcompositor.c — the test compositor as Lua userdata (sip.core.compositor_new), running on
 * the module's loop; an on_request hook in Lua can script any answer. */
#include "lsipub.h"
#include "sipub_uv.h"
#include "sipub_compositor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMP_MT "sip.compositor"

typedef struct lcomp {
  sipub_compositor *c;
  lua_State *L;
  int hook_ref;     /* on_request, or LUA_NOREF */
  int requests_ref; /* a table of raw requests, or LUA_NOREF when not recording */
  int self_ref;     /* an open compositor is never collected */
} lcomp;

static lcomp *check_comp(lua_State *L)
{
  lcomp *lc = luaL_checkudata(L, 1, COMP_MT);
  return lc;
}

static void set_str(lua_State *L, const char *k, const char *v)
{
  if (!v) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

static void push_request(lua_State *L, const sipub_compositor_request *r)
{
  lua_createtable(L, 0, 16);
  set_str(L, "method", r->method);
  set_str(L, "uri", r->uri);
  set_str(L, "event", r->event);
  set_str(L, "etag", r->etag);
  set_str(L, "content_type", r->content_type);
  set_str(L, "call_id", r->call_id);
  set_str(L, "branch", r->branch);
  set_str(L, "source_host", r->source_host);
  if (r->body) {
    lua_pushlstring(L, r->body, r->body_len);
    lua_setfield(L, -2, "body");
  }
  if (r->expires >= 0) {
    lua_pushinteger(L, r->expires);
    lua_setfield(L, -2, "expires");
  }
  lua_pushinteger(L, (lua_Integer)r->cseq);
  lua_setfield(L, -2, "cseq");
  lua_pushinteger(L, r->source_port);
  lua_setfield(L, -2, "source_port");
  lua_pushinteger(L, (lua_Integer)r->number);
  lua_setfield(L, -2, "number");
  lua_pushlstring(L, r->data, r->len);
  lua_setfield(L, -2, "data");
  lua_createtable(L, (int)r->n_headers, 0);
  for (size_t i = 0; i < r->n_headers; i++) {
    lua_createtable(L, 2, 0);
    lua_pushstring(L, r->headers[i].name);
    lua_rawseti(L, -2, 1);
    lua_pushstring(L, r->headers[i].value);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "headers");
}

#define ACTION_ERR "on_request: bad action (%s)"

static void add_header(lua_State *L, sipub_compositor_action *act, size_t *n, int name_idx,
                       int value_idx)
{
  size_t nlen = 0;
  const char *name = lua_type(L, name_idx) == LUA_TSTRING ? lua_tolstring(L, name_idx, &nlen) : NULL;
  int vt = lua_type(L, value_idx);
  if (!name || sipub_check_token(name, nlen) != 0)
    luaL_error(L, ACTION_ERR, "headers: a name is not a header name");
  if (vt != LUA_TSTRING && vt != LUA_TNUMBER)
    luaL_error(L, ACTION_ERR, "headers: a value is not a string or a number");
  lua_pushvalue(L, value_idx);
  size_t vlen;
  const char *value = lua_tolstring(L, -1, &vlen); /* a copy: numbers are converted */
  if (strcspn(value, "\r\n") != vlen)
    luaL_error(L, ACTION_ERR, "headers: CR, LF or NUL in a value");
  int w = snprintf(act->headers + *n, sizeof act->headers - *n, "%s: %s\r\n", name, value);
  if (w < 0 || (size_t)w >= sizeof act->headers - *n)
    luaL_error(L, ACTION_ERR, "headers: too long");
  *n += (size_t)w;
  lua_pop(L, 1);
}

/* Reads the action table at index t; raises an error naming what is wrong. */
static void read_action(lua_State *L, int t, sipub_compositor_action *act)
{
  lua_pushnil(L);
  while (lua_next(L, t)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (!k || (strcmp(k, "code") && strcmp(k, "reason") && strcmp(k, "headers") &&
               strcmp(k, "delay") && strcmp(k, "drop")))
      luaL_error(L, ACTION_ERR, "unknown field; expected code, reason, headers, delay, drop");
    lua_pop(L, 1);
  }
  lua_getfield(L, t, "drop");
  if (!lua_isnil(L, -1) && !lua_isboolean(L, -1)) luaL_error(L, ACTION_ERR, "drop: expected a boolean");
  act->drop = lua_toboolean(L, -1);
  lua_getfield(L, t, "code");
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 100 || lua_tointeger(L, -1) > 699)
      luaL_error(L, ACTION_ERR, "code: expected an integer 100-699");
    act->code = (int)lua_tointeger(L, -1);
  }
  lua_getfield(L, t, "delay");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0) || lua_tonumber(L, -1) > 3600)
      luaL_error(L, ACTION_ERR, "delay: expected seconds, 0-3600");
    act->delay = lua_tonumber(L, -1);
  }
  lua_getfield(L, t, "reason");
  if (!lua_isnil(L, -1)) {
    size_t len;
    const char *r = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    if (!r || strcspn(r, "\r\n") != len || len >= sizeof act->reason)
      luaL_error(L, ACTION_ERR, "reason: expected a string of one line, 63 bytes at most");
    memcpy(act->reason, r, len + 1);
  }
  lua_pop(L, 4);
  lua_getfield(L, t, "headers");
  int h = lua_gettop(L);
  if (!lua_isnil(L, h)) {
    if (!lua_istable(L, h)) luaL_error(L, ACTION_ERR, "headers: expected a table");
    size_t n = 0, len = (size_t)lua_rawlen(L, h);
    for (size_t i = 1; i <= len; i++) { /* { {name, value}, ... } first, in order */
      lua_rawgeti(L, h, (lua_Integer)i);
      if (!lua_istable(L, -1)) luaL_error(L, ACTION_ERR, "headers: expected {name, value} pairs");
      lua_rawgeti(L, -1, 1);
      lua_rawgeti(L, -2, 2);
      add_header(L, act, &n, lua_gettop(L) - 1, lua_gettop(L));
      lua_pop(L, 3);
    }
    lua_pushnil(L); /* then { Name = value } */
    while (lua_next(L, h)) {
      if (lua_type(L, -2) == LUA_TSTRING) add_header(L, act, &n, lua_gettop(L) - 1, lua_gettop(L));
      else if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 || (size_t)lua_tointeger(L, -2) > len)
        luaL_error(L, ACTION_ERR, "headers: expected names or {name, value} pairs");
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

/* Runs in protected mode: records the request, calls on_request, reads its action into a
 * copy that reaches the compositor only when all of it is valid. */
static int run_hook(lua_State *L)
{
  lcomp *lc = lua_touserdata(L, 1);
  const sipub_compositor_request *r = lua_touserdata(L, 2);
  sipub_compositor_action *act = lua_touserdata(L, 3);
  if (lc->requests_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, lc->requests_ref);
    lua_pushlstring(L, r->data, r->len);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 1);
  }
  if (lc->hook_ref == LUA_NOREF) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, lc->hook_ref);
  push_request(L, r);
  lua_call(L, 1, 1);
  if (lua_isnil(L, -1)) return 0;
  if (!lua_istable(L, -1)) luaL_error(L, ACTION_ERR, "expected nil or a table");
  sipub_compositor_action a;
  memset(&a, 0, sizeof a);
  read_action(L, lua_gettop(L), &a);
  *act = a;
  return 0;
}

/* An error in on_request (or a bad action) is reported like any handler error; the request
 * is then processed by the rules. */
static void on_request(void *ud, const sipub_compositor_request *r, sipub_compositor_action *act)
{
  lcomp *lc = ud;
  lua_State *L = lc->L;
  if (lc->requests_ref == LUA_NOREF && lc->hook_ref == LUA_NOREF) return;
  lua_pushcfunction(L, run_hook);
  lua_pushlightuserdata(L, lc);
  lua_pushlightuserdata(L, (void *)r);
  lua_pushlightuserdata(L, act);
  lsipub_pcall(L, 3);
}

static int get_int(lua_State *L, int t, const char *k, int def, int min, int max)
{
  lua_getfield(L, t, k);
  int v = def;
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1))
      lsipub_error_at(L, 2, "bad argument to 'Compositor.new' (%s: expected an integer)", k);
    lua_Integer x = lua_tointeger(L, -1);
    if (x < min || x > max)
      lsipub_error_at(L, 2, "bad argument to 'Compositor.new' (%s: out of range)", k);
    v = (int)x;
  }
  lua_pop(L, 1);
  return v;
}

/* core.compositor_new{ host, port, min_expires, max_expires, default_expires, events,
 *                      on_request, any_address, record } */
static int l_compositor_new(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  sipub_compositor_opts o;
  memset(&o, 0, sizeof o);
  lua_getfield(L, 1, "host");
  o.host = lua_isnil(L, -1) ? "127.0.0.1" : lua_tostring(L, -1);
  if (!o.host) return lsipub_error_at(L, 2, "bad argument to 'Compositor.new' (host: expected a string)");
  lua_pop(L, 1);
  o.port = get_int(L, 1, "port", 0, 0, 65535);
  o.min_expires = get_int(L, 1, "min_expires", 0, 0, 0x7fffffff);
  o.max_expires = get_int(L, 1, "max_expires", 86400, 1, 0x7fffffff);
  o.default_expires = get_int(L, 1, "default_expires", 3600, 1, 0x7fffffff);
  lua_getfield(L, 1, "any_address");
  o.any_address = lua_toboolean(L, -1);
  lua_pop(L, 1);
  const char *events[33];
  lua_getfield(L, 1, "events");
  int ev = lua_gettop(L);
  if (lua_istable(L, ev)) {
    size_t n = (size_t)lua_rawlen(L, ev);
    if (n > 32) return lsipub_error_at(L, 2, "bad argument to 'Compositor.new' (events: 32 at most)");
    for (size_t i = 0; i < n; i++) {
      lua_rawgeti(L, ev, (lua_Integer)i + 1);
      events[i] = lua_tostring(L, -1);
      if (!events[i]) return lsipub_error_at(L, 2, "bad argument to 'Compositor.new' (events: strings)");
      lua_pop(L, 1);
    }
    events[n] = NULL;
    o.events = events;
  } else if (!lua_isnil(L, ev)) {
    return lsipub_error_at(L, 2, "bad argument to 'Compositor.new' (events: expected an array)");
  }

  uv_loop_t *loop = lsipub_loop(L); /* made before the compositor, finalized after it */
  lcomp *lc = lua_newuserdata(L, sizeof *lc);
  memset(lc, 0, sizeof *lc);
  lc->hook_ref = lc->requests_ref = lc->self_ref = LUA_NOREF;
  luaL_setmetatable(L, COMP_MT);
  lc->L = lsipub_mainthread(L);
  int err = 0;
  lc->c = sipub_compositor_new(loop, &o, &err);
  if (!lc->c)
    return lsipub_error_at(L, 2, "Compositor.new: cannot listen on %s:%d: %s", o.host, o.port,
                      err == UV_EINVAL ? "not a loopback address (any_address = true allows it)"
                                       : uv_strerror(err));
  lua_getfield(L, 1, "on_request");
  if (lua_isfunction(L, -1)) lc->hook_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  else lua_pop(L, 1);
  lua_getfield(L, 1, "record");
  int record = lua_isnil(L, -1) || lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (record) {
    lua_newtable(L);
    lc->requests_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  sipub_compositor_set_hook(lc->c, on_request, lc);
  lua_pushvalue(L, -1);
  lc->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

static int l_port(lua_State *L)
{
  lcomp *lc = check_comp(L);
  if (!lc->c) return 0;
  lua_pushinteger(L, sipub_compositor_port(lc->c));
  return 1;
}

static int l_count(lua_State *L)
{
  lcomp *lc = check_comp(L);
  lua_pushinteger(L, lc->c ? (lua_Integer)sipub_compositor_count(lc->c) : 0);
  return 1;
}

static void each_pub(void *ud, const char *uri, const char *event, const char *etag,
                     const char *body, size_t body_len, const char *ctype, double expires_in)
{
  lua_State *L = ud;
  lua_createtable(L, 0, 6);
  set_str(L, "uri", uri);
  set_str(L, "event", event);
  set_str(L, "etag", etag);
  set_str(L, "content_type", ctype);
  if (body) {
    lua_pushlstring(L, body, body_len);
    lua_setfield(L, -2, "body");
  }
  lua_pushnumber(L, expires_in);
  lua_setfield(L, -2, "expires");
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
}

static int l_publications(lua_State *L)
{
  lcomp *lc = check_comp(L);
  lua_newtable(L);
  if (lc->c) sipub_compositor_each(lc->c, each_pub, L);
  return 1;
}

static int l_requests(lua_State *L)
{
  lcomp *lc = check_comp(L);
  lua_newtable(L);
  if (lc->requests_ref == LUA_NOREF) return 1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, lc->requests_ref);
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -3, i);
  }
  lua_pop(L, 1);
  return 1;
}

static int l_clear(lua_State *L)
{
  lcomp *lc = check_comp(L);
  if (lc->c) sipub_compositor_clear(lc->c);
  return 0;
}

/* Closes the socket; the recorded requests stay readable until the object is collected. */
static void release(lua_State *L, lcomp *lc)
{
  if (lc->c) {
    sipub_compositor_close(lc->c);
    lc->c = NULL;
  }
  luaL_unref(L, LUA_REGISTRYINDEX, lc->hook_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, lc->self_ref);
  lc->hook_ref = lc->self_ref = LUA_NOREF;
}

static int l_close(lua_State *L)
{
  release(L, check_comp(L));
  return 0;
}

static int l_gc(lua_State *L)
{
  lcomp *lc = luaL_checkudata(L, 1, COMP_MT);
  release(L, lc);
  luaL_unref(L, LUA_REGISTRYINDEX, lc->requests_ref);
  lc->requests_ref = LUA_NOREF;
  return 0;
}

void lsipub_compositor_open(lua_State *L)
{
  static const luaL_Reg methods[] = {
    { "port", l_port }, { "count", l_count }, { "publications", l_publications },
    { "requests", l_requests }, { "clear", l_clear }, { "close", l_close }, { NULL, NULL }
  };
  lsipub_new_class(L, COMP_MT, methods, l_gc);
  lua_pushcfunction(L, l_compositor_new);
  lua_setfield(L, -2, "compositor_new");
}
