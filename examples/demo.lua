-- The life of a presence publication against the bundled test compositor on loopback:
-- publish, automatic refresh, modify, unpublish, printing every event and request.
-- Run with `make demo` (or: lua5.4 examples/demo.lua after `make`).
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local sip = require "sip"

local function pidf(basic, note)
  return ([[<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.test">
  <tuple id="t1"><status><basic>%s</basic></status><note>%s</note></tuple>
</presence>]]):format(basic, note)
end

local t0 = sip.now()
local function log(fmt, ...)
  io.write(("[%5.2fs] "):format(sip.now() - t0), fmt:format(...), "\n")
  io.flush()
end

-- The compositor grants at most 4 s, so the automatic refresh (at 0.9 x 4 s) happens soon.
local esc = sip.Compositor.new {
  host = "127.0.0.1", port = 0, max_expires = 4,
  on_request = function(req)
    log("  compositor <- PUBLISH %s  Event: %s  Expires: %s  SIP-If-Match: %s  body: %s",
        req.uri, req.event, req.expires or "-", req.etag or "-",
        req.body and (#req.body .. " bytes") or "none")
  end,
}
log("test compositor listening on %s", esc:uri())

local ua = sip.UA.new { uri = "sip:alice@example.test", outboundProxy = esc:uri(),
                        localAddress = "127.0.0.1" }
local pub = ua:publish("sip:alice@example.test", "presence", pidf("open", "available"),
                       { contentType = "application/pidf+xml", expires = 3600 })

local published = 0
pub:on("progress", function(r, cause) log("progress    %d %s", r.status_code, cause) end)
pub:on("failed", function(r, cause) log("failed      %s %s", r and r.status_code or "-", cause) end)
pub:on("published", function(r, cause)
  published = published + 1
  log("published   %d %s  SIP-ETag: %s  Expires: %s", r.status_code, cause,
      r:getHeader("SIP-ETag"), r:getHeader("Expires"))
  if published == 1 then
    log("waiting for the automatic refresh (0.9 x %s s)...", r:getHeader("Expires"))
  elseif published == 2 then
    log("modifying: the note changes")
    pub:publish(pidf("open", "in a meeting"))
  elseif published == 3 then
    log("unpublishing")
    pub:unpublish()
  end
end)
pub:on("unpublished", function(r, cause)
  log("unpublished %s %s  (compositor now holds %d publication(s))",
      r and r.status_code or "-", cause, esc:count())
  ua:close()
  esc:close()
end)

sip.timer(30, function() log("demo timed out"); os.exit(1) end):unref()
sip.run()
log("done")
