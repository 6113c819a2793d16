-- Fault injection over real loopback UDP (#integration): the bundled compositor, and a relay
-- (spec/support/model_relay.lua, luasocket) between UA and compositor that duplicates, delays
-- or reorders datagrams; a compositor restart with empty state; a next hop with nothing
-- listening (ICMP port unreachable); a flood of unmatched responses from a raw source.
--
-- Timer F in real time costs 32 s: it is measured once, for the port with nothing listening
-- (what the library does with ICMP errors); a final response arriving after Timer F is covered
-- on the virtual clock in spec/unit/late_response_spec.lua.
local sip = require "sip"
local loop = require "support.loop"
local events = require "support.events"
local relay = require "support.model_relay"
local S = require "support.scenario"

local TARGET = S.TARGET
local HAVE_SOCKET = relay.available()

local record = events.record

local function names(ev)
  local out = {}
  for i, e in ipairs(ev) do out[i] = ("%s(%s)"):format(e.event, tostring(e.status)) end
  return out
end

local function wait(ev, n, timeout)
  assert(loop.run_until(function() return #ev >= n end, timeout or 5),
         ("expected %d events, got %d: %s"):format(n, #ev, table.concat(names(ev), " ")))
end

-- Runs the loop for `seconds` (nothing expected meanwhile).
local function settle(seconds)
  loop.run_until(function() return false end, seconds)
end

local function shutdown(ua, ...) loop.shutdown(ua, 40, ...) end

local function ua_for(proxy_uri)
  return sip.UA.new { uri = TARGET, outbound_proxy = proxy_uri, local_address = "127.0.0.1" }
end

describe("faults over loopback #integration", function()
  events.fail_on_handler_errors(before_each, after_each)

  it("every response delivered twice (the copy 50 ms later): one event per transaction", function()
    if not HAVE_SOCKET then pending("luasocket (lua-socket) is not installed") return end
    local esc = sip.Compositor.new {}
    local r = relay.new { server_port = esc.port,
                          on_response = function(d) return { { 0, d }, { 0.05, d } } end }
    local ua = ua_for(r:uri())
    local ctx = ua:publish(TARGET, "presence", "B1", { expires = 600 })
    local ev = record(ctx)
    wait(ev, 1)
    ctx:publish() -- refresh
    wait(ev, 2)
    ctx:publish("B2") -- modify
    wait(ev, 3)
    settle(0.2) -- let the late copies arrive
    assert.are.same({ "published(200)", "published(200)", "published(200)" }, names(ev))
    ctx:unpublish()
    wait(ev, 4)
    settle(0.2)
    assert.are.same({ "published(200)", "published(200)", "published(200)", "unpublished(200)" }, names(ev))
    assert.are.equal(8, r.responses * 2, "the relay doubled 4 answers (no retransmission needed)")
    assert.are.equal(0, esc:count())
    shutdown(ua, r, esc)
  end)

  it("the final held 0.7 s (past the 0.5 s retransmission), then a late 100: one published, no late progress", function()
    if not HAVE_SOCKET then pending("luasocket (lua-socket) is not installed") return end
    local esc = sip.Compositor.new {}
    local r = relay.new { server_port = esc.port,
      on_request = function(d, self)
        if not self.first then self.first = d end
        return nil
      end,
      on_response = function(d, self)
        -- the final late; a 100 fabricated from the request, later still
        return { { 0.7, d }, { 1.0, relay.provisional(self.first, 100) } }
      end }
    -- the fabricated 100 is a real match (not dropped for its shape): checked on the virtual transport
    local t = S.start()
    t.net:receive(relay.provisional(t.req.data, 100))
    S.events(t.rec, { "progress(100,Trying)" }, "a fabricated 100 before the final")
    local ua = ua_for(r:uri())
    local ctx = ua:publish(TARGET, "presence", "B1")
    local ev = record(ctx)
    wait(ev, 1, 3)
    settle(1.5)
    assert.are.same({ "published(200)" }, names(ev), "the retransmitted answer and the late 100 are absorbed")
    assert.is_true(r.requests >= 2, "the UA retransmitted while the answer was held: " .. r.requests)
    assert.are.equal(1, #esc:requests(), "the compositor saw one transaction")
    assert.are.equal(1, esc:count())
    shutdown(ua, r, esc)
  end)

  it("two contexts, their answers swapped in time: each gets its own", function()
    if not HAVE_SOCKET then pending("luasocket (lua-socket) is not installed") return end
    local esc = sip.Compositor.new {}
    local n = 0
    local r = relay.new { server_port = esc.port,
      on_response = function(d)
        n = n + 1
        return { { n == 1 and 0.3 or 0, d } } -- the first answer overtaken by the second
      end }
    local ua = ua_for(r:uri())
    local a = ua:publish(TARGET, "presence", "A1")
    local b = ua:publish("sip:bob@example.com", "presence", "B1")
    local eva, evb = record(a), record(b)
    assert(loop.run_until(function() return #eva >= 1 and #evb >= 1 end, 3))
    settle(0.4)
    assert.are.same({ "published(200)" }, names(eva))
    assert.are.same({ "published(200)" }, names(evb))
    local tags = {}
    for _, p in ipairs(esc:publications()) do tags[p.body] = p.etag end
    assert.are.equal(tags.A1, a.etag)
    assert.are.equal(tags.B1, b.etag)
    shutdown(ua, r, esc)
  end)

  it("state lost (esc:clear()): the refresh gets 412, recovered: progress(412), published, count 1", function()
    local esc = sip.Compositor.new {}
    local ua = ua_for(esc:uri())
    local ctx = ua:publish(TARGET, "presence", "B1")
    local ev = record(ctx)
    wait(ev, 1)
    local e1 = ctx.etag
    esc:clear()
    assert.are.equal(0, esc:count())
    ctx:publish()
    wait(ev, 3)
    assert.are.same({ "published(200)", "progress(412)", "published(200)" }, names(ev))
    assert.are.equal(1, esc:count())
    assert.are_not.equal(e1, ctx.etag)
    assert.are.equal("B1", esc:publications()[1].body, "nothing lost: the last body is back")
    shutdown(ua, esc)
  end)

  it("compositor closed and a new one started on the same port: 412, recovered, nothing lost", function()
    local esc = sip.Compositor.new {}
    local port = esc.port
    local ua = ua_for(esc:uri())
    local ctx = ua:publish(TARGET, "presence", "B1")
    local ev = record(ctx)
    wait(ev, 1)
    ctx:publish("B2")
    wait(ev, 2)
    esc:close()
    local esc2 = sip.Compositor.new { port = port }
    ctx:publish() -- the refresh reaches a server that never saw it
    wait(ev, 4)
    assert.are.same({ "published(200)", "published(200)", "progress(412)", "published(200)" }, names(ev))
    assert.are.equal(1, esc2:count())
    assert.are.equal("B2", esc2:publications()[1].body)
    assert.are.equal(esc2:publications()[1].etag, ctx.etag)
    shutdown(ua, esc2)
  end)

  it("503 with Retry-After: 1 to a refresh: progress(503), retried 1 s later, published", function()
    local esc = sip.Compositor.new {
      on_request = function(req)
        if req.number == 2 then return { code = 503, headers = { ["Retry-After"] = 1 } } end
      end,
    }
    local ua = ua_for(esc:uri())
    local ctx = ua:publish(TARGET, "presence", "B1", { expires = 600 })
    local ev = record(ctx)
    wait(ev, 1)
    ctx:publish()
    wait(ev, 3, 4)
    assert.are.same({ "published(200)", "progress(503)", "published(200)" }, names(ev))
    local gap = ev[3].at - ev[2].at
    assert.is_true(gap >= 0.95 and gap < 2, ("the retry came %.3f s after the 503"):format(gap))
    assert.are.equal(1, esc:count())
    shutdown(ua, esc)
  end)

  it("a flood of 20 000 unmatched responses from a raw source: no event, the publication unharmed", function()
    if not HAVE_SOCKET then pending("luasocket (lua-socket) is not installed") return end
    local esc = sip.Compositor.new {}
    local ua = ua_for(esc:uri())
    local ctx = ua:publish(TARGET, "presence", "B1")
    local ev = record(ctx)
    wait(ev, 1)
    local good = ev[1].response.data
    local src = relay.sender()
    collectgarbage()
    local kb0 = collectgarbage("count")
    local sent = 0
    for batch = 1, 100 do
      for i = 1, 200 do
        local k = batch * 1000 + i
        local d
        if i % 3 == 0 then -- the real answer with another branch of our shape
          d = good:gsub("branch=z9hG4bK%x+", ("branch=z9hG4bK%016x"):format(k), 1)
        elseif i % 3 == 1 then -- the real answer, another Call-ID
          d = good:gsub("Call%-ID: [^\r]+", "Call-ID: flood" .. k, 1)
        else -- garbage
          d = ("SIP/2.0 200 OK\r\n%d\r\n\r\n"):format(k)
        end
        src:sendto(d, "127.0.0.1", ua:port())
        sent = sent + 1
      end
      for _ = 1, 20 do sip.run_nowait() end
    end
    settle(0.3)
    src:close()
    collectgarbage()
    assert.are.equal(20000, sent)
    assert.are.same({ "published(200)" }, names(ev), "no event from the flood")
    assert.is_true(collectgarbage("count") - kb0 < 1024, "Lua memory grew by more than 1 MiB")
    ctx:publish() -- still works
    wait(ev, 2)
    assert.are.same({ "published(200)", "published(200)" }, names(ev))
    shutdown(ua, esc)
  end)

  it("#slow a next hop with nothing listening: ICMP is ignored, Timer F fails it after 32 s (real time)", function()
    -- Observed and documented: an unconnected UDP socket gets no error for an ICMP port
    -- unreachable on Linux, so the library sees nothing until Timer F. No
    -- "Connection Error" early, no event before 32 s; then failed/unpublished with
    -- "Request Timeout".
    local port = HAVE_SOCKET and relay.dead_port() or 9 -- 9: discard, closed on CI machines
    local ua = ua_for(("sip:127.0.0.1:%d"):format(port))
    local t0 = sip.now()
    local ctx = ua:publish(TARGET, "presence", "B1")
    local ev = record(ctx)
    settle(2)
    assert.are.same({}, names(ev), "nothing reported within 2 s (ICMP errors are not seen)")
    wait(ev, 2, 35)
    local took = ev[1].at - t0
    assert.are.same({ "failed(nil)", "unpublished(nil)" }, names(ev))
    assert.are.equal("Request Timeout", ev[1].cause)
    assert.is_true(took > 31.5 and took < 33.5, ("failed after %.2f s"):format(took))
    shutdown(ua)
  end)
end)
