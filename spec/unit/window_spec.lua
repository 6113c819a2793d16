-- Issue 13 #5: a UA keeps at most 256 transactions in flight; later requests wait their turn
-- and leave, in order, as slots free. ua:close() with many publications, or many publish calls
-- at once, no longer floods the network. Virtual clock.
local testing = require "sip.testing"
local S = require "support.scenario"

local WINDOW = 256

-- Answers every request in `list` with a 200 (a remove: no SIP-ETag), collecting what the
-- answers let out, until nothing more is sent; checks the window on the way. Returns the
-- number of requests seen.
local function drain(net, list)
  local outstanding, seen, branches = #list, #list, {}
  assert.is_true(outstanding <= WINDOW, "sent at once: " .. outstanding)
  while #list > 0 do
    local next_list = {}
    for _, r in ipairs(list) do
      assert.is_nil(branches[r.branch], "a retransmission")
      branches[r.branch] = true
      if r:header("Expires") == "0" then net:reply(r, 200, { Expires = 0 })
      else S.ok(net, r, "e" .. r.cseq .. r.call_id, 3600) end
      outstanding = outstanding - 1
      for _, x in ipairs(net:sent()) do
        next_list[#next_list + 1] = x
        outstanding = outstanding + 1
        seen = seen + 1
        assert.is_true(outstanding <= WINDOW, "in flight: " .. outstanding)
      end
    end
    list = next_list
  end
  return seen
end

describe("issue 13 #5: a window of transactions in flight", function()
  it("1 000 publish calls at once: 256 leave, each answer lets the next one out", function()
    local ua, net = testing.new_ua()
    local published = 0
    for i = 1, 1000 do
      ua:publish("sip:u" .. i .. "@example.com", "presence", "B", { expires = 3600 })
        :on("published", function() published = published + 1 end)
    end
    assert.are.equal(1000, drain(net, net:sent()))
    assert.are.equal(1000, published)
  end)

  it("ua:close() with 1 000 publications: every remove leaves and completes; then the UA closes", function()
    local ua, net = testing.new_ua()
    local ctxs, unpublished = {}, 0
    for i = 1, 1000 do
      ctxs[i] = ua:publish("sip:u" .. i .. "@example.com", "presence", "B", { expires = 3600 })
      ctxs[i]:on("unpublished", function(r) if r and r.status_code == 200 then unpublished = unpublished + 1 end end)
    end
    drain(net, net:sent())
    ua:close()
    local removes = net:sent()
    assert.are.equal(WINDOW, #removes)
    assert.are.equal(1000, drain(net, removes))
    assert.are.equal(1000, unpublished)
    assert.are.equal("closed", ua._core:state())
  end)

  it("a silent server: when the first ones time out, the waiting ones end too, unsent", function()
    local ua, net = testing.new_ua()
    local failed = 0
    for i = 1, 1000 do
      ua:publish("sip:u" .. i .. "@example.com", "presence", "B")
        :on("failed", function(_, cause) if cause == "Request Timeout" then failed = failed + 1 end end)
    end
    assert.are.equal(WINDOW, #net:sent())
    net:advance(31.999)
    net:sent()
    assert.are.equal(0, failed)
    net:advance(0.001)
    assert.are.equal(1000, failed)
    S.quiet(net, 100)
  end)

  it("ua:close() with 1 000 publications and a silent server ends within one Timer F", function()
    local ua, net = testing.new_ua()
    for i = 1, 1000 do ua:publish("sip:u" .. i .. "@example.com", "presence", "B") end
    drain(net, net:sent())
    ua:close()
    assert.are.equal(WINDOW, #net:sent())
    net:advance(32)
    net:sent()
    assert.are.equal("closed", ua._core:state())
  end)

  it("waiting requests start their timers when they leave, not when they were made", function()
    local ua, net = testing.new_ua()
    for i = 1, WINDOW + 1 do ua:publish("sip:u" .. i .. "@example.com", "presence", "B") end
    local first = net:sent()
    assert.are.equal(WINDOW, #first)
    net:advance(20) -- retransmissions of the first ones only
    for _, r in ipairs(net:sent()) do assert.is_truthy(r.uri ~= "sip:u" .. (WINDOW + 1) .. "@example.com") end
    net:reply(first[1], 500) -- a slot frees: the last one leaves now
    local last = net:take()
    assert.are.equal("sip:u" .. (WINDOW + 1) .. "@example.com", last.uri)
    net:advance(12) -- the first ones time out at 32 s; the last one, sent at 20 s, does not
    net:sent()
    net:advance(19.9)
    for _, r in ipairs(net:sent()) do assert.are.equal(last.branch, r.branch) end
    assert.are.equal(0, #net:sent())
  end)
end)
