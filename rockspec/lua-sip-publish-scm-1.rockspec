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
        "csrc/core.c", "csrc/message.c", "csrc/scan.c", "csrc/causes.c", "csrc/digest.c", "csrc/lsipub.c",
        "csrc/driver_uv.c",
        "csrc/lcompositor.c", "csrc/compositor.c",
      },
      libraries = { "osip2", "osipparser2", "uv", "crypto" },
      incdirs = { "csrc", "$(LIBUV_INCDIR)", "$(OSIP2_INCDIR)", "$(OSIPPARSER2_INCDIR)", "$(OPENSSL_INCDIR)" },
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
    ["sip.compositor"] = "lua/sip/compositor.lua",
  },
}
test_dependencies = { "busted" }
test = { type = "busted" }
