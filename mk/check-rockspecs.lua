-- mk/check-rockspecs.lua SCM RELEASE — fails (exit 1) unless both rockspecs build through
-- mk/rock.mk (so the C sources are mk/sources.mk's: no second list to drift), accept every Lua
-- from 5.1, declare the libraries the module links, install the programs, and agree with
-- each other but for version and source.
local function load_spec(path)
  local env = {}
  local chunk, err = loadfile(path, "t", env)
  if not chunk then io.stderr:write("check-rockspecs: ", err, "\n") os.exit(2) end
  chunk()
  return env
end

local problems = {}
local function want(ok, fmt, ...) if not ok then problems[#problems + 1] = fmt:format(...) end end

local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local specs = {}
for i = 1, 2 do
  local path = arg[i]
  local s = load_spec(path)
  specs[i] = s
  want(s.build and s.build.type == "make" and s.build.makefile == "mk/rock.mk",
       "%s: build must be type \"make\" with mk/rock.mk", path)
  want(s.dependencies and s.dependencies[1] == "lua >= 5.1", "%s: dependencies must be { \"lua >= 5.1\" }", path)
  local ext = s.external_dependencies or {}
  for _, lib in ipairs { "OSIP2", "LIBUV", "OPENSSL" } do
    want(ext[lib] ~= nil, "%s: external_dependencies lacks %s", path, lib)
  end
  local bin = s.build and s.build.install and s.build.install.bin or {}
  for name, file in pairs(bin) do
    want(io.open(file) ~= nil, "%s: install.bin %s: no file %s", path, name, file)
  end
end
for _, field in ipairs { "dependencies", "external_dependencies", "build", "description", "package" } do
  want(same(specs[1][field], specs[2][field]), "%s and %s differ in %s", arg[1], arg[2], field)
end

if #problems > 0 then
  for _, p in ipairs(problems) do io.stderr:write("check-rockspecs: ", p, "\n") end
  os.exit(1)
end
print("check-rockspecs: both rockspecs build sip.core from mk/sources.mk through mk/rock.mk")
