-- sip.context: the publish context (SIP.PublishClientContext). The protocol lives in the C
-- core; this class checks arguments, keeps the documented attributes and emits the events.
--
-- A context is a plain table with target, event, options, body, the core handle _h and its
-- handlers (sip.emitter); etag and state are read from the core when asked for.
local core = require "sip.core"
local Emitter = require "sip.emitter"
local check = require "sip.check"

local Context = {}

-- ctx.options.extraHeaders when the options gave none: one shared, read-only empty array
-- (the core is given nil, never this table).
Context.NO_HEADERS = setmetatable({}, {
  __newindex = function() error("sip: options.extraHeaders of a context is read-only", 2) end,
  __metatable = false,
})
local methods = {
  on = Emitter.on, once = Emitter.once, off = Emitter.off, emit = Emitter.emit,
}

-- The Lua methods; the binding's versions of on, publish, unpublish and close replace them
-- below and call them for every case they do not handle themselves (so these raise their
-- errors one level further up).
local slow = {}

function Context.__tostring(self)
  return ("sip.PublishContext(%s, %s)"):format(self.target, self.event)
end

-- A new context's table; ua:publish hands it to the binding, which makes its publication
-- (the _h field). The fields are all set here, so that the table is sized once (five
-- fields and room for three handlers).
function Context.new(target, event, options, body)
  return setmetatable({
    target = target, event = event, options = options, body = body, _h = false,
  }, Context)
end

-- A method called on something that is not a context (ctx.close() instead of ctx:close()):
-- raised at the caller of the binding's method (own, the Lua fallback, the C method).
local function own(self, fname)
  if type(self) ~= "table" or getmetatable(self) ~= Context or not self._h then
    check.fail(fname, "self", ("expected a publish context (call it as ctx:%s()), got %s")
      :format(fname, check.show(self)), 4)
  end
end

-- publish([body]): initial or modify with a body; a refresh without one.
function slow:publish(body)
  own(self, "publish")
  local h = self._h
  if body ~= nil and type(body) ~= "string" then
    if h:state() == "closed" then error("sip: publish on a closed context", 3) end
    check.fail("publish", "body", "expected a string or nil, got " .. check.show(body), 3)
  end
  if body == "" then body = nil end
  local ok, err = h:publish(body)
  if not ok then
    if err == "closed" then error("sip: publish on a closed context", 3) end
    error("sip: cannot publish: " .. err, 3)
  end
  if body then self.body = body end
  return self
end

-- unpublish(): removes the published state (nothing once the context is closed).
function slow:unpublish()
  own(self, "unpublish")
  self._h:unpublish()
  return self
end

function slow:close()
  own(self, "close")
  self._h:close()
  return self
end

slow.on = Emitter.on_from_c

local fast = core.context_methods(methods, slow)
Context.__index = fast.__index
methods.on, methods.publish, methods.unpublish, methods.close = fast.on, fast.publish, fast.unpublish, fast.close

return Context
