-- bench/openresty/app.lua: GET /run?port=P&n=N&w=W runs the life on the OpenResty driver in
-- this worker and answers "transactions failed wall_s cpu_s" (the worker's CPU, user+system,
-- from /proc/self/stat: 10 ms ticks).
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

return function(port, N, W)
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
