-- bench/charts.lua: the report's main comparisons drawn with gnuplot (Debian gnuplot-nox,
-- mk/packages/bench.txt), for bench/run.lua: client CPU per transaction and transaction rate
-- of lua-sip-publish, SIPp, Sofia-SIP and raw UDP (from the throughput rows), and the scale
-- run per second (refreshes, loop lateness; from bench/scale.lua's SERIES lines).
--
-- charts.draw{ dir =, tmp =, tp =, sc =, clients =, format = "svg" | "png", note = } returns
-- a table { throughput = { {file, alt}… }, scale = { {file, alt} } } of the pictures written
-- (file relative to the report's directory), and a note saying why some are missing (gnuplot
-- not installed, a run skipped, gnuplot failing): the report then says so instead of showing
-- them. Nothing here raises.
local charts = {}

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function have_gnuplot()
  local ok = os.execute("command -v gnuplot > /dev/null 2>&1")
  return ok == true or ok == 0
end

local function write(path, text)
  local fh = assert(io.open(path, "w"))
  fh:write(text)
  fh:close()
end

local function commas(n)
  local s = ("%d"):format(math.floor(n + 0.5))
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

-- Runs a gnuplot script; nil, the first lines of its complaint when it fails.
local function gnuplot(script_path)
  local p = io.popen("gnuplot " .. quote(script_path) .. " 2>&1")
  local out = p:read("*a")
  local ok = p:close()
  if not ok then return nil, (out:gsub("%s+$", ""):sub(1, 300)) end
  return true
end

local TERM = {
  svg = 'set terminal svg size 820,440 dynamic enhanced font "DejaVu Sans,12" background "white"',
  png = 'set terminal pngcairo size 1000,540 enhanced font "DejaVu Sans,11" background "white"',
}

-- One clustered bar chart: clusters (one per N, and the template responder's run) of the
-- clients' values; each bar labelled with its value.
local function bar_chart(o)
  local lines = { "# cluster " .. table.concat(o.series_keys, " ") }
  for _, c in ipairs(o.clusters) do
    local row = { '"' .. c.label .. '"' }
    for _, k in ipairs(o.series_keys) do
      local v = c.values[k]
      row[#row + 1] = v and ("%.6g"):format(v) or "?"
    end
    lines[#lines + 1] = table.concat(row, " ")
  end
  write(o.data, table.concat(lines, "\n") .. "\n")
  local n = #o.series_keys
  local plots = {}
  local colors = { "#1f77b4", "#ff7f0e", "#2ca02c", "#7f7f7f" }
  for i, k in ipairs(o.series_keys) do
    plots[#plots + 1] = ("%s using %d%s title %q lc rgb %q"):format(i == 1 and quote(o.data) or "''",
      i + 1, i == 1 and ":xtic(1)" or "", o.series_names[k], colors[i] or "#444444")
  end
  for i = 1, n do
    local off = (i - 1 - (n - 1) / 2) / (n + 1)
    plots[#plots + 1] = ("'' using ($0%+.4f):%d:(sprintf(%q, $%d)) with labels offset 0,0.7 font \",9\" notitle")
      :format(off, i + 1, o.label_format, i + 1)
  end
  write(o.script, table.concat({
    TERM[o.format], "set output " .. quote(o.out),
    'set datafile missing "?"',
    "set title " .. ("%q"):format(o.title),
    "set ylabel " .. ("%q"):format(o.ylabel),
    "set style data histograms", "set style histogram clustered gap 1",
    "set style fill solid 0.85 border -1", "set boxwidth 0.9",
    "set key top left", "set grid ytics", "set yrange [0:*]", "set offsets 0,0,graph 0.12,0",
    "set format y " .. ("%q"):format(o.ytics_format or "%g"),
    "plot " .. table.concat(plots, ", \\\n     "),
  }, "\n") .. "\n")
  return gnuplot(o.script)
end

local function throughput_charts(o, tp)
  local rows = {}
  for _, r in ipairs(tp.rows or {}) do rows[#rows + 1] = r end
  for _, r in ipairs(tp.fast or {}) do rows[#rows + 1] = r end
  local clusters, index = {}, {}
  for _, r in ipairs(rows) do
    local label = "N = " .. commas(r.n) .. (r.responder == "template" and " (template responder)" or "")
    local c = index[label]
    if not c then
      c = { label = label, cpu = {}, tps = {} }
      index[label] = c
      clusters[#clusters + 1] = c
    end
    c.cpu[r.key] = r.cpu1k * 1000 -- ms per 1 000 transactions
    c.tps[r.key] = r.tps
  end
  if #clusters == 0 then return nil, "no throughput rows" end
  local keys, names = {}, {}
  for _, c in ipairs(o.clients) do
    keys[#keys + 1] = c.key
    names[c.key] = c.short or c.name
  end
  local out, sfx = {}, o.note and (" — " .. o.note) or ""
  local function one(kind, field, title, ylabel, fmt)
    local cl = {}
    for i, c in ipairs(clusters) do cl[i] = { label = c.label, values = c[field] } end
    local file = "throughput_" .. kind .. "." .. o.format
    local ok, err = bar_chart {
      format = o.format, out = o.dir .. "/" .. file, data = o.tmp .. "/chart_" .. kind .. ".dat",
      script = o.tmp .. "/chart_" .. kind .. ".gp", clusters = cl, series_keys = keys,
      series_names = names, title = title .. sfx, ylabel = ylabel, label_format = fmt,
    }
    if not ok then return nil, err end
    out[#out + 1] = { file = o.rel .. file, alt = title }
    return true
  end
  local ok, err = one("cpu", "cpu", "Client CPU per 1 000 PUBLISH transactions (lower is better)",
                      "CPU ms per 1 000 transactions", "%.1f")
  if not ok then return nil, err end
  ok, err = one("rate", "tps", "Transactions per second (higher is better)", "transactions/s", "%.0f")
  if not ok then return nil, err end
  return out
end

local function scale_chart(o, sc)
  local series = sc.series or {}
  if #series == 0 then return nil, "the scale run printed no per-second series" end
  local lines = { "# t initials refreshes lat_p50_ms lat_p99_ms lat_max_ms" }
  local function row(t, x)
    return ("%d %d %d %.3f %.3f %.3f"):format(t, x.initials, x.refreshes, x.lat_p50_ms, x.lat_p99_ms,
                                              x.lat_max_ms)
  end
  for _, x in ipairs(series) do lines[#lines + 1] = row(x.t, x) end
  lines[#lines + 1] = row(series[#series].t + 1, series[#series]) -- the last second's step
  local data = o.tmp .. "/chart_scale.dat"
  write(data, table.concat(lines, "\n") .. "\n")
  local file = "scale." .. o.format
  local title = ("%s publications refreshing by themselves (Expires 10–30 s)%s"):format(
    commas(sc.published or sc.n or 0), o.note and (" — " .. o.note) or "")
  local script = o.tmp .. "/chart_scale.gp"
  -- Top: refresh 2xx per second (left axis) and the ramp's initial 2xx (right axis: it is
  -- far steeper). Bottom: the 10 ms timer's lateness per second, its worst and its median
  -- (with ~100 samples a second, a per-second p99 is the worst or next to it).
  write(script, table.concat({
    TERM[o.format], "set output " .. quote(o.dir .. "/" .. file),
    "set multiplot layout 2,1 title " .. ("%q"):format(title),
    "set grid", "set key top left horizontal", "set xrange [0:*]", "set yrange [0:*]",
    "set offsets 0,0,graph 0.22,0", "set lmargin 12", "set rmargin 12",
    'set ylabel "refresh 2xx per second"', 'set y2label "initial 2xx per second"',
    "set y2range [0:*]", "set y2tics", "set ytics nomirror", "set format x ''",
    ("plot %s using 1:3 with steps lw 2 lc rgb '#1f77b4' title 'refresh 2xx', "):format(quote(data)) ..
      "'' using 1:2 axes x1y2 with steps lw 1.5 lc rgb '#ff7f0e' title 'initial 2xx (ramp, right axis)'",
    "unset y2label", "unset y2tics", "set ytics mirror",
    'set ylabel "loop lateness, ms"', 'set xlabel "seconds since the start"', "set format x '%g'",
    ("plot %s using 1:6 with steps lw 1.5 lc rgb '#d62728' title 'worst in the second', "):format(quote(data)) ..
      "'' using 1:4 with steps lw 2 lc rgb '#2ca02c' title 'median'",
    "unset multiplot",
  }, "\n") .. "\n")
  local ok, err = gnuplot(script)
  if not ok then return nil, err end
  return { { file = o.rel .. file, alt = "refreshes and loop lateness per second at scale" } }
end

function charts.draw(o)
  o.format = o.format == "png" and "png" or "svg"
  o.rel = o.rel or "charts/"
  local drawn, notes = {}, {}
  if not have_gnuplot() then
    return drawn, "charts skipped: gnuplot is not installed (`make bench-deps` installs gnuplot-nox)"
  end
  os.execute("mkdir -p " .. quote(o.dir) .. " " .. quote(o.tmp))
  if o.tp then
    local ok, pics, err = pcall(throughput_charts, o, o.tp)
    if ok and pics then drawn.throughput = pics else notes[#notes + 1] = "throughput: " .. tostring(err or pics) end
  end
  if o.sc then
    local ok, pics, err = pcall(scale_chart, o, o.sc)
    if ok and pics then drawn.scale = pics else notes[#notes + 1] = "scale: " .. tostring(err or pics) end
  end
  return drawn, #notes > 0 and ("some charts were not drawn (" .. table.concat(notes, "; ") .. ")") or nil
end

-- Parses bench/scale.lua's "SERIES scale k=v…" lines into a list of tables.
function charts.series(text)
  local list = {}
  for rest in (text or ""):gmatch("SERIES scale ([^\n]*)") do
    local t = {}
    for k, v in rest:gmatch("(%S+)=(%S+)") do t[k] = tonumber(v) end
    list[#list + 1] = t
  end
  return list
end

return charts
