-- sip.openresty: runs a user agent on nginx's own event loop (OpenResty, or Debian's nginx with
-- lua-nginx-module): a driver written in Lua (csrc/lua/ldrv_lua.c, doc/api.md "drivers") on UDP
-- cosockets and one ngx.timer per user agent. doc/openresty.md is the user's guide.
--
--   local ua = sip.UA.new{ uri = ..., outboundProxy = ...,
--                          driver = require("sip.openresty").driver{ etags = "sip_etags" } }
--
-- Shape (why): cosockets cannot cross contexts, so one long-lived "pump" timer owns them all.
--  * send() may be called from any context (init_worker, a request, a timer, a handler): it
--    only queues the datagram and posts a semaphore; the pump hands it to the light thread of
--    its next hop, which owns a connected UDP cosocket (made on first use), sends, and
--    receives the answers into the core (see hop_loop for why one thread does both).
--  * The pump sleeps on the semaphore until the core's next deadline (at most WAIT_MAX: nginx
--    gives a running timer no signal when the worker exits, so the pump looks at
--    ngx.worker.exiting() at least that often), then runs the timers due.
--  * Events go through driver:event() into a queue that a second light thread of the pump
--    (the runner) empties with ctx:emit(): handlers run in a light thread, so they may use
--    cosockets, ngx.sleep, ngx.shared, ngx.timer.at, and a slow handler does not hold up the
--    pump's timers and sends.
--  * Nothing here calls an ngx API that needs a request: send/sync/defer/event/now may run in
--    whatever context called into the core.
local ngx = ngx
if type(ngx) ~= "table" or not ngx.timer then
  error("sip.openresty runs inside nginx (OpenResty or lua-nginx-module): no ngx here", 2)
end
local semaphore = require "ngx.semaphore"
local check = require "sip.check"

local M = {}

local Driver = {}
Driver.__index = Driver

-- The pump's longest sleep (s): the worker's exit is noticed within this.
local WAIT_MAX = 1
-- The other light threads sleep longer: the pump wakes them when it stops.
local IDLE_MAX = 30
local EXIT_MODES = { unpublish = true, handover = true }
local DRIVER_KEYS = { on_exit = true, exit_timeout = true, etags = true, log_level = true }

-- The clock: nginx's monotonic milliseconds (cached, updated every loop turn, as nginx's own
-- timers use); a lua-resty-core without monotonic_msec gives the cached wall clock instead.
local mono
do
  local ok, t = pcall(require, "resty.core.time")
  if ok and type(t) == "table" then mono = t.monotonic_msec end
end
local function clock_ms()
  if mono then return mono() end
  return math.floor(ngx.now() * 1000)
end

local function log(d, ...)
  ngx.log(d.log_level, "sip.openresty: ", ...)
end

-- The etag store's key of a publication: its target (the AOR) and event package.
local function store_key(target, event)
  return target .. " " .. event
end

local pump -- the timer function, below

