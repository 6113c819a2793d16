-- gen_corpus.lua — writes the seed corpora of the fuzz targets (fuzz/corpus/*) from the
-- readable templates below: `lua5.4 fuzz/gen_corpus.lua` after changing them (fuzz/README.md).
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."

local SEP = "\255"
local H = "Via: $V\r\nFrom: $F\r\nTo: $T;tag=srv1\r\nCall-ID: $I\r\nCSeq: $C\r\n"
local COMPACT = "v: $V\r\nf: $F\r\nt: $T;tag=srv1\r\ni: $I\r\nCSeq: $C\r\n"
local FOLDED = "Via:\r\n  $V\r\nFrom: $F\r\nTo:\r\n\t$T;tag=srv1\r\nCall-ID: $I\r\nCSeq: $N\r\n PUBLISH\r\n"

local function resp(code, reason, extra, body, hdrs, cl)
  return ("SIP/2.0 %d %s\r\n%s%s%s\r\n%s"):format(code, reason, hdrs or H, extra or "",
                                                   cl or "Content-Length: $L\r\n", body or "")
end
local function T(idx, text) return "T" .. string.char(idx) .. text end -- answers the idx-th newest request
local function R(text) return "R" .. text end                           -- a raw datagram
local function K(ms) return "K" .. string.char(ms // 65536 % 256, ms // 256 % 256, ms % 256) end
local function U(pub, action, body) return "U" .. string.char(pub, action) .. (body or "") end

local ok = resp(200, "OK", "SIP-ETag: e9\r\nExpires: 60\r\n")
local WWW = "WWW-Authenticate: Digest "
local seeds = {
  ["200_etag_expires"] = { T(0, ok) },
  ["200_no_etag"] = { T(0, resp(200, "OK", "Expires: 60\r\n")) },
  ["200_no_expires"] = { T(0, resp(200, "OK", "SIP-ETag: e9\r\n")) },
  ["200_expires_0"] = { T(1, resp(200, "OK", "SIP-ETag: e9\r\nExpires: 0\r\n")) },
  ["202_accepted"] = { T(2, resp(202, "Accepted", "SIP-ETag: x\r\nExpires: 7200\r\n")) },
  ["100_then_200"] = { T(0, resp(100, "Trying")), T(0, resp(183, "Session Progress")), T(0, ok) },
  ["200_twice"] = { T(3, ok), T(3, ok), K(6000), T(3, ok) },
  ["412"] = { T(0, resp(412, "Conditional Request Failed")) },
  ["412_then_412"] = { T(5, resp(412, "Conditional Request Failed")), T(0, resp(412, "Conditional Request Failed")) },
  ["423_min_expires"] = { T(0, resp(423, "Interval Too Brief", "Min-Expires: 1800\r\n")) },
  ["423_no_min"] = { T(4, resp(423, "Interval Too Brief")) },
  ["423_bad_min"] = { T(0, resp(423, "Interval Too Brief", "Min-Expires: abc\r\n")) },
  ["423_repeat"] = { T(0, resp(423, "Interval Too Brief", "Min-Expires: 1800\r\n")),
                     T(0, resp(423, "Interval Too Brief", "Min-Expires: 3600\r\n")),
                     T(0, resp(423, "Interval Too Brief", "Min-Expires: 7200\r\n")) },
  ["489"] = { T(0, resp(489, "Bad Event", "Allow-Events: presence\r\n")) },
  ["500"] = { T(1, resp(500, "Server Internal Error")) },
  ["503_retry_after"] = { T(2, resp(503, "Service Unavailable", "Retry-After: 5\r\n")) },
  ["408"] = { T(0, resp(408, "Request Timeout")) },
  ["401_md5"] = { T(0, resp(401, "Unauthorized", WWW .. 'realm="example.com", nonce="n1", qop="auth", algorithm=MD5\r\n')),
                  T(0, ok) },
  ["401_sha256_int"] = { T(0, resp(401, "Unauthorized",
      WWW .. 'realm="example.com", nonce="n2", qop="auth-int,auth", algorithm=SHA-256, opaque="op"\r\n' ..
      WWW .. 'realm="example.com", nonce="n3", algorithm=MD5\r\n')) },
  ["401_stale"] = { T(0, resp(401, "Unauthorized", WWW .. 'realm="r", nonce="n1", qop="auth"\r\n')),
                    T(0, resp(401, "Unauthorized", WWW .. 'realm="r", nonce="n2", qop="auth", stale=true\r\n')),
                    T(0, resp(401, "Unauthorized", WWW .. 'realm="r", nonce="n3", qop="auth", stale=TRUE\r\n')) },
  ["407_sess"] = { T(0, resp(407, "Proxy Authentication Required",
      'Proxy-Authenticate: Digest realm="proxy", nonce="p1", qop=auth, algorithm=SHA-512-256-sess\r\n')),
      T(0, ok), U(1, 1), T(0, ok) },
  ["401_no_header"] = { T(0, resp(401, "Unauthorized")) },
  compact = { T(0, resp(200, "OK", "SIP-ETag: c1\r\nExpires: 120\r\n", nil, COMPACT, "l: $L\r\n")) },
  folded = { T(0, resp(200, "OK", "SIP-ETag:\r\n e7\r\nExpires: 30\r\n", nil, FOLDED)) },
  body = { T(0, resp(200, "OK", "SIP-ETag: b1\r\nContent-Type: text/plain\r\n", "hello world")) },
  cl_short = { T(0, resp(200, "OK", "SIP-ETag: b1\r\n", "hello world", nil, "Content-Length: 3\r\n")) },
  cl_long = { T(0, resp(200, "OK", "SIP-ETag: b1\r\n", "hi", nil, "Content-Length: 300\r\n")) },
  two_vias = { T(0, resp(200, "OK", "SIP-ETag: v\r\n", nil, "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n" .. H)) },
  wrong_callid = { T(0, resp(200, "OK", "SIP-ETag: w\r\n", nil, "Via: $V\r\nFrom: $F\r\nTo: $T\r\nCall-ID: other\r\nCSeq: $C\r\n")) },
  wrong_cseq = { T(0, resp(200, "OK", "SIP-ETag: w\r\n", nil, "Via: $V\r\nFrom: $F\r\nTo: $T\r\nCall-ID: $I\r\nCSeq: 1 INVITE\r\n")) },
  spoof_branch = { R("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK0123456789abcdef;rport\r\n" ..
                     "From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 PUBLISH\r\nContent-Length: 0\r\n\r\n") },
  request = { R("PUBLISH sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKa\r\n" ..
                "From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 PUBLISH\r\nContent-Length: 0\r\n\r\n") },
  garbage = { R("\0\1\2SIP/2.0\r\n\r\n"), "", R("SIP/2.0 200\r\n\r\n") },
  timers = { K(500), K(1000), K(2000), K(32000), K(5000), K(3240000) },
  user_calls = { U(1, 0, "new body"), T(0, ok), U(1, 2), T(0, resp(200, "OK", "Expires: 0\r\n")),
                 U(0, 3), U(2, 4), U(3, 5), K(500), U(4, 6), U(5, 7), U(1, 0, "after close") },
  mixed = { T(0, resp(100, "Trying")), K(4000), T(0, ok), K(54000), T(0, resp(412, "Conditional Request Failed")),
            T(0, resp(423, "Interval Too Brief", "Min-Expires: 3600\r\n")), T(0, ok), U(0, 3), T(0, ok) },
}

-- fuzz_pubnew: a flags byte, then NUL-separated target, event, content type, body, extra headers.
local function P(flags, ...) return string.char(flags) .. table.concat({ ... }, "\0") end
local all = {}
for i = 1, 254 do all[i] = string.char(i) end
local pseeds = {
  plain = P(0, "sip:alice@example.com", "presence", "application/pidf+xml", "<presence/>", "X-A: 1"),
  no_proxy_port = P(1, "sip:bob@example.org:5080;transport=udp", "dialog", "application/dialog-info+xml", "B"),
  sips_user_params = P(4, "sips:a%20b@[::1]:5061;lr?X=1", "message-summary", "text/plain", "Messages-Waiting: yes",
                       "Priority: urgent", "X-Empty:", "X-Tab:\tv"),
  crlf_event = P(0, "sip:a@b", "presence\r\nX-Injected: 1", "text/plain", "b"),
  crlf_ctype = P(0, "sip:a@b", "presence", "text/plain\r\nX-Injected: 1", "b"),
  crlf_target = P(1, "sip:a@b\r\nX-Injected: 1", "presence", "text/plain", "b"),
  crlf_extra = P(0, "sip:a@b", "presence", "text/plain", "b", "X-A: 1\r\nX-Injected: 2"),
  lf_extra = P(0, "sip:a@b", "presence", "text/plain", "b", "X-A: 1\nVia: evil"),
  binary_body = P(8, "sip:a@b", "presence", "application/octet-stream", table.concat(all)),
  default_ctype = P(2, "sip:a@b", "presence", "", "body"),
  expires_0 = P(12, "sip:a@b", "presence", "text/plain", "body"),
  angle_uri = P(0, "sip:a@b>;x=<c", "presence", "text/plain", "b"),
  quote_uri = P(1, 'sip:"a"@b', "presence", "text/plain", "b"),
}

local function write(dir, name, data)
  local f = assert(io.open(here .. "/corpus/" .. dir .. "/" .. name, "wb"))
  f:write(data)
  f:close()
end
for name, chunks in pairs(seeds) do write("response", name, table.concat(chunks, SEP)) end
for name, data in pairs(pseeds) do write("pubnew", name, data) end
