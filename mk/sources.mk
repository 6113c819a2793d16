# mk/sources.mk — the one list of C sources, per layer; the Makefile, the fuzz and bench builds
# and `make check-rockspec` (against rockspec/*.rockspec) all read it.
#
#   csrc/include     public headers: the core (sipub.h), the libuv driver, the test compositor
#   csrc/core        the sans-I/O protocol core: no libuv, no Lua (enforced by mk/forbid/core)
#   csrc/drivers/uv  the libuv driver: UDP socket, timer, the core's name queries; no Lua
#   csrc/lua         the Lua binding, module sip.core
#   csrc/compositor  the test Event State Compositor (library part and the sip-compositor program)

CORE_SRC := csrc/core/ua.c csrc/core/pub.c csrc/core/publish.c csrc/core/txn.c csrc/core/heap.c \
            csrc/core/auth.c csrc/core/check.c csrc/core/route.c csrc/core/osip.c \
            csrc/core/causes.c csrc/core/digest.c csrc/core/msg_util.c csrc/core/msg_build.c \
            csrc/core/msg_template.c csrc/core/msg_parse.c csrc/core/msg_scan.c \
            csrc/core/frame.c csrc/core/flow.c csrc/core/resolve.c
UV_SRC   := csrc/drivers/uv/uv_driver.c csrc/drivers/uv/uv_udp.c csrc/drivers/uv/uv_dns.c
LUA_SRC  := csrc/lua/lsipub.c csrc/lua/lloop.c csrc/lua/lua_ua.c csrc/lua/lua_pub.c \
            csrc/lua/ldrv_lua.c csrc/lua/lcompositor.c
COMP_SRC := csrc/compositor/compositor.c csrc/compositor/store.c csrc/compositor/wire.c
COMP_MAIN := csrc/compositor/main.c

# The module sip.core: every layer but the compositor's program.
MODULE_SRC := $(CORE_SRC) $(UV_SRC) $(COMP_SRC) $(LUA_SRC)

# Include paths per layer: each sees the public headers and its own folder only.
CORE_INC := -Icsrc/include -Icsrc/core -Imk/forbid/core
UV_INC   := -Icsrc/include -Icsrc/drivers/uv -Imk/forbid/driver
LUA_INC  := -Icsrc/include -Icsrc/lua
COMP_INC := -Icsrc/include -Icsrc/compositor -Imk/forbid/driver
