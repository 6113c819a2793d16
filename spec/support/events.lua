-- Helpers for specs over real sockets: event recording (what a context emitted, in order, with
-- the response's status, entity-tag and Expires pulled out), responses made from a raw request,
-- and handler errors turned into spec failures.
local M = {}

-- A response to the raw request `req`: status_line, Via, From, To, Call-ID and CSeq copied,
-- the extra lines, Content-Length: 0.
function M.response_to(req, status_line, extra)
  local out = { status_line }
  for line in req:gmatch("([^\r\n]+)\r\n") do
    local name = line:match("^([%w%-]+):")
    if name and ({ Via = true, From = true, To = true, ["Call-ID"] = true, CSeq = true })[name] then
      out[#out + 1] = line
    end
  end
  for _, line in ipairs(extra or {}) do out[#out + 1] = line end
  out[#out + 1] = "Content-Length: 0"
  return table.concat(out, "\r\n") .. "\r\n\r\n"
end

-- Inside a describe block: an error raised by any event handler fails the running spec.
-- (busted's before_each/after_each are given: a module does not see the spec's globals.)
function M.fail_on_handler_errors(sip, before_each, after_each)
  local saved
  before_each(function()
    saved = sip.on_error
    sip.on_error = function(msg) error("a handler raised: " .. tostring(msg)) end
  end)
  after_each(function() sip.on_error = saved end)
end

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
