-- Bounded runs of the sip event loop for specs that talk to real sockets.
--
--   local loop = require "support.loop"
--   local ok = loop.run_until(function() return #events >= 2 end, 5)
--   local ok = loop.run_until(nil, 5)   -- sip.run() until nothing is left to do
--   loop.close_ua(ua, 5)                -- ua:close(), then run until it has closed
--   loop.shutdown(ua, 10, esc, relay)   -- the same, asserted, then closes the others
--
-- Returns true when the predicate held (or, without one, when sip.run() returned by
-- itself), false when the time ran out first.
local sip = require "sip"

local M = {}

local function until_predicate(pred, timed_out)
  while not pred() and not timed_out() do
    if not sip.run_once() and not pred() then
      return false -- nothing left that could make it true
    end
  end
  return pred() and true or false
end

-- A guard timer that does not keep the loop alive by itself (so that sip.run() can
-- return when the user agents are done), stopping the loop when it fires.
local function guard(seconds, on_fire, keep_alive)
  local t = sip.timer(seconds, function()
    on_fire()
    sip.stop()
  end)
  if not keep_alive then t:unref() end
  return t
end

function M.run_until(pred, timeout)
  local fired = false
  local timed_out = function() return fired end
  if pred == nil then
    local g = guard(timeout, function() fired = true end, false)
    sip.run()
    g:stop()
    return not fired
  end
  local g = guard(timeout, function() fired = true end, true)
  local ok = until_predicate(pred, timed_out)
  g:stop()
  return ok
end

-- Closes ua and runs the loop until it is closed (its removes answered or timed out), for at
-- most `timeout` seconds; returns whether it closed.
function M.close_ua(ua, timeout)
  ua:close()
  return M.run_until(function() return ua._core:state() == "closed" end, timeout)
end

-- close_ua, raising an error when the UA did not close in time; then closes each of `...`
-- (compositors, relays).
function M.shutdown(ua, timeout, ...)
  assert(M.close_ua(ua, timeout), "the UA did not close")
  for _, x in ipairs { ... } do x:close() end
end

return M
