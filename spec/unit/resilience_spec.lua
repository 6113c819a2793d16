-- Keeping a publication alive through passing failures (retry with back-off while the
-- granted state lasts, Retry-After) and resuming it after a restart from a persisted
-- entity-tag. Virtual clock.
local S = require "support.scenario"
local testing = require "sip.testing"

local function retry_after(v) return { headers = { { "Retry-After", v } } } end

describe("retry after a passing failure", function()
  it("backs off 1, 2, 4 ... 32 s, then fits the last tries into what is left, then gives up", function()
    local t = S.published() -- refresh at 3240 s, state valid until 3600 s
    local r = S.fires_at(t.net, 3240)
    local at, delay, tries = 3240, 1, 0
    while at + delay < 3600 do -- whole back-offs while they fit
      t.net:reply(r, 503)
      S.events(t.rec, { "progress(503,Service Unavailable)" })
      at = at + delay
      r = S.fires_at(t.net, at)
      S.refresh(r, "e1", 3600)
      tries = tries + 1
      delay = math.min(delay * 2, 32)
    end
    assert.are.equal(15, tries) -- 1+2+4+8+16 = 31 s, then 32 s × 10 = 351 s
    -- then half of what is left each time, while that is at least 50 ms
    local halves = 0
    while true do
      t.net:reply(r, 503)
      if t.rec[#t.rec].event ~= "progress" then break end
      S.clear(t.rec)
      local left_ms = math.floor((3600 - t.net:now()) * 1000 + 0.5) -- the core counts in ms
      r = S.fires_at(t.net, t.net:now() + math.floor(left_ms / 2) / 1000)
      halves = halves + 1
    end
    assert.is_true(halves >= 5, halves)
    assert.is_true(t.net:now() < 3600)
    S.events(t.rec, { "failed(503,Service Unavailable)", "unpublished(503,Service Unavailable)" })
    S.quiet(t.net, 10000)
  end)

  it("counts the granted interval from the request, not from a slow answer", function()
    local t = S.start()
    t.net:advance(3)
    for _, x in ipairs(t.net:sent()) do S.retransmission(x, t.req) end
    S.ok(t.net, t.req, "e1", 60) -- answered 3 s after it was sent
    S.refresh(S.fires_at(t.net, 54), "e1", 3600) -- 0.9 × 60 s from the send, not 57 s
  end)

  it("a success resets the back-off", function()
    local t = S.published()
    local r = S.fires_at(t.net, 3240)
    t.net:reply(r, 500)
    r = S.fires_at(t.net, 3241)
    t.net:reply(r, 500)
    r = S.fires_at(t.net, 3243)
    S.ok(t.net, r, "e2", 3600)
    S.events(t.rec, { "progress(500,Server Internal Error)", "progress(500,Server Internal Error)",
                      "published(200,OK)" })
    r = S.fires_at(t.net, 3243 + 3240)
    t.net:reply(r, 500)
    S.refresh(S.fires_at(t.net, 3243 + 3240 + 1), "e2", 3600) -- 1 s again, not 4 s
  end)

  it("honours Retry-After, and gives up at once when it asks for longer than the state lasts", function()
    local t = S.published()
    local r = S.fires_at(t.net, 3240)
    t.net:reply(r, 503, retry_after("20 (maintenance)"))
    S.events(t.rec, { "progress(503,Service Unavailable)" })
    r = S.fires_at(t.net, 3260)
    S.refresh(r, "e1", 3600)
    t.net:reply(r, 503, retry_after("600"))
    S.events(t.rec, { "failed(503,Service Unavailable)", "unpublished(503,Service Unavailable)" })
    S.quiet(t.net, 10000)
  end)

  it("480 and 504 are passing too; 403 and 404 end the publication at once", function()
    for _, code in ipairs { 480, 504 } do
      local t = S.published()
      t.net:reply(S.fires_at(t.net, 3240), code)
      assert.are.equal("progress", t.rec[1].event)
      S.refresh(S.fires_at(t.net, 3241), "e1", 3600)
    end
    for _, code in ipairs { 403, 404 } do
      local t = S.published()
      t.net:reply(S.fires_at(t.net, 3240), code)
      assert.are.same({ "failed", "unpublished" }, { t.rec[1].event, t.rec[2].event })
      S.quiet(t.net, 10000)
    end
  end)

  it("an initial or a remove is not retried", function()
    local t = S.start()
    t.net:reply(t.req, 503)
    S.events(t.rec, { "failed(503,Service Unavailable)", "unpublished(503,Service Unavailable)" })
    S.quiet(t.net, 100)

    t = S.published()
    t.ctx:unpublish()
    t.net:reply(t.net:take(), 503)
    S.events(t.rec, { "failed(503,Service Unavailable)", "unpublished(503,Service Unavailable)" })
    S.quiet(t.net, 100)
  end)

  it("a publish(body) while waiting to retry is sent at once, and the retry is dropped", function()
    local t = S.published()
    t.net:reply(S.fires_at(t.net, 3240), 500)
    t.net:advance(0.5)
    t.ctx:publish("B2")
    local m = t.net:take()
    S.modify(m, "e1", "B2", 3600)
    S.ok(t.net, m, "e2", 3600)
    S.events(t.rec, { "progress(500,Server Internal Error)", "published(200,OK)" })
    S.quiet(t.net, 100)
  end)

  it("unpublish() or close() while waiting to retry removes at once", function()
    local t = S.published()
    t.net:reply(S.fires_at(t.net, 3240), 500)
    t.ctx:close()
    local rm = t.net:take()
    S.remove(rm, "e1")
    t.net:reply(rm, 200)
    S.events(t.rec, { "progress(500,Server Internal Error)", "unpublished(200,OK)" })
    S.quiet(t.net, 100)
  end)
end)

describe("resuming from a persisted entity-tag", function()
  local function resume(etag, body)
    local ua, net = testing.new_ua()
    local ctx = ua:publish(S.TARGET, "presence", body or "B1",
                           { contentType = S.CTYPE, etag = etag })
    return ua, net, ctx, testing.record(ctx)
  end

  it("starts with a refresh of the known entity-tag, not a second initial", function()
    local _, net, ctx, rec = resume("e7")
    local r = net:take()
    S.refresh(r, "e7", 3600)
    assert.is_nil(r.body)
    assert.are.equal("e7", ctx.etag)
    S.ok(net, r, "e8", 3600)
    assert.are.equal("published", rec[1].event)
    assert.are.equal("e8", ctx.etag)
    ctx:publish("B2") -- the state is kept: a modify
    S.modify(net:take(), "e8", "B2", 3600)
  end)

  it("falls back to an initial PUBLISH with the body on 412", function()
    local _, net, ctx, rec = resume("gone", "B9")
    local r = net:take()
    net:reply(r, 412)
    S.events(rec, { "progress(412,Conditional Request Failed)" })
    local init = net:take()
    S.initial(init, "B9", 3600)
    S.ok(net, init, "e1", 3600)
    S.events(rec, { "published(200,OK)" })
    assert.are.equal("e1", ctx.etag)
  end)

  it("refuses a malformed entity-tag", function()
    local ua, net = testing.new_ua()
    for _, bad in ipairs { 5, "", "a\r\nb", "a b", "a,b" } do
      local ok, err = pcall(ua.publish, ua, S.TARGET, "presence", "B1", { etag = bad })
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("etag", 1, true), tostring(err))
    end
    net:none()
  end)
end)
