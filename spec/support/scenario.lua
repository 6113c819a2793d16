-- Shared helpers of the scenario specs (doc/behaviour.md): the common setup, request
-- shape assertions and event-sequence assertions with readable failure messages.
local testing = require "sip.testing"
local assert = require "luassert"

local S = {}

S.TARGET = require("support.common").TARGET
S.EVENT = "presence"
S.CTYPE = "application/pidf+xml"

-- "published(200,OK)", "failed(nil,Request Timeout)": one string per recorded event.
function S.format(rec)
  local out = {}
  for i, e in ipairs(rec) do
    out[i] = string.format("%s(%s,%s)", e.event, tostring(e.status), tostring(e.cause))
  end
  return out
end

function S.clear(list)
  for i = #list, 1, -1 do list[i] = nil end
end

-- Asserts that the events recorded so far are exactly `expected` (strings as S.format
-- writes them), then clears the record.
function S.events(rec, expected, what)
  local got = S.format(rec)
  assert.are.same(expected, got, (what and what .. ": " or "") .. "events: expected {"
    .. table.concat(expected, ", ") .. "}, got {" .. table.concat(got, ", ") .. "}")
  S.clear(rec)
end

-- A UA with its virtual network and one context that has sent its initial PUBLISH.
-- o.options is merged over { contentType = application/pidf+xml, expires = 3600 };
-- o.raw_options is passed as is instead. o.body ("B1"), o.event, o.target, o.ua/o.net (an
-- existing UA). Returns t = { ua, net, ctx, rec, req = first = the initial request }.
function S.start(o)
  o = o or {}
  local options = o.raw_options
  if not options then
    options = { contentType = S.CTYPE, expires = 3600 }
    for k, v in pairs(o.options or {}) do options[k] = v end
  end
  local ua, net = o.ua, o.net
  if not ua then ua, net = testing.new_ua() end
  local ctx = ua:publish(o.target or S.TARGET, o.event or S.EVENT, o.body or "B1", options)
  local t = { ua = ua, net = net, ctx = ctx, rec = testing.record(ctx) }
  t.req = net:take()
  t.first = t.req
  return t
end

-- S.start, then a 200 with SIP-ETag etag (default "e1") and Expires (default 3600); asserts
-- `published(200,OK)` and clears the record.
function S.published(o, etag, expires)
  local t = S.start(o)
  S.ok(t.net, t.req, etag or "e1", expires or 3600)
  S.events(t.rec, { "published(200,OK)" }, "initial 200")
  assert.are.equal(etag or "e1", t.ctx.etag)
  return t
end

-- 200 with SIP-ETag and Expires to req.
function S.ok(net, req, etag, expires)
  local h = {}
  if etag then h[#h + 1] = { "SIP-ETag", etag } end
  if expires then h[#h + 1] = { "Expires", expires } end
  return net:reply(req, 200, { headers = h })
end

-- Advances the clock to `at` seconds (absolute) and asserts that nothing goes out before it
-- and exactly one request goes out at it; returns that request.
function S.fires_at(net, at)
  local now = net:now()
  assert(at > now, ("fires_at(%g): the clock is already at %g"):format(at, now))
  if at - now > 0.001 then
    net:advance(at - now - 0.001)
    local early = net:sent()
    assert(#early == 0, ("expected nothing before t=%gs, but at t=%gs: %s"):format(
      at, net:now(), early[1] and tostring(early[1]) or ""))
  end
  net:advance(at - net:now())
  return net:take()
end

-- Asserts that nothing is sent for `seconds` of virtual time.
function S.quiet(net, seconds)
  net:advance(seconds)
  net:none()
end

local function count(req, name) return #req:headers(name) end

-- The parts every PUBLISH of a context has.
function S.common(req, o)
  o = o or {}
  assert.are.equal("PUBLISH", req.method)
  assert.are.equal(o.target or S.TARGET, req.uri)
  assert.are.equal(1, req.via_count, "exactly one Via")
  assert.is_truthy(req.branch and req.branch:match("^z9hG4bK."), "branch z9hG4bK…: " .. tostring(req.branch))
  assert.are.equal("PUBLISH", req.cseq_method)
  assert.is_number(req.cseq)
  assert.is_truthy(req.call_id and #req.call_id > 0, "Call-ID")
  assert.is_truthy(req.from_tag and #req.from_tag > 0, "From tag")
  assert.is_truthy(req:header("To"):find(o.target or S.TARGET, 1, true), "To = target: " .. req:header("To"))
  assert.is_nil(req:header("To"):match(";%s*tag="), "To has no tag")
  assert.are.equal(1, count(req, "Event"), "exactly one Event")
  assert.are.equal(o.event or S.EVENT, req:header("Event"))
  assert.are.equal(1, count(req, "Expires"), "exactly one Expires")
end

local function content_length(req)
  return tonumber(req:header("Content-Length"))
end

-- Initial: body, Content-Type, no SIP-If-Match.
function S.initial(req, body, expires, o)
  o = o or {}
  S.common(req, o)
  assert.is_nil(req:header("SIP-If-Match"), "an initial PUBLISH has no SIP-If-Match")
  assert.are.equal(tostring(expires or 3600), req:header("Expires"))
  assert.are.equal(body, req.body)
  assert.are.equal(1, count(req, "Content-Type"), "exactly one Content-Type")
  assert.are.equal(o.ctype or S.CTYPE, req:header("Content-Type"))
  assert.are.equal(#body, content_length(req))
end

-- Modify: body, Content-Type and SIP-If-Match.
function S.modify(req, etag, body, expires, o)
  o = o or {}
  S.common(req, o)
  assert.are.equal(1, count(req, "SIP-If-Match"), "exactly one SIP-If-Match")
  assert.are.equal(etag, req:header("SIP-If-Match"))
  assert.are.equal(tostring(expires or 3600), req:header("Expires"))
  assert.are.equal(body, req.body)
  assert.are.equal(o.ctype or S.CTYPE, req:header("Content-Type"))
  assert.are.equal(#body, content_length(req))
end

-- Refresh: SIP-If-Match, no body, no Content-Type, Content-Length 0.
function S.refresh(req, etag, expires, o)
  S.common(req, o)
  assert.are.equal(1, count(req, "SIP-If-Match"), "exactly one SIP-If-Match")
  assert.are.equal(etag, req:header("SIP-If-Match"))
  assert.are.equal(tostring(expires or 3600), req:header("Expires"))
  assert.is_nil(req.body, "a refresh has no body")
  assert.is_nil(req:header("Content-Type"), "a refresh has no Content-Type")
  assert.are.equal(0, content_length(req))
end

-- Remove: Expires 0, SIP-If-Match, no body, no Content-Type.
function S.remove(req, etag, o)
  S.refresh(req, etag, 0, o)
end

-- Same context (Call-ID, From tag), next CSeq, new branch.
function S.next_of(req, prev)
  assert.are.equal(prev.call_id, req.call_id, "Call-ID stays the same for the context")
  assert.are.equal(prev.from_tag, req.from_tag, "From tag stays the same for the context")
  assert.are.equal(prev.cseq + 1, req.cseq, "CSeq increases by one per request")
  assert.are_not.equal(prev.branch, req.branch, "a new request has a new branch")
end

-- A retransmission: byte-identical to the original.
function S.retransmission(req, orig)
  assert.are.equal(orig.branch, req.branch, "a retransmission keeps the branch")
  assert.are.equal(orig.data, req.data, "a retransmission is identical to the original")
end

return S
