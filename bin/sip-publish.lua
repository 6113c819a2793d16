-- sip-publish: publishes event state from a shell, keeps it refreshed, re-publishes when the
-- file changes, and removes it on Ctrl-C/SIGTERM (or leaves it, with --once). See --help.
local sip = require "sip"

local USAGE = [[
usage: sip-publish [options] TARGET EVENT [BODY-FILE|-]

Publishes the event state in BODY-FILE (or standard input, "-") for TARGET, a sip: or sips:
URI, as EVENT (presence, dialog, message-summary, ...), keeps it refreshed, publishes it
again when the file changes, and removes it on Ctrl-C or SIGTERM before exiting.

options:
  --proxy URI            outbound proxy (default: the host of TARGET)
  --from URI             the publisher's address of record (default: TARGET)
  --user NAME            digest user name (default: the user part of --from)
  --password SECRET      digest password
  --ha1 HEX              digest H(user:realm:password) instead of a password
  --expires SECONDS      requested lifetime of the state (default 3600)
  --content-type TYPE    media type of the body (default: by EVENT: presence
                         application/pidf+xml, dialog application/dialog-info+xml,
                         message-summary application/simple-message-summary, else text/plain)
  --header "Name: value" an extra header for every request (repeatable)
  --etag TAG             resume the state an earlier run left (refresh with this entity-tag)
  --once                 publish, wait for the answer, print the entity-tag and exit,
                         leaving the state in place (resume it later with --etag)
  --trace                print every SIP message to standard error as it is sent (-->),
                         received (<--) or dropped (x--, with the reason): a header line
                         with the time, the remote flow (udp:HOST:PORT) and a note
                         ("retransmission 2"), then the message as on the wire. The
                         password and HA1 never appear (an Authorization header shows the
                         digest response, as sent)
  --help                 this text

Each event is printed on one line with the time. Exit status: 0 done (state removed, or
left with --once), 1 the publication failed, 2 bad usage, 130 interrupted twice.
]]

local DEFAULT_TYPES = {
  presence = "application/pidf+xml",
  dialog = "application/dialog-info+xml",
  ["message-summary"] = "application/simple-message-summary",
}

local function die(code, fmt, ...)
  io.stderr:write("sip-publish: ", fmt:format(...), "\n")
  os.exit(code)
end

