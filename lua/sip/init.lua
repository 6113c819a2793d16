--- RFC 3903 event-state publication (SIP PUBLISH) for Lua, with the API of
-- `SIP.PublishClientContext`. `require "sip"` returns this module table: the user agent
-- (@{sip.UA}), the event loop that drives it, the causes events carry, and the test tools
-- (@{sip.Compositor}, @{sip.testing}).
--
-- A publication is a @{PublishContext} made by @{sip.UA:publish}; it keeps its state
-- refreshed and reports every outcome as an event. Nothing happens until the loop runs:
-- @{run} runs it until the last user agent is closed and answered.
--
-- The guide with every behaviour in detail is `doc/api.md` (also rendered here as the
-- [api.md topic](../topics/api.md.html)).
-- @module sip
-- @usage
-- local sip = require "sip"
-- local ua  = sip.UA.new{ uri = "sip:alice@example.test", outboundProxy = "sip:127.0.0.1:5060" }
-- local pub = ua:publish("sip:alice@example.test", "presence", pidf,
--                        { contentType = "application/pidf+xml", expires = 600 })
-- pub:on("published", function(response, cause) print("published", response.status_code) end)
-- pub:on("failed", function(response, cause, detail) print("failed", cause, detail) end)
-- pub:on("unpublished", function() ua:close() end)
-- sip.run()
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

--- Settings.
-- Fields of the module table an application reads or assigns.
-- @section settings

--- The library's version string (such as `"0.1.0"`); the default `User-Agent` header is
-- `lua-sip-publish/` followed by it.
-- @string _VERSION

--- Default `true`: @{run} (and @{run_once}, @{run_nowait}) switch Lua 5.4's garbage
-- collector to incremental mode when it is generational, as the `lua5.4` interpreter starts
-- it. A generational major collection marks and sweeps the whole heap at once (about a
-- second with 100 000 publications, enough to make refreshes late). `false` leaves the
-- collector as the application set it.
-- @field incremental_gc

--- What @{run} does on the first SIGINT or SIGTERM while it runs: `nil` (the default)
-- calls @{shutdown}, so that Ctrl-C or a service stop removes the published state before
-- the script ends; a `function(name)` (`"SIGINT"` or `"SIGTERM"`) of the application's; or
-- `false` to leave the signals to the host. A second signal stops the loop at once and
-- @{run} raises `"interrupted!"`.
-- @field on_signal

--- Causes.
-- What the second argument of an event handler holds.
-- @section causes

local phrases = core.reason_phrases()
local causes = {
  REQUEST_TIMEOUT = core.REQUEST_TIMEOUT,
  CONNECTION_ERROR = core.CONNECTION_ERROR,
  PROTOCOL_ERROR = core.PROTOCOL_ERROR,
}
for code, phrase in pairs(phrases) do causes[code] = phrase end
sip.C = { causes = causes, REASON_PHRASE = phrases }

