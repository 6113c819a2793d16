rockspec_format = "3.0"
package = "lua-sip-publish"
version = "scm-1"
source = { url = "git+https://example.invalid/lua-sip-publish.git" }
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
dependencies = { "lua >= 5.4, < 5.5" }
external_dependencies = {
  LIBUV = { header = "uv.h", library = "uv" },
  OSIP2 = { header = "osip2/osip.h", library = "osip2" },
  OSIPPARSER2 = { header = "osipparser2/osip_parser.h", library = "osipparser2" },
  OPENSSL = { header = "openssl/evp.h", library = "crypto" },
}
build = {
  type = "builtin",
  modules = {
    ["sip.core"] = {
      sources = {
        "csrc/core/ua.c", "csrc/core/pub.c", "csrc/core/publish.c", "csrc/core/txn.c",
        "csrc/core/heap.c", "csrc/core/auth.c", "csrc/core/check.c", "csrc/core/route.c",
        "csrc/core/osip.c", "csrc/core/causes.c", "csrc/core/digest.c", "csrc/core/msg_util.c",
        "csrc/core/msg_build.c", "csrc/core/msg_template.c", "csrc/core/msg_parse.c",
        "csrc/core/msg_scan.c", "csrc/drivers/uv/uv_driver.c", "csrc/compositor/compositor.c",
        "csrc/lua/lsipub.c", "csrc/lua/lloop.c", "csrc/lua/lua_ua.c", "csrc/lua/lua_pub.c",
        "csrc/lua/ldrv_lua.c", "csrc/lua/ldrv_uv.c", "csrc/lua/lcompositor.c",
      },
      libraries = { "osip2", "osipparser2", "uv", "crypto" },
      incdirs = { "csrc/include", "csrc/core", "csrc/drivers/uv", "csrc/lua", "csrc/compositor", "$(LIBUV_INCDIR)", "$(OSIP2_INCDIR)", "$(OSIPPARSER2_INCDIR)", "$(OPENSSL_INCDIR)" },
      libdirs = { "$(LIBUV_LIBDIR)", "$(OSIP2_LIBDIR)", "$(OSIPPARSER2_LIBDIR)", "$(OPENSSL_LIBDIR)" },
      defines = { "_GNU_SOURCE" },
    },
    ["sip"] = "lua/sip/init.lua",
    ["sip.ua"] = "lua/sip/ua.lua",
    ["sip.context"] = "lua/sip/context.lua",
    ["sip.emitter"] = "lua/sip/emitter.lua",
    ["sip.response"] = "lua/sip/response.lua",
    ["sip.check"] = "lua/sip/check.lua",
    ["sip.testing"] = "lua/sip/testing.lua",
    ["sip.vnet"] = "lua/sip/vnet.lua",
    ["sip.openresty"] = "lua/sip/openresty.lua",
    ["sip.compositor"] = "lua/sip/compositor.lua",
  },
}
test_dependencies = { "busted" }
test = { type = "busted" }
