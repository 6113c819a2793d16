--- The response object handed to event handlers (the first argument; nil after a
-- timeout or a transport error): status line, body, the raw message, and header access by
-- name (case-insensitive; compact forms such as `v`, `f`, `t`, `i`, `m`, `l`, `c`, `e`,
-- `o`, `k`, `s`, `r`, `u` are understood).
-- @classmod Response

--- The status code (`200`).
-- @int status_code

--- The reason phrase as on the wire.
-- @string reason_phrase

--- The body (`""` when there is none).
-- @string body

--- The whole raw message.
-- @string data
local check = require "sip.check"

local Response = {}
Response.__index = Response

local COMPACT = {
  a = "accept-contact", b = "referred-by", c = "content-type", d = "request-disposition",
  e = "content-encoding", f = "from", i = "call-id", j = "reject-contact", k = "supported",
  l = "content-length", m = "contact", n = "identity-info", o = "event", r = "refer-to",
  s = "subject", t = "to", u = "allow-events", v = "via", x = "session-expires", y = "identity",
}

local function canonical(name)
  name = name:lower()
  return COMPACT[name] or name
end

-- The canonical name of a header name argument of the method fname (raised at the caller of
-- that method when it is not a string).
local function wanted(fname, name)
  if type(name) ~= "string" then
    check.fail(fname, "name", "expected a string, got " .. check.show(name), 3)
  end
  return canonical(name)
end

-- Parses the header section once, on first use: a list of { lower-case name, value }.
local function headers(self)
  local list = rawget(self, "_headers")
  if list then return list end
  list = {}
  local head = self.data:match("^(.-)\r\n\r\n") or self.data
  local lines = {}
  for line in (head .. "\r\n"):gmatch("(.-)\r\n") do
    if line:match("^[ \t]") and #lines > 1 then -- folded continuation
      lines[#lines] = lines[#lines] .. " " .. line:match("^[ \t]*(.*)$")
    else
      lines[#lines + 1] = line
    end
  end
  for i = 2, #lines do -- the first line is the status line
    local name, value = lines[i]:match("^([^:]-)[ \t]*:[ \t]*(.-)[ \t]*$")
    if name then list[#list + 1] = { canonical(name), value } end
  end
  rawset(self, "_headers", list)
  return list
end

-- Makes t (status_code, reason_phrase, body, data) a response object.
-- @local
function Response.new(t)
  return setmetatable(t, Response)
end

--- The first value of a header.
-- @string name the header name (any case, or a compact form)
-- @treturn string|nil
function Response:getHeader(name)
  local want = wanted("getHeader", name)
  for _, h in ipairs(headers(self)) do
    if h[1] == want then return h[2] end
  end
  return nil
end

--- Every value of a header, in order.
-- @string name
-- @treturn {string,...}
function Response:getHeaders(name)
  local want, out = wanted("getHeaders", name), {}
  for _, h in ipairs(headers(self)) do
    if h[1] == want then out[#out + 1] = h[2] end
  end
  return out
end

--- Whether the response has the header.
-- @string name
-- @treturn bool
function Response:hasHeader(name)
  local want = wanted("hasHeader", name)
  for _, h in ipairs(headers(self)) do
    if h[1] == want then return true end
  end
  return false
end

function Response:__tostring()
  return ("SIP response %d %s"):format(self.status_code, self.reason_phrase)
end

return Response
