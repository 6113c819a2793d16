-- Helpers for specs over real sockets: event recording (sip.testing's record, with the time
-- and the response's entity-tag and Expires pulled out) and handler errors turned into spec
-- failures. A response to a raw request is testing.response_for(testing.parse(raw), code, opts).
local sip = require "sip"
local testing = require "sip.testing"

local M = {}

-- Inside a describe block: an error raised by any event handler fails the running spec.
-- (busted's before_each/after_each are given: a module does not see the spec's globals.)
function M.fail_on_handler_errors(before_each, after_each)
  local saved
  before_each(function()
    saved = sip.on_error
    sip.on_error = function(msg) error("a handler raised: " .. tostring(msg)) end
  end)
  after_each(function() sip.on_error = saved end)
end

-- Records every event of a context, as testing.record does ({ event, status, cause, response
-- }), each entry also given `at` (sip.now() when it came), `etag` and `expires` (the
-- response's SIP-ETag and Expires). testing.record appends to the list it returns, so a
-- __newindex on that list sees each new entry as it is added.
local function annotate(list, i, e)
  local r = e.response
  e.at = sip.now()
  e.etag = r and r:getHeader("SIP-ETag")
  e.expires = r and tonumber(r:getHeader("Expires"))
  rawset(list, i, e)
end

function M.record(pub)
  return setmetatable(testing.record(pub), { __newindex = annotate })
end

-- The event names of a recording, for comparing sequences.
function M.names(events)
  local out = {}
  for i, e in ipairs(events) do out[i] = e.event end
  return out
end

-- A predicate for loop.run_until: true once list holds n entries.
function M.at_least(n, list)
  return function() return #list >= n end
end

return M
