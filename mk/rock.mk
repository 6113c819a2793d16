# mk/rock.mk — how LuaRocks builds and installs the rock (rockspec build type "make"): the
# module sip.core from mk/sources.mk with per-layer include paths, the sip-compositor program,
# the Lua modules. Only what a user's machine needs: no Debian packages, no tests.
#   luarocks make rockspec/lua-sip-publish-scm-1.rockspec   (LuaRocks passes the variables)
CC         ?= cc
CFLAGS     ?= -O2 -fPIC
LIBFLAG    ?= -shared
LUA_INCDIR ?= /usr/include/lua5.4
OSIP_INCDIR ?= /usr/include
UV_INCDIR  ?= /usr/include
SSL_INCDIR ?= /usr/include
LIBDIRS    ?=
# One build directory per Lua: the objects of the binding depend on its headers.
BUILD      ?= build/rock/$(subst /,_,$(LUA_INCDIR))
include mk/sources.mk

DEPS_INC  := -I$(OSIP_INCDIR) -I$(UV_INCDIR) -I$(SSL_INCDIR)
ROCK_CFLAGS := -std=c11 -D_GNU_SOURCE $(CFLAGS) -fPIC -fvisibility=hidden
LIBS      := $(LIBDIRS) -losip2 -losipparser2 -luv -lcrypto
OBJ_OF     = $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(1))
LAYER_FLAGS = $(if $(findstring /core/,$<),$(CORE_INC),$(if $(findstring /drivers/,$<),$(UV_INC),$(if $(findstring /compositor/,$<),$(COMP_INC),$(LUA_INC) -I$(LUA_INCDIR))))
HEADERS   := $(wildcard csrc/include/*.h csrc/*/*.h csrc/drivers/*/*.h csrc/lua/compat/*)
LUA_MODULES := $(wildcard lua/sip/*.lua)

.PHONY: rock-build rock-install

rock-build: $(BUILD)/sip/core.so $(BUILD)/sip-compositor

$(BUILD)/obj/%.o: csrc/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ROCK_CFLAGS) $(LAYER_FLAGS) $(DEPS_INC) -c $< -o $@

$(BUILD)/sip/core.so: $(call OBJ_OF,$(MODULE_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) -o $@ $^ $(LIBS)

$(BUILD)/sip-compositor: $(COMP_MAIN) $(call OBJ_OF,$(COMP_SRC) csrc/core/causes.c csrc/core/osip.c csrc/core/frame.c)
	$(CC) $(ROCK_CFLAGS) $(COMP_INC) $(DEPS_INC) -o $@ $^ $(LIBDIRS) -losip2 -losipparser2 -luv

# LuaRocks gives INST_LIBDIR (C modules), INST_LUADIR (Lua modules) and INST_BINDIR.
rock-install: rock-build
	mkdir -p $(INST_LIBDIR)/sip $(INST_LUADIR)/sip $(INST_BINDIR)
	cp $(BUILD)/sip/core.so $(INST_LIBDIR)/sip/core.so
	cp $(LUA_MODULES) $(INST_LUADIR)/sip/
	cp $(BUILD)/sip-compositor $(INST_BINDIR)/sip-compositor
