-- sip.emitter: the `on`/`once`/`off` event emitter of publish contexts. Each handler runs
-- in protected mode; an error is reported (sip.on_error or stderr) and the others still run.
--
-- Handlers are kept in the context table itself, in one private field per event (KEY), so
-- that a context costs no table per event or per handler:
--   nil       no handler;
--   function  one handler registered with `on` (the usual case: the binding calls it as is);
--   array     several, or a `once`: entries are functions (`on`) or { fn } tables (`once`,
--             a table so that each registration stays distinct from the others).
-- Arrays are never changed in place: adding or removing a handler builds a new one, so that
-- a delivery runs over the list it started with (handlers may add or remove handlers).
local core = require "sip.core"
local check = require "sip.check"

local rawget, rawset, select, type, xpcall = rawget, rawset, select, type, xpcall

local Emitter = {}

local KEY = {
  published = "_on_published", unpublished = "_on_unpublished",
  progress = "_on_progress", failed = "_on_failed",
}
Emitter.KEY = KEY

local function check_event(fname, event, level)
  if type(event) ~= "string" or not KEY[event] then
    check.fail(fname, "event", ("expected one of 'published', 'unpublished', 'progress', " ..
      "'failed', got %s"):format(check.show(event)), level + 1)
  end
end

local function fn_of(h)
  if type(h) == "table" then return h[1] end
  return h
end

-- Stores a list of entries under key: nil when empty, the function itself when it is the
-- only entry and an `on` one.
local function store(self, key, list)
  local n = #list
  if n == 0 then
    rawset(self, key, nil)
  elseif n == 1 and type(list[1]) == "function" then
    rawset(self, key, list[1])
  else
    rawset(self, key, list)
  end
end

-- level: where an error is reported (3: the caller of the method that called add).
local function add(self, fname, event, fn, once, level)
  check_event(fname, event, level)
  if type(fn) ~= "function" then
    check.fail(fname, "handler", "expected a function, got " .. check.show(fn), level)
  end
  local key = KEY[event]
  local old = rawget(self, key)
  if old == nil and not once then
    rawset(self, key, fn)
    return self
  end
  local list = {}
  if type(old) == "function" then
    list[1] = old
  elseif old then
    for i = 1, #old do list[i] = old[i] end
  end
  list[#list + 1] = once and { fn } or fn
  rawset(self, key, list)
  return self
end

-- Not tail calls (`add(...); return self`): a tail call drops the frame the levels count
-- on (Lua 5.2+, LuaJIT) or keeps a pseudo-frame for it (Lua 5.1).
function Emitter.on(self, event, fn) add(self, "on", event, fn, false, 3); return self end
function Emitter.once(self, event, fn) add(self, "once", event, fn, true, 3); return self end
-- on() called through the binding's ctx:on (one more level between the caller and here).
function Emitter.on_from_c(self, event, fn) add(self, "on", event, fn, false, 4); return self end

-- off(event) removes every handler of event; off(event, fn) only fn's registrations.
function Emitter.off(self, event, fn)
  check_event("off", event, 2)
  if fn ~= nil and type(fn) ~= "function" then
    check.fail("off", "handler", "expected a function, got " .. check.show(fn), 2)
  end
  local key = KEY[event]
  local old = rawget(self, key)
  if old == nil then return self end
  if fn == nil or old == fn then
    rawset(self, key, nil)
  elseif type(old) == "table" then
    local kept = {}
    for i = 1, #old do
      if fn_of(old[i]) ~= fn then kept[#kept + 1] = old[i] end
    end
    store(self, key, kept)
  end
  return self
end

-- Removes one registration (a `once` that fired), not other ones of the same function.
local function drop(self, key, entry)
  local old, list = rawget(self, key), {}
  if type(old) == "table" then
    for i = 1, #old do
      if old[i] ~= entry then list[#list + 1] = old[i] end
    end
  elseif old ~= nil then
    list[1] = old
  end
  store(self, key, list)
end

local traceback = debug.traceback

-- xpcall(h, traceback, ...): Lua 5.1's xpcall passes no arguments to h (5.2+ and LuaJIT do),
-- so there the arguments ride in a closure.
local call = xpcall
if not select(2, xpcall(function(v) return v end, traceback, true)) then
  local unpack = unpack
  call = function(h, handler, ...)
    local n, args = select("#", ...), { ... }
    return xpcall(function() return h(unpack(args, 1, n)) end, handler)
  end
end

-- Runs the handlers of the list stored under key, in order (the binding calls this for a
-- list; it calls a lone function itself).
local function deliver(self, key, list, ...)
  for i = 1, #list do
    local h = list[i]
    if type(h) == "table" then
      drop(self, key, h)
      h = h[1]
    end
    local ok, err = call(h, traceback, ...)
    if not ok then core.report_error(err) end
  end
end
Emitter.deliver = deliver

-- ctx:emit(event, ...): runs the handlers of event with the given arguments.
function Emitter.emit(self, event, ...)
  local key = KEY[event]
  local h = key and rawget(self, key)
  if h == nil then return end
  if type(h) == "function" then
    local ok, err = call(h, traceback, ...)
    if not ok then core.report_error(err) end
  else
    deliver(self, key, h, ...)
  end
end

return Emitter
