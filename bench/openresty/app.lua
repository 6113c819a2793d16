-- bench/openresty/app.lua: GET /run?port=P&n=N&w=W runs the life on the OpenResty driver in
-- this worker and answers "transactions failed wall_s cpu_s" (the worker's CPU, user+system,
-- from /proc/self/stat: 10 ms ticks). With &idle=1: N idle publications, answering
-- "published failed lua_bytes_per_pub rss_bytes_per_pub".
local sip = require "sip"
local openresty = require "sip.openresty"
local life = require "life"

local function cpu_s()
  local f = io.open("/proc/self/stat")
  local stat = f:read("*a")
  f:close()
  local fields = {}
  for v in stat:gsub("^.-%) ", ""):gmatch("%S+") do fields[#fields + 1] = v end
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100 -- utime, stime (after pid, comm)
end

local function rss_bytes()
  local f = io.open("/proc/self/statm")
  local pages = tonumber(f:read("*a"):match("^%d+%s+(%d+)"))
  f:close()
  return pages * 4096
end

local function idle(port, N, W)
  local sema = require("ngx.semaphore").new()
  collectgarbage()
  collectgarbage()
  local ua = sip.UA.new { uri = "sip:bench@127.0.0.1", outbound_proxy = "sip:127.0.0.1:" .. port,
                          driver = openresty.driver() }
  local k0, r0 = collectgarbage("count"), rss_bytes()
  local result
  require "idle" (ua, N, W, function(published, failed)
    ngx.sleep(6) -- Timer K frees the completed transactions
    collectgarbage()
    collectgarbage()
    result = ("%d\t%d\t%.0f\t%.0f"):format(published, failed, (collectgarbage("count") - k0) * 1024 / N,
                                            (rss_bytes() - r0) / N)
    ua:close()
    sema:post(1)
  end)
  sema:wait(300)
  return result or "timeout"
end

return function(port, N, W, idle_mode)
  if idle_mode then return idle(port, N, W) end
  local sema = require("ngx.semaphore").new()
  local ua = sip.UA.new { uri = "sip:bench@127.0.0.1", outbound_proxy = "sip:127.0.0.1:" .. port,
                          driver = openresty.driver() }
  ngx.update_time()
  local t0, c0 = ngx.now(), cpu_s()
  local result
  life(ua, N, W, function(tx, failed)
    ngx.update_time()
    result = ("%d\t%d\t%.3f\t%.2f"):format(tx, failed, ngx.now() - t0, cpu_s() - c0)
    ua:close()
    sema:post(1)
  end)
  sema:wait(300)
  return result or "timeout"
end
