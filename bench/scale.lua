-- bench/scale.lua: N publications with short server expiries (10..30 s requested, spread)
-- refreshing on their own for SECS seconds: late refreshes (412), missed ones, CPU per
-- refresh and event-loop lateness of a 10 ms timer; and the same per second of the run, as
-- "SERIES scale t=… initials=… refreshes=… lat_p50_ms=… lat_p99_ms=… lat_max_ms=…" lines
-- (bench/charts.lua draws them). usage: lua5.4 bench/scale.lua PORT N SECS [W]
package.path = "bench/?.lua;" .. package.path
local common = require "common"
local sip = require "sip"

local port = assert(common.arg_int(arg[1]), "PORT")
local N = common.arg_int(arg[2], 100000)
local SECS = tonumber(arg[3]) or 60
local W = common.arg_int(arg[4], 256)
local MIN_EXP, MAX_EXP = 10, 30

local ua = sip.UA.new { uri = "sip:bench@127.0.0.1", outboundProxy = "sip:127.0.0.1:" .. port,
                        localAddress = "127.0.0.1" }
local BODY = common.BODY1
local last_ok, expires_of = {}, {}
local started, initial_done, refreshes, late412, failed = 0, 0, 0, 0, 0
local t_start, t_ramped, c_ramped, refreshes_at_ramp
local now = sip.now

-- Per second of the run (index 1: the first second): initial 2xx, refresh 2xx, and the
-- lateness samples of the 10 ms timer.
local per_initial, per_refresh, per_lateness = {}, {}, {}
local function second() return math.floor(now() - t_start) + 1 end
local function bump(t, k) t[k] = (t[k] or 0) + 1 end

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
      bump(per_initial, second())
      if started < N then start() end
      if initial_done == N then
        t_ramped, c_ramped, refreshes_at_ramp = now(), os.clock(), refreshes
      end
    else
      refreshes = refreshes + 1
      bump(per_refresh, second())
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
    local k = second()
    local l = per_lateness[k]
    if not l then l = {}; per_lateness[k] = l end
    l[#l + 1] = t - expected
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
  for k = 1, math.floor(t_end - t_start) do
    local l = per_lateness[k] or {}
    table.sort(l)
    local function at(p) return #l > 0 and l[math.max(1, math.ceil(#l * p))] * 1000 or 0 end
    io.write(("SERIES scale t=%d initials=%d refreshes=%d lat_p50_ms=%.3f lat_p99_ms=%.3f lat_max_ms=%.3f\n")
      :format(k - 1, per_initial[k] or 0, per_refresh[k] or 0, at(0.5), at(0.99), at(1.0)))
  end
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
