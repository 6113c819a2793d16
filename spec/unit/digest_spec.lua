-- Digest authentication (RFC 3261 §22, RFC 7616, RFC 8760): fixed vectors checked against
-- published examples and an independent computation with the openssl command, and the
-- retry rules on the wire (virtual clock).
local sip = require "sip"
local core = require "sip.core"
local testing = require "sip.testing"

local TARGET = require("support.common").TARGET
local OPENSSL_NAMES = { ["MD5"] = "md5", ["SHA-256"] = "sha256", ["SHA-512-256"] = "sha512-256" }

-- H(data) computed by the openssl command, independently of the library.
local function H(alg, data)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  local p = assert(io.popen("openssl dgst -" .. OPENSSL_NAMES[alg] .. " -r " .. path))
  local out = p:read("*a")
  p:close()
  os.remove(path)
  return assert(out:match("^(%x+)"), out)
end

-- The request-digest as RFC 7616 §3.4.1 defines it, from H alone.
local function expected(alg, sess, qop, user, realm, password, nonce, cnonce, nc, method, uri, body)
  local ha1 = H(alg, user .. ":" .. realm .. ":" .. password)
  if sess then ha1 = H(alg, ha1 .. ":" .. nonce .. ":" .. cnonce) end
  local ha2 = qop == "auth-int" and H(alg, method .. ":" .. uri .. ":" .. H(alg, body or ""))
              or H(alg, method .. ":" .. uri)
  if not qop then return H(alg, ha1 .. ":" .. nonce .. ":" .. ha2) end
  return H(alg, table.concat({ ha1, nonce, nc, cnonce, qop, ha2 }, ":"))
end

-- Parameters of an Authorization value: { username=..., response=..., ... } (unquoted).
local function params(value)
  local scheme, rest = value:match("^(%S+)%s+(.*)$")
  local t = { scheme = scheme }
  for k, v in rest:gmatch('([%w-]+)=("[^"]*")') do t[k] = v:sub(2, -2) end
  for k, v in rest:gmatch('([%w-]+)=([^",%s]+)') do t[k] = t[k] or v end
  return t
end

local function challenge(kind, fields)
  return { headers = { { kind or "WWW-Authenticate", "Digest " .. fields } } }
end

local function start(config, body)
  config = config or {}
  config.password = config.password == nil and "secret" or config.password
  if config.password == false then config.password = nil end
  local ua, net = testing.new_ua(config)
  local ctx = ua:publish(TARGET, "presence", body or "B1", { contentType = "application/pidf+xml",
                                                            extraHeaders = { "X-Trace: 7" } })
  return ua, net, ctx, testing.record(ctx), net:take()
end

local function names(rec)
  local out = {}
  for i, e in ipairs(rec) do out[i] = ("%s(%s,%s)"):format(e.event, tostring(e.status), e.cause) end
  return out
end

describe("digest vectors", function()
  it("RFC 2617 §3.5 (MD5, qop=auth)", function()
    assert.are.equal("6629fae49393a05397450978507c4ef1", core.digest {
      algorithm = "MD5", user = "Mufasa", realm = "testrealm@host.com", password = "Circle Of Life",
      nonce = "dcd98b7102dd2f0e8b11d0f600bfb0c093", cnonce = "0a4f113b", nc = 1, qop = "auth",
      method = "GET", uri = "/dir/index.html" })
  end)

  it("RFC 7616 §3.9.1 (SHA-256 and MD5, qop=auth)", function()
    local v = { user = "Mufasa", realm = "http-auth@example.org", password = "Circle of Life",
                nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
                cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", nc = 1, qop = "auth",
                method = "GET", uri = "/dir/index.html" }
    v.algorithm = "SHA-256"
    assert.are.equal("753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", core.digest(v))
    v.algorithm = "MD5"
    assert.are.equal("8ca523f5e9506fed4657c9700eebdbec", core.digest(v))
  end)

  for _, alg in ipairs { "MD5", "SHA-256", "SHA-512-256" } do
    for _, sess in ipairs { false, true } do
      for _, qop in ipairs { "auth", "auth-int", false } do
        local name = alg .. (sess and "-sess" or "") .. " qop=" .. tostring(qop)
        it(name .. " for PUBLISH matches openssl", function()
          local body = "<presence entity='sip:alice@example.com'>\r\nopen</presence>"
          local got = core.digest {
            algorithm = alg .. (sess and "-sess" or ""), user = "alice", realm = "example.com",
            password = "s3cr3t", nonce = "4f1c2b9a", cnonce = "0123abcd", nc = 7,
            qop = qop or nil, method = "PUBLISH", uri = TARGET, body = body }
          assert.are.equal(expected(alg, sess, qop or nil, "alice", "example.com", "s3cr3t",
                                    "4f1c2b9a", "0123abcd", "00000007", "PUBLISH", TARGET, body), got)
        end)
      end
    end
  end

  it("an ha1 gives the same answer as the password", function()
    local ha1 = H("MD5", "alice:example.com:s3cr3t")
    local v = { algorithm = "MD5-sess", user = "alice", realm = "example.com", nonce = "n",
                cnonce = "c", nc = 1, qop = "auth", method = "PUBLISH", uri = TARGET }
    v.password = "s3cr3t"
    local a = core.digest(v)
    v.password, v.ha1 = nil, ha1
    assert.are.equal(a, core.digest(v))
  end)
end)

