-- Digest authentication against a real server: Kamailio 5.6 (auth + auth_db modules, users
-- in SQLite, spec/kamailio/kamailio-auth.cfg) challenges every PUBLISH. Checked in three
-- views, as in integration_kamailio_spec.lua: the library's events, the requests Kamailio
-- logged with the credentials each carried and its verdict on them (auth_rc), and the
-- presentity table.
--
-- What Kamailio 5.6 does (verified by hand, and relied upon here): a PUBLISH without
-- credentials gets 407 + Proxy-Authenticate (auth_check) or 401 + WWW-Authenticate
-- (www_authenticate) with qop="auth" and algorithm=MD5 or SHA-256; with nonce_count on, a
-- nonce may be reused while nc increases (a repeated nc gets -4, like an expired nonce, and
-- the config then challenges with stale=true); a nonce from before a restart gets -1 and a
-- plain challenge; a wrong password (-2) or an unknown user (-3) is challenged again with a
-- new nonce, not stale; qop=auth-int responses are never accepted (5.6's auth module
-- compares against an H(entity-body) it never computes).
local K = require "support.kamailio"
local loop = require "support.loop"
local E = require "support.events"
local record, names, at_least = E.record, E.names, E.at_least

local AOR = "sip:alice@example.test"
local REALM = "example.test"
local PASSWORD = "secret"
local USERS = { { "alice", REALM, PASSWORD } }
local PIDF = "application/pidf+xml"
local MIN_EXPIRES = 60
local WAIT = K.WAIT
local table_empty = K.table_empty

local function pidf(basic, note) return K.pidf(AOR, basic, note) end

local function one_row(k) return K.one_row(k, "alice", "presence") end

-- The digest response recomputed here (coreutils hashes) from what went over the wire, for
-- qop auth / auth-int and the non -sess algorithms Kamailio offers.
local function expected_response(algorithm, cred, password, body)
  local H = function(s) return K.hash(algorithm, s) end
  local ha1 = H(cred.username .. ":" .. cred.realm .. ":" .. password)
  local a2 = "PUBLISH:" .. cred.uri
  if cred.qop == "auth-int" then a2 = a2 .. ":" .. H(body or "") end
  if cred.qop then
    return H(table.concat({ ha1, cred.nonce, cred.nc, cred.cnonce, cred.qop, H(a2) }, ":"))
  end
  return H(ha1 .. ":" .. cred.nonce .. ":" .. H(a2))
end

local available, why = K.available { auth = true }

