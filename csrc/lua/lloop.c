/* lloop.c — the binding's event loop and what runs on it: the private libuv loop, sip.run,
 * sip.now, sip.timer, and the protected call through which every loop callback enters Lua. */
#include "lsipub.h"

#include <uv.h>

#include <dlfcn.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMER_MT "sip.timer"
#define LOOP_MT "sip.loop"

typedef struct loop_box {
  uv_loop_t own;   /* the private loop, when there is no luv to share one with */
  uv_loop_t *loop; /* &own, or luv's */
  int shared;      /* the loop is luv's: luv runs and closes it */
  int running;
  int interrupted; /* the interpreter's interrupt, or a second signal: sip.run raises */
  int signals;     /* signals caught during this sip.run */
  lua_State *L;    /* the thread running sip.run */
  int on_signal_ref;
  uv_signal_t *sig[2]; /* SIGINT and SIGTERM watchers, made on the first run that wants them */
} loop_box;

static loop_box *get_loop_box(lua_State *L);
static loop_box *peek_loop_box(lua_State *L);

/* ---- errors raised by callbacks -------------------------------------------------------- */

void lsipub_report_error(lua_State *L)
{
  const char *msg = lua_tostring(L, -1);
  if (!msg) msg = "(error object is not a string)";
  lua_rawgetp(L, LUA_REGISTRYINDEX, &lsipub_error_key);
  if (lua_isfunction(L, -1)) {
    lua_pushstring(L, msg);
    if (lua_pcall(L, 1, 0, 0) == LUA_OK) return;
    fprintf(stderr, "sip: error in sip.on_error: %s\n", lua_tostring(L, -1));
  }
  lua_pop(L, 1);
  fprintf(stderr, "sip: error in event handler: %s\n", msg);
}

/* The message the standalone interpreters (lua, luajit) raise on SIGINT, from a hook, in
 * whatever Lua code runs next: inside a handler, it is not the handler's error but the user
 * asking the program to stop, so sip.run() stops and raises it again. */
#define INTERPRETER_INTERRUPT "interrupted!"

/* "interrupted!" as lua raises it, or "chunk:LINE: interrupted!" as luajit does. */
static int is_interrupt(const char *msg)
{
  static const char tail[] = ": " INTERPRETER_INTERRUPT;
  size_t n = strlen(msg), k = sizeof tail - 1;
  if (strcmp(msg, INTERPRETER_INTERRUPT) == 0) return 1;
  if (n <= k || strcmp(msg + n - k, tail) != 0) return 0;
  const char *p = msg + n - k;
  if (p == msg || p[-1] < '0' || p[-1] > '9') return 0;
  while (p > msg && p[-1] >= '0' && p[-1] <= '9') p--;
  return p > msg && p[-1] == ':';
}

