-- The bundled test compositor (sip.Compositor and the sip-compositor program) over loopback
-- UDP, driven by the library's own UA: RFC 3903 §6 answers, expiry, scripting.
local sip = require "sip"
local loop = require "support.loop"

local TARGET = "sip:alice@example.com"

local function setup(opts, pub_opts)
  local comp = sip.Compositor.new(opts or {})
  local ua = sip.UA.new { uri = TARGET, outbound_proxy = comp:uri(), local_address = "127.0.0.1" }
  local pub = ua:publish(TARGET, "presence", "B1", pub_opts)
  local events = {}
  for _, name in ipairs { "progress", "published", "failed", "unpublished" } do
    pub:on(name, function(r, cause)
      events[#events + 1] = { event = name, status = r and r.status_code, cause = cause, response = r }
    end)
  end
  return comp, ua, pub, events
end

local function shutdown(ua, comp)
  ua:close()
  loop.run_until(function() return ua._core:state() == "closed" end, 5)
  comp:close()
end

local function wait_events(events, n, timeout)
  assert(loop.run_until(function() return #events >= n end, timeout or 5),
         ("expected %d events, got %d"):format(n, #events))
end

describe("test compositor #integration", function()
  it("hands out a new entity-tag per success and honours SIP-If-Match", function()
    local comp, ua, pub, events = setup()
    wait_events(events, 1)
    local r1 = events[1].response
    assert.are.equal("published", events[1].event)
    local e1 = r1:getHeader("SIP-ETag")
    assert.is_truthy(e1)
    assert.are.equal("3600", r1:getHeader("Expires"))
    assert.is_truthy(r1:getHeader("Via"):find("received=127.0.0.1", 1, true))
    assert.is_truthy(r1:getHeader("Via"):find("rport=" .. ua:port(), 1, true))
    local pubs = comp:publications()
    assert.are.equal(1, #pubs)
    assert.are.same({ TARGET, "presence", e1, "B1" }, { pubs[1].uri, pubs[1].event, pubs[1].etag, pubs[1].body })

    pub:publish() -- refresh: a new tag, the body kept
    wait_events(events, 2)
    local e2 = events[2].response:getHeader("SIP-ETag")
    assert.are_not.equal(e1, e2)
    assert.are.equal("B1", comp:publications()[1].body)

    pub:publish("B2") -- modify
    wait_events(events, 3)
    assert.are.equal("B2", comp:publications()[1].body)

    pub:unpublish()
    wait_events(events, 4)
    assert.are.equal("unpublished", events[4].event)
    assert.are.equal("0", events[4].response:getHeader("Expires"))
    assert.is_nil(events[4].response:getHeader("SIP-ETag"))
    assert.are.equal(0, comp:count())
    -- what went over the wire, as the compositor saw it
    local reqs = comp:requests()
    assert.are.equal(4, #reqs)
    assert.is_truthy(reqs[2]:find("SIP-If-Match: " .. e1, 1, true))
    assert.is_truthy(reqs[4]:find("Expires: 0", 1, true))
    shutdown(ua, comp)
  end)

  it("answers a forgotten entity-tag with 412 (the client recovers with an initial)", function()
    local comp, ua, pub, events = setup()
    wait_events(events, 1)
    comp:clear()
    pub:publish()
    wait_events(events, 3)
    assert.are.same({ "published", "progress", "published" },
                    { events[1].event, events[2].event, events[3].event })
    assert.are.equal(412, events[2].status)
    assert.are.equal(1, comp:count())
    shutdown(ua, comp)
  end)

  it("answers 423 with Min-Expires below its minimum, and caps at its maximum", function()
    local comp, ua, _, events = setup({ min_expires = 60, max_expires = 120 }, { expires = 10 })
    wait_events(events, 2)
    assert.are.equal(423, events[1].status)
    assert.are.equal("60", events[1].response:getHeader("Min-Expires"))
    assert.are.equal("published", events[2].event)
    assert.are.equal("60", events[2].response:getHeader("Expires"))
    shutdown(ua, comp)

    comp, ua, _, events = setup({ max_expires = 120 }, { expires = 7200 })
    wait_events(events, 1)
    assert.are.equal("120", events[1].response:getHeader("Expires"))
    shutdown(ua, comp)
  end)

  it("answers 489 for an event package it was not configured with", function()
    local comp, ua, _, events = setup { events = { "dialog" } }
    wait_events(events, 2)
    assert.are.same({ "failed", 489, "Bad Event" }, { events[1].event, events[1].status, events[1].cause })
    assert.are.equal("dialog", events[1].response:getHeader("Allow-Events"))
    shutdown(ua, comp)
  end)

  it("expires a publication that is not refreshed", function()
    local comp, ua, pub, events = setup({ max_expires = 1 }, { unpublishOnClose = false })
    wait_events(events, 1)
    assert.are.equal(1, comp:count())
    pub:close() -- stops refreshing, sends nothing
    loop.run_until(nil, 1.3)
    assert.are.equal(0, comp:count())
    shutdown(ua, comp)
  end)

  it("answers what on_request scripts, and retransmissions from its cache", function()
    local n = 0
    local comp, ua, _, events = setup {
      on_request = function(req)
        n = n + 1
        if req.number == 1 then return { delay = 0.7 } end -- after the first retransmission
        return nil
      end,
    }
    wait_events(events, 1)
    loop.run_until(nil, 0.2)
    assert.are.equal(1, #events) -- the duplicate answer is absorbed by the client
    -- the retransmission (at 0.5 s) was matched to its transaction, not processed again
    assert.are.equal(1, n)
    assert.are.equal(1, #comp:requests())
    shutdown(ua, comp)

    comp, ua, _, events = setup {
      on_request = function() return { code = 503, reason = "Go Away", headers = { ["Retry-After"] = 5 } } end,
    }
    wait_events(events, 2)
    assert.are.same({ "failed", 503, "Service Unavailable" }, { events[1].event, events[1].status, events[1].cause })
    assert.are.equal("Go Away", events[1].response.reason_phrase)
    assert.are.equal("5", events[1].response:getHeader("Retry-After"))
    shutdown(ua, comp)
  end)

  it("refuses a non-loopback address unless asked", function()
    assert.has_error(function() sip.Compositor.new { host = "0.0.0.0" } end)
    assert.has_error(function() sip.Compositor.new { bogus = 1 } end)
    assert.has_error(function() sip.Compositor.new { port = "x" } end)
  end)

  it("runs as a program, scripted by request number", function()
    local cmd = "sh -c 'exec ./" .. (os.getenv("SIP_BUILD") or "build") ..
                "/sip-compositor --listen 127.0.0.1:0 --script 1=423:Min-Expires=90' & echo pid $!"
    local proc = assert(io.popen(cmd .. "; wait", "r"))
    local pid, port
    while not (pid and port) do
      local line = assert(proc:read("l"), "the compositor did not start")
      pid = pid or line:match("^pid (%d+)")
      port = port or tonumber(line:match("^listening 127%.0%.0%.1:(%d+)"))
    end
    local ok, err = pcall(function()
      local ua = sip.UA.new { uri = TARGET, outbound_proxy = "sip:127.0.0.1:" .. port,
                              local_address = "127.0.0.1" }
      local pub = ua:publish(TARGET, "presence", "B1", { expires = 30, unpublishOnClose = false })
      local events = {}
      pub:on("progress", function(r) events[#events + 1] = "progress " .. r.status_code end)
      pub:on("published", function(r) events[#events + 1] = "published " .. r:getHeader("Expires") end)
      wait_events(events, 2)
      assert.are.same({ "progress 423", "published 90" }, events)
      ua:close()
      assert(loop.run_until(function() return ua._core:state() == "closed" end, 5))
    end)
    os.execute("kill " .. pid)
    proc:close()
    assert(ok, err)
  end)
end)
