-- sip.openresty outside nginx: its options, the send queue and the entity-tag store's rules,
-- against a stand-in `ngx` (timers recorded, never run). The driver on nginx's loop itself is
-- spec/integration/openresty_spec.lua.
local sip = require "sip"

local function fake_dict()
  local t = {}
  return {
    data = t,
    get = function(_, k) return t[k] end,
    set = function(_, k, v) t[k] = v; return true end,
    delete = function(_, k) t[k] = nil end,
  }
end

local function with_ngx(fn)
  local timers, posts = {}, { n = 0 }
  local saved_ngx = _G.ngx
  _G.ngx = {
    WARN = 5, ERR = 4, shared = { etags = fake_dict() },
    log = function() end,
    now = function() return 1000 end,
    worker = { exiting = function() return false end },
    timer = { at = function(delay, f, ...) timers[#timers + 1] = { delay, f, ... }; return true end },
  }
  package.preload["ngx.semaphore"] = function()
    return { new = function() return { post = function() posts.n = posts.n + 1 end, wait = function() end } end }
  end
  package.loaded["sip.openresty"] = nil
  local ok, err = pcall(fn, require "sip.openresty", timers, posts)
  _G.ngx = saved_ngx
  package.loaded["sip.openresty"], package.loaded["ngx.semaphore"], package.preload["ngx.semaphore"] = nil, nil, nil
  if not ok then error(err, 0) end
end

describe("sip.openresty (stand-in ngx)", function()
  it("says where it runs when loaded outside nginx", function()
    package.loaded["sip.openresty"] = nil
    assert.has_error(function() require "sip.openresty" end,
      "sip.openresty runs inside nginx (OpenResty or lua-nginx-module): no ngx here")
    package.loaded["sip.openresty"] = nil
  end)

  it("checks its options", function()
    with_ngx(function(openresty)
      assert.has_error(function() openresty.driver { on_exit = "x" } end,
        "bad argument to 'openresty.driver' (on_exit: expected 'unpublish' or 'handover', got \"x\")")
      assert.has_error(function() openresty.driver { etags = "nope" } end,
        "bad argument to 'openresty.driver' (etags: no lua_shared_dict \"nope\" in nginx.conf)")
      assert.has_error(function() openresty.driver { on_exit = "handover" } end,
        "bad argument to 'openresty.driver' (etags: on_exit = 'handover' needs an etag store)")
      assert.has_error(function() openresty.driver { exit_timeout = -1 } end)
      assert.has_error(function() openresty.driver { bogus = 1 } end)
    end)
  end)

  it("starts one pump timer, queues sends for it, and serves one UA", function()
    with_ngx(function(openresty, timers, posts)
      local d = openresty.driver()
      assert.are.equal(1, #timers)
      assert.are.equal(0, timers[1][1])
      local ua = sip.UA.new { uri = "sip:alice@example.com", outbound_proxy = "sip:127.0.0.1:5099", driver = d }
      ua:publish("sip:alice@example.com", "presence", "open")
      assert.are.equal(3, #d.out) -- data, host, port: the pump sends it
      assert.are.equal("127.0.0.1", d.out[2])
      assert.are.equal(5099, d.out[3])
      assert.are.equal(1, posts.n) -- one wake-up outstanding, however many sends
      ua:publish("sip:bob@example.com", "presence", "open")
      assert.are.equal(1, posts.n)
      assert.is_false(d:send("x", "127.0.0.1", 5099, "tcp")) -- UDP only for now
      assert.has_error(function() d:attach(ua._core, ua) end,
        "sip.openresty: a driver serves one user agent; make one per UA")
    end)
  end)

  it("keeps each publication's latest etag in the store, and deletes only its own", function()
    with_ngx(function(openresty)
      local store = ngx.shared.etags
      local d = openresty.driver { etags = "etags", on_exit = "handover" }
      local ctx = { target = "sip:alice@example.com", event = "presence", etag = "e1", options = { expires = 60 } }
      d:event(ctx, "published", {}, "OK")
      assert.are.equal("e1", store.data["sip:alice@example.com presence"])
      assert.are.equal("e1", d:stored_etag("sip:alice@example.com", "presence"))
      -- another worker took the key over (a reload): this publication's removal keeps its tag
      store.data["sip:alice@example.com presence"] = "e9"
      d:event(ctx, "unpublished", {}, "OK")
      assert.are.equal("e9", store.data["sip:alice@example.com presence"])
      ctx.etag = "e2"
      d:event(ctx, "published", {}, "OK")
      d:event(ctx, "unpublished", {}, "OK")
      assert.is_nil(store.data["sip:alice@example.com presence"])
      assert.are.equal(16, #d.events) -- four events, delivered later by the runner
    end)
  end)

  it("publish() resumes with the stored etag", function()
    with_ngx(function(openresty)
      ngx.shared.etags.data["sip:alice@example.com presence"] = "e7"
      local d = openresty.driver { etags = "etags" }
      local ua = sip.UA.new { uri = "sip:alice@example.com", outbound_proxy = "sip:127.0.0.1:5099", driver = d }
      local opts = { expires = 60 }
      openresty.publish(ua, "sip:alice@example.com", "presence", "open", opts)
      assert.is_nil(opts.etag) -- the caller's table is not changed
      assert.matches("SIP%-If%-Match: e7\r\n", d.out[1])
      openresty.publish(ua, "sip:bob@example.com", "presence", "open", opts)
      assert.not_matches("SIP%-If%-Match", d.out[4])
    end)
  end)
end)