static int traceback(lua_State *L)
{
  const char *msg = lua_tostring(L, 1);
  loop_box *b = msg && is_interrupt(msg) ? peek_loop_box(L) : NULL;
  if (b) {
    b->interrupted = 1;
    uv_stop(b->loop);
  }
  if (!msg) msg = luaL_tolstring(L, 1, NULL);
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int lsipub_pcall(lua_State *L, int nargs)
{
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  int st = lua_pcall(L, nargs, 0, base);
  if (st != LUA_OK) {
    loop_box *b = peek_loop_box(L);
    if (!b || !b->interrupted) lsipub_report_error(L); /* an interrupt is not a handler's error */
    lua_pop(L, 1);
  }
  lua_remove(L, base);
  return st;
}

static int l_report_error(lua_State *L)
{
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  lsipub_report_error(L);
  return 0;
}


lua_State *lsipub_mainthread(lua_State *L)
{
#if LUA_VERSION_NUM >= 502
  (void)lsipub_mainthread_key;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
#else
  lua_rawgetp(L, LUA_REGISTRYINDEX, &lsipub_mainthread_key);
#endif
  lua_State *m = lua_tothread(L, -1);
  lua_pop(L, 1);
  return m ? m : L;
}

/* ---- the loop: luv's, or a private one ----------------------------------------------------- */

static void close_walk(uv_handle_t *h, void *arg)
{
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void free_handle(uv_handle_t *h);

static int loop_gc(lua_State *L)
{
  loop_box *b = luaL_checkudata(L, 1, LOOP_MT);
  for (size_t i = 0; i < 2; i++)
    if (b->sig[i]) uv_close((uv_handle_t *)b->sig[i], free_handle);
  if (b->shared) return 0; /* luv's: our handles are closing, luv finishes its loop */
  /* Handles of collected objects are closing already; close whatever is left, let their
   * close callbacks run, then release the loop. */
  for (int i = 0; i < 100 && uv_loop_close(b->loop) == UV_EBUSY; i++) {
    uv_walk(b->loop, close_walk, NULL);
    uv_run(b->loop, UV_RUN_NOWAIT);
  }
  return 0;
}

/* luv's loop when luv is loaded in this state and runs on the same libuv as this module, or
 * NULL. luv keeps its context in the registry under "luv_context", a userdata whose first
 * field is the loop (luv >= 1.30), or the loop itself as a light userdata under "uv_loop"
 * (older). luv_context() is never called: it would create the context. */
static uv_loop_t *luv_loop(lua_State *L)
{
  uv_loop_t *loop = NULL;
  lua_getfield(L, LUA_REGISTRYINDEX, "luv_context");
  if (lua_type(L, -1) == LUA_TUSERDATA) loop = *(uv_loop_t **)lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (!loop) {
    lua_getfield(L, LUA_REGISTRYINDEX, "uv_loop");
    if (lua_type(L, -1) == LUA_TLIGHTUSERDATA) loop = lua_touserdata(L, -1);
    lua_pop(L, 1);
  }
  if (!loop) return NULL;
  /* A luv built with its own copy of libuv (LuaRocks bundles one) has its own ABI: sharing a
   * loop with it is not safe. Debian's lua-luv links the system libuv, as this module does. */
  unsigned theirs = 0;
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "luv");
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "version");
      if (lua_isfunction(L, -1) && lua_pcall(L, 0, 1, 0) == LUA_OK) theirs = (unsigned)lua_tointeger(L, -1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (theirs != uv_version()) {
    fprintf(stderr, "sip: luv runs on libuv %u.%u.%u, this module on %s: not sharing luv's loop "
            "(call sip.luv_pump() to drive this module's loop from luv's)\n",
            (theirs >> 16) & 0xff, (theirs >> 8) & 0xff, theirs & 0xff, uv_version_string());
    return NULL;
  }
  return loop;
}

/* On luv's loop, our handles' close callbacks may run from luv's own finalizer at lua_close,
 * after the interpreter has unloaded this module (LuaJIT unloads C modules first): the module
 * stays loaded until the process ends instead. */
static void pin_module(void)
{
  Dl_info info;
  if (dladdr((void *)&pin_module, &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

static loop_box *peek_loop_box(lua_State *L)
{
  lua_rawgetp(L, LUA_REGISTRYINDEX, &lsipub_loop_key);
  loop_box *b = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return b;
}

/* Chosen when first needed (the first user agent, timer or compositor), so that luv loaded
 * after this module is still shared. Made before the object that needs it: at lua_close,
 * finalizers run newest first, and every handle closes before its loop goes. */
static loop_box *get_loop_box(lua_State *L)
{
  loop_box *b = peek_loop_box(L);
  if (b) return b;
  b = lua_newuserdata(L, sizeof *b);
  memset(b, 0, sizeof *b);
  b->on_signal_ref = LUA_NOREF;
  b->loop = luv_loop(L);
  b->shared = b->loop != NULL;
  if (b->shared) pin_module();
  if (!b->loop) {
    if (uv_loop_init(&b->own) != 0) luaL_error(L, "sip: cannot create an event loop");
    b->loop = &b->own;
  }
  luaL_newmetatable(L, LOOP_MT);
  lua_pushcfunction(L, loop_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lsipub_loop_key);
  return b;
}

uv_loop_t *lsipub_loop(lua_State *L)
{
  return get_loop_box(L)->loop;
}

/* core.loop_info() -> "luv" | "private", the loop's backend fd, its timeout in ms (-1: none):
 * what a pump needs to drive the private loop from another loop (sip.luv_pump). */
static int l_loop_info(lua_State *L)
{
  loop_box *b = get_loop_box(L);
  lua_pushstring(L, b->shared ? "luv" : "private");
  lua_pushinteger(L, uv_backend_fd(b->loop));
  lua_pushinteger(L, uv_backend_timeout(b->loop));
  return 3;
}

/* ---- signals during sip.run ----------------------------------------------------------------- */

static const int caught[] = { SIGINT, SIGTERM };
#define NCAUGHT (sizeof caught / sizeof caught[0])

/* The first SIGINT or SIGTERM calls the on_signal function (sip.run's default closes every
 * user agent, so that each publication is removed, and returns once they are closed); the
 * second stops the loop at once and sip.run raises "interrupted!". */
static void on_signal(uv_signal_t *h, int signum)
{
  loop_box *b = h->data;
  if (++b->signals > 1) {
    b->interrupted = 1;
    uv_stop(b->loop);
    return;
  }
  lua_State *L = b->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, b->on_signal_ref);
  lua_pushstring(L, signum == SIGINT ? "SIGINT" : "SIGTERM");
  lsipub_pcall(L, 1);
}

static void free_handle(uv_handle_t *h)
{
  free(h);
}

/* Watches SIGINT and SIGTERM while sip.run runs (the watchers do not keep the loop alive);
 * the dispositions in force before are put back afterwards. */
/* Watches SIGINT and SIGTERM while sip.run runs; the dispositions in force before are put back
 * afterwards. The watchers are made once per loop and only started and stopped per run: a
 * watcher closed after each run would leave a close callback pending, and the next
 * run_once() would then return at once instead of waiting (a busy loop for its callers). */
static void watch_signals(loop_box *b, struct sigaction old[NCAUGHT])
{
  for (size_t i = 0; i < NCAUGHT; i++) {
    sigaction(caught[i], NULL, &old[i]);
    if (!b->sig[i]) {
      uv_signal_t *w = malloc(sizeof *w);
      if (!w || uv_signal_init(b->loop, w) != 0) {
        free(w);
        continue;
      }
      w->data = b;
      uv_unref((uv_handle_t *)w); /* never keeps the loop alive */
      b->sig[i] = w;
    }
    uv_signal_start(b->sig[i], on_signal, caught[i]);
  }
}

static void unwatch_signals(loop_box *b, struct sigaction old[NCAUGHT])
{
  for (size_t i = 0; i < NCAUGHT; i++) {
    if (!b->sig[i]) continue;
    uv_signal_stop(b->sig[i]);
    sigaction(caught[i], &old[i], NULL);
  }
}

/* core.run([mode[, incremental[, on_signal]]]). With incremental true, Lua 5.4's collector is
 * made incremental first if it is generational (the lua5.4 interpreter starts it so): a
 * generational major collection is not incremental, it marks and sweeps the whole heap in
 * one go, and with 100 000 publications (~150 MB of heap) that stops the loop for about a
 * second, long enough for refreshes to come late. The incremental collector spreads the
 * same work over small steps. on_signal, a function, is called with "SIGINT" or "SIGTERM"
 * on the first of those signals while the loop runs (see on_signal above). */
static int l_run(lua_State *L)
{
  static const char *const modes[] = { "default", "once", "nowait", NULL };
  static const uv_run_mode umodes[] = { UV_RUN_DEFAULT, UV_RUN_ONCE, UV_RUN_NOWAIT };
  int m = luaL_checkoption(L, 1, "default", modes);
  loop_box *b = get_loop_box(L);
  if (b->running) return lsipub_error_at(L, 2, "sip.run: the loop is already running");
#if LUA_VERSION_NUM >= 504
  if (lua_toboolean(L, 2)) lua_gc(L, LUA_GCINC, 0, 0, 0); /* 0: parameters unchanged */
#endif
  struct sigaction old[NCAUGHT];
  int with_signals = lua_isfunction(L, 3);
  if (with_signals) {
    lua_pushvalue(L, 3);
    b->on_signal_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    b->L = L;
    b->signals = 0;
    watch_signals(b, old);
  }
  b->running = 1;
  int alive;
  if (lua_isfunction(L, 4)) { /* the host's run (luv's uv.run, on the shared loop) */
    lua_pushvalue(L, 4);
    lua_pushstring(L, modes[m]);
    int st = lua_pcall(L, 1, 1, 0);
    alive = st == LUA_OK && lua_toboolean(L, -1);
    if (st != LUA_OK) {
      b->running = 0;
      if (with_signals) {
        unwatch_signals(b, old);
        luaL_unref(L, LUA_REGISTRYINDEX, b->on_signal_ref);
        b->on_signal_ref = LUA_NOREF;
      }
      return lua_error(L);
    }
    lua_pop(L, 1);
  } else {
    alive = uv_run(b->loop, umodes[m]);
  }
  b->running = 0;
  if (with_signals) {
    unwatch_signals(b, old);
    luaL_unref(L, LUA_REGISTRYINDEX, b->on_signal_ref);
    b->on_signal_ref = LUA_NOREF;
  }
  if (b->interrupted) {
    b->interrupted = 0;
    lua_pushliteral(L, INTERPRETER_INTERRUPT);
    return lua_error(L);
  }
  lua_pushboolean(L, alive != 0);
  return 1;
}

/* Monotonic time in seconds (libuv's high-resolution clock). */
static int l_now(lua_State *L)
{
  lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e9);
  return 1;
}

static int l_stop(lua_State *L)
{
  loop_box *b = peek_loop_box(L);
  if (b) uv_stop(b->loop);
  return 0;
}

/* ---- timers ---------------------------------------------------------------------------- */

typedef struct ltimer {
  uv_timer_t h;
  lua_State *L;
  int fn_ref, self_ref;
} ltimer;

static void timer_free_cb(uv_handle_t *h)
{
  free(h->data);
}

static void timer_unanchor(ltimer *t)
{
  luaL_unref(t->L, LUA_REGISTRYINDEX, t->self_ref);
  t->self_ref = LUA_NOREF;
}

static void on_lua_timer(uv_timer_t *h)
{
  ltimer *t = h->data;
  lua_State *L = t->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->fn_ref);
  timer_unanchor(t);
  lsipub_pcall(L, 0);
}

static ltimer *check_timer(lua_State *L)
{
  ltimer **box = luaL_checkudata(L, 1, TIMER_MT);
  return *box;
}

static int l_timer(lua_State *L)
{
  lua_Number secs = luaL_checknumber(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  /* Beyond 2^53 ms (285 000 years) the conversion to libuv's integer milliseconds would be
   * out of range: such a timer is clamped there, which is never in practice. */
  luaL_argcheck(L, secs >= 0 && secs <= HUGE_VAL && secs == secs, 1, "seconds must be a number >= 0");
  if (secs > 9007199254740.0) secs = 9007199254740.0;
  uv_loop_t *loop = lsipub_loop(L); /* before the timer: see get_loop_box */
  ltimer **box = lua_newuserdata(L, sizeof *box);
  *box = NULL;
  luaL_setmetatable(L, TIMER_MT);
  ltimer *t = calloc(1, sizeof *t);
  if (!t) return luaL_error(L, "sip.timer: out of memory");
  *box = t;
  t->L = lsipub_mainthread(L);
  uv_timer_init(loop, &t->h);
  t->h.data = t;
  lua_pushvalue(L, 2);
  t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, -1);
  t->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  uv_timer_start(&t->h, on_lua_timer, (uint64_t)(secs * 1000 + 0.5), 0);
  return 1;
}

static int l_timer_stop(lua_State *L)
{
  ltimer *t = check_timer(L);
  if (t) {
    uv_timer_stop(&t->h);
    timer_unanchor(t);
  }
  return 0;
}

/* A guard timer that should not keep sip.run() going by itself. */
static int l_timer_unref(lua_State *L)
{
  ltimer *t = check_timer(L);
  if (t) uv_unref((uv_handle_t *)&t->h);
  lua_settop(L, 1);
  return 1;
}

static int l_timer_gc(lua_State *L)
{
  ltimer **box = luaL_checkudata(L, 1, TIMER_MT);
  ltimer *t = *box;
  if (t) {
    luaL_unref(L, LUA_REGISTRYINDEX, t->fn_ref);
    uv_close((uv_handle_t *)&t->h, timer_free_cb);
    *box = NULL;
  }
  return 0;
}

void lsipub_loop_open(lua_State *L)
{
  static const luaL_Reg timer_methods[] = {
    { "stop", l_timer_stop }, { "unref", l_timer_unref }, { NULL, NULL }
  };
  static const luaL_Reg funcs[] = {
    { "run", l_run }, { "stop", l_stop }, { "timer", l_timer }, { "now", l_now },
    { "report_error", l_report_error }, { "loop_info", l_loop_info }, { NULL, NULL }
  };
#if LUA_VERSION_NUM < 502
  lua_pushthread(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lsipub_mainthread_key);
#endif
  lsipub_new_class(L, TIMER_MT, timer_methods, l_timer_gc);
  luaL_setfuncs(L, funcs, 0);
}
