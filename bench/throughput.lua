-- bench/throughput.lua: N publications through one UA, W of them in flight, each living
-- initial -> refresh -> modify -> remove; prints transactions/s and client CPU.
-- usage: lua5.4 bench/throughput.lua PORT N W
package.path = "bench/?.lua;" .. package.path
local common = require "common"
local sip = require "sip"

local port = assert(common.arg_int(arg[1]), "PORT")
local N = common.arg_int(arg[2], 1000)
local W = common.arg_int(arg[3], 64)
local LIMIT = tonumber(os.getenv("BENCH_RUN_LIMIT") or "120") -- seconds, a hung run stops

local ua = sip.UA.new { uri = "sip:bench@127.0.0.1", outboundProxy = "sip:127.0.0.1:" .. port,
                        localAddress = "127.0.0.1" }
local OPTS = { contentType = common.CONTENT_TYPE, expires = 3600 }
local BODY1, BODY2 = common.BODY1, common.BODY2

local started, done, failed, progress412, published = 0, 0, 0, 0, 0
local t0, c0, t1, c1

local function finish()
  t1, c1 = sip.now(), os.clock()
  ua:close()
end

local start
start = function()
  started = started + 1
  local ctx = ua:publish("sip:u" .. started .. "@127.0.0.1", "presence", BODY1, OPTS)
  local step = 0
  ctx:on("published", function()
    published = published + 1
    step = step + 1
    if step == 1 then ctx:publish()          -- refresh
    elseif step == 2 then ctx:publish(BODY2) -- modify
    else ctx:unpublish() end                 -- remove
  end)
  ctx:on("progress", function(r) if r and r.status_code == 412 then progress412 = progress412 + 1 end end)
  ctx:on("failed", function() failed = failed + 1 end)
  ctx:on("unpublished", function()
    ctx:close()
    done = done + 1
    if started < N then start() elseif done == N then finish() end
  end)
end

local guard = sip.timer(LIMIT, function()
  io.stderr:write("throughput: time limit reached, stopping\n")
  if not t1 then finish() end
  sip.stop()
end)
guard:unref()

t0, c0 = sip.now(), os.clock()
for _ = 1, math.min(W, N) do start() end
sip.run()

local elapsed, cpu = t1 - t0, c1 - c0
local tx = published + done -- 3 published + 1 unpublished per complete publication
common.result("throughput", {
  n = N, w = W, done = done, failed = failed, p412 = progress412, tx = tx,
  elapsed = elapsed, cpu = cpu, tps = tx / elapsed, cpu_per_1k = cpu / tx * 1000,
})
os.exit(done == N and failed == 0 and 0 or 1)