describe("digest on the wire", function()
  it("401 then 200: the retry answers the challenge, CSeq + 1, same dialog, new branch, no progress", function()
    local _, net, ctx, rec, req = start()
    assert.is_nil(req:header("Authorization"))
    net:reply(req, 401, challenge(nil, 'realm="example.com", nonce="n1", qop="auth", algorithm=MD5, opaque="op1"'))
    local retry = net:take()
    assert.are.same({}, rec) -- an answered challenge is not an event
    assert.are.equal(req.cseq + 1, retry.cseq)
    assert.are.equal(req.call_id, retry.call_id)
    assert.are.equal(req.from_tag, retry.from_tag)
    assert.are_not.equal(req.branch, retry.branch)
    assert.are.equal(req.body, retry.body)
    assert.are.equal("7", retry:header("X-Trace"))
    assert.are.equal(1, #retry:headers("X-Trace"))
    local a = params(retry:header("Authorization"))
    assert.are.equal("Digest", a.scheme)
    assert.are.same({ "alice", "example.com", "n1", TARGET, "MD5", "auth", "00000001", "op1" },
                    { a.username, a.realm, a.nonce, a.uri, a.algorithm, a.qop, a.nc, a.opaque })
    assert.is_truthy(a.cnonce and #a.cnonce >= 16)
    assert.are.equal(expected("MD5", false, "auth", "alice", "example.com", "secret", "n1", a.cnonce,
                              "00000001", "PUBLISH", TARGET), a.response)
    net:reply(retry, 200, { ["SIP-ETag"] = "e1", Expires = 3600 })
    assert.are.same({ "published(200,OK)" }, names(rec))
    assert.are.equal("e1", ctx.etag)
  end)

  it("407 then 200: Proxy-Authorization from Proxy-Authenticate", function()
    local _, net, _, rec, req = start()
    net:reply(req, 407, challenge("Proxy-Authenticate", 'realm="proxy.example.com", nonce="p1", algorithm=SHA-256, qop="auth"'))
    local retry = net:take()
    assert.is_nil(retry:header("Authorization"))
    local a = params(retry:header("Proxy-Authorization"))
    assert.are.equal("SHA-256", a.algorithm)
    assert.are.equal(expected("SHA-256", false, "auth", "alice", "proxy.example.com", "secret", "p1",
                              a.cnonce, a.nc, "PUBLISH", TARGET), a.response)
    net:reply(retry, 200, { ["SIP-ETag"] = "e1" })
    assert.are.same({ "published(200,OK)" }, names(rec))
  end)

  it("a second challenge fails: failed(401), unpublished(401), no third request", function()
    local _, net, _, rec, req = start()
    local ch = challenge(nil, 'realm="example.com", nonce="n1", qop="auth"')
    net:reply(req, 401, ch)
    net:reply(net:take(), 401, ch)
    assert.are.same({ "failed(401,Unauthorized)", "unpublished(401,Unauthorized)" }, names(rec))
    net:advance(40)
    net:none()
  end)

  it("stale=true allows one more retry with the new nonce, then fails", function()
    local _, net, _, rec, req = start()
    net:reply(req, 401, challenge(nil, 'realm="example.com", nonce="n1", qop="auth"'))
    local r2 = net:take()
    net:reply(r2, 401, challenge(nil, 'realm="example.com", nonce="n2", qop="auth", stale=true'))
    local r3 = net:take()
    assert.are.equal(req.cseq + 2, r3.cseq)
    assert.are.equal("n2", params(r3:header("Authorization")).nonce)
    assert.are.equal("00000001", params(r3:header("Authorization")).nc) -- a new nonce counts from 1
    assert.are.same({}, rec)
    net:reply(r3, 401, challenge(nil, 'realm="example.com", nonce="n3", qop="auth", stale=true'))
    assert.are.same({ "failed(401,Unauthorized)", "unpublished(401,Unauthorized)" }, names(rec))
    net:none()
  end)

  it("401 without a challenge header fails at once", function()
    local _, net, _, rec, req = start()
    net:reply(req, 401)
    assert.are.same({ "failed(401,Unauthorized)", "unpublished(401,Unauthorized)" }, names(rec))
    net:none()
  end)

  it("without credentials a 401 is a failure", function()
    local _, net, _, rec, req = start { password = false }
    net:reply(req, 401, challenge(nil, 'realm="example.com", nonce="n1"'))
    assert.are.same({ "failed(401,Unauthorized)", "unpublished(401,Unauthorized)" }, names(rec))
    net:none()
  end)

  it("refresh, modify and remove reuse the nonce with nc 2, 3, 4: one round trip each", function()
    local _, net, ctx, rec, req = start()
    net:reply(req, 401, challenge(nil, 'realm="example.com", nonce="n1", qop="auth"'))
    net:reply(net:take(), 200, { ["SIP-ETag"] = "e1", Expires = 60 })
    net:advance(54)
    local refresh = net:take()
    local a = params(refresh:header("Authorization"))
    assert.are.same({ "n1", "00000002" }, { a.nonce, a.nc })
    assert.are.equal(expected("MD5", false, "auth", "alice", "example.com", "secret", "n1", a.cnonce,
                              "00000002", "PUBLISH", TARGET), a.response)
    net:reply(refresh, 200, { ["SIP-ETag"] = "e2", Expires = 60 })
    ctx:publish("B2")
    local modify = net:take()
    assert.are.equal("00000003", params(modify:header("Authorization")).nc)
    net:reply(modify, 200, { ["SIP-ETag"] = "e3", Expires = 60 })
    ctx:unpublish()
    local remove = net:take()
    assert.are.equal("00000004", params(remove:header("Authorization")).nc)
    net:reply(remove, 200)
    assert.are.same({ "published(200,OK)", "published(200,OK)", "published(200,OK)", "unpublished(200,OK)" },
                    names(rec))
  end)

  it("a refused cached nonce falls back to the challenge (one retry)", function()
    local _, net, _, rec, req = start()
    net:reply(req, 401, challenge(nil, 'realm="example.com", nonce="n1", qop="auth"'))
    net:reply(net:take(), 200, { ["SIP-ETag"] = "e1", Expires = 60 })
    net:advance(54)
    local refresh = net:take()
    assert.are.equal("n1", params(refresh:header("Authorization")).nonce)
    net:reply(refresh, 401, challenge(nil, 'realm="example.com", nonce="n9", qop="auth"'))
    local retry = net:take()
    assert.are.same({ "n9", "00000001" }, { params(retry:header("Authorization")).nonce,
                                             params(retry:header("Authorization")).nc })
    assert.are.equal("e1", retry:header("SIP-If-Match"))
    assert.is_nil(retry.body)
    net:reply(retry, 200, { ["SIP-ETag"] = "e2", Expires = 60 })
    assert.are.same({ "published(200,OK)", "published(200,OK)" }, names(rec))
  end)

  it("picks the strongest algorithm among several challenges (RFC 8760)", function()
    local _, net, _, _, req = start()
    net:reply(req, 401, { headers = {
      { "WWW-Authenticate", 'Digest realm="example.com", nonce="a", algorithm=MD5, qop="auth"' },
      { "WWW-Authenticate", 'Digest realm="example.com", nonce="b", algorithm=SHA-512-256, qop="auth"' },
      { "WWW-Authenticate", 'Digest realm="example.com", nonce="c", algorithm=SHA-256, qop="auth"' },
      { "WWW-Authenticate", 'Digest realm="example.com", nonce="d", algorithm=UNKNOWN-99, qop="auth"' },
    } })
    local a = params(net:take():header("Authorization"))
    assert.are.same({ "SHA-512-256", "b" }, { a.algorithm, a.nonce })
    assert.are.equal(expected("SHA-512-256", false, "auth", "alice", "example.com", "secret", "b",
                              a.cnonce, a.nc, "PUBLISH", TARGET), a.response)
  end)

  it("qop=auth-int hashes the body; no qop gives the RFC 2069 form", function()
    local body = "<presence>x</presence>"
    local _, net, _, _, req = start(nil, body)
    net:reply(req, 401, challenge(nil, 'realm="example.com", nonce="n1", qop="auth-int", algorithm=SHA-256-sess'))
    local a = params(net:take():header("Authorization"))
    assert.are.same({ "auth-int", "SHA-256-sess" }, { a.qop, a.algorithm })
    assert.are.equal(expected("SHA-256", true, "auth-int", "alice", "example.com", "secret", "n1",
                              a.cnonce, a.nc, "PUBLISH", TARGET, body), a.response)

    local _, net2, _, _, req2 = start()
    net2:reply(req2, 401, challenge(nil, 'realm="example.com", nonce="n1"'))
    local b = params(net2:take():header("Authorization"))
    assert.is_nil(b.qop)
    assert.is_nil(b.nc)
    assert.is_nil(b.cnonce)
    assert.are.equal(expected("MD5", false, nil, "alice", "example.com", "secret", "n1", nil, nil,
                              "PUBLISH", TARGET), b.response)
  end)

  it("ha1 instead of the password, authorizationUser, and the realm restriction", function()
    local ha1 = H("MD5", "bob:example.com:pw")
    local _, net, _, _, req = start { password = false, ha1 = ha1, authorizationUser = "bob" }
    net:reply(req, 401, challenge(nil, 'realm="example.com", nonce="n1", qop="auth"'))
    local a = params(net:take():header("Authorization"))
    assert.are.equal("bob", a.username)
    assert.are.equal(expected("MD5", false, "auth", "bob", "example.com", "pw", "n1", a.cnonce, a.nc,
                              "PUBLISH", TARGET), a.response)

    -- an MD5 HA1 cannot answer a SHA-256-only challenge
    local _, net2, _, rec2, req2 = start { password = false, ha1 = ha1 }
    net2:reply(req2, 401, challenge(nil, 'realm="example.com", nonce="n1", algorithm=SHA-256'))
    assert.are.same({ "failed(401,Unauthorized)", "unpublished(401,Unauthorized)" }, names(rec2))

    local _, net3, _, rec3, req3 = start { realm = "example.com" }
    net3:reply(req3, 401, challenge(nil, 'realm="evil.example.net", nonce="n1"'))
    assert.are.same({ "failed(401,Unauthorized)", "unpublished(401,Unauthorized)" }, names(rec3))
    net3:none()
  end)

  it("bad credentials options are refused without echoing the secret", function()
    local function err(config)
      config.uri = config.uri or TARGET
      config.transport = "virtual"
      local ok, e = pcall(sip.UA.new, config)
      assert.is_false(ok)
      return tostring(e)
    end
    local e = err { password = "top\r\nsecret" }
    assert.is_truthy(e:find("password", 1, true), e)
    assert.is_falsy(e:find("secret", 1, true), e)
    assert.is_truthy(err({ ha1 = "xyz" }):find("ha1", 1, true))
    assert.is_truthy(err({ ha1 = { ["SHA-1"] = ("0"):rep(40) } }):find("ha1", 1, true))
    assert.is_truthy(err({ uri = "sip:example.com", password = "x" }):find("authorizationUser", 1, true))
    assert.is_truthy(err({ realm = 5 }):find("realm", 1, true))
  end)
end)
