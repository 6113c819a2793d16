--- The publish context: `SIP.PublishClientContext`, RFC 3903 event-state publication.
-- It publishes the state, keeps it refreshed (at 0.9 × the Expires the server granted),
-- modifies and removes it, recovers from 412 and 423, retries refreshes that fail for a
-- passing reason while the granted state lasts, and reports every outcome as an event. Only
-- outgoing publications exist (no PublishServerContext: see @{sip.Compositor} for a test
-- server).
--
--### Construction
--
-- Contexts are made by a @{sip.UA}, through `ua:publish(target, event, body[, options])`
-- (@{sip.UA:publish}), which sends the initial PUBLISH at once. There is no public
-- constructor.
--
--### Parameters
--
-- | name | type | description |
-- |---|---|---|
-- | `target` | string | the request URI (a `sip:` or `sips:` URI) |
-- | `event` | string | the event package to publish (`presence`, `dialog`, `message-summary`, …) |
-- | `body` | string | the state, not empty |
-- | `options` | table | optional: `extraHeaders`, `contentType`, `expires`, `unpublishOnClose`, `etag` (see @{options}) |
--
-- The protocol lives in the C core; this class checks arguments, keeps the documented
-- attributes and emits the events. A context is a plain table with target, event, options,
-- body, the core handle `_h` and its handlers (sip.emitter); `etag` and `state` are read
-- from the core when asked for.
-- @classmod PublishContext
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

--- Instance attributes.
-- Read them; do not assign them.
-- @section attributes

--- The event package, as given to @{sip.UA:publish}.
-- @string event

--- The request target, as given.
-- @string target

--- The last body given (initial publication or modify).
-- @string body

--- A copy of the options with every default filled in (the caller's table is never
-- modified).
-- @table options
-- @tfield {string,...} extraHeaders `"Name: value"` lines added, in order, to every request
-- of this context (initial, refresh, modify, remove, recoveries); 64 at most, none of the
-- headers the library writes. Default `{}` (one read-only empty table shared by the
-- contexts made without extra headers).
-- @tfield string contentType the `Content-Type` of requests that carry a body, a media type
-- with parameters. Default `"text/plain"`.
-- @tfield int expires the Expires requested, 1 to 2147483647. Default 3600.
-- @tfield bool unpublishOnClose whether @{close} (and `ua:close()`) removes the published
-- state. Default true.
-- @tfield string etag resume a publication an earlier run made: the first request is a
-- refresh with this entity-tag (`body` is kept as the state); a 412 falls back to an
-- initial PUBLISH with `body`. Default nil.

--- The current entity-tag (SIP-ETag), or nil.
-- @string etag

--- `"idle"` (nothing published), `"published"` (an entity-tag is held) or `"closed"`.
-- @string state

-- "sip.PublishContext(target, event)".
function Context.__tostring(self)
  return ("sip.PublishContext(%s, %s)"):format(self.target, self.event)
end

-- A new context's table; ua:publish hands it to the binding, which makes its publication
-- (the _h field). The fields are all set here, so that the table is sized once (five
-- fields and room for three handlers).
-- @local
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
-- @local (the method is documented below, under Instance methods)
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
-- @local (the method is documented below, under Instance methods)
function slow:unpublish()
  own(self, "unpublish")
  self._h:unpublish()
  return self
end

-- close(): the fallback of the C method. @local
function slow:close()
  own(self, "close")
  self._h:close()
  return self
end

slow.on = Emitter.on_from_c

--- Instance methods.
-- `publish`, `unpublish`, `close` and `on` run in C (csrc/lua/lua_pub.c) for the usual
-- case; the Lua functions above handle the others.
-- @section methods

--- Publishes the event state. With a body: the initial publication (no entity-tag known)
-- or a modify (one known), also after @{unpublish} or a failure to publish again. Without a
-- body (nil or `""`): a refresh now (there is no need: the state is refreshed at 0.9 × the
-- granted Expires). One PUBLISH is in flight at a time: calls made meanwhile are coalesced
-- to the newest intent and sent after the final response.
-- @function publish
-- @tparam[opt] string body the new state
-- @treturn PublishContext self
-- @raise `bad argument to 'publish' (body: …)`; `sip: publish on a closed context`;
-- `sip: cannot publish: nothing is published to refresh`

--- Removes the published state (a PUBLISH with `Expires: 0`). Without published or pending
-- state it does nothing (no request, no event); once closed, nothing.
-- @function unpublish
-- @treturn PublishContext self

--- Removes the published state when `unpublishOnClose` (else forgets the entity-tag
-- locally and stops refreshing); the context leaves its user agent. Idempotent;
-- @{publish} after `close` raises.
-- @function close
-- @treturn PublishContext self

--- Adds a handler for an event (several per event, called in registration order).
-- @function on
-- @tparam string event `"published"`, `"unpublished"`, `"progress"` or `"failed"`
-- @tparam function handler called as `handler(response, cause, detail)`
-- @treturn PublishContext self (chainable)
-- @raise `bad argument to 'on' (event: …)` or `(handler: …)`

--- Adds a handler that runs once, at the next such event.
-- @function once
-- @tparam string event
-- @tparam function handler
-- @treturn PublishContext self

--- Removes the handlers of an event, or only `handler`'s registrations.
-- @function off
-- @tparam string event
-- @tparam[opt] function handler
-- @treturn PublishContext self

--- Runs the handlers of an event with the given arguments (as the library does).
-- @function emit
-- @tparam string event
-- @param ... the handlers' arguments

--- Events.
-- Handlers get `(response, cause, detail)`: the @{Response} (nil after a timeout or a
-- transport error), the cause (@{sip.C}: a reason phrase, `"Request Timeout"`,
-- `"Connection Error"` or `"Protocol Error"`), and for transport and resolver failures a
-- string naming the host, the step and the system's reason (nil otherwise). Events caused
-- by a call are delivered on the next turn of the loop, never inside the call. An error in
-- a handler goes to @{sip.on_error}; the other handlers still run.
-- @section events

--- A 2xx to an initial PUBLISH (which must carry SIP-ETag), a refresh or a modify.
-- @event published
-- @tparam Response response
-- @tparam string cause `"OK"`, `"Accepted"`, …

--- The state is gone: the 2xx (or 412) to a remove, a 2xx with `Expires: 0`, and after
-- every `failed` (a periodic refresh that failed included).
-- @event unpublished
-- @tparam Response|nil response
-- @tparam string cause
-- @tparam string|nil detail

--- Progress: a 1xx; a 412 or 423 the context recovers from; a refresh, modify or
-- 412-recovery initial that failed for a passing reason and will be tried again; a refresh
-- or modify of a stopped context that failed (its remove follows).
-- @event progress
-- @tparam Response|nil response nil after Timer F
-- @tparam string cause its standard phrase, or `"Request Timeout"`

--- A final failure: a final response ≥ 300 not recovered, Timer F, a transport or resolver
-- error, a 2xx without a usable SIP-ETag to an initial PUBLISH, the granted state expiring
-- while its refresh is unanswered. Always followed by `unpublished`.
-- @event failed
-- @tparam Response|nil response nil for a timeout or a transport error
-- @tparam string cause the phrase, `"Request Timeout"`, `"Connection Error"` or `"Protocol Error"`
-- @tparam string|nil detail for `"Connection Error"`: what failed, e.g.
-- `"nonexistent.invalid: unknown node or service"`

local fast = core.context_methods(methods, slow)
Context.__index = fast.__index
methods.on, methods.publish, methods.unpublish, methods.close = fast.on, fast.publish, fast.unpublish, fast.close

return Context
