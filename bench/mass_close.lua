-- bench/mass_close.lua — ua:close() with N publications against build/sip-compositor over
-- loopback (issue 13 #5): how long the close takes and how many publications are left at the
-- server (initials answered 2xx minus removes answered 2xx, read from the compositor's
-- --verbose log). The publications are made first through a window of 64, as an application
-- would ramp them, so that only the close is measured.
--   SIP_BUILD=build lua5.4 bench/mass_close.lua [N]
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
local BUILD = os.getenv("SIP_BUILD") or "build"
package.cpath = BUILD .. "/?.so;" .. package.cpath
local sip = require "sip"
local loop = require "support.loop"

local N = tonumber(arg[1]) or 100000
local log = os.tmpname()
os.execute(("%s/sip-compositor --listen 127.0.0.1:0 --verbose > %s 2>&1 & echo $! > %s.pid")
           :format(BUILD, log, log))
local port
for _ = 1, 500 do
  local f = io.open(log)
  local s = f and f:read("a") or ""
  if f then f:close() end
  port = s:match("listening 127%.0%.0%.1:(%d+)")
  if port then break end
  os.execute("sleep 0.01")
end
assert(port, "sip-compositor did not start")
local pid = io.open(log .. ".pid"):read("l")

local ua = sip.UA.new { uri = "sip:bench@127.0.0.1", outboundProxy = "sip:127.0.0.1:" .. port,
                        localAddress = "127.0.0.1" }
local started, published, failed, unpublished_ok, unpublished_other = 0, 0, 0, 0, 0
local function start_one()
  started = started + 1
  local ctx = ua:publish("sip:u" .. started .. "@127.0.0.1", "presence", "open", { expires = 3600 })
  ctx:on("published", function()
    published = published + 1
    if started < N then start_one() end
  end)
  ctx:on("failed", function() failed = failed + 1; if started < N then start_one() end end)
  ctx:on("unpublished", function(r)
    if r and r.status_code >= 200 and r.status_code < 300 then unpublished_ok = unpublished_ok + 1
    else unpublished_other = unpublished_other + 1 end
  end)
end
for _ = 1, 64 do if started < N then start_one() end end
assert(loop.run_until(function() return published + failed >= N end, 1200), "the ramp did not finish")
local ramp_failed = failed
local t0 = sip.now()
ua:close()
local closed = loop.run_until(function() return ua._core:state() == "closed" end, 1200)
local secs = sip.now() - t0
os.execute("sleep 1")
os.execute("kill " .. pid)
local initials, removes = 0, 0
for line in io.lines(log) do
  if not line:find("(retransmission)", 1, true) then
    if line:find(" if-match=- expires=%d+ -> 2%d%d") then initials = initials + 1 end
    if line:find(" expires=0 -> 2%d%d") then removes = removes + 1 end
  end
end
os.remove(log)
os.remove(log .. ".pid")
print(("mass close: %d publications (%d failed in the ramp); ua:close() %s in %.1f s; " ..
       "unpublished 2xx %d, other %d, failed %d; left at the server: %d")
      :format(N, ramp_failed, closed and "closed" or "did NOT close", secs, unpublished_ok,
              unpublished_other, failed - ramp_failed, initials - removes))
