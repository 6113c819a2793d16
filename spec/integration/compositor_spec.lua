-- The bundled test compositor (sip.Compositor and the sip-compositor program) over loopback
-- UDP, driven by the library's own UA: RFC 3903 §6 answers, expiry, scripting.
local sip = require "sip"
local testing = require "sip.testing"
local loop = require "support.loop"
local common = require "support.common"

local TARGET, BUILD, read_file = common.TARGET, common.BUILD, common.read_file

local function setup(opts, pub_opts)
  local comp = sip.Compositor.new(opts or {})
  local ua = sip.UA.new { uri = TARGET, outbound_proxy = comp:uri(), local_address = "127.0.0.1" }
  local pub = ua:publish(TARGET, "presence", "B1", pub_opts)
  return comp, ua, pub, testing.record(pub)
end

local function shutdown(ua, comp)
  loop.close_ua(ua, 5)
  comp:close()
end

local function wait_events(events, n, timeout)
  assert(loop.run_until(function() return #events >= n end, timeout or 5),
         ("expected %d events, got %d"):format(n, #events))
end

describe("test compositor #integration", function()
  it("hands out a new entity-tag per success and honours SIP-If-Match", function()
    local comp, ua, pub, events = setup()
    wait_events(events, 1)
    local r1 = events[1].response
    assert.are.equal("published", events[1].event)
    local e1 = r1:getHeader("SIP-ETag")
    assert.is_truthy(e1)
    assert.are.equal("3600", r1:getHeader("Expires"))
    assert.is_truthy(r1:getHeader("Via"):find("received=127.0.0.1", 1, true))
    assert.is_truthy(r1:getHeader("Via"):find("rport=" .. ua:port(), 1, true))
    local pubs = comp:publications()
    assert.are.equal(1, #pubs)
    assert.are.same({ TARGET, "presence", e1, "B1" }, { pubs[1].uri, pubs[1].event, pubs[1].etag, pubs[1].body })

    pub:publish() -- refresh: a new tag, the body kept
    wait_events(events, 2)
    local e2 = events[2].response:getHeader("SIP-ETag")
    assert.are_not.equal(e1, e2)
    assert.are.equal("B1", comp:publications()[1].body)

    pub:publish("B2") -- modify
    wait_events(events, 3)
    assert.are.equal("B2", comp:publications()[1].body)

    pub:unpublish()
    wait_events(events, 4)
    assert.are.equal("unpublished", events[4].event)
    assert.are.equal("0", events[4].response:getHeader("Expires"))
    assert.is_nil(events[4].response:getHeader("SIP-ETag"))
    assert.are.equal(0, comp:count())
    -- what went over the wire, as the compositor saw it
    local reqs = comp:requests()
    assert.are.equal(4, #reqs)
    assert.is_truthy(reqs[2]:find("SIP-If-Match: " .. e1, 1, true))
    assert.is_truthy(reqs[4]:find("Expires: 0", 1, true))
    shutdown(ua, comp)
  end)

  it("answers a forgotten entity-tag with 412 (the client recovers with an initial)", function()
    local comp, ua, pub, events = setup()
    wait_events(events, 1)
    comp:clear()
    pub:publish()
    wait_events(events, 3)
    assert.are.same({ "published", "progress", "published" },
                    { events[1].event, events[2].event, events[3].event })
    assert.are.equal(412, events[2].status)
    assert.are.equal(1, comp:count())
    shutdown(ua, comp)
  end)

  it("answers 423 with Min-Expires below its minimum, and caps at its maximum", function()
    local comp, ua, _, events = setup({ min_expires = 60, max_expires = 120 }, { expires = 10 })
    wait_events(events, 2)
    assert.are.equal(423, events[1].status)
    assert.are.equal("60", events[1].response:getHeader("Min-Expires"))
    assert.are.equal("published", events[2].event)
    assert.are.equal("60", events[2].response:getHeader("Expires"))
    shutdown(ua, comp)

    comp, ua, _, events = setup({ max_expires = 120 }, { expires = 7200 })
    wait_events(events, 1)
    assert.are.equal("120", events[1].response:getHeader("Expires"))
    shutdown(ua, comp)
  end)

  it("answers 489 for an event package it was not configured with", function()
    local comp, ua, _, events = setup { events = { "dialog" } }
    wait_events(events, 2)
    assert.are.same({ "failed", 489, "Bad Event" }, { events[1].event, events[1].status, events[1].cause })
    assert.are.equal("dialog", events[1].response:getHeader("Allow-Events"))
    shutdown(ua, comp)
  end)

  it("expires a publication that is not refreshed", function()
    local comp, ua, pub, events = setup({ max_expires = 1 }, { unpublishOnClose = false })
    wait_events(events, 1)
    assert.are.equal(1, comp:count())
    pub:close() -- stops refreshing, sends nothing
    loop.run_until(nil, 1.3)
    assert.are.equal(0, comp:count())
    shutdown(ua, comp)
  end)

  it("answers what on_request scripts, and retransmissions from its cache", function()
    local n = 0
    local comp, ua, _, events = setup {
      on_request = function(req)
        n = n + 1
        if req.number == 1 then return { delay = 0.7 } end -- after the first retransmission
        return nil
      end,
    }
    wait_events(events, 1)
    loop.run_until(nil, 0.2)
    assert.are.equal(1, #events) -- the duplicate answer is absorbed by the client
    -- the retransmission (at 0.5 s) was matched to its transaction, not processed again
    assert.are.equal(1, n)
    assert.are.equal(1, #comp:requests())
    shutdown(ua, comp)

    comp, ua, _, events = setup {
      on_request = function() return { code = 503, reason = "Go Away", headers = { ["Retry-After"] = 5 } } end,
    }
    wait_events(events, 2)
    assert.are.same({ "failed", 503, "Service Unavailable" }, { events[1].event, events[1].status, events[1].cause })
    assert.are.equal("Go Away", events[1].response.reason_phrase)
    assert.are.equal("5", events[1].response:getHeader("Retry-After"))
    shutdown(ua, comp)
  end)

  it("refuses a non-loopback address unless asked", function()
    assert.has_error(function() sip.Compositor.new { host = "0.0.0.0" } end)
    assert.has_error(function() sip.Compositor.new { bogus = 1 } end)
    assert.has_error(function() sip.Compositor.new { port = "x" } end)
  end)

  it("runs as a program, scripted by request number", function()
    local cmd = "sh -c 'exec ./" .. BUILD ..
                "/sip-compositor --listen 127.0.0.1:0 --script 1=423:Min-Expires=90' & echo pid $!"
    local proc = assert(io.popen(cmd .. "; wait", "r"))
    local pid, port
    while not (pid and port) do
      local line = assert(proc:read("*l"), "the compositor did not start")
      pid = pid or line:match("^pid (%d+)")
      port = port or tonumber(line:match("^listening 127%.0%.0%.1:(%d+)"))
    end
    local ok, err = pcall(function()
      local ua = sip.UA.new { uri = TARGET, outbound_proxy = "sip:127.0.0.1:" .. port,
                              local_address = "127.0.0.1" }
      local pub = ua:publish(TARGET, "presence", "B1", { expires = 30, unpublishOnClose = false })
      local events = {}
      pub:on("progress", function(r) events[#events + 1] = "progress " .. r.status_code end)
      pub:on("published", function(r) events[#events + 1] = "published " .. r:getHeader("Expires") end)
      wait_events(events, 2)
      assert.are.same({ "progress 423", "published 90" }, events)
      ua:close()
      assert(loop.run_until(function() return ua._core:state() == "closed" end, 5))
    end)
    os.execute("kill " .. pid)
    proc:close()
    assert(ok, err)
  end)
end)

describe("test compositor: on_request #integration", function()
  local saved
  before_each(function() saved = sip.on_error end)
  after_each(function() sip.on_error = saved end)

  it("sees the request as received, header lines included", function()
    local seen
    local comp, ua, _, events = setup {
      on_request = function(req) seen = req end,
    }
    wait_events(events, 1)
    assert.are.equal("published", events[1].event)
    assert.are.same({ "PUBLISH", TARGET, "presence", 1, "B1", "text/plain", "127.0.0.1", ua:port() },
                    { seen.method, seen.uri, seen.event, seen.number, seen.body, seen.content_type,
                      seen.source_host, seen.source_port })
    assert.is_nil(seen.etag)
    assert.are.equal(3600, seen.expires)
    assert.is_truthy(seen.branch:find("^z9hG4bK"))
    local names = {}
    for i, h in ipairs(seen.headers) do
      assert.are.equal("string", type(h[1]))
      assert.are.equal("string", type(h[2]))
      names[h[1]:lower()] = h[2]
      assert.is_truthy(i <= #seen.headers)
    end
    assert.are.equal("presence", names.event)
    assert.are.equal(seen.call_id, names["call-id"])
    assert.are.equal(seen.data, comp:requests()[1])
    shutdown(ua, comp)
  end)

  it("names the bad option of Compositor.new", function()
    local cases = {
      { { host = 5 }, "host: expected a string" },
      { { port = 70000 }, "port: must be between 0 and 65535" },
      { { min_expires = 120, max_expires = 60 }, "min_expires: must not exceed max_expires" },
      { { events = "presence" }, "events: expected an array" },
      { { events = { "presence;id=1" } }, "events[1]: expected an event package name" },
      { { any_address = "yes" }, "any_address: expected a boolean" },
      { { on_request = true }, "on_request: expected a function" },
      { { bogus = 1 }, "unknown field \"bogus\"" },
      { { host = "192.0.2.1" }, "not a loopback address" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(sip.Compositor.new, c[1])
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find(c[2], 1, true), tostring(err))
    end
  end)

  it("reports a bad action like a handler error, then answers by the rules", function()
    local errors = {}
    sip.on_error = function(msg) errors[#errors + 1] = tostring(msg) end
    local comp, ua, _, events = setup {
      on_request = function() return { code = "412" } end,
    }
    wait_events(events, 1)
    assert.are.equal("published", events[1].event)
    assert.are.equal(1, #errors)
    assert.is_truthy(errors[1]:find("code: expected an integer 100-699", 1, true))
    shutdown(ua, comp)

    errors = {}
    comp, ua, _, events = setup {
      on_request = function() return { code = 503, headers = { ["Retry-After"] = "5\r\nX: y" } } end,
    }
    wait_events(events, 1)
    assert.are.equal("published", events[1].event)
    assert.is_truthy(errors[1]:find("CR, LF or NUL", 1, true))
    shutdown(ua, comp)
  end)
end)

-- The program, driven by SIPp scenarios (spec/sipp/*.xml) over 127.0.0.1. SIPp runs with
-- -nr (no retransmissions of its own: the scenarios send retransmissions by hand) and -m 1.
local CLEAN_ENV = common.CLEAN_ENV
local HAVE_SIPP = require("support.common").ok("command -v sipp > /dev/null 2>&1")
HAVE_SIPP = HAVE_SIPP == true or HAVE_SIPP == 0

-- A short pause for polling a program's log: one turn of the loop with a timer due.
local function pause(seconds)
  sip.timer(seconds, function() end)
  sip.run_once()
end

-- Starts build/sip-compositor --verbose on an ephemeral loopback port; waits (5 s at most)
-- for its "listening" line. The wrapper shell appends "exit N" to the log when it ends.
local function start_program(args)
  local base = os.tmpname()
  local p = { log = base .. ".log", pidfile = base .. ".pid", base = base }
  os.execute(("(%s/sip-compositor %s > %s 2>&1 & echo $! > %s; wait $!; echo \"exit $?\" >> %s)" ..
              " > /dev/null 2>&1 &"):format(BUILD, args, p.log, p.pidfile, p.log))
  for _ = 1, 250 do
    local out = read_file(p.log) or ""
    p.pid = tonumber((read_file(p.pidfile) or ""):match("%d+"))
    p.port = tonumber(out:match("listening 127%.0%.0%.1:(%d+)"))
    if (p.pid and p.port) or out:match("exit %d+") then return p, out end
    pause(0.02)
  end
  return p, read_file(p.log)
end

-- Signals the program (SIGTERM by default) and waits (5 s at most) for it to end; returns
-- its output and exit status.
local function stop_program(p, signal)
  local out
  if p.pid then os.execute(("kill -%s %d 2>/dev/null"):format(signal or "TERM", p.pid)) end
  for _ = 1, 250 do
    out = read_file(p.log) or ""
    if out:match("exit %d+") then break end
    pause(0.02)
  end
  local status = tonumber(out:match("exit (%d+)"))
  if not status and p.pid then os.execute(("kill -KILL %d 2>/dev/null"):format(p.pid)) end
  os.remove(p.log)
  os.remove(p.pidfile)
  os.remove(p.base)
  return out, status
end

-- Runs one SIPp scenario against port; returns true, or false and SIPp's diagnostics.
local function run_sipp(scenario, port)
  local base = os.tmpname()
  local cwd = os.getenv("PWD") or "."
  local cmd = ("cd /tmp && %s timeout 20 sipp -sf %s/spec/sipp/%s -i 127.0.0.1 -nr -m 1 " ..
               "-timeout 10s -nostdin -trace_err -error_file %s.err 127.0.0.1:%d > %s.out 2>&1")
              :format(CLEAN_ENV, cwd, scenario, base, port, base)
  local ok = os.execute(cmd)
  ok = ok == true or ok == 0
  local why = ok or ((read_file(base .. ".err") or "") .. (read_file(base .. ".out") or ""):sub(-1500))
  os.remove(base .. ".err")
  os.remove(base .. ".out")
  os.remove(base)
  return ok, why
end

-- Starts the program with args, runs the scenario, stops the program: returns its output.
local function scenario(name, args)
  local p, started = start_program("--listen 127.0.0.1:0 --verbose " .. (args or ""))
  assert(p.port, "sip-compositor did not start: " .. tostring(started))
  local t0 = sip.now()
  local ok, why = run_sipp(name, p.port)
  local elapsed = sip.now() - t0
  local out, status = stop_program(p)
  assert(ok, name .. " failed:\n" .. tostring(why) .. "\ncompositor:\n" .. out)
  assert.are.equal(0, status)
  return out, elapsed
end

describe("sip-compositor program, driven by SIPp #integration", function()
  if not HAVE_SIPP then
    it("needs sipp (Debian package sip-tester)", function() pending("sipp is not installed") end)
    return
  end

  it("initial, refresh with a new tag, stale tag 412, modify, remove, then 412", function()
    local out = scenario("publish_flow.xml")
    local n = 0
    for _ in out:gmatch("\n#%d+ PUBLISH") do n = n + 1 end
    assert.are.equal(6, n)
    assert.is_truthy(out:find("#5 PUBLISH sip:alice@example.com event=presence if%-match=%S+ " ..
                              "expires=0 %-> 200 expires=0\n"))
  end)

  it("answers a retransmission from its transaction cache, without processing it again", function()
    local out = scenario("retransmission.xml")
    assert.is_truthy(out:find("\n%- PUBLISH %S+ event=presence if%-match=%- expires=60 %-> 200 %(retransmission%)\n"))
    assert.is_nil(out:find("#3 ", 1, true)) -- the initial and the refresh only
  end)

  it("answers 423 with Min-Expires below --min-expires and caps at --max-expires", function()
    scenario("min_expires.xml", "--min-expires 1800 --max-expires 7200")
  end)

  it("answers 489 (missing or unlisted Event), 400 (bad Expires, no body) and 405", function()
    local out = scenario("bad_requests.xml", "--events presence")
    assert.is_truthy(out:find("- MESSAGE sip:alice@example.com", 1, true))
  end)

  it("copes with compact headers, Event parameters and Content-Length framing", function()
    scenario("framing.xml")
  end)

  it("--script drop: no answer to the request nor its retransmission", function()
    local out = scenario("script_drop.xml", "--script 1=drop")
    assert.is_truthy(out:find("#1 PUBLISH [^\n]* %-> drop\n"))
    assert.is_truthy(out:find("%-> no answer %(retransmission%)\n"))
  end)

  it("--script codes, headers and delay by request number", function()
    local out, elapsed = scenario("script_codes.xml", "--script 1=412,2=423:Min-Expires=1800,3=delay:0.5")
    assert.is_truthy(out:find("#3 PUBLISH [^\n]* %-> 200 etag=%S+ expires=60 after 0%.5s\n"))
    assert.is_true(elapsed >= 0.5)
  end)

  it("exits 0 on SIGINT and SIGTERM", function()
    for _, sig in ipairs { "INT", "TERM" } do
      local p = start_program("--listen 127.0.0.1:0")
      assert.is_truthy(p.port)
      local _, status = stop_program(p, sig)
      assert.are.equal(0, status)
    end
  end)

  it("refuses a non-loopback address without --any-address", function()
    local p, out = start_program("--listen 0.0.0.0:0")
    local _, status = stop_program(p)
    assert.is_nil(p.port)
    assert.are.equal(1, status)
    assert.is_truthy(out:find("not a loopback address", 1, true))
  end)
end)
