/* lcompositor.c — the test compositor as Lua userdata (sip.core.compositor_new), running on
 * the module's loop; an on_request hook in Lua can script any answer. */
#include "lsipub.h"
#include "compositor.h"

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
}

static int traceback(lua_State *L)
{
  luaL_traceback(L, L, lua_tostring(L, 1), 1);
  return 1;
}

/* Reads the action table the Lua hook returned. */
static void read_action(lua_State *L, int t, sipub_compositor_action *act)
{
  lua_getfield(L, t, "drop");
  act->drop = lua_toboolean(L, -1);
  lua_getfield(L, t, "code");
  act->code = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
  if (act->code < 100 || act->code > 699) act->code = 0;
  lua_getfield(L, t, "delay");
  act->delay = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : 0;
  lua_getfield(L, t, "reason");
  if (lua_isstring(L, -1)) snprintf(act->reason, sizeof act->reason, "%s", lua_tostring(L, -1));
  lua_pop(L, 4);
  lua_getfield(L, t, "headers");
  if (lua_istable(L, -1)) {
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      const char *name = NULL, *value = NULL;
      if (lua_istable(L, -1)) { /* { name, value } pairs */
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        name = lua_tostring(L, -2);
        value = lua_tostring(L, -1);
        if (name && value && n < sizeof act->headers)
          n += (size_t)snprintf(act->headers + n, sizeof act->headers - n, "%s: %s\r\n", name, value);
        lua_pop(L, 2);
      } else if (lua_type(L, -2) == LUA_TSTRING) { /* name = value */
        name = lua_tostring(L, -2);
        value = luaL_tolstring(L, -1, NULL);
        if (n < sizeof act->headers)
          n += (size_t)snprintf(act->headers + n, sizeof act->headers - n, "%s: %s\r\n", name, value);
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

static void on_request(void *ud, const sipub_compositor_request *r, sipub_compositor_action *act)
{
  lcomp *lc = ud;
  lua_State *L = lc->L;
  int top = lua_gettop(L);
  if (lc->requests_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, lc->requests_ref);
    lua_pushlstring(L, r->data, r->len);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 1);
  }
  if (lc->hook_ref == LUA_NOREF) return;
  lua_pushcfunction(L, traceback);
  lua_rawgeti(L, LUA_REGISTRYINDEX, lc->hook_ref);
  push_request(L, r);
  if (lua_pcall(L, 1, 1, top + 1) != LUA_OK) {
    /* report like any handler error, then answer by the rules */
    lua_pushcfunction(L, lsipub_pcall_report);
    lua_insert(L, -2);
    lua_pcall(L, 1, 0, 0);
  } else if (lua_istable(L, -1)) {
    read_action(L, lua_gettop(L), act);
  }
  lua_settop(L, top);
}

static int get_int(lua_State *L, int t, const char *k, int def, int min, int max)
{
  lua_getfield(L, t, k);
  int v = def;
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1))
      luaL_error(L, "bad argument to 'Compositor.new' (%s: expected an integer)", k);
    lua_Integer x = lua_tointeger(L, -1);
    if (x < min || x > max)
      luaL_error(L, "bad argument to 'Compositor.new' (%s: out of range)", k);
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
  if (!o.host) return luaL_error(L, "bad argument to 'Compositor.new' (host: expected a string)");
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
    if (n > 32) return luaL_error(L, "bad argument to 'Compositor.new' (events: 32 at most)");
    for (size_t i = 0; i < n; i++) {
      lua_rawgeti(L, ev, (lua_Integer)i + 1);
      events[i] = lua_tostring(L, -1);
      if (!events[i]) return luaL_error(L, "bad argument to 'Compositor.new' (events: strings)");
      lua_pop(L, 1);
    }
    events[n] = NULL;
    o.events = events;
  } else if (!lua_isnil(L, ev)) {
    return luaL_error(L, "bad argument to 'Compositor.new' (events: expected an array)");
  }

  lcomp *lc = lua_newuserdata(L, sizeof *lc);
  memset(lc, 0, sizeof *lc);
  lc->hook_ref = lc->requests_ref = lc->self_ref = LUA_NOREF;
  luaL_setmetatable(L, COMP_MT);
  lc->L = lsipub_mainthread(L);
  int err = 0;
  lc->c = sipub_compositor_new(lsipub_loop(L), &o, &err);
  if (!lc->c)
    return luaL_error(L, "Compositor.new: cannot listen on %s:%d: %s", o.host, o.port,
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
  luaL_newmetatable(L, COMP_MT);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_compositor_new);
  lua_setfield(L, -2, "compositor_new");
}