local function parse_args(argv)
  local o = { headers = {} }
  local positional = {}
  local valued = {
    ["--proxy"] = "proxy", ["--from"] = "from", ["--user"] = "user", ["--password"] = "password",
    ["--ha1"] = "ha1", ["--expires"] = "expires", ["--content-type"] = "content_type",
    ["--etag"] = "etag",
  }
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--help" or a == "-h" then
      io.write(USAGE)
      os.exit(0)
    elseif a == "--once" then
      o.once = true
    elseif a == "--trace" then
      o.trace = true
    elseif a == "--header" then
      i = i + 1
      if not argv[i] then die(2, "--header needs a value (\"Name: value\")") end
      o.headers[#o.headers + 1] = argv[i]
    elseif valued[a] then
      i = i + 1
      if not argv[i] then die(2, "%s needs a value", a) end
      o[valued[a]] = argv[i]
    elseif a:sub(1, 2) == "--" then
      die(2, "unknown option %s (see --help)", a)
    else
      positional[#positional + 1] = a
    end
    i = i + 1
  end
  if #positional < 2 or #positional > 3 then die(2, "expected TARGET EVENT [BODY-FILE|-] (see --help)") end
  o.target, o.event, o.file = positional[1], positional[2], positional[3] or "-"
  if o.expires then
    o.expires = tonumber(o.expires)
    if not o.expires or o.expires ~= math.floor(o.expires) or o.expires < 1 then
      die(2, "--expires must be a whole number of seconds >= 1")
    end
  end
  if o.password and o.ha1 then die(2, "give --password or --ha1, not both") end
  return o
end

local function read_body(file)
  if file == "-" then return io.read("*a") end
  local f, err = io.open(file, "rb")
  if not f then return nil, err end
  local body = f:read("*a")
  f:close()
  return body
end

-- Output: one line per event; on a terminal, a status line below them that is rewritten.
local isatty = os.execute("test -t 1")
local tty = isatty == true or isatty == 0 -- Lua 5.1 returns the status, 5.2+ true
local t0_wall, t0 = os.time(), sip.now()
local status_shown = false

local function stamp()
  local elapsed = sip.now() - t0
  local secs = math.floor(elapsed)
  return os.date("%H:%M:%S", t0_wall + secs) .. (".%03d"):format(math.floor((elapsed - secs) * 1000))
end

local function line(fmt, ...)
  if status_shown then io.write("\r\27[K") end
  io.write(stamp(), " ", fmt:format(...), "\n")
  status_shown = false
  io.flush()
end

-- --trace: one block per message on stderr, like sngrep's message view.
local ARROWS = { sent = "-->", received = "<--", dropped = "x--" }
local function trace(direction, text, remote, note, _, reason)
  if status_shown then io.stdout:write("\r\27[K"); io.stdout:flush(); status_shown = false end
  local head = ("%s %s %s %s"):format(stamp(), ARROWS[direction] or direction, direction, remote or "?")
  if reason then head = head .. " (" .. reason .. (note and ": " .. note or "") .. ")"
  elseif note then head = head .. " (" .. note .. ")" end
  io.stderr:write(head, "\n", text, text:sub(-1) == "\n" and "" or "\n", "\n")
end

local function status(fmt, ...)
  if not tty then return end
  io.write("\r\27[K", fmt:format(...))
  status_shown = true
  io.flush()
end

local function main(argv)
  local o = parse_args(argv)
  local body, err = read_body(o.file)
  if not body then die(1, "cannot read %s: %s", o.file, err) end
  if body == "" and not o.etag then die(2, "the body is empty: nothing to publish") end

  local config = { uri = o.from or o.target, outbound_proxy = o.proxy, user_agent = "sip-publish/" .. sip._VERSION }
  if o.user then config.authorizationUser = o.user end
  if o.password then config.password = o.password end
  if o.ha1 then config.ha1 = o.ha1 end
  if o.trace then config.trace = trace end
  local ok, ua = pcall(sip.UA.new, config)
  if not ok then die(2, "%s", tostring(ua):gsub("^.-bad argument", "bad argument")) end

  local options = {
    contentType = o.content_type or DEFAULT_TYPES[o.event] or "text/plain",
    expires = o.expires,
    extraHeaders = #o.headers > 0 and o.headers or nil,
    etag = o.etag,
    unpublishOnClose = not o.once,
  }
  local pub
  ok, pub = pcall(ua.publish, ua, o.target, o.event, body, options)
  if not ok then die(2, "%s", tostring(pub)) end

  local exit_code, stopping, last_body = 1, false, body
  local granted

  pub:on("progress", function(r, cause)
    line("progress    %s %s", r and r.status_code or "-", cause)
  end)
  pub:on("published", function(r, cause)
    granted = tonumber(r:getHeader("Expires")) or o.expires or 3600
    line("published   %d %s etag=%s expires=%s", r.status_code, cause, pub.etag, granted)
    if o.once then
      print(pub.etag)
      exit_code = 0
      ua:close() -- unpublishOnClose is false: the state stays at the server
      return
    end
    status("[published %s, refresh in %ds] Ctrl-C removes it", pub.etag, math.floor(granted * 0.9))
  end)
  pub:on("failed", function(r, cause)
    line("failed      %s %s", r and r.status_code or "-", cause)
  end)
  pub:on("unpublished", function(r, cause)
    line("unpublished %s %s", r and r.status_code or "-", cause)
    if stopping and r and r.status_code >= 200 and r.status_code < 300 then exit_code = 0 end
    if not stopping then ua:close() end -- the state is gone: nothing left to do
  end)

  -- Ctrl-C / SIGTERM: remove the state, wait for the answer, exit.
  sip.on_signal = function(name)
    stopping = true
    line("%s: removing the published state", name)
    sip.shutdown()
  end

  -- The file is read again every second; a change is published (a modify).
  if o.file ~= "-" and not o.once then
    local function watch()
      if stopping or ua.closed then return end
      local now = read_body(o.file)
      if now and now ~= "" and now ~= last_body then
        last_body = now
        line("modify      %s changed (%d bytes)", o.file, #now)
        pub:publish(now)
      end
      sip.timer(1, watch):unref()
    end
    sip.timer(1, watch):unref()
  end

  local ran, err = pcall(sip.run)
  if not ran then
    if tostring(err):find("interrupted!", 1, true) then
      line("interrupted: the state was not removed")
      return 130
    end
    error(err, 0)
  end
  if tty and status_shown then io.write("\n") end
  return exit_code
end

os.exit(main(arg))
