-- Issue 13 #4: after a loop stall, an overdue Timer E sends once and re-spaces from now
-- (RFC 3261 §17.1.2.2), a late refresh leaves once, and Timer F counts from the real send.
-- The core is driven from C as a driver drives it (spec/unit/stall.c, built against the
-- core's objects of the default build); the virtual transport of sip.testing never stalls.
local BUILD = "build"

describe("issue 13 #4: a loop stall", function()
  it("makes no burst of missed retransmissions; Timer F counts from the real send", function()
    local objs = {}
    local p = io.popen("ls " .. BUILD .. "/obj/core/*.o 2>/dev/null")
    for line in p:lines() do objs[#objs + 1] = line end
    p:close()
    if #objs == 0 then pending("no core objects in " .. BUILD .. "/obj/core (make all)") return end
    local exe = BUILD .. "/spec/stall"
    -- the plain build's objects, compiled and run without a sanitizer the suite may preload
    local cc = ("env -u LD_PRELOAD cc -std=c11 -D_GNU_SOURCE -O1 -Wall -Wextra -Werror -Icsrc/include -o %s spec/unit/stall.c %s "
                .. "-losip2 -losipparser2 -lcrypto 2>&1"):format(exe, table.concat(objs, " "))
    local h = io.popen(cc)
    local out = h:read("a")
    local ok = h:close()
    assert(ok, "cannot build spec/unit/stall.c:\n" .. out)
    h = io.popen("env -u LD_PRELOAD " .. exe .. " 2>&1")
    out = h:read("a")
    ok = h:close()
    assert(ok and not out:find("FAIL"), out)
  end)
end)
