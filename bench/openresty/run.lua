-- bench/openresty/run.lua (make bench-openresty): CPU per transaction and rate of the same
-- life (life.lua: 4 transactions per publication, W in flight) on the libuv driver (Lua 5.4
-- and LuaJIT) and on the OpenResty driver inside an nginx worker, against one
-- build/sip-compositor, interleaved, BENCH_REPEAT times (medians). Prints a table; writes
-- nothing. Settings: BENCH_N (2000), BENCH_W (64), BENCH_REPEAT (3); nginx's module paths as
-- spec/integration/openresty_spec.lua (SIP_NGINX_MODULES, SIP_NGINX_LUA_PATH).
local N = tonumber(os.getenv("BENCH_N") or "2000")
local W = tonumber(os.getenv("BENCH_W") or "64")
local REPEAT = tonumber(os.getenv("BENCH_REPEAT") or "3")
local MODULES = os.getenv("SIP_NGINX_MODULES") or "/usr/lib/nginx/modules"
local LUA_PATH = os.getenv("SIP_NGINX_LUA_PATH") or ""

local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return (out:gsub("%s+$", ""))
end

local repo = sh("pwd")
local prefix = sh("mktemp -d /tmp/sip-bench-openresty.XXXXXX")
os.execute("mkdir -p " .. prefix .. "/conf " .. prefix .. "/logs")

-- the compositor, on a free port it reports
local comp_pid = sh(("build/sip-compositor --listen 127.0.0.1:0 --quiet > %s/comp.out 2>&1 & echo $!"):format(prefix))
local port
for _ = 1, 100 do
  port = sh("cat " .. prefix .. "/comp.out"):match("listening [%d.]+:(%d+)")
  if port then break end
  os.execute("sleep 0.05")
end
assert(port, "the compositor did not start")
local http_port = 20000 + tonumber(comp_pid) % 20000

local conf = ([[
load_module MODULES/ndk_http_module.so;
load_module MODULES/ngx_http_lua_module.so;
daemon off;
master_process off;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  lua_socket_log_errors off;
  lua_package_path "REPO/lua/?.lua;REPO/lua/?/init.lua;REPO/bench/openresty/?.lua;LUA_PATH;;";
  lua_package_cpath "REPO/build/luajit/?.so;;";
  server {
    listen 127.0.0.1:HTTP_PORT;
    location = /run { content_by_lua_block {
      local a = ngx.req.get_uri_args()
      ngx.say(require("app")(tonumber(a.port), tonumber(a.n), tonumber(a.w), a.idle))
    } }
  }
}
]]):gsub("MODULES", MODULES):gsub("REPO", repo):gsub("LUA_PATH", LUA_PATH):gsub("HTTP_PORT", http_port)
local f = assert(io.open(prefix .. "/conf/nginx.conf", "w"))
f:write(conf)
f:close()
local nginx_pid = sh(("nginx -p %s -c conf/nginx.conf > %s/logs/stdout 2>&1 & echo $!"):format(prefix, prefix))
os.execute("sleep 0.5")

local runs = {
  { name = "libuv driver, Lua 5.4", cmd = ("lua5.4 -e \"package.cpath='build/?.so;'..package.cpath\" bench/openresty/uv_client.lua %s %d %d"):format(port, N, W) },
  { name = "libuv driver, LuaJIT", cmd = ("luajit -e \"package.cpath='build/luajit/?.so;'..package.cpath\" bench/openresty/uv_client.lua %s %d %d"):format(port, N, W) },
  { name = "OpenResty driver (nginx worker)", cmd = ("curl -s -m 300 'http://127.0.0.1:%d/run?port=%s&n=%d&w=%d'"):format(http_port, port, N, W) },
}
-- memory per idle publication (the Lua heap and RSS growth / N), first: in a fresh worker
local MEM_N = tonumber(os.getenv("BENCH_MEM_N") or "10000")
local mem = {
  { name = "libuv driver, Lua 5.4", cmd = runs[1].cmd:gsub(" %d+ %d+$", " " .. MEM_N .. " " .. W .. " idle") },
  { name = "libuv driver, LuaJIT", cmd = runs[2].cmd:gsub(" %d+ %d+$", " " .. MEM_N .. " " .. W .. " idle") },
  { name = "OpenResty driver (nginx worker)", cmd = ("curl -s -m 300 'http://127.0.0.1:%d/run?port=%s&n=%d&w=%d&idle=1'"):format(http_port, port, MEM_N, W) },
}
for _, m in ipairs(mem) do
  m.lua, m.rss = sh(m.cmd .. " 2>&1"):match("^%d+%s+%d+%s+(%-?%d+)%s+(%-?%d+)")
end
os.execute("sleep 3") -- the nginx worker's UA is still removing its idle publications
for _, r in ipairs(runs) do r.results = {} end
for _ = 1, REPEAT do
  for _, r in ipairs(runs) do
    local tx, failed, wall, cpu = sh(r.cmd .. " 2>&1"):match("^(%d+)%s+(%d+)%s+([%d.]+)%s+([%d.]+)")
    if tx then
      r.results[#r.results + 1] = { tx = tonumber(tx), failed = tonumber(failed), wall = tonumber(wall), cpu = tonumber(cpu) }
    end
  end
end
os.execute("kill -QUIT " .. nginx_pid .. "; kill -TERM " .. comp_pid) -- the compositor ends on TERM/INT only

local function median(list, key)
  local v = {}
  for i, x in ipairs(list) do v[i] = x[key] end
  table.sort(v)
  return v[math.ceil(#v / 2)]
end
print(("N = %d publications x 4 transactions, W = %d in flight, %d runs (medians)"):format(N, W, REPEAT))
print("| client | transactions/s | CPU µs per transaction | failed |")
print("|---|---|---|---|")
for _, r in ipairs(runs) do
  if #r.results == 0 then
    print(("| %s | — | — | did not run |"):format(r.name))
  else
    local tx, wall, cpu = median(r.results, "tx"), median(r.results, "wall"), median(r.results, "cpu")
    print(("| %s | %.0f | %.1f | %d |"):format(r.name, tx / wall, cpu / tx * 1e6, median(r.results, "failed")))
  end
end
print()
print(("%d idle publications (published, 6 s later, after a full collection)"):format(MEM_N))
print("| client | Lua heap bytes per publication | RSS bytes per publication |")
print("|---|---|---|")
for _, m in ipairs(mem) do
  print(("| %s | %s | %s |"):format(m.name, m.lua or "—", m.rss or "—"))
end
os.execute("rm -rf " .. prefix)
