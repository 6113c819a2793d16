-- The message trace (sip.UA.new{trace = fn}) on the virtual network: every request sent (its
-- retransmissions numbered), every response received and every message dropped with its
-- reason, as the bytes on the wire; digest secrets never in it; a raising trace function
-- reported and harmless; no trace, no calls.
local sip = require "sip"
local testing = require "sip.testing"

local TARGET = require("support.common").TARGET

-- A UA whose trace records { dir, text, remote, note, time, reason } per message.
local function traced(config)
  local log = {}
  config = config or {}
  config.trace = function(dir, text, remote, note, time, reason)
    log[#log + 1] = { dir = dir, text = text, remote = remote, note = note, time = time, reason = reason }
  end
  local ua, net = testing.new_ua(config)
  return ua, net, log
end

local function only(log, dir)
  local out = {}
  for _, r in ipairs(log) do if r.dir == dir then out[#out + 1] = r end end
  return out
end

describe("message trace", function()
  it("traces each request sent with its bytes, the flow and the core's time", function()
    local ua, net, log = traced()
    ua:publish(TARGET, "presence", "B1")
    local req = net:take()
    assert.are.equal(1, #log)
    assert.are.same({ dir = "sent", text = req.data, remote = "udp:127.0.0.1:5060", time = 0 },
                    { dir = log[1].dir, text = log[1].text, remote = log[1].remote, time = log[1].time })
    assert.is_nil(log[1].note) -- a first transmission
    assert.is_nil(log[1].reason)
    assert.matches("^PUBLISH " .. TARGET:gsub("%p", "%%%0") .. " SIP/2%.0\r\n", log[1].text)
    assert.matches("\r\n\r\nB1$", log[1].text) -- CRLF kept, the body included
  end)

  it("marks each retransmission after T1 with its number", function()
    local ua, net, log = traced()
    ua:publish(TARGET, "presence", "B1")
    local req = net:take()
    net:advance(0.5)
    local again = net:take()
    net:advance(1)
    net:take()
    local sent = only(log, "sent")
    assert.are.equal(3, #sent)
    assert.are.same({ "retransmission 1", "retransmission 2" }, { sent[2].note, sent[3].note })
    assert.are.same({ 0.5, 1.5 }, { sent[2].time, sent[3].time })
    assert.are.equal(req.data, again.data)
    assert.are.equal(req.data, sent[2].text)
  end)

  it("traces a matched response as received, before the event it causes", function()
    local ua, net, log = traced()
    local ctx = ua:publish(TARGET, "presence", "B1")
    local order = {}
    ctx:on("published", function() order[#order + 1] = "event after " .. #log .. " records" end)
    local raw = net:reply(net:take(), 200, { ["SIP-ETag"] = "e1", Expires = 60 })
    local got = only(log, "received")
    assert.are.equal(1, #got)
    assert.are.equal(raw, got[1].text)
    assert.are.equal("udp:127.0.0.1:5060", got[1].remote) -- the request's flow: no source named
    assert.are.same({ "event after 2 records" }, order)
  end)

  it("traces dropped messages with the reason: junk, unknown branch, a final again, mismatches", function()
    local ua, net, log = traced()
    ua:publish(TARGET, "presence", "B1")
    local req = net:take()
    net:receive("garbage")
    net:reply(req, 200, { branch = "z9hG4bK0123456789abcdef" })
    net:reply(req, 200, { cseq = req.cseq + 1 })
    net:reply(req, 200, { call_id = "other" })
    net:reply(req, 200, { ["SIP-ETag"] = "e1", Expires = 60 })
    local again = net:reply(req, 200, { ["SIP-ETag"] = "e1", Expires = 60 })
    net:receive("SIP/2.0 200 OK\r\n" .. ("X-H: 1\r\n"):rep(200) .. "\r\n", "192.0.2.7", 5080)
    net:receive("SIP/2.0 200 OK\r\n" .. ("x"):rep(70000), "192.0.2.7", 5080)
    local d = only(log, "dropped")
    local function pick(i) return { d[i].reason, d[i].note } end
    assert.are.same({ "unparseable", "not a SIP response" }, pick(1))
    assert.are.equal("garbage", d[1].text)
    assert.is_nil(d[1].remote) -- the test network named no source
    assert.are.same({ "no transaction", "no transaction matches branch z9hG4bK0123456789abcdef" }, pick(2))
    assert.are.equal("mismatch", d[3].reason)
    assert.matches("CSeq", d[3].note)
    assert.are.same({ "mismatch", "branch " .. req.branch .. " matches, its Call-ID does not" }, pick(4))
    assert.are.same({ "retransmitted final", "a final response again for branch " .. req.branch .. ": absorbed" },
                    pick(5))
    assert.are.equal(again, d[5].text)
    assert.are.same({ "too many headers", "more than 128 header lines" }, pick(6))
    assert.are.equal("udp:192.0.2.7:5080", d[6].remote)
    assert.are.same({ "too large", "70016 bytes: over the limit of 65535" }, pick(7))
    assert.are.equal(7, #d)
    assert.are.equal(1, #only(log, "received"))
  end)

  it("traces a stream that cannot be framed, and a send the transport refused", function()
    local ua, net, log = traced()
    ua:publish(TARGET, "presence", "B1")
    net:take()
    ua._core:_receive("SIP/2.0 200 OK\r\nVia: x\r\n\r\n", "127.0.0.1", 5060, "tcp")
    local d = only(log, "dropped")
    assert.are.same({ "framing error", "tcp:127.0.0.1:5060", "unframeable message from 127.0.0.1:5060" },
                    { d[1].reason, d[1].remote, d[1].note })
    net:fail_sends(1)
    ua:publish(TARGET, "dialog", "B2")
    d = only(log, "dropped")
    assert.are.same({ "send refused", "the transport refused the request" }, { d[2].reason, d[2].note })
    assert.matches("^PUBLISH ", d[2].text)
  end)

  describe("secrets", function()
    local function exchange(config, secret)
      local ua, net, log = traced(config)
      local ctx = ua:publish(TARGET, "presence", "B1")
      local rec = testing.record(ctx)
      net:reply(net:take(), 401, { headers = { { "WWW-Authenticate",
        'Digest realm="example.com", nonce="n1", qop="auth", algorithm=MD5' } } })
      local retry = net:take()
      net:reply(retry, 407, { headers = { { "Proxy-Authenticate",
        'Digest realm="example.com", nonce="p1", algorithm=MD5' } } })
      net:reply(net:take(), 200, { ["SIP-ETag"] = "e1", Expires = 60 })
      assert.are.equal("published", rec[1].event)
      assert.are.equal(6, #log) -- 3 sent, 3 received
      local auth = 0
      for _, r in ipairs(log) do
        assert.is_nil(r.text:find(secret, 1, true), "the secret in a traced " .. r.dir .. " message")
        assert.is_nil(tostring(r.note):find(secret, 1, true))
        assert.is_nil(tostring(r.remote):find(secret, 1, true))
        if r.dir == "sent" and r.text:find("\r\nAuthorization: Digest ", 1, true) then auth = auth + 1 end
      end
      assert.are.equal(2, auth) -- the Authorization header shown as sent (it carries a response)
      assert.is_truthy(retry.data:find("response=", 1, true))
    end

    it("the password never appears in a digest exchange", function()
      exchange({ password = "s3cr3t-Pa55" }, "s3cr3t-Pa55")
    end)

    it("nor does the HA1", function()
      local ha1 = "0123456789abcdef0123456789abcdef"
      exchange({ ha1 = ha1 }, ha1)
    end)
  end)

  describe("a faulty trace function", function()
    local saved
    before_each(function() saved = sip.on_error end)
    after_each(function() sip.on_error = saved end)

    it("is reported through sip.on_error; the publication is unaffected", function()
      local errors = {}
      sip.on_error = function(msg) errors[#errors + 1] = tostring(msg) end
      local ua, net = testing.new_ua { trace = function() error("trace boom") end }
      local ctx = ua:publish(TARGET, "presence", "B1")
      local rec = testing.record(ctx)
      net:advance(0.5)
      local req = net:sent()[1]
      net:reply(req, 200, { ["SIP-ETag"] = "e1", Expires = 60 })
      net:receive("garbage")
      assert.are.equal(4, #errors) -- sent, retransmitted, received, dropped
      assert.matches("trace boom", errors[1])
      assert.are.same({ "published" }, { rec[1].event })
      assert.are.equal("e1", ctx.etag)
    end)

    it("cannot call into its user agent: the call raises, the core goes on", function()
      local errors = {}
      sip.on_error = function(msg) errors[#errors + 1] = tostring(msg) end
      local ua, tried
      ua = testing.new_ua { trace = function(dir)
        if dir == "sent" and not tried then
          tried = true
          ua:publish(TARGET, "dialog", "X")
        end
      end }
      ua:publish(TARGET, "presence", "B1")
      assert.are.equal(1, #errors)
      assert.matches("a trace function cannot call into its user agent", errors[1])
      local sent = ua._net:take()
      assert.are.equal(1, #sent)
      assert.matches("\r\n\r\nB1$", sent[1].data)
    end)
  end)

  it("without a trace, nothing is called; a trace that is not a function is refused", function()
    local calls = 0
    local traced_ua, traced_net = testing.new_ua { trace = function() calls = calls + 1 end }
    local ua, net = testing.new_ua()
    local ctx = ua:publish(TARGET, "presence", "B1")
    local rec = testing.record(ctx)
    net:advance(0.5)
    net:reply(net:sent()[1], 200, { ["SIP-ETag"] = "e1", Expires = 60 })
    net:receive("garbage")
    assert.are.equal("published", rec[1].event)
    assert.are.equal(0, calls)
    traced_ua:publish(TARGET, "presence", "B1")
    traced_net:take()
    assert.are.equal(1, calls)
    assert.has_error(function() sip.UA.new { uri = TARGET, trace = 42 } end,
                     "bad argument to 'UA.new' (trace: expected a function, got number)")
  end)
end)