--- The causes of events (as in SIP.js's `SIP.C`).
-- A handler's `cause` is always one of these strings: the standard reason phrase of the
-- response's status code, or one of the three causes without a response.
-- @table C
-- @field causes `REQUEST_TIMEOUT = "Request Timeout"` (Timer F, or the granted state
-- expiring while its refresh is unanswered), `CONNECTION_ERROR = "Connection Error"` (the
-- next hop did not resolve, the transport refused the request or reported a failure),
-- `PROTOCOL_ERROR = "Protocol Error"` (a 2xx to an initial PUBLISH without a usable
-- SIP-ETag); and `causes[code]`, the standard reason phrase of a status code
-- (`causes[403] == "Forbidden"`).
-- @field REASON_PHRASE `[code] = phrase` (the phrases SIP.js uses).

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

--- The loop.
-- One event loop (libuv's; luv's when luv is loaded, see @{luv_pump}) drives every user
-- agent, timer and compositor of the process. Events are delivered from it, never inside
-- the call that caused them.
-- @section loop

--- Closes every user agent (each publication is removed, or forgotten when its
-- `unpublishOnClose` is false) and makes @{run} return once all of them are closed, whatever
-- else (timers, compositors) the loop still holds. The default action of @{on_signal}.
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

--- Runs the event loop.
-- With luv loaded the loop is luv's and `sip.run()` is `uv.run()`: either drives both.
-- @tparam[opt="default"] string mode `"default"`: until nothing is left to do (every user
-- agent closed and answered, no timer); `"once"`: one turn, waiting for something to
-- happen; `"nowait"`: one turn without waiting.
-- @treturn boolean true when handles are still active
-- @raise `bad argument to 'run' (mode: …)`; `sip.run: the loop is already running` when
-- called from a handler or timer while the loop runs; `interrupted!` on a second signal
-- (see @{on_signal}).
function sip.run(mode)
  if mode ~= nil and not MODES[mode] then
    check.fail("run", "mode", "expected 'default', 'once' or 'nowait', got " .. check.show(mode), 2)
  end
  local alive = core.run(mode, sip.incremental_gc, signal_handler(), runner())
  return alive
end
--- `sip.run("once")`.
-- @treturn boolean true when handles are still active
function sip.run_once()
  local alive = core.run("once", sip.incremental_gc, signal_handler(), runner())
  return alive
end
--- `sip.run("nowait")`.
-- @treturn boolean true when handles are still active
function sip.run_nowait()
  local alive = core.run("nowait", sip.incremental_gc, signal_handler(), runner())
  return alive
end

--- Drives the library's loop from luv's when luv cannot share it (a luv built on another
-- copy of libuv): a poll on its backend descriptor and a timer for its next timeout run it
-- without blocking, so that `uv.run()` alone serves both.
-- @tparam[opt] table uv the luv module (default: `require "luv"`)
-- @return an object with `:close()`, or nil when the loop is shared already (nothing to do)
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
--- Makes a running @{run} return after the current iteration.
function sip.stop() core.stop() end
--- A one-shot timer on the loop.
-- @number seconds the delay, ≥ 0 (NaN is refused); delays beyond 2^53 ms, `math.huge`
-- included, are clamped there: such a timer never fires in practice
-- @func fn called with no arguments when the timer fires
-- @return an object with `:stop()` and `:unref()` (an unref'd timer does not keep @{run}
-- going by itself, e.g. a guard against a hung test)
-- @raise `bad argument to 'timer' (seconds: …)` or `(fn: …)`
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
--- Monotonic time in seconds (for logging and measuring).
-- @treturn number
function sip.now() return core.now() end

--- Modules.
-- @section modules

--- The user agent class (@{sip.UA}).
-- @field UA

--- The bundled RFC 3903 test server (@{sip.Compositor}), loaded on first use.
-- @field Compositor

--- An in-memory transport and a virtual clock for unit tests (@{sip.testing}), loaded on
-- first use.
-- @field testing

--- Errors.
-- Three kinds of errors are raised, always at the caller's line (`file.lua:12: …`, never a
-- line inside `lua/sip/`); what happens on the network is never raised but reported as
-- an event. The complete list of messages is the *Errors* section of the
-- [api.md topic](../topics/api.md.html#Errors).
--
-- **Argument errors**, before anything is sent: `bad argument to 'NAME' (WHAT: MESSAGE)`,
-- e.g. `bad argument to 'publish' (options.expires: expected an integer, got "60")`. `NAME`
-- is the function (`UA.new`, `publish`, `on`, `once`, `off`, `unpublish`, `close`, `run`,
-- `timer`, `luv_pump`, `Compositor.new`, `testing.new_ua`, …), `WHAT` the argument or
-- option as the caller wrote it. What strings may hold is checked by the C core's rules
-- (the *Bad input* section of api.md).
--
-- **Misuse errors**: `sip: publish on a closed user agent`, `sip: publish on a closed
-- context`, `sip: cannot publish: nothing is published to refresh` (`ctx:publish()` with
-- nothing published or pending), `sip: options.extraHeaders of a context is read-only`.
--
-- **Runtime errors**: `sip.UA.new: cannot bind UDP ADDRESS:PORT: REASON`,
-- `Compositor.new: cannot listen on HOST:PORT: REASON`, `sip.run: the loop is already
-- running`, `interrupted!`.
--
-- **Network failures** reach the handlers as `(response, cause, detail)`; `detail` is a
-- string naming the host, the step and the system's reason for transport and resolver
-- failures, nil otherwise:
--
-- | what happened | cause | detail |
-- |---|---|---|
-- | a final response ≥ 300 not recovered | its reason phrase | nil |
-- | the next hop's name does not resolve | `"Connection Error"` | `"nonexistent.invalid: unknown node or service"` |
-- | the system refuses the datagram when it is sent (an IPv6 next hop from an IPv4 socket, a broadcast address) | `"Connection Error"` | `"::1:5060 (udp): the transport refused the request"` |
-- | the system refuses a datagram of a batch the loop sends to a destination that took datagrams before | `"Connection Error"` | `"HOST:PORT network is unreachable"` (the system's reason) |
-- | a stream flow of a driver fails | `"Connection Error"` | the driver's reason |
-- | no answer (nothing listening, server down, datagrams lost) | `"Request Timeout"` (Timer F, 32 s) | nil |
-- | a 2xx to an initial PUBLISH without a usable SIP-ETag | `"Protocol Error"` | nil |
--
-- @section errors

--- A `function(message)` receiving the errors raised by event handlers (and by a
-- compositor's `on_request`). Without one they are printed to stderr as
-- `sip: error in event handler: MESSAGE` with a traceback. Either way the other handlers
-- still run and the loop goes on.
-- @field on_error

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
