-- bench/openresty/uv_client.lua PORT N W: the life on the libuv driver (run under luajit or
-- lua5.4); prints "transactions failed wall_s cpu_s".
package.path = "bench/openresty/?.lua;lua/?.lua;lua/?/init.lua;" .. package.path
local sip = require "sip"
local port, N, W = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3])
local ua = sip.UA.new { uri = "sip:bench@127.0.0.1", outbound_proxy = "sip:127.0.0.1:" .. port,
                        local_address = "127.0.0.1" }
local t0, c0 = sip.now(), os.clock()
require "life" (ua, N, W, function(tx, failed)
  print(tx, failed, sip.now() - t0, os.clock() - c0)
  ua:close()
end)
sip.run()
