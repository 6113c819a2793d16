-- The nginx application of spec/integration/openresty_spec.lua: one UA per worker on the
-- OpenResty driver, publishing to the compositor named in nginx.conf (the `sipt_*` variables
-- of the init_worker block), with handlers that use cosockets, ngx.sleep, ngx.shared and
-- ngx.timer.at, and HTTP endpoints (see nginx.conf) through which the spec reads and acts.
local sip = require "sip"
local openresty = require "sip.openresty"

local app = { pubs = {} }
local log_dict = ngx.shared.sipt_log

-- One line in the shared log, in order (read by GET /log).
local function note(...)
  local parts = { ngx.worker.pid() }
  for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
  local n = log_dict:incr("n", 1, 0)
  log_dict:set("l" .. n, table.concat(parts, " "))
end
app.note = note

sip.on_error = function(msg) note("handler-error", (tostring(msg):gsub("\n.*", ""))) end

-- Handlers that yield: a cosocket HTTP request to this nginx, then ngx.sleep, then a timer.
local function attach(ctx, name)
  ctx:on("published", function(response, cause)
    local sock = ngx.socket.tcp()
    sock:settimeout(2000)
    local got = "no-answer"
    if sock:connect("127.0.0.1", app.http_port) then
      sock:send("GET /echo HTTP/1.0\r\nHost: x\r\n\r\n")
      local body = sock:receive("*a")
      got = body and body:match("pong") or "bad-answer"
      sock:close()
    end
    ngx.sleep(0.05)
    local ok = ngx.timer.at(0, function(premature) if not premature then note("timer-from-handler", name) end end)
    note("published", name, response.status_code, ctx.etag, got, ok and "timer" or "no-timer")
  end)
  ctx:on("failed", function(response, cause) note("failed", name, cause) end)
  ctx:on("unpublished", function(response, cause) note("unpublished", name, cause) end)
  return ctx
end

-- init_worker: the UA and the first publication (resumed from the etag store after a reload).
function app.start(cfg)
  app.http_port = cfg.http_port
  local driver = openresty.driver { etags = "sipt_etags", on_exit = cfg.on_exit, exit_timeout = 2 }
  app.driver = driver
  app.ua = sip.UA.new { uri = cfg.aor, outbound_proxy = cfg.proxy, driver = driver }
  local resumed = driver:stored_etag(cfg.aor, "presence")
  note("start", ngx.worker.id(), resumed or "fresh")
  app.pubs.init = attach(openresty.publish(app.ua, cfg.aor, "presence", "open-init", { expires = cfg.expires }), "init")
end

-- init_worker with several workers: each publishes the AORs that fall to it (doc/openresty.md,
-- "Sharding across workers").
function app.start_shard(cfg)
  local id, n = ngx.worker.id(), ngx.worker.count()
  app.ua = sip.UA.new { uri = "sip:gw@example.test", outbound_proxy = cfg.proxy, driver = openresty.driver() }
  for i = 1, cfg.aors do
    if (i - 1) % n == id then
      local aor = ("sip:user%d@example.test"):format(i)
      app.ua:publish(aor, "presence", "worker " .. id, { expires = 60 })
        :on("published", function() note("shard", id, aor) end)
    end
  end
end

-- GET /publish?name=N&body=B[&expires=S]: a new publication (or a modify of N) from a request
-- handler.
function app.publish(name, body, expires)
  local ctx = app.pubs[name]
  if ctx then
    ctx:publish(body)
  else
    local target = ("sip:%s@example.test"):format(name)
    app.pubs[name] = attach(app.ua:publish(target, "presence", body, { expires = expires or 60 }), name)
  end
  return "ok"
end

-- GET /timer?name=N&body=B: the same from an ngx.timer.at callback.
function app.publish_from_timer(name, body)
  return ngx.timer.at(0, function(premature)
    if not premature then app.publish(name, body) end
  end) and "ok" or "no-timer"
end

-- GET /boom: a publication whose 'published' handler raises; the error goes to sip.on_error
-- and the worker goes on.
function app.boom()
  local ctx = app.ua:publish("sip:boom@example.test", "presence", "boom", { expires = 60 })
  ctx:on("published", function() error("boom in handler") end)
  ctx:on("published", function() ngx.exit(0) end) -- would end the pump's timer: refused
  ctx:on("published", function() note("after-boom") end)
  app.pubs.boom = ctx
  return "ok"
end

-- GET /deadhop?port=P: a second UA whose proxy is a closed loopback port; the connected
-- socket hears the ICMP refusal, so the publication fails at once (not after 32 s).
function app.deadhop(port)
  local ua = sip.UA.new { uri = "sip:dead@example.test", outbound_proxy = "sip:127.0.0.1:" .. port,
                          driver = openresty.driver() }
  local t0 = ngx.now()
  local ctx = ua:publish("sip:dead@example.test", "presence", "x", { expires = 60 })
  ctx:on("failed", function(_, cause)
    ngx.update_time()
    note("deadhop-failed", cause, ("%.1f"):format(ngx.now() - t0))
    ua:close()
  end)
  return "ok"
end

function app.status()
  local s = app.driver:status()
  return ("sent=%d received=%d events=%d sockets=%d"):format(s.sent, s.received, s.events, s.sockets)
end

function app.log()
  local out = {}
  for i = 1, log_dict:get("n") or 0 do out[#out + 1] = log_dict:get("l" .. i) end
  return table.concat(out, "\n") .. "\n"
end

return app
