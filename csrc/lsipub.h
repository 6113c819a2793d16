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

/* The event loop of this Lua state: luv's, or a private one created on first use. */
uv_loop_t *lsipub_loop(lua_State *L);

/* The main thread of L's state: callbacks from the loop run there, never in a coroutine
 * that may be dead by then. */
lua_State *lsipub_mainthread(lua_State *L);

/* Calls the function at stack index -(nargs+1) with nargs arguments in protected mode, with a
 * traceback. An error goes to sip.on_error (or stderr) and never unwinds through the loop.
 * Pops the function and its arguments; returns 0 on success, else the Lua status. */
int lsipub_pcall(lua_State *L, int nargs);

/* Registers the test compositor's constructor (compositor_new) in the table at the top. */
void lsipub_compositor_open(lua_State *L);

#endif
