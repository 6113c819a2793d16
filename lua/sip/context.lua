-- sip.context: the publish context (SIP.PublishClientContext). The protocol lives in the C
-- core; this class checks arguments, keeps the documented attributes and emits the events.
local Emitter = require "sip.emitter"
local check = require "sip.check"

local Context = {}
local methods = {
  on = Emitter.on, once = Emitter.once, off = Emitter.off, emit = Emitter.emit,
}

Context.__index = function(self, key)
  if key == "etag" then return self._h:etag() end
  if key == "state" then
    if self._closed then return "closed" end
    return self._h:etag() and "published" or "idle"
  end
  return methods[key]
end

function Context.__tostring(self)
  return ("sip.PublishContext(%s, %s)"):format(self.target, self.event)
end

function Context.new(ua, target, event, options)
  local self = setmetatable({
    target = target, event = event, options = options, _ua = ua, _closed = false,
  }, Context)
  self._h = ua._core:pub_new(self, target, event, options.contentType, options.expires,
                             options.extraHeaders, options.unpublishOnClose, options.etag)
  return self
end

-- publish([body]): initial or modify with a body; a refresh without one.
function methods:publish(body)
  if self._closed then error("sip: publish on a closed context", 2) end
  if body ~= nil and type(body) ~= "string" then
    check.fail("publish", "body", "expected a string or nil, got " .. check.show(body), 2)
  end
  if body == "" then body = nil end
  if body then self.body = body end
  local ok, err = self._h:publish(body)
  if not ok then
    error("sip: cannot publish: " .. err, 2)
  end
  return self
end

function methods:unpublish()
  if not self._closed then self._h:unpublish() end
  return self
end

function methods:close()
  if self._closed then return self end
  self._closed = true
  self._ua._contexts[self] = nil
  self._h:close()
  return self
end

return Context
