-- Publishes dialog state (RFC 4235 dialog-info XML): a call ringing, then confirmed, then the
-- state removed (as a phone would around one call).
-- Usage: lua5.4 examples/dialog.lua [proxy-uri [aor]]
-- With no proxy it starts the bundled test compositor on loopback and publishes there.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("SIP_BUILD") or "build") .. "/?.so;" .. package.cpath
local sip = require "sip"

local proxy, aor = arg[1], arg[2] or "sip:bob@example.com"
local server
if not proxy then
  server = sip.Compositor.new { port = 0 }
  proxy = server:uri()
end

local version = 0
local function dialog_info(state)
  version = version + 1 -- RFC 4235 §4.1: each document of an entity gets the next version
  return ([[<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="%d" state="full" entity="%s">
  <dialog id="call-1" call-id="a84b4c76e66710" local-tag="1928301774" direction="recipient">
    <state>%s</state>
    <remote><identity>sip:carol@example.com</identity></remote>
  </dialog>
</dialog-info>
]]):format(version, aor, state)
end

local ua = sip.UA.new { uri = aor, outboundProxy = proxy, localAddress = "127.0.0.1" }
local pub = ua:publish(aor, "dialog", dialog_info("early"),
                       { contentType = "application/dialog-info+xml", expires = 300 })

local step, status = 0, 1
pub:on("published", function(r)
  step = step + 1
  print(("published %d %s etag=%s"):format(r.status_code, r.reason_phrase, pub.etag))
  if step == 1 then
    pub:publish(dialog_info("confirmed")) -- the call was answered
  else
    pub:unpublish()                       -- the call ended
  end
end)
pub:on("unpublished", function(r, cause)
  print("unpublished " .. cause)
  if step == 2 and r and r.status_code == 200 then status = 0 end
  ua:close()
  if server then server:close() end
end)
pub:on("failed", function(r, cause) print("failed " .. cause) end)

sip.run()
os.exit(status)
