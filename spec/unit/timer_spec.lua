-- sip.timer's argument: out-of-range delays are clamped (never fire in practice), not turned
-- into an immediate timer by an out-of-range conversion; a NaN or a negative delay is refused.
local sip = require "sip"

describe("sip.timer", function()
  for _, secs in ipairs { math.huge, 1e20, 2 ^ 64, 2 ^ 53 } do
    it(("does not fire at once for %s seconds"):format(tostring(secs)), function()
      local fired = false
      local t = sip.timer(secs, function() fired = true end)
      for _ = 1, 5 do sip.run_nowait() end
      t:stop()
      assert.is_false(fired)
    end)
  end

  it("refuses NaN and negative delays, naming the argument", function()
    for _, secs in ipairs { 0 / 0, -1, -math.huge } do
      local ok, err = pcall(sip.timer, secs, function() end)
      assert.is_false(ok)
      assert.matches("bad argument to 'timer' %(seconds: expected a number >= 0", err)
    end
  end)

  it("run_once() waits for the next timer instead of returning at once, run after run", function()
    for _ = 1, 3 do -- the signal watchers of one run leave nothing that wakes the next
      local fired, turns = false, 0
      sip.timer(0.05, function() fired = true end)
      while not fired and turns < 1000 do
        sip.run_once()
        turns = turns + 1
      end
      assert.is_true(fired)
      assert.is_true(turns <= 3, "run_once returned " .. turns .. " times before a 50 ms timer")
    end
  end)

  it("fires a short timer", function()
    local fired = false
    sip.timer(0, function() fired = true end)
    sip.run_once()
    assert.is_true(fired)
  end)
end)
