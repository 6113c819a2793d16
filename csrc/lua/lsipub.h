/* lsipub.h — pieces of the Lua binding (module sip.core) shared between its C files.
 * Only binding code includes this; the protocol core (sipub.h) knows nothing of Lua. */
#ifndef LSIPUB_H
#define LSIPUB_H

#include <lua.h>
#include <lauxlib.h>
#include <uv.h>

#if LUA_VERSION_NUM < 503
#include "compat-5.3.h"
#endif

#include "sipub.h"
#include "sipub_uv.h"

#define UA_MT "sip.ua"
#define PUB_MT "sip.pub"

/* Registry keys (their addresses), defined in lsipub.c. */
extern char lsipub_loop_key, lsipub_deliver_key, lsipub_response_mt_key, lsipub_error_key,
    lsipub_mainthread_key;
/* The context field holding the handlers of each event kind, in sipub_event_kind order. */
extern const char *const lsipub_handler_keys[];

/* ---- lloop.c ---------------------------------------------------------------------------- */

/* The event loop of this Lua state: a private one created on first use. */
uv_loop_t *lsipub_loop(lua_State *L);

/* The main thread of L's state: callbacks from the loop run there, never in a coroutine
 * that may be dead by then. */
lua_State *lsipub_mainthread(lua_State *L);

/* Calls the function at stack index -(nargs+1) with nargs arguments in protected mode, with a
 * traceback. An error goes to sip.on_error (or stderr) and never unwinds through the loop.
 * Pops the function and its arguments; returns 0 on success, else the Lua status. */
int lsipub_pcall(lua_State *L, int nargs);
/* Reports the error message at the top (sip.on_error, else stderr); leaves the stack. */
void lsipub_report_error(lua_State *L);

/* ---- user agents and publications (lua_ua.c, lua_pub.c, ldrv_lua.c) --------------------- */

typedef struct vdgram {
  char *data;
  size_t len;
  char *host;
  int port;
} vdgram;

typedef struct lua_pub lua_pub;

typedef struct lua_ua {
  lua_State *L; /* main thread, for loop callbacks */
  sipub_ua *core;
  sipub_uv *drv;
  int virt;
  uint64_t vnow;
  long vfail;
  vdgram *vsent;
  size_t nvsent, capvsent;
  char *proxy_host;
  int proxy_port;
  uv_timer_t *defer; /* delivers the events of user calls on the next loop turn */
  lua_pub *first, *last; /* its publications' userdata, oldest first (for close) */
  int self_ref;
  int draining, closing, closed;
} lua_ua;

/* A publication's userdata. Its user value keeps the UA alive; ctx_ref anchors the context
 * table while the publication is open or has work in flight. */
struct lua_pub {
  sipub_pub *pub;
  lua_ua *ua;         /* NULL once the UA is collected */
  lua_pub *prev, *next;
  int ctx_ref;
};

lua_ua *lsipub_check_ua(lua_State *L, int idx);
void lsipub_unanchor(lua_State *L, lua_pub *lp);
void lsipub_drain(lua_State *L, lua_ua *u);
void lsipub_settle(lua_State *L, lua_ua *u);
void lsipub_ua_time(lua_ua *u);
const char *lsipub_opt_string(lua_State *L, int t, const char *k);
lua_Integer lsipub_opt_integer(lua_State *L, int t, const char *k, lua_Integer def);
int lsipub_l_pub_new(lua_State *L);
int lsipub_virt_send(void *ud, const sipub_dest *d, const char *data, size_t len);

/* ---- registration ----------------------------------------------------------------------- */

void lsipub_new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc);
/* Each adds its functions to the module table at the top. */
void lsipub_loop_open(lua_State *L);
void lsipub_ua_open(lua_State *L);
void lsipub_pub_open(lua_State *L);
void lsipub_vtransport_methods(lua_State *L);
void lsipub_compositor_open(lua_State *L);

#endif
