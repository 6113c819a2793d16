--- The in-memory network and virtual clock behind `transport = "virtual"`: a driver
-- written in Lua. Requests the core sends are kept until taken; responses, time and
-- failures are handed in by the caller (@{sip.testing} wraps it).
--
--### The Lua driver contract
--
-- Any host with its own event loop can drive the library the same way: a table given as
-- the user agent's driver receives the core's sends, and hands responses, time and
-- failures back to the user agent's core (`ua._core`). See csrc/lua/ldrv_lua.c.
--
-- | driver method | called when |
-- |---|---|
-- | `send(self, data, host, port, transport)` → true / false | the core sends a request (`transport`: `"udp"`, `"tcp"`, `"tls"`); false or an error: refused (the transaction fails with `Connection Error`, detail `"HOST:PORT (udp): the transport refused the request"`) |
-- | `now(self)` → ms (optional) | before each call into the core; without it the time moves only when the driver says |
-- | `sync(self, deadline_ms or nil)` (optional) | the core's next timer deadline may have changed |
-- | `defer(self)` (optional) | events are waiting: call `ua._core:_drain()` on the next turn of your loop |
-- | `close(self)` (optional) | the user agent closed and nothing is in flight |
--
-- The user agent's core takes, from the driver: `:_receive(data[, host, port, transport])`
-- (bytes from the network), `:_tick(ms)` (runs the timers due by then, each at its own
-- instant), `:_deadline()`, `:_now()`, `:_drain()`, `:_dest_failed(host, port)` (every
-- transaction to that destination fails with `Connection Error`) and
-- `:_flow_failed(host, port, transport, reason)` (the same, `reason` becoming the events'
-- detail).
-- @classmod sip.vnet
local VNet = {}
VNet.__index = VNet

-- The user agent's core userdata is held weakly: the driver is referenced by the core, and
-- the core must stay collectable once its UA is closed and dropped.
local WEAK = { __mode = "v" }

--- A new network, its clock at 0.
-- @static
-- @treturn sip.vnet
function VNet.new()
  return setmetatable({ queue = {}, failures = 0, clock = 0, ref = setmetatable({}, WEAK) }, VNet)
end

--- Called by the binding for each request. A refusal (@{fail_sends}) returns false.
-- @string data the request
-- @string host the next hop
-- @int port
-- @string transport `"udp"`
-- @treturn bool accepted
function VNet:send(data, host, port, transport)
  if self.failures > 0 then
    self.failures = self.failures - 1
    return false
  end
  local q = self.queue
  q[#q + 1] = { data = data, host = host, port = port, transport = transport }
  return true
end

--- The binding hands the user agent's core to the driver once it exists (held weakly).
-- @param core the user agent's core userdata
function VNet:attach(core) self.ref.core = core end
--- The user agent's core, or nil once it was collected.
function VNet:core() return self.ref.core end

--- Every request sent since the last take, oldest first: `{ data, host, port, transport }`.
-- @treturn table
function VNet:take()
  local q = self.queue
  self.queue = {}
  return q
end

--- A response from the network, at the current virtual time.
-- @string data
-- @string[opt] host
-- @int[opt] port
-- @string[opt] transport
function VNet:receive(data, host, port, transport)
  local core = self:core()
  if core then core:_receive(data, host, port, transport) end
end

--- Moves the clock `ms` milliseconds on: every timer due meanwhile runs at its own
-- instant, and the events of each are delivered before the next runs.
-- @int ms
function VNet:advance(ms)
  local core = self:core()
  self.clock = self.clock + ms
  if core then core:_tick(self.clock) end
end

--- The virtual time in ms. (Not `now`: a driver with a `now()` method is asked the time on
-- every call into the core; this clock moves only when advanced.)
-- @treturn int
function VNet:time() return self.clock end

--- The next `n` sends are refused (the core then fails their transactions at once).
-- @int n
function VNet:fail_sends(n) self.failures = n end

--- Every transaction to host:port fails, as when a send is refused after it was accepted.
-- @string host
-- @int port
function VNet:dest_failed(host, port)
  local core = self:core()
  if core then core:_dest_failed(host, port) end
end

return VNet
