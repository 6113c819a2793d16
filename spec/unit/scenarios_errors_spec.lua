-- doc/behaviour.md B: error handling and recovery (scenarios 16–35).
local S = require "support.scenario"

-- Timer E schedule on UDP from the first transmission (RFC 3261 §17.1.2.2), then Timer F.
local TIMER_E = { 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5 }

local function min_expires(v) return { headers = { { "Min-Expires", v } } } end

describe("B. error handling and recovery", function()

  it("#16 412 on a refresh: progress(412), one initial with the last body, then published with e9", function()
    local t = S.published(nil, "e1", 60)
    local r = S.fires_at(t.net, 54)
    S.refresh(r, "e1", 3600)
    t.net:reply(r, 412)
    S.events(t.rec, { "progress(412,Conditional Request Failed)" })
    local init = t.net:take()
    S.initial(init, "B1", 3600) -- the configured expires
    S.next_of(init, r)
    assert.is_nil(t.ctx.etag, "the etag that produced the 412 is discarded")
    S.ok(t.net, init, "e9", 3600)
    S.events(t.rec, { "published(200,OK)" })
    assert.are.equal("e9", t.ctx.etag)
    S.refresh(S.fires_at(t.net, 54 + 3240), "e9", 3600)
  end)

  it("#17 412 on a modify: the recovery initial carries the new body B2", function()
    local t = S.published()
    t.ctx:publish("B2")
    local m = t.net:take()
    S.modify(m, "e1", "B2", 3600)
    t.net:reply(m, 412)
    S.events(t.rec, { "progress(412,Conditional Request Failed)" })
    local init = t.net:take()
    S.initial(init, "B2", 3600)
    S.next_of(init, m)
    S.ok(t.net, init, "e2", 3600)
    S.events(t.rec, { "published(200,OK)" })
    assert.are.equal("e2", t.ctx.etag)
  end)

  it("#18 a 412 to the recovery initial fails: failed(412), unpublished(412), nothing more", function()
    local t = S.published()
    local r = S.fires_at(t.net, 3240)
    t.net:reply(r, 412)
    S.events(t.rec, { "progress(412,Conditional Request Failed)" })
    local init = t.net:take()
    S.initial(init, "B1", 3600)
    t.net:reply(init, 412)
    S.events(t.rec, { "failed(412,Conditional Request Failed)", "unpublished(412,Conditional Request Failed)" })
    assert.is_nil(t.ctx.etag)
    assert.are.equal("idle", t.ctx.state)
    S.quiet(t.net, 10000)
    assert.are.same({}, t.rec)
  end)

  it("#19 412 to an initial: failed(412), unpublished(412), no retry", function()
    local t = S.start()
    t.net:reply(t.req, 412)
    S.events(t.rec, { "failed(412,Conditional Request Failed)", "unpublished(412,Conditional Request Failed)" })
    S.quiet(t.net, 10000)
    assert.are.same({}, t.rec)
  end)

  it("#20 412 to a remove: only unpublished(412), the etag is cleared, no retry", function()
    local t = S.published()
    t.ctx:unpublish()
    local rm = t.net:take()
    S.remove(rm, "e1")
    t.net:reply(rm, 412)
    S.events(t.rec, { "unpublished(412,Conditional Request Failed)" })
    assert.is_nil(t.ctx.etag)
    S.quiet(t.net, 10000)
    assert.are.same({}, t.rec)
  end)

  it("#21 423 with Min-Expires 1800 to an initial: progress(423), retry with Expires 1800, refresh at 1620 s", function()
    local t = S.start { options = { expires = 30 } }
    S.initial(t.req, "B1", 30)
    t.net:reply(t.req, 423, min_expires(1800))
    S.events(t.rec, { "progress(423,Interval Too Brief)" })
    local retry = t.net:take()
    S.initial(retry, "B1", 1800)
    S.next_of(retry, t.req)
    S.ok(t.net, retry, "e1", 1800)
    S.events(t.rec, { "published(200,OK)" })
    local r = S.fires_at(t.net, 1620)
    S.refresh(r, "e1", 1800) -- the raised value is kept for later refreshes
  end)

  it("#22 423 on a refresh: retried as a refresh (no body) with Expires 600 and If-Match e1", function()
    local t = S.published({ options = { expires = 300 } }, "e1", 300)
    local r = S.fires_at(t.net, 270)
    S.refresh(r, "e1", 300)
    t.net:reply(r, 423, min_expires(600))
    S.events(t.rec, { "progress(423,Interval Too Brief)" })
    local retry = t.net:take()
    S.refresh(retry, "e1", 600)
    S.next_of(retry, r)
    S.ok(t.net, retry, "e2", 600)
    S.events(t.rec, { "published(200,OK)" })
    S.refresh(S.fires_at(t.net, 270 + 540), "e2", 600)
  end)

  it("#22 423 on a modify: the same modify (body B2, If-Match e1) with Expires 7200", function()
    local t = S.published()
    t.ctx:publish("B2")
    local m = t.net:take()
    t.net:reply(m, 423, min_expires(7200))
    S.events(t.rec, { "progress(423,Interval Too Brief)" })
    local retry = t.net:take()
    S.modify(retry, "e1", "B2", 7200)
    S.next_of(retry, m)
    S.ok(t.net, retry, "e2", 7200)
    S.events(t.rec, { "published(200,OK)" })
    S.refresh(S.fires_at(t.net, 6480), "e2", 7200)
  end)

  it("#23 423 without Min-Expires: failed(423), unpublished(423), no retry", function()
    local t = S.start { options = { expires = 30 } }
    t.net:reply(t.req, 423)
    S.events(t.rec, { "failed(423,Interval Too Brief)", "unpublished(423,Interval Too Brief)" })
    S.quiet(t.net, 10000)
  end)

  describe("#24 423 with an unusable Min-Expires (30 requested)", function()
    for _, v in ipairs { "abc", "10", "30", "", "-5", "1800.5" } do
      it(string.format("Min-Expires %q: failed(423), unpublished(423), no request", v), function()
        local t = S.start { options = { expires = 30 } }
        t.net:reply(t.req, 423, min_expires(v))
        S.events(t.rec, { "failed(423,Interval Too Brief)", "unpublished(423,Interval Too Brief)" })
        S.quiet(t.net, 10000)
      end)
    end
  end)

  describe("#25 repeated 423", function()
    it("growing Min-Expires: two retries, then failed(423), unpublished(423)", function()
      local t = S.start { options = { expires = 30 } }
      t.net:reply(t.req, 423, min_expires(60))
      local r1 = t.net:take()
      S.initial(r1, "B1", 60)
      t.net:reply(r1, 423, min_expires(120))
      local r2 = t.net:take()
      S.initial(r2, "B1", 120)
      t.net:reply(r2, 423, min_expires(240))
      S.events(t.rec, {
        "progress(423,Interval Too Brief)", "progress(423,Interval Too Brief)",
        "failed(423,Interval Too Brief)", "unpublished(423,Interval Too Brief)",
      })
      S.quiet(t.net, 10000)
    end)

    it("the same Min-Expires 1800 again: no loop, failed(423), unpublished(423)", function()
      local t = S.start { options = { expires = 30 } }
      local req, sent = t.req, 0
      for _ = 1, 5 do
        t.net:reply(req, 423, min_expires(1800))
        local list = t.net:sent()
        if #list == 0 then break end
        sent = sent + #list
        req = list[1]
      end
      assert.is_true(sent >= 1 and sent <= 2, "retries sent: " .. sent)
      local got = S.format(t.rec)
      assert.are.same({ "failed(423,Interval Too Brief)", "unpublished(423,Interval Too Brief)" },
                      { got[#got - 1], got[#got] }, table.concat(got, ", "))
      S.quiet(t.net, 10000)
    end)

    it("the count restarts after a success", function()
      local t = S.start { options = { expires = 30 } }
      t.net:reply(t.req, 423, min_expires(60))
      local r1 = t.net:take()
      t.net:reply(r1, 423, min_expires(120))
      local r2 = t.net:take()
      S.ok(t.net, r2, "e1", 120)
      S.events(t.rec, { "progress(423,Interval Too Brief)", "progress(423,Interval Too Brief)", "published(200,OK)" })
      local r = S.fires_at(t.net, 108)
      S.refresh(r, "e1", 120)
      t.net:reply(r, 423, min_expires(240))
      S.events(t.rec, { "progress(423,Interval Too Brief)" })
      S.refresh(t.net:take(), "e1", 240)
    end)
  end)

  it("#26 423 to a remove: failed(423), unpublished(423), no retry", function()
    local t = S.published()
    t.ctx:unpublish()
    local rm = t.net:take()
    t.net:reply(rm, 423, min_expires(7200))
    S.events(t.rec, { "failed(423,Interval Too Brief)", "unpublished(423,Interval Too Brief)" })
    assert.is_nil(t.ctx.etag)
    S.quiet(t.net, 10000)
  end)

  it("#27 489 Bad Event to an initial: failed(489), unpublished(489), no retry, no timer", function()
    local t = S.start()
    t.net:reply(t.req, 489)
    assert.are.equal(2, #t.rec)
    assert.are.equal(489, t.rec[1].response.status_code)
    assert.are.equal(t.rec[1].response, t.rec[2].response)
    S.events(t.rec, { "failed(489,Bad Event)", "unpublished(489,Bad Event)" })
    assert.are.equal("idle", t.ctx.state)
    S.quiet(t.net, 10000)
  end)

  describe("#28 other final errors to an initial", function()
    local cases = {
      { 302, "Moved Temporarily" }, { 403, "Forbidden" }, { 404, "Not Found" },
      { 415, "Unsupported Media Type" }, { 480, "Temporarily Unavailable" },
      { 500, "Server Internal Error" }, { 503, "Service Unavailable" }, { 603, "Decline" },
    }
    for _, c in ipairs(cases) do
      local code, phrase = c[1], c[2]
      it(code .. " (wire phrase 'Gone Fishing'): failed and unpublished with cause " .. phrase, function()
        local t = S.start()
        t.net:reply(t.req, code, { reason = "Gone Fishing" })
        assert.are.equal("Gone Fishing", t.rec[1] and t.rec[1].response.reason_phrase)
        S.events(t.rec, { ("failed(%d,%s)"):format(code, phrase), ("unpublished(%d,%s)"):format(code, phrase) })
        assert.is_nil(t.ctx.etag)
        S.quiet(t.net, 10000)
      end)
    end
  end)

  -- A refresh failing for a passing reason is retried with back-off (1 s, 2 s, ...) while
  -- the state the server granted lasts, each try reported as progress; only then it ends.
  it("#29 a refresh failure is retried while the state lasts, then ends; a later publish(body) is an initial", function()
    local t = S.published(nil, "e1", 60) -- refresh at 54 s, the state lasts until 60 s
    local r = S.fires_at(t.net, 54)
    t.net:reply(r, 500)
    S.events(t.rec, { "progress(500,Server Internal Error)" })
    assert.are.equal("e1", t.ctx.etag)
    local r2 = S.fires_at(t.net, 55)
    S.refresh(r2, "e1", 3600)
    S.next_of(r2, r)
    t.net:reply(r2, 503)
    S.events(t.rec, { "progress(503,Service Unavailable)" })
    local r3 = S.fires_at(t.net, 57)
    S.refresh(r3, "e1", 3600)
    -- 4 s would pass the state's end (60 s): the tries fit into what is left (1.5 s, 0.75 s ...)
    local last, tries = r3, 0
    while true do
      t.net:reply(last, 500)
      if t.rec[#t.rec].event ~= "progress" then break end
      S.clear(t.rec)
      local sent = {}
      while #sent == 0 and t.net:now() < 60 do
        t.net:advance(0.01)
        sent = t.net:sent()
      end
      assert.are.equal(1, #sent)
      S.refresh(sent[1], "e1", 3600)
      last, tries = sent[1], tries + 1
    end
    assert.is_true(tries >= 3, tries)
    assert.is_true(t.net:now() < 60, "every try went out while the state lasted")
    S.events(t.rec, { "failed(500,Server Internal Error)", "unpublished(500,Server Internal Error)" })
    assert.is_nil(t.ctx.etag)
    local r3 = last
    S.quiet(t.net, 3 * 3240)
    t.ctx:publish("B")
    local init = t.net:take()
    S.initial(init, "B", 3600)
    S.next_of(init, r3)
  end)

  it("#30 a final 408 to a refresh: progress(408,Request Timeout), retried after 1 s", function()
    local t = S.published()
    local r = S.fires_at(t.net, 3240)
    t.net:reply(r, 408)
    assert.are.equal(408, t.rec[1] and t.rec[1].response and t.rec[1].response.status_code)
    S.events(t.rec, { "progress(408,Request Timeout)" })
    local r2 = S.fires_at(t.net, 3241)
    S.refresh(r2, "e1", 3600)
    S.ok(t.net, r2, "e2", 3600)
    S.events(t.rec, { "published(200,OK)" })
    S.refresh(S.fires_at(t.net, 3241 + 3240), "e2", 3600)
  end)

  it("#30 a final 408 to an initial: failed(408,Request Timeout), unpublished(408,...)", function()
    local t = S.start()
    t.net:reply(t.req, 408)
    S.events(t.rec, { "failed(408,Request Timeout)", "unpublished(408,Request Timeout)" })
    assert.is_nil(t.ctx.etag)
    S.quiet(t.net, 10000)
  end)

  pending("#31 Timer F over a reliable transport (TCP/WS): UDP only for now")

  it("#32 Timer E over UDP: 10 identical retransmissions, then Timer F at 32 s", function()
    local t = S.start()
    for _, at in ipairs(TIMER_E) do
      S.retransmission(S.fires_at(t.net, at), t.req)
      assert.are.same({}, t.rec)
    end
    t.net:advance(31.999 - t.net:now())
    t.net:none()
    assert.are.same({}, t.rec, "nothing before Timer F")
    t.net:advance(0.001)
    S.events(t.rec, { "failed(nil,Request Timeout)", "unpublished(nil,Request Timeout)" })
    assert.is_nil(t.ctx.etag)
    S.ok(t.net, t.req, "late", 3600) -- a 200 after Timer F matches nothing
    assert.are.same({}, t.rec)
    assert.is_nil(t.ctx.etag)
    S.quiet(t.net, 10000)
    assert.are.same({}, t.rec)
  end)

  it("#32 Timer F on a refresh: progress(nil,Request Timeout), a new refresh 1 s later", function()
    local t = S.published()
    local r = S.fires_at(t.net, 3240)
    t.net:advance(32 - 0.001)
    for _, x in ipairs(t.net:sent()) do S.retransmission(x, r) end
    assert.are.same({}, t.rec)
    t.net:advance(0.001)
    S.events(t.rec, { "progress(nil,Request Timeout)" })
    assert.are.equal("e1", t.ctx.etag)
    local r2 = S.fires_at(t.net, 3273)
    S.refresh(r2, "e1", 3600)
    S.next_of(r2, r)
  end)

  it("#32 Timer F on a refresh when the state ends first: failed(nil,Request Timeout), unpublished", function()
    local t = S.published(nil, "e1", 60) -- refresh at 54 s, Timer F at 86 s, state gone at 60 s
    local r = S.fires_at(t.net, 54)
    t.net:advance(32 - 0.001)
    for _, x in ipairs(t.net:sent()) do S.retransmission(x, r) end
    t.net:advance(0.001)
    S.events(t.rec, { "failed(nil,Request Timeout)", "unpublished(nil,Request Timeout)" })
    assert.is_nil(t.ctx.etag)
    S.quiet(t.net, 10000)
  end)

  it("#33 after a 100 at 0.7 s the retransmissions go every T2 (4.7, 8.7, ... s) until Timer F", function()
    local t = S.start()
    S.retransmission(S.fires_at(t.net, 0.5), t.req)
    t.net:advance(0.2)
    t.net:reply(t.req, 100)
    S.events(t.rec, { "progress(100,Trying)" })
    t.net:reply(t.req, 100) -- a retransmitted 1xx: one progress per distinct 1xx
    assert.are.same({}, S.format(t.rec))
    local at = 4.7
    while at < 32 do
      S.retransmission(S.fires_at(t.net, at), t.req)
      at = at + 4
    end
    -- a second 1xx is passed on too
    t.net:reply(t.req, 180)
    S.events(t.rec, { "progress(180,Ringing)" })
    t.net:advance(32 - 0.001 - t.net:now())
    t.net:none()
    assert.are.same({}, t.rec)
    t.net:advance(0.001)
    S.events(t.rec, { "failed(nil,Request Timeout)", "unpublished(nil,Request Timeout)" })
  end)

  describe("#34 transport error on send", function()
    it("on a refresh: failed(nil,Connection Error), unpublished(nil,...), no retransmission", function()
      local t = S.published()
      t.net:advance(3239)
      t.net:fail_sends(1)
      t.net:advance(1)
      t.net:sent() -- whether a failed datagram shows up is the transport's business
      S.events(t.rec, { "failed(nil,Connection Error)", "unpublished(nil,Connection Error)" })
      assert.is_nil(t.ctx.etag)
      S.quiet(t.net, 10000)
      assert.are.same({}, t.rec)
    end)

    it("on a modify: the same, and a later publish(body) starts again with an initial", function()
      local t = S.published()
      t.net:fail_sends(1)
      t.ctx:publish("B2")
      t.net:sent()
      S.events(t.rec, {}) -- not inside the call: on the next loop turn
      t.net:advance(0)
      S.events(t.rec, { "failed(nil,Connection Error)", "unpublished(nil,Connection Error)" })
      S.quiet(t.net, 40)
      t.ctx:publish("B3")
      S.initial(t.net:take(), "B3", 3600)
    end)

    it("on an initial: no retransmission, no timer, nothing published", function()
      local testing = require "sip.testing"
      local ua, net = testing.new_ua()
      net:fail_sends(1)
      local ctx = ua:publish(S.TARGET, "presence", "B1", { contentType = S.CTYPE })
      net:sent()
      S.quiet(net, 10000)
      assert.is_nil(ctx.etag)
      assert.are.equal("idle", ctx.state)
    end)

    it("on an initial: handlers attached right after ua:publish still get failed and unpublished", function()
      -- ua:publish sends at once; events of a synchronous send failure must not be handed out
      -- before the caller could attach handlers (SIP.js defers the first send for this reason).
      local testing = require "sip.testing"
      local ua, net = testing.new_ua()
      net:fail_sends(1)
      local ctx = ua:publish(S.TARGET, "presence", "B1", { contentType = S.CTYPE })
      local rec = testing.record(ctx)
      net:advance(0)
      net:sent()
      S.events(rec, { "failed(nil,Connection Error)", "unpublished(nil,Connection Error)" })
    end)
  end)

  describe("#35 duplicate final response", function()
    it("a retransmitted 200 within Timer K is absorbed: one published", function()
      local t = S.start()
      local raw = S.ok(t.net, t.req, "e1", 3600)
      t.net:advance(1)
      t.net:receive(raw)
      t.net:advance(3)
      t.net:receive(raw)
      S.events(t.rec, { "published(200,OK)" })
      t.net:none()
    end)

    it("a duplicate 200 after Timer K matches nothing: no event", function()
      local t = S.start()
      local raw = S.ok(t.net, t.req, "e1", 3600)
      t.net:advance(10)
      t.net:receive(raw)
      S.events(t.rec, { "published(200,OK)" })
      t.net:none()
    end)

    it("a late failure after the 200 is absorbed too", function()
      local t = S.start()
      S.ok(t.net, t.req, "e1", 3600)
      t.net:reply(t.req, 500)
      S.events(t.rec, { "published(200,OK)" })
      assert.are.equal("e1", t.ctx.etag)
    end)
  end)
end)
