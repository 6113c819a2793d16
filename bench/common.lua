-- bench/common.lua: what the Lua benchmark clients share: module paths, the PIDF bodies,
-- process CPU and memory from /proc, and one-line key=value result output.
local M = {}

local build = os.getenv("SIP_BUILD") or "build"
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = build .. "/?.so;" .. package.cpath

-- Two ~200-byte PIDF documents (the initial body and the modified one).
local function pidf(basic)
  return ([[<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:bench@127.0.0.1">
<tuple id="t1"><status><basic>%s</basic></status></tuple>
</presence>
]]):format(basic)
end
M.BODY1 = pidf("open")
M.BODY2 = pidf("closed")
M.CONTENT_TYPE = "application/pidf+xml"

local PAGE = 4096

-- CPU seconds (user, system) of a process from /proc/PID/stat ("self" by default).
function M.cpu(pid)
  local f = io.open("/proc/" .. (pid or "self") .. "/stat")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local rest = s:match("%) (.*)$")
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  -- after "(comm)": state is field 3 of stat, so utime (14) and stime (15) are rest[12], rest[13]
  local hz = 100
  return tonumber(fields[12]) / hz, tonumber(fields[13]) / hz
end

-- Resident set size in bytes, from /proc/self/statm.
function M.rss()
  local f = assert(io.open("/proc/self/statm"))
  local _, res = f:read("n", "n")
  f:close()
  return res * PAGE
end

-- Prints one result line: "RESULT name k=v k=v ..." (keys sorted), for bench/run.lua.
function M.result(name, t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = { "RESULT", name }
  for _, k in ipairs(keys) do
    local v = t[k]
    if math.type(v) == "float" then v = ("%.6g"):format(v) end
    parts[#parts + 1] = k .. "=" .. tostring(v)
  end
  io.write(table.concat(parts, " "), "\n")
  io.flush()
end

function M.arg_int(v, default)
  local n = tonumber(v)
  if not n then return default end
  return math.tointeger(n) or default
end

return M
