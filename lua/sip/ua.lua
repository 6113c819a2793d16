--- A user agent: one transport (a UDP socket, or the in-memory network of
-- @{sip.testing}) and the publications made through it (@{PublishContext}).
-- `sip.UA` in the @{sip} module.
--
-- Option names are camelCase, as `authorizationUser` and the publish options are; the
-- snake_case spellings of earlier versions (`outbound_proxy`, `user_agent`,
-- `local_address`, `local_port`, `via_host`) are accepted as aliases, and giving both
-- spellings of one option is an error
-- (`bad argument to 'UA.new' (config: outboundProxy and outbound_proxy name the same option: give one)`).
-- @classmod sip.UA
local core = require "sip.core"
local check = require "sip.check"
local Context = require "sip.context"
local VNet = require "sip.vnet"

local UA = {}
UA.__index = UA

-- The user agents not closed yet (weak: a dropped UA is not kept alive), for sip.shutdown().
local open_uas = setmetatable({}, { __mode = "k" })

-- Calls fn(ua) for every user agent not closed yet (for sip.shutdown).
-- @local
function UA.each_open(fn)
  local list = {}
  for ua in pairs(open_uas) do list[#list + 1] = ua end
  for _, ua in ipairs(list) do fn(ua) end
end

local HEADER = check.HEADER

-- UA.new's options, by their documented (camelCase) names.
local UA_KEYS = {
  uri = true, outboundProxy = true, userAgent = true, localAddress = true,
  localPort = true, viaHost = true, transport = true, seed = true, driver = true,
  authorizationUser = true, password = true, ha1 = true, realm = true, trace = true,
}
-- The snake_case spellings of earlier versions, accepted as aliases.
local ALIASES = {
  outbound_proxy = "outboundProxy", user_agent = "userAgent", local_address = "localAddress",
  local_port = "localPort", via_host = "viaHost",
}
for alias in pairs(ALIASES) do UA_KEYS[alias] = true end

-- config with every alias under its documented name, and the name each option was given
-- under (errors name the key the caller wrote). Both spellings of one option: an error.
local function normalise(config)
  local out, given = {}, {}
  for k, v in pairs(config) do
    local name = ALIASES[k]
    if name and config[name] ~= nil then
      check.fail("UA.new", "config", ("%s and %s name the same option: give one"):format(name, k), 3)
    end
    out[name or k], given[name or k] = v, k
  end
  return out, setmetatable(given, { __index = function(_, k) return k end })
end
local HA1_ALGORITHMS = { ["MD5"] = "ha1_md5", ["SHA-256"] = "ha1_sha256", ["SHA-512-256"] = "ha1_sha512_256" }

-- Digest credentials: authorizationUser (default: the user part of uri), password, and/or
-- ha1 — H(user:realm:password) as hex: a string (32 digits: MD5; 64: SHA-256 and
-- SHA-512-256) or a table keyed by algorithm — and an optional realm restriction.
local function check_credentials(config, uri)
  local c = {}
  if config.password ~= nil then
    c.password = check.string("UA.new", "password", config.password, 3, HEADER)
  end
  if config.ha1 ~= nil then
    local ha1 = config.ha1
    if type(ha1) == "string" then
      if not ha1:match("^%x+$") or (#ha1 ~= 32 and #ha1 ~= 64) then
        check.fail("UA.new", "ha1", "expected 32 (MD5) or 64 (SHA-256) hex digits", 3)
      end
      if #ha1 == 32 then c.ha1_md5 = ha1:lower() else c.ha1_sha256, c.ha1_sha512_256 = ha1:lower(), ha1:lower() end
    elseif type(ha1) == "table" then
      for alg, v in pairs(ha1) do
        local field = HA1_ALGORITHMS[alg]
        local want = alg == "MD5" and 32 or 64
        if not field then
          check.fail("UA.new", "ha1", "unknown algorithm " .. check.show(alg) ..
                     " (MD5, SHA-256, SHA-512-256)", 3)
        end
        if type(v) ~= "string" or not v:match("^%x+$") or #v ~= want then
          check.fail("UA.new", ("ha1[%q]"):format(alg), ("expected %d hex digits"):format(want), 3)
        end
        c[field] = v:lower()
      end
    else
      check.fail("UA.new", "ha1", "expected a hex string or a table, got " .. check.show(ha1), 3)
    end
  end
  if config.realm ~= nil then
    c.realm = check.string("UA.new", "realm", config.realm, 3, HEADER)
  end
  if config.authorizationUser ~= nil then
    c.auth_user = check.string("UA.new", "authorizationUser", config.authorizationUser, 3, HEADER)
  elseif c.password or c.ha1_md5 or c.ha1_sha256 or c.ha1_sha512_256 then
    c.auth_user = uri.user
    if not c.auth_user then
      check.fail("UA.new", "authorizationUser", "required when uri has no user part", 3)
    end
  end
  return c
end
local OPTION_KEYS = {
  extraHeaders = true, contentType = true, expires = true, unpublishOnClose = true, etag = true,
}

-- A URI argument of UA.new: checked by the core, which also gives its parts.
local function check_uri(fname, what, v, level)
  if type(v) ~= "string" then
    check.fail(fname, what, "expected a string, got " .. check.show(v), level + 1)
  end
  local u, _, msg = core.parse_uri(v)
  if not u then check.fail(fname, what, msg, level + 1) end
  return u
end

--- Construction.
-- @section construction

--- Creates a user agent (with `transport = "udp"`, binds its socket at once).
-- @tparam table config the options:
-- @tparam string config.uri the address of record (`From`), a `sip:` or `sips:` URI
-- @tparam[opt] string config.outboundProxy the next hop of every request (`sip:127.0.0.1:5060`);
-- without it requests go to the host of the target URI. Alias `outbound_proxy`.
-- @tparam[opt] string|false config.userAgent the `User-Agent` header value (default
-- `lua-sip-publish/` and @{sip._VERSION}); `false` to omit it. Alias `user_agent`.
-- @tparam[opt="0.0.0.0"] string config.localAddress the IPv4 or IPv6 address the socket
-- binds to (`"::"` for IPv6 next hops). Alias `local_address`.
-- @tparam[opt=0] int config.localPort the port the socket binds to (0: any, see @{port}).
-- Alias `local_port`.
-- @tparam[opt] string config.viaHost the host written in `Via` sent-by; default:
-- `localAddress` if not the wildcard, else `127.0.0.1` when the next hop is a loopback
-- address, else the first non-loopback IPv4 address. Alias `via_host`.
-- @tparam[opt="udp"] string config.transport `"udp"`, or `"virtual"`: the in-memory
-- network of @{sip.testing} (@{sip.vnet})
-- @tparam[opt] string config.authorizationUser the digest user name (default: the user
-- part of `uri`)
-- @tparam[opt] string config.password the digest password
-- @tparam[opt] string|table config.ha1 instead of the password: hex H(user:realm:password),
-- 32 digits for MD5 or 64 for SHA-256 and SHA-512-256, or a table
-- `{ ["MD5"] = …, ["SHA-256"] = …, ["SHA-512-256"] = … }`
-- @tparam[opt] string config.realm answer only challenges of this realm
-- @tparam[opt=0] int config.seed seeds the generation of Via branches, From tags and
-- Call-IDs: a non-zero seed makes them repeat from run to run (tests, reproducible traces;
-- never in production, where branches must be unpredictable); 0 draws a random seed
-- @treturn sip.UA the user agent
-- @raise `bad argument to 'UA.new' (WHAT: …)` for a bad option;
-- `sip.UA.new: cannot bind UDP ADDRESS:PORT: REASON` when the socket cannot be bound
-- @static
-- @usage local ua = sip.UA.new{ uri = "sip:alice@example.test",
--                           outboundProxy = "sip:proxy.example.test",
--                           password = os.getenv("SIP_PASSWORD") }
function UA.new(config)
  if type(config) ~= "table" then
    check.fail("UA.new", "config", "expected a table, got " .. check.show(config), 2)
  end
  check.known_keys("UA.new", "config", config, UA_KEYS, 2)
  local given
  config, given = normalise(config)
  local aor = check_uri("UA.new", "uri", config.uri, 2)
  local proxy
  if config.outboundProxy ~= nil then
    proxy = check_uri("UA.new", given.outboundProxy, config.outboundProxy, 2)
  end
  local user_agent = config.userAgent
  if user_agent == nil then
    user_agent = "lua-sip-publish/" .. core.version
  elseif user_agent == false then
    user_agent = nil
  else
    check.string("UA.new", given.userAgent, user_agent, 2, HEADER)
  end
  local transport = config.transport
  if transport == nil then transport = "udp" end
  if transport ~= "udp" and transport ~= "virtual" then
    check.fail("UA.new", "transport", "expected 'udp' or 'virtual', got " .. check.show(transport), 2)
  end
  if config.localAddress ~= nil then
    check.rule("UA.new", given.localAddress, "address", config.localAddress, 2)
  end
  if config.viaHost ~= nil then
    check.rule("UA.new", given.viaHost, "host", config.viaHost, 2)
  end
  local local_port = 0
  if config.localPort ~= nil then
    local_port = check.integer("UA.new", given.localPort, config.localPort, 2, 0, 65535)
  end
  local seed
  if config.seed ~= nil then seed = check.integer("UA.new", "seed", config.seed, 2) end

  local creds = check_credentials(config, aor)
  -- The message trace: trace(direction, text, remote, note, time, reason) for every request
  -- sent, response received and message dropped (see doc/api.md, "Message trace"). An option
  -- rather than a UA event: it is set before the first message leaves, a UA without one
  -- gives the core no callback at all (nothing to pay), and it is one consumer's view.
  if config.trace ~= nil and type(config.trace) ~= "function" then
    check.fail("UA.new", "trace", "expected a function, got " .. check.show(config.trace), 2)
  end

  local self = setmetatable({ uri = config.uri, closed = false, _core = false }, UA)
  -- driver: a driver written in Lua (doc/api.md, "drivers"), e.g. sip.openresty's for nginx's
  -- loop; it replaces the transport.
  local net = config.driver
  if net ~= nil then
    if type(net) ~= "table" or type(net.send) ~= "function" then
      check.fail("UA.new", "driver", "expected a driver table with a send method, got " .. check.show(net), 2)
    end
  elseif transport == "virtual" then
    net = VNet.new()
  end
  self._core = core.ua_new {
    aor = config.uri,
    proxy_host = proxy and proxy.host,
    proxy_port = proxy and proxy.port or 5060,
    via_host = config.viaHost,
    user_agent = user_agent,
    local_address = config.localAddress,
    local_port = local_port,
    driver = net,
    seed = seed,
    trace = config.trace,
    auth_user = creds.auth_user, password = creds.password, realm = creds.realm,
    ha1_md5 = creds.ha1_md5, ha1_sha256 = creds.ha1_sha256, ha1_sha512_256 = creds.ha1_sha512_256,
  }
  if net then
    if net.attach then net:attach(self._core, self) end
    self._net = net
  end
  open_uas[self] = true
  return self
end

local NO_HEADERS = Context.NO_HEADERS
local DEFAULTS = core.defaults -- contentType, expires, unpublishOnClose: the core's

local function count_keys(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- The extra headers' shape: an array of strings (their grammar and number are the core's).
local function check_headers(given)
  if type(given) ~= "table" then
    check.fail("publish", "options.extraHeaders",
               "expected an array of strings, got " .. check.show(given), 4)
  end
  local out = {}
  for i, h in ipairs(given) do
    if type(h) ~= "string" then
      check.fail("publish", ("options.extraHeaders[%d]"):format(i),
                 "expected a string, got " .. check.show(h), 4)
    end
    out[i] = h
  end
  if #out ~= count_keys(given) then
    check.fail("publish", "options.extraHeaders", "expected an array (no holes or keys)", 4)
  end
  return out
end

local function check_string(what, v, level)
  if type(v) ~= "string" then
    check.fail("publish", what, "expected a string, got " .. check.show(v), level + 1)
  end
  return v
end

-- The options as the context keeps them (ctx.options), every default filled in. Types and
-- names are checked here; what the strings hold, by the core.
local function check_options(options)
  local headers, content_type, expires, close = NO_HEADERS, DEFAULTS.contentType, DEFAULTS.expires,
                                                DEFAULTS.unpublishOnClose
  if options == nil then
    return { extraHeaders = headers, contentType = content_type, expires = expires, unpublishOnClose = close }
  end
  if type(options) ~= "table" then
    check.fail("publish", "options", "expected a table or nil, got " .. check.show(options), 3)
  end
  check.known_keys("publish", "options", options, OPTION_KEYS, 3)
  if options.extraHeaders ~= nil then headers = check_headers(options.extraHeaders) end
  if options.contentType ~= nil then content_type = check_string("options.contentType", options.contentType, 3) end
  if options.expires ~= nil then
    expires = check.integer("publish", "options.expires", options.expires, 3, 1, 2147483647)
  end
  if options.etag ~= nil then check_string("options.etag", options.etag, 3) end
  if options.unpublishOnClose ~= nil then
    close = check.boolean("publish", "options.unpublishOnClose", options.unpublishOnClose, 3)
  end
  -- Four fields, sized once: an `etag = nil` in the constructor would size it for five (a
  -- hash part of eight nodes: about 100 bytes more for every publication).
  local out = { extraHeaders = headers, contentType = content_type, expires = expires,
                unpublishOnClose = close }
  if options.etag ~= nil then out.etag = options.etag end
  return out
end

--- Methods.
-- @section methods

-- The message for a method called on something else than a user agent (ua.close()).
local function not_a_ua(self, call)
  return ("expected a sip.UA (call it as ua:%s), got %s"):format(call, check.show(self))
end

--- Publishes event state: makes a @{PublishContext}, already sending its initial PUBLISH
-- (a refresh of `options.etag`'s state when given). The binding checks the strings against
-- the core's rules and raises, naming the argument, at the caller's line.
-- @tparam string target the request URI (a `sip:` or `sips:` URI)
-- @tparam string event the event package (`presence`, `dialog`, `message-summary`, …)
-- @tparam string body the state to publish (not empty)
-- @tparam[opt] table options see @{PublishContext.options}
-- @treturn PublishContext the publication
-- @raise `bad argument to 'publish' (WHAT: …)`; `sip: publish on a closed user agent`
function UA:publish(target, event, body, options)
  if getmetatable(self) ~= UA then check.fail("publish", "self", not_a_ua(self, "publish(...)"), 2) end
  if self.closed then error("sip: publish on a closed user agent", 2) end
  check_string("target", target, 2)
  check_string("event", event, 2)
  if type(body) ~= "string" or body == "" then check.string("publish", "body", body, 2) end
  local opts = check_options(options)
  local headers = opts.extraHeaders
  if headers == NO_HEADERS then headers = nil end
  local ctx = self._core:pub_new(Context.new(target, event, opts, body), target, event,
                                 opts.contentType, opts.expires, headers, opts.unpublishOnClose,
                                 opts.etag, body)
  return ctx -- not `return self._core:pub_new(...)`: a tail call would move its error level
end

--- Closes every context (unpublishing those with `unpublishOnClose`); the transport stays
-- until their final responses (or Timer F, 32 s), then the loop is released so that
-- @{sip.run} returns. Idempotent. The removes are paced like every other request (at most
-- 256 transactions in flight per user agent).
function UA:close()
  if getmetatable(self) ~= UA then check.fail("close", "self", not_a_ua(self, "close()"), 2) end
  if self.closed then return end
  self.closed = true
  open_uas[self] = nil
  self._core:close()
end

--- The local port of the user agent's UDP socket (useful with `localPort = 0`, the
-- default: the system picks one).
-- @treturn int|nil the port; nil with `transport = "virtual"`
function UA:port()
  if getmetatable(self) ~= UA then check.fail("port", "self", not_a_ua(self, "port()"), 2) end
  return self._core:port()
end

--- Instance attributes.
-- @section attributes

--- The address of record given as `config.uri`.
-- @string uri

--- true once @{close} was called.
-- @bool closed

-- "sip.UA(uri)".
function UA:__tostring()
  return ("sip.UA(%s)"):format(self.uri)
end

return UA
