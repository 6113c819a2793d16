-- The sip.testing module itself: request parsing, response building, the net helpers and
-- the virtual clock.
local testing = require "sip.testing"

local RAW = table.concat({
  "PUBLISH sip:alice@example.com SIP/2.0",
  "v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;rport",
  "Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKdef, SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKghi",
  "f: <sip:alice@example.com>;tag=ft1",
  "t: <sip:alice@example.com>",
  "i: cid-1@example.com",
  "CSeq: 7 PUBLISH",
  "o: presence",
  "Expires: 3600",
  "sip-if-match: e1",
  "X-Multi: a, b",
  "X-Multi: c",
  "X-Folded: one",
  " two",
  "c: application/pidf+xml",
  "l:  4",
  "",
  "BODY",
}, "\r\n")

describe("testing.parse", function()
  local req = testing.parse(RAW, "10.0.0.9", 5070)

  it("request line, body, data, source", function()
    assert.are.equal("PUBLISH", req.method)
    assert.are.equal("sip:alice@example.com", req.uri)
    assert.are.equal("BODY", req.body)
    assert.are.equal(RAW, req.data)
    assert.are.equal("10.0.0.9", req.host)
    assert.are.equal(5070, req.port)
  end)

  it("header names are case-insensitive and compact forms are understood", function()
    assert.are.equal("<sip:alice@example.com>;tag=ft1", req:header("From"))
    assert.are.equal("<sip:alice@example.com>;tag=ft1", req:header("F"))
    assert.are.equal("presence", req:header("Event"))
    assert.are.equal("e1", req:header("SIP-If-Match"))
    assert.are.equal("application/pidf+xml", req:header("content-type"))
    assert.are.equal("4", req:header("Content-Length"))
    assert.are.equal("cid-1@example.com", req:header("CALL-ID"))
    assert.is_nil(req:header("Max-Forwards"))
  end)

  it("headers() splits commas for Via only, and keeps every occurrence in order", function()
    assert.are.same({
      "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;rport",
      "SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKdef",
      "SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKghi",
    }, req:headers("via"))
    assert.are.same({ "a, b", "c" }, req:headers("X-Multi"))
    assert.are.same({}, req:headers("Nope"))
    assert.are.equal("one two", req:header("X-Folded"))
  end)

  it("derived fields", function()
    assert.are.equal("z9hG4bKabc", req.branch)
    assert.are.equal(3, req.via_count)
    assert.are.equal(7, req.cseq)
    assert.are.equal("PUBLISH", req.cseq_method)
    assert.are.equal("cid-1@example.com", req.call_id)
    assert.are.equal("ft1", req.from_tag)
  end)

  it("an empty body is nil", function()
    local r = testing.parse("PUBLISH sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n")
    assert.is_nil(r.body)
  end)

  it("tostring summarises a request", function()
    local s = tostring(req)
    assert.is_truthy(s:find("PUBLISH sip:alice@example.com", 1, true), s)
    assert.is_truthy(s:find("SIP-If-Match: e1", 1, true), s)
    assert.is_truthy(s:find('body="BODY"', 1, true), s)
  end)
end)

describe("testing.response_for", function()
  local req = testing.parse(RAW)

  it("echoes Via (every one, in order), From, Call-ID, CSeq; tags To; computes Content-Length", function()
    local raw = testing.response_for(req, 200, { headers = { { "SIP-ETag", "e2" }, { "Expires", 60 } } })
    local res = testing.parse(raw)
    assert.are.equal(200, res.status)
    assert.is_truthy(raw:match("^SIP/2%.0 200 OK\r\n"), raw)
    assert.are.same(req:headers("Via"), res:headers("Via"))
    assert.are.equal(req:header("From"), res:header("From"))
    assert.is_truthy(res:header("To"):match("^<sip:alice@example%.com>;tag=%S+$"), res:header("To"))
    assert.are.equal("cid-1@example.com", res.call_id)
    assert.are.equal(7, res.cseq)
    assert.are.equal("PUBLISH", res.cseq_method)
    assert.are.equal("e2", res:header("SIP-ETag"))
    assert.are.equal("60", res:header("Expires"))
    assert.are.equal("0", res:header("Content-Length"))
    assert.is_truthy(raw:find("SIP-ETag: e2\r\nExpires: 60\r\n", 1, true), "headers in the given order")
    assert.is_truthy(raw:match("\r\n\r\n$"))
  end)

  it("a header map is written in name order; shorthand keys are headers too", function()
    local raw = testing.response_for(req, 200, { headers = { Expires = 60, ["SIP-ETag"] = "e2" } })
    assert.is_truthy(raw:find("Expires: 60\r\nSIP-ETag: e2\r\n", 1, true), raw)
    local raw2 = testing.response_for(req, 200, { ["SIP-ETag"] = "e3", Expires = 30 })
    local res = testing.parse(raw2)
    assert.are.equal("e3", res:header("SIP-ETag"))
    assert.are.equal("30", res:header("Expires"))
  end)

  it("reason, body, raw_extra, content_length, omit", function()
    local raw = testing.response_for(req, 480, {
      reason = "Gone Fishing", body = "hello", raw_extra = { "X-A: 1", "X-B: 2" }, omit = { "From" },
    })
    assert.is_truthy(raw:match("^SIP/2%.0 480 Gone Fishing\r\n"), raw)
    local res = testing.parse(raw)
    assert.are.equal("hello", res.body)
    assert.are.equal("5", res:header("Content-Length"))
    assert.are.equal("1", res:header("X-A"))
    assert.are.equal("2", res:header("X-B"))
    assert.is_nil(res:header("From"))
    local raw2 = testing.response_for(req, 200, { body = "x", content_length = 50 })
    assert.are.equal("50", testing.parse(raw2):header("Content-Length"))
  end)

  it("the default reason is the standard phrase", function()
    assert.is_truthy(testing.response_for(req, 412):match("^SIP/2%.0 412 Conditional Request Failed\r\n"))
    assert.is_truthy(testing.response_for(req, 100):match("^SIP/2%.0 100 Trying\r\n"))
  end)

  it("branch, cseq, call_id and method overrides", function()
    local res = testing.parse(testing.response_for(req, 200, {
      branch = "z9hG4bKzzz", cseq = 99, call_id = "other", method = "INVITE",
    }))
    assert.are.equal("z9hG4bKzzz", res.branch)
    assert.are.equal(3, res.via_count)
    assert.are.equal(99, res.cseq)
    assert.are.equal("INVITE", res.cseq_method)
    assert.are.equal("other", res.call_id)
  end)

  it("an existing To tag is kept", function()
    local r = testing.parse("PUBLISH sip:a@b SIP/2.0\r\nTo: <sip:a@b>;tag=x1\r\nCSeq: 1 PUBLISH\r\n\r\n")
    assert.are.equal("<sip:a@b>;tag=x1", testing.parse(testing.response_for(r, 200)):header("To"))
  end)
end)

