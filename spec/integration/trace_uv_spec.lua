-- The message trace over the libuv driver (#integration): real datagrams on loopback against
-- the bundled compositor; the PUBLISH and its 200 traced with the compositor's address, and a
-- junk datagram from another socket (a luv one) traced as dropped with its real source.
-- Runs as a process (luv shares the module's loop there), under Lua 5.4.
local BUILD = os.getenv("SIP_BUILD") or "build"

local function have(cmd) return os.execute(cmd .. " >/dev/null 2>&1") == true end

local SCRIPT = [[
local uv = require "luv"
local sip = require "sip"
local comp = sip.Compositor.new{ port = 0 }
local lines = {}
local ua = sip.UA.new{ uri = "sip:alice@example.com", outbound_proxy = comp:uri(),
  trace = function(dir, text, remote, note, time, reason)
    lines[#lines + 1] = ("%s %s %s %s | %s"):format(dir, tostring(remote), tostring(reason),
                                                   tostring(note), text:match("^[^\r\n]*"))
  end }
local ctx = ua:publish("sip:alice@example.com", "presence", "open", { expires = 60 })
local junk = uv.new_udp()
junk:bind("127.0.0.1", 0)
print("comp " .. comp:uri():match(":(%d+)$") .. " junk " .. junk:getsockname().port)
ctx:on("published", function()
  junk:send("hello, not SIP", "127.0.0.1", ua:port())
  sip.timer(0.2, function()
    junk:close()
    ua:close() -- removes the state: the compositor closes once that is answered
  end)
end)
ctx:on("unpublished", function() comp:close() end)
sip.run()
for _, l in ipairs(lines) do print(l) end
]]

describe("message trace over libuv #integration", function()
  local ok = have("lua5.4 -e 'require\"luv\"'")
  local test = ok and it or pending
  test("traces the PUBLISH, its 200 and a junk datagram with their real flows", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(("package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path\n" ..
             "package.cpath = '%s/?.so;' .. package.cpath\n"):format(BUILD), SCRIPT)
    f:close()
    local p = io.popen(("timeout 20 lua5.4 %s 2>&1; echo \"exit=$?\""):format(path))
    local out = p:read("*a")
    p:close()
    os.remove(path)
    assert.matches("exit=0", out)
    local comp, junk = out:match("comp (%d+) junk (%d+)")
    assert.is_truthy(comp, out)
    assert.matches("sent udp:127%.0%.0%.1:" .. comp .. " nil nil | PUBLISH sip:alice@example%.com SIP/2%.0", out)
    assert.matches("received udp:127%.0%.0%.1:" .. comp .. " nil nil | SIP/2%.0 200 OK", out)
    assert.matches("sent udp:127%.0%.0%.1:" .. comp .. " nil nil | PUBLISH .*received udp:127%.0%.0%.1:" ..
                   comp .. " nil nil | SIP/2%.0 200 OK.*received", out) -- the remove, answered
    assert.not_matches("retransmission", out)
    assert.matches("dropped udp:127%.0%.0%.1:" .. junk .. " unparseable not a SIP response | hello, not SIP", out)
  end)
end)
