-- A driver written in Lua (csrc/lua/ldrv_lua.c): the contract other hosts (OpenResty) build
-- on. send() gets every request with its next hop and transport; now() is asked before each
-- call into the core; sync() hears of the next deadline; defer() asks for a drain; event(),
-- when present, receives the events instead of the handlers being called by the binding.
local core = require "sip.core"
local testing = require "sip.testing"
require "sip" -- installs the dispatch (response objects, handler lists)

local function new_ua(driver)
  local ua = core.ua_new { aor = "sip:alice@example.com", proxy_host = "127.0.0.1", proxy_port = 5060,
                           driver = driver, seed = 7 }
  return ua
end

local function driver(fields)
  local d = { sent = {}, syncs = {}, defers = 0, events = {}, clock = 1000 }
  function d:send(data, host, port, transport)
    self.sent[#self.sent + 1] = { data = data, host = host, port = port, transport = transport }
    return true
  end
  for k, v in pairs(fields or {}) do d[k] = v end
  return d
end

-- A context whose publication is made and sends its initial PUBLISH ("open") at once, as
-- ua:publish does (the binding's one call: ua:pub_new).
local function context(ua, target)
  local ctx = setmetatable({}, { __index = require "sip.emitter" })
  ua:pub_new(ctx, target or "sip:alice@example.com", "presence", "text/plain", 60, nil, true, nil, "open")
  return ctx
end

describe("a Lua driver", function()
  it("gets each request with its next hop and transport", function()
    local d = driver()
    local ua = new_ua(d)
    context(ua)
    assert.are.equal(1, #d.sent)
    assert.are.equal("127.0.0.1", d.sent[1].host)
    assert.are.equal(5060, d.sent[1].port)
    assert.are.equal("udp", d.sent[1].transport)
    assert.matches("^PUBLISH sip:alice@example.com SIP/2.0\r\n", d.sent[1].data)
  end)

  it("a refusal fails the request at once (Connection Error)", function()
    local d = driver { send = function() return false end }
    local ua = new_ua(d)
    local ctx = context(ua)
    local got
    ctx._on_failed = function(_, cause) got = cause end
    ua:_drain()
    assert.are.equal("Connection Error", got)
  end)

  it("now() sets the core's clock before each call; sync() hears the next deadline", function()
    local d = driver()
    function d:now() return self.clock end
    function d:sync(at) self.syncs[#self.syncs + 1] = at or false end
    local ua = new_ua(d)
    d.clock = 5000
    context(ua)
    assert.are.equal(5000, ua:_now())
    assert.are.equal(5500, d.syncs[#d.syncs]) -- Timer E: T1 after the send
    assert.are.equal(5500, ua:_deadline())
  end)

  it("defer() is asked when a user call leaves events; event() receives them", function()
    local d = driver { send = function() return false end }
    function d:defer() self.defers = self.defers + 1 end
    function d:event(ctx, name, response, cause) self.events[#self.events + 1] = { ctx, name, cause } end
    local ua = new_ua(d)
    local ctx = context(ua)
    local called = false
    ctx._on_failed = function() called = true end
    assert.are.equal(1, d.defers)
    ua:_drain()
    assert.is_false(called) -- the driver runs the handlers, not the binding
    assert.are.equal(2, #d.events)
    assert.are.equal(ctx, d.events[1][1])
    assert.are.equal("failed", d.events[1][2])
    assert.are.equal("Connection Error", d.events[1][3])
    assert.are.equal("unpublished", d.events[2][2])
  end)

  it("_receive and _tick feed responses and time; the events reach event()", function()
    local d = driver()
    function d:event(ctx, name, response, cause)
      self.events[#self.events + 1] = { name, response and response.status_code, cause }
    end
    local ua = new_ua(d)
    context(ua)
    local req = testing.parse(d.sent[1].data)
    ua:_receive(testing.response_for(req, 200, { ["SIP-ETag"] = "e1", Expires = 60 }))
    assert.same({ "published", 200, "OK" }, d.events[1])
    ua:_tick(1000 + 54000) -- 0.9 x 60 s
    assert.are.equal(2, #d.sent)
    assert.matches("SIP%-If%-Match: e1", d.sent[2].data)
  end)

  it("an error in the driver's send is reported and counts as a refusal", function()
    local d = driver { send = function() error("boom") end }
    local ua = new_ua(d)
    local reported
    local sip = require "sip"
    sip.on_error = function(msg) reported = msg end
    local ctx = context(ua)
    local got
    ctx._on_failed = function(_, cause) got = cause end
    ua:_drain()
    sip.on_error = nil
    assert.matches("boom", reported)
    assert.are.equal("Connection Error", got)
  end)
  it("is called on the thread that calls into the core, never on the main thread meanwhile", function()
    -- (in nginx the main thread carries a stale request context: host APIs called there crash)
    local d = driver()
    local seen = {}
    local function record(what) seen[#seen + 1] = { what, coroutine.running() } end
    function d:send(data) record("send"); self.sent[#self.sent + 1] = { data = data }; return true end
    function d:sync() record("sync") end
    function d:defer() record("defer") end
    function d:event() record("event") end
    local ua = new_ua(d)
    local co = coroutine.create(function()
      context(ua) -- makes the publication and sends its PUBLISH
      ua:_drain()
      local req = testing.parse(d.sent[1].data)
      ua:_receive(testing.response_for(req, 200, { ["SIP-ETag"] = "e1", Expires = 60 }))
    end)
    assert(coroutine.resume(co))
    assert.is_true(#seen >= 4)
    for _, s in ipairs(seen) do assert.are.equal(co, s[2], s[1] .. " ran on another thread") end
  end)
end)

describe("a flow failure's detail", function()
  it("reaches the handlers as a third argument, after (response, cause)", function()
    local sip = require "sip"
    local ua, net = testing.new_ua()
    local ctx = ua:publish("sip:alice@example.com", "presence", "open")
    local got = {}
    ctx:on("failed", function(r, cause, detail) got = { r, cause, detail } end)
    net:take()
    ua._core:_flow_failed("127.0.0.1", 5060, "udp", "127.0.0.1:5060 port unreachable")
    assert.is_nil(got[1])
    assert.are.equal(sip.C.causes.CONNECTION_ERROR, got[2])
    assert.are.equal("127.0.0.1:5060 port unreachable", got[3])
  end)

  it("is nil for an ordinary response", function()
    local ua, net = testing.new_ua()
    local ctx = ua:publish("sip:alice@example.com", "presence", "open")
    local n, third = 0, "unset"
    ctx:on("published", function(...) n = select("#", ...); third = select(3, ...) end)
    net:reply(net:take(), 200, { ["SIP-ETag"] = "e1", Expires = 60 })
    assert.is_nil(third)
  end)
end)
