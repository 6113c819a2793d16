-- Responses are read by a fast path (csrc/scan.c) when they have a common shape, by libosip2
-- otherwise: the same response written either way must lead to the same events, entity-tag
-- and timers. fuzz/fuzz_scan.c checks the parsed fields; these check the outcome end to end.
local S = require "support.scenario"

-- Rewrites a built response: each header line `name: value` (long form) through f.
local function rewrite(raw, name, f)
  return (raw:gsub("\r\n(" .. name:gsub("%-", "%%-") .. "): ([^\r]*)", function(n, v)
    return "\r\n" .. f(n, v)
  end, 1))
end

-- Ways of writing a response that change nothing: { what, function of the raw text }.
local VARIANTS = {
  { "plain (fast path)", function(raw) return raw end },
  { "compact forms, lower-case names (fast path)", function(raw)
    for long, short in pairs { Via = "v", From = "f", To = "t", ["Call-ID"] = "i", ["Content-Length"] = "l" } do
      raw = rewrite(raw, long, function(_, v) return short .. ":" .. v end)
    end
    return (raw:gsub("\r\nSIP%-ETag:", "\r\nsip-etag:"):gsub("\r\nExpires:", "\r\nEXPIRES:"))
  end },
  { "values padded with spaces and tabs (fast path)", function(raw)
    for _, name in ipairs { "SIP-ETag", "Expires", "Min-Expires", "Retry-After", "Call-ID" } do
      raw = rewrite(raw, name, function(n, v) return n .. ":\t " .. v .. " \t" end)
    end
    return raw
  end },
  { "unknown headers with commas and quotes, Allow and Contact (fast path)", function(raw)
    return (raw:gsub("\r\nCSeq:", "\r\nSupported: path, outbound\r\nX-Note: \"a, b\"; c=<sip:x,y>\r\n" ..
                     "Allow: PUBLISH, OPTIONS\r\nContact: <sip:esc@192.0.2.1;transport=udp>\r\nCSeq:", 1))
  end },
  { "folded header lines (libosip2)", function(raw)
    for _, name in ipairs { "SIP-ETag", "Expires", "Min-Expires", "Retry-After" } do
      raw = rewrite(raw, name, function(n, v) return n .. ":\r\n  " .. v end)
    end
    return raw
  end },
  { "a display name in To (libosip2)", function(raw)
    return rewrite(raw, "To", function(n, v) return n .. ": \"Alice\" " .. v end)
  end },
}

describe("a response reads the same on the fast path and through libosip2", function()
  for _, v in ipairs(VARIANTS) do
    local what, variant = v[1], v[2]
    describe(what, function()
      it("200: SIP-ETag and Expires", function()
        local t = S.start { options = { expires = 600 } }
        t.net:receive(variant(t.net:response_for(t.req, 200, { headers = { { "SIP-ETag", "e1.x" }, { "Expires", 600 } } })))
        S.events(t.rec, { "published(200,OK)" })
        assert.are.equal("e1.x", t.ctx.etag)
        S.refresh(S.fires_at(t.net, 540), "e1.x", 600)
      end)

      it("423: the retry asks for Min-Expires", function()
        local t = S.start { options = { expires = 30 } }
        t.net:receive(variant(t.net:response_for(t.req, 423, { headers = { { "Min-Expires", 1800 } } })))
        S.events(t.rec, { "progress(423,Interval Too Brief)" })
        S.initial(t.net:take(), "B1", 1800)
      end)

      it("503 to a refresh: retried after Retry-After", function()
        local t = S.published()
        local r = S.fires_at(t.net, 3240)
        t.net:receive(variant(t.net:response_for(r, 503, { headers = { { "Retry-After", "20 (maintenance)" } } })))
        S.events(t.rec, { "progress(503,Service Unavailable)" })
        S.refresh(S.fires_at(t.net, 3260), "e1", 3600)
      end)
    end)
  end
end)
