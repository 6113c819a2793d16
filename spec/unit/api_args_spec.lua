-- Bad input (doc/api.md "Bad input"): every argument is checked at the call, a bad one raises
-- a Lua error naming it, and nothing is sent. Plus the handler/emitter contract and errors
-- raised by handlers (sip.on_error).
local sip = require "sip"
local testing = require "sip.testing"
local S = require "support.scenario"
local show = require("support.common").show

-- fn() must raise an error whose message contains `name`.
local function raises_naming(name, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error naming " .. name)
  assert.is_truthy(tostring(err):find(name, 1, true),
    ("the error should name %q: %s"):format(name, tostring(err)))
end

local function ua_config(extra)
  local cfg = { uri = "sip:alice@example.com", outbound_proxy = "sip:127.0.0.1:5060", transport = "virtual" }
  for k, v in pairs(extra) do cfg[k] = v end
  return cfg
end

describe("sip.UA.new rejects bad config", function()
  it("config not a table", function()
    raises_naming("config", sip.UA.new, nil)
    raises_naming("config", sip.UA.new, "sip:alice@example.com")
  end)

  local cases = {
    uri = { false, 42, "", "http://example.com", "alice@example.com", "sip:alice@example.com\r\nX: y",
            "sip:alice@example.com\n", "sip:al\0ice@example.com" },
    outbound_proxy = { 42, "", "127.0.0.1:5060", "sip:127.0.0.1:5060\r\nX: y" },
    user_agent = { 42, "", "UA/1\r\nX: y", "UA\0" },
    transport = { "tcp", 42, "" },
    local_port = { "x", 1.5, -1, 70000 },
    local_address = { 42, "" },
    via_host = { 42, "", "host\r\nX: y" },
  }
  for field, values in pairs(cases) do
    for _, v in ipairs(values) do
      it(field .. " = " .. show(v), function()
        local cfg = ua_config { [field] = v }
        if field == "uri" and v == false then cfg.uri = nil end
        raises_naming(field, sip.UA.new, cfg)
      end)
    end
  end

  it("a missing uri", function()
    local cfg = ua_config {}
    cfg.uri = nil
    raises_naming("uri", sip.UA.new, cfg)
  end)

  it("an unknown field", function()
    raises_naming("urii", sip.UA.new, ua_config { urii = "sip:x@example.com" })
  end)

  it("good values are used: user_agent, user_agent = false, via_host", function()
    local ua, net = testing.new_ua { user_agent = "Tester/9", via_host = "192.0.2.7" }
    ua:publish(S.TARGET, "presence", "B1")
    local req = net:take()
    assert.are.same({ "Tester/9" }, req:headers("User-Agent"))
    assert.is_truthy(req:header("Via"):match("^SIP/2%.0/UDP 192%.0%.2%.7[:;]"), req:header("Via"))
    local ua2, net2 = testing.new_ua { user_agent = false }
    ua2:publish(S.TARGET, "presence", "B1")
    assert.is_nil(net2:take():header("User-Agent"))
  end)

  it("the From is the configured uri, the destination the outbound proxy", function()
    local ua, net = testing.new_ua { uri = "sip:carol@example.org", outbound_proxy = "sip:192.0.2.9:5070" }
    ua:publish(S.TARGET, "presence", "B1")
    local req = net:take()
    assert.is_truthy(req:header("From"):find("<sip:carol@example.org>", 1, true), req:header("From"))
    assert.are.equal("192.0.2.9", req.host)
    assert.are.equal(5070, req.port)
    assert.are.equal(S.TARGET, req.uri)
  end)
end)

describe("UA routing and module constants", function()
  it("without outbound_proxy a request goes to the target's host and port (5060 by default)", function()
    local ua, net = testing.new_ua { outbound_proxy = false }
    ua:publish("sip:bob@192.0.2.5:5080", "presence", "B1")
    local req = net:take()
    assert.are.equal("192.0.2.5", req.host)
    assert.are.equal(5080, req.port)
    assert.are.equal("sip:bob@192.0.2.5:5080", req.uri)
    ua:publish("sip:carol@192.0.2.6", "presence", "B1")
    req = net:take()
    assert.are.equal("192.0.2.6", req.host)
    assert.are.equal(5060, req.port)
  end)

  it("sip.C.causes and sip.C.REASON_PHRASE", function()
    assert.are.equal("Request Timeout", sip.C.causes.REQUEST_TIMEOUT)
    assert.are.equal("Connection Error", sip.C.causes.CONNECTION_ERROR)
    assert.are.equal("Protocol Error", sip.C.causes.PROTOCOL_ERROR)
    assert.are.equal("Temporarily Unavailable", sip.C.causes[480])
    assert.are.equal("Conditional Request Failed", sip.C.REASON_PHRASE[412])
    assert.are.equal("Interval Too Brief", sip.C.REASON_PHRASE[423])
    assert.is_nil(sip.C.REASON_PHRASE[499])
  end)

  it("sip.testing is reachable as sip.testing", function()
    assert.are.equal(testing, sip.testing)
  end)
end)

describe("ua:publish rejects bad arguments and sends nothing", function()
  local ua, net
  before_each(function() ua, net = testing.new_ua() end)
  after_each(function() net:none() end)

  local function publish(target, event, body, options)
    return ua:publish(target, event, body, options)
  end

  -- each value is wrapped in a table so that nil can be listed
  local positional = {
    { "target", 1, { { nil }, { 42 }, { "" }, { "http://example.com" }, { "alice@example.com" },
                     { "sip:alice@example.com\r\nX: y" }, { "sip:alice@example.com\n" },
                     { "sip:al\0ice@example.com" } } },
    { "event", 2, { { nil }, { 42 }, { "" }, { "pres\r\nence" }, { "presence\n" }, { "pres\0ence" },
                    { "pres ence" } } },
    { "body", 3, { { nil }, { "" }, { 42 }, { {} } } },
  }
  for _, case in ipairs(positional) do
    local name, idx, values = case[1], case[2], case[3]
    for _, box in ipairs(values) do
      it(name .. " = " .. show(box[1]), function()
        local args = { S.TARGET, "presence", "B1" }
        args[idx] = box[1]
        raises_naming(name, publish, args[1], args[2], args[3])
      end)
    end
  end

  it("options not a table", function()
    raises_naming("options", publish, S.TARGET, "presence", "B1", "x")
    raises_naming("options", publish, S.TARGET, "presence", "B1", 42)
  end)

  local options = {
    extraHeaders = { "X-Foo: 1", { 42 }, { "NoColon" }, { ": value" }, { "X-A: 1\r\nX-B: 2" },
                     { "X-A: 1\n" }, { "X-A: \0" }, { "X-Ok: 1", true } },
    contentType = { 42, "", "text/plain\r\nX: y", "text/plain\0", "text/plain;charset", "text/plain x",
                    "text/pl@in", 'multipart/related;type="a;b"', 'text/plain;q="a b"', "text/plain;;a=b",
                    "text/plain\195\169" },
    expires = { "abc", "3600", 1.5, 0, -1, true, 0 / 0, math.huge },
    unpublishOnClose = { "yes", 1, 0 },
  }
  for name, values in pairs(options) do
    for _, v in ipairs(values) do
      it("options." .. name .. " = " .. (type(v) == "table" and "{" .. table.concat((function()
        local t = {}
        for i, x in ipairs(v) do t[i] = show(x) end
        return t
      end)(), ", ") .. "}" or show(v)), function()
        raises_naming(name, publish, S.TARGET, "presence", "B1", { [name] = v })
      end)
    end
  end

  it("media types with parameters go out with their parameters (libosip2 writes \"; \")", function()
    for _, ct in ipairs { "text/plain;charset=utf-8", "text/plain; charset=UTF-8 ",
                          'multipart/related;type="application/rlmi+xml";start="<nXYxAE@pres.vancouver.example.com>";boundary=50UBfW7LSCVLtggUPytvm2' } do
      local ua2, net2 = testing.new_ua()
      ua2:publish(S.TARGET, "presence", "B1", { contentType = ct })
      assert.are.equal(ct:gsub("%s", ""):gsub(";", "; "), net2:take():header("Content-Type"))
    end
  end)

  it("publications of several events and media types, interleaved: each request carries its own", function()
    local ua2, net2 = testing.new_ua()
    local kinds = {
      { "presence", "application/pidf+xml" }, { "dialog", "application/dialog-info+xml" },
      { "presence", "application/pidf+xml" }, { "message-summary", "text/plain" },
      { "dialog", "application/dialog-info+xml" },
    }
    local call_ids = {}
    for i, k in ipairs(kinds) do
      local target = ("sip:user%d@example.com"):format(i)
      ua2:publish(target, k[1], "B" .. i, { contentType = k[2] })
      local req = net2:take()
      assert.are.equal(target, req.uri)
      assert.are.equal("<" .. target .. ">", req:header("To"))
      assert.are.equal(k[1], req:header("Event"))
      assert.are.equal(k[2], req:header("Content-Type"))
      assert.are.equal("B" .. i, req.body)
      assert.is_nil(call_ids[req:header("Call-ID")])
      call_ids[req:header("Call-ID")] = true
    end
  end)

  it("unknown option names", function()
    raises_naming("expiry", publish, S.TARGET, "presence", "B1", { expiry = 60 })
    raises_naming("content_type", publish, S.TARGET, "presence", "B1", { content_type = "text/plain" })
  end)

  it("a long (600-character) uri and target: sent in full, or refused at the call", function()
    local long = "sip:" .. string.rep("a", 600) .. "@example.com"
    local ua2, net2 = testing.new_ua { uri = long }
    local ok, ctx = pcall(ua2.publish, ua2, long, "presence", "B1")
    if not ok then
      assert.is_truthy(tostring(ctx):find("target", 1, true), tostring(ctx))
      net2:none()
      return
    end
    local req = net2:take()
    assert.are.equal(long, req.uri)
    assert.are.equal("<" .. long .. ">", req:header("To"))
    assert.is_truthy(req:header("From"):find("<" .. long .. ">", 1, true), req:header("From"))
  end)

  it("a long (3000-character) SIP-ETag is echoed in full", function()
    local t = S.published(nil, string.rep("x", 3000))
    t.ctx:publish()
    S.refresh(t.net:take(), string.rep("x", 3000), 3600)
  end)

  it("a good call after bad ones still works", function()
    pcall(publish, S.TARGET, "presence", "B1", { expires = 0 })
    net:none()
    publish(S.TARGET, "presence", "B1", { expires = 60 })
    assert.are.equal("60", net:take():header("Expires"))
  end)
end)

describe("publish options", function()
  it("ctx.options is a copy with defaults filled in; the caller's table is not modified", function()
    local ua, net = testing.new_ua()
    local opts = { expires = 120 }
    local ctx = ua:publish(S.TARGET, "presence", "B1", opts)
    net:take()
    assert.are.same({ expires = 120 }, opts)
    assert.are_not.equal(opts, ctx.options)
    assert.are.equal(120, ctx.options.expires)
    assert.are.equal("text/plain", ctx.options.contentType)
    assert.are.same({}, ctx.options.extraHeaders)
    assert.is_true(ctx.options.unpublishOnClose)
    assert.are.equal("presence", ctx.event)
    assert.are.equal(S.TARGET, ctx.target)
    assert.are.equal("B1", ctx.body)
  end)

  it("options left to their defaults give what the same options given explicitly give", function()
    -- One publish path: the defaults (the core's, core.defaults) must build the same context
    -- and request as unpublishOnClose = true given. Same seed: the same tags, Call-ID and branch.
    local function run(options)
      local ua, net = testing.new_ua { seed = 7 }
      local ctx = ua:publish(S.TARGET, "presence", "B1", options)
      return ctx, net:take().data
    end
    for _, o in ipairs { {}, { contentType = "application/pidf+xml" }, { expires = 60 },
                         { expires = 60.0, contentType = "text/plain ; charset=utf-8" } } do
      local fast, fast_req = run(next(o) and o or nil)
      local general = { unpublishOnClose = true }
      for k, v in pairs(o) do general[k] = v end
      local slow, slow_req = run(general)
      assert.are.equal(slow_req, fast_req)
      assert.are.same(slow.options, fast.options)
      assert.are.equal(slow.options.extraHeaders, fast.options.extraHeaders)
      if math.type then assert.are.equal("integer", math.type(fast.options.expires)) end
      for _, k in ipairs { "target", "event", "body", "state", "etag" } do
        assert.are.equal(slow[k], fast[k], k)
      end
      assert.are.equal(getmetatable(slow), getmetatable(fast))
    end
  end)

  it("options may be omitted: text/plain, Expires 3600", function()
    local ua, net = testing.new_ua()
    ua:publish(S.TARGET, "presence", "B1")
    local req = net:take()
    assert.are.equal("3600", req:header("Expires"))
    assert.are.equal("text/plain", req:header("Content-Type"))
  end)
end)

describe("context methods reject bad arguments and send nothing", function()
  local t
  before_each(function() t = S.published() end)
  after_each(function() t.net:none() end)

  it("ctx:publish with a non-string body", function()
    raises_naming("body", t.ctx.publish, t.ctx, 42)
    raises_naming("body", t.ctx.publish, t.ctx, {})
    raises_naming("body", t.ctx.publish, t.ctx, true)
  end)

  for _, method in ipairs { "on", "once" } do
    it("ctx:" .. method .. " with an unknown or non-string event name", function()
      for _, name in ipairs { "bogus", "Published", "accepted", "" } do
        raises_naming("event", t.ctx[method], t.ctx, name, function() end)
      end
      raises_naming("event", t.ctx[method], t.ctx, nil, function() end)
      raises_naming("event", t.ctx[method], t.ctx, 42, function() end)
    end)

    it("ctx:" .. method .. " with a non-function handler", function()
      for _, h in ipairs { 42, "fn", {} } do
        raises_naming("handler", t.ctx[method], t.ctx, "published", h)
      end
      raises_naming("handler", t.ctx[method], t.ctx, "published", nil)
    end)
  end

  it("ctx:off with an unknown event name or a non-function handler", function()
    raises_naming("event", t.ctx.off, t.ctx, "bogus")
    raises_naming("event", t.ctx.off, t.ctx, nil)
    raises_naming("handler", t.ctx.off, t.ctx, "published", 42)
  end)
end)

describe("handlers", function()
  local saved
  before_each(function() saved = sip.on_error end)
  after_each(function() sip.on_error = saved end)

  it("on/once return the context; several handlers run in registration order", function()
    local t = S.start()
    local order = {}
    assert.are.equal(t.ctx, t.ctx:on("published", function() order[#order + 1] = "a" end))
    assert.are.equal(t.ctx, t.ctx:once("published", function() order[#order + 1] = "b" end))
    t.ctx:on("published", function() order[#order + 1] = "c" end)
    S.ok(t.net, t.req, "e1", 3600)
    assert.are.same({ "a", "b", "c" }, order)
  end)

  it("once fires once; off(event, fn) removes fn; off(event) removes all", function()
    local t = S.published()
    local n = { once = 0, on = 0, other = 0 }
    local fon = function() n.on = n.on + 1 end
    t.ctx:once("published", function() n.once = n.once + 1 end)
    t.ctx:on("published", fon)
    t.ctx:on("published", function() n.other = n.other + 1 end)
    t.ctx:publish()
    S.ok(t.net, t.net:take(), "e2", 3600)
    assert.are.same({ once = 1, on = 1, other = 1 }, n)
    t.ctx:off("published", fon)
    t.ctx:publish()
    S.ok(t.net, t.net:take(), "e3", 3600)
    assert.are.same({ once = 1, on = 1, other = 2 }, n)
    t.ctx:off("published")
    S.clear(t.rec)
    t.ctx:publish()
    S.ok(t.net, t.net:take(), "e4", 3600)
    assert.are.same({ once = 1, on = 1, other = 2 }, n)
    assert.are.same({}, t.rec, "off(event) removed the recorder too")
  end)

  it("every handler that can see its arguments gets the response, kept valid after it returns", function()
    local ua, net = testing.new_ua()
    local ctx = ua:publish(S.TARGET, S.EVENT, "B1")
    local got = {}
    -- one handler each (the binding calls a lone function itself); the failed and
    -- unpublished events of this answer share one response
    ctx:on("failed", function() got.failed = true end) -- no parameters: no object for it
    ctx:on("unpublished", function(r, cause) got.r, got.cause = r, cause end)
    ctx:on("progress", function(...) got.varargs = select("#", ...) end)
    net:reply(net:take(), 503, { ["Retry-After"] = "5" })
    assert.is_true(got.failed)
    local r = got.r
    assert.are.equal(503, r.status_code)
    assert.are.equal("Service Unavailable", r.reason_phrase)
    assert.are.equal("5", r:getHeader("Retry-After"))
    assert.is_truthy(r.data:find("^SIP/2.0 503"))
    assert.are.equal("", r.body)
    assert.are.equal("Service Unavailable", got.cause)
    collectgarbage("collect")
    assert.are.equal(503, r.status_code) -- still whole after the dispatch
    assert.is_nil(got.varargs) -- an initial PUBLISH has no retry: no progress
  end)

  it("a handler registered with both on and once keeps its on registration", function()
    local t = S.published()
    local n = 0
    local f = function() n = n + 1 end
    t.ctx:on("published", f)
    t.ctx:once("published", f)
    t.ctx:publish()
    S.ok(t.net, t.net:take(), "e2", 3600)
    assert.are.equal(2, n)
    t.ctx:publish()
    S.ok(t.net, t.net:take(), "e3", 3600)
    assert.are.equal(3, n)
  end)

  it("a handler that raises goes to sip.on_error; the publication proceeds", function()
    local errors = {}
    sip.on_error = function(msg) errors[#errors + 1] = tostring(msg) end
    local t = S.start()
    t.ctx:on("published", function() error("boom in handler") end)
    S.ok(t.net, t.req, "e1", 3600)
    assert.are.equal(1, #errors)
    assert.is_truthy(errors[1]:find("boom in handler", 1, true), errors[1])
    S.events(t.rec, { "published(200,OK)" })
    assert.are.equal("e1", t.ctx.etag)
    local r = S.fires_at(t.net, 3240)
    S.refresh(r, "e1", 3600)
    S.ok(t.net, r, "e2", 3600)
    assert.are.equal(2, #errors)
    assert.are.equal("e2", t.ctx.etag)
  end)

  it("the handlers after a raising one still run", function()
    sip.on_error = function() end
    local t = S.start()
    local ran = false
    t.ctx:on("published", function() error("first") end)
    t.ctx:on("published", function() ran = true end)
    S.ok(t.net, t.req, "e1", 3600)
    assert.is_true(ran)
  end)

  it("a handler may call publish and close on its own context", function()
    local t = S.start()
    t.ctx:once("published", function(_, cause)
      assert.are.equal("OK", cause)
      t.ctx:publish("B2")
    end)
    S.ok(t.net, t.req, "e1", 3600)
    local m = t.net:take()
    S.modify(m, "e1", "B2", 3600)
    t.ctx:once("published", function() t.ctx:close() end)
    S.ok(t.net, m, "e2", 3600)
    S.remove(t.net:take(), "e2")
  end)

  it("a handler may close the whole UA: the remove goes out", function()
    local t = S.start()
    t.ctx:once("published", function() t.ua:close() end)
    S.ok(t.net, t.req, "e1", 3600)
    S.remove(t.net:take(), "e1")
    assert.is_true(t.ua.closed)
  end)

  it("an error in a handler run by a timer goes to sip.on_error; later timers still fire", function()
    local errors = {}
    sip.on_error = function(msg) errors[#errors + 1] = tostring(msg) end
    local ua, net = testing.new_ua()
    local a = S.start { ua = ua, net = net }
    local b = S.published({ ua = ua, net = net, options = { expires = 40 } }, "eb", 40)
    a.ctx:on("failed", function() error("timer boom") end)
    net:advance(36) -- Timer F of a at 32 s, then b's refresh at 36 s
    assert.are.equal(1, #errors)
    assert.is_truthy(errors[1]:find("timer boom", 1, true), errors[1])
    S.events(a.rec, { "failed(nil,Request Timeout)", "unpublished(nil,Request Timeout)" })
    local found
    for _, r in ipairs(net:sent()) do
      if r.call_id == b.req.call_id then found = r end
    end
    assert.is_not_nil(found, "b's refresh went out")
    S.refresh(found, "eb", 40)
  end)

  it("a handler that raises on failed does not stop unpublished", function()
    sip.on_error = function() end
    local t = S.start()
    t.ctx:on("failed", function() error("x") end)
    t.net:reply(t.req, 404)
    S.events(t.rec, { "failed(404,Not Found)", "unpublished(404,Not Found)" })
  end)
end)
