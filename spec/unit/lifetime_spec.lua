-- Lifetime of publications and user agents: nothing with work in flight is collected,
-- closed and idle objects are, and collecting never sends anything.
local sip = require "sip"

local function new_ua()
  return sip.UA.new { uri = "sip:alice@example.com", outbound_proxy = "sip:127.0.0.1:5060",
                      transport = "virtual" }
end

local function header(data, name)
  return data:match("\r\n" .. name .. ":%s*([^\r]*)")
end

local function reply(ua, data, code, extra)
  local msg = ("SIP/2.0 %d Whatever\r\nVia: %s\r\nFrom: %s\r\nTo: %s;tag=x\r\nCall-ID: %s\r\n" ..
               "CSeq: %s\r\n%sContent-Length: 0\r\n\r\n"):format(code, header(data, "Via"),
    header(data, "From"), header(data, "To"), header(data, "Call%-ID"), header(data, "CSeq"), extra or "")
  ua._net:receive(msg)
end

local function one_sent(ua)
  local sent = ua._net:take()
  assert.are.equal(1, #sent)
  return sent[1].data
end

local function full_gc()
  for _ = 1, 3 do collectgarbage("collect") end
end

describe("lifetime", function()
  it("keeps a publication nobody references alive while it has work in flight", function()
    local ua, events = new_ua(), {}
    do
      local pub = ua:publish("sip:alice@example.com", "presence", "B1")
      pub:on("published", function(r, c) events[#events + 1] = c end)
    end
    local req = one_sent(ua)
    full_gc()
    reply(ua, req, 200, "SIP-ETag: e1\r\nExpires: 60\r\n")
    assert.are.same({ "OK" }, events)
    -- and it keeps refreshing
    ua._net:advance(54000)
    assert.are.equal("e1", header(one_sent(ua), "SIP%-If%-Match"))
  end)

  it("delivers the remove's response to a closed context nobody references", function()
    local ua, events = new_ua(), {}
    do
      local pub = ua:publish("sip:alice@example.com", "presence", "B1")
      pub:on("unpublished", function(r, c) events[#events + 1] = r.status_code end)
      reply(ua, one_sent(ua), 200, "SIP-ETag: e1\r\nExpires: 60\r\n")
      pub:close()
    end
    local remove = one_sent(ua)
    assert.are.equal("0", header(remove, "Expires"))
    full_gc()
    reply(ua, remove, 200)
    assert.are.same({ 200 }, events)
  end)

  it("lets a closed, idle context be collected", function()
    local ua = new_ua()
    local weak = setmetatable({}, { __mode = "v" })
    do
      local pub = ua:publish("sip:alice@example.com", "presence", "B1")
      reply(ua, one_sent(ua), 200, "SIP-ETag: e1\r\nExpires: 60\r\n")
      pub:close()
      reply(ua, one_sent(ua), 200)
      weak[1] = pub
    end
    full_gc()
    assert.is_nil(weak[1])
  end)

  it("keeps an open user agent alive and lets a closed one go", function()
    local weak = setmetatable({}, { __mode = "v" })
    do weak[1] = new_ua()._core end
    full_gc()
    assert.is_not_nil(weak[1]) -- open: anchored
    weak[1]:close()
    full_gc()
    assert.is_nil(weak[1])
  end)

  it("collects a closed user agent whose publications were removed", function()
    local weak = setmetatable({}, { __mode = "v" })
    do
      local ua = new_ua()
      local pub = ua:publish("sip:alice@example.com", "presence", "B1")
      reply(ua, one_sent(ua), 200, "SIP-ETag: e1\r\nExpires: 60\r\n")
      ua:close()
      reply(ua, one_sent(ua), 200)
      weak[1], weak[2] = ua._core, pub
    end
    full_gc()
    assert.is_nil(weak[1])
    assert.is_nil(weak[2])
  end)

  it("lets a handler close its own publication", function()
    local ua, events = new_ua(), {}
    local pub = ua:publish("sip:alice@example.com", "presence", "B1")
    pub:on("published", function() pub:close() end)
    pub:on("unpublished", function(r, c) events[#events + 1] = c end)
    reply(ua, one_sent(ua), 200, "SIP-ETag: e1\r\nExpires: 60\r\n")
    local remove = one_sent(ua)
    assert.are.equal("e1", header(remove, "SIP%-If%-Match"))
    reply(ua, remove, 200)
    assert.are.same({ "OK" }, events)
    assert.are.equal("closed", pub.state)
  end)

  it("ua:close() from a handler unpublishes the others and completes", function()
    local ua = new_ua()
    local a = ua:publish("sip:alice@example.com", "presence", "A")
    local b = ua:publish("sip:bob@example.com", "presence", "B")
    local sent = ua._net:take()
    reply(ua, sent[2].data, 200, "SIP-ETag: eb\r\nExpires: 60\r\n")
    a:on("published", function() ua:close() end)
    reply(ua, sent[1].data, 200, "SIP-ETag: ea\r\nExpires: 60\r\n")
    local removes = ua._net:take()
    assert.are.equal(2, #removes)
    for _, r in ipairs(removes) do reply(ua, r.data, 200) end
    assert.are.equal("closed", (ua._core:state()))
    assert.are.equal("closed", b.state)
  end)
end)

describe("garbage collector mode", function()
  -- Lua 5.4 only: LuaJIT and 5.1 have one (incremental) collector.
  local lua54 = _VERSION == "Lua 5.4"
  local saved
  before_each(function() if lua54 then saved = collectgarbage("incremental") end end)
  after_each(function()
    sip.incremental_gc = true
    if lua54 then collectgarbage(saved) end
  end)

  it("sip.run() makes a generational collector incremental (no whole-heap pauses)", function()
    if not lua54 then return end
    collectgarbage("generational")
    sip.run("nowait")
    assert.are.equal("incremental", collectgarbage("incremental"))
  end)

  it("leaves the collector alone with sip.incremental_gc = false", function()
    if not lua54 then return end
    collectgarbage("generational")
    sip.incremental_gc = false
    sip.run("nowait")
    assert.are.equal("generational", collectgarbage("incremental"))
  end)
end)
