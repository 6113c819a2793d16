--- `sip.Compositor`: the bundled RFC 3903 test server (Event State Compositor) on the
-- module's event loop, for tests and demos: it keeps publications with their entity-tags
-- and expiries, answers PUBLISH as RFC 3903 says, and can be scripted per request. See the
-- [compositor.md topic](../topics/compositor.md.html) for the rules and `on_request`.
-- @classmod sip.Compositor
-- @usage local esc = sip.Compositor.new{}           -- 127.0.0.1, a free port
-- local ua = sip.UA.new{ uri = "sip:alice@example.test", outboundProxy = esc:uri() }
local core = require "sip.core"
local check = require "sip.check"

local Compositor = {}
Compositor.__index = Compositor

local KEYS = {
  host = true, port = true, min_expires = true, max_expires = true, default_expires = true,
  events = true, on_request = true, any_address = true, record = true,
}

--- Starts a compositor listening on UDP.
-- @tparam[opt] table opts
-- @tparam[opt="127.0.0.1"] string opts.host the address to listen on (a loopback address
-- unless `any_address`)
-- @tparam[opt=0] int opts.port the port (0: any; see the `port` field)
-- @tparam[opt=0] int opts.min_expires shorter requested expiries get 423 with Min-Expires
-- @tparam[opt=86400] int opts.max_expires longer requested expiries are shortened
-- @tparam[opt=3600] int opts.default_expires the expiry of a PUBLISH without Expires
-- @tparam[opt] {string,...} opts.events the event packages accepted (others get 489); nil: any
-- @tparam[opt] function opts.on_request `function(req)` called for every new PUBLISH,
-- returning nil (the rules answer) or an action `{ code, reason, headers, delay, drop }`
-- @tparam[opt=false] bool opts.any_address allow a non-loopback `host`
-- @tparam[opt=true] bool opts.record keep the requests for @{requests}
-- @treturn sip.Compositor
-- @raise `bad argument to 'Compositor.new' (WHAT: …)`;
-- `Compositor.new: cannot listen on HOST:PORT: REASON`
-- @static
function Compositor.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    check.fail("Compositor.new", "opts", "expected a table, got " .. check.show(opts), 2)
  end
  check.known_keys("Compositor.new", "opts", opts, KEYS, 2)
  if opts.on_request ~= nil and type(opts.on_request) ~= "function" then
    check.fail("Compositor.new", "on_request", "expected a function, got " .. check.show(opts.on_request), 2)
  end
  if opts.host ~= nil then check.string("Compositor.new", "host", opts.host, 2) end
  local ranges = { port = { 0, 65535 }, min_expires = { 0, 0x7fffffff }, max_expires = { 1, 0x7fffffff },
                   default_expires = { 1, 0x7fffffff } }
  for _, k in ipairs { "port", "min_expires", "max_expires", "default_expires" } do
    if opts[k] ~= nil then check.integer("Compositor.new", k, opts[k], 2, ranges[k][1], ranges[k][2]) end
  end
  if opts.any_address ~= nil then check.boolean("Compositor.new", "any_address", opts.any_address, 2) end
  if opts.record ~= nil then check.boolean("Compositor.new", "record", opts.record, 2) end
  if opts.events ~= nil then
    if type(opts.events) ~= "table" then
      check.fail("Compositor.new", "events", "expected an array of strings, got " .. check.show(opts.events), 2)
    end
    for i, ev in ipairs(opts.events) do
      check.string("Compositor.new", ("events[%d]"):format(i), ev, 2, check.HEADER)
      if ev:find("[%s;,]") then
        check.fail("Compositor.new", ("events[%d]"):format(i), "expected an event package name, got " .. check.show(ev), 2)
      end
    end
  end
  local min, max = opts.min_expires or 0, opts.max_expires or 86400
  if min > max then
    check.fail("Compositor.new", "min_expires", ("must not exceed max_expires (%d > %d)"):format(min, max), 2)
  end
  local h = core.compositor_new(opts)
  return setmetatable({ host = opts.host or "127.0.0.1", port = h:port(), _h = h }, Compositor)
end

--- `"sip:HOST:PORT"`, ready for `outboundProxy`.
-- @treturn string
function Compositor:uri() return ("sip:%s:%d"):format(self.host, self.port) end
--- The live publications: an array of `{ uri, event, etag, body, content_type, expires }`,
-- `expires` being the seconds left (a float).
-- @treturn table
function Compositor:publications() return self._h:publications() end
--- The number of publications held.
-- @treturn int
function Compositor:count() return self._h:count() end
--- The raw PUBLISH requests received so far, one per transaction (not the
-- retransmissions), in order; empty with `record = false`.
-- @treturn table
function Compositor:requests() return self._h:requests() end
--- Forgets every publication and the retransmission cache, as a restart would: the next
-- refresh gets 412.
function Compositor:clear() self._h:clear() end
--- Releases the socket and drops answers still delayed. Idempotent. Once every compositor
-- and user agent is closed, @{sip.run} returns.
function Compositor:close() self._h:close() end

--- Fields.
-- @section fields

--- The address it listens on.
-- @string host

--- The port it listens on (the real one when 0 was asked).
-- @int port

-- "sip.Compositor(host:port)".
function Compositor:__tostring()
  return ("sip.Compositor(%s:%d)"):format(self.host, self.port)
end

return Compositor
