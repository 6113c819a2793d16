-- sip.check: argument checking shared by the facade. Errors name the function, the
-- argument and what was wrong, and are raised at the caller's level. The rules of what a
-- string may hold (URIs, tokens, media types, header lines, hosts) are the core's
-- (core.check); this module keeps the type checks and the wording around them.
local core = require "sip.core"

local check = {}

-- Raises "bad argument to 'fname' (what: msg)" at level (as error's level, from here), in
-- the one wording the binding also uses for the core's input errors.
local function fail(fname, what, msg, level)
  core.argerror(fname, what, msg, (level or 2) + 1) -- not a tail call: keeps the level
end
check.fail = fail

local function show(v)
  if type(v) == "string" then return ("%q"):format(v) end
  return type(v)
end
check.show = show

local core_check = core.check

-- v (a string) against the core's rule `kind` ("uri", "token", "media_type", "header_value",
-- "header_line", "etag", "host", "address").
function check.rule(fname, what, kind, v, level)
  if type(v) ~= "string" then
    fail(fname, what, "expected a string, got " .. show(v), (level or 2) + 1)
  end
  local problem, msg = core_check(kind, v)
  if problem then fail(fname, what, msg, (level or 2) + 1) end
  return v
end

local NO_OPTS = {}
local EMPTY = select(2, core_check("header_value", "")) -- the core's "must not be empty"
check.HEADER = { header = true } -- opts of a string that goes into a header

function check.string(fname, what, v, level, opts)
  opts = opts or NO_OPTS
  if v == nil and opts.optional then return nil end
  if type(v) ~= "string" then
    fail(fname, what, "expected a string, got " .. show(v), (level or 2) + 1)
  end
  if not opts.allow_empty and v == "" then
    fail(fname, what, EMPTY, (level or 2) + 1)
  end
  if opts.header then
    local problem, msg = core_check("header_value", v)
    if problem then fail(fname, what, msg, (level or 2) + 1) end
  end
  return v
end

-- A number is shown as its value ("got 1.5"), anything else as its type or quoted string.
local function show_number(v)
  if type(v) == "number" then return tostring(v) end
  return show(v)
end

function check.integer(fname, what, v, level, min, max)
  if math.type and math.type(v) ~= "integer" then
    if not (type(v) == "number" and v == math.floor(v) and v > -2^53 and v < 2^53) then
      fail(fname, what, "expected an integer, got " .. show_number(v), (level or 2) + 1)
    end
  elseif type(v) ~= "number" or v ~= math.floor(v) then
    fail(fname, what, "expected an integer, got " .. show_number(v), (level or 2) + 1)
  end
  if (min and v < min) or (max and v > max) then
    fail(fname, what, ("must be between %s and %s, got %s"):format(min or "-inf", max or "inf", v),
         (level or 2) + 1)
  end
  return math.tointeger and math.tointeger(v) or v
end

function check.boolean(fname, what, v, level)
  if type(v) ~= "boolean" then
    fail(fname, what, "expected a boolean, got " .. show(v), (level or 2) + 1)
  end
  return v
end

-- Rejects keys that are not in `known` (a set), to catch misspelt option names.
function check.known_keys(fname, what, t, known, level)
  for k in pairs(t) do
    if not known[k] then
      fail(fname, what, ("unknown field %s"):format(show(k)), (level or 2) + 1)
    end
  end
end

return check
