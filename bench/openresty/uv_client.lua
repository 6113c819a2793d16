-- bench/openresty/uv_client.lua PORT N W [idle]: the life on the libuv driver (run under
-- luajit or lua5.4); prints "transactions failed wall_s cpu_s"; with idle, as app.lua's idle.
package.path = "bench/openresty/?.lua;lua/?.lua;lua/?/init.lua;" .. package.path
local sip = require "sip"
local port, N, W = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3])
local ua = sip.UA.new { uri = "sip:bench@127.0.0.1", outbound_proxy = "sip:127.0.0.1:" .. port,
                        local_address = "127.0.0.1" }
if arg[4] == "idle" then
  local function rss_bytes()
    local f = io.open("/proc/self/statm")
    local pages = tonumber(f:read("*a"):match("^%d+%s+(%d+)"))
    f:close()
    return pages * 4096
  end
  collectgarbage()
  collectgarbage()
  local k0, r0 = collectgarbage("count"), rss_bytes()
  require "idle" (ua, N, W, function(published, failed)
    sip.timer(6, function() -- Timer K frees the completed transactions
      collectgarbage()
      collectgarbage()
      print(published, failed, ("%.0f"):format((collectgarbage("count") - k0) * 1024 / N),
            ("%.0f"):format((rss_bytes() - r0) / N))
      ua:close()
    end)
  end)
else
  local t0, c0 = sip.now(), os.clock()
  require "life" (ua, N, W, function(tx, failed)
    print(tx, failed, sip.now() - t0, os.clock() - c0)
    ua:close()
  end)
end
sip.run()
