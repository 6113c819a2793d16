-- bench/openresty/life.lua: the throughput life of bench/throughput.lua (initial -> refresh ->
-- modify -> remove: 4 transactions), N publications through one UA, W in flight, on any driver.
-- run(ua, N, W, done) calls done(transactions, failed) when the last one is removed.
return function(ua, N, W, done)
  local OPTS = { contentType = "application/pidf+xml", expires = 3600 }
  local BODY1, BODY2 = ("<presence>open</presence>"):rep(8), ("<presence>closed</presence>"):rep(8)
  local started, finished, failed, transactions = 0, 0, 0, 0
  local start
  start = function()
    started = started + 1
    local ctx = ua:publish("sip:u" .. started .. "@127.0.0.1", "presence", BODY1, OPTS)
    local step = 0
    ctx:on("published", function()
      transactions = transactions + 1
      step = step + 1
      if step == 1 then ctx:publish()
      elseif step == 2 then ctx:publish(BODY2)
      else ctx:unpublish() end
    end)
    ctx:on("failed", function() failed = failed + 1 end)
    ctx:on("unpublished", function(response)
      if response and response.status_code == 200 then transactions = transactions + 1 end
      finished = finished + 1
      if started < N then start() elseif finished == N then done(transactions, failed) end
    end)
  end
  for _ = 1, math.min(W, N) do start() end
end
