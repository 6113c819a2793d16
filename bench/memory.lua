-- bench/memory.lua: bytes per idle published publication seen from Lua: N publications
-- published (W in flight), Timer K run out, then RSS and Lua heap growth divided by N.
-- usage: lua5.4 bench/memory.lua PORT N [W]
package.path = "bench/?.lua;" .. package.path
local common = require "common"
local sip = require "sip"

local port = assert(common.arg_int(arg[1]), "PORT")
local N = common.arg_int(arg[2], 10000)
local W = common.arg_int(arg[3], 256)
local LIMIT = tonumber(os.getenv("BENCH_RUN_LIMIT") or "120")
local SETTLE = 6 -- seconds: Timer K (T4 = 5 s) frees every completed transaction

local ua = sip.UA.new { uri = "sip:bench@127.0.0.1", outboundProxy = "sip:127.0.0.1:" .. port,
                        localAddress = "127.0.0.1" }
local OPTS = { contentType = common.CONTENT_TYPE, expires = 3600 }
local BODY = common.BODY1
local contexts = {} -- the application's own references, as a real one would keep
local started, published, failed = 0, 0, 0

collectgarbage("collect")
collectgarbage("collect")
local rss0, lua0 = common.rss(), collectgarbage("count")

local function measure()
  collectgarbage("collect")
  collectgarbage("collect")
  local rss1, lua1 = common.rss(), collectgarbage("count")
  common.result("memory_lua", {
    n = N, published = published, failed = failed, body = #BODY,
    rss_delta = rss1 - rss0, per_pub_rss = (rss1 - rss0) / N,
    per_pub_lua_heap = (lua1 - lua0) * 1024 / N,
  })
  io.stdout:flush()
  os.exit(published == N and failed == 0 and 0 or 1) -- no unpublish: the compositor is stopped
end

local start
local function on_published()
  published = published + 1
  if started < N then start() end
  if published == N then sip.timer(SETTLE, measure) end
end
local function on_failed() failed = failed + 1 end

start = function()
  started = started + 1
  local ctx = ua:publish("sip:m" .. started .. "@127.0.0.1", "presence", BODY, OPTS)
  ctx:on("published", on_published)
  ctx:on("failed", on_failed)
  contexts[started] = ctx
end

sip.timer(LIMIT, function()
  io.stderr:write("memory: time limit reached\n")
  measure()
end):unref()
for _ = 1, math.min(W, N) do start() end
sip.run()
