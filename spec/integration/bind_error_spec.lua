-- Issue 12, "failures that say why": a socket that cannot be bound is a runtime error raised
-- at the caller's line of sip.UA.new (not at a line of lua/sip/ua.lua), naming the address
-- and the system's reason. (The argument errors: spec/unit/error_positions_spec.lua.)
local sip = require "sip"

describe("sip.UA.new with an address that cannot be bound #integration", function()
  it("raises 'sip.UA.new: cannot bind UDP …' at the caller's line", function()
    local ok, u = pcall(sip.UA.new, { uri = "sip:a@b.c", localAddress = "192.0.2.77" })
    if ok then u:close(); sip.run(); return pending("192.0.2.77 is bindable here") end
    local fn = function() sip.UA.new{ uri = "sip:a@b.c", localAddress = "192.0.2.77" } end
    local info = debug.getinfo(fn, "S")
    local where = ("%s:%d: "):format(info.short_src, info.linedefined)
    local _, err = pcall(fn)
    assert.equals(where, err:sub(1, #where))
    assert.matches("^sip%.UA%.new: cannot bind UDP 192%.0%.2%.77:0: %a", err:sub(#where + 1))
  end)
end)
