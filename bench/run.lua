-- bench/run.lua: the `make bench` driver. Runs every benchmark against loopback responders it
-- starts and stops itself, then writes bench/RESULTS.md (Markdown) and prints it.
-- Sizes come from BENCH_* environment variables (see bench/README.md).
package.path = "bench/?.lua;" .. package.path
local common = require "common"
local charts = require "charts"

local B = os.getenv("BENCH_BIN") or "build/bench"
local BUILD = os.getenv("SIP_BUILD") or "build"
local LUA = os.getenv("LUA") or "lua5.4"
local OUT = os.getenv("BENCH_OUT") or "bench/RESULTS.md"
local TMP = B .. "/tmp"

local function env_list(name, default)
  local v = os.getenv(name) or default
  local t = {}
  for w in v:gmatch("%S+") do t[#t + 1] = math.tointeger(tonumber(w)) or w end
  return t
end
local function env_num(name, default) return tonumber(os.getenv(name) or "") or default end

local cfg = {
  N = env_list("BENCH_N", "1000 10000"),
  W = env_num("BENCH_W", 64),
  REPEAT = env_num("BENCH_REPEAT", 3),
  MEM_N = env_list("BENCH_MEM_N", "10000 100000"),
  SOFIA_MEM_N = env_num("BENCH_SOFIA_MEM_N", 10000),
  SCALE_N = env_num("BENCH_SCALE_N", 100000),
  SCALE_SECS = env_num("BENCH_SCALE_SECS", 60),
  SCALE_W = env_num("BENCH_SCALE_W", 64),
  CORE_K = env_num("BENCH_CORE_K", 10000),
  LIFE_K = env_num("BENCH_LIFE_K", 2500),
  CORE_SCALE_SECS = env_num("BENCH_CORE_SCALE_SECS", 30),
  PROFILE_N = env_num("BENCH_PROFILE_N", 500),
  HOSTS_N = env_num("BENCH_HOSTS_N", 10000),
  PERF_SCALE_SECS = env_num("BENCH_PERF_SCALE_SECS", 25),
  SKIP = " " .. (os.getenv("BENCH_SKIP") or "") .. " ",
  LIMIT = env_num("BENCH_RUN_LIMIT", 180), -- seconds, any one client run
  FAST = env_num("BENCH_TEMPLATE", 1) ~= 0, -- also against the template responder
  CHARTS = env_num("BENCH_CHARTS", 1) ~= 0, -- draw the charts (bench/charts.lua, gnuplot)
  CHART_FORMAT = os.getenv("BENCH_CHART_FORMAT") or "svg", -- or png
  CHART_NOTE = os.getenv("BENCH_CHART_NOTE"), -- appended to every chart's title
}
local function skipped(section) return cfg.SKIP:find(" " .. section .. " ", 1, true) ~= nil end

local t_begin = os.time()
local function log(fmt, ...)
  io.stderr:write(("[bench %4ds] "):format(os.time() - t_begin), fmt:format(...), "\n")
  io.stderr:flush()
end

-- ---- processes -------------------------------------------------------------------------

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

local function sh_line(cmd) return (sh(cmd):gsub("%s+$", "")) end

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function cmdline(argv)
  local t = {}
  for i, a in ipairs(argv) do t[i] = quote(a) end
  return table.concat(t, " ")
end

local function sleep(s) os.execute("sleep " .. s) end

local function read_file(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Parses "RESULT name k=v ..." lines: { name = { k = v } } (the last line of each name).
local function results(text)
  local r = {}
  for name, rest in (text or ""):gmatch("RESULT (%S+) ([^\n]*)") do
    local t = {}
    for k, v in rest:gmatch("(%S+)=(%S+)") do t[k] = tonumber(v) or v end
    r[name] = t
  end
  return r
end

local function alive(pid)
  local s = read_file("/proc/" .. pid .. "/stat")
  return s ~= nil and not s:match("%) Z ")
end

-- Starts a long-lived responder; returns its pid and the port from its "listening" line.
-- Starts a long-lived responder under `timeout LIFETIME` (it stops by itself even if this
-- driver dies); returns the responder's own pid (timeout's child) and its port.
local spawned, running = 0, {}
local function spawn(argv, logfile, lifetime)
  spawned = spawned + 1
  logfile = logfile:gsub("%.log$", "") .. "." .. spawned .. ".log" -- never an earlier one's line
  os.remove(logfile)
  local full = { "timeout", "-s", "TERM", tostring(lifetime or 900) }
  for _, a in ipairs(argv) do full[#full + 1] = a end
  local p = io.popen(cmdline(full) .. " > " .. quote(logfile) .. " 2>&1 & echo $!")
  local tpid = math.tointeger(tonumber(p:read("l")))
  p:close()
  for _ = 1, 100 do
    local port = (read_file(logfile) or ""):match("listening [%d.]+:(%d+)")
    local pid = math.tointeger(tonumber(sh_line("pgrep -P " .. tpid)))
    if port and pid then
      running[pid] = true
      return pid, math.tointeger(tonumber(port))
    end
    if not alive(tpid) then break end
    sleep(0.05)
  end
  error("bench: " .. argv[1] .. " did not start: " .. (read_file(logfile) or ""))
end

local function stop(pid)
  if pid then running[pid] = nil end
  if not pid or not alive(pid) then return end
  os.execute("kill -TERM " .. pid)
  for _ = 1, 100 do
    if not alive(pid) then return end
    sleep(0.05)
  end
  os.execute("kill -KILL " .. pid)
end

local function cpu_of(pid)
  local u, s = common.cpu(pid)
  return (u or 0) + (s or 0)
end

-- UDP receive-buffer drops, system wide (/proc/net/snmp RcvbufErrors).
local function rcvbuf_errors()
  local s = read_file("/proc/net/snmp") or ""
  local head, vals = s:match("Udp: (InDatagrams[^\n]*)\nUdp: ([^\n]*)")
  if not head then return 0 end
  local names, i = {}, 0
  for w in head:gmatch("%S+") do names[#names + 1] = w end
  for v in vals:gmatch("%S+") do
    i = i + 1
    if names[i] == "RcvbufErrors" then return tonumber(v) end
  end
  return 0
end

-- Runs a client under cpu_of (wall, CPU, peak RSS of the whole process) and returns its
-- RESULT lines merged with the process figures, plus the responder's CPU over the run.
local function measure(argv, server_pid, opts)
  opts = opts or {} -- limit: seconds before the client is killed
  local outf = TMP .. "/proc.txt"
  os.remove(outf)
  local s0, d0 = server_pid and cpu_of(server_pid), rcvbuf_errors()
  local full = { B .. "/cpu_of", outf, tostring(opts.limit or cfg.LIMIT) }
  for _, a in ipairs(argv) do full[#full + 1] = a end
  local text, code = sh(cmdline(full))
  local s1, d1 = server_pid and cpu_of(server_pid), rcvbuf_errors()
  local r = results(text)
  local proc = results(read_file(outf)).proc or {}
  return {
    out = text, code = code, res = r, proc = proc,
    server_cpu = server_pid and (s1 - s0) or nil, drops = d1 - d0,
  }
end

local function median(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  if #c == 0 then return nil end
  if #c % 2 == 1 then return c[(#c + 1) // 2] end
  return (c[#c // 2] + c[#c // 2 + 1]) / 2
end

-- ---- formatting ------------------------------------------------------------------------

local function commas(n)
  local s = ("%d"):format(math.floor(n + 0.5))
  local neg = s:sub(1, 1) == "-"
  if neg then s = s:sub(2) end
  s = s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  return (neg and "-" or "") .. s
end
local function f(n, d)
  if n == nil then return "—" end
  return ("%." .. (d or 2) .. "f"):format(n)
end
local function verdict(ok) return ok and "**met**" or "**missed**" end

local md = {}
local function w(s) md[#md + 1] = s or "" end
local targets = {}
local function target(name, value, goal, ok) targets[#targets + 1] = { name, value, goal, ok } end

-- ---- machine ---------------------------------------------------------------------------

local function machine()
  local cpuinfo = read_file("/proc/cpuinfo") or ""
  local model = cpuinfo:match("model name%s*:%s*([^\n]+)") or "?"
  local function ver(pkg) return sh_line("dpkg-query -W -f='${Version}' " .. pkg .. " 2>/dev/null") end
  local dirty = sh_line("git status --porcelain -- csrc lua 2>/dev/null | wc -l")
  local commit = sh_line("git rev-parse --short HEAD 2>/dev/null")
  if not commit:match("^%x+$") then commit = "unknown (not a git checkout)" end
  return {
    nproc = sh_line("nproc"), model = model, kernel = sh_line("uname -r"),
    date = sh_line("date -u '+%Y-%m-%d %H:%M:%S UTC'"),
    commit = commit .. ((tonumber(dirty) or 0) > 0 and
      (" + uncommitted changes in " .. dirty .. " files of csrc/ lua/") or ""),
    lua = sh_line(LUA .. " -v"):match("^Lua [%d.]+") or LUA, osip = ver("libosip2-dev"), uv = ver("libuv1-dev"),
    sipp = (sh_line("sipp -v"):match("SIPp v[%w.%-]*%w") or "SIPp ?"), sofia = ver("libsofia-sip-ua-dev"),
    valgrind = sh_line("valgrind --version"),
  }
end

-- ---- 1 + 2: throughput -----------------------------------------------------------------

local CLIENTS = {
  { key = "ours", name = "lua-sip-publish (Lua 5.4, `sip.run`)", short = "lua-sip-publish" },
  { key = "sipp", name = "SIPp (UAC scenario)", short = "SIPp" },
  { key = "sofia", name = "Sofia-SIP `nua_publish`", short = "Sofia-SIP" },
  { key = "raw", name = "raw UDP ping-pong (C)", short = "raw UDP (C)" },
}

local function sipp_stats(file)
  local s = read_file(file) or ""
  local lines = {}
  for l in s:gmatch("[^\n]+") do lines[#lines + 1] = l end
  if #lines < 2 then return {} end
  local names, t, i = {}, {}, 0
  for n in (lines[1] .. ";"):gmatch("([^;]*);") do names[#names + 1] = n end
  for v in (lines[#lines] .. ";"):gmatch("([^;]*);") do
    i = i + 1
    t[names[i] or i] = tonumber(v) or v
  end
  return t
end

-- One run of one client against the responder srv = { pid, port } (raw: against raw_echo).
local function run_once(client, n, srv)
  local W = cfg.W
  local port = tostring(srv.port)
  if client == "ours" then
    local m = measure({ LUA, "bench/throughput.lua", port, tostring(n), tostring(W) }, srv.pid)
    local r = m.res.throughput or {}
    return { tx = r.tx or 0, failed = (r.failed or 0) + (r.p412 or 0) + (n - (r.done or 0)), m = m }
  elseif client == "sipp" then
    local stf = TMP .. "/sipp_stat.csv"
    os.remove(stf)
    local m
    for _ = 1, 5 do -- a random local port; another one if it is taken
      local lport = math.random(30000, 59999)
      m = measure({ "sipp", "-sf", "bench/sipp/publish_uac.xml", "127.0.0.1:" .. port,
                    "-i", "127.0.0.1", "-p", tostring(lport), "-l", tostring(W), "-m", tostring(n),
                    "-r", "1000000", "-rp", "1000", "-nostdin", "-trace_stat", "-stf", stf,
                    "-fd", "60", "-timeout", tostring(cfg.LIMIT), "-timeout_error" }, srv.pid)
      if m.code ~= 255 and m.code ~= 254 then break end -- -1/-2: fatal (bind) errors
    end
    local st = sipp_stats(stf)
    local ok = tonumber(st["SuccessfulCall(C)"]) or 0
    return { tx = 4 * ok, failed = (tonumber(st["FailedCall(C)"]) or 0) + (n - ok), m = m }
  elseif client == "sofia" then
    local m = measure({ B .. "/sofia_publish", port, tostring(n), tostring(W) }, srv.pid)
    local r = m.res.sofia or {}
    return { tx = r.tx or 0, failed = (r.failed or 0) + (n - (r.done or 0)), m = m }
  else
    local m = measure({ B .. "/raw_udp", port, tostring(4 * n), tostring(W), "560" }, srv.pid)
    local r = m.res.raw or {}
    return { tx = r.tx or 0, failed = (4 * n) - (r.tx or 0), m = m }
  end
end

-- Runs `clients` against responder `label` at each n, interleaved and repeated; medians.
local function throughput_set(label, ns, clients, srv_of)
  local rows = {}
  for _, n in ipairs(ns) do
    local runs = {}
    for _, c in ipairs(clients) do runs[c.key] = {} end
    for rep = 1, cfg.REPEAT do
      for _, c in ipairs(clients) do -- interleaved: machine noise hits every client alike
        local r = run_once(c.key, n, srv_of(c.key))
        local wall, cpu = r.m.proc.wall or 0, r.m.proc.cpu or 0
        local rec = {
          tps = wall > 0 and r.tx / wall or 0, wall = wall, cpu = cpu,
          cpu1k = r.tx > 0 and cpu / r.tx * 1000 or 0, maxrss = r.m.proc.maxrss_kb or 0,
          util = wall > 0 and cpu / wall * 100 or 0,
          srv = wall > 0 and (r.m.server_cpu or 0) / wall * 100 or 0,
          srv1k = r.tx > 0 and (r.m.server_cpu or 0) / r.tx * 1000 or 0,
          failed = r.failed, tx = r.tx, drops = r.m.drops,
        }
        table.insert(runs[c.key], rec)
        log("  %s N=%d rep %d %-5s %8.0f tx/s  %.4f CPU s/1000 tx (%3.0f%% busy)  responder %3.0f%%  failed %d%s",
            label, n, rep, c.key, rec.tps, rec.cpu1k, rec.util, rec.srv, rec.failed,
            r.m.code ~= 0 and (" (exit " .. r.m.code .. ")") or "")
        if r.tx == 0 then log("    output: %s", (r.m.out or ""):sub(1, 400)) end
      end
    end
    for _, c in ipairs(clients) do
      local agg = { n = n, key = c.key, name = c.name, responder = label }
      for _, k in ipairs { "tps", "wall", "cpu", "cpu1k", "maxrss", "srv", "srv1k", "util" } do
        local vals = {}
        for i, rec in ipairs(runs[c.key]) do vals[i] = rec[k] end
        agg[k] = median(vals)
      end
      agg.failed, agg.drops = 0, 0
      for _, rec in ipairs(runs[c.key]) do
        agg.failed = agg.failed + rec.failed
        agg.drops = agg.drops + rec.drops
      end
      rows[#rows + 1] = agg
    end
  end
  return rows
end

local function throughput()
  log("throughput: N = %s, W = %d, %d repetitions", table.concat(cfg.N, ", "), cfg.W, cfg.REPEAT)
  local comp = {}
  comp.pid, comp.port = spawn({ BUILD .. "/sip-compositor", "--listen", "127.0.0.1:0" }, TMP .. "/compositor.log", 1200)
  local echo = {}
  echo.pid, echo.port = spawn({ B .. "/raw_echo", "0", "400", "1200" }, TMP .. "/echo.log", 1200)
  local fast = {}
  local ok, rows, fast_rows = pcall(function()
    local r1 = throughput_set("compositor", cfg.N, CLIENTS, function(k) return k == "raw" and echo or comp end)
    local r2 = {}
    if cfg.FAST then
      fast.pid, fast.port = spawn({ B .. "/fast_responder", "0", "1200" }, TMP .. "/fast.log", 1200)
      local subset = {}
      for _, c in ipairs(CLIENTS) do if c.key ~= "raw" then subset[#subset + 1] = c end end
      r2 = throughput_set("template", { cfg.N[#cfg.N] }, subset, function() return fast end)
    end
    return r1, r2
  end)
  local comp_total = cpu_of(comp.pid)
  stop(comp.pid)
  stop(echo.pid)
  stop(fast.pid)
  if not ok then error(rows, 0) end
  return { rows = rows, fast = fast_rows, comp_total = comp_total }
end

-- ---- 3: memory -------------------------------------------------------------------------

local function chunk(n) -- glibc malloc chunk of an n-byte request (64-bit)
  local c = (n + 8 + 15) & ~15
  return c < 32 and 32 or c
end

local function memory()
  local out = { lua = {}, core = {}, sofia = nil }
  for _, n in ipairs(cfg.MEM_N) do
    log("memory: %d idle publications from Lua", n)
    local pid, port = spawn({ BUILD .. "/sip-compositor", "--listen", "127.0.0.1:0" }, TMP .. "/compositor.log",
                            cfg.LIMIT + 60)
    local ok, m = pcall(measure, { LUA, "bench/memory.lua", tostring(port), tostring(n), tostring(cfg.W) }, pid)
    stop(pid)
    if not ok then error(m, 0) end
    local r = m.res.memory_lua or {}
    if (r.published or 0) ~= n then log("memory output: %s", m.out:sub(1, 600)) end
    r.maxrss_kb = m.proc.maxrss_kb
    r.drops = m.drops
    out.lua[#out.lua + 1] = r
    log("memory: %d idle publications in the C core (in-memory transport)", n)
    local text = sh(cmdline { B .. "/mem_core", tostring(n) })
    out.core[#out.core + 1] = results(text).mem_core or {}
  end
  if cfg.SOFIA_MEM_N > 0 then
    log("memory: %d idle Sofia-SIP publications", cfg.SOFIA_MEM_N)
    local pid, port = spawn({ BUILD .. "/sip-compositor", "--listen", "127.0.0.1:0" }, TMP .. "/compositor.log",
                            cfg.LIMIT + 60)
    local ok, m = pcall(measure, { B .. "/sofia_publish", tostring(port), tostring(cfg.SOFIA_MEM_N), tostring(cfg.W), "idle" }, pid)
    stop(pid)
    if not ok then error(m, 0) end
    out.sofia = m.res.sofia_idle
  end
  return out
end

-- ---- 4: scale --------------------------------------------------------------------------

local function scale()
  log("scale: %d publications, requested Expires 10..30 s, %d s", cfg.SCALE_N, cfg.SCALE_SECS)
  local pid, port = spawn({ BUILD .. "/sip-compositor", "--listen", "127.0.0.1:0", "--max-expires", "30" },
                         TMP .. "/compositor.log", cfg.SCALE_SECS + 120)
  local ok, m = pcall(measure, { LUA, "bench/scale.lua", tostring(port), tostring(cfg.SCALE_N),
                                 tostring(cfg.SCALE_SECS), tostring(cfg.SCALE_W) }, pid,
                      { limit = cfg.SCALE_SECS + 120 })
  stop(pid)
  if not ok then error(m, 0) end
  local r = m.res.scale or {}
  r.server_cpu = m.server_cpu
  r.drops = m.drops
  r.maxrss_kb = m.proc.maxrss_kb
  r.series = charts.series(m.out) -- per second, for the chart
  if not m.res.scale then log("scale output: %s", m.out:sub(1, 600)) end
  return r
end

-- ---- 5: callgrind ----------------------------------------------------------------------

local function callgrind_total(file)
  local s = read_file(file) or ""
  local v = s:match("\nsummary:%s*(%d+)") or s:match("\ntotals:%s*(%d+)")
  return tonumber(v) or 0
end

-- callgrind_annotate lines: { ir, pct, fn, obj }, only those naming their object.
local function annotate(file, inclusive)
  local text = sh(cmdline { "callgrind_annotate", "--threshold=100", "--inclusive=" .. (inclusive and "yes" or "no"), file })
  local rows = {}
  for line in text:gmatch("[^\n]+") do
    local ir, pct, loc, obj = line:match("^%s*([%d,]+)%s+%(%s*([%d.]+)%%%)%s+(.-)%s+%[(.-)%]%s*$")
    if ir then
      local fn = loc:match("([^:]+)$") or loc
      obj = obj:match("([^/]+)$") or obj
      if obj:match("^core_roundtrip") then obj = "C core (core.c, message.c, scan.c; static)" end
      rows[#rows + 1] = { ir = tonumber((ir:gsub(",", ""))), pct = tonumber(pct), fn = fn, obj = obj }
    end
  end
  return rows
end

local function by_object(rows)
  local t, order = {}, {}
  for _, r in ipairs(rows) do
    if not t[r.obj] then t[r.obj] = 0; order[#order + 1] = r.obj end
    t[r.obj] = t[r.obj] + r.ir
  end
  table.sort(order, function(a, b) return t[a] > t[b] end)
  return t, order
end

local function callgrind_core()
  local out = {}
  -- traced-refresh: refresh with a message trace set (a C callback that counts), the trace's cost
  for _, mode in ipairs { "refresh", "life", "traced-refresh" } do
    local k = mode == "life" and cfg.LIFE_K or cfg.CORE_K
    log("instructions: callgrind, %s, K = %d", mode, k)
    local file = TMP .. "/callgrind." .. mode
    os.remove(file)
    local text = sh(cmdline { "timeout", tostring(cfg.LIMIT), "valgrind", "--tool=callgrind",
                              "--callgrind-out-file=" .. file,
                              "--toggle-collect=run_" .. mode:gsub("^traced%-", ""),
                              "--toggle-collect=inmem_reply*",
                              B .. "/core_roundtrip", mode, tostring(k) })
    local r = results(text).core_rt or {}
    local total = callgrind_total(file)
    local counts = mode == "traced-refresh" and {}
                   or results(sh(cmdline { B .. "/core_roundtrip_count", mode, tostring(k) })).core_allocs or {}
    out[mode] = { tx = r.tx or 0, ir = total, per_tx = (r.tx or 0) > 0 and total / r.tx or 0, res = r,
                  allocs = counts, incl = annotate(file, true), self = annotate(file, false) }
  end
  return out
end

-- The C core alone at scale: SCALE_N publications granted 10..30 s refreshing on the virtual
-- clock (core_roundtrip scale); Ir per refresh, and the timer heap's share (self cost).
local function callgrind_scale()
  local secs = cfg.CORE_SCALE_SECS
  log("instructions: callgrind, scale, %d publications, %d virtual s", cfg.SCALE_N, secs)
  local file = TMP .. "/callgrind.scale"
  os.remove(file)
  local text = sh(cmdline { "timeout", tostring(cfg.LIMIT * 2), "valgrind", "--tool=callgrind",
                            "--callgrind-out-file=" .. file, "--toggle-collect=run_scale",
                            "--toggle-collect=inmem_reply*", B .. "/core_roundtrip", "scale",
                            tostring(cfg.SCALE_N), tostring(secs) })
  local r = results(text).core_scale or {}
  local total, timers = callgrind_total(file), 0
  for _, row in ipairs(annotate(file, false)) do
    if row.fn:match("^heap_") or row.fn:match("^timer_") or row.fn == "sipub_ua_tick" then
      timers = timers + row.ir
    end
  end
  local n = r.refreshes or 0
  return { pubs = r.pubs, secs = secs, refreshes = n, failures = r.failures,
           per_refresh = n > 0 and total / n or 0, timers_per_refresh = n > 0 and timers / n or 0 }
end

local function profile_lua()
  local out = {}
  log("profile: callgrind of the Lua client, N = %d, W = 16", cfg.PROFILE_N)
  local pid, port = spawn({ BUILD .. "/sip-compositor", "--listen", "127.0.0.1:0" }, TMP .. "/compositor.log",
                         cfg.LIMIT + 120)
  local file = TMP .. "/callgrind.lua"
  os.remove(file)
  local ok, text = pcall(sh, cmdline { "timeout", tostring(cfg.LIMIT), "valgrind", "--tool=callgrind", "--callgrind-out-file=" .. file,
                                       LUA, "bench/throughput.lua", tostring(port), tostring(cfg.PROFILE_N), "16" })
  if ok then
    local r = results(text).throughput or {}
    out.tx = r.tx or 0
    out.total = callgrind_total(file)
    out.incl = annotate(file, true)
    out.self = annotate(file, false)
  end
  -- perf (optional): where the CPU goes, kernel included, at full speed
  local _, perf_ok = sh("perf stat -e cpu-clock -x, true")
  if perf_ok == 0 then
    log("profile: perf of the Lua client, N = %d", cfg.N[#cfg.N])
    local data = TMP .. "/perf.data"
    sh(cmdline { "timeout", tostring(cfg.LIMIT), "perf", "record", "-q", "-e", "cpu-clock", "-F", "2999", "-o", data, "--",
                 LUA, "bench/throughput.lua", tostring(port), tostring(cfg.N[#cfg.N]), tostring(cfg.W) })
    local rep = sh(cmdline { "perf", "report", "-i", data, "--sort", "dso", "-g", "none", "--stdio" })
    out.perf_dso = {}
    for pct, dso in rep:gmatch("\n%s*([%d.]+)%%%s+(%S+)") do
      out.perf_dso[#out.perf_dso + 1] = { pct = tonumber(pct), dso = dso }
    end
    local rep2 = sh(cmdline { "perf", "report", "-i", data, "--sort", "dso,sym", "-g", "none", "--stdio" })
    out.perf_sym = {}
    for pct, dso, sym in rep2:gmatch("\n%s*([%d.]+)%%%s+(%S+)%s+%[.%]%s+([^\n]+)") do
      if #out.perf_sym < 15 then out.perf_sym[#out.perf_sym + 1] = { pct = tonumber(pct), dso = dso, sym = sym } end
    end
  else
    log("profile: perf not usable here, skipped")
  end
  stop(pid)
  if perf_ok == 0 and cfg.PERF_SCALE_SECS > 0 then
    local secs = cfg.PERF_SCALE_SECS
    log("profile: perf of the scale client, %d publications, %d s", cfg.SCALE_N, secs)
    local spid, sport = spawn({ BUILD .. "/sip-compositor", "--listen", "127.0.0.1:0", "--max-expires", "30" },
                              TMP .. "/compositor.log", secs + 120)
    local data = TMP .. "/perf.scale.data"
    sh(cmdline { "timeout", tostring(secs + 60), "perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-o", data,
                 "--", LUA, "bench/scale.lua", tostring(sport), tostring(cfg.SCALE_N), tostring(secs), tostring(cfg.SCALE_W) })
    stop(spid)
    local rep = sh(cmdline { "perf", "report", "-i", data, "--sort", "dso,sym", "-g", "none", "--stdio" })
    out.perf_scale = {}
    for pct, dso, sym in rep:gmatch("\n%s*([%d.]+)%%%s+(%S+)%s+%[.%]%s+([^\n]+)") do
      if #out.perf_scale < 12 then out.perf_scale[#out.perf_scale + 1] = { pct = tonumber(pct), dso = dso, sym = sym } end
    end
  end
  return out
end

-- ---- report ----------------------------------------------------------------------------

-- The charts of a section (bench/charts.lua), as Markdown images, or the note saying why
-- there are none.
local function pictures(pics, note)
  if pics and #pics > 0 then
    for _, p in ipairs(pics) do w(("![%s](%s)"):format(p.alt, p.file)) end
    w()
  elseif note then
    w("*" .. note .. "*")
    w()
  end
end

-- The hosts our users run (issue: one rock for every Lua): the same life on the libuv driver
-- under Lua 5.4 and LuaJIT and on the OpenResty driver in an nginx worker, against one
-- sip-compositor in this run (bench/openresty/run.lua prints the tables); nil with a reason
-- when nginx's Lua module or the LuaJIT build is missing.
local function hosts()
  if not io.open("build/luajit/sip/core.so") then return nil, "no build/luajit/sip/core.so (make luajit-build)" end
  log("hosts: LuaJIT and OpenResty (bench/openresty/run.lua), N = %d", cfg.HOSTS_N)
  local text = sh(("BENCH_N=%d BENCH_W=%d BENCH_REPEAT=%d %s bench/openresty/run.lua 2>&1")
                  :format(cfg.HOSTS_N, cfg.W, cfg.REPEAT, LUA))
  if not text:find("| client |", 1, true) then return nil, "bench/openresty/run.lua: " .. text:sub(-300) end
  return text
end

local function report(mach, tp, mem, sc, cg, prof, elapsed, drawn, chart_note, hosts_text, hosts_why)
  drawn = drawn or {}
  local body = #common.BODY1
  w("# Benchmark results — lua-sip-publish")
  w()
  w(("Generated by `make bench` on %s in %d s. Machine: **%s cores, %s**, kernel %s. " ..
     "Commit %s."):format(mach.date, elapsed, mach.nproc, mach.model, mach.kernel, mach.commit))
  w(("Software: %s, libosip2 %s, libuv %s, %s, Sofia-SIP %s, %s. Every client and responder runs on " ..
     "127.0.0.1 UDP; each figure is the median of %d interleaved runs unless noted."):format(
     mach.lua, mach.osip, mach.uv, mach.sipp, mach.sofia, mach.valgrind, cfg.REPEAT))
  w(("Body: a %d-byte PIDF (`application/pidf+xml`), %d-byte modify. Window: %d publications " ..
     "(one request each) in flight. A publication's life is 4 PUBLISH transactions: initial (body) → " ..
     "refresh (SIP-If-Match, no body) → modify (new body) → remove (Expires: 0)."):format(
     body, #common.BODY2, cfg.W))
  w()

  if tp then
    local function table_rows(rows)
      w("| N | client | transactions/s | wall s | client CPU s | **client CPU ms per 1 000 tx** | client busy | peak RSS MiB | responder CPU ms per 1 000 tx | responder busy | failed |")
      w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
      for _, r in ipairs(rows) do
        w(("| %s | %s | %s | %s | %s | **%s** | %s %% | %s | %s | %s %% | %d |"):format(commas(r.n), r.name, commas(r.tps),
          f(r.wall, 3), f(r.cpu, 3), f(r.cpu1k * 1000, 1), f(r.util, 0), f(r.maxrss / 1024, 1),
          f(r.srv1k * 1000, 1), f(r.srv, 0), r.failed))
      end
      w()
    end
    w("## 1–2. Throughput and CPU: N publications × 4 transactions")
    w()
    w("Rates and CPU are whole-process figures (wall time, user+system CPU, peak RSS from `wait4`), " ..
      "measured the same way for every client, start-up included. *busy* = CPU time / wall time (100 % = " ..
      "one core saturated). The responder is `build/sip-compositor` (the raw client: `raw_echo`); its CPU " ..
      "comes from `/proc/PID/stat` over the run.")
    w()
    table_rows(tp.rows)
    pictures(drawn.throughput, chart_note)
    local byn = {}
    for _, r in ipairs(tp.rows) do byn[r.n] = byn[r.n] or {}; byn[r.n][r.key] = r end
    local n1, n2 = cfg.N[1], cfg.N[#cfg.N]
    if n2 > n1 then
      local g = {}
      for _, c in ipairs(CLIENTS) do
        g[#g + 1] = ("%s %s KiB"):format(c.key, f((byn[n2][c.key].maxrss - byn[n1][c.key].maxrss) / (n2 - n1), 2))
      end
      w(("Peak RSS growth per publication between N = %s and N = %s (each publication is removed when its " ..
         "life ends, so a library that frees them grows by ~0): %s."):format(commas(n1), commas(n2), table.concat(g, ", ")))
      w()
    end
    w("| N | ours / SIPp rate (goal ≥ 2) | ours / raw rate (goal ≥ 0.5) | ours / SIPp CPU per tx (goal ≤ 0.33) | ours / Sofia CPU per tx (goal ≤ 0.33) | ours / Sofia rate |")
    w("|---:|---:|---:|---:|---:|---:|")
    for _, n in ipairs(cfg.N) do
      local b = byn[n]
      w(("| %s | %s | %s | %s | %s | %s |"):format(commas(n), f(b.ours.tps / b.sipp.tps), f(b.ours.tps / b.raw.tps),
        f(b.ours.cpu1k / b.sipp.cpu1k), f(b.ours.cpu1k / b.sofia.cpu1k), f(b.ours.tps / b.sofia.tps)))
    end
    w()
    local b = byn[n2]
    local cap = b.ours.srv1k > 0 and 1 / b.ours.srv1k * 1000 or 0
    w(("Our client is %s %% busy and the compositor %s %% (2 cores). The compositor alone costs %s µs " ..
       "per transaction, so even a client costing nothing could not get more than about %s tx/s from " ..
       "it (2 × SIPp's rate here: %s; 0.5 × raw: %s): the rate targets are bounded by the responder; " ..
       "client CPU per transaction is the comparison that the client controls. The compositor used %s " ..
       "CPU s over these runs; UDP receive-buffer drops (`RcvbufErrors`, whole machine): %s."):format(
       f(b.ours.util, 0), f(b.ours.srv, 0), f(b.ours.srv1k * 1000, 1), commas(cap),
       commas(2 * b.sipp.tps), commas(0.5 * b.raw.tps), f(tp.comp_total, 2),
       (function() local d = 0 for _, r in ipairs(tp.rows) do d = d + r.drops end return commas(d) end)()))
    w()
    target(("throughput ≥ 2 × SIPp (N = %s)"):format(commas(n2)), f(b.ours.tps / b.sipp.tps) .. " ×", "≥ 2 ×",
           b.ours.tps >= 2 * b.sipp.tps)
    target("throughput ≥ 0.5 × raw UDP", f(b.ours.tps / b.raw.tps) .. " ×", "≥ 0.5 ×", b.ours.tps >= 0.5 * b.raw.tps)
    target("client CPU per 1 000 tx ≤ ⅓ SIPp's", f(b.ours.cpu1k * 1000, 1) .. " ms vs " .. f(b.sipp.cpu1k * 1000, 1) ..
           " ms (" .. f(b.ours.cpu1k / b.sipp.cpu1k) .. " ×)", "≤ 0.33 ×", b.ours.cpu1k <= b.sipp.cpu1k / 3)
    target("client CPU per 1 000 tx ≤ ⅓ Sofia-SIP's", f(b.ours.cpu1k * 1000, 1) .. " ms vs " .. f(b.sofia.cpu1k * 1000, 1) ..
           " ms (" .. f(b.ours.cpu1k / b.sofia.cpu1k) .. " ×)", "≤ 0.33 ×", b.ours.cpu1k <= b.sofia.cpu1k / 3)
    if tp.fast and #tp.fast > 0 then
      w(("### The same clients against a template responder (N = %s)"):format(commas(n2)))
      w()
      w("`bench/fast_responder.c` answers every PUBLISH statelessly with a 200 OK built from a " ..
        "template (Via/From/To/Call-ID/CSeq copied, a new SIP-ETag): a few µs per request, so each " ..
        "client's own cost sets its rate.")
      w()
      table_rows(tp.fast)
      local fb = {}
      for _, r in ipairs(tp.fast) do fb[r.key] = r end
      if fb.ours and fb.sipp and fb.sofia then
        w(("Against the template responder: ours / SIPp rate %s, ours / Sofia rate %s, ours / SIPp CPU per tx %s, " ..
           "ours / Sofia CPU per tx %s."):format(f(fb.ours.tps / fb.sipp.tps), f(fb.ours.tps / fb.sofia.tps),
           f(fb.ours.cpu1k / fb.sipp.cpu1k), f(fb.ours.cpu1k / fb.sofia.cpu1k)))
        w()
        local raw = byn[n2].raw
        target(("throughput ≥ 2 × SIPp, template responder (N = %s)"):format(commas(n2)),
               f(fb.ours.tps / fb.sipp.tps) .. " ×", "≥ 2 ×", fb.ours.tps >= 2 * fb.sipp.tps)
        target("throughput ≥ 0.5 × raw UDP, template responder", f(fb.ours.tps / raw.tps) .. " ×", "≥ 0.5 ×",
               fb.ours.tps >= 0.5 * raw.tps)
        target("client CPU per 1 000 tx ≤ ⅓ SIPp's, template responder", f(fb.ours.cpu1k * 1000, 1) .. " ms vs " ..
               f(fb.sipp.cpu1k * 1000, 1) .. " ms (" .. f(fb.ours.cpu1k / fb.sipp.cpu1k) .. " ×)", "≤ 0.33 ×",
               fb.ours.cpu1k <= fb.sipp.cpu1k / 3)
        target("client CPU per 1 000 tx ≤ ⅓ Sofia-SIP's, template responder", f(fb.ours.cpu1k * 1000, 1) ..
               " ms vs " .. f(fb.sofia.cpu1k * 1000, 1) .. " ms (" .. f(fb.ours.cpu1k / fb.sofia.cpu1k) .. " ×)",
               "≤ 0.33 ×", fb.ours.cpu1k <= fb.sofia.cpu1k / 3)
      end
    end
  end

  if mem then
    w("## 3. Memory per idle published publication")
    w()
    w(("All publications published (2xx received, refresh timer armed), then %s s idle so that " ..
       "Timer K frees every completed transaction. *Body excluded* subtracts the core's copy of the " ..
       "body (a %d-byte chunk for the %d-byte PIDF); from Lua the body string is shared by all " ..
       "contexts. Each Lua context has two handlers (`published`, `failed`) and is kept in an array."):format(
       "6", chunk(body + 1), body))
    w()
    w("| what | N | bytes / publication | body excluded | target | |")
    w("|---|---:|---:|---:|---:|---|")
    for i, n in ipairs(cfg.MEM_N) do
      local c = mem.core[i]
      local per = c.per_pub_heap or 0
      w(("| C core: heap (`mallinfo2` in-use delta) | %s | %s | %s | ≤ 1 024 | %s |"):format(commas(n), commas(per),
        commas(per - chunk(body + 1)), verdict(per - chunk(body + 1) <= 1024)))
      w(("| C core: live blocks (usable bytes, count) | %s | %s (%s blocks) | | | |"):format(commas(n),
        commas(c.per_pub_usable or 0), f(c.blocks_per_pub, 1)))
      target(("C core ≤ 1 KiB per idle publication (N = %s)"):format(commas(n)),
             commas(per - chunk(body + 1)) .. " B", "≤ 1 024 B", per - chunk(body + 1) <= 1024)
    end
    for i, n in ipairs(cfg.MEM_N) do
      local l = mem.lua[i]
      local rss = l.per_pub_rss or 0
      w(("| Lua: process RSS delta (`/proc/self/statm`) | %s | %s | %s | ≤ 2 048 | %s |"):format(commas(n), commas(rss),
        commas(rss - chunk(body + 1)), verdict(rss - chunk(body + 1) <= 2048)))
      w(("| Lua: of which the Lua heap (`collectgarbage\"count\"`) | %s | %s | | | |"):format(commas(n),
        commas(l.per_pub_lua_heap or 0)))
      target(("Lua ≤ 2 KiB per idle publication (N = %s)"):format(commas(n)),
             commas(rss - chunk(body + 1)) .. " B", "≤ 2 048 B", rss - chunk(body + 1) <= 2048)
    end
    if mem.sofia then
      w(("| Sofia-SIP: process RSS delta (handle kept, published) | %s | %s | | | |"):format(
        commas(mem.sofia.n or 0), commas(mem.sofia.per_pub or 0)))
    end
    w()
  end

  if sc then
    w(("## 4. Scale: %s publications, requested Expires spread over 10–30 s, compositor `--max-expires 30`"):format(
      commas(cfg.SCALE_N)))
    w()
    w(("Published %d in flight at a time, then left alone: the core refreshes each at 0.9 × the granted " ..
       "Expires. A refresh is *late* when the compositor answers 412 (its state expired first); *missed* " ..
       "when at the end a publication's last 2xx is older than its Expires. Loop lateness: a `sip.timer` " ..
       "re-armed every 10 ms, how late each firing ran."):format(cfg.SCALE_W))
    w()
    w("| publications | run s | ramp s | refreshes | refreshes/s | late (412) | missed | failed | client CPU s per refresh (steady) | loop lateness p50 / p99 / max ms | compositor CPU s | UDP drops | peak RSS MiB |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    w(("| %s | %s | %s | %s | %s | %s | %s | %s | %s µs | %s / %s / %s | %s | %s | %s |"):format(commas(sc.published or 0),
      f(sc.secs, 1), f(sc.ramp_secs, 1), commas(sc.refreshes or 0), commas(sc.refresh_rate or 0),
      commas(sc.late412 or -1), commas(sc.missed or -1), commas(sc.failed or -1), f(sc.us_per_refresh, 1),
      f(sc.lat_p50_ms, 2), f(sc.lat_p99_ms, 2), f(sc.lat_max_ms, 1), f(sc.server_cpu, 2), commas(sc.drops or 0),
      f((sc.maxrss_kb or 0) / 1024, 0)))
    w()
    pictures(drawn.scale, chart_note)
    local zero = (sc.late412 or 1) == 0 and (sc.missed or 1) == 0 and (sc.failed or 1) == 0 and (sc.published or 0) == cfg.SCALE_N
    target(("no late or missed refresh (%s publications)"):format(commas(cfg.SCALE_N)),
           ("%s late, %s missed"):format(commas(sc.late412 or -1), commas(sc.missed or -1)), "0", zero)
    w()
    local c = sc.core
    if c then
      w(("The C core alone at the same scale (`bench/core_roundtrip.c scale`, callgrind): %s publications " ..
         "granted 10–30 s refreshing on the virtual clock for %d s in 10 ms ticks, each request answered " ..
         "at once by a template 200 (not counted). %s refreshes, %s failed: **%s Ir per refresh** " ..
         "(tick, timers, build, parse, state machine, events), of which the timer heap (`heap_*`, " ..
         "`timer_*`, `sipub_ua_tick`, self cost) **%s Ir**."):format(commas(c.pubs or 0), c.secs,
         commas(c.refreshes or 0), commas(c.failures or 0), commas(c.per_refresh), commas(c.timers_per_refresh)))
      w()
    end
  end

  if cg then
    w("## 5. Instructions per PUBLISH round trip in the C core (callgrind)")
    w()
    w("`bench/core_roundtrip.c` on the sans-I/O API with an in-memory transport: per round trip the " ..
      "core builds the request, the bench answers it with a 200 OK from a template (not counted: " ..
      "`--toggle-collect`), the core parses and matches the response, runs the state machine and its " ..
      "timers (Timer K of earlier transactions expiring) and hands out the event. *refresh*: one " ..
      "publication refreshed K times; *life*: K publications created, published, refreshed, modified, " ..
      "removed and released (4 round trips each). Allocations counted by an interposed malloc " ..
      "(`bench/countalloc.c`), libosip2's included.")
    w()
    w("| scenario | round trips | **Ir per round trip** | malloc/calloc per round trip | realloc | request bytes | response bytes |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    for _, mode in ipairs { "refresh", "life" } do
      local c = cg[mode]
      w(("| %s | %s | **%s** | %s | %s | %s | %s |"):format(mode, commas(c.tx), commas(c.per_tx),
        f(c.allocs.allocs_per_tx, 1), f(c.allocs.reallocs_per_tx, 1),
        mode == "refresh" and tostring(c.res.last_req_bytes or "?") or (tostring(c.res.initial_req_bytes or "?") .. " (initial)"),
        tostring(c.res.resp_bytes or "?")))
    end
    w()
    local tr = cg["traced-refresh"]
    if tr and tr.per_tx > 0 then
      w(("The message trace (`sipub_config.trace`): unset it costs a NULL test per message sent or " ..
         "received (the *refresh* row above); set to a C callback that counts, %s Ir per round trip " ..
         "(%+d: two records, a request sent and its response received)."):format(commas(tr.per_tx),
         math.floor(tr.per_tx - cg.refresh.per_tx + 0.5)))
      w()
    end
    local a = cg.refresh.allocs
    if a.request then
      w(("Allocations per *refresh* round trip by phase: request (build + send) %s, response (parse, " ..
         "match, state machine) %s, events (poll) %s, timers (tick) %s."):format(f(a.request, 1),
         f(a.response, 1), f(a.events, 1), f(a.timers, 1)))
      w()
    end
    local c = cg.refresh
    w("Top functions by inclusive cost, *refresh* (Ir per round trip):")
    w()
    w("| function | object | Ir / round trip | share |")
    w("|---|---|---:|---:|")
    local shown, seen = 0, {}
    for _, r in ipairs(c.incl) do
      if shown >= 18 then break end
      if r.pct < 99.5 and not r.fn:match("^0x") and not seen[r.fn] then
        seen[r.fn] = true
        shown = shown + 1
        w(("| `%s` | %s | %s | %s %% |"):format(r.fn, r.obj, commas(r.ir / c.tx), f(r.pct, 1)))
      end
    end
    w()
    w("Self cost by object, *refresh*:")
    w()
    w("| object | Ir / round trip | share |")
    w("|---|---:|---:|")
    local t, order = by_object(c.self)
    for _, o in ipairs(order) do
      w(("| %s | %s | %s %% |"):format(o, commas(t[o] / c.tx), f(t[o] / c.ir * 100, 1)))
    end
    w()
    w("Top functions by self cost, *refresh*:")
    w()
    w("| function | object | Ir / round trip | share |")
    w("|---|---|---:|---:|")
    for i = 1, math.min(15, #c.self) do
      local r = c.self[i]
      w(("| `%s` | %s | %s | %s %% |"):format(r.fn, r.obj, commas(r.ir / c.tx), f(r.pct, 1)))
    end
    w()
  end

  if prof then
    w("## Where the Lua client's time goes")
    w()
    if prof.total and prof.tx and prof.tx > 0 then
      w(("callgrind of `bench/throughput.lua` (N = %d, W = 16; user-space instructions only, start-up " ..
         "included): **%s Ir per transaction** in the whole process."):format(cfg.PROFILE_N,
         commas(prof.total / prof.tx)))
      w()
      w("| inclusive cost of | Ir / transaction | share |")
      w("|---|---:|---:|")
      local want = { "drain", "lsipub_pcall", "l_pub_publish", "l_pub_unpublish", "sipub_pub_publish",
                     "msg_build_request", "sipub_ua_receive", "msg_parse_response", "osip_message_to_str",
                     "osip_message_parse", "push_response", "uv__udp_io", "luaC_step", "malloc", "free" }
      local got = {}
      for _, r in ipairs(prof.incl) do
        if not got[r.fn] then got[r.fn] = r end
      end
      for _, name in ipairs(want) do
        local r = got[name]
        if r then w(("| `%s` (%s) | %s | %s %% |"):format(name, r.obj, commas(r.ir / prof.tx), f(r.pct, 1))) end
      end
      w()
      w("Self cost by object (Lua client):")
      w()
      w("| object | Ir / transaction | share |")
      w("|---|---:|---:|")
      local t, order = by_object(prof.self)
      for _, o in ipairs(order) do
        if t[o] / prof.total > 0.002 then
          w(("| %s | %s | %s %% |"):format(o, commas(t[o] / prof.tx), f(t[o] / prof.total * 100, 1)))
        end
      end
      w()
    end
    if prof.perf_dso then
      w(("`perf record -e cpu-clock` of the Lua client at full speed (N = %s, W = %d), kernel included:"):format(
        commas(cfg.N[#cfg.N]), cfg.W))
      w()
      w("| object | CPU share |")
      w("|---|---:|")
      for _, r in ipairs(prof.perf_dso) do
        if r.pct >= 0.1 then w(("| %s | %s %% |"):format(r.dso, f(r.pct, 1))) end
      end
      w()
      w("| top symbols | object | CPU share |")
      w("|---|---|---:|")
      for _, r in ipairs(prof.perf_sym) do
        w(("| `%s` | %s | %s %% |"):format(r.sym:gsub("%s+$", ""):gsub("|", "\\|"), r.dso, f(r.pct, 1)))
      end
      w()
    end
    if prof.perf_scale and #prof.perf_scale > 0 then
      w(("`perf record` of the scale client (%s publications refreshing by themselves, %d s, ramp included), " ..
         "top symbols:"):format(commas(cfg.SCALE_N), cfg.PERF_SCALE_SECS))
      w()
      w("| symbol | object | CPU share |")
      w("|---|---|---:|")
      for _, r in ipairs(prof.perf_scale) do
        w(("| `%s` | %s | %s %% |"):format(r.sym:gsub("%s+$", ""):gsub("|", "\\|"), r.dso, f(r.pct, 1)))
      end
      w()
    end
  end

  w("## Hosts: LuaJIT (libuv driver) and OpenResty (nginx's loop)")
  w()
  if hosts_text then
    w("The same life (initial, refresh, modify, remove) against one `build/sip-compositor`, runs " ..
      "interleaved: the libuv driver under Lua 5.4 and LuaJIT (the luvit pairing), and the OpenResty " ..
      "driver (`sip.openresty`: cosockets, `ngx.timer`) in one nginx worker. Whole-process CPU; " ..
      "the compositor is the bottleneck of every row, so compare CPU per transaction.")
    w()
    w((hosts_text:gsub("%s+$", "")))
  else
    w("Not measured: " .. tostring(hosts_why) .. ".")
  end
  w()

  if #targets > 0 then
    w("## Targets")
    w()
    w("| target | measured | goal | |")
    w("|---|---|---|---|")
    for _, t in ipairs(targets) do w(("| %s | %s | %s | %s |"):format(t[1], t[2], t[3], verdict(t[4]))) end
    w()
  end
  w(("Settings: `BENCH_N=\"%s\" BENCH_W=%d BENCH_REPEAT=%d BENCH_MEM_N=\"%s\" BENCH_SOFIA_MEM_N=%d " ..
     "BENCH_SCALE_N=%d BENCH_SCALE_SECS=%d BENCH_CORE_K=%d BENCH_LIFE_K=%d`%s. See bench/README.md."):format(
     table.concat(cfg.N, " "), cfg.W, cfg.REPEAT, table.concat(cfg.MEM_N, " "), cfg.SOFIA_MEM_N,
     cfg.SCALE_N, cfg.SCALE_SECS, cfg.CORE_K, cfg.LIFE_K,
     cfg.SKIP:match("%S") and (" (skipped: " .. cfg.SKIP:gsub("^%s+", ""):gsub("%s+$", "") .. ")") or ""))
end

-- ---- main ------------------------------------------------------------------------------

math.randomseed(os.time())
os.execute("mkdir -p " .. quote(TMP))
local mach = machine()
log("%s cores, %s, kernel %s", mach.nproc, mach.model, mach.kernel)
local tp, mem, sc, cg, prof
if not skipped("throughput") then tp = throughput() end
if not skipped("memory") then mem = memory() end
if not skipped("scale") then sc = scale() end
if not skipped("core") then cg = callgrind_core() end
if not skipped("core") and not skipped("scale") and sc then sc.core = callgrind_scale() end
if not skipped("profile") then prof = profile_lua() end
local hosts_text, hosts_why
if not skipped("hosts") then hosts_text, hosts_why = hosts() else hosts_why = "skipped (BENCH_SKIP)" end
local drawn, chart_note = {}, nil
if cfg.CHARTS then
  local dir = OUT:match("^(.*)/[^/]*$") or "."
  drawn, chart_note = charts.draw { dir = dir .. "/charts", rel = "charts/", tmp = TMP, tp = tp, sc = sc,
                                    clients = CLIENTS, format = cfg.CHART_FORMAT, note = cfg.CHART_NOTE }
  if chart_note then log("%s", chart_note) end
else
  chart_note = "charts not drawn (BENCH_CHARTS=0)"
end
report(mach, tp, mem, sc, cg, prof, os.time() - t_begin, drawn, chart_note, hosts_text, hosts_why)
local text = table.concat(md, "\n") .. "\n"
local fh = assert(io.open(OUT, "w"))
fh:write(text)
fh:close()
io.write(text)
log("wrote %s", OUT)
