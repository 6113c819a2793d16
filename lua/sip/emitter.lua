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
  local list = handlers[event]
  if not list then
    list = {}
    handlers[event] = list
  end
  list[#list + 1] = { fn = fn, once = once }
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

local traceback = debug.traceback

function Emitter.emit(self, event, ...)
  local list = self._handlers and self._handlers[event]
  if not list or #list == 0 then return end
  -- Iterate over a snapshot: handlers may add or remove handlers.
  local snapshot = {}
  for i, h in ipairs(list) do snapshot[i] = h end
  for _, h in ipairs(snapshot) do
    if h.once then -- drop this registration only, not other ones of the same function
      local current = self._handlers[event] or {}
      for i = #current, 1, -1 do
        if current[i] == h then table.remove(current, i) end
      end
    end
    local ok, err = xpcall(h.fn, traceback, ...)
    if not ok then core.report_error(err) end
  end
end

return Emitter
