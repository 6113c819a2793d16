-- Hostile input from the caller (doc/api.md "Bad input"): CR, LF and NUL in every string that
-- becomes a header, 64 KiB values, wrong types for every argument and option, binary bodies.
-- Each case is either a Lua error naming the argument with nothing sent (net:none(), no
-- context left in the UA, the UA still usable), or correct wire output.
local sip = require "sip"
local testing = require "sip.testing"
local common = require "support.common"

local TARGET, show = common.TARGET, common.show
local KIB64 = 64 * 1024

-- fn(...) must raise a Lua error (a string) containing `name`; returns the message.
local function raises_naming(name, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error naming " .. name)
  assert.is_string(err, "the error is a message")
  assert.is_truthy(err:find(name, 1, true), ("the error should name %q: %s"):format(name, err))
  return err
end

-- A UA on the virtual transport; after a refused call, nothing went out, no context was
-- registered and a good publication still works.
local function fresh(cfg)
  local ua, net = testing.new_ua(cfg)
  return ua, net
end

local function still_usable(ua, net)
  net:none()
  local _, live = ua._core:state()
  assert.are.equal(0, live, "a refused publish left a publication in the UA")
  ua:publish(TARGET, "presence", "OK")
  assert.are.equal("OK", net:take().body)
end

-- Values that must never reach a header: CR, LF, NUL anywhere, and header injection.
local INJECTIONS = {
  { "CR at the end", "%s\r" }, { "LF at the end", "%s\n" }, { "CRLF in the middle", "%s\r\nX-Injected: 1" },
  { "a NUL in the middle", "%s\0tail" }, { "a NUL at the end", "%s\0" }, { "a bare LF fold", "%s\n folded" },
  { "CR at the start", "\r%s" }, { "only CRLF", "\r\n" },
}

local function injected(base, pattern)
  return (pattern:gsub("%%s", function() return base end))
end

describe("hostile caller: CR, LF, NUL", function()
  describe("sip.UA.new", function()
    local fields = {
      uri = "sip:alice@example.com", outbound_proxy = "sip:127.0.0.1:5060", user_agent = "UA/1",
      via_host = "192.0.2.1", local_address = "127.0.0.1", authorizationUser = "alice",
      password = "secret", realm = "example.com",
    }
    for field, good in pairs(fields) do
      for _, inj in ipairs(INJECTIONS) do
        it(field .. ": " .. inj[1], function()
          local cfg = { uri = "sip:alice@example.com", transport = "virtual" }
          if field == "realm" or field == "authorizationUser" then cfg.password = "secret" end
          cfg[field] = injected(good, inj[2])
          local err = raises_naming(field, sip.UA.new, cfg)
          if field == "password" then
            assert.is_nil(err:find("secret", 1, true), "the error shows the password: " .. err)
          end
        end)
      end
    end
  end)

  describe("ua:publish", function()
    local args = {
      { "target", function(v) return v, "presence", "B", nil end, TARGET },
      { "event", function(v) return TARGET, v, "B", nil end, "presence" },
      { "options.contentType", function(v) return TARGET, "presence", "B", { contentType = v } end, "text/plain" },
      { "options.extraHeaders[1]", function(v) return TARGET, "presence", "B", { extraHeaders = { v } } end, "X-A: 1" },
      { "options.extraHeaders[2]", function(v) return TARGET, "presence", "B", { extraHeaders = { "X-A: 1", v } } end, "X-B: 2" },
      { "options.etag", function(v) return TARGET, "presence", "B", { etag = v } end, "e1" },
    }
    for _, a in ipairs(args) do
      for _, inj in ipairs(INJECTIONS) do
        it(a[1] .. ": " .. inj[1], function()
          local ua, net = fresh()
          raises_naming(a[1], ua.publish, ua, a[2](injected(a[3], inj[2])))
          still_usable(ua, net)
        end)
      end
    end
  end)

  it("a body may hold CR, LF and NUL: sent byte-exact (it is not a header)", function()
    local ua, net = fresh()
    local body = "line1\r\n\r\nSIP/2.0 200 OK\r\nVia: x\r\n\0\0end\n"
    ua:publish(TARGET, "presence", body)
    local req = net:take()
    assert.are.equal(body, req.body)
    assert.are.equal(tostring(#body), req:header("Content-Length"))
  end)
end)

describe("hostile caller: 64 KiB values", function()
  -- Observed behaviour, asserted: every 64 KiB value is accepted and sent in full on the
  -- virtual transport (no length limit in the library; UDP itself cannot carry it — see
  -- README: keep requests well under ~1300 bytes on UDP).
  local function big(prefix, n, ch) return prefix .. string.rep(ch or "a", n - #prefix) end

  it("a 64 KiB body is sent in full with the right Content-Length", function()
    local ua, net = fresh()
    local body = big("<", KIB64, "x")
    ua:publish(TARGET, "presence", body)
    local req = net:take()
    assert.are.equal(KIB64, #req.body)
    assert.are.equal(body, req.body)
    assert.are.equal(tostring(KIB64), req:header("Content-Length"))
  end)

  it("a 64 KiB event package name is sent in full", function()
    local ua, net = fresh()
    local ev = big("presence.", KIB64)
    ua:publish(TARGET, ev, "B")
    assert.are.equal(ev, net:take():header("Event"))
  end)

  it("a 64 KiB content type is sent in full", function()
    local ua, net = fresh()
    local ct = big("application/x-", KIB64)
    ua:publish(TARGET, "presence", "B", { contentType = ct })
    assert.are.equal(ct, net:take():header("Content-Type"))
  end)

  it("a 64 KiB extra header value, and 64 extra headers, are sent in full and in order", function()
    local ua, net = fresh()
    local v = big("v", KIB64)
    local hs = { "X-Big: " .. v }
    for i = 2, 64 do hs[i] = "X-N" .. i .. ": " .. i end
    ua:publish(TARGET, "presence", "B", { extraHeaders = hs })
    local req = net:take()
    assert.are.equal(v, req:header("X-Big"))
    for i = 2, 64 do assert.are.equal(tostring(i), req:header("X-N" .. i)) end
  end)

  -- Regression (fixed in afad6ee): the error was "lua/sip/context.lua:28: bad argument #6 to
  -- 'pub_new' (too many extra headers (64 at most))", naming neither the option nor the caller.
  it("65 extra headers: refused, naming options.extraHeaders, nothing sent", function()
    local ua, net = fresh()
    local hs = {}
    for i = 1, 65 do hs[i] = "X-N" .. i .. ": " .. i end
    raises_naming("options.extraHeaders", ua.publish, ua, TARGET, "presence", "B", { extraHeaders = hs })
    still_usable(ua, net)
  end)

  it("a 64 KiB user_agent, uri user part and target user part are sent in full", function()
    local user = big("u", KIB64)
    local ua, net = fresh { user_agent = big("UA/", KIB64), uri = "sip:" .. user .. "@example.com" }
    local target = "sip:" .. user .. "@example.org"
    ua:publish(target, "presence", "B")
    local req = net:take()
    assert.are.equal(KIB64, #req:header("User-Agent"))
    assert.are.equal(target, req.uri)
    assert.is_truthy(req:header("From"):find(user, 1, true))
    assert.is_truthy(req:header("To"):find(target, 1, true))
  end)

  it("a 64 KiB entity-tag to resume is sent in full as SIP-If-Match", function()
    local ua, net = fresh()
    local tag = big("e", KIB64)
    ua:publish(TARGET, "presence", "B", { etag = tag })
    local req = net:take()
    assert.are.equal(tag, req:header("SIP-If-Match"))
  end)
end)

describe("hostile caller: wrong types", function()
  local co = coroutine.create(function() end)
  local TYPES = { true, false, 0, 1.5, -1, {}, { "x" }, function() end, co, io.stdout, "" }

  local UA_FIELDS = { "uri", "outbound_proxy", "user_agent", "via_host", "local_address", "local_port",
                      "transport", "seed", "authorizationUser", "password", "ha1", "realm" }
  -- values each field does accept (false: user_agent = false omits the header)
  local OK = {
    user_agent = { [false] = true }, local_port = { [0] = true }, seed = { [0] = true, [-1] = true },
  }
  for _, field in ipairs(UA_FIELDS) do
    for _, v in ipairs(TYPES) do
      if not (OK[field] and OK[field][v]) then
        it("UA.new " .. field .. " = " .. show(v), function()
          local cfg = { uri = "sip:alice@example.com", transport = "virtual", [field] = v }
          if field == "uri" and v == false then cfg.uri = false end
          if field == "ha1" and type(v) == "table" and next(v) == nil then return end -- {}: no algorithm, valid
          raises_naming(field, sip.UA.new, cfg)
        end)
      end
    end
  end

  -- (transport = false was taken for the default "udp" until afad6ee: now in the loop above)

  local OPTS = {
    extraHeaders = { true, 1, "X-A: 1", function() end, { 1 }, { {} }, { "X-A: 1", [3] = "X-B: 2" },
                     { a = "X-A: 1" }, { "no colon" }, { ": empty name" }, { "Two Words: x" },
                     { "X-\128: high byte" }, { "Via: x" }, { "v: x" }, { "Content-Length: 5" },
                     { "CSeq: 1 PUBLISH" }, { "call-id: x" }, { "SIP-If-Match: x" } },
    contentType = { true, 1, {}, "", function() end },
    expires = { "60", 1.5, 0, -1, 2 ^ 31, math.huge, -math.huge, 0 / 0, true, {} },
    unpublishOnClose = { "true", 1, 0, {}, function() end },
    etag = { true, 1, {}, "", "two words", "a,b" },
  }
  for opt, values in pairs(OPTS) do
    for _, v in ipairs(values) do
      it("publish options." .. opt .. " = " .. show(v), function()
        local ua, net = fresh()
        raises_naming("options." .. opt, ua.publish, ua, TARGET, "presence", "B", { [opt] = v })
        still_usable(ua, net)
      end)
    end
  end

  it("publish options not a table, or an unknown option", function()
    local ua, net = fresh()
    for _, v in ipairs { true, 1, "x", function() end } do
      raises_naming("options", ua.publish, ua, TARGET, "presence", "B", v)
    end
    raises_naming("expire", ua.publish, ua, TARGET, "presence", "B", { expire = 60 })
    raises_naming("options", ua.publish, ua, TARGET, "presence", "B", { 60 })
    still_usable(ua, net)
  end)

  for _, arg in ipairs { "target", "event", "body" } do
    for _, v in ipairs { false, 0, {}, function() end, co, io.stdout, "" } do
      it("ua:publish " .. arg .. " = " .. show(v), function()
        local ua, net = fresh()
        local a = { target = TARGET, event = "presence", body = "B" }
        a[arg] = v
        raises_naming(arg, ua.publish, ua, a.target, a.event, a.body)
        still_usable(ua, net)
      end)
    end
    it("ua:publish " .. arg .. " = nil", function()
      local ua, net = fresh()
      local a = { target = TARGET, event = "presence", body = "B" }
      a[arg] = nil
      raises_naming(arg, ua.publish, ua, a.target, a.event, a.body)
      still_usable(ua, net)
    end)
  end

  it("ctx:publish(body) with a non-string body: an error naming body, nothing sent", function()
    local ua, net = fresh()
    local ctx = ua:publish(TARGET, "presence", "B1")
    net:take()
    for _, v in ipairs { true, 0, {}, function() end, co, io.stdout } do
      raises_naming("body", ctx.publish, ctx, v)
    end
    net:none()
  end)

  it("ctx:on/once/off with bad event names or handlers", function()
    local ua = fresh()
    local ctx = ua:publish(TARGET, "presence", "B1")
    for _, m in ipairs { "on", "once" } do
      for _, ev in ipairs { "publish", "", 1, true, {}, "PUBLISHED" } do
        raises_naming("event", ctx[m], ctx, ev, function() end)
      end
      for _, fn in ipairs { 1, "f", {}, true } do
        raises_naming("handler", ctx[m], ctx, "published", fn)
      end
    end
    raises_naming("event", ctx.off, ctx, "nope")
    raises_naming("handler", ctx.off, ctx, "published", 1)
  end)

  it("methods called with '.' instead of ':' raise a Lua error, nothing crashes or goes out", function()
    local ua, net = fresh()
    local ctx = ua:publish(TARGET, "presence", "B1")
    net:take()
    for _, call in ipairs {
      function() ua.publish(TARGET, "presence", "B") end,
      function() ctx.publish("B2") end,
      function() ctx.unpublish() end,
      function() ctx.close() end,
      function() ctx.on("published", print) end,
      function() ctx.publish({}, "B2") end,
      function() ua.close({}) end,
      function() ua._core.pub_new(nil) end,
      function() ctx._h.publish(ua._core, "x") end,
      function() ua._core.close(ctx._h) end,
    } do
      assert.is_false(pcall(call))
    end
    net:none()
    ctx:publish("B2") -- still fine
    net:none() -- queued behind the initial
  end)

  it("the password never appears in an error about the credentials", function()
    for _, cfg in ipairs {
      { password = "s3cr3t-pw", ha1 = "s3cr3t-pw" },
      { password = "s3cr3t-pw", realm = 7 },
      { password = "s3cr3t-pw", authorizationUser = {} },
      { uri = "sip:example.com", password = "s3cr3t-pw" },
    } do
      cfg.uri = cfg.uri or "sip:alice@example.com"
      cfg.transport = "virtual"
      local ok, err = pcall(sip.UA.new, cfg)
      assert.is_false(ok)
      assert.is_nil(tostring(err):find("s3cr3t", 1, true), "the password leaks: " .. tostring(err))
    end
  end)
end)

describe("hostile caller: binary bodies", function()
  local all = {}
  for i = 0, 255 do all[#all + 1] = string.char(i) end
  local BIN = table.concat(all)

  it("every byte value, twice: initial and modify sent byte-exact with Content-Length", function()
    local ua, net = fresh()
    local ctx = ua:publish(TARGET, "presence", BIN .. BIN, { contentType = "application/octet-stream" })
    local req = net:take()
    assert.are.equal(BIN .. BIN, req.body)
    assert.are.equal("512", req:header("Content-Length"))
    net:reply(req, 200, { ["SIP-ETag"] = "e1", Expires = 60 })
    local body2 = "\0" .. BIN:reverse() .. "\0"
    ctx:publish(body2)
    local m = net:take()
    assert.are.equal(body2, m.body)
    assert.are.equal(tostring(#body2), m:header("Content-Length"))
    assert.are.equal("e1", m:header("SIP-If-Match"))
    assert.are.equal(body2, ctx.body)
  end)

  it("a body of one NUL byte is a body (not a refresh)", function()
    local ua, net = fresh()
    ua:publish(TARGET, "presence", "\0")
    local req = net:take()
    assert.are.equal("\0", req.body)
    assert.are.equal("1", req:header("Content-Length"))
    assert.is_truthy(req:header("Content-Type"))
  end)

  it("the 412 recovery resends the binary body byte-exact", function()
    local ua, net = fresh()
    local ctx = ua:publish(TARGET, "presence", BIN)
    net:reply(net:take(), 200, { ["SIP-ETag"] = "e1", Expires = 60 })
    ctx:publish()
    net:reply(net:take(), 412)
    local again = net:take()
    assert.are.equal(BIN, again.body)
    assert.is_nil(again:header("SIP-If-Match"))
  end)
end)

describe("hostile caller: values libosip2 cannot parse", function()
  -- Regression, found by fuzz/fuzz_pubnew.c (fuzz/regressions/pubnew/unparsable-content-type;
  -- fixed in afad6ee): a content type with no CR/LF/NUL passed the check but libosip2 could
  -- not parse it, and the request went out with its body and WITHOUT Content-Type (api.md:
  -- "Content-Type (with a body)"). Now: refused at the call, naming options.contentType, or
  -- sent as given.
  for _, ct in ipairs { "text plain", "a", "text/", "/plain", "\1" } do
    it("contentType " .. show(ct), function()
      local ua, net = fresh()
      local ok = pcall(ua.publish, ua, TARGET, "presence", "BODY", { contentType = ct })
      if ok then
        local req = net:take()
        assert.are.equal("BODY", req.body)
        assert.are.equal(ct, req:header("Content-Type"), "a body went out without its Content-Type")
      else
        raises_naming("options.contentType", ua.publish, ua, TARGET, "presence", "BODY", { contentType = ct })
        still_usable(ua, net)
      end
    end)
  end
end)

describe("hostile caller: URIs libosip2 parses, but not inside <>", function()
  -- Regression (fuzz/regressions/pubnew/one-char-host): "sip:b" passes osip_uri_parse but
  -- osip_from_parse("<sip:b>") fails, so To/From could not be built and the context reported
  -- a transport error. The URI is now refused at the call, naming the argument.
  for _, t in ipairs { "sip:b", "sip:1", "sip:x" } do
    it("target " .. t, function()
      local ua, net = fresh()
      local ok, ctx = pcall(ua.publish, ua, t, "presence", "B")
      if not ok then
        assert.is_truthy(tostring(ctx):find("target", 1, true), tostring(ctx))
        still_usable(ua, net)
      else
        local rec = testing.record(ctx)
        local sent = net:sent()
        net:advance(0)
        assert.are.equal(1, #sent, "accepted, but nothing was sent; events: " ..
          table.concat((function() local o = {} for i, e in ipairs(rec) do o[i] = e.event .. "(" .. tostring(e.cause) .. ")" end return o end)(), " "))
        assert.are.equal(t, sent[1].uri)
      end
    end)
  end

  it("UA.new uri = \"sip:a\"", function()
    local ok, ua, net = pcall(testing.new_ua, { uri = "sip:a" })
    if not ok then
      assert.is_truthy(tostring(ua):find("uri", 1, true), tostring(ua))
      return
    end
    ua:publish(TARGET, "presence", "B")
    assert.are.equal(1, #net:sent(), "accepted, but no request can be built with From <sip:a>")
  end)
end)
