-- Issue 13 #5 over loopback UDP: ua:close() with a few thousand publications, all made at once
-- (the UA's window paces the initials and the removes): every remove completes and the test
-- compositor ends empty.
local sip = require "sip"
local loop = require "support.loop"

describe("mass close #integration", function()
  it("4 000 publications made at once, then ua:close(): the compositor ends empty", function()
    local N = 4000
    local comp = sip.Compositor.new { record = false }
    local ua = sip.UA.new { uri = "sip:mass@127.0.0.1", outbound_proxy = comp:uri(), local_address = "127.0.0.1" }
    local published, unpublished, failed = 0, 0, 0
    for i = 1, N do
      ua:publish("sip:u" .. i .. "@127.0.0.1", "presence", "open", { expires = 3600 })
        :on("published", function() published = published + 1 end)
        :on("failed", function() failed = failed + 1 end)
        :on("unpublished", function(r) if r and r.status_code == 200 then unpublished = unpublished + 1 end end)
    end
    assert.is_true(loop.run_until(function() return published + failed >= N end, 60), "published " .. published)
    assert.are.equal(N, published)
    assert.are.equal(N, comp:count())
    ua:close()
    assert.is_true(loop.run_until(function() return ua._core:state() == "closed" end, 60), "the UA did not close")
    assert.are.equal(0, failed)
    assert.are.equal(N, unpublished)
    assert.are.equal(0, comp:count())
    comp:close()
  end)
end)
