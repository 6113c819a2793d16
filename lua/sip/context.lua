-- sip.context: the publish context (SIP.PublishClientContext). The protocol lives in the C
-- core; this class checks arguments, keeps the documented attributes and emits the events.
--
-- A context is a plain table with target, event, options, body, the core handle _h and its
-- handlers (sip.emitter); etag and state are read from the core when asked for.
local Emitter = require "sip.emitter"
local check = require "sip.check"

local Context = {}

-- ctx.options.extraHeaders when the options gave none: one shared, read-only empty array
-- (the core is given nil, never this table).
Context.NO_HEADERS = setmetatable({}, {
  __newindex = function() error("sip: options.extraHeaders of a context is read-only", 2) end,
  __metatable = false,
})
local NO_HEADERS = Context.NO_HEADERS
local methods = {
  on = Emitter.on, once = Emitter.once, off = Emitter.off, emit = Emitter.emit,
}

Context.__index = function(self, key)
  local m = methods[key]
  if m ~= nil then return m end
  if key == "etag" then return self._h:etag() end
  if key == "state" then return self._h:state() end
  return nil
end

function Context.__tostring(self)
  return ("sip.PublishContext(%s, %s)"):format(self.target, self.event)
end

-- The fields are all set by the constructor, so that the table is sized once (five fields
-- and room for three handlers).
function Context.new(ua, target, event, options, body)
  local self = setmetatable({
    target = target, event = event, options = options, body = body, _h = false,
  }, Context)
  local headers = options.extraHeaders
  if headers == NO_HEADERS then headers = nil end
  self._h = ua._core:pub_new(self, target, event, options.contentType, options.expires,
                             headers, options.unpublishOnClose, options.etag)
  return self
end

-- publish([body]): initial or modify with a body; a refresh without one.
function methods:publish(body)
  local h = self._h
  if body ~= nil and type(body) ~= "string" then
    if h:state() == "closed" then error("sip: publish on a closed context", 2) end
    check.fail("publish", "body", "expected a string or nil, got " .. check.show(body), 2)
  end
  if body == "" then body = nil end
  local ok, err = h:publish(body)
  if not ok then
    if err == "closed" then error("sip: publish on a closed context", 2) end
    error("sip: cannot publish: " .. err, 2)
  end
  if body then self.body = body end
  return self
end

-- unpublish(): removes the published state (nothing once the context is closed).
function methods:unpublish()
  self._h:unpublish()
  return self
end

function methods:close()
  self._h:close()
  return self
end

return Context
