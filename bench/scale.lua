-- bench/scale.lua: N publications with short server expiries (10..30 s requested, spread)
-- refreshing on their own for SECS seconds: late refreshes (412), missed ones, CPU per
-- refresh and event-loop lateness of a 10 ms timer. usage: lua5.4 bench/scale.lua PORT N SECS [W]
package.path = "bench/?.lua;" .. package.path
local common = require "common"
local sip = require "sip"

local port = assert(common.arg_int(arg[1]), "PORT")
local N = common.arg_int(arg[2], 100000)
local SECS = tonumber(arg[3]) or 60
local W = common.arg_int(arg[4], 256)
local MIN_EXP, MAX_EXP = 10, 30

local ua = sip.UA.new { uri = "sip:bench@127.0.0.1", outbound_proxy = "sip:127.0.0.1:" .. port,
                        local_address = "127.0.0.1" }
local BODY = common.BODY1
local last_ok, expires_of = {}, {}
local started, initial_done, refreshes, late412, failed = 0, 0, 0, 0, 0
local t_start, t_ramped, c_ramped, refreshes_at_ramp
local now = sip.now

local start
start = function()
  started = started + 1
  local i = started
  local exp = MIN_EXP + (i % (MAX_EXP - MIN_EXP + 1))
  expires_of[i] = exp
  local ctx = ua:publish("sip:s" .. i .. "@127.0.0.1", "presence", BODY,
                         { contentType = common.CONTENT_TYPE, expires = exp })
  local first = true
  ctx:on("published", function()
    last_ok[i] = now()
    if first then
      first = false
      initial_done = initial_done + 1
      if started < N then start() end
      if initial_done == N then
        t_ramped, c_ramped, refreshes_at_ramp = now(), os.clock(), refreshes
      end
    else
      refreshes = refreshes + 1
    end
  end)
  ctx:on("progress", function(r) if r and r.status_code == 412 then late412 = late412 + 1 end end)
  ctx:on("failed", function() failed = failed + 1 end)
end

-- Event-loop lateness: a timer re-armed every 10 ms, how late each firing is.
local lateness, ticking = {}, true
local PERIOD = 0.010
local function arm(expected)
  sip.timer(PERIOD, function()
    local t = now()
    lateness[#lateness + 1] = t - expected
    if ticking then arm(t + PERIOD) end
  end)
end

local function finish()
  ticking = false
  local t_end, c_end = now(), os.clock()
  local missed = 0
  for i = 1, started do
    if not last_ok[i] or t_end - last_ok[i] > expires_of[i] then missed = missed + 1 end
  end
  table.sort(lateness)
  local function pct(p)
    if #lateness == 0 then return 0 end
    return lateness[math.max(1, math.ceil(#lateness * p))] * 1000
  end
  local steady_refresh = t_ramped and (refreshes - refreshes_at_ramp) or 0
  local steady_cpu = t_ramped and (c_end - c_ramped) or 0
  common.result("scale", {
    n = N, started = started, published = initial_done, secs = t_end - t_start,
    ramp_secs = t_ramped and (t_ramped - t_start) or -1, refreshes = refreshes,
    steady_refreshes = steady_refresh, late412 = late412, failed = failed, missed = missed,
    cpu_total = c_end, cpu_steady = steady_cpu,
    us_per_refresh = steady_refresh > 0 and steady_cpu / steady_refresh * 1e6 or -1,
    lat_p50_ms = pct(0.50), lat_p99_ms = pct(0.99), lat_max_ms = pct(1.0), ticks = #lateness,
    refresh_rate = steady_refresh > 0 and steady_refresh / (t_end - t_ramped) or 0,
  })
  io.stdout:flush()
  os.exit((late412 == 0 and failed == 0 and missed == 0) and 0 or 1)
end

t_start = now()
arm(t_start + PERIOD)
for _ = 1, math.min(W, N) do start() end
sip.timer(SECS, finish)
sip.run()
