-- The libuv driver (csrc/drivers/uv/uv_driver.c) over loopback UDP (#integration): responses read in
-- batches (recvmmsg) reach the core once each; requests made while a batch is handled leave
-- together at its end (sendmmsg), in the order they were made; a send the kernel refuses is
-- reported as it was before batching; a user call outside any callback sends at once.
-- spec/support/driver_faults.c covers refusals, EAGAIN and short sends inside a batch.
local sip = require "sip"
local testing = require "sip.testing"
local loop = require "support.loop"
local events = require "support.events"
local BUILD = require("support.common").BUILD

local ok_socket, socket = pcall(require, "socket")
local HAVE_SOCKET = ok_socket and type(socket) == "table" and socket.udp ~= nil

local function record(ctx, name, log)
  for _, e in ipairs { "progress", "published", "failed", "unpublished" } do
    ctx:on(e, function(r, cause)
      log[#log + 1] = ("%s %s(%s,%s)"):format(name, e, tostring(r and r.status_code), tostring(cause))
    end)
  end
end

local function shutdown(ua, ...) loop.shutdown(ua, 10, ...) end

-- A bare UDP server (luasocket), read without running the sip loop.
local function raw_server()
  local s = assert(socket.udp())
  assert(s:setsockname("127.0.0.1", 0))
  local _, port = s:getsockname()
  return s, tonumber(port)
end

-- Waits for one datagram on s while the sip loop runs.
local function next_datagram(s, timeout)
  s:settimeout(0)
  local data, host, port
  loop.run_until(function()
    if not data then data, host, port = s:receivefrom(65536) end -- the predicate runs again at the end
    return data ~= nil
  end, timeout or 5)
  return data, host, port
end

-- A 200 OK to the raw request req.
local function ok_to(req, etag)
  return testing.response_for(testing.parse(req), 200, { ["SIP-ETag"] = etag, Expires = 600 })
end

local function call_id(req) return req:match("\r\nCall%-ID: *([^\r\n]+)") end

describe("libuv driver #integration", function()
  events.fail_on_handler_errors(before_each, after_each)

  it("64 lives in flight: every answer reaches its publication once, every request leaves once", function()
    local N, W = 200, 64
    local numbers = {} -- the compositor numbers each PUBLISH, retransmissions excepted
    local comp = sip.Compositor.new { record = false, on_request = function(r) numbers[r.number] = true end }
    local ua = sip.UA.new { uri = "sip:bench@127.0.0.1", outbound_proxy = comp:uri(), local_address = "127.0.0.1" }
    local started, done, events = 0, 0, {}
    local function start()
      started = started + 1
      local name = "u" .. started
      local ctx = ua:publish("sip:" .. name .. "@127.0.0.1", "presence", "B1", { expires = 600 })
      local log, step = {}, 0
      events[name] = log
      record(ctx, "", log)
      ctx:on("published", function()
        step = step + 1
        if step == 1 then ctx:publish() elseif step == 2 then ctx:publish("B2") else ctx:unpublish() end
      end)
      ctx:on("unpublished", function()
        ctx:close()
        done = done + 1
        if started < N then start() end
      end)
    end
    for _ = 1, W do start() end
    assert(loop.run_until(function() return done == N end, 60), ("%d of %d lives ended"):format(done, N))
    for name, log in pairs(events) do
      assert.are.same({ " published(200,OK)", " published(200,OK)", " published(200,OK)", " unpublished(200,OK)" },
                      log, name)
    end
    for i = 1, 4 * N do assert(numbers[i], "PUBLISH number " .. i .. " never arrived") end
    assert.is_nil(numbers[4 * N + 1])
    shutdown(ua, comp)
  end)

  it("a send refused by the kernel inside a handler fails that publication at once, as before", function()
    -- An IPv4 socket cannot send to an IPv6 address: the first datagram to a destination
    -- goes out directly, so send() returns the refusal and events keep their order.
    local comp = sip.Compositor.new {}
    local ua = sip.UA.new { uri = "sip:alice@example.com", local_address = "127.0.0.1" }
    local log = {}
    local a = ua:publish(("sip:a@127.0.0.1:%d"):format(comp.port), "presence", "A1")
    record(a, "A", log)
    local b, c, d
    a:on("published", function()
      if b then return end
      b = ua:publish("sip:b@[::1]:5060", "presence", "B1")
      record(b, "B", log)
      c = ua:publish(("sip:c@127.0.0.1:%d"):format(comp.port), "presence", "C1")
      record(c, "C", log)
      d = ua:publish(("sip:d@127.0.0.1:%d"):format(comp.port), "presence", ("x"):rep(70000)) -- EMSGSIZE
      record(d, "D", log)
    end)
    assert(loop.run_until(function() return #log >= 6 end, 5), table.concat(log, "\n"))
    assert.are.same({
      "A published(200,OK)",
      "B failed(nil,Connection Error)", "B unpublished(nil,Connection Error)",
      "D failed(nil,Connection Error)", "D unpublished(nil,Connection Error)",
      "C published(200,OK)",
    }, log)
    shutdown(ua, comp)
  end)

  it("a user call outside any callback sends at once, before the loop runs", function()
    if not HAVE_SOCKET then pending("luasocket (lua-socket) is not installed") return end
    local s, port = raw_server()
    local ua = sip.UA.new { uri = "sip:alice@example.com", outbound_proxy = ("sip:127.0.0.1:%d"):format(port),
                            local_address = "127.0.0.1" }
    ua:publish("sip:alice@example.com", "presence", "B1")
    s:settimeout(2) -- a blocking read: the sip loop does not run meanwhile
    local data = s:receivefrom(65536)
    assert.is_truthy(data and data:match("^PUBLISH "), "nothing on the wire before the loop ran")
    s:close()
    ua:close()
    loop.run_until(function() return ua._core:state() == "closed" end, 0.5)
  end)

  it("requests made by the handlers of one batch leave in the order made, big ones included", function()
    if not HAVE_SOCKET then pending("luasocket (lua-socket) is not installed") return end
    local s, port = raw_server()
    local ua = sip.UA.new { uri = "sip:alice@example.com", outbound_proxy = ("sip:127.0.0.1:%d"):format(port),
                            local_address = "127.0.0.1" }
    local big = ("y"):rep(20000) -- above the size sent directly rather than queued
    local ctx, log = {}, {}
    for i, name in ipairs { "A", "B", "C" } do
      ctx[i] = ua:publish(("sip:%s@example.com"):format(name), "presence", name .. "1", { expires = 600 })
      record(ctx[i], name, log)
    end
    ctx[1]:on("published", function() ctx[1]:publish("A2") end)
    ctx[2]:on("published", function() ctx[2]:publish(big) end)
    ctx[3]:on("published", function() ctx[3]:publish("C2") end)
    local reqs, client = {}, nil
    for i = 1, 3 do
      local data, host, cport = next_datagram(s)
      assert.is_truthy(data, "initial " .. i)
      reqs[i], client = data, { host, cport }
    end
    for i = 1, 3 do s:sendto(ok_to(reqs[i], "e" .. i), client[1], client[2]) end -- back to back
    local ids = {}
    for i = 1, 3 do
      local data = next_datagram(s)
      assert.is_truthy(data, "second request " .. i)
      ids[i] = call_id(data)
      if i == 2 then assert.is_true(#data > 20000) end
    end
    assert.are.same({ call_id(reqs[1]), call_id(reqs[2]), call_id(reqs[3]) }, ids)
    assert.are.same({ "A published(200,OK)", "B published(200,OK)", "C published(200,OK)" }, log)
    s:close()
    ua:close()
    loop.run_until(function() return ua._core:state() == "closed" end, 0.5)
  end)

  it("under injected sendmmsg faults: refusal, EAGAIN, short sends (spec/support/driver_faults.c)", function()
    -- a C program: the default build's serves every Lua's run
    local exe
    for _, dir in ipairs { BUILD, "build" } do
      local f = io.open(dir .. "/spec/driver_faults")
      if f then f:close() exe = dir .. "/spec/driver_faults" break end
    end
    if not exe then pending("no build/spec/driver_faults (make all builds it)") return end
    local p = assert(io.popen(exe .. " 2>&1; echo rc=$?"))
    local out = p:read("*a")
    p:close()
    assert(out:match("rc=0%s*$") and out:find("driver_faults: ok", 1, true), out)
  end)
end)
