-- SIGINT and SIGTERM during sip.run() (#integration): the first closes every user agent, so
-- that each publication is removed at the server, and sip.run returns once they are closed;
-- a second one stops at once with "interrupted!"; the interpreter's own interrupt is raised
-- by sip.run, never reported as an event handler's error. Scripts run as processes.
local BUILD = os.getenv("SIP_BUILD") or "build"
local LUA = require("support.common").LUA

-- Runs a script, sends the signals (name, delay in s) after it printed "ready", returns its
-- output and exit status.
local function run_script(body, signals)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(("package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path\n" ..
           "package.cpath = '%s/?.so;' .. package.cpath\nio.stdout:setvbuf('line')\n"):format(BUILD))
  f:write(body)
  f:close()
  local kills = {}
  for _, s in ipairs(signals) do kills[#kills + 1] = ("sleep %s; kill -%s $P 2>/dev/null"):format(s[2], s[1]) end
  local cmd = ("%s %s > %s.out 2>&1 & P=$!; " ..
               "for i in $(seq 100); do grep -q ready %s.out 2>/dev/null && break; sleep 0.05; done; " ..
               "%s; wait $P; echo \"exit=$?\" >> %s.out"):format(LUA, path, path, path, table.concat(kills, "; "), path)
  os.execute(cmd)
  local out = assert(io.open(path .. ".out")):read("*a")
  os.remove(path)
  os.remove(path .. ".out")
  return out
end

local PUBLISH = [[
local sip = require "sip"
local comp = sip.Compositor.new{ port = 0 }
local ua = sip.UA.new{ uri = "sip:alice@example.com", outbound_proxy = comp:uri() }
local ctx = ua:publish("sip:alice@example.com", "presence", "open", { expires = 60 })
ctx:on("published", function() print("ready", #comp:publications()) end)
ctx:on("unpublished", function(_, cause) print("unpublished", cause, #comp:publications()) end)
sip.timer(30, function() print("timer") end) -- keeps the loop alive: shutdown stops it anyway
local ok, err = pcall(sip.run)
print("returned", ok, err, ua._core:state(), #comp:publications())
]]

describe("signals during sip.run #integration", function()
  for _, sig in ipairs { "INT", "TERM" } do
    it("SIG" .. sig .. " removes the publication and returns", function()
      local out = run_script(PUBLISH, { { sig, 0.2 } })
      assert.matches("ready\t1", out)
      assert.matches("unpublished\tOK\t0", out)
      assert.matches("returned\ttrue\t%a+\tclosed\t0", out)
      assert.matches("exit=0", out)
    end)
  end

  it("a second signal stops at once with interrupted!", function()
    local out = run_script([[
local sip = require "sip"
local comp = sip.Compositor.new{ port = 0 }
local ua = sip.UA.new{ uri = "sip:alice@example.com", outbound_proxy = comp:uri() }
local ctx = ua:publish("sip:alice@example.com", "presence", "open", { expires = 60 })
ctx:on("published", function() comp:close(); print("ready") end) -- the remove gets no answer
print(pcall(sip.run))
]], { { "INT", 0.2 }, { "INT", 0.3 } })
    assert.matches("false\tinterrupted!", out)
    assert.matches("exit=0", out)
  end)

  it("sip.on_signal = false: the interpreter's interrupt ends sip.run, not reported as a handler error", function()
    local out = run_script([[
local sip = require "sip"
sip.on_signal = false
local function busy() for _ = 1, 2e6 do end; sip.timer(0.001, busy) end
sip.timer(0, function() print("ready"); busy() end)
sip.run()
print("not reached")
]], { { "INT", 0.2 } })
    assert.matches("interrupted!", out)
    assert.not_matches("error in event handler", out)
    assert.not_matches("not reached", out)
    assert.not_matches("exit=0", out)
  end)

  it("a function in sip.on_signal is called with the signal's name", function()
    local out = run_script([[
local sip = require "sip"
sip.on_signal = function(name) print("got", name); sip.stop() end
sip.timer(30, function() end)
sip.timer(0, function() print("ready") end)
print("returned", sip.run())
]], { { "TERM", 0.2 } })
    assert.matches("got\tSIGTERM", out)
    assert.matches("returned", out)
  end)
end)
