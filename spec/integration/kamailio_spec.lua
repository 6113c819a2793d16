-- The library against a real Event State Compositor: Kamailio 5.6 (presence module, SQLite
-- storage) started on a loopback UDP port by the spec itself. Every scenario checks three
-- views that must agree: the events the library emits, the PUBLISH requests Kamailio
-- logged (what went over the wire), and Kamailio's presentity table.
local K = require "support.kamailio"
local loop = require "support.loop"
local E = require "support.events"
local record, names, at_least = E.record, E.names, E.at_least

local AOR = "sip:alice@example.com"
local PIDF = "application/pidf+xml"
local MIN_EXPIRES = 60
local WAIT = K.WAIT
local one_row, table_empty = K.one_row, K.table_empty

local function pidf(user, basic, note)
  return K.pidf("sip:" .. user .. "@example.com", basic, note)
end

local function dialog_info(user, state)
  return ([[<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:%s@example.com">
  <dialog id="d1" direction="initiator">
    <state>%s</state>
  </dialog>
</dialog-info>
]]):format(user, state)
end

local available, why = K.available()

describe("Kamailio as the ESC #integration #kamailio", function()
  if not available then
    it("is skipped: " .. tostring(why), function() pending(why) end)
    return
  end

  local fx = K.fixture(before_each, after_each)
  local run_until, no_handler_errors = fx.run_until, fx.no_handler_errors
  local k, ua

  before_each(function()
    k = fx:start { min_expires = MIN_EXPIRES }
    ua = fx:new_ua { uri = AOR }
  end)

  it("initial, refresh, modify and remove, each If-Match being the ESC's last SIP-ETag", function()
    local b1, b2 = pidf("alice", "open"), pidf("alice", "closed", "in a meeting")
    local pub = ua:publish(AOR, "presence", b1, { contentType = PIDF, expires = MIN_EXPIRES })
    local events = record(pub)

    -- initial
    run_until(at_least(1, events), "the initial 2xx")
    local e1 = events[1]
    assert.are.same({ "published" }, names(events))
    assert.are.equal(200, e1.status)
    assert.are.equal("OK", e1.cause)
    assert.is_string(e1.etag)
    assert.are.equal(MIN_EXPIRES, e1.expires)
    assert.are.equal(e1.etag, pub.etag)
    assert.are.equal("published", pub.state)
    local row = one_row(k, "alice", "presence")
    assert.are.equal("example.com", row.domain)
    assert.are.equal(e1.etag, row.etag)
    assert.are.equal(b1, row.body)
    local req = k:requests()[1]
    assert.is_nil(req.if_match)
    assert.are.equal(MIN_EXPIRES, req.expires)
    assert.are.equal("presence", req.event)
    assert.are.equal(PIDF, req.content_type)
    assert.are.equal(#b1, req.length)

    -- refresh now: no body, If-Match = the initial's entity-tag
    pub:publish()
    run_until(at_least(2, events), "the refresh 2xx")
    local e2 = events[2]
    assert.are.equal("published", e2.event)
    assert.are.equal(200, e2.status)
    assert.are_not.equal(e1.etag, e2.etag)
    assert.are.equal(e2.etag, pub.etag)
    req = k:requests()[2]
    assert.are.equal(e1.etag, req.if_match)
    assert.are.equal(0, req.length)
    assert.is_nil(req.content_type)
    assert.are.equal(MIN_EXPIRES, req.expires)
    row = one_row(k, "alice", "presence")
    assert.are.equal(e2.etag, row.etag)
    assert.are.equal(b1, row.body)

    -- modify: new body, If-Match = the refresh's entity-tag
    pub:publish(b2)
    run_until(at_least(3, events), "the modify 2xx")
    local e3 = events[3]
    assert.are.equal("published", e3.event)
    assert.are_not.equal(e2.etag, e3.etag)
    req = k:requests()[3]
    assert.are.equal(e2.etag, req.if_match)
    assert.are.equal(#b2, req.length)
    assert.are.equal(PIDF, req.content_type)
    row = one_row(k, "alice", "presence")
    assert.are.equal(e3.etag, row.etag)
    assert.are.equal(b2, row.body)
    assert.are.equal(b2, pub.body)

    -- remove: Expires 0, If-Match = the modify's entity-tag; the row goes away
    pub:unpublish()
    run_until(at_least(4, events), "the remove 2xx")
    local e4 = events[4]
    assert.are.same({ "published", "published", "published", "unpublished" }, names(events))
    assert.are.equal(200, e4.status)
    assert.are.equal("OK", e4.cause)
    req = k:requests()[4]
    assert.are.equal(0, req.expires)
    assert.are.equal(e3.etag, req.if_match)
    assert.are.equal(0, req.length)
    assert.is_nil(pub.etag)
    assert.are.equal("idle", pub.state)
    table_empty(k)

    -- one Call-ID and increasing CSeq numbers for the life of the context
    local reqs = k:requests()
    assert.are.equal(4, #reqs)
    local branches = {}
    for _, r in ipairs(reqs) do
      assert.matches("^z9hG4bK", r.branch)
      assert.is_nil(branches[r.branch], "branch reused: " .. r.branch)
      branches[r.branch] = true
    end
    for i = 2, #reqs do
      assert.are.equal(reqs[1].call_id, reqs[i].call_id)
      assert.are.equal(reqs[i - 1].cseq + 1, reqs[i].cseq)
    end
    no_handler_errors()
  end)

  it("recovers from 412 after the ESC lost its state: a new initial with the last body", function()
    local b1 = pidf("alice", "open", "before the restart")
    local pub = ua:publish(AOR, "presence", b1, { contentType = PIDF, expires = MIN_EXPIRES })
    local events = record(pub)
    run_until(at_least(1, events), "the initial 2xx")
    assert.are.same({ "published" }, names(events))
    local old_etag = events[1].etag

    k:restart { fresh_db = true }
    assert.are.same({}, k:presentities())

    pub:publish() -- refresh with an entity-tag the new ESC never handed out
    run_until(at_least(3, events), "412 then the recovery 2xx")
    assert.are.same({ "published", "progress", "published" }, names(events))
    local p = events[2]
    assert.are.equal(412, p.status)
    assert.are.equal("Conditional Request Failed", p.cause)
    local e = events[3]
    assert.are.equal(200, e.status)
    assert.is_string(e.etag)
    assert.are.equal(e.etag, pub.etag)

    local reqs = k:requests()
    assert.are.equal(2, #reqs)
    assert.are.equal(old_etag, reqs[1].if_match)    -- the refresh
    assert.are.equal(0, reqs[1].length)
    assert.is_nil(reqs[2].if_match)                 -- the recovery: initial, last body
    assert.are.equal(#b1, reqs[2].length)
    assert.are.equal(PIDF, reqs[2].content_type)
    assert.are.equal(MIN_EXPIRES, reqs[2].expires)

    local row = one_row(k, "alice", "presence")
    assert.are.equal(e.etag, row.etag)
    assert.are.equal(b1, row.body)
    no_handler_errors()
  end)

  it("recovers from 423 by asking again with the ESC's Min-Expires", function()
    local b1 = pidf("alice", "open")
    local pub = ua:publish(AOR, "presence", b1, { contentType = PIDF, expires = 10 })
    local events = record(pub)
    run_until(at_least(2, events), "423 then the 2xx")
    assert.are.same({ "progress", "published" }, names(events))
    local p = events[1]
    assert.are.equal(423, p.status)
    assert.are.equal("Interval Too Brief", p.cause)
    assert.are.equal(tostring(MIN_EXPIRES), p.response:getHeader("Min-Expires"))
    local e = events[2]
    assert.are.equal(200, e.status)
    assert.is_true(e.expires >= MIN_EXPIRES, "granted Expires " .. tostring(e.expires))
    assert.are.equal(10, pub.options.expires) -- the caller's option is left as given

    local reqs = k:requests()
    assert.are.equal(2, #reqs)
    assert.are.equal(10, reqs[1].expires)
    assert.are.equal(MIN_EXPIRES, reqs[2].expires)
    assert.is_nil(reqs[2].if_match)
    assert.are.equal(#b1, reqs[2].length)

    local row = one_row(k, "alice", "presence")
    assert.are.equal(e.etag, row.etag)
    assert.are.equal(b1, row.body)

    -- the Min-Expires value is kept: a refresh asks for it, not for 10 again
    pub:publish()
    run_until(at_least(3, events), "the refresh 2xx")
    assert.are.equal("published", events[3].event)
    reqs = k:requests()
    assert.are.equal(3, #reqs)
    assert.are.equal(MIN_EXPIRES, reqs[3].expires)
    assert.are.equal(e.etag, reqs[3].if_match)
    no_handler_errors()
  end)

  it("ua:close() removes every publication and sip.run() returns", function()
    local pubs = {
      ua:publish(AOR, "presence", pidf("alice", "open"), { contentType = PIDF, expires = 120 }),
      ua:publish("sip:bob@example.com", "presence", pidf("bob", "closed"),
                 { contentType = PIDF, expires = 120 }),
      ua:publish(AOR, "dialog", dialog_info("alice", "confirmed"),
                 { contentType = "application/dialog-info+xml", expires = 120 }),
    }
    local events = {}
    for i, pub in ipairs(pubs) do events[i] = record(pub) end
    run_until(function()
      for _, list in ipairs(events) do if #list < 1 then return false end end
      return true
    end, "three initial 2xx")
    local etags = {}
    for i, list in ipairs(events) do
      assert.are.same({ "published" }, names(list), "context " .. i)
      etags[i] = list[1].etag
    end
    local rows = k:presentities()
    assert.are.equal(3, #rows)
    assert.are.equal(etags[1], one_row(k, "alice", "presence").etag)
    assert.are.equal(etags[2], one_row(k, "bob", "presence").etag)
    assert.are.equal(etags[3], one_row(k, "alice", "dialog").etag)
    assert.are.equal(pubs[3].body, one_row(k, "alice", "dialog").body)

    ua:close()
    assert.is_true(ua.closed)
    -- sip.run() itself returns once the removes are answered and the socket released
    assert.is_true(loop.run_until(nil, WAIT), "sip.run() did not return\n" .. k:log_tail(15))

    for i, list in ipairs(events) do
      assert.are.same({ "published", "unpublished" }, names(list), "context " .. i)
      assert.are.equal(200, list[2].status)
      assert.are.equal("closed", pubs[i].state)
    end
    local reqs = k:requests()
    assert.are.equal(6, #reqs)
    local removed = {}
    for i = 4, 6 do
      assert.are.equal(0, reqs[i].expires)
      removed[reqs[i].if_match] = true
    end
    assert.are.same({ [etags[1]] = true, [etags[2]] = true, [etags[3]] = true }, removed)
    table_empty(k)
    assert.has_error(function() ua:publish(AOR, "presence", "x") end)
    no_handler_errors()
  end)

  it("coalesces calls made while the initial is pending into one modify with the newest body", function()
    local pub = ua:publish(AOR, "presence", pidf("alice", "open", "1"), { contentType = PIDF })
    local events = record(pub)
    local newest = pidf("alice", "closed", "3")
    pub:publish(pidf("alice", "open", "2"))
    pub:publish(newest)
    run_until(at_least(2, events), "the initial and the modify 2xx")
    assert.are.same({ "published", "published" }, names(events))
    local reqs = k:requests()
    assert.are.equal(2, #reqs)
    assert.is_nil(reqs[1].if_match)
    assert.are.equal(events[1].etag, reqs[2].if_match)
    assert.are.equal(#newest, reqs[2].length)
    local row = one_row(k, "alice", "presence")
    assert.are.equal(events[2].etag, row.etag)
    assert.are.equal(newest, row.body)
    no_handler_errors()
  end)

  it("close() while the initial is pending leaves nothing published on the ESC", function()
    local pub = ua:publish(AOR, "presence", pidf("alice", "open"), { contentType = PIDF })
    local events = record(pub)
    pub:close()
    run_until(at_least(1, events), "the remove's 2xx")
    assert.are.same({ "unpublished" }, names(events))
    assert.are.equal(200, events[1].status)
    local reqs = k:requests()
    assert.are.equal(2, #reqs)
    assert.is_nil(reqs[1].if_match)
    assert.are.equal(0, reqs[2].expires)
    assert.is_string(reqs[2].if_match)
    table_empty(k)
    no_handler_errors()
  end)
end)
