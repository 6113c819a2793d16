-- Kamailio as a real Event State Compositor for the integration specs.
--
--   local K = require "support.kamailio"
--   local ok, why = K.available()
--   local k = K.start { min_expires = 60 }     -- fresh temp dir, fresh SQLite db, own port
--   k.port, k.uri, k.log, k.dir
--   k:presentities()                          -- rows of the presentity table
--   k:query(sql)                              -- rows (tables keyed by column name)
--   k:wait_presentities(pred, seconds)        -- polls until pred(rows) holds
--   k:restart { fresh_db = true }             -- same port; all published state lost
--   k:stop()                                  -- always call it (finally/teardown)
--
--   -- digest authentication required for every PUBLISH (spec/kamailio/kamailio-auth.cfg):
--   local k = K.start { auth = true, algorithm = "SHA-256", qop = "auth", challenge = 401,
--                       users = { { "alice", "example.test", "secret" } } }
--   k:requests()[i].auth                      -- the credentials each PUBLISH carried
--   k:subscribers()                           -- rows of the subscriber table (with ha1)
--
--   -- the fixture of the Kamailio specs (K.fixture below), and what they check the table with:
--   local fx = K.fixture(before_each, after_each)
--   local k, ua = fx:start { min_expires = 60 }, fx:new_ua { uri = "sip:alice@example.com" }
--   fx.run_until(pred, what); fx.no_handler_errors()
--   K.one_row(k, "alice", "presence"); K.table_empty(k); K.pidf(aor, "open", note)
--
-- Kamailio runs in the foreground of a background shell job (-DD -E), on 127.0.0.1 only,
-- with the config in spec/kamailio/kamailio.cfg; the port, the database URL and the
-- minimum Expires are given on the command line (-l, -A).
local common = require "support.common"

local M = {}

local SCHEMAS = {
  "/usr/share/kamailio/db_sqlite/standard-create.sql",
  "/usr/share/kamailio/db_sqlite/presence-create.sql",
}
-- The subscriber table, for start{ auth = true }.
local AUTH_SCHEMA = "/usr/share/kamailio/db_sqlite/auth_db-create.sql"
local START_TIMEOUT = 10 -- seconds until the UDP worker reports it is ready
local STOP_TIMEOUT = 5   -- seconds between SIGTERM and SIGKILL
local READY_MARK = "ESC: ready"
-- Column and row separators for sqlite3 output (ASCII unit/record separators), so that
-- bodies with newlines or '|' come back intact.
local US, RS = "\31", "\30"

-- ---- shell helpers --------------------------------------------------------------------

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Helper processes (kamailio, sqlite3, ps, sleep) run without the sanitizer runtime.
local CLEAN_ENV = common.CLEAN_ENV

local function sh(cmd)
  local ok = os.execute(CLEAN_ENV .. cmd)
  return ok == true or ok == 0
end

local function capture(cmd)
  local p = assert(io.popen(CLEAN_ENV .. cmd, "r"))
  local out = p:read("*a")
  local ok = p:close()
  return out, ok
end

local function sleep(seconds)
  sh("sleep " .. seconds)
end

local read_file = common.read_file

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Calls fn() every `step` seconds until it returns a truthy value or `timeout` seconds
-- have passed; returns that value, or nil on timeout.
local function poll(timeout, step, fn)
  local tries = math.max(1, math.ceil(timeout / step))
  for i = 1, tries do
    local v = fn()
    if v then return v end
    if i < tries then sleep(step) end
  end
  return nil
end

-- ---- locations ------------------------------------------------------------------------

local function this_dir()
  local src = debug.getinfo(1, "S").source
  local path = src:sub(1, 1) == "@" and src:sub(2) or "spec/support/kamailio.lua"
  local dir = path:match("^(.*)/[^/]*$") or "."
  if dir:sub(1, 1) ~= "/" then
    local cwd = capture("pwd"):gsub("%s+$", "")
    dir = cwd .. "/" .. dir
  end
  return dir
end

M.config = this_dir() .. "/../kamailio/kamailio.cfg"
M.auth_config = this_dir() .. "/../kamailio/kamailio-auth.cfg"

-- The pid of this Lua process: the parent of the shell io.popen starts.
local lua_pid
function M.lua_pid()
  if not lua_pid then lua_pid = tonumber((capture("echo $PPID"))) end
  return lua_pid
