-- Model-based testing of publish contexts: a seeded generator of user calls, server responses
-- and clock jumps run against sip.testing, with a small model checking invariants after
-- every step (see spec/model_spec.lua for the list).
--
--   local model = require "support.model"
--   local ok, report, stats = model.run{ seed = 1, steps = 20000 }
--
-- The model knows of each context: its Call-ID, its last CSeq, the transaction in flight
-- (branch, raw request, send time, Timer F), what is queued behind it, the newest entity-tag
-- a 2xx gave it (forgotten on failed/unpublished/progress(412)), until when the granted state
-- lasts, the retry back-off, when its refresh or retry is due, and whether it is closed.
-- Clock jumps are cut at every instant where the library may send a new request (Timer F,
-- a refresh due) and 1 ms before it, so that every request is seen at the instant it left.
-- Plain Lua 5.1 (runs under LuaJIT too), no globals.
local testing = require "sip.testing"
local sip = require "sip"

local M = {}

local T_F = 32000 -- Timer F, ms (64 × T1)

---------------------------------------------------------------------- random numbers --

-- Park–Miller minimal standard generator: exact in doubles and in integers alike, so a seed
-- gives the same run under Lua 5.4 and LuaJIT.
local function new_rng(seed)
  local x = seed % 2147483646 + 1
  local r = {}
  function r.next() x = (x * 16807) % 2147483647; return x end
  function r.int(n) return r.next() % n + 1 end -- 1..n
  function r.range(a, b) return a + r.next() % (b - a + 1) end
  function r.pick(t) return t[r.next() % #t + 1] end
  function r.chance(p) return r.next() < p * 2147483647 end
  -- weighted choice over { {weight, value}, ... }
  function r.weighted(list)
    local total = 0
    for _, w in ipairs(list) do total = total + w[1] end
    local k = r.next() % total
    for _, w in ipairs(list) do
      if k < w[1] then return w[2] end
      k = k - w[1]
    end
    return list[#list][2]
  end
  return r
end

-- Expires as the core reads it (msg_parse_seconds): digits with optional blanks, ≤ 2^31-1.
local function parse_seconds(s)
  if type(s) ~= "string" then return nil end
  local d = s:match("^[ \t]*(%d+)[ \t]*$")
  if not d or #d > 10 then return nil end
  local v = tonumber(d)
  if v > 2147483647 then return nil end
  return v
end

-- Retry-After as the core reads it: leading blanks, then at most 15 digits (anything may
-- follow), saturated at 2^31-1 ("much later", issue 13 #2); nil otherwise.
local function parse_retry_after(s)
  if type(s) ~= "string" then return nil end
  local d = s:match("^[ \t]*(%d+)")
  if not d then return nil end
  d = d:sub(1, 15)
  return math.min(tonumber(d), 2147483647)
end

-- Timer E instants after a first transmission at 0 in Trying (0.5, 1.5, 3.5, 7.5, 11.5 … s):
-- Proceeding spaces them by T2, never closer, so this bounds the transmissions of any state.
local function timer_e_count(elapsed)
  local n, at, iv = 0, 500, 500
  while at <= elapsed do
    n = n + 1
    iv = math.min(iv * 2, 4000)
    at = at + iv
  end
  return n
end

local TRANSIENT = { [408] = true, [480] = true, [500] = true, [503] = true, [504] = true }

---------------------------------------------------------------------------- the run --

local Run = {}
Run.__index = Run

function Run:log(fmt, ...)
  local line = string.format("[%d t=%.3f] ", self.step, self.now / 1000) .. string.format(fmt, ...)
  self.trace[self.trace_i] = line
  self.trace_i = self.trace_i % 120 + 1
  self.trace_n = self.trace_n + 1
end

function Run:tail()
  local out = {}
  for k = math.min(self.trace_n, 120), 1, -1 do
    out[#out + 1] = "  " .. self.trace[(self.trace_i - k - 1) % 120 + 1]
  end
  return table.concat(out, "\n")
end

-- A violated invariant ends the run (the model may be off after it).
function Run:violation(fmt, ...)
  local msg = string.format(fmt, ...)
  self:log("VIOLATION: %s", msg)
  error({ violation = msg }, 0)
end

function Run:check(cond, fmt, ...)
  if not cond then self:violation(fmt, ...) end
end

local function short(req)
  local kind
  if req:header("Expires") == "0" then kind = "remove"
  elseif not req.body then kind = "refresh"
  elseif req:header("SIP-If-Match") then kind = "modify"
  else kind = "initial" end
  return string.format("%s cseq=%s exp=%s if-match=%s branch=…%s body=%s", kind, tostring(req.cseq),
    tostring(req:header("Expires")), tostring(req:header("SIP-If-Match")),
    tostring(req.branch):sub(-6), req.body and ("%q"):format(req.body:sub(1, 12)) or "none")
end

---------------------------------------------------------------------- observation --

-- Events recorded by the handlers since the last call, checked and applied to the model.
function Run:process_events()
  local evs = self.pending_events
  if #evs == 0 then return end
  self.pending_events = {}
  for i, e in ipairs(evs) do
    local c = e.c
    if self.ua_done then self:violation("ctx%d: event %s after the UA closed", c.id, e.event) end
    self:log("event ctx%d %s(%s,%s)%s", c.id, e.event, tostring(e.status), tostring(e.cause),
             e.etag and (" etag=" .. e.etag) or "")
    self.stats.events = self.stats.events + 1
    local key = e.event .. "(" .. tostring(e.status) .. ")"
    self.stats.kinds[key] = (self.stats.kinds[key] or 0) + 1
    if e.event == "failed" then
      local nxt = evs[i + 1]
      self:check(nxt and nxt.event == "unpublished" and nxt.c == c,
                 "ctx%d: failed not immediately followed by unpublished of the same context (next: %s)",
                 c.id, nxt and (nxt.event .. " of ctx" .. nxt.c.id) or "nothing")
    end
    if e.event == "published" then
      self:check(e.status and e.status >= 200 and e.status < 300,
                 "ctx%d: published with status %s", c.id, tostring(e.status))
      -- With SIP-ETag; the one exception is doc/behaviour.md #61 (scenarios_malformed_spec):
      -- a 2xx without it to a refresh or modify keeps the old entity-tag and is `published`.
      local tx = c.answered
      self:check((e.etag ~= nil and e.etag ~= "") or (tx and not tx.initial and c.etag ~= nil),
                 "ctx%d: published for a 2xx without SIP-ETag to %s", c.id,
                 tx and (tx.initial and "an initial" or "a refresh/modify") or "nothing the model knows")
      self:check(not e.closed, "ctx%d: published after close()", c.id)
    end
    local tr = c.transient
    if tr and (e.event == "progress" or e.event == "failed") and (e.status == tr.code) then
      -- the outcome of a refresh/modify failing for a passing reason
      c.transient = nil
      if tr.stop then
        self:check(e.event == "progress", "ctx%d: %s to a %s of a stopped context: the remove should follow, got %s",
                   c.id, tostring(tr.code or "Timer F"), tr.what, e.event)
      elseif tr.retry then
        self:check(e.event == "progress", "ctx%d: %s to a %s should be retried after %.3f s (state valid until %.3f), got %s",
                   c.id, tostring(tr.code or "Timer F"), tr.what, tr.delay / 1000, (c.valid_until or 0) / 1000, e.event)
        c.backoff = tr.backoff
        c.refresh_at, c.retry_op = self.now + tr.delay, tr.op
      else
        self:check(e.event == "failed", "ctx%d: %s to a %s should end the publication (%s), got %s", c.id,
                   tostring(tr.code or "Timer F"), tr.what, tr.why, e.event)
      end
    end
    if e.event == "progress" and e.status == 423 and c.answered then
      local q = c.queued_before -- a 423 retry keeps what was queued (but a newer body)
      if q == "publish" and (c.answered.initial or c.answered.modify) then q = nil end
      c.queued = q
      c.must_remove = nil -- the same request again; the remove stays queued behind it
    end
    if e.event == "failed" or e.event == "unpublished" or (e.event == "progress" and e.status == 412) then
      c.etag = nil -- the library forgets its entity-tag
      c.refresh_at, c.retry_op, c.valid_until, c.backoff = nil, nil, nil, 0
      c.recovering, c.recover_until = nil, nil
      if e.event == "progress" then c.recover_next = true end -- the initial sent now recovers
    end
    if e.event == "published" then c.recovering, c.recover_until = nil, nil end
  end
end

-- Requests sent since the last call: retransmissions must be identical; a new branch must
-- be allowed now (see may_send) and follow the RFC 3903 rules.
function Run:process_sends()
  for _, req in ipairs(self.net:sent()) do
    self.stats.sent = self.stats.sent + 1
    local c = self.by_call_id[req.call_id]
    if not c and self.newborn then
      c = self.newborn
      self.newborn = nil
      c.call_id, c.from_tag = req.call_id, req.from_tag
      self.by_call_id[req.call_id] = c
    end
    self:check(c ~= nil, "a request with an unknown Call-ID %s", tostring(req.call_id))
    if self.ua_done then self:violation("ctx%d: a request after the UA closed: %s", c.id, short(req)) end
    self:check(req.from_tag == c.from_tag, "ctx%d: the From tag changed", c.id)
    self:check(req.method == "PUBLISH" and req.via_count == 1, "ctx%d: not a one-Via PUBLISH", c.id)
    local old = self.by_branch[req.branch]
    if old then
      self:log("  resent ctx%d %s", c.id, short(req))
      self.stats.retransmissions = self.stats.retransmissions + 1
      self:check(old.c == c, "ctx%d: a retransmission carries the branch of ctx%d", c.id, old.c.id)
      self:check(not old.done, "ctx%d: a retransmission after the transaction ended (%s)", c.id,
                 old.done_why or "?")
      self:check(req.data == old.req.data, "ctx%d: a retransmission differs from the original", c.id)
      old.copies = (old.copies or 0) + 1
      self:check(old.copies <= timer_e_count(self.now - old.sent_at),
                 "ctx%d: %d retransmissions %.3f s after the first: more than one per Timer E interval",
                 c.id, old.copies, (self.now - old.sent_at) / 1000)
    else
      self:log("  sent ctx%d %s", c.id, short(req))
      self.stats.transactions = self.stats.transactions + 1
      self:check(not (c.tx and not c.tx.done),
                 "ctx%d: a second PUBLISH in flight: new branch %s (CSeq %s) while %s (CSeq %s, sent at %.3f) has no final response",
                 c.id, tostring(req.branch), tostring(req.cseq), c.tx and c.tx.branch or "?",
                 c.tx and tostring(c.tx.cseq) or "?", c.tx and c.tx.sent_at / 1000 or 0)
      if not c.may_send then
        self:violation("ctx%d: a request at an instant nothing could cause one: %s", c.id, short(req))
      end
      if c.cseq then
        self:check(req.cseq == c.cseq + 1, "ctx%d: CSeq %s after %s", c.id, tostring(req.cseq), tostring(c.cseq))
      end
      local if_match, ctype, expires = req:header("SIP-If-Match"), req:header("Content-Type"), req:header("Expires")
      if c.closed and not c.unpublish_on_close then
        self:violation("ctx%d: a request after close() with unpublishOnClose=false: %s", c.id, short(req))
      end
      if c.closed and expires ~= "0" then
        self:violation("ctx%d: after close() only the remove may be sent, got %s", c.id, short(req))
      end
      if if_match then
        if c.etag == nil then
          self:violation("ctx%d: SIP-If-Match %s but no entity-tag is known (an initial must not carry it): %s",
                         c.id, if_match, short(req))
        end
        self:check(if_match == c.etag, "ctx%d: SIP-If-Match %s is not the newest entity-tag %s",
                   c.id, if_match, tostring(c.etag))
      end
      if not req.body then
        if if_match == nil then
          self:violation("ctx%d: a request without body has no SIP-If-Match: %s", c.id, short(req))
        end
        self:check(ctype == nil, "ctx%d: a refresh/remove carries Content-Type %s", c.id, tostring(ctype))
      else
        self:check(ctype ~= nil, "ctx%d: a request with a body has no Content-Type", c.id)
        self:check(expires ~= "0", "ctx%d: a remove with a body", c.id)
      end
      self:check(tonumber(req:header("Content-Length")) == #(req.body or ""), "ctx%d: Content-Length", c.id)
      if c.tx then c.old_txs[#c.old_txs + 1] = c.tx end
      if #c.old_txs > 4 then table.remove(c.old_txs, 1) end
      local tx = { c = c, req = req, branch = req.branch, cseq = req.cseq, sent_at = self.now,
                   f_at = self.now + T_F, expires = tonumber(expires), if_match = if_match,
                   remove = expires == "0", initial = if_match == nil,
                   modify = if_match ~= nil and req.body ~= nil and expires ~= "0",
                   refresh = if_match ~= nil and req.body == nil and expires ~= "0" }
      self.by_branch[req.branch] = tx
      if tx.initial and c.recover_next then -- a 412 recovery: retried for one requested interval
        c.recover_next, c.recovering = nil, true
        c.recover_until = self.now + (tx.expires or 0) * 1000
      end
      if c.must_remove and tx.remove then c.must_remove = nil end
      c.tx = tx
      c.cseq = req.cseq
      c.refresh_at, c.retry_op = nil, nil -- any request refreshes; its 2xx re-arms
      c.may_send = false -- one new request per context per cause
    end
  end
end

function Run:settle()
  self:process_events()
  for _, c in ipairs(self.ctxs) do
    if c.transient then
      self:violation("ctx%d: %s to a %s: no progress/failed event", c.id, tostring(c.transient.code or "Timer F"),
                     c.transient.what)
    end
  end
  self:process_sends()
  for _, c in ipairs(self.ctxs) do
    c.may_send = false
    -- a stopped context sends its remove unless the state is known gone (issue 13 #1)
    if c.must_remove then
      self:violation("ctx%d: stopped with its state still held by %s (until %.3f): no remove sent",
                     c.id, tostring(c.etag), (c.valid_until or 0) / 1000)
    end
  end
  -- after ua:close(): closed exactly when no transaction is left in flight
  if self.ua_closed and not self.ua_done then
    local active = false
    for _, c in ipairs(self.ctxs) do
      if c.tx and not c.tx.done then active = true end
    end
    local state = self.ua._core:state()
    if state == "closed" then
      self:check(not active, "the UA closed with a transaction still in flight")
      self.ua_done = true
      self:log("UA closed")
    else
      self:check(active, "ua:close(): nothing is in flight but the UA is still %q", state)
    end
  end
end

----------------------------------------------------------------------------- actions --

local BODY_CHARS = { "a", "b", "<x/>", "\0", "\r\n", "é", " " }

function Run:body()
  self.nbody = self.nbody + 1
  local b = "B" .. self.nbody
  if self.rng.chance(0.1) then b = b .. self.rng.pick(BODY_CHARS) end
  return b
end

function Run:add_handlers(c)
  for _, name in ipairs { "progress", "published", "failed", "unpublished" } do
    c.h:on(name, function(response, cause)
      local e = { c = c, event = name, status = response and response.status_code, cause = cause,
                  etag = response and response:getHeader("SIP-ETag") }
      e.closed = c.closed
      local list = self.pending_events
      list[#list + 1] = e
    end)
  end
end

local TARGETS = { "sip:alice@example.com", "sip:bob@example.com", "sips:carol@example.org" }
local EVENTS = { "presence", "dialog", "message-summary" }
local EXPIRES = { 1, 2, 30, 60, 600, 3600 }

function Run:call(what, fn)
  local ok, err = pcall(fn)
  if not ok then self:violation("%s raised: %s", what, tostring(err)) end
end

function Run:expect_error(what, pattern, fn)
  local ok, err = pcall(fn)
  self:check(not ok, "%s did not raise", what)
  self:check(tostring(err):find(pattern, 1, true) ~= nil, "%s raised %q, expected %q", what, tostring(err), pattern)
end

function Run:open_contexts()
  local out = {}
  for _, c in ipairs(self.ctxs) do if not c.closed then out[#out + 1] = c end end
  return out
end

function Run:new_ua()
  self.nua = self.nua + 1
  local ua, net = testing.new_ua { seed = self.rng.next() }
  self.ua, self.net = ua, net
  self.now = 0
  self.ctxs, self.by_call_id, self.by_branch = {}, {}, {}
  self.ua_closed, self.ua_done, self.after_done = false, false, 0
  self:log("new UA #%d", self.nua)
end

function Run:act_ua_publish()
  local r = self.rng
  local c = { id = #self.ctxs + 1, old_txs = {}, closed = false }
  local opts = { expires = r.pick(EXPIRES), contentType = r.pick { "application/pidf+xml", "text/plain" },
                 unpublishOnClose = r.chance(0.8) }
  if r.chance(0.2) then opts.extraHeaders = { "X-Model: " .. c.id, "Priority: normal" } end
  c.unpublish_on_close = opts.unpublishOnClose
  local body = self:body()
  self:log("ua:publish ctx%d expires=%d unpublishOnClose=%s body=%q", c.id, opts.expires,
           tostring(opts.unpublishOnClose), body)
  self.ctxs[#self.ctxs + 1] = c
  c.may_send = true
  self.newborn = c
  self:call("ua:publish", function()
    c.h = self.ua:publish(r.pick(TARGETS), r.pick(EVENTS), body, opts)
  end)
  self:add_handlers(c)
  self:settle()
  self:check(c.tx ~= nil, "ctx%d: ua:publish sent nothing", c.id)
end

function Run:act_publish_body(c)
  local body = self:body()
  self:log("ctx%d:publish(%q)", c.id, body)
  c.may_send = true
  if c.tx and not c.tx.done then c.queued = "publish" end
  self:call("ctx:publish(body)", function() c.h:publish(body) end)
  self:settle()
end

function Run:act_refresh(c)
  local allowed = (c.tx and not c.tx.done) or c.etag ~= nil
  self:log("ctx%d:publish() (model: %s)", c.id, allowed and "allowed" or "nothing to refresh")
  c.may_send = true
  if c.tx and not c.tx.done and c.queued == "remove" then c.queued = "refresh" end
  if allowed then
    self:call("ctx:publish()", function() c.h:publish() end)
  else
    self:expect_error("ctx:publish() without state", "nothing is published", function() c.h:publish() end)
  end
  self:settle()
end

function Run:act_unpublish(c)
  self:log("ctx%d:unpublish()", c.id)
  c.may_send = true
  c.refresh_at, c.retry_op = nil, nil
  c.queued = (c.tx and not c.tx.done) and "remove" or nil
  c.recovering, c.recover_until = nil, nil
  if c.etag and not c.queued then c.must_remove = true end
  self:call("ctx:unpublish()", function() c.h:unpublish() end)
  self:settle()
end

function Run:act_close(c)
  self:log("ctx%d:close() unpublishOnClose=%s", c.id, tostring(c.unpublish_on_close))
  self:close_model(c)
  self:call("ctx:close()", function() c.h:close() end)
  self:settle()
  self:check(c.h.state == "closed", "ctx%d: state %s after close()", c.id, tostring(c.h.state))
end

function Run:close_model(c)
  c.may_send = true
  c.closed = true
  c.refresh_at, c.retry_op = nil, nil
  c.recovering, c.recover_until = nil, nil
  if c.unpublish_on_close then
    c.queued = (c.tx and not c.tx.done) and "remove" or nil
    if c.etag and not c.queued then c.must_remove = true end
  else
    c.etag, c.queued, c.valid_until, c.backoff = nil, nil, nil, 0
  end
end

function Run:act_closed_calls(c)
  self:log("calls on closed ctx%d", c.id)
  self:expect_error("publish(body) on a closed context", "closed", function() c.h:publish("x") end)
  self:call("close() again", function() c.h:close() end)
  self:call("unpublish() on a closed context", function() c.h:unpublish() end)
  self:settle()
end

function Run:act_ua_close()
  self:log("ua:close()")
  for _, c in ipairs(self.ctxs) do
    if not c.closed then self:close_model(c) end
    c.may_send = true
  end
  self.ua_closed = true
  self:call("ua:close()", function() self.ua:close() end)
  self:expect_error("ua:publish after close", "closed", function()
    self.ua:publish("sip:alice@example.com", "presence", "x")
  end)
  self:settle()
end

---------------------------------------------------------------------------- responses --

local EXPIRES_VALUES = { false, "0", "1", "2", "60", "3600", "7200", "abc", "-5", "4294967296", " 30", "" }
local FAILURES = { 403, 404, 408, 480, 489, 500, 503, 504, 603, 302, 499, 599 }
local RETRY_AFTER = { "0", "1", "5", "120", "5 (maintenance)", "3;duration=10", "abc", "99999999999", "" }

function Run:etag()
  self.netag = self.netag + 1
  return "e" .. self.netag .. (self.rng.chance(0.1) and ".x-Y_z" or "")
end

-- The model's reading of the end of transaction tx: a final response (code, headers h as
-- sent) or Timer F (code nil).
function Run:tx_ended(tx, code, h, why)
  local c = tx.c
  tx.done, tx.done_why = true, why
  c.answered = tx
  c.may_send = true -- a queued request, a recovery or a retry may follow
  c.queued_before, c.queued = c.queued, nil
  if tx.lost then
    -- its loss was reported at the expiry: only a 2xx that keeps the state is news
    local exp = code and code >= 200 and code < 300 and parse_seconds(h.Expires)
    if not (code and code >= 200 and code < 300 and exp ~= 0 and h["SIP-ETag"]) then return end
  end
  if code and code >= 200 and code < 300 then
    local exp = parse_seconds(h.Expires)
    if tx.remove or exp == 0 then
      c.etag = nil
      return
    end
    if h["SIP-ETag"] then
      c.etag = h["SIP-ETag"]
    elseif tx.initial then
      c.etag = nil -- protocol error: failed + unpublished
      return
    end
    if c.closed then
      if not c.unpublish_on_close then c.etag = nil end
      return
    end
    -- counted from the request's first transmission (the server took it no later): a slow
    -- answer can find its refresh due already
    local granted = (exp and exp > 0) and exp or tx.expires
    c.refresh_at, c.retry_op = tx.sent_at + granted * 900, nil
    c.valid_until, c.backoff = tx.sent_at + granted * 1000, 0
  elseif code == 412 then
    c.etag = nil
  else
    local stopped = c.queued_before == "remove" and c.etag ~= nil and (tx.refresh or tx.modify)
      and (not c.valid_until or self.now < c.valid_until)
    local recovery = tx.initial and c.recovering
    if (code == nil or TRANSIENT[code]) and (tx.refresh or tx.modify or recovery) then
      -- a passing failure: retried while the granted state lasts (doc/behaviour.md #29, doc/api.md), or
      -- for one requested interval when recovering from a 412
      local tr = { code = code, what = recovery and "412 recovery" or tx.modify and "modify" or "refresh" }
      tr.op = recovery and "initial" or (tx.modify or c.queued_before == "publish") and "modify" or "refresh"
      local ra = code and parse_retry_after(h["Retry-After"])
      local until_ = recovery and c.recover_until or c.valid_until
      local remaining = until_ and (until_ - self.now) or 0
      if not recovery and c.etag == nil then tr.why = "no entity-tag"
      elseif c.closed or c.queued_before == "remove" then
        if stopped then tr.stop = true else tr.why = "stopped, no state to remove" end
      elseif not until_ then tr.why = "no granted state"
      elseif remaining <= 0 then tr.why = "the state has expired"
      else
        -- 1, 2, 4 … 32 s, shortened to half of the time left; a Retry-After lengthens it, one
        -- beyond the time left gives up; not under 50 ms
        tr.backoff = (c.backoff or 0) > 0 and math.min(c.backoff * 2, 32000) or 1000
        tr.delay = tr.backoff
        if tr.delay >= remaining then tr.delay = math.floor(remaining / 2) end
        if ra and ra * 1000 >= remaining then tr.why = "Retry-After beyond the state"
        else
          if ra and ra * 1000 > tr.delay then tr.delay = ra * 1000 end
          if tr.delay < 50 then tr.why = "no time left to retry" else tr.retry = true end
        end
      end
      c.transient = tr
    end
    if code ~= 412 and stopped then c.must_remove = true end
  end
end

function Run:act_response()
  local r = self.rng
  -- the context: preferably one with a transaction in flight
  local active = {}
  for _, c in ipairs(self.ctxs) do if c.tx and not c.tx.done then active[#active + 1] = c end end
  local c
  if #active > 0 and r.chance(0.95) then c = r.pick(active) elseif #self.ctxs > 0 then c = r.pick(self.ctxs) end
  local kind = r.weighted {
    { 6, "prov" }, { 30, "ok" }, { 6, "412" }, { 7, "423" }, { 8, "failure" }, { 3, "garbage" },
    { 3, "retransmitted" }, { 3, "branch" }, { 3, "callid" }, { 2, "cseq" }, { 2, "method" },
    { 3, "foreign" }, { 3, "stale" }, { 2, "twovias" }, { 2, "truncated" },
  }
  if not c or not c.tx then kind = "garbage" end
  local tx = c and c.tx
  local net = self.net
  local live = tx and not tx.done

  local function send(raw, what, code, h)
    self:log("<- %s to ctx%s %s", what, c and c.id or "-", raw:match("^[^\r]*") or "")
    self.stats.responses = self.stats.responses + 1
    if code and live then
      if code < 200 then
        self.stats.accepted_prov = self.stats.accepted_prov + 1
      else
        self:tx_ended(tx, code, h, "final " .. code)
        c.last_final = raw
        self.stats.accepted_final = self.stats.accepted_final + 1
      end
    end
    self:call("receive", function() net:receive(raw) end)
    self:settle()
  end

  if kind == "prov" then
    local code = r.pick { 100, 180, 183 }
    send(net:response_for(tx.req, code), "provisional", code, {})
  elseif kind == "ok" then
    local h = {}
    if r.chance(0.85) then h["SIP-ETag"] = self:etag() end
    local e = r.pick(EXPIRES_VALUES)
    if e then h.Expires = e end
    local code = r.chance(0.85) and 200 or r.pick { 202, 204, 299 }
    send(net:response_for(tx.req, code, h), "2xx", code, h)
  elseif kind == "412" then
    send(net:response_for(tx.req, 412), "412", 412, {})
  elseif kind == "423" then
    local h = {}
    local base = tx.expires or 60
    local m = r.pick { base + r.range(1, 4000), base + 1, base, math.max(base - 1, 0), "abc", false, "-1" }
    if m then h["Min-Expires"] = m end
    send(net:response_for(tx.req, 423, h), "423", 423, h)
  elseif kind == "failure" then
    local code = r.pick(FAILURES)
    local h = { reason = r.chance(0.3) and "Odd Phrase" or nil }
    if r.chance(0.4) then h["Retry-After"] = r.pick(RETRY_AFTER) end
    send(net:response_for(tx.req, code, h), "failure", code, h)
  elseif kind == "garbage" then
    local n = r.range(0, 300)
    local bytes = {}
    for i = 1, n do bytes[i] = string.char(r.range(0, 255)) end
    local raw = r.pick { table.concat(bytes), "", "SIP/2.0 200 OK\r\n\r\n", "SIP/2.0 200 OK\r\n",
                         "PUBLISH sip:a@b SIP/2.0\r\n\r\n", "SIP/2.0 " .. table.concat(bytes) }
    send(raw, "garbage")
  elseif kind == "retransmitted" then
    if c.last_final then send(c.last_final, "a final again") else send("", "empty") end
  elseif kind == "branch" then
    local hex = {}
    for i = 1, 16 do hex[i] = string.format("%x", r.range(0, 15)) end
    send(net:response_for(tx.req, 200, { branch = "z9hG4bK" .. table.concat(hex), ["SIP-ETag"] = "bad" }), "unknown branch")
  elseif kind == "callid" then
    local other = self.ctxs[r.int(#self.ctxs)]
    local cid = (other ~= c and other.call_id) or ("x" .. r.next() .. "@example.com")
    send(net:response_for(tx.req, 200, { call_id = cid, ["SIP-ETag"] = "bad" }), "wrong Call-ID")
  elseif kind == "cseq" then
    send(net:response_for(tx.req, 200, { cseq = tx.cseq + r.pick { 1, -1, 1000 }, ["SIP-ETag"] = "bad" }), "wrong CSeq")
  elseif kind == "method" then
    send(net:response_for(tx.req, 200, { method = r.pick { "INVITE", "publish", "OPTIONS" }, ["SIP-ETag"] = "bad" }), "wrong method")
  elseif kind == "foreign" then
    -- the branch of this context's transaction with another context's Call-ID
    local other
    for _, o in ipairs(self.ctxs) do if o ~= c and o.call_id then other = o end end
    if other then
      send(net:response_for(tx.req, r.pick { 200, 500, 412 }, { call_id = other.call_id, ["SIP-ETag"] = "bad" }),
           "foreign Call-ID ctx" .. other.id)
    else
      send("\0", "a NUL byte")
    end
  elseif kind == "stale" then
    local old = c.old_txs[#c.old_txs]
    if old then
      send(net:response_for(old.req, r.pick { 200, 412, 500 }, { ["SIP-ETag"] = "bad" }), "to an old transaction")
    else
      send(net:response_for(tx.req, 200, { branch = "z9hG4bKnot-ours", ["SIP-ETag"] = "bad" }), "odd branch")
    end
  elseif kind == "twovias" then
    send(net:response_for(tx.req, 200, { ["SIP-ETag"] = "bad", raw_extra = "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKp" }), "two Vias")
  elseif kind == "truncated" then
    send(net:response_for(tx.req, 200, { ["SIP-ETag"] = "bad", body = "xy", content_length = 10 }), "Content-Length too large")
  end
end

------------------------------------------------------------------------------ clock --

function Run:advance(delta)
  local target = self.now + delta
  self:log("advance %.3f s", delta / 1000)
  local first = true
  while self.now < target or first do
    local nxt = math.min(target, self.now + 31000)
    local now_ok = first -- a timer due right now (Retry-After: 0) fires on a zero advance
    first = false
    local function consider(b)
      if now_ok and b <= self.now then nxt = self.now -- due already: fires on a zero advance
      elseif b > self.now and b < nxt then nxt = b end
    end
    for _, c in ipairs(self.ctxs) do
      if c.tx and not c.tx.done then consider(c.tx.f_at - 1); consider(c.tx.f_at) end
      local w = self:watch_at(c)
      if w then consider(w - 1); consider(w) end
      if c.refresh_at then consider(c.refresh_at - 1); consider(c.refresh_at) end
    end
    self:call("advance", function() self.net:advance((nxt - self.now) / 1000) end)
    self.now = nxt
    self.stats.advances = self.stats.advances + 1
    local due = {}
    for _, c in ipairs(self.ctxs) do
      if c.tx and not c.tx.done and c.tx.f_at <= self.now then
        self:check(c.tx.f_at == self.now, "ctx%d: Timer F instant skipped", c.id)
        self:tx_ended(c.tx, nil, {}, "Timer F")
      end
      local w = self:watch_at(c)
      if w and w <= self.now then
        -- issue 13 #6: the loss is reported now (failed, unpublished); the request goes on
        self:check(w == self.now, "ctx%d: the state's expiry instant skipped", c.id)
        c.tx.lost = true
        c.transient = { what = c.tx.modify and "modify" or "refresh", why = "the granted state expired" }
        c.refresh_at, c.retry_op = nil, nil
      end
      if c.refresh_at and c.refresh_at <= self.now then
        c.may_send = true
        c.due_op = c.retry_op
        due[#due + 1] = c
      end
    end
    self:settle()
    for _, c in ipairs(due) do
      -- the model armed a refresh (0.9 × the granted Expires) and nothing cancelled it
      local want = c.due_op or "refresh"
      self:check(c.tx and c.tx.sent_at == self.now and (want ~= "refresh") == (c.tx.req.body ~= nil)
                 and (want == "initial") == c.tx.initial,
                 "ctx%d: the %s due at t=%.3f was not sent", c.id, want, self.now / 1000)
    end
  end
  if math.abs(self.net:now() * 1000 - self.now) > 0.5 then
    self:violation("virtual clock %.3f differs from the model's %.3f", self.net:now(), self.now / 1000)
  end
end

-- When the granted state expires under the refresh or modify in flight (which then ends as a
-- timeout would): nil when there is none.
function Run:watch_at(c)
  local tx = c.tx
  if tx and not tx.done and not tx.lost and (tx.refresh or tx.modify) and c.valid_until
     and tx.sent_at < c.valid_until then
    return c.valid_until
  end
end

function Run:act_clock()
  local r = self.rng
  local d = r.weighted {
    { 10, function() return 0 end },
    { 25, function() return r.range(0, 2000) end },            -- Timer E
    { 10, function() return r.range(31000, 33000) end },       -- Timer F
    { 25, function() return r.range(0, 100000) end },
    { 10, function() return r.range(0, 4000000) end },         -- refreshes
  }
  self:advance(d())
end

------------------------------------------------------------------------------- step --

function Run:one_step()
  local r = self.rng
  if self.ua_done then
    -- a closed UA: nothing may happen any more; then a new one
    self.after_done = self.after_done + 1
    if self.after_done > 3 then return self:new_ua() end
    if r.chance(0.5) then return self:advance(r.range(0, 100000)) end
    if #self.ctxs > 0 then
      local c = r.pick(self.ctxs)
      if c.tx then
        self:call("receive", function() self.net:receive(self.net:response_for(c.tx.req, 200, { ["SIP-ETag"] = "late" })) end)
      end
    end
    return self:settle()
  end
  local open = self:open_contexts()
  local closed = {}
  for _, c in ipairs(self.ctxs) do if c.closed then closed[#closed + 1] = c end end
  local what = r.weighted {
    { (#open < 4 and not self.ua_closed) and 16 or 0, "ua_publish" },
    { (#open > 0) and 32 or 0, "publish" },
    { (#open > 0) and 24 or 0, "refresh" },
    { (#open > 0) and 16 or 0, "unpublish" },
    { (#open > 0) and 6 or 0, "close" },
    { (#closed > 0) and 4 or 0, "closed_calls" },
    { (#self.ctxs > 0 and not self.ua_closed) and 1 or 0, "ua_close" },
    { 200, "response" },
    { 80, "clock" },
  }
  if what == "ua_publish" then self:act_ua_publish()
  elseif what == "publish" then self:act_publish_body(r.pick(open))
  elseif what == "refresh" then self:act_refresh(r.pick(open))
  elseif what == "unpublish" then self:act_unpublish(r.pick(open))
  elseif what == "close" then self:act_close(r.pick(open))
  elseif what == "closed_calls" then self:act_closed_calls(r.pick(closed))
  elseif what == "ua_close" then self:act_ua_close()
  elseif what == "response" then self:act_response()
  else self:act_clock() end
  -- with a closed UA, time passes so that it finishes
  if self.ua_closed and not self.ua_done and r.chance(0.2) then self:advance(r.range(0, 40000)) end
end

-- Runs `steps` steps from `seed`. Returns true, nil, stats; or false, report, stats.
function M.run(o)
  local self = setmetatable({
    seed = o.seed, rng = new_rng(o.seed), step = 0, now = 0, trace = {}, trace_i = 1, trace_n = 0,
    pending_events = {}, nbody = 0, netag = 0, nua = 0,
    stats = { sent = 0, transactions = 0, retransmissions = 0, events = 0, responses = 0,
              accepted_final = 0, accepted_prov = 0, advances = 0, uas = 0, kinds = {} },
  }, Run)
  local handler_errors = {}
  local saved_on_error = sip.on_error
  sip.on_error = function(msg) handler_errors[#handler_errors + 1] = msg end
  local ok, err = pcall(function()
    self:new_ua()
    for i = 1, o.steps do
      self.step = i
      self:one_step()
      if #handler_errors > 0 then self:violation("a Lua error escaped to sip.on_error: %s", handler_errors[1]) end
    end
    -- the end: close the UA and let it finish
    if not self.ua_closed then self:act_ua_close() end
    local guard = 0
    while not self.ua_done and guard < 10 do
      guard = guard + 1
      self:advance(40000)
    end
    self:check(self.ua_done, "the UA did not close within 400 s of ua:close()")
    self:advance(4000000)
  end)
  sip.on_error = saved_on_error
  self.stats.uas = self.nua
  self.stats.steps = self.step
  if ok then return true, nil, self.stats end
  local msg = type(err) == "table" and err.violation or ("Lua error in the model run: " .. tostring(err))
  local report = string.format("seed %d, step %d: %s\nlast steps:\n%s", self.seed, self.step, msg, self:tail())
  return false, report, self.stats
end

return M
