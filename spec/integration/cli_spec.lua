-- sip-publish, the command (#integration), run as a process against the sip-compositor
-- program: it publishes a file, publishes it again when the file changes, removes the state
-- on SIGINT/SIGTERM before exiting 0; --once leaves the state and prints the entity-tag that
-- --etag resumes; a failure exits 1 saying why; bad usage exits 2; --trace prints the messages.
local BUILD = os.getenv("SIP_BUILD") or "build"
local LUA = require("support.common").LUA
local CLI = ("env LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='%s/?.so;;' %s bin/sip-publish.lua")
            :format(BUILD, LUA)

local function tmp(content)
  local path = os.tmpname()
  if content then
    local f = assert(io.open(path, "w"))
    f:write(content)
    f:close()
  end
  return path
end

local function slurp(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

-- Starts the compositor program on a free loopback port; returns its port, pid and log path.
local function compositor(args)
  local log = tmp()
  local pid = io.popen(("%s/sip-compositor --listen 127.0.0.1:0 --verbose %s > %s 2>&1 & echo $!")
                       :format(BUILD, args or "", log)):read("*l")
  local port
  for _ = 1, 100 do
    port = slurp(log):match("listening 127%.0%.0%.1:(%d+)")
    if port then break end
    os.execute("sleep 0.05")
  end
  assert(port, "the compositor did not start: " .. slurp(log))
  return tonumber(port), pid, log
end

-- Runs the command; `script` (shell) runs meanwhile with $P its pid. Returns output, exit.
local function run(args, script)
  local out = tmp()
  local status = tmp()
  os.execute(("%s %s > %s 2>&1 & P=$!; %s; wait $P; echo $? > %s")
             :format(CLI, args, out, script or ":", status))
  return slurp(out), tonumber(slurp(status))
end

describe("sip-publish #integration", function()
  local port, pid, log
  before_each(function() port, pid, log = compositor("--max-expires 4") end)
  after_each(function() os.execute("kill " .. pid .. " 2>/dev/null") end)

  for _, sig in ipairs { "INT", "TERM" } do
    it("publishes, re-publishes a changed file, and removes the state on SIG" .. sig, function()
      local body = tmp("open")
      local out, code = run(("--proxy sip:127.0.0.1:%d sip:alice@example.com presence %s"):format(port, body),
                            ("sleep 0.6; printf busy > %s; sleep 1.6; kill -%s $P"):format(body, sig))
      assert.are.equal(0, code, out)
      local published = 0
      for _ in out:gmatch("published   200 OK etag=") do published = published + 1 end
      assert.are.equal(2, published, out)
      assert.matches("modify      " .. body:gsub("%p", "%%%0") .. " changed %(4 bytes%)", out)
      assert.matches("SIG" .. sig .. ": removing the published state", out)
      assert.matches("unpublished 200 OK", out)
      assert.matches("%d%d:%d%d:%d%d%.%d%d%d published", out) -- a time on each line
      local requests = slurp(log)
      assert.matches("if%-match=%S+ expires=0 %-> 200", requests) -- the remove, answered
    end)
  end

  it("--once leaves the state and prints the entity-tag; --etag resumes it", function()
    local out, code = run(("--once --proxy sip:127.0.0.1:%d sip:bob@example.com presence - < /dev/null")
                          :format(port))
    assert.are.equal(2, code, out) -- an empty body: nothing to publish
    local body = tmp("open")
    out, code = run(("--once --proxy sip:127.0.0.1:%d sip:bob@example.com presence %s"):format(port, body))
    assert.are.equal(0, code, out)
    local etag = out:match("\n(%S+)\n*$")
    assert.is_truthy(etag, out)
    assert.not_matches("unpublished", out)
    out, code = run(("--once --etag %s --proxy sip:127.0.0.1:%d sip:bob@example.com presence %s")
                    :format(etag, port, body))
    assert.are.equal(0, code, out)
    assert.matches("if%-match=" .. etag:gsub("%p", "%%%0") .. " expires=3600 %-> 200", slurp(log)) -- a refresh of that state
  end)

  it("a failure exits 1 and says why", function()
    os.execute("kill " .. pid)
    port, pid, log = compositor("--script 1=403")
    local out, code = run(("--proxy sip:127.0.0.1:%d sip:carol@example.com presence %s")
                          :format(port, tmp("open")))
    assert.are.equal(1, code, out)
    assert.matches("failed      403 Forbidden", out)
  end)

  it("--trace prints each message to stderr: the PUBLISH and its 200, and retransmissions marked", function()
    local body = tmp("open")
    local out, code = run(("--once --trace --password pw-S3cret --proxy sip:127.0.0.1:%d sip:dave@example.com presence %s")
                          :format(port, body))
    assert.are.equal(0, code, out)
    local at = ("udp:127%%.0%%.0%%.1:%d"):format(port)
    assert.matches("%d%d:%d%d:%d%d%.%d%d%d %-%-> sent " .. at .. "\nPUBLISH sip:dave@example%.com SIP/2%.0\r\n", out)
    assert.matches("\r\n\r\nopen\n", out) -- the body, CRLF kept in the message
    assert.matches("%d%d:%d%d:%d%d%.%d%d%d <%-%- received " .. at .. "\nSIP/2%.0 200 OK\r\n", out)
    assert.not_matches("retransmission", out)
    assert.is_nil(out:find("pw-S3cret", 1, true))

    os.execute("kill " .. pid)
    port, pid, log = compositor("--script 1=drop")
    out, code = run(("--trace --proxy sip:127.0.0.1:%d sip:dave@example.com presence %s"):format(port, body),
                    "sleep 1.2; kill -INT $P; sleep 0.3; kill -INT $P")
    assert.are.equal(130, code, out) -- the PUBLISH was never answered: the second Ctrl-C ends it
    at = ("udp:127%%.0%%.0%%.1:%d"):format(port)
    assert.matches("%-%-> sent " .. at .. "\nPUBLISH ", out)
    assert.matches("%-%-> sent " .. at .. " %(retransmission 1%)\nPUBLISH ", out)
    assert.not_matches("<%-%-", out)
  end)

  it("bad usage exits 2; --help exits 0", function()
    local out, code = run("--bogus a b")
    assert.are.equal(2, code)
    assert.matches("unknown option %-%-bogus", out)
    out, code = run("sip:alice@example.com")
    assert.are.equal(2, code)
    out, code = run("--expires x sip:alice@example.com presence -")
    assert.are.equal(2, code)
    out, code = run("--help")
    assert.are.equal(0, code)
    assert.matches("usage: sip%-publish", out)
    assert.matches("%-%-trace ", out)
  end)
end)
