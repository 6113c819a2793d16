-- sip: RFC 3903 event-state publication (SIP PUBLISH) for Lua, with the API of
-- SIP.PublishClientContext. `require "sip"` returns this module table.
local core = require "sip.core"
local check = require "sip.check"
local Emitter = require "sip.emitter"
local Response = require "sip.response"

local sip = {
  _VERSION = core.version,
  UA = require "sip.ua",
  on_error = nil, -- function(message): errors raised by event handlers
  -- true: sip.run() makes Lua 5.4's garbage collector incremental if it is generational
  -- (as the lua5.4 interpreter starts it). A generational major collection marks and sweeps
  -- the whole heap at once: about a second with 100 000 publications, which delays the
  -- loop past refresh deadlines. false: the collector is left as the application set it.
  incremental_gc = true,
  -- What sip.run() does on SIGINT or SIGTERM: nil, sip.shutdown (every user agent closes,
  -- removing its publications, and sip.run returns once they are closed); a function(signal)
  -- of the application's; or false to leave the signals alone. A second signal stops the
  -- loop at once and sip.run raises "interrupted!".
  on_signal = nil,
}

local phrases = core.reason_phrases()
local causes = {
  REQUEST_TIMEOUT = core.REQUEST_TIMEOUT,
  CONNECTION_ERROR = core.CONNECTION_ERROR,
  PROTOCOL_ERROR = core.PROTOCOL_ERROR,
}
for code, phrase in pairs(phrases) do causes[code] = phrase end
sip.C = { causes = causes, REASON_PHRASE = phrases }

core.set_error_handler(function(msg)
  local handler = sip.on_error
  if handler then
    handler(msg)
  else
    io.stderr:write("sip: error in event handler: ", tostring(msg), "\n")
  end
end)

-- The binding delivers events itself (see sip.emitter): it needs the function that runs a
-- list of handlers and the metatable of the response objects it makes.
core.set_dispatch(Emitter.deliver, Response)

-- sip.shutdown(): closes every user agent (each publication is removed, or forgotten when its
-- unpublishOnClose is false) and stops sip.run() once all of them are closed, whatever else
-- (timers, compositors) the loop still holds.
function sip.shutdown()
  local uas = {}
  sip.UA.each_open(function(ua)
    uas[#uas + 1] = ua
    ua:close()
  end)
  local function all_closed()
    for _, ua in ipairs(uas) do
      if ua._core:state() ~= "closed" then return false end
    end
    return true
  end
  local function check()
    if all_closed() then core.stop() else core.timer(0.01, check):unref() end
  end
  check()
end

local function signal_handler()
  local h = sip.on_signal
  if h == nil then return sip.shutdown end
  return h or nil
end

-- The loop's runner: luv's uv.run when the loop is luv's (shared: see csrc/lua/lloop.c), so
-- that luv's own bookkeeping sees it run; else the module runs its private loop itself.
local function runner()
  if core.loop_info() == "luv" then return package.loaded.luv.run end
  return nil
end

local MODES = { default = true, once = true, nowait = true }

-- The wrappers below check their arguments here and call the C function without a tail
-- call, so that its errors ("the loop is already running", raised at level 2) and theirs
-- point at the application's line, not at this file.

-- sip.run([mode]): "default" runs until nothing is left to do; "once"; "nowait". With luv
-- loaded, the loop is luv's and sip.run() is uv.run(): either drives both.
function sip.run(mode)
  if mode ~= nil and not MODES[mode] then
    check.fail("run", "mode", "expected 'default', 'once' or 'nowait', got " .. check.show(mode), 2)
  end
  local alive = core.run(mode, sip.incremental_gc, signal_handler(), runner())
  return alive
end
function sip.run_once()
  local alive = core.run("once", sip.incremental_gc, signal_handler(), runner())
  return alive
end
function sip.run_nowait()
  local alive = core.run("nowait", sip.incremental_gc, signal_handler(), runner())
  return alive
end

-- sip.luv_pump([uv]): when luv cannot share this module's loop (a luv built on another copy
-- of libuv), drives the private loop from luv's: a poll on its backend descriptor and a timer
-- for its next timeout run it without blocking, so that uv.run() alone serves both. Returns
-- an object with :close(). Nothing to do (nil) when the loop is shared already.
function sip.luv_pump(uv)
  if uv ~= nil and type(uv) ~= "table" then
    check.fail("luv_pump", "uv", "expected the luv module or nil, got " .. check.show(uv), 2)
  end
  uv = uv or require "luv"
  local kind, fd = core.loop_info()
  if kind == "luv" then return nil end
  local poll, timer = uv.new_poll(fd), uv.new_timer()
  local function pump()
    local alive = core.run("nowait", sip.incremental_gc)
    local _, _, timeout = core.loop_info()
    if timeout >= 0 then timer:start(timeout, 0, pump) else timer:stop() end
    -- luv's loop stays alive for this loop only while it has work
    if alive then poll:ref(); timer:ref() else poll:unref(); timer:unref() end
  end
  poll:start("r", pump)
  pump()
  return { close = function() poll:close(); timer:close() end }
end
function sip.stop() core.stop() end
function sip.timer(seconds, fn)
  if type(seconds) ~= "number" or not (seconds >= 0) then -- not (>=): NaN too
    check.fail("timer", "seconds", "expected a number >= 0, got " ..
               (type(seconds) == "number" and tostring(seconds) or check.show(seconds)), 2)
  end
  if type(fn) ~= "function" then
    check.fail("timer", "fn", "expected a function, got " .. check.show(fn), 2)
  end
  local t = core.timer(seconds, fn)
  return t
end
function sip.now() return core.now() end

-- Modules loaded on first use.
local lazy = { testing = "sip.testing", Compositor = "sip.compositor" }
return setmetatable(sip, {
  __index = function(t, k)
    local name = lazy[k]
    if not name then return nil end
    local v = require(name)
    rawset(t, k, v)
    return v
  end,
})
