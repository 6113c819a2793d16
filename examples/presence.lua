-- Publishes presence (RFC 3863 PIDF, with a note), changes the note once, then unpublishes.
-- Usage: lua5.4 examples/presence.lua [proxy-uri [aor]]
-- With no proxy it starts the bundled test compositor on loopback and publishes there.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("SIP_BUILD") or "build") .. "/?.so;" .. package.cpath
local sip = require "sip"

local proxy, aor = arg[1], arg[2] or "sip:alice@example.com"
local server
if not proxy then
  server = sip.Compositor.new { port = 0 }
  proxy = server:uri()
end

local function pidf(basic, note)
  return ([[<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="%s">
  <tuple id="t1">
    <status><basic>%s</basic></status>
    <note>%s</note>
  </tuple>
</presence>
]]):format(aor, basic, note)
end

local ua = sip.UA.new { uri = aor, outboundProxy = proxy, localAddress = "127.0.0.1" }
local pub = ua:publish(aor, "presence", pidf("open", "At my desk"),
                       { contentType = "application/pidf+xml", expires = 600 })

local step, status = 0, 1
pub:on("published", function(r)
  step = step + 1
  print(("published %d %s etag=%s"):format(r.status_code, r.reason_phrase, pub.etag))
  if step == 1 then
    pub:publish(pidf("open", "In a meeting until 3pm")) -- modify: a new note
  else
    pub:unpublish()
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