-- M.driver{ on_exit = "unpublish" | "handover", exit_timeout = s, etags = dict or name }
--   on_exit "unpublish" (default): when the worker exits (stop, reload), the UA is closed: its
--     publications are removed (those with unpublishOnClose), waiting exit_timeout s at most
--     (default 3) for the answers.
--   on_exit "handover": the worker sends nothing when it exits; its publications stay on the
--     compositor until they expire, and the next worker resumes them from the etag store
--     (M.publish). Needs etags.
--   etags: an ngx.shared.DICT (or its name) where the entity-tag of every publication is kept
--     (by target and event), so that a reloaded worker resumes instead of publishing anew.
function M.driver(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    check.fail("openresty.driver", "options", "expected a table or nil, got " .. check.show(opts), 2)
  end
  check.known_keys("openresty.driver", "options", opts, DRIVER_KEYS, 2)
  local on_exit = opts.on_exit or "unpublish"
  if not EXIT_MODES[on_exit] then
    check.fail("openresty.driver", "on_exit", "expected 'unpublish' or 'handover', got " .. check.show(on_exit), 2)
  end
  local exit_timeout = opts.exit_timeout or 3
  if type(exit_timeout) ~= "number" or exit_timeout < 0 then
    check.fail("openresty.driver", "exit_timeout", "expected seconds >= 0, got " .. check.show(exit_timeout), 2)
  end
  local etags = opts.etags
  if type(etags) == "string" then
    local dict = ngx.shared[etags]
    if not dict then
      check.fail("openresty.driver", "etags", ("no lua_shared_dict %q in nginx.conf"):format(etags), 2)
    end
    etags = dict
  elseif etags ~= nil and type(etags) ~= "table" then
    check.fail("openresty.driver", "etags", "expected an ngx.shared.DICT or its name, got " .. check.show(etags), 2)
  end
  if on_exit == "handover" and not etags then
    check.fail("openresty.driver", "etags", "on_exit = 'handover' needs an etag store", 2)
  end
  local now = clock_ms()
  local d = setmetatable({
    clock = now,       -- the core's clock starts here (read by the binding)
    on_exit = on_exit, exit_timeout = exit_timeout, etags = etags,
    log_level = opts.log_level or ngx.WARN,
    out = {},          -- datagrams to send: data, host, port, data, host, port...
    events = {},       -- events to deliver (see runner)
    runner_idle = false,
    wake = semaphore.new(), kicked = false,
    run = semaphore.new(),
    deadline = nil,    -- the core's next deadline (core ms), or nil
    wait_until = 0,    -- when the pump's current sleep ends (core ms)
    need_drain = false,
    hops = {},         -- "host:port" -> its light thread, socket and queue
    closed = false,    -- the UA closed with nothing in flight
    exiting = false, stopped = false,
    core = false, ua = false,
    stored = setmetatable({}, { __mode = "k" }), -- context -> the etag it stored last
    stats = { sent = 0, received = 0, send_errors = 0, events = 0 },
  }, Driver)
  -- ngx.timer.at returns nil and an error, or raises one in a phase that has no timers
  local called, ok, err = pcall(ngx.timer.at, 0, pump, d)
  if not called then ok, err = nil, ok end
  if not ok then
    error("sip.openresty: cannot start the pump timer (" .. tostring(err) ..
          "): make the user agent in init_worker_by_lua*, a request handler or a timer", 2)
  end
  return d
end

-- ---- the driver contract (called by the binding, from whatever context called the core) ----

-- The UA's core and facade, once they exist (sip.ua calls this).
function Driver:attach(core, ua)
  if self.core then error("sip.openresty: a driver serves one user agent; make one per UA", 3) end
  self.core, self.ua = core, ua or false
end

-- Wakes the pump (at most one wake-up outstanding).
function Driver:kick()
  if not self.kicked then
    self.kicked = true
    self.wake:post(1)
  end
end

function Driver:send(data, host, port, transport)
  if self.stopped or transport ~= "udp" then return false end
  local hop = self.hops[host .. ":" .. port]
  if hop then -- straight to its thread; the pump makes new hops only
    local hq = hop.queue
    hq[#hq + 1] = data
    if hop.idle then hop.sema:post(1) end
    return true
  end
  local q = self.out
  local n = #q
  q[n + 1], q[n + 2], q[n + 3] = data, host, port
  self:kick()
  return true
end

function Driver:now()
  return clock_ms()
end

function Driver:sync(at)
  self.deadline = at
  if at and at < self.wait_until then self:kick() end
end

function Driver:defer()
  self.need_drain = true
  self:kick()
end

function Driver:close()
  self.closed = true
  self:kick()
end

function Driver:event(ctx, name, response, cause)
  local etags = self.etags
  if etags then
    -- The store follows the compositor: the latest entity-tag while published, nothing after.
    -- Another worker may own the key by now (a reload: the next worker resumes while this
    -- one removes), so only this publication's own last tag is deleted.
    local key = store_key(ctx.target, ctx.event)
    if name == "published" then
      local etag = ctx.etag
      if etag then
        etags:set(key, etag, ctx.options.expires)
        self.stored[ctx] = etag
      end
    elseif name == "unpublished" then
      local mine = self.stored[ctx]
      if mine and etags:get(key) == mine then etags:delete(key) end
      self.stored[ctx] = nil
    end
  end
  local q = self.events
  local n = #q
  q[n + 1], q[n + 2], q[n + 3], q[n + 4] = ctx, name, response or false, cause
  if self.runner_idle then
    self.runner_idle = false
    self.run:post(1)
  end
end

-- ---- helpers for users ---------------------------------------------------------------------

-- The entity-tag stored for target and event (a publication an earlier worker made), or nil.
function Driver:stored_etag(target, event)
  local etags = self.etags
  return etags and etags:get(store_key(target, event)) or nil
end

-- M.publish(ua, target, event, body[, options]): ua:publish, resuming from the etag store
-- when it holds an entity-tag for target and event (options.etag), else publishing anew.
function M.publish(ua, target, event, body, options)
  local d = ua._net
  local etag = type(d) == "table" and getmetatable(d) == Driver and d:stored_etag(target, event)
  if etag and (options == nil or options.etag == nil) then
    local o = {}
    for k, v in pairs(options or {}) do o[k] = v end
    o.etag = etag
    options = o
  end
  return ua:publish(target, event, body, options)
end

-- Counters: sent, received, send_errors, events; and the open sockets.
function Driver:status()
  local n = 0
  for _ in pairs(self.hops) do n = n + 1 end
  local s = self.stats
  return { sent = s.sent, received = s.received, send_errors = s.send_errors, events = s.events,
           sockets = n, deadline = self.deadline, exiting = self.exiting, closed = self.closed }
end

-- ---- the pump (one ngx.timer per UA) and its light threads ----------------------------------

-- One light thread per next hop owns its connected UDP cosocket, sending and receiving.
-- (A UDP cosocket is not full-duplex: a send while another light thread waits in receive
-- fails with "socket busy", and killing the waiting thread closes the socket.) So the thread
-- alternates: it sends what is queued, then receives for at most RECV_SLICE ms while answers
-- may come (ACTIVE ms after a send: Timer F), or sleeps on its semaphore when the hop is idle.
-- A send queued during a receive waits RECV_SLICE ms at most; an idle hop costs no wake-up.
local RECV_SLICE = 20 -- ms
local ACTIVE = 32000

local function hop_fail(d, hop, why)
  log(d, "next hop ", hop.host, ":", hop.port, ": ", why)
  d.stats.send_errors = d.stats.send_errors + #hop.queue
  hop.queue = {}
  if d.core then d.core:_dest_failed(hop.host, hop.port) end -- Connection Error, at once
end

local function hop_loop(d, hop)
  local sock = ngx.socket.udp()
  local ok, err = sock:setpeername(hop.host, hop.port) -- a name needs nginx's `resolver`
  if not ok then
    d.hops[hop.key] = nil -- the next send tries again
    hop_fail(d, hop, "cannot reach: " .. tostring(err))
    return
  end
  sock:settimeout(RECV_SLICE)
  hop.sock = sock
  local stats = d.stats
  while not d.stopped do
    local q = hop.queue
    if #q > 0 then
      hop.queue = {}
      for i = 1, #q do
        ok, err = sock:send(q[i])
        if ok then
          stats.sent = stats.sent + 1
        else
          stats.send_errors = stats.send_errors + 1
          log(d, "send to ", hop.key, " failed: ", err)
          if d.core then d.core:_dest_failed(hop.host, hop.port) end
        end
      end
      hop.active_until = d:now() + ACTIVE
    end
    if d:now() < hop.active_until then
      -- While events wait for the runner, its handlers may send at once (the next request
      -- of a publication): wait 1 ms only, so those sends do not wait for the next datagram.
      -- (Not while a handler runs: one that sleeps would make this thread spin.)
      local short = #d.events > 0
      if short ~= hop.short then
        sock:settimeout(short and 1 or RECV_SLICE)
        hop.short = short
      end
      local data, rerr = sock:receive()
      if data then
        stats.received = stats.received + 1
        if d.core then
          local fed, err2 = pcall(d.core._receive, d.core, data, hop.host, hop.port, "udp")
          if not fed then log(d, "receive: ", err2) end
        end
      elseif rerr == "connection refused" then
        -- ICMP port unreachable on the connected socket: fail now, not after Timer F (32 s)
        if d.core then d.core:_dest_failed(hop.host, hop.port) end
      elseif rerr ~= "timeout" and not d.stopped then
        log(d, "receive from ", hop.key, " failed: ", rerr)
        ngx.sleep(0.1) -- an error that repeats must not spin
      end
    elseif #hop.queue == 0 then
      hop.idle = true
      hop.sema:wait(IDLE_MAX)
      hop.idle = false
    end
  end
  sock:close()
end

-- Hands the queued datagrams to their hops' threads (made on first use, in the pump, which
-- owns every light thread of this driver).
local function flush(d)
  local q = d.out
  if #q == 0 then return end
  d.out = {}
  for i = 1, #q, 3 do
    local host, port = q[i + 1], q[i + 2]
    local key = host .. ":" .. port
    local hop = d.hops[key]
    if not hop then
      hop = { key = key, host = host, port = port, queue = {}, sema = semaphore.new(),
              active_until = 0, idle = false }
      d.hops[key] = hop
      hop.thread = ngx.thread.spawn(hop_loop, d, hop)
    end
    local hq = hop.queue
    hq[#hq + 1] = q[i]
    if hop.idle then hop.sema:post(1) end
  end
end

-- ngx.exit in a light thread of a timer ends the whole timer: the pump, with every
-- publication of the UA. In the runners (the threads that run handlers) it raises instead,
-- which the handler's protected call reports (sip.on_error). Installed once, for every
-- driver; elsewhere ngx.exit is nginx's own.
local runners = setmetatable({}, { __mode = "k" })
local function guard_exit()
  if rawget(ngx, "_sip_exit_guarded") then return end
  local exit = ngx.exit
  ngx.exit = function(...)
    if runners[coroutine.running()] then
      error("sip.openresty: ngx.exit in an event handler would end the user agent's timer; not done", 2)
    end
    return exit(...)
  end
  rawset(ngx, "_sip_exit_guarded", true)
end

-- The runner: delivers the events in order, each context's handlers in this light thread.
-- The queue is flat (ctx, name, response or false, cause) and swapped out whole, so that
-- events queued by the handlers themselves wait for the next round.
local function runner(d)
  runners[coroutine.running()] = true
  local stats = d.stats
  while true do
    local q = d.events
    if #q > 0 then
      d.events = {}
      for i = 1, #q, 4 do
        stats.events = stats.events + 1
        local ctx, response = q[i], q[i + 2]
        -- emit catches a handler's error (sip.on_error, else the error log through stderr)
        local ok, err = pcall(ctx.emit, ctx, q[i + 1], response or nil, q[i + 3])
        if not ok then log(d, "event delivery failed: ", err) end
      end
    elseif d.stopped then
      return
    else
      d.runner_idle = true
      d.run:wait(IDLE_MAX)
      d.runner_idle = false
    end
  end
end

-- The worker is exiting (stop or reload): unpublish (bounded) or hand over (send nothing).
local function begin_exit(d, now)
  d.exiting = true
  d.exit_by = now + d.exit_timeout * 1000
  if d.on_exit == "handover" then
    log(d, "worker exiting: publications handed over (etag store)")
    d.stopped = true
    return
  end
  if d.ua and not d.ua.closed then
    d.ua:close()
  elseif d.core and not d.closed then
    d.core:close()
  end
end

local function stop(d)
  d.stopped = true
  for _, hop in pairs(d.hops) do
    if hop.idle then hop.sema:post(1) end
  end
  for key, hop in pairs(d.hops) do
    ngx.thread.wait(hop.thread) -- within RECV_SLICE or at once
    d.hops[key] = nil
  end
end

-- One turn of the pump: sends, deferred events, due timers. Returns true when it is over.
local function turn(d)
  local core = d.core
  local now = d:now()
  if not d.exiting and ngx.worker.exiting() then begin_exit(d, now) end
  if d.stopped then return true end
  flush(d)
  if core then
    if d.need_drain then
      d.need_drain = false
      core:_drain()
    end
    if d.deadline and d.deadline <= now then core:_tick(now) end
    flush(d)
  end
  if d.closed and #d.out == 0 then return true end
  if d.exiting and now >= d.exit_by then
    log(d, "worker exiting: gave up waiting for the last answers")
    return true
  end
  return false
end

pump = function(premature, d)
  -- premature: the worker exits before the pump ever ran; it still unpublishes below.
  guard_exit()
  local run = ngx.thread.spawn(runner, d)
  while not d.stopped do
    -- A bug here must not end the pump (and with it every publication of the UA) silently.
    local ok, over = pcall(turn, d)
    if not ok then
      log(d, "pump: ", over)
      over = false
      ngx.sleep(0.1)
    end
    if over then break end
    local wait = WAIT_MAX
    if d.deadline then wait = math.min(wait, math.max(0.001, (d.deadline - d:now()) / 1000)) end
    d.wait_until = d:now() + wait * 1000
    if #d.out == 0 and not d.need_drain then d.wake:wait(wait) end
    d.kicked = false
    d.wait_until = 0
  end
  stop(d)
  if d.runner_idle then d.run:post(1) end
  ngx.thread.wait(run) -- the events already queued are delivered before the timer ends
end

return M
