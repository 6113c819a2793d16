-- The core's transport and resolver seams, without the Lua binding: spec/support/core_seams.c
-- drives the core with a fake io and a virtual clock (one case per run); uv_resolve.c the driver.
-- The harnesses have no Lua in them: a build for another Lua (make luajit) uses the default ones.
local function exe(name)
  for _, dir in ipairs { os.getenv("SIP_BUILD") or "build", "build" } do
    local f = io.open(dir .. "/spec/" .. name)
    if f then f:close() return dir .. "/spec/" .. name end
  end
end

local function run(program, case)
  local path = exe(program)
  if not path then return nil, program end
  local p = assert(io.popen(path .. " " .. (case or "") .. " 2>&1; echo rc=$?"))
  local out = p:read("*a")
  p:close()
  return out
end

local function case(name, what, program)
  it(what, function()
    local out, missing = run(program or "core_seams", program and "" or name)
    if not out then pending("no build/spec/" .. missing .. " (make all builds it)") return end
    assert(out:match("\nrc=0%s*$") and out:match("^ok\n"), out)
  end)
end

describe("core seams: stream flows (TCP/TLS bytes framed by Content-Length)", function()
  case("split_read", "delivers a response split across two reads once")
  case("coalesced", "delivers both of two responses that arrive in one read")
  case("big_body", "reassembles a body larger than one read")
  case("bad_length", "fails the flow's transactions and returns <0 on a bad, missing or huge Content-Length")
  case("keepalive", "skips RFC 5626 CRLF keep-alives between messages, even cut in two")
  case("framer", "sipub_frame_message: compact form, bare LF, need-more, no length, bad value located")
end)

describe("core seams: reliability per flow", function()
  case("reliable", "over TCP: no Timer E retransmission, Timer F at 64*T1, Timer K = 0")
  case("udp_unchanged", "over UDP: datagrams as before, Timer E doubling, Timer K = T4")
end)

describe("core seams: flow failure", function()
  case("flow_failed", "fails only that flow's transactions, with the reason as the event's detail")
end)

describe("core seams: resolver", function()
  case("resolver", "asks once per name, sends wait for the answer and go to the answered address; cache, TTL, flow failure, literals")
  case("resolver_error", "an error answer fails the waiting requests with a detail naming the host")
  case("resolver_sync", "takes an answer given from inside io.resolve (a driver's cache), address or error")
  case("no_resolver", "without io.resolve the core sends to the name as before")
end)

describe("core seams: the libuv driver's resolver", function()
  case("uv_resolve", "publishes to localhost: the core asks uv_getaddrinfo, sends go to the answered address",
       "uv_resolve")
end)
