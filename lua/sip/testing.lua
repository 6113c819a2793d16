--- An in-memory network and a virtual clock for deterministic tests.
--
-- Nothing touches a socket and no real time passes: every request the user agent sends is
-- captured, every response is injected by the test, and timers (refreshes, retransmissions,
-- Timer F) fire only when the test advances the clock. Built on @{sip.vnet}, a driver
-- written in Lua (`transport = "virtual"`).
--
-- **Response options** (`opts` of @{Net:reply}, @{Net:response_for}, @{response_for}):
-- `reason` (default: the standard phrase), `headers` (an array of `{name, value}` pairs, or
-- a map written in name order), `body`, `raw_extra` (header lines appended verbatim, a
-- string or an array), `content_length` (written instead of the real length), `omit` (an
-- array of header names to leave out: `"Via"`, `"From"`, `"To"`, `"Call-ID"`, `"CSeq"`),
-- and `branch` / `cseq` / `call_id` / `method` / `to_tag` overrides for mismatch tests. Any
-- other string key of `opts` is a header too (shorthand: `{ ["SIP-ETag"] = "e1" }`).
-- @module sip.testing
-- @usage
-- local testing = require "sip.testing"
-- local ua, net = testing.new_ua()                -- transport = "virtual", clock at 0
-- local pub = ua:publish("sip:alice@example.com", "presence", "B1")
-- local events = testing.record(pub)              -- { {event=, status=, cause=, response=} }
-- local req = net:take()                          -- the one request sent so far, parsed
-- assert(req:header("Expires") == "3600" and req:header("SIP-If-Match") == nil)
-- net:reply(req, 200, { ["SIP-ETag"] = "e1", Expires = 3600 })
-- net:advance(3240)                               -- virtual seconds: the refresh goes out
-- assert(net:take():header("SIP-If-Match") == "e1")

local check = require "sip.check"

local testing = {}
local unpack = table.unpack or unpack -- luacheck: ignore

local COMPACT = {
  v = "via", f = "from", t = "to", i = "call-id", m = "contact", l = "content-length",
  c = "content-type", e = "content-encoding", o = "event", k = "supported", s = "subject",
  u = "allow-events", r = "refer-to",
}

local function canon(name)
  name = string.lower(name)
  return COMPACT[name] or name
end

