-- A fault-injecting UDP relay for the real-socket specs (spec/faults_spec.lua): it sits
-- between a UA (which uses it as outbound proxy) and a server, polled from the sip loop by a
-- short repeating sip.timer, and can duplicate, delay, drop or reorder what passes, or
-- inject datagrams of its own. Needs luasocket; relay.available() tells.
--
--   local relay = require "support.model_relay"
--   local r = relay.new{ server_port = esc.port,
--     on_response = function(data) return { { 0, data }, { 0.05, data } } end }  -- twice
--   local ua = sip.UA.new{ uri = ..., outbound_proxy = r:uri(), local_address = "127.0.0.1" }
--   ...; r:close()
--
-- on_request(data) / on_response(data) return a list of { delay_seconds, datagram } to send on
-- (nil: pass it unchanged at once; {}: drop it). r.requests / r.responses count what came in.
local sip = require "sip"
local testing = require "sip.testing"

local ok_socket, socket = pcall(require, "socket")

local M = {}

function M.available()
  return ok_socket and type(socket) == "table" and socket.udp ~= nil
end

local Relay = {}
Relay.__index = Relay

local function now() return socket.gettime() end

function M.new(o)
  assert(M.available(), "luasocket is not installed")
  local s = assert(socket.udp())
  assert(s:setsockname("127.0.0.1", o.port or 0))
  s:settimeout(0)
  local self = setmetatable({
    sock = s, server_host = o.server_host or "127.0.0.1", server_port = o.server_port,
    on_request = o.on_request, on_response = o.on_response, queue = {},
    requests = 0, responses = 0, closed = false,
  }, Relay)
  self.host, self.port = s:getsockname()
  self.port = tonumber(self.port)
  self:_schedule()
  return self
end

function Relay:uri() return ("sip:%s:%d"):format(self.host, self.port) end

function Relay:_send_later(delay, data, host, port)
  self.queue[#self.queue + 1] = { at = now() + delay, data = data, host = host, port = port }
end

-- Sends `data` to the UA (the last source of a request) after `delay` seconds.
function Relay:to_client(data, delay)
  if self.client_host then self:_send_later(delay or 0, data, self.client_host, self.client_port) end
end

function Relay:_poll()
  for _ = 1, 500 do
    local data, host, port = self.sock:receivefrom()
    if not data then break end
    port = tonumber(port)
    local from_server = host == self.server_host and port == self.server_port
    local plan
    if from_server then
      self.responses = self.responses + 1
      plan = self.on_response and self.on_response(data, self) or { { 0, data } }
      for _, p in ipairs(plan) do self:to_client(p[2], p[1]) end
    else
      self.requests = self.requests + 1
      self.client_host, self.client_port = host, port
      plan = self.on_request and self.on_request(data, self) or { { 0, data } }
      for _, p in ipairs(plan) do self:_send_later(p[1], p[2], self.server_host, self.server_port) end
    end
  end
  local t, keep = now(), {}
  table.sort(self.queue, function(a, b) return a.at < b.at end)
  for _, q in ipairs(self.queue) do
    if q.at <= t then self.sock:sendto(q.data, q.host, q.port) else keep[#keep + 1] = q end
  end
  self.queue = keep
end

function Relay:_schedule()
  if self.closed then return end
  local tm = sip.timer(0.002, function()
    if self.closed then return end
    self:_poll()
    self:_schedule()
  end)
  tm:unref() -- the relay alone does not keep sip.run() going
end

function Relay:close()
  if self.closed then return end
  self.closed = true
  self.sock:close()
end

-- A raw UDP sender (the flood source of faults_spec).
function M.sender()
  assert(M.available(), "luasocket is not installed")
  local s = assert(socket.udp())
  assert(s:setsockname("127.0.0.1", 0))
  return s
end

-- A loopback UDP port with nothing listening on it (bound, then closed).
function M.dead_port()
  local s = assert(socket.udp())
  assert(s:setsockname("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- Builds a provisional response (code) to the raw request `req`, for a relay that fabricates
-- a late 1xx.
function M.provisional(req, code)
  return testing.response_for(testing.parse(req), code,
                              { reason = code == 100 and "Trying" or "Session Progress" })
end

return M
