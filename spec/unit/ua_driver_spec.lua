-- sip.UA.new{ driver = d }: a driver written in Lua replaces the transport (the hook that
-- sip.openresty uses); attach() hands it the UA's core and the UA.
local sip = require "sip"

describe("sip.UA.new{driver}", function()
  it("sends through the driver and attaches it", function()
    local sent, attached = {}, {}
    local d = {}
    function d:send(data, host, port, transport) sent[#sent + 1] = { host, port, transport }; return true end
    function d:attach(core, ua) attached.core, attached.ua = core, ua end
    local ua = sip.UA.new { uri = "sip:alice@example.com", outbound_proxy = "sip:127.0.0.1:5099", driver = d }
    assert.are.equal(ua, attached.ua)
    assert.are.equal(ua._core, attached.core)
    ua:publish("sip:alice@example.com", "presence", "open")
    assert.same({ { "127.0.0.1", 5099, "udp" } }, sent)
    ua:close()
  end)

  it("refuses a driver without a send method", function()
    assert.has_error(function() sip.UA.new { uri = "sip:a@example.com", driver = {} } end,
      "bad argument to 'UA.new' (driver: expected a driver table with a send method, got table)")
    assert.has_error(function() sip.UA.new { uri = "sip:a@example.com", driver = 5 } end)
  end)
end)