-- Splits a Via value on the commas that are outside quoted strings.
local function split_commas(value)
  local out, cur, quoted = {}, {}, false
  for ch in value:gmatch(".") do
    if ch == '"' then quoted = not quoted end
    if ch == "," and not quoted then
      out[#out + 1] = cur; cur = {}
    else
      cur[#cur + 1] = ch
    end
  end
  out[#out + 1] = cur
  for i, chars in ipairs(out) do out[i] = table.concat(chars):match("^%s*(.-)%s*$") end
  return out
end

local function param(value, name)
  if not value then return nil end
  for k, v in (value .. ";"):gmatch(";%s*([^;=%s]+)%s*=?%s*([^;]*)") do
    if k:lower() == name then return (v:gsub("%s+$", "")) end
  end
  return nil
end

---------------------------------------------------------------------------- requests --

--- A request as the test sees it (@{Net:take}, @{Net:sent}, @{parse}).
-- Header names are case-insensitive and compact forms (`v f t i m l c e o k s u`) are
-- understood.
-- @type Request
local Request = {}
Request.__index = Request

--- The fields of a request object.
-- @table Request
-- @tfield string method `"PUBLISH"` (nil for a parsed response, which has `status`)
-- @tfield string uri the request URI
-- @tfield string|nil body nil when empty
-- @tfield string data the raw message
-- @tfield string host where it was sent (the next hop)
-- @tfield int port
-- @tfield string branch the top Via's branch
-- @tfield int cseq the CSeq number
-- @tfield string cseq_method
-- @tfield string call_id
-- @tfield string from_tag
-- @tfield int via_count

--- The first value of a header, or nil.
-- @string name
function Request:header(name)
  local all = self._headers[canon(name)]
  return all and all[1]
end

--- Every value of a header (Via values split on commas).
-- @string name
-- @treturn {string,...}
function Request:headers(name)
  local key = canon(name)
  local all = self._headers[key] or {}
  if key ~= "via" then return { unpack(all) } end
  local out = {}
  for _, v in ipairs(all) do
    for _, one in ipairs(split_commas(v)) do out[#out + 1] = one end
  end
  return out
end

function Request:__tostring()
  local first = self.status and ("SIP/2.0 " .. self.status)
    or ((self.method or "?") .. " " .. (self.uri or "?"))
  local parts = { first }
  for _, h in ipairs { "CSeq", "Expires", "SIP-If-Match", "Content-Type" } do
    local v = self:header(h)
    if v then parts[#parts + 1] = h .. ": " .. v end
  end
  parts[#parts + 1] = "branch=" .. tostring(self.branch)
  parts[#parts + 1] = "body=" .. (self.body and string.format("%q", self.body) or "none")
  return table.concat(parts, "  ")
end

--- Functions.
-- @section functions

--- Parses a raw SIP request (or response: then `status` is set instead of `method`).
-- @string data the raw message
-- @string[opt] host
-- @int[opt] port
-- @treturn Request
function testing.parse(data, host, port)
  if type(data) ~= "string" then
    check.fail("testing.parse", "data", "expected a string, got " .. check.show(data), 2)
  end
  local head, body = data:match("^(.-)\r\n\r\n(.*)$")
  if not head then head, body = data, "" end
  local lines = {}
  for line in (head .. "\r\n"):gmatch("(.-)\r\n") do
    if line:match("^[ \t]") and #lines > 0 then -- folded continuation line
      lines[#lines] = lines[#lines] .. " " .. line:match("^%s*(.*)$")
    else
      lines[#lines + 1] = line
    end
  end
  local req = setmetatable({ data = data, host = host, port = port, _headers = {} }, Request)
  local first = table.remove(lines, 1) or ""
  local status = first:match("^SIP/2%.0 (%d%d%d)")
  if status then
    req.status = tonumber(status)
  else
    req.method, req.uri = first:match("^(%S+) (%S+) SIP/2%.0$")
  end
  for _, line in ipairs(lines) do
    local name, value = line:match("^([^:%s]+)%s*:%s*(.-)%s*$")
    if name then
      local key = canon(name)
      req._headers[key] = req._headers[key] or {}
      table.insert(req._headers[key], value)
    end
  end
  req.body = body ~= "" and body or nil
  local vias = req:headers("Via")
  req.via_count = #vias
  req.branch = param(vias[1], "branch")
  local cseq = req:header("CSeq")
  if cseq then
    local n, m = cseq:match("^(%d+)%s+(%S+)")
    req.cseq, req.cseq_method = tonumber(n), m
  end
  req.call_id = req:header("Call-ID")
  req.from_tag = param(req:header("From"), "tag")
  return req
end

--------------------------------------------------------------------------- responses --

local PHRASES = setmetatable({}, { __index = function(_, code)
  local ok, sip = pcall(require, "sip")
  local t = ok and type(sip) == "table" and sip.C and sip.C.REASON_PHRASE
  return t and t[code] or "Unknown"
end })

local function header_list(headers)
  local out = {}
  if headers == nil then return out end
  if headers[1] ~= nil or next(headers) == nil then
    for _, pair in ipairs(headers) do out[#out + 1] = { pair[1], pair[2] } end
  else
    for name, value in pairs(headers) do
      if value ~= false then out[#out + 1] = { name, value } end
    end
    table.sort(out, function(a, b) return a[1] < b[1] end)
  end
  return out
end

local OPTION = {
  reason = true, headers = true, body = true, raw_extra = true, content_length = true, omit = true,
  branch = true, cseq = true, call_id = true, method = true, to_tag = true,
}

-- The raw response; argument errors at `level` (3: the caller of the public function that
-- called this one).
local function build_response(fname, req, code, opts, level)
  if type(req) ~= "table" or getmetatable(req) ~= Request then
    check.fail(fname, "req", "expected a request from net:take() or net:sent(), got " ..
               check.show(req), level)
  end
  if type(code) ~= "number" or code < 100 or code > 699 or code ~= math.floor(code) then
    check.fail(fname, "code", "expected a status code 100-699, got " ..
               (type(code) == "number" and tostring(code) or check.show(code)), level)
  end
  if opts ~= nil and type(opts) ~= "table" then
    check.fail(fname, "opts", "expected a table or nil, got " .. check.show(opts), level)
  end
  opts = opts or {}
  local omit = {}
  for _, name in ipairs(opts.omit or {}) do omit[canon(name)] = true end
  local lines = { string.format("SIP/2.0 %d %s", code, opts.reason or PHRASES[code]) }
  local function add(name, value)
    if not omit[canon(name)] then lines[#lines + 1] = name .. ": " .. tostring(value) end
  end
  for i, via in ipairs(req._headers.via or {}) do
    if i == 1 and opts.branch then
      via = via:gsub("branch=[^;,%s]*", "branch=" .. opts.branch, 1)
    end
    add("Via", via)
  end
  add("From", req:header("From"))
  local to = req:header("To") or ""
  if not param(to, "tag") then to = to .. ";tag=" .. (opts.to_tag or "vt1") end
  add("To", to)
  add("Call-ID", opts.call_id or req.call_id)
  add("CSeq", string.format("%s %s", opts.cseq or req.cseq, opts.method or req.cseq_method))
  for _, pair in ipairs(header_list(opts.headers)) do add(pair[1], pair[2]) end
  local shorthand = {} -- reply(req, 200, { ["SIP-ETag"] = "e1", Expires = 60 })
  for k, v in pairs(opts) do
    if type(k) == "string" and not OPTION[k] and v ~= false then shorthand[k] = v end
  end
  for _, pair in ipairs(header_list(shorthand)) do add(pair[1], pair[2]) end
  local extra = opts.raw_extra
  if type(extra) == "string" then extra = { extra } end
  for _, line in ipairs(extra or {}) do lines[#lines + 1] = line end
  local body = opts.body or ""
  add("Content-Length", opts.content_length or #body)
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. body
end

--- Builds the raw response to a request (see the response options above).
-- @tparam Request req
-- @int code the status code, 100 to 699
-- @tab[opt] opts response options
-- @treturn string the raw response
function testing.response_for(req, code, opts)
  local raw = build_response("testing.response_for", req, code, opts, 3)
  return raw
end

-------------------------------------------------------------------------------- net --

--- The in-memory network of a test user agent (@{new_ua}'s second result).
-- @type Net
local Net = {}
Net.__index = Net

--- Every request sent since the last call (drained), parsed, oldest first.
-- @treturn {Request,...}
function Net:sent()
  local out = {}
  for _, d in ipairs(self.vnet:take()) do
    out[#out + 1] = testing.parse(d.data, d.host, d.port)
  end
  return out
end

local function describe(list)
  if #list == 0 then return "nothing" end
  local out = {}
  for i, r in ipairs(list) do out[i] = string.format("  %d. %s", i, tostring(r)) end
  return #list .. " requests:\n" .. table.concat(out, "\n")
end

--- Exactly one request: the one sent since the last call.
-- @treturn Request
-- @raise `expected exactly one request at t=…s, sent …` (listing what was sent)
function Net:take()
  local list = self:sent()
  if #list ~= 1 then
    error(string.format("expected exactly one request at t=%gs, sent %s", self:now(),
                        describe(list)), 2)
  end
  return list[1]
end

--- Asserts that nothing was sent since the last call.
-- @raise `expected no request at t=…s, sent …`
function Net:none()
  local list = self:sent()
  if #list ~= 0 then
    error(string.format("expected no request at t=%gs, sent %s", self:now(), describe(list)), 2)
  end
  return true
end

--- The response @{Net:reply} would inject, not injected.
-- @tparam Request req
-- @int code
-- @tab[opt] opts response options
-- @treturn string
function Net:response_for(req, code, opts)
  local raw = build_response("response_for", req, code, opts, 3)
  return raw
end

--- Builds a response to `req`, injects it (from the proxy), and returns it.
-- @tparam Request req
-- @int code
-- @tab[opt] opts response options
-- @treturn string the raw response
function Net:reply(req, code, opts)
  local raw = build_response("reply", req, code, opts, 3)
  self.vnet:receive(raw)
  return raw
end

--- Injects raw bytes as a datagram from the network.
-- @string data
-- @string[opt] host the source (default: the proxy)
-- @int[opt] port
function Net:receive(data, host, port)
  self.vnet:receive(data, host, port)
end

--- Moves the virtual clock on; every timer due meanwhile fires at its own instant.
-- @number seconds ≥ 0 (float)
function Net:advance(seconds)
  if type(seconds) ~= "number" or not (seconds >= 0) then -- not (>=): NaN too
    check.fail("advance", "seconds", "expected a number >= 0, got " ..
               (type(seconds) == "number" and tostring(seconds) or check.show(seconds)), 2)
  end
  self.vnet:advance(math.floor(seconds * 1000 + 0.5))
end

--- The virtual time in seconds.
-- @treturn number
function Net:now() return self.vnet:time() / 1000 end

--- The next `n` sends fail as a socket error would (`Connection Error`).
-- @int[opt=1] n
function Net:fail_sends(n)
  if n ~= nil then check.integer("fail_sends", "n", n, 2, 0) end
  self.vnet:fail_sends(n or 1)
end

--------------------------------------------------------------------------- entry points --

--- Entry points.
-- @section entry

--- A user agent on the in-memory network, its clock at 0.
-- @tparam[opt] table config as for @{sip.UA.new}; defaults `uri = "sip:alice@example.com"`,
-- `outboundProxy = "sip:127.0.0.1:5060"` (`false`: none, requests go to the target's
-- host); `transport` is forced to `"virtual"`
-- @treturn sip.UA
-- @treturn Net
function testing.new_ua(config)
  if config ~= nil and type(config) ~= "table" then
    check.fail("testing.new_ua", "config", "expected a table or nil, got " .. check.show(config), 2)
  end
  local cfg = {}
  for k, v in pairs(config or {}) do cfg[k] = v end
  if cfg.transport ~= nil and cfg.transport ~= "virtual" then
    check.fail("testing.new_ua", "transport", "expected \"virtual\" or nil, got " ..
               check.show(cfg.transport), 2)
  end
  cfg.uri = cfg.uri or "sip:alice@example.com"
  -- outboundProxy (or its alias outbound_proxy): false for none, requests go to the
  -- target's host; both spellings given are left for sip.UA.new to refuse
  local proxy_key = cfg.outboundProxy == nil and cfg.outbound_proxy ~= nil and "outbound_proxy"
                    or "outboundProxy"
  if cfg[proxy_key] == nil then
    cfg[proxy_key] = "sip:127.0.0.1:5060"
  elseif cfg[proxy_key] == false then
    cfg[proxy_key] = nil
  end
  cfg.transport = "virtual"
  local ok, ua = pcall(require("sip").UA.new, cfg)
  if not ok then -- UA.new's message, at new_ua's caller ("testing.new_ua" is not in it)
    error((tostring(ua):gsub("^[^:]*:%d+: ", "")), 2)
  end
  return ua, setmetatable({ ua = ua, core = ua._core, vnet = ua._net }, Net)
end

--- A list receiving every event of a context, in order: `{ event =, status =, cause =,
-- response = }` entries.
-- @tparam PublishContext ctx
-- @treturn table
function testing.record(ctx)
  if type(ctx) ~= "table" or type(ctx.on) ~= "function" then
    check.fail("testing.record", "ctx", "expected a publish context, got " .. check.show(ctx), 2)
  end
  local list = {}
  for _, name in ipairs { "progress", "published", "failed", "unpublished" } do
    ctx:on(name, function(response, cause)
      list[#list + 1] = { event = name, status = response and response.status_code,
                          cause = cause, response = response }
    end)
  end
  return list
end

return testing
