-- Publishes a voicemail summary (RFC 3842 message-summary): two new messages, then one read,
-- then the state removed.
-- Usage: lua5.4 examples/message-summary.lua [proxy-uri [aor]]
-- With no proxy it starts the bundled test compositor on loopback and publishes there.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("SIP_BUILD") or "build") .. "/?.so;" .. package.cpath
local sip = require "sip"

local proxy, aor = arg[1], arg[2] or "sip:carol@example.com"
local server
if not proxy then
  server = sip.Compositor.new { port = 0 }
  proxy = server:uri()
end

-- RFC 3842 §5.2: text, CRLF line ends; "Voice-Message: new/old (urgent new/urgent old)".
local function summary(new, old)
  return table.concat({
    "Messages-Waiting: " .. (new > 0 and "yes" or "no"),
    "Message-Account: " .. aor,
    ("Voice-Message: %d/%d (0/0)"):format(new, old),
    "",
  }, "\r\n")
end

local ua = sip.UA.new { uri = aor, outboundProxy = proxy, localAddress = "127.0.0.1" }
local pub = ua:publish(aor, "message-summary", summary(2, 0),
                       { contentType = "application/simple-message-summary", expires = 3600 })

local step, status = 0, 1
pub:on("published", function(r)
  step = step + 1
  print(("published %d %s etag=%s"):format(r.status_code, r.reason_phrase, pub.etag))
  if step == 1 then
    pub:publish(summary(1, 1)) -- one message listened to
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