end

local function kamailio_bin()
  local path = capture("command -v kamailio 2>/dev/null"):gsub("%s+$", "")
  if path == "" then return nil end
  return path
end

-- ---- processes and ports --------------------------------------------------------------

-- A process that is gone or a zombie (PID 1 in a container may never reap it).
local function alive(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  if not stat then return false end
  local state = stat:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

local function children(pid)
  local out = capture("ps -o pid= --ppid " .. pid .. " 2>/dev/null")
  local list = {}
  for p in out:gmatch("%d+") do list[#list + 1] = tonumber(p) end
  return list
end

-- True when some socket is bound to UDP `port` (any address), from /proc/net/udp.
local function udp_port_bound(port)
  local want = (":%04X "):format(port)
  for _, file in ipairs { "/proc/net/udp", "/proc/net/udp6" } do
    local t = read_file(file)
    if t then
      for line in t:gmatch("[^\n]+") do
        local loc = line:match("^%s*%d+:%s+(%x+:%x+ )")
        if loc and loc:sub(-6) == want then return true end
      end
    end
  end
  return false
end

local function pick_port()
  for _ = 1, 200 do
    local port = math.random(20000, 59999)
    if not udp_port_bound(port) then return port end
  end
  error("support.kamailio: no free UDP port found")
end

-- ---- database -------------------------------------------------------------------------

local function sql_string(s)
  return "'" .. tostring(s):gsub("'", "''") .. "'"
end

-- Hex digest of s with the digest algorithm's hash ("MD5" or "SHA-256"), by coreutils.
local HASH_TOOLS = { ["MD5"] = "md5sum", ["SHA-256"] = "sha256sum" }
function M.hash(algorithm, s)
  local tool = HASH_TOOLS[algorithm or "MD5"]
  if not tool then error("support.kamailio: no hash tool for " .. tostring(algorithm), 2) end
  local out = capture(("printf '%%s' %s | %s"):format(quote(s), tool))
  return (assert(out:match("^(%x+)"), "support.kamailio: " .. tool .. " failed"))
end

-- A new SQLite database from the shipped schemas, in WAL mode so that the specs can read
-- while Kamailio writes. With `users` ({ {username, domain, password}, ... }), also the
-- subscriber table with those rows: ha1 = H(username:domain:password) and
-- ha1b = H(username@domain:domain:password) with `algorithm`'s hash (the realm is the
-- domain; the config has Kamailio compute HA1 from the password column itself).
local function create_db(path, users, algorithm)
  sh("rm -f " .. quote(path) .. " " .. quote(path .. "-wal") .. " " .. quote(path .. "-shm"))
  local schemas = { quote(SCHEMAS[1]), quote(SCHEMAS[2]) }
  if users then schemas[3] = quote(AUTH_SCHEMA) end
  local cmd = ("cat %s | sqlite3 -bail %s && sqlite3 %s 'PRAGMA journal_mode=WAL;' >/dev/null")
    :format(table.concat(schemas, " "), quote(path), quote(path))
  if not sh(cmd) then error("support.kamailio: cannot create the database " .. path) end
  if users and #users > 0 then
    local rows = {}
    for _, u in ipairs(users) do
      local name, domain, password = u[1], u[2], u[3]
      rows[#rows + 1] = ("(%s, %s, %s, %s, %s)"):format(
        sql_string(name), sql_string(domain), sql_string(password),
        sql_string(M.hash(algorithm, name .. ":" .. domain .. ":" .. password)),
        sql_string(M.hash(algorithm, name .. "@" .. domain .. ":" .. domain .. ":" .. password)))
    end
    local sql = "INSERT INTO subscriber (username, domain, password, ha1, ha1b) VALUES " ..
                table.concat(rows, ", ") .. ";"
    if not sh(("sqlite3 -bail %s %s"):format(quote(path), quote(sql))) then
      error("support.kamailio: cannot add the subscribers to " .. path)
    end
  end
end

local function split(s, sep)
  local out, pos = {}, 1
  while true do
    local i = s:find(sep, pos, true)
    if not i then
      out[#out + 1] = s:sub(pos)
      return out
    end
    out[#out + 1] = s:sub(pos, i - 1)
    pos = i + #sep
  end
end

-- Runs `sql` with the sqlite3 CLI; returns an array of rows, each a table keyed by column
-- name (values are strings; NULL is "").
local function sqlite_query(db, sql)
  local cmd = ("sqlite3 -bail -header -cmd '.timeout 3000' -separator %s -newline %s %s %s 2>&1")
    :format(quote(US), quote(RS), quote(db), quote(sql))
  local out, ok = capture(cmd)
  if not ok then error("support.kamailio: sqlite3 failed: " .. out, 3) end
  local rows = {}
  if out == "" then return rows end
  local records = split(out, RS)
  if records[#records] == "" then records[#records] = nil end
  local names = split(records[1], US)
  for i = 2, #records do
    local fields, row = split(records[i], US), {}
    for j, name in ipairs(names) do row[name] = fields[j] end
    rows[#rows + 1] = row
  end
  return rows
end

-- ---- availability ---------------------------------------------------------------------

-- true, or false and the reason: the kamailio binary, the modules the config loads
-- (checked by `kamailio -c`), the SQLite schemas and the sqlite3 CLI. With { auth = true },
-- for the config with digest authentication (auth, auth_db modules, subscriber schema).
function M.available(opts)
  local auth = opts and opts.auth
  local bin = kamailio_bin()
  if not bin then return false, "kamailio is not installed" end
  if capture("command -v sqlite3 2>/dev/null") == "" then
    return false, "the sqlite3 CLI is not installed"
  end
  for _, schema in ipairs(SCHEMAS) do
    if not file_exists(schema) then return false, "missing " .. schema end
  end
  if auth and not file_exists(AUTH_SCHEMA) then return false, "missing " .. AUTH_SCHEMA end
  local config = auth and M.auth_config or M.config
  local out, ok = capture(("cd /tmp && %s -c -f %s 2>&1"):format(quote(bin), quote(config)))
  if not ok then
    return false, "kamailio -c rejects the config (modules missing?): " .. out:sub(-600)
  end
  return true
end

-- ---- the server object ----------------------------------------------------------------

local Server = {}
Server.__index = Server

-- qop option -> the auth config's QOP and CHALLENGE_FLAGS defines.
local QOPS = { auth = { '"auth"', 1 }, ["auth-int"] = { '"auth-int"', 2 }, none = { '""', 0 } }

local function auth_defines(self)
  if not self.auth then return "" end
  local q = QOPS[self.qop]
  local list = {
    "-A", quote(('ALGORITHM="%s"'):format(self.algorithm)),
    "-A", quote("QOP=" .. q[1]), "-A", quote("CHALLENGE_FLAGS=" .. q[2]),
  }
  if self.nonce_expire then
    list[#list + 1] = "-A " .. quote(("NONCE_EXPIRE=%d"):format(self.nonce_expire))
  end
  if self.challenge == 401 then list[#list + 1] = "-A WWW_AUTH" end
  return table.concat(list, " ")
end

local function command_line(self)
  return table.concat({
    quote(self.bin), "-f", quote(self.auth and M.auth_config or M.config),
    "-DD", "-E", "-m", "256", "-M", "16",
    "-P", quote(self.dir .. "/kamailio.pid"), "-Y", quote(self.dir .. "/run"),
    "-w", quote(self.dir), "-l", quote(("udp:127.0.0.1:%d"):format(self.port)),
    "-A", quote(('DBURL="sqlite:///%s"'):format(self.db)),
    "-A", quote(("MIN_EXPIRES=%d"):format(self.min_expires)),
    auth_defines(self),
    self.debug and ("--debug=" .. self.debug) or "",
  }, " ")
end

function Server:log_tail(n)
  local text = read_file(self.log) or ""
  local lines = split(text, "\n")
  local first = math.max(1, #lines - (n or 30))
  return table.concat(lines, "\n", first)
end

-- Launches Kamailio and waits until its UDP worker is ready; false and a reason if it
-- exits or does not get ready in time.
function Server:_launch()
  local f = assert(io.open(self.log, "ab"))
  f:write(("---- start on port %d\n"):format(self.port))
  f:close()
  -- A watchdog beside it sends SIGTERM should this Lua process die without stop()
  -- (killed by a timeout, interrupted): no Kamailio outlives the suite.
  local cmd = ("%s >>%s 2>&1 </dev/null & kp=$!; echo $kp; " ..
               "(while kill -0 %d 2>/dev/null && kill -0 $kp 2>/dev/null; do sleep 1; done; " ..
               "kill -TERM $kp 2>/dev/null) >/dev/null 2>&1 </dev/null &")
    :format(command_line(self), quote(self.log), M.lua_pid())
  local pid = tonumber((capture(cmd)))
  if not pid then return false, "could not start kamailio" end
  self.pid = pid
  local marks_before = self._ready_marks or 0
  local ready = poll(START_TIMEOUT, 0.05, function()
    if not alive(pid) then return "exited" end
    local _, count = (read_file(self.log) or ""):gsub(READY_MARK, "")
    if count > marks_before then
      self._ready_marks = count
      return "ready"
    end
  end)
  if ready == "ready" then return true end
  self:_kill()
  return false, ready == "exited" and "kamailio exited" or "kamailio did not get ready"
end

-- SIGTERM, then SIGKILL after STOP_TIMEOUT; also the workers, should the main process
-- die before them. Waits until the port is released.
function Server:_kill()
  local pid = self.pid
  if not pid then return end
  self.pid = nil
  local workers = children(pid)
  if alive(pid) then sh("kill -TERM " .. pid .. " 2>/dev/null") end
  local gone = poll(STOP_TIMEOUT, 0.05, function() return not alive(pid) end)
  if not gone then sh("kill -KILL " .. pid .. " 2>/dev/null") end
  for _, w in ipairs(workers) do
    if alive(w) then sh("kill -KILL " .. w .. " 2>/dev/null") end
  end
  poll(STOP_TIMEOUT, 0.05, function() return not udp_port_bound(self.port) end)
end

-- Rows of `sql` against the live database.
function Server:query(sql)
  return sqlite_query(self.db, sql)
end

-- The presentity table: username, domain, event, etag, expires (a number), body.
function Server:presentities()
  local rows = self:query("SELECT username, domain, event, etag, expires, body " ..
                          "FROM presentity ORDER BY id")
  for _, r in ipairs(rows) do r.expires = tonumber(r.expires) end
  return rows
end

-- Polls the presentity table until pred(rows) is true (Kamailio deletes a removed row just
-- after sending the 200). Returns the last rows and whether pred held.
function Server:wait_presentities(pred, timeout)
  local last
  local ok = poll(timeout or 2, 0.05, function()
    last = self:presentities()
    return pred(last)
  end)
  return last, ok ~= nil
end

-- Waits (2 s at most) for the presentity table to be empty; returns true, or false and the
-- number of rows left.
function Server:wait_empty()
  local rows, ok = self:wait_presentities(function(r) return #r == 0 end, 2)
  return ok, #rows
end

local NULL_PV = "<null>"

local function pv(v)
  if v == nil or v == NULL_PV or v == "" then return nil end
  return v
end

-- The parameters of a Digest credentials value: { username=, realm=, nonce=, uri=,
-- response=, algorithm=, qop=, nc=, cnonce=, opaque= } (quotes removed); nil if none.
local function parse_credentials(value)
  value = pv(value)
  if not value then return nil end
  local scheme, rest = value:match("^%s*(%S+)%s*(.*)$")
  local c = { scheme = scheme }
  local pos = 1
  while pos <= #rest do
    local name, after = rest:match("^[%s,]*([%w%-]+)%s*=%s*()", pos)
    if not name then break end
    local v, nxt
    if rest:sub(after, after) == '"' then
      v, nxt = rest:match('^"([^"]*)"()', after)
    else
      v, nxt = rest:match("^([^%s,]*)()", after)
    end
    if not v then break end
    c[name:lower()] = v
    pos = nxt
  end
  return c
end

local function parse_request_line(line)
  local head, cred = line:match("^(.-) cred=(.*)$")
  line = head or line
  local fields = {}
  for key, value in line:gmatch("(%w[%w%-]*)=(%S*)") do fields[key] = value end
  return {
    ruri = pv(fields.ruri), event = pv(fields.event), expires = tonumber(pv(fields.expires)),
    if_match = pv(fields["if-match"]), content_type = pv(fields.ctype),
    length = tonumber(pv(fields.length)) or 0, cseq = tonumber(pv(fields.cseq)),
    call_id = pv(fields.callid), branch = pv(fields.branch),
    auth_header = pv(fields.authhdr), auth = parse_credentials(cred),
  }
end

-- The PUBLISH requests the running Kamailio received since its last (re)start, in order,
-- as logged by the config (one line each): ruri, event, expires, if_match, content_type,
-- length, cseq, call_id, branch. UDP retransmissions (same branch) are listed once.
-- Under the auth config also: auth_header ("Authorization", "Proxy-Authorization" or nil),
-- auth (the Digest parameters it carried, see parse_credentials) and auth_rc (the return
-- code of the authentication function: 1 accepted, -2 wrong password, -3 unknown user,
-- -4 stale nonce or nc not increasing, -5 no credentials, ...; the request was challenged
-- when it is negative).
function Server:requests()
  local text = read_file(self.log) or ""
  local start = 1
  for pos in text:gmatch("()%-%-%-%- start on port") do start = pos end
  text = text:sub(start)
  local list, seen = {}, {}
  for line in text:gmatch("ESC: PUBLISH ([^\n]*)") do
    local req = parse_request_line(line)
    local key = req.branch and (req.branch .. " " .. tostring(req.cseq))
    if not key or not seen[key] then
      if key then seen[key] = true end
      list[#list + 1] = req
    end
  end
  for rc, cseq, branch in text:gmatch("ESC: AUTH rc=(%-?%d+) cseq=(%d+) branch=([^\n]*)") do
    for _, req in ipairs(list) do
      if req.branch == branch and req.cseq == tonumber(cseq) then req.auth_rc = tonumber(rc) end
    end
  end
  return list
end

-- The subscriber table (auth): username, domain, password, ha1, ha1b.
function Server:subscribers()
  return self:query("SELECT username, domain, password, ha1, ha1b FROM subscriber ORDER BY id")
end

-- Stops Kamailio and starts it again on the same port; with fresh_db the database is
-- recreated, so every entity-tag handed out before is unknown afterwards.
function Server:restart(opts)
  opts = opts or {}
  self:_kill()
  if opts.fresh_db then create_db(self.db, self.users, self.algorithm) end
  local ok, why = self:_launch()
  if not ok then error("support.kamailio: restart failed: " .. why .. "\n" .. self:log_tail()) end
  return self
end

-- Stops Kamailio (bounded) and removes its temp dir unless SIP_KEEP_KAMAILIO is set.
-- Idempotent.
function Server:stop()
  if self.stopped then return end
  self.stopped = true
  self:_kill()
  if not os.getenv("SIP_KEEP_KAMAILIO") and self.dir:match("^/tmp/lua%-sip%-kamailio%.") then
    sh("rm -rf " .. quote(self.dir))
  end
end

Server.__gc = function(self) self:stop() end

-- Starts a fresh Kamailio. opts: port (default: a free one), min_expires (default 60),
-- debug (Kamailio log level, default the config's 2). With auth = true, the config that
-- challenges every PUBLISH (spec/kamailio/kamailio-auth.cfg), and:
--   users      { {username, domain, password}, ... } put in the subscriber table (the
--              realm is the From domain, so domain is the realm)
--   algorithm  "MD5" (default) or "SHA-256" (all Kamailio 5.6 offers)
--   qop        "auth" (default), "auth-int" or "none"
--   challenge  407 (default: auth_check/auth_challenge, Proxy-Authenticate) or 401
--              (www_authenticate/www_challenge, WWW-Authenticate)
--   nonce_expire  seconds a nonce is accepted (default 300); then stale=true challenges
function M.start(opts)
  opts = opts or {}
  local bin = kamailio_bin()
  if not bin then error("support.kamailio: kamailio is not installed", 2) end
  local dir = capture("mktemp -d /tmp/lua-sip-kamailio.XXXXXX"):gsub("%s+$", "")
  if dir == "" then error("support.kamailio: mktemp failed", 2) end
  sh("mkdir -p " .. quote(dir .. "/run"))
  local self = setmetatable({
    bin = bin, dir = dir, db = dir .. "/presence.db", log = dir .. "/kamailio.log",
    min_expires = opts.min_expires or 60, debug = opts.debug,
  }, Server)
  if opts.auth then
    self.auth = true
    self.users = opts.users or {}
    self.algorithm = opts.algorithm or "MD5"
    self.qop = opts.qop or "auth"
    self.challenge = opts.challenge or 407
    self.nonce_expire = opts.nonce_expire
    if not HASH_TOOLS[self.algorithm] then
      error("support.kamailio: algorithm must be MD5 or SHA-256", 2)
    end
    if not QOPS[self.qop] then error("support.kamailio: qop must be auth, auth-int or none", 2) end
    if self.challenge ~= 401 and self.challenge ~= 407 then
      error("support.kamailio: challenge must be 401 or 407", 2)
    end
  end
  create_db(self.db, self.users, self.algorithm)
  -- An automatic port may be taken between the check and the bind: try a few.
  local attempts = opts.port and 1 or 5
  local why
  for _ = 1, attempts do
    self.port = opts.port or pick_port()
    local ok
    ok, why = self:_launch()
    if ok then
      self.uri = ("sip:127.0.0.1:%d"):format(self.port)
      return self
    end
  end
  local tail = self:log_tail()
  self:stop()
  error("support.kamailio: " .. why .. "\n" .. tail, 2)
end

-- ---- the Kamailio specs' fixture ------------------------------------------------------

M.WAIT = 5 -- seconds any single exchange may take on loopback

-- Inside a describe block (busted's before_each/after_each are passed in: a module does not
-- see the spec's globals). Before each spec, errors raised by event handlers start being
-- collected (fx.no_handler_errors() asserts there were none); after each, the UA fx:new_ua
-- made is closed while Kamailio still answers (so that no transaction outlives the spec),
-- then the Kamailio fx:start started is stopped.
function M.fixture(before_each, after_each)
  local sip = require "sip"
  local loop = require "support.loop"
  local assert = require "luassert"
  local fx = {}
  local errors, saved_on_error

  before_each(function()
    errors = {}
    saved_on_error = sip.on_error
    sip.on_error = function(msg) errors[#errors + 1] = tostring(msg) end
  end)

  after_each(function()
    local ua, k = fx.ua, fx.k
    if ua and not ua.closed then
      ua:close()
      loop.run_until(nil, M.WAIT)
    end
    fx.ua = nil
    if k then k:stop() end
    fx.k = nil
    sip.on_error = saved_on_error
  end)

  -- M.start(opts), stopped after the spec.
  function fx:start(opts)
    self.k = M.start(opts)
    return self.k
  end

  -- A UA on 127.0.0.1 whose outbound proxy is the started Kamailio; config adds to (or
  -- overrides) that. Closed after the spec.
  function fx:new_ua(config)
    local cfg = { outbound_proxy = self.k.uri, local_address = "127.0.0.1" }
    for key, v in pairs(config or {}) do cfg[key] = v end
    self.ua = sip.UA.new(cfg)
    return self.ua
  end

  function fx.no_handler_errors()
    assert.are.same({}, errors, "errors raised in event handlers")
  end

  -- Runs the loop until pred() holds, failing the spec with Kamailio's log tail if it does
  -- not within M.WAIT seconds.
  function fx.run_until(pred, what)
    local ok = loop.run_until(pred, M.WAIT)
    assert.is_true(ok, "timed out waiting for " .. what .. "\n" .. fx.k:log_tail(15))
  end

  return fx
end

-- The one presentity row of user/event (asserting there is exactly one).
function M.one_row(k, user, event)
  local rows = {}
  for _, r in ipairs(k:presentities()) do
    if r.username == user and r.event == event then rows[#rows + 1] = r end
  end
  require("luassert").are.equal(1, #rows, "presentity rows for " .. user .. "/" .. event)
  return rows[1]
end

-- Asserts that the presentity table empties (within Server:wait_empty's 2 s).
function M.table_empty(k)
  local ok, left = k:wait_empty()
  require("luassert").is_true(ok, "presentity table not emptied; rows left: " .. tostring(left))
end

-- A PIDF document for aor (sip:user@domain) with one tuple, t-user: basic status and note.
function M.pidf(aor, basic, note)
  return ([[<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="%s">
  <tuple id="t-%s">
    <status><basic>%s</basic></status>
    <note>%s</note>
  </tuple>
</presence>
]]):format(aor, aor:match("^sips?:([^@]+)@"), basic, note or basic)
end

return M
