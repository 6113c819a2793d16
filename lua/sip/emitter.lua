-- sip.emitter: the `on`/`once`/`off` event emitter of publish contexts. Each handler runs
-- in protected mode; an error is reported (sip.on_error or stderr) and the others still run.
local core = require "sip.core"
local check = require "sip.check"

local Emitter = {}

local EVENTS = { published = true, unpublished = true, progress = true, failed = true }
Emitter.EVENTS = EVENTS

local function check_event(fname, event, level)
  if type(event) ~= "string" or not EVENTS[event] then
    check.fail(fname, "event", ("expected one of 'published', 'unpublished', 'progress', " ..
      "'failed', got %s"):format(check.show(event)), level + 1)
  end
end

-- Handler lists are never changed in place: adding or removing one builds a new list, so
-- that emit can run over the list it started with (handlers may add or remove handlers)
-- without copying it on every event.
local function add(self, fname, event, fn, once)
  check_event(fname, event, 3)
  if type(fn) ~= "function" then
    check.fail(fname, "handler", "expected a function, got " .. check.show(fn), 3)
  end
  local handlers = self._handlers
  if not handlers then
    handlers = {}
    self._handlers = handlers
  end
  local old, list = handlers[event] or {}, {}
  for i = 1, #old do list[i] = old[i] end
  list[#list + 1] = { fn = fn, once = once }
  handlers[event] = list
  return self
end

function Emitter.on(self, event, fn) return add(self, "on", event, fn, false) end
function Emitter.once(self, event, fn) return add(self, "once", event, fn, true) end

-- off(event) removes every handler of event; off(event, fn) only fn's registrations.
function Emitter.off(self, event, fn)
  check_event("off", event, 2)
  if fn ~= nil and type(fn) ~= "function" then
    check.fail("off", "handler", "expected a function, got " .. check.show(fn), 2)
  end
  local list = self._handlers and self._handlers[event]
  if not list then return self end
  local kept = {}
  for _, h in ipairs(list) do
    if fn ~= nil and h.fn ~= fn then kept[#kept + 1] = h end
  end
  self._handlers[event] = kept
  return self
end

-- Removes one registration (a `once` that fired), not other ones of the same function.
local function drop(self, event, h)
  local old, list = self._handlers[event] or {}, {}
  for _, x in ipairs(old) do
    if x ~= h then list[#list + 1] = x end
  end
  self._handlers[event] = list
end

local traceback = debug.traceback

function Emitter.emit(self, event, ...)
  local list = self._handlers and self._handlers[event]
  if not list or #list == 0 then return end
  for i = 1, #list do
    local h = list[i]
    if h.once then drop(self, event, h) end
    local ok, err = xpcall(h.fn, traceback, ...)
    if not ok then core.report_error(err) end
  end
end

return Emitter
