-- Issue 13, the publication policy (publish.c) on the virtual clock: a stopped publication
-- still removes its state (1), Retry-After cannot make a storm (2), a lost state is reported
-- no later than its expiry (6), a 2xx's SIP-ETag must be a token (7), a 412 recovery survives a
-- passing failure (9).
local S = require "support.scenario"
local testing = require "sip.testing"

local function retry_after(v) return { headers = { { "Retry-After", v } } } end

-- Events of a record as "name(status)" strings, without clearing it.
local function names(rec)
  local out = {}
  for i, e in ipairs(rec) do out[i] = e.event .. "(" .. tostring(e.status) .. ")" end
  return table.concat(out, " ")
end

describe("issue 13 #1: a stopped publication removes its state after a failed refresh", function()
  local STOPS = {
    unpublish = function(t) t.ctx:unpublish() end,
    close = function(t) t.ctx:close() end,
    ["ua:close"] = function(t) t.ua:close() end,
  }
  local FAILURES = { 500, 503, 403, 488, "timeout" }

  for stop_name, stop in pairs(STOPS) do
    for _, failure in ipairs(FAILURES) do
      it(("%s during a refresh that ends with %s: the remove is sent, its outcome reported"):format(
        stop_name, tostring(failure)), function()
        local t = S.published()
        local r = S.fires_at(t.net, 3240)
        stop(t)
        t.net:none() -- the remove waits for the refresh
        if failure == "timeout" then
          t.net:advance(31.999)
          t.net:sent() -- retransmissions of the refresh
          t.net:advance(0.001) -- Timer F
        else
          t.net:reply(r, failure)
        end
        for _, e in ipairs(t.rec) do
          assert.are_not.equal("unpublished", e.event, "unpublished before the remove: " .. names(t.rec))
          assert.are_not.equal("failed", e.event, "failed before the remove: " .. names(t.rec))
        end
        S.clear(t.rec)
        local rm = t.net:take()
        S.remove(rm, "e1")
        S.next_of(rm, r)
        t.net:reply(rm, 200)
        S.events(t.rec, { "unpublished(200,OK)" })
        S.quiet(t.net, 100)
      end)
    end
  end

  it("the remove's own failure is reported (failed, unpublished)", function()
    local t = S.published()
    local r = S.fires_at(t.net, 3240)
    t.ctx:unpublish()
    t.net:reply(r, 500)
    S.clear(t.rec)
    t.net:reply(t.net:take(), 403)
    S.events(t.rec, { "failed(403,Forbidden)", "unpublished(403,Forbidden)" })
  end)

  it("412 to the refresh: the state is known gone, no remove", function()
    local t = S.published()
    local r = S.fires_at(t.net, 3240)
    t.ctx:close()
    t.net:reply(r, 412)
    S.events(t.rec, { "unpublished(412,Conditional Request Failed)" })
    S.quiet(t.net, 100)
  end)

  it("a modify in flight fails with 503 after unpublish(): the remove follows", function()
    local t = S.published()
    t.ctx:publish("B2")
    local m = t.net:take()
    t.ctx:unpublish()
    t.net:reply(m, 503)
    local rm = t.net:take()
    S.remove(rm, "e1")
    t.net:reply(rm, 200)
    assert.are.equal("unpublished", t.rec[#t.rec].event)
    for i = 1, #t.rec - 1 do assert.are.equal("progress", t.rec[i].event, names(t.rec)) end
  end)
end)

describe("issue 13 #2: the back-off floor holds whatever Retry-After says", function()
  it("Retry-After: 0 to every try: no storm, tries spaced by the back-off", function()
    local t = S.published(nil, "e1", 60) -- refresh at 54 s, state until 60 s
    local r = S.fires_at(t.net, 54)
    local sends, last = 1, 54
    for _ = 1, 100 do
      t.net:reply(r, 503, retry_after("0"))
      if t.rec[#t.rec].event ~= "progress" then break end
      S.clear(t.rec)
      local from = t.net:now()
      local list = {}
      while #list == 0 and t.net:now() < from + 10 do
        t.net:advance(0.001)
        list = t.net:sent()
      end
      if #list == 0 then break end
      assert.is_true(t.net:now() - from >= 0.05 - 1e-9, "retried after " .. (t.net:now() - from))
      r = list[1]
      sends = sends + 1
      last = t.net:now()
    end
    assert.is_true(sends <= 8, "tries in the last 6 s of the state: " .. sends)
    assert.is_true(last < 60)
  end)

  it("Retry-After: 0 waits at least the back-off (1 s, then 2 s)", function()
    local t = S.published()
    local r = S.fires_at(t.net, 3240)
    t.net:reply(r, 503, retry_after("0"))
    r = S.fires_at(t.net, 3241)
    S.refresh(r, "e1", 3600)
    t.net:reply(r, 500, retry_after("0"))
    S.refresh(S.fires_at(t.net, 3243), "e1", 3600)
  end)

  for _, v in ipairs { "2147483648", "4294967296", "99999999999", "999999999999999999999 (later)" } do
    it("Retry-After: " .. v .. " is beyond the granted state: gives up at once", function()
      local t = S.published()
      t.net:reply(S.fires_at(t.net, 3240), 503, retry_after(v))
      S.events(t.rec, { "failed(503,Service Unavailable)", "unpublished(503,Service Unavailable)" })
      S.quiet(t.net, 1000)
    end)
  end
end)

-- After the loss is reported the request in flight goes on until its Timer F: its
-- retransmissions (one branch), then nothing.
local function only_retransmissions(net, req, seconds)
  net:advance(seconds)
  for _, x in ipairs(net:sent()) do assert.are.equal(req.branch, x.branch, "only retransmissions") end
  S.quiet(net, 100)
end

describe("issue 13 #6: a lost state is reported no later than its expiry", function()
  for _, expires in ipairs { 60, 3600 } do
    it(("grant %d s, the server stops answering: failed at the expiry, retransmitting until then"):format(expires), function()
      local t = S.published(nil, "e1", expires)
      local refresh_at = expires * 0.9
      local r = S.fires_at(t.net, refresh_at)
      local sent = 0
      local step = 0.5
      while t.net:now() + step < expires do
        t.net:advance(step)
        for _, x in ipairs(t.net:sent()) do
          if x.branch ~= r.branch then r = x end -- a retry after Timer F
          sent = sent + 1
        end
        for _, e in ipairs(t.rec) do
          assert.are_not.equal("failed", e.event, ("failed at %g s, before the expiry"):format(t.net:now()))
        end
      end
      assert.is_true(sent > 0, "kept trying")
      t.net:advance(expires - t.net:now())
      local ev = {}
      for _, e in ipairs(t.rec) do if e.event ~= "progress" then ev[#ev + 1] = e.event .. "(" .. tostring(e.cause) .. ")" end end
      assert.are.same({ "failed(Request Timeout)", "unpublished(Request Timeout)" }, ev)
      S.clear(t.rec)
      only_retransmissions(t.net, r, 32)
      assert.are.same({}, t.rec, "nothing reported twice")
    end)
  end

  it("a 2xx that comes after the expiry brings the publication back", function()
    local t = S.published(nil, "e1", 60)
    local r = S.fires_at(t.net, 54)
    t.net:advance(6)
    t.net:sent()
    S.events(t.rec, { "failed(nil,Request Timeout)", "unpublished(nil,Request Timeout)" })
    assert.is_nil(t.ctx.etag)
    S.ok(t.net, r, "e2", 60) -- the server took the refresh in time, answered late
    S.events(t.rec, { "published(200,OK)" })
    assert.are.equal("e2", t.ctx.etag)
    S.refresh(S.fires_at(t.net, 54 + 54), "e2", 3600)
  end)

  it("a stopped publication whose state expired sends no remove", function()
    local t = S.published(nil, "e1", 60)
    local r = S.fires_at(t.net, 54)
    t.ctx:unpublish()
    t.net:advance(6)
    t.net:sent()
    S.events(t.rec, { "failed(nil,Request Timeout)", "unpublished(nil,Request Timeout)" })
    only_retransmissions(t.net, r, 30) -- the refresh's Timer F at 86 s ends it quietly
    assert.are.same({}, t.rec)
  end)
end)

describe("issue 13 #7: a 2xx's SIP-ETag must be a token", function()
  for _, bad in ipairs { "a b", "e1,e2", '"quoted"', "a;b", "a@b", "a/b" } do
    it(("SIP-ETag %q to an initial: failed(200,Protocol Error)"):format(bad), function()
      local t = S.start()
      t.net:reply(t.req, 200, { headers = { { "SIP-ETag", bad }, { "Expires", 3600 } } })
      S.events(t.rec, { "failed(200,Protocol Error)", "unpublished(200,Protocol Error)" })
      assert.is_nil(t.ctx.etag)
      S.quiet(t.net, 4000)
    end)
  end

  it("to a refresh: the entity-tag is not taken (as for a missing one)", function()
    local t = S.published()
    local r = S.fires_at(t.net, 3240)
    t.net:reply(r, 200, { headers = { { "SIP-ETag", "x y" }, { "Expires", 3600 } } })
    assert.are.equal("e1", t.ctx.etag)
    S.refresh(S.fires_at(t.net, 3240 + 3240), "e1", 3600)
  end)

  it("every token character is accepted", function()
    local t = S.start()
    local tag = "aZ09-.!%*_+`'~"
    S.ok(t.net, t.req, tag, 3600)
    S.events(t.rec, { "published(200,OK)" })
    assert.are.equal(tag, t.ctx.etag)
  end)
end)

describe("issue 13 #9: a 412 recovery survives a passing failure", function()
  local function recovering()
    local t = S.published()
    t.net:reply(S.fires_at(t.net, 3240), 412)
    S.events(t.rec, { "progress(412,Conditional Request Failed)" })
    local init = t.net:take()
    S.initial(init, "B1", 3600)
    return t, init
  end

  it("503, 500, then a timeout: retried after 1, 2, 4 s, then published", function()
    local t, init = recovering()
    t.net:reply(init, 503)
    S.events(t.rec, { "progress(503,Service Unavailable)" })
    init = S.fires_at(t.net, 3241)
    S.initial(init, "B1", 3600)
    t.net:reply(init, 500)
    S.events(t.rec, { "progress(500,Server Internal Error)" })
    init = S.fires_at(t.net, 3243)
    t.net:advance(32) -- no answer: Timer F
    t.net:sent()
    S.events(t.rec, { "progress(nil,Request Timeout)" })
    init = S.fires_at(t.net, 3243 + 32 + 4)
    S.initial(init, "B1", 3600)
    S.ok(t.net, init, "e2", 3600)
    S.events(t.rec, { "published(200,OK)" })
    assert.are.equal("e2", t.ctx.etag)
  end)

  it("the newest body is the one recovered", function()
    local t, init = recovering()
    t.net:reply(init, 503)
    t.ctx:publish("B2")
    local m = t.net:take()
    S.initial(m, "B2", 3600)
    S.ok(t.net, m, "e3", 3600)
    assert.are.equal("published", t.rec[#t.rec].event)
    S.quiet(t.net, 100)
  end)

  it("unpublish() while waiting: no request, the recovery stops", function()
    local t, init = recovering()
    t.net:reply(init, 503)
    S.clear(t.rec)
    t.ctx:unpublish()
    S.quiet(t.net, 100)
  end)

  it("a permanent failure (403) still ends it", function()
    local t, init = recovering()
    t.net:reply(init, 403)
    S.events(t.rec, { "failed(403,Forbidden)", "unpublished(403,Forbidden)" })
    S.quiet(t.net, 100)
  end)

  it("gives up after one requested interval without success", function()
    local t, init = recovering()
    local last = init
    for _ = 1, 400 do
      t.net:reply(last, 503)
      if t.rec[#t.rec].event ~= "progress" then break end
      t.net:advance(40)
      local l = t.net:sent()
      if #l == 0 then break end
      last = l[1]
    end
    assert.are.equal("unpublished", t.rec[#t.rec].event)
    assert.are.equal("failed", t.rec[#t.rec - 1].event)
    assert.is_true(t.net:now() <= 3240 + 3600 + 1, "gave up at " .. t.net:now())
    S.quiet(t.net, 100)
  end)
end)
