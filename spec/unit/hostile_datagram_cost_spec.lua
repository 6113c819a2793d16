-- Issue 13 #3: a datagram is matched (top Via branch, CSeq, Call-ID read cheaply) before any
-- full parse, and what is parsed is bounded (size, header lines), so that no datagram costs
-- more than a linear pass. Virtual transport; the cost is the process CPU time (os.clock).
local S = require "support.scenario"

-- A 200 to req with `lines` extra header lines and a Content-Type (which the fast scanner
-- leaves to libosip2); opts as testing.response_for.
local function heavy(net, req, lines, opts)
  local extra = { "Content-Type: text/plain" }
  for i = 1, lines do extra[#extra + 1] = "X:" .. (i % 100) end
  opts = opts or {}
  opts.raw_extra = extra
  opts["SIP-ETag"] = opts["SIP-ETag"] or "e1"
  return net:response_for(req, 200, opts)
end

describe("issue 13 #3: hostile datagrams cost a bounded, linear pass", function()
  it("ten unmatched datagrams of 8 000 header lines: dropped in well under 100 ms of CPU", function()
    local t = S.start()
    local raw = heavy(t.net, t.req, 8000, { branch = "z9hG4bK0123456789abcdef" })
    assert.is_true(#raw < 65507, "fits a datagram")
    local t0 = os.clock()
    for _ = 1, 10 do t.net:receive(raw) end
    local cpu = os.clock() - t0
    assert.is_true(cpu < 0.1, ("%.3f s of CPU"):format(cpu))
    assert.are.same({}, t.rec)
    S.ok(t.net, t.req, "e1", 3600) -- the real answer still gets through
    S.events(t.rec, { "published(200,OK)" })
  end)

  it("matched datagrams beyond the header-line limit are dropped unparsed", function()
    local t = S.start()
    local raw = heavy(t.net, t.req, 8000)
    local t0 = os.clock()
    for _ = 1, 10 do t.net:receive(raw) end
    local cpu = os.clock() - t0
    assert.is_true(cpu < 0.1, ("%.3f s of CPU"):format(cpu))
    assert.are.same({}, t.rec)
    t.net:reply(t.req, 200, { raw_extra = (function()
      local l = {}
      for i = 1, 100 do l[i] = "X-Ok-" .. i .. ": " .. i end
      return l
    end)(), ["SIP-ETag"] = "e2", Expires = 60 }) -- 100 extra lines: within the limit
    S.events(t.rec, { "published(200,OK)" })
  end)

  it("the pre-match reads compact, lower-case, spaced and folded forms as the parse does", function()
    local t = S.start()
    local raw = t.net:response_for(t.req, 200, { ["SIP-ETag"] = "e1", Expires = 60 })
    raw = raw:gsub("\r\nVia: ", "\r\nv :  ", 1):gsub("\r\nCall%-ID: ", "\r\ni:", 1)
             :gsub("\r\nCSeq: ", "\r\ncseq:   ", 1):gsub(";branch=", " ;\r\n BRANCH = ", 1)
    t.net:receive(raw)
    S.events(t.rec, { "published(200,OK)" })
  end)

  it("a matched branch with another CSeq or Call-ID is dropped before the parse", function()
    local t = S.start()
    t.net:receive(heavy(t.net, t.req, 2000, { cseq = t.req.cseq + 1 }))
    t.net:receive(heavy(t.net, t.req, 2000, { call_id = "other@x" }))
    assert.are.same({}, t.rec)
  end)
end)
