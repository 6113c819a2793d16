-- Event recording for specs over real sockets: what a context emitted, in order, with the
-- response's status, entity-tag and Expires pulled out for short assertions.
local M = {}

-- Records every event of a context: { event, status, cause, etag, expires, response }.
function M.record(pub)
  local events = {}
  for _, name in ipairs { "progress", "published", "unpublished", "failed" } do
    pub:on(name, function(response, cause)
      events[#events + 1] = {
        event = name, cause = cause, response = response,
        status = response and response.status_code,
        etag = response and response:getHeader("SIP-ETag"),
        expires = response and tonumber(response:getHeader("Expires")),
      }
    end)
  end
  return events
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
