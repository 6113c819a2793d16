-- What many specs share: the address of record they publish as and to, how a value is shown
-- in a spec's name, where the build is, how helper programs are run, and reading a file.
local M = {}

-- The AOR of the UA and the target of its publications unless a spec says otherwise.
M.TARGET = "sip:alice@example.com"

-- The build directory (`make asan` and `make luajit` point SIP_BUILD elsewhere).
M.BUILD = os.getenv("SIP_BUILD") or "build"

-- The interpreter that runs this suite, for the specs that start Lua processes of their own
-- (they load the module of M.BUILD, built for that interpreter): LUA overrides it.
M.LUA = os.getenv("LUA") or (jit and "luajit") or ("lua" .. _VERSION:match("%d+%.%d+"))

-- Whether a shell command succeeded: os.execute says so as true on Lua 5.2+, as 0 on Lua 5.1
-- and LuaJIT.
function M.ok(cmd)
  local r = os.execute(cmd)
  return r == true or r == 0
end

-- Prefix of a shell command for helper programs (kamailio, sqlite3, ps, sipp...): they run
-- without the sanitizer runtime `make asan` preloads into the Lua process, under which some
-- of them hang (ps) or fail.
M.CLEAN_ENV = "unset LD_PRELOAD ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS; "

-- A value as a spec's name shows it: a string quoted (%q) on one line (a newline as \n) and
-- cut after 40 bytes, anything else through tostring.
function M.show(v)
  if type(v) == "string" then
    local s = string.format("%q", #v > 40 and (v:sub(1, 40) .. "…") or v)
    return (s:gsub("\\\n", "\\n"):gsub("\r", "\\r"))
  end
  return tostring(v)
end

-- The whole content of a file, or nil when it cannot be opened.
function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

return M
