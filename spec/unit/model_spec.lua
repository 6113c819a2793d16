-- Model-based testing: seeded random sequences of user calls, server responses and clock
-- jumps against the library on the virtual clock, with invariants checked after every step
-- by spec/support/model.lua:
--   * at most one PUBLISH in flight per context (a new branch only after the previous
--     transaction's final response or Timer F; retransmissions identical, same branch);
--   * an initial never carries SIP-If-Match; a refresh/remove (no body) always does and has
--     no Content-Type; every SIP-If-Match is the newest SIP-ETag the context was given;
--   * CSeq + 1 per new request, the same Call-ID and From tag for a context;
--   * `failed` is immediately followed by `unpublished` of the same context; no `published`
--     after close();
--   * after ctx:close() only the remove (Expires: 0) goes out, nothing with
--     unpublishOnClose=false; after ua:close() the UA closes exactly when nothing is left in
--     flight, and then nothing is sent and no event fires, whatever time passes;
--   * a refresh goes out exactly at 0.9 × the granted Expires (the requested one when the
--     2xx has none or an invalid one), counted from the request's first transmission, and
--     requests leave only when something caused them (a call, a response, Timer F, a refresh
--     or retry falling due);
--   * a refresh/modify failing for a passing reason (408 480 500 503 504, Timer F) is retried
--     (progress, then the retry after 1, 2, 4 … 32 s, shortened to half of the validity left,
--     or after a longer Retry-After) exactly when the granted state allows it, else failed +
--     unpublished; a 412 recovery's initial likewise, for one requested interval;
--   * a refresh/modify still unanswered when the granted state expires ends then (failed);
--   * a stopped publication (unpublish(), close(), ua:close()) always sends its remove unless
--     the state is known gone (a 412, a 2xx, or its expiry) — issue 13 #1;
--   * no more than one transmission per Timer E interval (a transaction's copies never
--     outnumber the Timer E instants since its first transmission);
--   * `published` carries a 2xx with SIP-ETag — except, as doc/behaviour.md #61 and
--     scenarios_malformed_spec want, a 2xx without one to a refresh/modify (old tag kept);
--   * no Lua error escapes (handlers record, none raises; sip.on_error gets nothing).
-- A failure prints the seed, the step, the violation and the last 120 trace lines; rerun one
-- seed with MODEL_SEED=n MODEL_STEPS=m.
local model = require "support.model"

local SEEDS = { 1, 2, 3, 42, 1234, 99991, 2718281, 31415926 }
local STEPS = 13000 -- per seed: 104 000 in all

local function run(seed, steps)
  local ok, report, stats = model.run { seed = seed, steps = steps }
  assert(ok, report)
  return stats
end

describe("model-based run", function()
  local env_seed = tonumber(os.getenv("MODEL_SEED") or "")
  if env_seed then
    it("seed " .. env_seed .. " (MODEL_SEED)", function()
      run(env_seed, tonumber(os.getenv("MODEL_STEPS") or "") or STEPS)
    end)
    return
  end

  it("a short run (every build, valgrind too)", function()
    local stats = run(7, 1500)
    assert.is_true(stats.transactions > 100)
  end)

  it("#slow 8 seeds × 13 000 steps", function()
    local total = { steps = 0, transactions = 0, retransmissions = 0, events = 0, accepted_final = 0,
                    responses = 0, uas = 0, advances = 0 }
    local kinds = {}
    local t0 = os.clock()
    for _, seed in ipairs(SEEDS) do
      local stats = run(seed, STEPS)
      for k in pairs(total) do total[k] = total[k] + stats[k] end
      for k, n in pairs(stats.kinds) do kinds[k] = (kinds[k] or 0) + n end
    end
    io.stderr:write(string.format(
      "\nmodel: %d steps, seeds {%s}: %d UAs, %d transactions, %d retransmissions, %d responses " ..
      "(%d finals accepted), %d events, %d clock slices, %.1f s CPU\n",
      total.steps, table.concat(SEEDS, ","), total.uas, total.transactions, total.retransmissions,
      total.responses, total.accepted_final, total.events, total.advances, os.clock() - t0))
    local names = {}
    for k in pairs(kinds) do names[#names + 1] = k end
    table.sort(names)
    local parts = {}
    for _, k in ipairs(names) do parts[#parts + 1] = k .. "=" .. kinds[k] end
    io.stderr:write("model events: ", table.concat(parts, " "), "\n")
    assert.is_true(total.steps >= 100000)
    -- every kind of outcome was reached
    for _, k in ipairs { "published(200)", "progress(412)", "progress(423)", "progress(nil)", "progress(503)",
                         "failed(nil)", "failed(412)", "unpublished(200)", "unpublished(412)", "progress(100)" } do
      assert.is_true((kinds[k] or 0) > 0, "the run never produced " .. k)
    end
    -- the generator reaches the protocol, not only the drop paths
    assert.is_true(total.accepted_final > 5000)
  end)
end)
