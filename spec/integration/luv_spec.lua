-- luv and luvit (#integration): with luv loaded (before or after sip), the library runs on
-- luv's loop, so uv.run() drives both and sip.run() is uv.run(); a luv timer, a luv UDP
-- socket and publications interleave; refreshes keep their times while luv work runs; the
-- process ends when everything is closed. Each case runs as a process, under Lua 5.4 and,
-- when its build is there (make luajit), LuaJIT with the 5.1 luv (luvit's pairing).
local BUILD = os.getenv("SIP_BUILD") or "build"

local common = require "support.common"
local function have(cmd) return common.ok(cmd .. " >/dev/null 2>&1") end

local RUNTIMES = {
  -- each runtime with its own build, whichever runs the suite
  { name = "lua5.4", exe = "lua5.4", build = not jit and BUILD or "build", ok = have("lua5.4 -e 'require\"luv\"'") },
  { name = "luajit", exe = "luajit", build = jit and BUILD or "build/luajit",
    ok = have("luajit -e 'require\"luv\"'") and io.open((jit and BUILD or "build/luajit") .. "/sip/core.so") ~= nil },
}

local function run(rt, body)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(("package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path\n" ..
           "package.cpath = '%s/?.so;' .. package.cpath\n"):format(rt.build), body)
  f:close()
  local p = io.popen(("timeout 20 %s %s 2>&1; echo \"exit=$?\""):format(rt.exe, path))
  local out = p:read("*a")
  p:close()
  os.remove(path)
  return out
end

local INTERLEAVE = [[
local LUV_FIRST = ...
local uv, sip
if LUV_FIRST then uv = require "luv"; sip = require "sip" else sip = require "sip"; uv = require "luv" end
local core = require "sip.core"
local comp = sip.Compositor.new{ port = 0, max_expires = 2, default_expires = 2 }
local ua = sip.UA.new{ uri = "sip:alice@example.com", outbound_proxy = comp:uri() }
local ctx = ua:publish("sip:alice@example.com", "presence", "open", { expires = 2 })
local t0, published = uv.hrtime(), {}
ctx:on("published", function() published[#published + 1] = (uv.hrtime() - t0) / 1e6 end)
-- luv work: a timer ticking and a UDP echo between two luv sockets
local ticks, echoes = 0, 0
local a, b = uv.new_udp(), uv.new_udp()
a:bind("127.0.0.1", 0); b:bind("127.0.0.1", 0)
local bport = b:getsockname().port
b:recv_start(function(err, data, addr) if data then b:send(data, addr.ip, addr.port) end end)
a:recv_start(function(err, data) if data then echoes = echoes + 1 end end)
local t = uv.new_timer()
t:start(50, 50, function()
  ticks = ticks + 1
  a:send("ping", "127.0.0.1", bport)
  if ticks == 80 then -- 4 s: two refreshes due at 1.8 s and 3.6 s
    t:close(); a:close(); b:close()
    ua:close()
    ctx:on("unpublished", function() comp:close() end)
  end
end)
local rounds = 0
repeat rounds = rounds + 1 until not uv.run() or rounds > 3
print("loop", core.loop_info(), "ticks", ticks, "echoes", echoes, "published", #published,
      "at", table.concat(published, ","), "state", ua._core:state(), "server", #comp:publications())
]]

describe("luv's loop #integration", function()
  for _, rt in ipairs(RUNTIMES) do
    for _, order in ipairs { "luv first", "sip first" } do
      local test = rt.ok and it or pending
      test(("%s, %s: uv.run() drives luv's work and the publications"):format(rt.name, order), function()
        local out = run(rt, INTERLEAVE:gsub("local LUV_FIRST = %.%.%.", "local LUV_FIRST = " ..
                                             tostring(order == "luv first")))
        assert.matches("loop\tluv", out)
        local ticks, echoes, n, at = out:match("ticks\t(%d+)\techoes\t(%d+)\tpublished\t(%d+)\tat\t(%S+)")
        assert.is_truthy(ticks, out)
        assert.are.equal(80, tonumber(ticks))
        assert.is_true(tonumber(echoes) >= 70, out)
        assert.are.equal(3, tonumber(n), out) -- the initial and two refreshes
        local times = {}
        for v in at:gmatch("[^,]+") do times[#times + 1] = tonumber(v) end
        -- the refreshes leave at 0.9 x 2 s after each request: not held up by luv's work
        assert.is_true(math.abs(times[2] - times[1] - 1800) < 400, out)
        assert.is_true(math.abs(times[3] - times[2] - 1800) < 400, out)
        assert.matches("state\tclosed\tserver\t0", out)
        assert.matches("exit=0", out) -- uv.run() returned: nothing left open
      end)
    end

    local test = rt.ok and it or pending
    test(rt.name .. ": sip.run() is uv.run(): luv's timers tick while it runs", function()
      local out = run(rt, [[
local uv = require "luv"
local sip = require "sip"
local ticks = 0
local t = uv.new_timer()
t:start(10, 10, function() ticks = ticks + 1; if ticks == 20 then t:close() end end)
sip.timer(0.05, function() end)
sip.run()
print("ticks", ticks)
]])
      assert.matches("ticks\t20", out)
    end)
  end
end)
