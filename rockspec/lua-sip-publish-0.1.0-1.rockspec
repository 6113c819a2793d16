rockspec_format = "3.0"
package = "lua-sip-publish"
version = "0.1.0-1"
source = {
  url = "https://example.invalid/releases/lua-sip-publish-0.1.0.tar.gz",
  dir = "lua-sip-publish-0.1.0",
}
description = {
  summary = "SIP event-state publication (RFC 3903 PUBLISH) for Lua",
  detailed = [[
    Publishes presence, dialog, message-summary or any other event state to a SIP Event
    State Compositor, with the API of SIP.PublishClientContext: a C core on libosip2 and
    libuv, exposed to Lua as userdata, with a bundled RFC 3903 test compositor.
  ]],
  license = "MIT",
  labels = { "sip", "voip", "presence", "rfc3903" },
}
dependencies = { "lua >= 5.1" }
-- libosip2 and libosipparser2 (SIP messages), libuv (sockets, timers), OpenSSL libcrypto
-- (digest hashes, random numbers). Debian: libosip2-dev libuv1-dev libssl-dev.
external_dependencies = {
  OSIP2 = { header = "osipparser2/osip_parser.h", library = "osipparser2" },
  LIBUV = { header = "uv.h", library = "uv" },
  OPENSSL = { header = "openssl/evp.h", library = "crypto" },
}
-- Built by mk/rock.mk (the source lists of mk/sources.mk, an include path per layer), which
-- also builds and installs the sip-compositor program (the bundled test server).
build = {
  type = "make",
  makefile = "mk/rock.mk",
  build_target = "rock-build",
  install_target = "rock-install",
  build_variables = {
    CC = "$(CC)", CFLAGS = "$(CFLAGS)", LIBFLAG = "$(LIBFLAG)", LUA_INCDIR = "$(LUA_INCDIR)",
    OSIP_INCDIR = "$(OSIP2_INCDIR)", UV_INCDIR = "$(LIBUV_INCDIR)", SSL_INCDIR = "$(OPENSSL_INCDIR)",
    LIBDIRS = "-L$(OSIP2_LIBDIR) -L$(LIBUV_LIBDIR) -L$(OPENSSL_LIBDIR)",
  },
  install_variables = {
    CC = "$(CC)", CFLAGS = "$(CFLAGS)", LIBFLAG = "$(LIBFLAG)", LUA_INCDIR = "$(LUA_INCDIR)",
    OSIP_INCDIR = "$(OSIP2_INCDIR)", UV_INCDIR = "$(LIBUV_INCDIR)", SSL_INCDIR = "$(OPENSSL_INCDIR)",
    LIBDIRS = "-L$(OSIP2_LIBDIR) -L$(LIBUV_LIBDIR) -L$(OPENSSL_LIBDIR)",
    INST_LIBDIR = "$(LIBDIR)", INST_LUADIR = "$(LUADIR)", INST_BINDIR = "$(BINDIR)",
  },
  -- LuaRocks wraps the command with the interpreter and paths of the tree it is installed in.
  install = { bin = { ["sip-publish"] = "bin/sip-publish.lua" } },
}
test_dependencies = { "busted" }
test = { type = "busted" }