describe("Kamailio with digest authentication #integration #kamailio #auth", function()
  if not available then
    it("is skipped: " .. tostring(why), function() pending(why) end)
    return
  end

  local fx = K.fixture(before_each, after_each)
  local run_until, no_handler_errors = fx.run_until, fx.no_handler_errors
  local k, ua

  -- Kamailio with opts (auth on, alice's account) and a UA with `credentials` (a table, or
  -- a function of the started server returning one; default: the right password).
  local function start(opts, credentials)
    opts = opts or {}
    opts.auth, opts.users = true, opts.users or USERS
    opts.min_expires = MIN_EXPIRES
    k = fx:start(opts)
    if type(credentials) == "function" then credentials = credentials(k) end
    local config = { uri = AOR }
    for key, v in pairs(credentials or { password = PASSWORD }) do config[key] = v end
    ua = fx:new_ua(config)
    return k, ua
  end

  -- The first request had no credentials and was challenged; the second answers the
  -- challenge: same Call-ID, CSeq + 1, a new branch, nc 1, accepted. Returns the nonce.
  local function challenged_then_accepted(reqs, header, algorithm, body)
    local first, second = reqs[1], reqs[2]
    assert.is_nil(first.auth_header, "the first PUBLISH carried credentials")
    assert.are.equal(-5, first.auth_rc) -- no credentials: challenged
    assert.are.equal(header, second.auth_header)
    assert.are.equal(1, second.auth_rc, "Kamailio refused the answer to its challenge")
    assert.are.equal(first.call_id, second.call_id)
    assert.are.equal(first.cseq + 1, second.cseq)
    assert.are_not.equal(first.branch, second.branch)
    assert.are.equal(first.length, second.length)
    assert.are.equal(first.expires, second.expires)
    local a = second.auth
    assert.are.same({ "Digest", "alice", REALM, AOR, "auth", "00000001" },
                    { a.scheme, a.username, a.realm, a.uri, a.qop, a.nc })
    assert.are.equal(algorithm, a.algorithm or "MD5")
    assert.are.equal(expected_response(algorithm, a, PASSWORD, body), a.response)
    return a.nonce
  end

  -- reqs[i] was sent with cached credentials (no challenge): the nonce, nc = n, accepted.
  local function preemptive(req, header, nonce, n)
    assert.are.equal(header, req.auth_header, "request " .. req.cseq .. " without credentials")
    assert.are.equal(nonce, req.auth.nonce)
    assert.are.equal(("%08x"):format(n), req.auth.nc)
    assert.are.equal(1, req.auth_rc, "Kamailio refused the cached credentials of CSeq " .. req.cseq)
  end

  local function full_life(header, algorithm)
    local b1, b2 = pidf("open"), pidf("closed", "in a meeting")
    local pub = ua:publish(AOR, "presence", b1, { contentType = PIDF, expires = MIN_EXPIRES })
    local events = record(pub)

    -- initial: challenged once, answered, published; the challenge is not an event
    run_until(at_least(1, events), "the initial 2xx")
    assert.are.same({ "published" }, names(events))
    assert.are.equal(200, events[1].status)
    local reqs = k:requests()
    assert.are.equal(2, #reqs)
    local nonce = challenged_then_accepted(reqs, header, algorithm)
    local row = one_row(k)
    assert.are.equal(events[1].etag, row.etag)
    assert.are.equal(b1, row.body)

    -- refresh: one request, the cached nonce with nc 2
    pub:publish()
    run_until(at_least(2, events), "the refresh 2xx")
    assert.are.same({ "published", "published" }, names(events))
    reqs = k:requests()
    assert.are.equal(3, #reqs, "the refresh was challenged")
    preemptive(reqs[3], header, nonce, 2)
    assert.are.equal(events[1].etag, reqs[3].if_match)
    assert.are.equal(0, reqs[3].length)
    assert.are.equal(expected_response(algorithm, reqs[3].auth, PASSWORD), reqs[3].auth.response)
    assert.are.equal(events[2].etag, one_row(k).etag)

    -- modify: nc 3
    pub:publish(b2)
    run_until(at_least(3, events), "the modify 2xx")
    reqs = k:requests()
    assert.are.equal(4, #reqs, "the modify was challenged")
    preemptive(reqs[4], header, nonce, 3)
    assert.are.equal(events[2].etag, reqs[4].if_match)
    assert.are.equal(#b2, reqs[4].length)
    row = one_row(k)
    assert.are.equal(events[3].etag, row.etag)
    assert.are.equal(b2, row.body)

    -- remove: nc 4
    pub:unpublish()
    run_until(at_least(4, events), "the remove 2xx")
    assert.are.same({ "published", "published", "published", "unpublished" }, names(events))
    assert.are.equal(200, events[4].status)
    reqs = k:requests()
    assert.are.equal(5, #reqs, "the remove was challenged")
    preemptive(reqs[5], header, nonce, 4)
    assert.are.equal(0, reqs[5].expires)
    assert.are.equal(events[3].etag, reqs[5].if_match)
    table_empty(k)

    for i = 2, #reqs do
      assert.are.equal(reqs[1].call_id, reqs[i].call_id)
      assert.are.equal(reqs[i - 1].cseq + 1, reqs[i].cseq)
    end
    no_handler_errors()
  end

  it("MD5, 407: challenged once, then refresh, modify and remove with the cached nonce (nc 2, 3, 4)", function()
    start { algorithm = "MD5", challenge = 407 }
    full_life("Proxy-Authorization", "MD5")
  end)

  it("MD5, 401: WWW-Authenticate answered with Authorization, same life", function()
    start { algorithm = "MD5", challenge = 401 }
    full_life("Authorization", "MD5")
  end)

  it("SHA-256 (RFC 8760): same life, 64-digit responses", function()
    start { algorithm = "SHA-256", challenge = 407 }
    full_life("Proxy-Authorization", "SHA-256")
    assert.are.equal(64, #k:requests()[2].auth.response)
  end)

  -- HA1 as stored in Kamailio's subscriber table: H(alice:example.test:secret).
  local function stored_ha1(server)
    local rows = server:subscribers()
    assert.are.equal(1, #rows)
    return rows[1].ha1
  end

  it("an MD5 ha1 (as in the subscriber table) instead of the password: same life", function()
    start({ algorithm = "MD5", challenge = 401 }, function(server)
      local ha1 = stored_ha1(server)
      assert.are.equal(32, #ha1)
      return { ha1 = ha1 }
    end)
    full_life("Authorization", "MD5")
  end)

  it("a SHA-256 ha1 given in a table by algorithm: same life", function()
    start({ algorithm = "SHA-256", challenge = 407 }, function(server)
      local ha1 = stored_ha1(server)
      assert.are.equal(64, #ha1)
      return { ha1 = { ["SHA-256"] = ha1 }, authorizationUser = "alice", realm = REALM }
    end)
    full_life("Proxy-Authorization", "SHA-256")
  end)

  it("a wrong password: challenged again (not stale), failed(401 Unauthorized), unpublished, nothing stored", function()
    start({ algorithm = "MD5", challenge = 401 }, { password = "wrong" })
    local pub = ua:publish(AOR, "presence", pidf("open"), { contentType = PIDF, expires = MIN_EXPIRES })
    local events = record(pub)
    run_until(at_least(2, events), "failed and unpublished")
    assert.are.same({ "failed", "unpublished" }, names(events))
    assert.are.equal(401, events[1].status)
    assert.are.equal("Unauthorized", events[1].cause)
    assert.is_nil(pub.etag)
    -- no third request, even a while later
    loop.run_until(function() return false end, 0.3)
    local reqs = k:requests()
    assert.are.equal(2, #reqs)
    assert.are.equal(-5, reqs[1].auth_rc)
    assert.are.equal("Authorization", reqs[2].auth_header)
    assert.are.equal(-2, reqs[2].auth_rc) -- wrong password
    assert.are.same({}, k:presentities())
    no_handler_errors()
  end)

  -- One PUBLISH that fails authentication; returns its events and Kamailio's requests
  -- after a short quiet period (no further request may follow).
  local function publish_and_fail()
    local pub = ua:publish(AOR, "presence", pidf("open"), { contentType = PIDF, expires = MIN_EXPIRES })
    local events = record(pub)
    run_until(at_least(2, events), "failed and unpublished")
    loop.run_until(function() return false end, 0.3)
    assert.are.same({ "failed", "unpublished" }, names(events))
    assert.is_nil(pub.etag)
    assert.are.same({}, k:presentities())
    return events, k:requests()
  end

  it("407: a wrong password fails with 407 Proxy Authentication Required, after one retry", function()
    start({ challenge = 407 }, { password = "wrong" })
    local events, reqs = publish_and_fail()
    assert.are.equal(407, events[1].status)
    assert.are.equal("Proxy Authentication Required", events[1].cause)
    assert.are.equal(407, events[2].status)
    assert.are.equal(2, #reqs)
    assert.are.same({ -5, -2 }, { reqs[1].auth_rc, reqs[2].auth_rc })
    no_handler_errors()
  end)

  it("an unknown authorizationUser fails the same way (Kamailio: -3, unknown user)", function()
    start({ challenge = 407 }, { password = PASSWORD, authorizationUser = "bob" })
    local events, reqs = publish_and_fail()
    assert.are.equal(407, events[1].status)
    assert.are.equal(2, #reqs)
    assert.are.equal("bob", reqs[2].auth.username)
    assert.are.same({ -5, -3 }, { reqs[1].auth_rc, reqs[2].auth_rc })
    no_handler_errors()
  end)

  it("a realm restriction that does not match: the challenge is not answered at all", function()
    start({ challenge = 407 }, { password = PASSWORD, realm = "other.test" })
    local events, reqs = publish_and_fail()
    assert.are.equal(407, events[1].status)
    assert.are.equal(1, #reqs)
    assert.is_nil(reqs[1].auth_header)
    no_handler_errors()
  end)

  it("423 after authentication: the retry with Min-Expires carries the cached nonce with nc 2", function()
    start { challenge = 407 }
    local b1 = pidf("open")
    local pub = ua:publish(AOR, "presence", b1, { contentType = PIDF, expires = 10 })
    local events = record(pub)
    run_until(at_least(2, events), "423 then the 2xx")
    assert.are.same({ "progress", "published" }, names(events))
    assert.are.equal(423, events[1].status)
    local reqs = k:requests()
    assert.are.equal(3, #reqs)
    local nonce = challenged_then_accepted(reqs, "Proxy-Authorization", "MD5")
    assert.are.equal(10, reqs[2].expires)
    preemptive(reqs[3], "Proxy-Authorization", nonce, 2)
    assert.are.equal(MIN_EXPIRES, reqs[3].expires)
    assert.are.equal(reqs[2].cseq + 1, reqs[3].cseq)
    assert.are.equal(b1, one_row(k).body)
    no_handler_errors()
  end)

  it("a cached nonce the server no longer knows (restarted) is challenged: one retry, published", function()
    start { challenge = 407 }
    local pub = ua:publish(AOR, "presence", pidf("open"), { contentType = PIDF, expires = MIN_EXPIRES })
    local events = record(pub)
    run_until(at_least(1, events), "the initial 2xx")
    local old_nonce = k:requests()[2].auth.nonce
    k:restart() -- a new nonce secret; the published state stays in the database
    pub:publish()
    run_until(at_least(2, events), "the refresh 2xx")
    assert.are.same({ "published", "published" }, names(events))
    local reqs = k:requests()
    assert.are.equal(2, #reqs)
    assert.are.equal(old_nonce, reqs[1].auth.nonce)
    assert.are.equal("00000002", reqs[1].auth.nc)
    assert.is_true(reqs[1].auth_rc < 0, "the old nonce was accepted")
    assert.are_not.equal(old_nonce, reqs[2].auth.nonce)
    assert.are.equal("00000001", reqs[2].auth.nc)
    assert.are.equal(1, reqs[2].auth_rc)
    assert.are.equal(events[1].etag, reqs[2].if_match)
    assert.are.equal(reqs[1].cseq + 1, reqs[2].cseq)
    assert.are.equal(events[2].etag, one_row(k).etag)
    no_handler_errors()
  end)

  it("an expired nonce gets a stale=true challenge: answered with the new nonce, published", function()
    start { challenge = 401, nonce_expire = 1 }
    local pub = ua:publish(AOR, "presence", pidf("open"), { contentType = PIDF, expires = MIN_EXPIRES })
    local events = record(pub)
    run_until(at_least(1, events), "the initial 2xx")
    local old_nonce = k:requests()[2].auth.nonce
    loop.run_until(function() return false end, 2.2) -- let the nonce expire
    pub:publish()
    run_until(at_least(2, events), "the refresh 2xx")
    assert.are.same({ "published", "published" }, names(events))
    local reqs = k:requests()
    assert.are.equal(4, #reqs)
    assert.are.equal(old_nonce, reqs[3].auth.nonce)
    assert.are.equal(-4, reqs[3].auth_rc) -- stale
    assert.are_not.equal(old_nonce, reqs[4].auth.nonce)
    assert.are.equal("00000001", reqs[4].auth.nc)
    assert.are.equal(1, reqs[4].auth_rc)
    no_handler_errors()
  end)

  it("no qop offered: RFC 2069 responses, the nonce reused without nc", function()
    start { challenge = 407, qop = "none" }
    local pub = ua:publish(AOR, "presence", pidf("open"), { contentType = PIDF, expires = MIN_EXPIRES })
    local events = record(pub)
    run_until(at_least(1, events), "the initial 2xx")
    pub:unpublish()
    run_until(at_least(2, events), "the remove 2xx")
    assert.are.same({ "published", "unpublished" }, names(events))
    local reqs = k:requests()
    assert.are.equal(3, #reqs)
    assert.are.same({ -5, 1, 1 }, { reqs[1].auth_rc, reqs[2].auth_rc, reqs[3].auth_rc })
    for i = 2, 3 do
      local a = reqs[i].auth
      assert.is_nil(a.qop)
      assert.is_nil(a.nc)
      assert.is_nil(a.cnonce)
      assert.are.equal(expected_response("MD5", a, PASSWORD), a.response)
    end
    assert.are.equal(reqs[2].auth.nonce, reqs[3].auth.nonce)
    table_empty(k)
    no_handler_errors()
  end)

  it("qop=auth-int: the response hashes the body (recomputed here); Kamailio 5.6 cannot verify it", function()
    start { challenge = 407, qop = "auth-int" }
    local body = pidf("open")
    local pub = ua:publish(AOR, "presence", body, { contentType = PIDF, expires = MIN_EXPIRES })
    local events = record(pub)
    run_until(at_least(2, events), "the outcome")
    local reqs = k:requests()
    assert.are.equal(2, #reqs)
    local a = reqs[2].auth
    assert.are.same({ "auth-int", "00000001" }, { a.qop, a.nc })
    assert.are.equal(expected_response("MD5", a, PASSWORD, body), a.response)
    -- Kamailio 5.6's auth_check_response() compares against H(entity-body) it never computes
    -- (an uninitialised buffer), so it answers every auth-int response as a wrong password.
    if reqs[2].auth_rc == 1 then
      assert.are.same({ "published" }, { names(events)[1] })
    else
      assert.are.equal(-2, reqs[2].auth_rc)
      assert.are.same({ "failed", "unpublished" }, names(events))
      assert.are.equal(407, events[1].status)
    end
    no_handler_errors()
  end)

  it("two publications share the nonce (nc counts on across them); ua:close() removes both", function()
    start { challenge = 407 }
    local p1 = ua:publish(AOR, "presence", pidf("open"), { contentType = PIDF, expires = MIN_EXPIRES })
    local e1 = record(p1)
    run_until(at_least(1, e1), "the first initial 2xx")
    local p2 = ua:publish(AOR, "dialog", ([[<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:alice@example.test"/>
]]), { contentType = "application/dialog-info+xml", expires = MIN_EXPIRES })
    local e2 = record(p2)
    run_until(at_least(1, e2), "the second initial 2xx")
    ua:close()
    assert.is_true(loop.run_until(nil, WAIT), "sip.run() did not return\n" .. k:log_tail(15))
    assert.are.same({ "published", "unpublished" }, names(e1))
    assert.are.same({ "published", "unpublished" }, names(e2))
    local reqs = k:requests()
    assert.are.equal(5, #reqs) -- challenge, answer, second initial, two removes
    local nonce = challenged_then_accepted(reqs, "Proxy-Authorization", "MD5")
    assert.are_not.equal(reqs[1].call_id, reqs[3].call_id)
    for i = 3, 5 do preemptive(reqs[i], "Proxy-Authorization", nonce, i - 1) end
    table_empty(k)
    no_handler_errors()
  end)
end)
