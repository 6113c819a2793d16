-- sip.vnet: the in-memory network and virtual clock behind transport = "virtual" — a driver
-- written in Lua (see csrc/lua/ldrv_lua.c for the contract). Requests the core sends are
-- kept until taken; responses, time and failures are handed in by the caller (sip.testing).
local VNet = {}
VNet.__index = VNet

-- The user agent's core userdata is held weakly: the driver is referenced by the core, and
-- the core must stay collectable once its UA is closed and dropped.
local WEAK = { __mode = "v" }

function VNet.new()
  return setmetatable({ queue = {}, failures = 0, clock = 0, ref = setmetatable({}, WEAK) }, VNet)
end

-- Called by the binding for each request. A refusal (fail_sends) returns false.
function VNet:send(data, host, port, transport)
  if self.failures > 0 then
    self.failures = self.failures - 1
    return false
  end
  local q = self.queue
  q[#q + 1] = { data = data, host = host, port = port, transport = transport }
  return true
end

-- The binding hands the core to the driver it serves once it exists.
function VNet:attach(core) self.ref.core = core end
function VNet:core() return self.ref.core end

-- Every request sent since the last take, oldest first: { data, host, port, transport }.
function VNet:take()
  local q = self.queue
  self.queue = {}
  return q
end

-- A response from the network, at the current virtual time.
function VNet:receive(data, host, port, transport)
  local core = self:core()
  if core then core:_receive(data, host, port, transport) end
end

-- Moves the clock ms milliseconds on: every timer due meanwhile runs at its own instant,
-- and the events of each are delivered before the next runs.
function VNet:advance(ms)
  local core = self:core()
  self.clock = self.clock + ms
  if core then core:_tick(self.clock) end
end

-- The virtual time in ms. (Not `now`: a driver with a now() method is asked the time on
-- every call into the core; this clock moves only when advanced.)
function VNet:time() return self.clock end

-- The next n sends are refused (the core then fails their transactions at once).
function VNet:fail_sends(n) self.failures = n end

-- Every transaction to host:port fails, as when a send is refused after it was accepted.
function VNet:dest_failed(host, port)
  local core = self:core()
  if core then core:_dest_failed(host, port) end
end

return VNet
