-- Issue 12, "failures that say why": every error a caller can cause is raised at the
-- caller's line (file:line of the call, never a line inside lua/sip/ or no position at all),
-- and argument errors read "bad argument to 'NAME' (what: message)".
--
-- Each case is a function whose first line makes the call: the error must start with that
-- function's source and line (debug.getinfo's short_src and linedefined).
local sip = require "sip"
local testing = require "sip.testing"

local function raised(fn)
  local info = debug.getinfo(fn, "S")
  local ok, err = pcall(fn)
  assert.is_false(ok, "no error raised")
  assert.is_string(err)
  return err, ("%s:%d: "):format(info.short_src, info.linedefined)
end

-- fn raises an error at its own first line whose message (after the position) matches
-- `pattern` (a Lua pattern, anchored at the start of the message).
local function at_caller(pattern, fn)
  local err, where = raised(fn)
  assert(err:sub(1, #where) == where,
         ("expected the error at %s got: %s"):format(where, err))
  local msg = err:sub(#where + 1)
  assert(msg:find("^" .. pattern), ("message %q does not match %q"):format(msg, pattern))
end

local function bad(fname, what)
  return ("bad argument to '%s' %%(%s: "):format(fname, what:gsub("[%.%[%]]", "%%%0"))
end

describe("error positions", function()
  local ua, net, ctx
  before_each(function()
    ua, net = testing.new_ua()
    ctx = ua:publish("sip:alice@example.com", "presence", "B1")
  end)
  after_each(function() ua:close() end)

  describe("sip.UA.new", function()
    it("config, uri, options and their aliases", function()
      at_caller(bad("UA.new", "config"), function() sip.UA.new(nil) end)
      at_caller(bad("UA.new", "config"), function() sip.UA.new{ uri = "sip:a@b.c", outboundproxy = "x" } end)
      at_caller(bad("UA.new", "uri"), function() sip.UA.new{ uri = "not a uri" } end)
      at_caller(bad("UA.new", "outboundProxy"), function() sip.UA.new{ uri = "sip:a@b.c", outboundProxy = "127.0.0.1" } end)
      at_caller(bad("UA.new", "outbound_proxy"), function() sip.UA.new{ uri = "sip:a@b.c", outbound_proxy = "127.0.0.1" } end)
      at_caller(bad("UA.new", "localPort"), function() sip.UA.new{ uri = "sip:a@b.c", localPort = -1 } end)
      at_caller(bad("UA.new", "local_address"), function() sip.UA.new{ uri = "sip:a@b.c", local_address = "localhost" } end)
      at_caller(bad("UA.new", "viaHost"), function() sip.UA.new{ uri = "sip:a@b.c", viaHost = "h;x" } end)
      at_caller(bad("UA.new", "userAgent"), function() sip.UA.new{ uri = "sip:a@b.c", userAgent = 5 } end)
      at_caller(bad("UA.new", "transport"), function() sip.UA.new{ uri = "sip:a@b.c", transport = "tcp" } end)
      at_caller(bad("UA.new", "seed"), function() sip.UA.new{ uri = "sip:a@b.c", seed = "x", transport = "virtual" } end)
      at_caller(bad("UA.new", "ha1"), function() sip.UA.new{ uri = "sip:a@b.c", ha1 = "zz" } end)
    end)

    it("refuses both spellings of one option", function()
      at_caller(bad("UA.new", "config") .. "outboundProxy and outbound_proxy name the same option",
                function() sip.UA.new{ uri = "sip:a@b.c", outboundProxy = "sip:h", outbound_proxy = "sip:h" } end)
      at_caller(bad("UA.new", "config") .. "localPort and local_port name the same option",
                function() sip.UA.new{ uri = "sip:a@b.c", localPort = 1, local_port = 1 } end)
    end)

    it("accepts the camelCase names and the snake_case aliases alike", function()
      for _, cfg in ipairs {
        { outboundProxy = "sip:127.0.0.1:5070", userAgent = false, viaHost = "example.org" },
        { outbound_proxy = "sip:127.0.0.1:5070", user_agent = false, via_host = "example.org" },
      } do
        local u, n = testing.new_ua(cfg)
        u:publish("sip:bob@example.com", "presence", "B")
        local req = n:take()
        assert.equals(5070, req.port)
        assert.is_nil(req:header("User-Agent"))
        assert.matches("^SIP/2.0/UDP example.org", req:header("Via"))
        u:close()
      end
    end)

    -- A socket that cannot be bound: spec/integration/bind_error_spec.lua (a real socket).
  end)

  describe("ua:publish", function()
    it("arguments and options", function()
      at_caller(bad("publish", "target"), function() ua:publish(1, "presence", "B") end)
      at_caller(bad("publish", "target"), function() ua:publish("not a uri", "presence", "B") end)
      at_caller(bad("publish", "event"), function() ua:publish("sip:a@b.c", "a b", "B") end)
      at_caller(bad("publish", "body"), function() ua:publish("sip:a@b.c", "presence", "") end)
      at_caller(bad("publish", "options"), function() ua:publish("sip:a@b.c", "presence", "B", 5) end)
      at_caller(bad("publish", "options"), function() ua:publish("sip:a@b.c", "presence", "B", { expiry = 5 }) end)
      at_caller(bad("publish", "options.expires"), function() ua:publish("sip:a@b.c", "presence", "B", { expires = 0 }) end)
      at_caller(bad("publish", "options.expires") .. "expected an integer, got 1%.5%)$", function() ua:publish("sip:a@b.c", "presence", "B", { expires = 1.5 }) end)
      at_caller(bad("publish", "options.contentType"), function() ua:publish("sip:a@b.c", "presence", "B", { contentType = "x" }) end)
      at_caller(bad("publish", "options.extraHeaders"), function() ua:publish("sip:a@b.c", "presence", "B", { extraHeaders = "X: 1" }) end)
      at_caller(bad("publish", "options.extraHeaders[1]"), function() ua:publish("sip:a@b.c", "presence", "B", { extraHeaders = { "Via: x" } }) end)
      at_caller(bad("publish", "options.etag"), function() ua:publish("sip:a@b.c", "presence", "B", { etag = "a b" }) end)
      at_caller(bad("publish", "options.unpublishOnClose"), function() ua:publish("sip:a@b.c", "presence", "B", { unpublishOnClose = 1 }) end)
    end)

    it("called with a dot: names self", function()
      at_caller(bad("publish", "self"), function() ua.publish("sip:a@b.c", "presence", "B") end)
      at_caller(bad("close", "self"), function() ua.close() end)
      at_caller(bad("port", "self"), function() ua.port() end)
    end)

    it("on a closed user agent", function()
      ua:close()
      at_caller("sip: publish on a closed user agent$", function() ua:publish("sip:a@b.c", "presence", "B") end)
    end)
  end)

  describe("the publish context", function()
    it("publish, on, once, off", function()
      at_caller(bad("publish", "body"), function() ctx:publish(5) end)
      at_caller(bad("on", "event"), function() ctx:on("publish", function() end) end)
      at_caller(bad("on", "handler"), function() ctx:on("failed", 5) end)
      ctx:on("failed", function() end) -- a second handler takes the Lua path
      at_caller(bad("on", "event"), function() ctx:on("publish", function() end) end)
      at_caller(bad("on", "handler"), function() ctx:on("failed", 5) end)
      at_caller(bad("once", "event"), function() ctx:once(nil, function() end) end)
      at_caller(bad("once", "handler"), function() ctx:once("failed", "f") end)
      at_caller(bad("off", "event"), function() ctx:off("x") end)
      at_caller(bad("off", "handler"), function() ctx:off("failed", 5) end)
    end)

    it("methods called with a dot name self", function()
      at_caller(bad("publish", "self"), function() ctx.publish("B2") end)
      at_caller(bad("unpublish", "self"), function() ctx.unpublish(5) end)
      at_caller(bad("close", "self"), function() ctx.close("x") end)
    end)

    it("the response's header methods", function()
      local response
      ctx:on("published", function(r) response = r end)
      net:reply(net:take(), 200, { ["SIP-ETag"] = "e1" })
      assert.is_table(response)
      assert.is_true(response:hasHeader("sip-etag"))
      assert.is_false(response:hasHeader("X-None"))
      at_caller(bad("getHeader", "name"), function() response:getHeader(nil) end)
      at_caller(bad("getHeaders", "name"), function() response:getHeaders(5) end)
      at_caller(bad("hasHeader", "name"), function() response:hasHeader() end)
    end)

    it("misuse: nothing to refresh, a closed context", function()
      net:reply(net:take(), 403)
      at_caller("sip: cannot publish: nothing is published to refresh$", function() ctx:publish() end)
      ctx:close()
      at_caller("sip: publish on a closed context$", function() ctx:publish("B2") end)
      at_caller("sip: publish on a closed context$", function() ctx:publish(5) end)
    end)
  end)

  describe("the loop", function()
    it("sip.run, sip.timer, sip.luv_pump", function()
      at_caller(bad("run", "mode"), function() sip.run("forever") end)
      at_caller(bad("timer", "seconds"), function() sip.timer(-1, function() end) end)
      at_caller(bad("timer", "seconds"), function() sip.timer(0 / 0, function() end) end)
      at_caller(bad("timer", "seconds"), function() sip.timer("1", function() end) end)
      at_caller(bad("timer", "fn"), function() sip.timer(1, 5) end)
      at_caller(bad("luv_pump", "uv"), function() sip.luv_pump(5) end)
    end)

    it("a re-entrant sip.run() from a handler: raised at the handler's line", function()
      local got
      local saved = sip.on_error
      sip.on_error = function(msg) got = msg end
      local line
      sip.timer(0, function()
        line = debug.getinfo(1, "l").currentline; sip.run()
      end)
      sip.run()
      sip.on_error = saved
      local where = ("%s:%d: "):format(debug.getinfo(1, "S").short_src, line)
      assert.is_string(got)
      assert.equals(where .. "sip.run: the loop is already running", got:sub(1, #where + 36))
    end)
  end)

  describe("sip.Compositor.new", function()
    it("options", function()
      at_caller(bad("Compositor.new", "opts"), function() sip.Compositor.new(5) end)
      at_caller(bad("Compositor.new", "port"), function() sip.Compositor.new{ port = -1 } end)
      at_caller(bad("Compositor.new", "opts"), function() sip.Compositor.new{ prot = 1 } end)
      at_caller(bad("Compositor.new", "min_expires"), function() sip.Compositor.new{ min_expires = 10, max_expires = 5 } end)
      at_caller(bad("Compositor.new", "on_request"), function() sip.Compositor.new{ on_request = 5 } end)
      at_caller(bad("Compositor.new", "events[1]"), function() sip.Compositor.new{ events = { "a;b" } } end)
      local many = {}
      for i = 1, 33 do many[i] = "e" .. i end
      at_caller(bad("Compositor.new", "events") .. "32 at most", function() sip.Compositor.new{ events = many } end)
      at_caller(bad("Compositor.new", "events[2]"), function() sip.Compositor.new{ events = { "a", 5 } } end)
    end)
  end)

  describe("sip.testing", function()
    it("new_ua, record, parse, response_for, reply, advance, fail_sends", function()
      at_caller(bad("testing.new_ua", "config"), function() testing.new_ua(5) end)
      at_caller(bad("testing.new_ua", "transport"), function() testing.new_ua{ transport = "udp" } end)
      at_caller(bad("UA.new", "uri"), function() testing.new_ua{ uri = "x" } end)
      at_caller(bad("testing.record", "ctx"), function() testing.record(5) end)
      at_caller(bad("testing.parse", "data"), function() testing.parse(nil) end)
      at_caller(bad("testing.response_for", "req"), function() testing.response_for("x", 200) end)
      local req = net:take()
      at_caller(bad("testing.response_for", "code"), function() testing.response_for(req, 2000) end)
      at_caller(bad("reply", "code"), function() net:reply(req, "200") end)
      at_caller(bad("reply", "opts"), function() net:reply(req, 200, "x") end)
      at_caller(bad("response_for", "req"), function() net:response_for(nil, 200) end)
      at_caller(bad("advance", "seconds"), function() net:advance(-1) end)
      at_caller(bad("fail_sends", "n"), function() net:fail_sends(-1) end)
      at_caller("expected exactly one request", function() net:take() end)
    end)
  end)
end)
