/* lsipub.h — pieces of the Lua binding (module sip.core) shared between its C files.
 * Only binding code includes this; the protocol core (sipub.h) knows nothing of Lua. */
#ifndef LSIPUB_H
#define LSIPUB_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 503
#include "compat-5.3.h"
#endif

#include "sipub.h"

#define UA_MT "sip.ua"
#define PUB_MT "sip.pub"

/* Registry keys (their addresses), defined in lsipub.c. */
extern char lsipub_loop_key, lsipub_deliver_key, lsipub_response_mt_key, lsipub_error_key,
    lsipub_mainthread_key;
/* The context field holding the handlers of each event kind, in sipub_event_kind order. */
extern const char *const lsipub_handler_keys[];

/* ---- lloop.c ---------------------------------------------------------------------------- */

/* The libuv loop of this Lua state: a private one created on first use (only the libuv
 * parts of the binding use it: lloop.c, ldrv_uv.c, lcompositor.c). */
typedef struct uv_loop_s uv_loop_t;
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

/* ---- drivers ----------------------------------------------------------------------------- */

typedef struct lua_ua lua_ua;

/* What a user agent needs from its driver: the I/O of the core's transport seam (given to
 * sipub_ua_new) and the few services the binding asks for. Two implement it: ldrv_uv.c
 * (libuv: sockets, timers, the private loop) and ldrv_lua.c (a driver written in Lua: the
 * in-memory network of sip.testing, and hosts such as OpenResty that bring their own loop). */
typedef struct lsipub_driver_ops {
  const char *name;
  /* The core exists (u->core): start receiving. Raises on failure. */
  void (*start)(lua_State *L, lua_ua *u);
  /* The current time in ms, or NULL when the time only moves when the driver says so. */
  uint64_t (*now)(lua_ua *u);
  /* The core's next deadline may have changed (after every call into the core). */
  void (*sync)(lua_State *L, lua_ua *u);
  /* Events are waiting outside a dispatch: have lsipub_drain() run on the next loop turn. */
  void (*defer)(lua_State *L, lua_ua *u);
  /* The local port requests come from, or -1. */
  int (*port)(lua_ua *u);
  /* Nothing is left in flight after ua:close(): release the transport. */
  void (*close)(lua_State *L, lua_ua *u);
  /* The UA is collected: free everything, sending nothing. */
  void (*free)(lua_ua *u);
  /* NULL: the binding calls the handlers of each event itself. Else the driver delivers:
   * called with the context, the event's name, the response object (or nil), the cause and
   * the detail (or nil) on the stack (it pops them), e.g. to run the handlers where they may
   * yield. */
  void (*event)(lua_State *L, lua_ua *u);
} lsipub_driver_ops;

/* What a driver is told of the UA it serves when it is made. */
typedef struct lsipub_driver_args {
  const char *proxy_host;    /* the next hop when there is a proxy, for the Via guess */
  const char *local_address; /* NULL: any */
  int local_port;            /* 0: any */
  const char *via_host;      /* NULL: the driver's choice */
} lsipub_driver_args;

/* Each makes its driver for u (u->ops, u->drv) and fills cfg's via_host/via_port, *io and
 * *now; on failure it raises. The Lua driver is the table at index idx. */
void lsipub_driver_uv(lua_State *L, lua_ua *u, const lsipub_driver_args *a, sipub_config *cfg,
                      sipub_io *io, uint64_t *now);
void lsipub_driver_lua(lua_State *L, lua_ua *u, int idx, const lsipub_driver_args *a,
                       sipub_config *cfg, sipub_io *io, uint64_t *now);

/* ---- user agents and publications (lua_ua.c, lua_pub.c) ------------------------------------ */

typedef struct lua_pub lua_pub;

struct lua_ua {
  lua_State *L;       /* main thread, for loop callbacks */
  lua_State *cur;     /* the thread of the call into the core under way, or NULL */
  sipub_ua *core;
  const lsipub_driver_ops *ops;
  void *drv;          /* the driver's state */
  lua_pub *first, *last; /* its publications' userdata, oldest first (for close) */
  int self_ref;
  int trace_ref;      /* the trace function (a registry reference), or LUA_NOREF */
  int draining, closing, closed;
  int tracing;        /* the trace function runs: calls into the core are refused */
};

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

/* Every call into the core from Lua is bracketed by these two: enter brings the core's clock
 * to the driver's time and records the calling thread (a Lua driver is called on it); leave
 * settles the UA: closes it once nothing is left, re-arms the driver for the next deadline,
 * and has the call's events delivered on the next loop turn (never inside the call, where the
 * caller may not have attached its handlers yet; inside a handler, the dispatch under way
 * delivers them). enter returns what leave restores. */
lua_State *lsipub_enter(lua_State *L, lua_ua *u);
void lsipub_leave(lua_State *L, lua_ua *u, lua_State *saved);

/* Delivers the core's queued events to the contexts' handlers, then settles. */
void lsipub_drain(lua_State *L, lua_ua *u);

const char *lsipub_opt_string(lua_State *L, int t, const char *k);
lua_Integer lsipub_opt_integer(lua_State *L, int t, const char *k, lua_Integer def);
int lsipub_l_pub_new(lua_State *L);
/* Raises the formatted message with the position of the function at `level` (luaL_where):
 * 2 for a runtime error of a C function that the facade's wrapper calls (not as a tail
 * call), so that it points at the application's line, not at lua/sip/. Does not return. */
int lsipub_error_at(lua_State *L, int level, const char *fmt, ...);

/* ---- registration ----------------------------------------------------------------------- */

void lsipub_new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc);
/* Each adds its functions to the module table at the top. */
void lsipub_loop_open(lua_State *L);
void lsipub_ua_open(lua_State *L);
void lsipub_pub_open(lua_State *L);
/* Adds the methods of user agents whose driver is written in Lua to the table at the top. */
void lsipub_driver_lua_methods(lua_State *L);
void lsipub_compositor_open(lua_State *L);

#endif
