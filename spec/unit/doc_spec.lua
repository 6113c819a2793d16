-- The API reference (`make doc`, config.ld) is generated from the doc comments of the
-- facade: every public function of lua/sip/*.lua must have one (a `---` block right above
-- it, or `@local` for one that is public only to the library), and LDoc, when installed,
-- must run over them without a warning.
local FILES = {
  "lua/sip/init.lua", "lua/sip/ua.lua", "lua/sip/context.lua", "lua/sip/response.lua",
  "lua/sip/compositor.lua", "lua/sip/testing.lua", "lua/sip/vnet.lua",
}

local function lines_of(path)
  local out = {}
  for line in io.lines(path) do out[#out + 1] = line end
  return out
end

-- The public functions of a file without a doc comment: `function T.name(` and
-- `function T:name(` (not local, not metamethods) whose comment block above does not start
-- with `---` and is not marked @local.
local function undocumented(path)
  local lines, missing = lines_of(path), {}
  for i, line in ipairs(lines) do
    local name = line:match("^function%s+([%w_]+[.:][%w_]+)%s*%(")
    if name and not name:match("[.:]__") then
      local j, first, is_local = i - 1, nil, false
      while j >= 1 and lines[j]:match("^%s*%-%-") do
        first = lines[j]
        if lines[j]:match("@local") then is_local = true end
        j = j - 1
      end
      if not is_local and not (first and first:match("^%-%-%-")) then
        missing[#missing + 1] = ("%s:%d: %s"):format(path, i, name)
      end
    end
  end
  return missing
end

describe("the API reference", function()
  it("every public function of the facade has a doc comment", function()
    local missing = {}
    for _, path in ipairs(FILES) do
      for _, m in ipairs(undocumented(path)) do missing[#missing + 1] = m end
    end
    assert(#missing == 0, "no doc comment (---) for:\n  " .. table.concat(missing, "\n  "))
  end)

  it("config.ld lists every file of the facade but the internal ones", function()
    local config = assert(io.open("config.ld")):read("*a")
    for _, path in ipairs(FILES) do
      assert(config:find(path, 1, true), path .. " is not in config.ld")
    end
  end)

  it("LDoc runs without a warning", function()
    local common = require "support.common"
    if not common.ok("command -v ldoc > /dev/null 2>&1") then
      return pending("ldoc is not installed (make doc installs it)")
    end
    local dir = os.tmpname()
    os.remove(dir)
    -- without the sanitizer runtime `make asan` preloads (the tools ldoc runs report leaks)
    local p = assert(io.popen(("%sldoc -d %q . 2>&1"):format(common.CLEAN_ENV, dir)))
    local out = p:read("*a")
    p:close()
    os.execute(("rm -rf %q"):format(dir))
    local warnings = {}
    for line in out:gmatch("[^\n]+") do
      if not (line:match("^reading configuration") or line:match("^output written")
              or line:match("^format:")) then
        warnings[#warnings + 1] = line
      end
    end
    assert(#warnings == 0, "LDoc says:\n" .. table.concat(warnings, "\n"))
  end)
end)
