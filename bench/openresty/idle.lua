-- bench/openresty/idle.lua: N publications published (W in flight) and left idle; calls
-- done(published, failed) once all are answered. Memory is measured around it by the caller.
return function(ua, N, W, done)
  local OPTS = { contentType = "application/pidf+xml", expires = 3600 }
  local BODY = ("<presence>open</presence>"):rep(8)
  local started, answered, failed = 0, 0, 0
  local start
  start = function()
    started = started + 1
    local ctx = ua:publish("sip:u" .. started .. "@127.0.0.1", "presence", BODY, OPTS)
    local first = true
    local function next_one(ok)
      if not first then return end
      first = false
      answered = answered + 1
      if not ok then failed = failed + 1 end
      if started < N then start() elseif answered == N then done(N - failed, failed) end
    end
    ctx:on("published", function() next_one(true) end)
    ctx:on("failed", function() next_one(false) end)
  end
  for _ = 1, math.min(W, N) do start() end
end
