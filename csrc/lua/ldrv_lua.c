/* ldrv_lua.c — the in-memory transport with a virtual clock (transport = "virtual"): requests
 * are kept for Lua to read, responses and time are handed in by Lua (sip.testing). */
#include "lsipub.h"

#include <stdlib.h>
#include <string.h>

/* In-memory transport: datagrams are kept for _vsent(); _vfail(n) makes sends fail. */
int lsipub_virt_send(void *ud, const sipub_dest *d, const char *data, size_t len)
{
  lua_ua *u = ud;
  if (u->vfail > 0) {
    u->vfail--;
    return -1;
  }
  if (u->nvsent == u->capvsent) {
    size_t cap = u->capvsent ? u->capvsent * 2 : 16;
    vdgram *v = realloc(u->vsent, cap * sizeof *v);
    if (!v) return -1;
    u->vsent = v;
    u->capvsent = cap;
  }
  vdgram *g = &u->vsent[u->nvsent];
  g->data = malloc(len);
  g->host = strdup(d->host);
  if (!g->data || !g->host) {
    free(g->data);
    free(g->host);
    return -1;
  }
  memcpy(g->data, data, len);
  g->len = len;
  g->port = d->port;
  u->nvsent++;
  return 0;
}

/* ---- the virtual transport and clock --------------------------------------------------- */

static lua_ua *check_virtual(lua_State *L)
{
  lua_ua *u = lsipub_check_ua(L, 1);
  if (!u->virt) luaL_argerror(L, 1, "not a virtual-transport user agent");
  return u;
}

static int l_vsent(lua_State *L)
{
  lua_ua *u = check_virtual(L);
  lua_createtable(L, (int)u->nvsent, 0);
  for (size_t i = 0; i < u->nvsent; i++) {
    lua_createtable(L, 0, 3);
    lua_pushlstring(L, u->vsent[i].data, u->vsent[i].len);
    lua_setfield(L, -2, "data");
    lua_pushstring(L, u->vsent[i].host);
    lua_setfield(L, -2, "host");
    lua_pushinteger(L, u->vsent[i].port);
    lua_setfield(L, -2, "port");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
    free(u->vsent[i].data);
    free(u->vsent[i].host);
  }
  u->nvsent = 0;
  return 1;
}

static int l_vreceive(lua_State *L)
{
  lua_ua *u = check_virtual(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  sipub_ua_receive(u->core, u->vnow, NULL, data, len);
  lsipub_drain(L, u);
  return 0;
}

static int l_vadvance(lua_State *L)
{
  lua_ua *u = check_virtual(L);
  lua_Integer ms = luaL_checkinteger(L, 2);
  luaL_argcheck(L, ms >= 0, 2, "cannot go back in time");
  uint64_t target = u->vnow + (uint64_t)ms;
  lsipub_drain(L, u); /* events of earlier user calls */
  for (;;) {
    if (!u->core) break;
    uint64_t d = sipub_ua_next_deadline(u->core);
    if (d > target || u->closed) break;
    if (d > u->vnow) u->vnow = d;
    sipub_ua_tick(u->core, u->vnow);
    lsipub_drain(L, u);
  }
  u->vnow = target;
  if (u->core) sipub_ua_set_time(u->core, target);
  return 0;
}

static int l_vnow(lua_State *L)
{
  lua_ua *u = check_virtual(L);
  lua_pushinteger(L, (lua_Integer)u->vnow);
  return 1;
}

static int l_vfail(lua_State *L)
{
  lua_ua *u = check_virtual(L);
  u->vfail = (long)luaL_checkinteger(L, 2);
  return 0;
}

/* Adds the _v* methods to the UA methods table at the top. */
void lsipub_vtransport_methods(lua_State *L)
{
  static const luaL_Reg m[] = {
    { "_vsent", l_vsent }, { "_vreceive", l_vreceive }, { "_vadvance", l_vadvance },
    { "_vnow", l_vnow }, { "_vfail", l_vfail }, { NULL, NULL }
  };
  luaL_setfuncs(L, m, 0);
}