describe("net", function()
  local ua, net
  before_each(function() ua, net = testing.new_ua() end)

  it("new_ua defaults and the virtual transport", function()
    assert.is_not_nil(ua._core)
    ua:publish("sip:bob@example.com", "presence", "B1")
    local req = net:take()
    assert.is_truthy(req:header("From"):find("sip:alice@example.com", 1, true))
    assert.are.equal("127.0.0.1", req.host)
    assert.are.equal(5060, req.port)
    assert.are.equal("sip:bob@example.com", req.uri)
  end)

  it("new_ua refuses another transport", function()
    assert.has_error(function() testing.new_ua { transport = "udp" } end)
  end)

  it("sent() drains; take() wants exactly one; none() wants zero", function()
    assert.are.same({}, net:sent())
    local ok, err = pcall(net.take, net)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("expected exactly one request", 1, true), tostring(err))
    assert.is_true(net:none())

    ua:publish("sip:alice@example.com", "presence", "B1")
    ua:publish("sip:bob@example.com", "presence", "B2")
    ok, err = pcall(net.take, net)
    assert.is_false(ok)
    err = tostring(err)
    assert.is_truthy(err:find("2 requests", 1, true), err)
    assert.is_truthy(err:find("sip:alice@example.com", 1, true), err)
    assert.is_truthy(err:find("sip:bob@example.com", 1, true), err)
    assert.are.same({}, net:sent(), "take() drained them")

    ua:publish("sip:carol@example.com", "presence", "B3")
    ok, err = pcall(net.none, net)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("sip:carol@example.com", 1, true), tostring(err))
    local list = net:sent()
    assert.are.same({}, list, "none() drained it")
  end)

  it("the clock: advance in float seconds, now in seconds", function()
    assert.are.equal(0, net:now())
    net:advance(0.5)
    assert.are.equal(0.5, net:now())
    net:advance(1.25)
    assert.are.equal(1.75, net:now())
    net:advance(3240)
    assert.are.equal(3241.75, net:now())
    assert.has_error(function() net:advance(-1) end)
  end)

  it("advance fires the timers on the way: the first retransmission at 0.5 s", function()
    ua:publish("sip:alice@example.com", "presence", "B1")
    local req = net:take()
    net:advance(0.499)
    net:none()
    net:advance(0.001)
    assert.are.equal(req.data, net:take().data)
  end)

  it("reply injects a response and returns it; record sees the events in order", function()
    local ctx = ua:publish("sip:alice@example.com", "presence", "B1")
    local rec = testing.record(ctx)
    local req = net:take()
    local raw = net:reply(req, 100)
    assert.is_truthy(raw:match("^SIP/2%.0 100 Trying\r\n"))
    net:reply(req, 200, { ["SIP-ETag"] = "e1", Expires = 3600 })
    assert.are.equal(2, #rec)
    assert.are.same({ "progress", 100, "Trying" }, { rec[1].event, rec[1].status, rec[1].cause })
    assert.are.same({ "published", 200, "OK" }, { rec[2].event, rec[2].status, rec[2].cause })
    assert.are.equal(200, rec[2].response.status_code)
    assert.are.equal("e1", ctx.etag)
  end)

  it("response_for does not inject; receive does", function()
    local ctx = ua:publish("sip:alice@example.com", "presence", "B1")
    local rec = testing.record(ctx)
    local raw = net:response_for(net:take(), 200, { ["SIP-ETag"] = "e1" })
    assert.are.same({}, rec)
    net:receive(raw)
    assert.are.equal(1, #rec)
  end)

  it("record stores nil status and response for a timeout", function()
    local ctx = ua:publish("sip:alice@example.com", "presence", "B1")
    local rec = testing.record(ctx)
    net:advance(32)
    assert.are.equal(2, #rec)
    assert.are.same({ event = "failed", cause = "Request Timeout" }, rec[1])
    assert.are.same({ event = "unpublished", cause = "Request Timeout" }, rec[2])
  end)

  it("fail_sends makes the next send fail", function()
    local ctx = ua:publish("sip:alice@example.com", "presence", "B1")
    local rec = testing.record(ctx)
    net:reply(net:take(), 200, { ["SIP-ETag"] = "e1", Expires = 3600 })
    net:fail_sends(1)
    ctx:publish("B2")
    net:sent()
    net:advance(0) -- events of a user call come on the next loop turn
    assert.are.equal("failed", rec[2] and rec[2].event)
    assert.are.equal("Connection Error", rec[2].cause)
    ctx:publish("B3")
    assert.are.equal("B3", net:take().body, "only one send failed")
  end)
end)
