# mk/sources.mk — the one list of C sources, per layer; the Makefile, the fuzz and bench builds
# and the rock's build (mk/rock.mk, which the rockspecs name) all read it.
#
#   csrc/include     public headers: the core (sipub.h), the libuv driver, the test compositor
#   csrc/core        the sans-I/O protocol core: no libuv, no Lua (enforced by mk/forbid/core)
#   csrc/drivers/uv  the libuv driver: UDP socket, timer, the core's name queries; no Lua
#   csrc/lua         the Lua binding, module sip.core
#   csrc/compositor  the test Event State Compositor (library part and the sip-compositor program)
#
# Feature switches (make VAR=1; all off by default, which is what the rockspec builds):
#   WITH_CARES=1   the c-ares resolver (NAPTR/SRV/AAAA) in the libuv driver: adds CARES_SRC to
#                  the driver layer, -DSIPUB_WITH_CARES to its flags, -lcares, and the
#                  mk/packages/cares.txt list to `make deps`.
#   WITH_TLS=1     TLS over libuv streams with OpenSSL's libssl: adds TLS_SRC to the driver
#                  layer, -DSIPUB_WITH_TLS, -lssl, and mk/packages/tls.txt.
#   WITHOUT_UV=1   sip.core without libuv, for OpenResty (its driver runs on cosockets through
#                  the binding's Lua driver): MODULE_SRC keeps the core and the binding files
#                  that do not need libuv (LUA_UV_SRC, COMP_SRC and UV_SRC are left out), adds
#                  NOUV_SRC and -DSIPUB_WITHOUT_UV to the binding's flags. It does not link yet:
#                  luaopen_sip_core opens the loop provider (lloop.c) unconditionally and LIBS
#                  names -luv. Meanwhile the one module serves OpenResty as it is: a UA with a
#                  Lua driver never creates a libuv loop (lloop.c makes it on first need).
# The *_SRC lists of a feature are empty until the issue that writes its files fills them.

CORE_SRC := csrc/core/ua.c csrc/core/pub.c csrc/core/publish.c csrc/core/txn.c csrc/core/heap.c \
            csrc/core/auth.c csrc/core/check.c csrc/core/route.c csrc/core/osip.c \
            csrc/core/causes.c csrc/core/digest.c csrc/core/msg_util.c csrc/core/msg_build.c \
            csrc/core/msg_template.c csrc/core/msg_parse.c csrc/core/msg_scan.c \
            csrc/core/frame.c csrc/core/flow.c csrc/core/resolve.c csrc/core/trace.c
UV_SRC   := csrc/drivers/uv/uv_driver.c csrc/drivers/uv/uv_udp.c csrc/drivers/uv/uv_dns.c
LUA_SRC  := csrc/lua/lsipub.c csrc/lua/lloop.c csrc/lua/lua_ua.c csrc/lua/lua_pub.c \
            csrc/lua/ldrv_lua.c csrc/lua/ldrv_uv.c csrc/lua/lcompositor.c
COMP_SRC := csrc/compositor/compositor.c csrc/compositor/store.c csrc/compositor/wire.c
COMP_MAIN := csrc/compositor/main.c

# The module sip.core: every layer but the compositor's program.
MODULE_SRC := $(CORE_SRC) $(UV_SRC) $(COMP_SRC) $(LUA_SRC)

# Include paths per layer: each sees the public headers and its own folder only.
CORE_INC := -Icsrc/include -Icsrc/core -Imk/forbid/core
UV_INC   := -Icsrc/include -Icsrc/drivers/uv -Imk/forbid/driver
LUA_INC  := -Icsrc/include -Icsrc/lua -Icsrc/lua/compat
COMP_INC := -Icsrc/include -Icsrc/compositor -Imk/forbid/driver

# ---- feature switches (see the header) ----------------------------------------------------
WITH_CARES ?= 0
WITH_TLS   ?= 0
WITHOUT_UV ?= 0

# The c-ares resolver (e.g. csrc/drivers/uv/dns_cares.c) and TLS (e.g. csrc/drivers/uv/tls.c).
CARES_SRC  :=
TLS_SRC    :=
# The OpenResty build's own files (e.g. its loop provider), when they exist.
NOUV_SRC   :=
# Binding files that call libuv: the loop provider, the libuv driver's glue, the compositor
# class (lua_ua.c, lua_pub.c and ldrv_lua.c do not: a Lua driver needs no libuv).
LUA_UV_SRC := csrc/lua/lloop.c csrc/lua/ldrv_uv.c csrc/lua/lcompositor.c

# Libraries the enabled features link (the Makefile adds them to LIBS) and the package lists
# (mk/packages/*.txt) `make deps` installs for them.
FEATURE_LIBS :=
FEATURE_DEPS :=

ifeq ($(WITH_CARES),1)
UV_SRC       += $(CARES_SRC)
MODULE_SRC   += $(CARES_SRC)
UV_INC       += -DSIPUB_WITH_CARES
FEATURE_LIBS += -lcares
FEATURE_DEPS += cares
endif

ifeq ($(WITH_TLS),1)
UV_SRC       += $(TLS_SRC)
MODULE_SRC   += $(TLS_SRC)
UV_INC       += -DSIPUB_WITH_TLS
FEATURE_LIBS += -lssl
FEATURE_DEPS += tls
endif

ifeq ($(WITHOUT_UV),1)
MODULE_SRC   := $(CORE_SRC) $(filter-out $(LUA_UV_SRC),$(LUA_SRC)) $(NOUV_SRC)
LUA_INC      += -DSIPUB_WITHOUT_UV
endif
