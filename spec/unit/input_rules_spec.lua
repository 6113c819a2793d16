-- One set of input rules (doc/api.md "Bad input"): every string ua:publish and sip.UA.new
-- take is judged by the core's sipub_check_* rules. A bad value is refused the same way
-- whichever options come with it, the error names the argument and carries the core's
-- message (core.check gives the same), it is raised at the caller's line, and nothing is sent.
local sip = require "sip"
local core = require "sip.core"
local testing = require "sip.testing"

local TARGET = "sip:alice@example.com"
local THIS_FILE = debug.getinfo(1, "S").short_src

local function show(v) return ("%q"):format(v) end

-- Options that come with a bad value: none, plain ones, and extra headers with every option.
local COMPANIONS = {
  { name = "no options" },
  { name = "expires and contentType", opts = { expires = 60, contentType = "application/pidf+xml" } },
  { name = "extra headers and every option",
    opts = { extraHeaders = { "X-Ok: 1" }, expires = 60, unpublishOnClose = false } },
}

local function copy(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

-- ua:publish with one argument replaced; asserts the error names `what` with the message
-- core.check(kind, value) gives, at this file's line, and that nothing was sent.
local function refuses(what, kind, value, call)
  local problem, msg = core.check(kind, value)
  assert.is_string(problem, ("core.check(%q, %s) should refuse it"):format(kind, show(value)))
  for _, c in ipairs(COMPANIONS) do
    local ua, net = testing.new_ua()
    local ok, err = pcall(call, ua, copy(c.opts))
    assert.is_false(ok, c.name .. ": accepted " .. show(value))
    err = tostring(err)
    local want = ("bad argument to 'publish' (%s: %s)"):format(what, msg)
    assert.is_truthy(err:find(want, 1, true), c.name .. ": expected\n  " .. want .. "\ngot\n  " .. err)
    net:none()
  end
end

local function publish_line(ua, target, event, body, opts)
  return ua:publish(target, event, body, next(opts) and opts or nil)
end

local BAD = {
  target = { kind = "uri", values = {
    "", "sip:al<ice@example.com", "sip:alice@example.com>", "<sip:alice@example.com>",
    "sip:al ice@example.com", "sip:alice@example.com\t", "sip:alice@example.com\r\nX: y",
    "sip:alice@example.com\n", "sip:al\0ice@example.com", "sip:al%00ice@example.com",
    "sip:alice@example.com;x=%00", "sip:alice@example.com:0", "sip:alice@example.com:70000",
    "sip:alice@example.com:5x", "sip:alice@example.com:", "http://example.com", "tel:+15551234",
    "mailto:alice@example.com", "alice@example.com", "sip:a", "sip:@example.com",
    "sip:al\"ice@example.com", "sip:alice@exa_mple.com", "sip:alice@exa%6dple.com",
    "sip:alice@-example.com", "sip:alice@[::1",
  } },
  event = { kind = "token", values = {
    "", "pres ence", "pres,ence", "presence;id=1", "pres/ence", "pres\r\nence", "presence\n",
    "pres\0ence", "pr\195\169sence", "pres:ence",
  } },
  contentType = { kind = "media_type", what = "options.contentType", values = {
    "", "text", "text/", "/plain", "text/plain x", "text/pl@in", "text/plain;charset",
    "text/plain;;a=b", 'multipart/related;type="a;b"', 'text/plain;q="a b"',
    "text/plain\0", "text/plain\r\nX: y", "text/plain\195\169",
  } },
  extraHeaders = { kind = "header_line", values = {
    "Authorization: x", "Proxy-Authorization: x", "authorization: Digest x", "Via: x", "VIA: x",
    "v: x", "From: <sip:x@y>", "f: x", "To: x", "t: x", "Call-ID: x", "i: x", "CSeq: 1 PUBLISH",
    "Max-Forwards: 1", "Event: x", "o: x", "Expires: 1", "SIP-If-Match: x", "Content-Type: a/b",
    "c: a/b", "Content-Length: 0", "l: 0", "NoColon", ": value", "X A: 1", " X-A: 1",
    "X-A: 1\r\nX-B: 2", "X-A: 1\n", "X-A: \0", "X-\0A: 1", "", "X-A\r: 1", "X(A): 1",
  } },
  etag = { kind = "etag", what = "options.etag", values = {
    "", "a b", "a,b", "a;b", "\"quoted\"", "a\r\nX: y", "a\0b", "a\tb",
  } },
}

describe("ua:publish refuses what the core's rules refuse, naming the argument", function()
  for _, v in ipairs(BAD.target.values) do
    it("target = " .. show(v), function()
      refuses("target", "uri", v, function(ua, o) return publish_line(ua, v, "presence", "B1", o) end)
    end)
  end
  for _, v in ipairs(BAD.event.values) do
    it("event = " .. show(v), function()
      refuses("event", "token", v, function(ua, o) return publish_line(ua, TARGET, v, "B1", o) end)
    end)
  end
  for _, name in ipairs { "contentType", "etag" } do
    local case = BAD[name]
    for _, v in ipairs(case.values) do
      it(case.what .. " = " .. show(v), function()
        refuses(case.what, case.kind, v, function(ua, o)
          o[name] = v
          return ua:publish(TARGET, "presence", "B1", o)
        end)
      end)
    end
  end
  for _, v in ipairs(BAD.extraHeaders.values) do
    it("options.extraHeaders[3] = " .. show(v), function()
      refuses("options.extraHeaders[3]", "header_line", v, function(ua, o)
        o.extraHeaders = { "X-A: 1", "X-B: 2", v }
        return ua:publish(TARGET, "presence", "B1", o)
      end)
    end)
  end

  it("more than 64 extra headers: the core's limit, naming options.extraHeaders", function()
    local ua, net = testing.new_ua()
    local many = {}
    for i = 1, 65 do many[i] = "X-H" .. i .. ": 1" end
    local ok, err = pcall(ua.publish, ua, TARGET, "presence", "B1", { extraHeaders = many })
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("(options.extraHeaders: 64 extra headers at most)", 1, true), err)
    many[65] = nil
    ua:publish(TARGET, "presence", "B1", { extraHeaders = many })
    assert.are.equal("1", net:take():header("X-H64"))
  end)

  it("the error is raised at the caller's line", function()
    local ua = testing.new_ua()
    local line = debug.getinfo(1, "l").currentline + 1
    local ok, err = pcall(function() ua:publish("sip:a b@example.com", "presence", "B1") end)
    assert.is_false(ok)
    assert.are.equal(("%s:%d: "):format(THIS_FILE, line), tostring(err):sub(1, #THIS_FILE + #tostring(line) + 3))
  end)

  it("an own header names itself in the message", function()
    local ua = testing.new_ua()
    local ok, err = pcall(ua.publish, ua, TARGET, "presence", "B1", { extraHeaders = { "Proxy-Authorization: x" } })
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("(options.extraHeaders[1]: names a header the library writes (Proxy-Authorization))", 1, true), err)
  end)
end)

describe("sip.UA.new refuses what the core's rules refuse, naming the field", function()
  local BAD_UA = {
    uri = { "uri", BAD.target.values },
    outbound_proxy = { "uri", { "127.0.0.1:5060", "sip:127.0.0.1:0", "sip:p<x>", "http://p", "sip:p%00" } },
    via_host = { "host", { "h;branch=z9hG4bKevil", "h, SIP/2.0/UDP x", "[::1", "::1", "h:5060", "h/x",
                           "-h", "h-", "h..x", ".", "h\r\nX: y", "h\0", "", "h x", "[1.2.3.4]" } },
    local_address = { "address", { "localhost", "1.2.3", "[::1]", "1.2.3.4:5", "", "::1\0" } },
    user_agent = { "header_value", { "", "UA/1\r\nX: y", "UA\0" } },
  }
  for field, case in pairs(BAD_UA) do
    for _, v in ipairs(case[2]) do
      it(field .. " = " .. show(v), function()
        local problem, msg = core.check(case[1], v)
        assert.is_string(problem, ("core.check(%q, %s)"):format(case[1], show(v)))
        local cfg = { uri = TARGET, outbound_proxy = "sip:127.0.0.1:5060", transport = "virtual" }
        cfg[field] = v
        local ok, err = pcall(sip.UA.new, cfg)
        assert.is_false(ok, "accepted " .. show(v))
        local want = ("bad argument to 'UA.new' (%s: %s)"):format(field, msg)
        assert.is_truthy(tostring(err):find(want, 1, true), "expected\n  " .. want .. "\ngot\n  " .. tostring(err))
      end)
    end
  end
end)

describe("good input passes the same rules and is sent as given", function()
  it("targets", function()
    for _, t in ipairs { "sip:alice@example.com;transport=udp", "sips:alice@example.com:5061",
                         "sip:alice@[::1]:5070", "sip:+15551234;user=phone@example.com",
                         "sip:alice@example.com?subject=x%20y", "sip:al%69ce@example.com" } do
      assert.is_nil(core.check("uri", t), t)
      local ua, net = testing.new_ua()
      ua:publish(t, "presence", "B1")
      assert.is_table(net:take(), t)
    end
  end)

  it("events, media types, extra headers, entity-tags, hosts and addresses", function()
    local good = {
      token = { "presence", "presence.winfo", "message-summary", "x-Ev!%*_+`'~" },
      media_type = { "text/plain", "application/pidf+xml", "text/plain; charset=utf-8",
                     'multipart/related;type="application/rlmi+xml";start="<a@b>"' },
      header_line = { "X-A: 1", "X-A:", "X-A :1", "Route: <sip:p.example.com;lr>", "User-To-User: x\ty" },
      etag = { "abc", "a.1-2_3", "x" .. string.rep("y", 3000) },
      host = { "example.com", "example.com.", "h-1.example", "192.0.2.1", "[::1]", "[2001:db8::1]" },
      address = { "127.0.0.1", "::1", "0.0.0.0", "::" },
    }
    for kind, values in pairs(good) do
      for _, v in ipairs(values) do
        assert.is_nil(core.check(kind, v), kind .. " " .. show(v))
      end
    end
    local ua, net = testing.new_ua { via_host = "[2001:db8::1]" }
    ua:publish(TARGET, "presence.winfo", "B1", { contentType = "text/plain; charset=utf-8",
                                                 extraHeaders = { "X-A:", "User-To-User: x\ty" } })
    local req = net:take()
    assert.are.equal("presence.winfo", req:header("Event"))
    assert.is_truthy(req:header("Via"):find("[2001:db8::1]", 1, true), req:header("Via"))
    assert.are.equal("x\ty", req:header("User-To-User"))
  end)

  it("core.parse_uri gives the parts, or the core's problem", function()
    assert.are.same({ scheme = "sip", user = "alice", host = "::1", port = 5070 },
                    core.parse_uri("sip:alice@[::1]:5070"))
    local parts, problem, msg = core.parse_uri("sip:alice@example.com:0")
    assert.is_nil(parts)
    assert.are.equal("port", problem)
    assert.are.equal(select(2, core.check("uri", "sip:alice@example.com:0")), msg)
  end)

  it("core.check names its problems", function()
    assert.are.equal("control", core.check("uri", "sip:a\0@example.com"))
    assert.are.equal("escape", core.check("uri", "sip:al%00ice@example.com"))
    assert.are.equal("scheme", core.check("uri", "tel:+1555"))
    assert.are.equal("empty", core.check("token", ""))
    assert.are.equal("own_header", core.check("header_line", "Authorization: x"))
    assert.are.equal("header_line", core.check("header_line", "NoColon"))
    assert.are.equal("host", core.check("host", "h;branch=z9hG4bKevil"))
    assert.has_error(function() core.check("nonsense", "x") end)
  end)

  it("defaults come from the core: text/plain, 3600, unpublishOnClose", function()
    assert.are.same({ contentType = "text/plain", expires = 3600, unpublishOnClose = true }, core.defaults)
    local ua, net = testing.new_ua()
    local ctx = ua:publish(TARGET, "presence", "B1")
    assert.are.same({ extraHeaders = {}, contentType = "text/plain", expires = 3600, unpublishOnClose = true },
                    ctx.options)
    local req = net:take()
    assert.are.equal("3600", req:header("Expires"))
    assert.are.equal("text/plain", req:header("Content-Type"))
  end)
end)
