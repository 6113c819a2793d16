-- The examples per event package (#integration): presence (PIDF), dialog (dialog-info XML)
-- and message-summary (RFC 3842) each publish, modify and unpublish — against the bundled
-- test compositor (their default) and against Kamailio's presence modules (presence_xml,
-- presence_dialoginfo, presence_mwi), which must accept each body and end with no state.
local K = require "support.kamailio"
local BUILD = os.getenv("SIP_BUILD") or "build"
local LUA = require("support.common").LUA

local EXAMPLES = { "presence", "dialog", "message-summary" }

local function run(example, proxy)
  local cmd = ("SIP_BUILD=%s timeout 30 %s examples/%s.lua %s 2>&1; echo \"exit=$?\"")
              :format(BUILD, LUA, example, proxy or "")
  local p = io.popen(cmd)
  local out = p:read("*a")
  p:close()
  return out
end

local function assert_life(out)
  local n = 0
  for _ in out:gmatch("published 200 OK etag=%S+") do n = n + 1 end
  assert.are.equal(2, n, out) -- the initial and the modify
  assert.matches("unpublished OK", out)
  assert.matches("exit=0", out)
  assert.not_matches("failed", out)
end

describe("examples #integration", function()
  for _, e in ipairs(EXAMPLES) do
    it(e .. " against the test compositor", function()
      assert_life(run(e))
    end)
  end

  local available, why = K.available()
  if not available then
    it("against Kamailio is skipped: " .. tostring(why), function() pending(why) end)
    return
  end

  local k
  setup(function() k = K.start { min_expires = 60 } end)
  teardown(function() if k then k:stop() end end)

  for _, e in ipairs(EXAMPLES) do
    it(e .. " against Kamailio", function()
      assert_life(run(e, k.uri))
      local ok, left = k:wait_empty()
      assert.is_true(ok, "presentity rows left: " .. tostring(left))
    end)
  end
end)
