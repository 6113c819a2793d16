-- sip.compositor: sip.Compositor, the bundled RFC 3903 test server (Event State Compositor)
-- on the module's event loop. See doc/compositor.md.
local core = require "sip.core"
local check = require "sip.check"

local Compositor = {}
Compositor.__index = Compositor

local KEYS = {
  host = true, port = true, min_expires = true, max_expires = true, default_expires = true,
  events = true, on_request = true, any_address = true, record = true,
}

-- Compositor.new{ host = "127.0.0.1", port = 0, min_expires = 0, max_expires = 86400,
--                 default_expires = 3600, events = nil, on_request = nil, record = true }
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

-- "sip:HOST:PORT", ready for outboundProxy.
function Compositor:uri() return ("sip:%s:%d"):format(self.host, self.port) end
function Compositor:publications() return self._h:publications() end
function Compositor:count() return self._h:count() end
function Compositor:requests() return self._h:requests() end
function Compositor:clear() self._h:clear() end
function Compositor:close() self._h:close() end

function Compositor:__tostring()
  return ("sip.Compositor(%s:%d)"):format(self.host, self.port)
end

return Compositor
