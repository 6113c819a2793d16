-- OpenResty (#integration): Debian's nginx with lua-nginx-module runs a user agent on the
-- sip.openresty driver (nginx's own loop: UDP cosockets, one pump timer), publishing to the
-- test compositor that runs in this busted process. The nginx application is
-- spec/support/openresty_app.lua; nginx.conf is written here. Proven: ua:publish from
-- init_worker_by_lua, from a request handler and from a timer; handlers that make a cosocket
-- call, ngx.sleep and ngx.timer.at; a refresh timed by the core; HUP reloads that unpublish
-- (on_exit = "unpublish") or hand over through the etag store (on_exit = "handover", the
-- next worker resumes with SIP-If-Match); SIGQUIT removes everything.
--
-- Needs build/luajit/sip/core.so (make luajit-build) and nginx's Lua module: the nginx and
-- libnginx-mod-http-lua packages, or SIP_NGINX_MODULES (the .so directory), SIP_NGINX_LUA_PATH
-- (where resty/core.lua is) and LD_LIBRARY_PATH (libluajit2) for a private copy.
local sip = require "sip"
local socket = require "socket"

local MODULES = os.getenv("SIP_NGINX_MODULES") or "/usr/lib/nginx/modules"
local LUA_PATH = os.getenv("SIP_NGINX_LUA_PATH")
local CORE = "build/luajit/sip/core.so"

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

local function missing()
  if not exists(CORE) then return CORE .. " is missing (make luajit-build)" end
  if not require("support.common").ok("command -v nginx >/dev/null 2>&1") then return "nginx is not installed" end
  if not exists(MODULES .. "/ngx_http_lua_module.so") then
    return "nginx's Lua module is not installed (libnginx-mod-http-lua; or set SIP_NGINX_MODULES)"
  end
  if not require("support.common").ok("command -v curl >/dev/null 2>&1") then return "curl is not installed" end
  return nil
end

-- Helper commands run without the sanitizer runtime `make asan` preloads into this process:
-- pgrep and curl hang under it.
local CLEAN_ENV = require("support.common").CLEAN_ENV

local function sh(cmd)
  local p = io.popen(CLEAN_ENV .. cmd .. " 2>&1")
  local out = p:read("*a")
  p:close()
  return out
end

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local CONF = [[
load_module MODULES/ndk_http_module.so;
load_module MODULES/ngx_http_lua_module.so;
daemon off;
master_process on;
worker_processes 1;
error_log logs/error.log info;
pid logs/nginx.pid;
events { worker_connections 128; }
http {
  access_log off;
  lua_socket_log_errors off;
  lua_package_path "REPO/lua/?.lua;REPO/lua/?/init.lua;REPO/spec/support/?.lua;LUA_PATH;;";
  lua_package_cpath "REPO/build/luajit/?.so;;";
  lua_shared_dict sipt_etags 1m;
  lua_shared_dict sipt_log 1m;
  init_worker_by_lua_block {
    require("openresty_app").start { aor = "sip:alice@example.test", proxy = "PROXY",
                                     http_port = HTTP_PORT, expires = 30, on_exit = "ON_EXIT" }
  }
  server {
    listen 127.0.0.1:HTTP_PORT;
    location = /echo { content_by_lua_block { ngx.say("pong") } }
    location = /publish { content_by_lua_block {
      local a = ngx.req.get_uri_args()
      ngx.say(require("openresty_app").publish(a.name, a.body, tonumber(a.expires)))
    } }
    location = /timer { content_by_lua_block {
      local a = ngx.req.get_uri_args()
      ngx.say(require("openresty_app").publish_from_timer(a.name, a.body))
    } }
    location = /boom { content_by_lua_block { ngx.say(require("openresty_app").boom()) } }
    location = /deadhop { content_by_lua_block {
      ngx.say(require("openresty_app").deadhop(tonumber(ngx.req.get_uri_args().port)))
    } }
    location = /log { content_by_lua_block { ngx.print(require("openresty_app").log()) } }
    location = /status { content_by_lua_block { ngx.say(require("openresty_app").status()) } }
  }
}
]]

describe("OpenResty driver #integration", function()
  local why = missing()
  if why then
    pending("skipped: " .. why)
    return
  end

  local prefix, http_port, esc, master
  local repo = sh("pwd"):gsub("%s+$", "")

  local function write_conf(on_exit)
    local conf = CONF:gsub("MODULES", MODULES):gsub("REPO", repo):gsub("LUA_PATH", LUA_PATH or "")
                     :gsub("PROXY", esc:uri()):gsub("HTTP_PORT", tostring(http_port))
                     :gsub("ON_EXIT", on_exit)
    local f = assert(io.open(prefix .. "/conf/nginx.conf", "w"))
    f:write(conf)
    f:close()
  end

  -- Serves the compositor (this process's loop) until cond() is true or timeout s pass.
  local function wait_for(cond, timeout)
    local deadline = socket.gettime() + (timeout or 5)
    repeat
      sip.run_nowait()
      if cond() then return true end
      socket.sleep(0.01)
    until socket.gettime() > deadline
    return cond()
  end

  local function get(path)
    -- curl blocks this process: the compositor waits meanwhile, which the endpoints never need
    -- (without the sanitizer runtime `make asan` preloads: curl hangs under it)
    return sh(("curl -s -m 3 'http://127.0.0.1:%d%s'"):format(http_port, path))
  end

  local function log() return get("/log") end
  local function count(pattern)
    local n = 0
    for _ in log():gmatch(pattern) do n = n + 1 end
    return n
  end
  local function alive(pid) return require("support.common").ok("kill -0 " .. pid .. " 2>/dev/null") end
  local function worker_pids()
    return sh("pgrep -P " .. master):gsub("%s+$", "")
  end

  setup(function()
    prefix = sh("mktemp -d /tmp/sip-openresty.XXXXXX"):gsub("%s+$", "")
    os.execute("mkdir -p " .. prefix .. "/conf " .. prefix .. "/logs")
    http_port = free_port()
    esc = sip.Compositor.new { port = 0 }
    write_conf("unpublish")
    -- nginx is not ours to sanitize: make asan's LD_PRELOAD stays with this process
    master = sh(("cd %s && (env -u LD_PRELOAD nginx -p %s -c conf/nginx.conf > logs/stdout 2>&1 & echo $!)"):format(prefix, prefix))
      :gsub("%s+$", "")
    assert(wait_for(function() return get("/echo"):match("pong") end, 10), "nginx did not start: " ..
           sh("cat " .. prefix .. "/logs/error.log " .. prefix .. "/logs/stdout"))
  end)

  teardown(function()
    if master and alive(master) then
      os.execute("kill -TERM " .. master)
      wait_for(function() return not alive(master) end, 5)
    end
    if esc then esc:close() end
    -- nginx's error log must hold no Lua error and no crashed worker
    local errors = sh("grep -E 'signal [0-9]+ \\(SIG(SEGV|ABRT|BUS)|lua entry thread aborted|runtime error' "
                      .. prefix .. "/logs/error.log")
    if prefix and not os.getenv("SIP_KEEP") then os.execute("rm -rf " .. prefix) end
    assert.are.equal("", errors)
  end)

  it("publishes from init_worker_by_lua; handlers make a cosocket call, sleep and start a timer", function()
    assert.is_true(wait_for(function() return log():match("published init 200") ~= nil end))
    assert.is_true(wait_for(function() return log():match("timer%-from%-handler init") ~= nil end))
    local line = log():match("published init [^\n]*")
    assert.matches("published init 200 %S+ pong timer", line)
    assert.are.equal(1, esc:count())
    assert.are.equal("open-init", esc:publications()[1].body)
  end)

  it("publishes and modifies from a request handler", function()
    assert.matches("ok", get("/publish?name=bob&body=bob-1"))
    assert.is_true(wait_for(function() return esc:count() == 2 end))
    assert.is_true(wait_for(function() return log():match("published bob 200 %S+ pong") ~= nil end))
    assert.matches("ok", get("/publish?name=bob&body=bob-2"))
    assert.is_true(wait_for(function()
      for _, p in ipairs(esc:publications()) do if p.body == "bob-2" then return true end end
    end))
  end)

  it("publishes from an ngx.timer.at callback", function()
    assert.matches("ok", get("/timer?name=carol&body=carol-1"))
    assert.is_true(wait_for(function() return esc:count() == 3 end))
    assert.is_true(wait_for(function() return log():match("published carol 200") ~= nil end))
  end)

  it("refreshes on the core's timers (0.9 x Expires)", function()
    assert.matches("ok", get("/publish?name=dave&body=dave-1&expires=2"))
    assert.is_true(wait_for(function() return count("published dave 200") >= 2 end, 6))
    assert.matches("sent=%d+ received=%d+", get("/status"))
  end)

  -- The next worker starts before the exiting one is done: it resumes 'init' from the store
  -- while the old one removes it. Whichever request comes second gets 412 (a remove of a
  -- replaced tag; or a refresh of a removed one, which the core turns into an initial
  -- PUBLISH): either way one publication is left, the new worker's.
  it("a handler's error (or ngx.exit) goes to sip.on_error; the other handlers, the UA and the worker go on", function()
    local worker = worker_pids()
    assert.matches("ok", get("/boom"))
    assert.is_true(wait_for(function() return log():match("after%-boom") ~= nil end), log())
    assert.matches("handler%-error [^\n]*boom in handler", log())
    assert.matches("handler%-error [^\n]*ngx.exit in an event handler", log())
    assert.are.equal(worker, worker_pids())
    assert.is_true(wait_for(function() return esc:count() == 5 end))
  end)

  it("a closed next hop fails at once (ICMP on the connected socket), not after Timer F", function()
    assert.matches("ok", get("/deadhop?port=" .. free_port()))
    assert.is_true(wait_for(function() return log():match("deadhop%-failed") ~= nil end, 5), log())
    local secs = tonumber(log():match("deadhop%-failed Connection Error (%S+)"))
    assert.is_true(secs ~= nil and secs < 1, log())
  end)

  it("a reload with on_exit = 'unpublish' removes the worker's publications; the next one takes 'init' over", function()
    local old = worker_pids()
    write_conf("handover") -- for the next worker; the exiting one keeps its own setting
    os.execute("kill -HUP " .. master)
    assert.is_true(wait_for(function() return not alive(old) end, 10))
    assert.is_true(wait_for(function() return count(old .. " unpublished ") >= 4 end), log())
    assert.is_true(wait_for(function() return count("published init 200") >= 2 end), log())
    assert.is_true(wait_for(function() return esc:count() == 1 end))
    assert.are.equal("open-init", esc:publications()[1].body)
  end)

  it("a reload with on_exit = 'handover' sends nothing; the next worker resumes with the stored etag", function()
    local etag = esc:publications()[1].etag
    local before = #esc:requests()
    local old = worker_pids()
    os.execute("kill -HUP " .. master)
    assert.is_true(wait_for(function() return not alive(old) end, 10))
    assert.is_true(wait_for(function() return log():match("start 0 " .. etag:gsub("%p", "%%%0")) ~= nil end), log())
    assert.is_true(wait_for(function() return #esc:requests() > before end))
    local req = esc:requests()[before + 1]
    assert.matches("SIP%-If%-Match: " .. etag:gsub("%p", "%%%0"), req)
    assert.is_true(wait_for(function() return count("published init 200") >= 3 end))
    assert.are.equal(1, esc:count())
  end)

  it("a killed worker's replacement resumes from the store", function()
    local etag = esc:publications()[1].etag
    local old = worker_pids()
    os.execute("kill -KILL " .. old)
    assert.is_true(wait_for(function() return worker_pids() ~= "" and worker_pids() ~= old end, 10))
    assert.is_true(wait_for(function() return log():match("start 0 " .. etag:gsub("%p", "%%%0")) ~= nil end), log())
    assert.is_true(wait_for(function() return count("published init 200") >= 4 end))
    assert.are.equal(1, esc:count())
  end)

  it("stops cleanly on SIGQUIT: the compositor ends empty", function()
    -- the worker running now hands over; one more reload brings an 'unpublish' worker
    write_conf("unpublish")
    local old = worker_pids()
    os.execute("kill -HUP " .. master)
    assert.is_true(wait_for(function() return not alive(old) end, 10))
    assert.is_true(wait_for(function() return count("published init 200") >= 5 end))
    assert.are.equal(1, esc:count())
    os.execute("kill -QUIT " .. master)
    assert.is_true(wait_for(function() return not alive(master) end, 10))
    assert.are.equal(0, esc:count())
  end)
end)

-- Sharding: two workers, each publishing the AORs that fall to it by ngx.worker.id().
describe("OpenResty driver, two workers #integration", function()
  local why = missing()
  if why then
    pending("skipped: " .. why)
    return
  end
  local prefix, master, esc
  local repo = sh("pwd"):gsub("%s+$", "")

  setup(function()
    prefix = sh("mktemp -d /tmp/sip-openresty.XXXXXX"):gsub("%s+$", "")
    os.execute("mkdir -p " .. prefix .. "/conf " .. prefix .. "/logs")
    esc = sip.Compositor.new { port = 0 }
    local conf = CONF:gsub("worker_processes 1;", "worker_processes 2;")
                     :gsub("init_worker_by_lua_block %b{}", ([[init_worker_by_lua_block {
    require("openresty_app").start_shard { proxy = "%s", aors = 6 }
  }]]):format(esc:uri()))
                     :gsub("MODULES", MODULES):gsub("REPO", repo):gsub("LUA_PATH", LUA_PATH or "")
                     :gsub("HTTP_PORT", tostring(free_port()))
    local f = assert(io.open(prefix .. "/conf/nginx.conf", "w"))
    f:write(conf)
    f:close()
    master = sh(("cd %s && (env -u LD_PRELOAD nginx -p %s -c conf/nginx.conf > logs/stdout 2>&1 & echo $!)")
                :format(prefix, prefix)):gsub("%s+$", "")
  end)

  teardown(function()
    if master and require("support.common").ok("kill -0 " .. master .. " 2>/dev/null") then
      os.execute("kill -TERM " .. master)
    end
    if esc then esc:close() end
    if prefix and not os.getenv("SIP_KEEP") then os.execute("rm -rf " .. prefix) end
  end)

  local function wait_for(cond, timeout)
    local deadline = socket.gettime() + (timeout or 5)
    repeat
      sip.run_nowait()
      if cond() then return true end
      socket.sleep(0.01)
    until socket.gettime() > deadline
    return cond()
  end

  it("publishes each AOR once, from the worker it falls to; SIGQUIT removes them all", function()
    assert.is_true(wait_for(function() return esc:count() == 6 end, 10))
    local bodies = {}
    for _, p in ipairs(esc:publications()) do bodies[p.body] = (bodies[p.body] or 0) + 1 end
    assert.same({ ["worker 0"] = 3, ["worker 1"] = 3 }, bodies)
    os.execute("kill -QUIT " .. master)
    assert.is_true(wait_for(function() return not require("support.common").ok("kill -0 " .. master .. " 2>/dev/null") end, 10))
    assert.are.equal(0, esc:count())
  end)
end)

