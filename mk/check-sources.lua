-- mk/check-sources.lua ROCKSPEC SOURCE... — fails (exit 1) when the C sources the rockspec
-- builds sip.core from differ from SOURCE... (the Makefile passes mk/sources.mk's ROCK_SRC:
-- MODULE_SRC with every feature switch off), naming what is missing on each side.
local path = arg[1]
if not path then
  io.stderr:write("usage: lua mk/check-sources.lua ROCKSPEC SOURCE...\n")
  os.exit(2)
end

-- A rockspec is Lua assignments: run it in an empty environment and read build.modules.
local env = {}
local chunk, err = loadfile(path, "t", env)
if not chunk then io.stderr:write("check-sources: ", err, "\n") os.exit(2) end
local ok, run_err = pcall(chunk)
if not ok then io.stderr:write("check-sources: ", tostring(run_err), "\n") os.exit(2) end
local module = env.build and env.build.modules and env.build.modules["sip.core"]
local listed = type(module) == "table" and module.sources
if type(listed) ~= "table" then
  io.stderr:write("check-sources: ", path, " has no build.modules[\"sip.core\"].sources\n")
  os.exit(1)
end

local function set_of(list, what, problems)
  local set = {}
  for _, s in ipairs(list) do
    if set[s] then problems[#problems + 1] = ("%s lists %s twice"):format(what, s) end
    set[s] = true
  end
  return set
end

local problems = {}
local make_list = { table.unpack(arg, 2) }
local in_rock = set_of(listed, path, problems)
local in_make = set_of(make_list, "mk/sources.mk (ROCK_SRC)", problems)
for _, s in ipairs(make_list) do
  if not in_rock[s] then problems[#problems + 1] = ("%s: missing %s (in mk/sources.mk)"):format(path, s) end
end
for _, s in ipairs(listed) do
  if not in_make[s] then problems[#problems + 1] = ("%s: lists %s (not in mk/sources.mk's ROCK_SRC)"):format(path, s) end
end

if #problems > 0 then
  io.stderr:write("check-sources: the rockspec and mk/sources.mk disagree:\n  ",
                  table.concat(problems, "\n  "), "\n")
  os.exit(1)
end
print(("check-sources: %s builds sip.core from the %d sources of mk/sources.mk"):format(path, #make_list))
