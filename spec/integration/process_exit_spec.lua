-- Process exit with objects open (#integration: a second Lua process publishes over loopback
-- to the sip-compositor program): teardown at exit neither crashes nor sends anything.
-- The collector-driven lifetime rules are in spec/unit/lifetime_spec.lua.
describe("process exit #integration", function()
  local loop = require "support.loop"
  local sip = require "sip"

  -- A script that ends (here by an error) with a user agent, a timer and a publication
  -- in flight: the state is torn down cleanly, and nothing more is sent (no remove from
  -- a finalizer). The server is the sip-compositor program, which logs what it receives.
  it("tears down open objects at exit without crashing or sending anything", function()
    local build = require("support.common").BUILD
    local log = os.tmpname()
    local server = assert(io.popen("sh -c 'exec ./" .. build .. "/sip-compositor --listen 127.0.0.1:0" ..
                                   " --verbose > " .. log .. "' & echo pid $!", "r"))
    local pid = assert(server:read("*l"):match("^pid (%d+)"))
    local port
    for _ = 1, 100 do -- up to 5 s, in steps of 50 ms of the loop's own timer
      local f = io.open(log)
      port = f and f:read("*a"):match("listening 127%.0%.0%.1:(%d+)")
      if f then f:close() end
      if port then break end
      sip.timer(0.05, function() end)
      sip.run_once()
    end
    assert(port, "the compositor did not start")

    local script = [[
      package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
      package.cpath = "]] .. build .. [[/?.so;" .. package.cpath
      local sip = require "sip"
      local esc = sip.Compositor.new {}
      local ua = sip.UA.new { uri = "sip:a@example.com", outbound_proxy = "sip:127.0.0.1:]] .. port .. [[",
                              local_address = "127.0.0.1" }
      local pub = ua:publish("sip:a@example.com", "presence", "x")
      pub:on("published", function() error("the script ends here") end)
      sip.on_error = function(msg) io.stderr:write(msg, "\n") os.exit(3, true) end
      sip.timer(10, function() end)
      sip.run()
    ]]
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(script)
    f:close()
    local interpreter = os.getenv("SIP_LUA") or require("support.common").LUA
    local proc = assert(io.popen(interpreter .. " " .. path .. " 2>&1; echo rc=$?"))
    local out = proc:read("*a")
    proc:close()
    os.remove(path)
    loop.run_until(nil, 0.3) -- anything sent at exit would have arrived by now
    os.execute("kill " .. pid)
    server:close()
    local received = io.open(log):read("*a")
    os.remove(log)
    assert.is_truthy(out:find("the script ends here", 1, true), out)
    assert.is_truthy(out:find("rc=3\n", 1, true), out) -- the script's status, not an abort
    local n = select(2, received:gsub("\n#%d+ PUBLISH", ""))
    assert.are.equal(1, n, received) -- the initial only: no remove from a finalizer
  end)
end)
