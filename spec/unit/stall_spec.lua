-- After a loop stall (issue 13 #4), an overdue Timer E sends once and re-spaces from now
-- (RFC 3261 §17.1.2.2), a late refresh leaves once, and Timer F counts from the real send.
-- The core is driven from C as a driver drives it (spec/support/stall.c, built by make all):
-- the virtual transport of sip.testing never stalls.
describe("a loop stall", function()
  it("makes no burst of missed retransmissions; Timer F counts from the real send", function()
    local exe
    for _, dir in ipairs { os.getenv("SIP_BUILD") or "build", "build" } do
      local f = io.open(dir .. "/spec/stall")
      if f then f:close() exe = dir .. "/spec/stall" break end
    end
    if not exe then pending("build/spec/stall is not built (make all)") return end
    -- run without a sanitizer the suite may preload (the program is a plain build's)
    local h = io.popen("env -u LD_PRELOAD " .. exe .. " 2>&1")
    local out = h:read("*a")
    local ok = h:close()
    assert(ok and not out:find("FAIL"), out)
  end)
end)
