-- The proxy's decider, tasks inside HAProxy (lua-load). One poller per server asked (each
-- Sentinel address known, each Redis pod) asks it every POLL_INTERVAL_MS on a connection it
-- keeps open and authenticated: the Sentinels which node is the master, the Redis pods their
-- ROLE. A write server is open only while the newest Sentinel configuration (highest config
-- epoch, answered by a majority of the Sentinels) names it AND it says ROLE master. Every
-- other write server is kept in maintenance, and a server that loses the master's place has
-- its sessions shut, so clients reconnect and land on the new master. Without fresh answers
-- from a majority of the Sentinels no server takes writes (a proxy cut off from the
-- majority cannot know whether they have promoted another node). The read backend holds the
-- replicas whose ROLE says connected; the master only while no replica is.
--
-- The pollers run side by side, so a frozen or unreachable server costs only its own answer
-- (never the others'), and an answer that changes the verdict is acted on at once, not at
-- the next round. Kept connections cost no handshake per question (with TLS, one per
-- connection), a few questions a second per server.
--
-- Decide, then act: decide() returns the verdict and its reason, apply() acts on it, and
-- each change is logged on one line. Nothing here is typed twice: names, ports and timings
-- arrive in the environment (lib/pod/contract.ts, proxyContainerEnv).

local function env(name)
  local v = os.getenv(name)
  if v == nil or v == "" then error("redis-proxy.lua: environment variable " .. name .. " is not set") end
  return v
end

local MASTER_NAME = env("MASTER_NAME")
local SENTINEL_COUNT = tonumber(env("SENTINEL_COUNT"))
local MAJORITY = SENTINEL_COUNT // 2 + 1
local SENTINEL_PORT = tonumber(env("SENTINEL_PORT"))
local REDIS_PORT = tonumber(env("REDIS_PORT"))
local POLL_MS = tonumber(env("POLL_INTERVAL_MS"))
local TIMEOUT_MS = tonumber(env("CHECK_TIMEOUT_MS"))
local FORGET_MS = tonumber(env("SENTINEL_FORGET_MS"))
local HOLD_MS = tonumber(env("HOLD_MS"))
local HOLD_STEP_MS = 10
-- An answer counts while it is the poller's latest and no older than this: a healthy server
-- answers every POLL_MS; one whose question is waiting for its timeout still counts until then.
local FRESH_MS = 2 * POLL_MS + TIMEOUT_MS
local USER = env("PROXY_USER")
local PASSWORD_FILE = env("AUTH_DIR") .. "/" .. USER .. "-password"
local STATUS_FILE = env("AUTH_STATUS_FILE")
local TLS = os.getenv("TLS") == "1"
local DOMAIN_SUFFIX = "." .. env("POD_NAMESPACE") .. ".svc." .. env("CLUSTER_DOMAIN")
local WRITE_BACKEND = env("WRITE_BACKEND")
local READ_BACKEND = env("READ_BACKEND")
local SENTINEL_BACKEND = env("SENTINEL_BACKEND")

local function now_ms()
  local t = core.now()
  return t.sec * 1000 + t.usec // 1000
end

-- One line per decision, with the time in ms since the epoch (HAProxy's own prefix has
-- seconds only): "redis-proxy: <ms> <what>".
local function log(msg)
  core.Info(string.format("redis-proxy: %d %s", now_ms(), msg))
end

-- Sleeps what is left of POLL_MS since `started`.
local function pace(started)
  local rest = POLL_MS - (now_ms() - started)
  if rest > 0 then core.msleep(rest) end
end

-- SHA-256 (FIPS 180-4), for the status file's password fingerprints: Lua 5.3 has no digest
-- and a task has no converters. Only for a few short passwords, cached.

local K256 = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

local function sha256_hex(msg)
  local M = 0xffffffff
  local function rotr(x, n) return ((x >> n) | (x << (32 - n))) & M end
  local h = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 }
  local len = #msg
  msg = msg .. "\128" .. string.rep("\0", (55 - len) % 64) .. string.pack(">I8", len * 8)
  local w = {}
  for chunk = 1, #msg, 64 do
    for i = 0, 15 do w[i] = string.unpack(">I4", msg, chunk + i * 4) end
    for i = 16, 63 do
      local s0 = rotr(w[i - 15], 7) ~ rotr(w[i - 15], 18) ~ (w[i - 15] >> 3)
      local s1 = rotr(w[i - 2], 17) ~ rotr(w[i - 2], 19) ~ (w[i - 2] >> 10)
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) & M
    end
    local a, b, c, d, e, f, g, hh = h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]
    for i = 0, 63 do
      local t1 = (hh + (rotr(e, 6) ~ rotr(e, 11) ~ rotr(e, 25)) + ((e & f) ~ (~e & g)) + K256[i + 1] + w[i]) & M
      local t2 = ((rotr(a, 2) ~ rotr(a, 13) ~ rotr(a, 22)) + ((a & b) ~ (a & c) ~ (b & c))) & M
      hh, g, f, e, d, c, b, a = g, f, e, (d + t1) & M, c, b, a, (t1 + t2) & M
    end
    h[1], h[2], h[3], h[4] = (h[1] + a) & M, (h[2] + b) & M, (h[3] + c) & M, (h[4] + d) & M
    h[5], h[6], h[7], h[8] = (h[5] + e) & M, (h[6] + f) & M, (h[7] + g) & M, (h[8] + hh) & M
  end
  return string.format(string.rep("%08x", 8), h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8])
end

local fingerprints = {}
-- The status file's form of a password: the first 16 hex digits of its sha256 (as auth-sync.sh writes them).
local function fingerprint(password)
  local f = fingerprints[password]
  if f == nil then
    f = sha256_hex(password):sub(1, 16)
    fingerprints[password] = f
  end
  return f
end

-- RESP ----------------------------------------------------------------------------

local function command(args)
  local parts = { "*" .. #args .. "\r\n" }
  for _, a in ipairs(args) do
    a = tostring(a)
    parts[#parts + 1] = "$" .. #a .. "\r\n" .. a .. "\r\n"
  end
  return table.concat(parts)
end

-- One reply: a string, number, table (array), false (nil reply), or nil and an error.
local function read_reply(s)
  local line, err = s:receive("*l")
  if line == nil then return nil, "no reply (" .. tostring(err) .. ")" end
  line = line:gsub("\r$", "")
  local kind, rest = line:sub(1, 1), line:sub(2)
  if kind == "+" then return rest end
  if kind == "-" then return nil, rest end
  if kind == ":" then return tonumber(rest) end
  if kind == "$" then
    local n = tonumber(rest)
    if n < 0 then return false end
    local data = s:receive(n + 2)
    if data == nil then return nil, "short reply" end
    return data:sub(1, n)
  end
  if kind == "*" then
    local n = tonumber(rest)
    if n < 0 then return false end
    local out = {}
    for i = 1, n do
      local v, e = read_reply(s)
      if v == nil then return nil, e end
      out[i] = v
    end
    return out
  end
  return nil, "unexpected reply " .. line
end

local function read_file(path)
  local f = io.open(path, "r")
  if f == nil then return nil end
  local text = f:read("*a")
  f:close()
  return (text:gsub("%s+$", ""))
end

-- Connections ---------------------------------------------------------------------
--
-- A connection is a table { s = socket or nil, ip, password }, one per poller. It stays open
-- while it works and its password is the Secret's current one: the password files are read
-- before every question (a rotated password is taken without a restart), a connection
-- authenticated with another is replaced, and the previous password is tried when the
-- current one is refused (during a rotation the servers accept both, each from the moment
-- its own pod's files change).

local connections = {}

local function close(c)
  if c.s ~= nil then
    pcall(c.s.close, c.s)
    c.s = nil
  end
end

-- An authenticated socket to ip:port, or nil and why.
local function open(ip, port, password)
  local s = core.tcp()
  s:settimeout(TIMEOUT_MS / 1000)
  local ok, err
  if TLS then ok, err = s:connect_ssl(ip, port) else ok, err = s:connect(ip, port) end
  if not ok then
    s:close()
    return nil, "cannot connect (" .. tostring(err) .. ")"
  end
  s:send(command({ "AUTH", USER, password }))
  local _, autherr = read_reply(s)
  if autherr then
    s:close()
    return nil, "AUTH: " .. autherr
  end
  return s
end

-- Sends `commands` in one write and reads their replies: the replies, or nil and why.
local function exchange(s, commands)
  local out = {}
  for i, c in ipairs(commands) do out[i] = command(c) end
  if s:send(table.concat(out)) == nil then return nil, "cannot send" end
  local replies = {}
  for i = 1, #commands do
    local v, e = read_reply(s)
    if v == nil then return nil, commands[i][1] .. " " .. tostring(commands[i][2] or "") .. ": " .. e end
    replies[i] = v
  end
  return replies
end

-- The replies of ip:port to `commands` on connection c, or nil and why. Any failure closes
-- the connection (a reply may still be on its way). A kept connection that fails other than
-- by a timeout (the server restarted, or closed it while idle) is replaced and asked once
-- more at once; a timeout is the answer (asking again would only double it).
local function ask(c, ip, port, commands)
  if ip == nil then
    close(c)
    return nil, "no address"
  end
  local current, previous = read_file(PASSWORD_FILE), read_file(PASSWORD_FILE .. "-previous")
  if current == nil then
    close(c)
    return nil, "no password file " .. PASSWORD_FILE
  end
  if c.s ~= nil and (c.ip ~= ip or c.password ~= current) then close(c) end
  local kept = c.s ~= nil
  while true do
    if c.s == nil then
      local ok, s, err = pcall(open, ip, port, current)
      local used = current
      if ok and s == nil and previous ~= nil and err:find("WRONGPASS", 1, true) then
        ok, s, err = pcall(open, ip, port, previous)
        used = previous
      end
      if not ok then return nil, tostring(s) end
      if s == nil then return nil, err end
      c.s, c.ip, c.password = s, ip, used
    end
    local ok, replies, err = pcall(exchange, c.s, commands)
    if ok and replies ~= nil then return replies end
    close(c)
    if not ok then err = tostring(replies) end
    if not kept or err:find("timeout", 1, true) then return nil, err end
    kept = false
  end
end

-- Writes the status file when its line changes: the fingerprints of the passwords the open
-- connections use (`redis-ha rotate-passwords` waits for only the new one). The proxy is a
-- client only: it accepts no password ("-").
local last_status = nil
local function write_status()
  local seen, using = {}, {}
  for c in pairs(connections) do
    if c.s ~= nil and not seen[c.password] then
      seen[c.password] = true
      using[#using + 1] = fingerprint(c.password)
    end
  end
  table.sort(using)
  local line = string.format("%s accepted - using %s\n", USER, #using > 0 and table.concat(using, ",") or "-")
  if line == last_status then return end
  local tmp = STATUS_FILE .. ".tmp"
  local f = io.open(tmp, "w")
  if f == nil then return end
  f:write(line)
  f:close()
  if os.rename(tmp, STATUS_FILE) then last_status = line end
end

local function fields(flat)
  local t = {}
  for i = 1, #flat - 1, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

-- The IP of a server's "ip:port", or nil while it has none (HAProxy says "<unknown>").
local function split_addr(addr)
  local ip = tostring(addr):match("^([%x%.:]+):%d+$")
  if ip == nil or ip == "0.0.0.0" then return nil end
  return ip
end

-- Server name (the pod's name) from the host the Sentinels announce
-- (<pod>.<service>.<namespace>.svc.<domain>); nil for a host that is no pod of ours.
local function pod_of(host)
  if host == nil then return nil end
  local short = host:sub(-#DOMAIN_SUFFIX) == DOMAIN_SUFFIX and host:sub(1, #host - #DOMAIN_SUFFIX) or host
  local pod, service = short:match("^([^.]+)%.([^.]+)$")
  if pod == nil or pod:gsub("%-%d+$", "") ~= service then return nil end
  return pod
end

-- Decide ---------------------------------------------------------------------------

-- Sentinel addresses known: the seed (the Sentinel Service's address, from SENTINEL_BACKEND)
-- and every peer a Sentinel lists; each has a poller, and its latest answer:
-- ip -> { seen, seed, view = { at, id, epoch, host } or nil, error }. A peer not reached for
-- FORGET_MS is dropped (its poller ends).
local known = {}
-- The latest ROLE of each server of the write backend (the same pods as the read backend):
-- name -> { at, role, state } or { at, error }.
local roles = {}

local state = { epoch = -1, host = nil }

-- The Sentinels' views that count: fresh, each Sentinel once (by SENTINEL MYID, as one
-- Sentinel is reached at two addresses, the Service's and its pod's), and the errors of the
-- addresses without one.
local function current_views(now)
  local views, errors = {}, {}
  for ip, k in pairs(known) do
    if k.view ~= nil and now - k.view.at <= FRESH_MS then
      views[k.view.id] = k.view
    else
      errors[#errors + 1] = ip .. ": " .. (k.error or "no answer yet")
    end
  end
  return views, errors
end

local function current_role(name, now)
  local r = roles[name]
  if r == nil then return { error = "no answer yet" } end
  if now - r.at > FRESH_MS then return { error = string.format("no answer for over %d ms", FRESH_MS) } end
  return r
end

-- The write verdict: the server to open (or nil) and why.
local function decide(now)
  local views, errors = current_views(now)
  local count, best = 0, nil
  for _, v in pairs(views) do
    count = count + 1
    if best == nil or v.epoch > best.epoch then best = v end
  end
  if count < MAJORITY then
    table.sort(errors)
    return nil, string.format("only %d of %d Sentinels answered (need %d): %s", count, SENTINEL_COUNT, MAJORITY, table.concat(errors, "; "))
  end
  -- A newer configuration seen before stays until the Sentinels answering catch up.
  if best.epoch > state.epoch or (best.epoch == state.epoch and state.host == nil) then
    state.epoch, state.host = best.epoch, best.host
  end
  local pod = pod_of(state.host)
  if pod == nil or core.backends[WRITE_BACKEND].servers[pod] == nil then
    return nil, string.format("the Sentinels name %s (epoch %d), which is no server of this proxy", tostring(state.host), state.epoch)
  end
  local r = current_role(pod, now)
  if r.role ~= "master" then
    return nil, string.format("the Sentinels name %s (epoch %d) but it says %s", pod, state.epoch, r.role or tostring(r.error))
  end
  return pod, string.format("%d of %d Sentinels answered, epoch %d names %s and it says ROLE master", count, SENTINEL_COUNT, state.epoch, pod)
end

-- The read servers and why: the replicas whose link to their master is up; while none is
-- (a failover), every replica (possibly stale, as Redis itself serves them); while there
-- is no replica at all, the master.
local function decide_reads(now)
  local function pick(accept)
    local open_, n = {}, 0
    for name in pairs(core.backends[READ_BACKEND].servers) do
      if accept(current_role(name, now)) then open_[name] = true; n = n + 1 end
    end
    return open_, n
  end
  local open_, n = pick(function(r) return r.role == "slave" and r.state == "connected" end)
  if n > 0 then return open_, "it is a replica in sync" end
  open_, n = pick(function(r) return r.role == "slave" end)
  if n > 0 then return open_, "no replica is in sync, and it is a replica" end
  return pick(function(r) return r.role == "master" end), "there is no replica, and it says ROLE master"
end

-- Act ------------------------------------------------------------------------------

local opened = { [WRITE_BACKEND] = {}, [READ_BACKEND] = {} }
local last_reason = nil

-- Opens exactly the servers of `want` in `backend`; a server closed has its sessions shut
-- when `shut` (the write backend: clients must not keep writing to a demoted master).
local function apply(backend, want, shut, reason)
  for name, srv in pairs(core.backends[backend].servers) do
    local is_open = opened[backend][name] == true
    if want[name] and not is_open then
      srv:set_ready()
      opened[backend][name] = true
      log(string.format("%s: open %s because %s", backend, name, reason))
    elseif not want[name] and is_open then
      srv:set_maint()
      if shut then srv:shut_sess() end
      opened[backend][name] = nil
      log(string.format("%s: closed %s%s because %s", backend, name, shut and " and shut its sessions" or "", reason))
    end
  end
end

-- Held connections -----------------------------------------------------------------
--
-- A client that connects while no server of the backend is open (a failover under way) is
-- held up to HOLD_MS and goes on the moment the decider opens one, so its first command is
-- answered by the new master instead of failing (with a reject, many clients wait out a
-- command timeout before they try again). After HOLD_MS the frontend refuses it
-- (haproxy.cfg). A client that gives up meanwhile (closes its side) is dropped: the
-- commands it sent must not run later, after writes it made elsewhere since.
local function hold(backend)
  return function(txn)
    local deadline = now_ms() + HOLD_MS
    while next(opened[backend]) == nil and now_ms() < deadline do
      core.msleep(HOLD_STEP_MS)
      if not txn.req:may_recv() then
        txn:done()
        return
      end
    end
  end
end
core.register_action("hold_write", { "tcp-req" }, hold(WRITE_BACKEND), 0)
core.register_action("hold_read", { "tcp-req" }, hold(READ_BACKEND), 0)

-- Decides on the latest answers and acts. No I/O and no yield: called by a poller whose
-- answer changed something and by the clock, it runs whole before any other task.
local function round()
  local now = now_ms()
  local target, reason = decide(now)
  if reason ~= last_reason and target == nil then log("writes closed: " .. reason) end
  last_reason = reason
  apply(WRITE_BACKEND, target and { [target] = true } or {}, true, reason)
  local reads, why = decide_reads(now)
  apply(READ_BACKEND, reads, false, why)
end

local function decide_now()
  local ok, err = pcall(round)
  if not ok then
    -- Not knowing is no reason to keep writing: close the write servers.
    log("round failed: " .. tostring(err))
    pcall(apply, WRITE_BACKEND, {}, true, "a round failed")
    last_reason = nil
  end
end

-- Pollers ----------------------------------------------------------------------------

local learn

local function same_view(a, b)
  return a ~= nil and b ~= nil and a.id == b.id and a.epoch == b.epoch and a.host == b.host
end

local function sentinel_poller(ip)
  local c = {}
  connections[c] = true
  local function poll()
    local r, err = ask(c, ip, SENTINEL_PORT, {
      { "SENTINEL", "MYID" },
      { "SENTINEL", "MASTER", MASTER_NAME },
      { "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME },
      { "SENTINEL", "SENTINELS", MASTER_NAME },
    })
    local k = known[ip]
    if k == nil then return end
    local before = k.view
    if r then
      local master = fields(r[2])
      local addr = r[3]
      k.seen = now_ms()
      k.view = { at = k.seen, id = r[1], epoch = tonumber(master["config-epoch"]) or -1, host = addr and addr[1] or master.ip }
      k.error = nil
      for _, peer in ipairs(r[4]) do
        local p = fields(peer)
        if p.ip then learn(p.ip, false) end
      end
    else
      k.view, k.error = nil, err
    end
    if not same_view(before, k.view) then decide_now() end
  end
  while known[ip] ~= nil do
    local started = now_ms()
    local ok, err = pcall(poll)
    if not ok then
      -- An answer that cannot be read is no answer.
      close(c)
      if known[ip] ~= nil then known[ip].view, known[ip].error = nil, tostring(err) end
    end
    pace(started)
  end
  close(c)
  connections[c] = nil
end

learn = function(ip, seed)
  local k = known[ip]
  if k ~= nil then
    if seed then k.seed = true end
    return
  end
  known[ip] = { seen = now_ms(), seed = seed }
  core.register_task(function() sentinel_poller(ip) end)
end

local function redis_poller(name, srv)
  local c = {}
  connections[c] = true
  local function poll()
    local r, err = ask(c, split_addr(srv:get_addr()), REDIS_PORT, { { "ROLE" } })
    local before = roles[name]
    if r then roles[name] = { at = now_ms(), role = r[1][1], state = r[1][4] } else roles[name] = { at = now_ms(), error = err } end
    local after = roles[name]
    if before == nil or before.role ~= after.role or before.state ~= after.state then decide_now() end
  end
  while true do
    local started = now_ms()
    local ok, err = pcall(poll)
    if not ok then
      close(c)
      roles[name] = { at = now_ms(), error = tostring(err) }
      decide_now()
    end
    pace(started)
  end
end

-- The seed: the Sentinel Service's current address. An address it no longer has loses its
-- seed mark (and is forgotten like any peer once unreachable).
local function seed_sentinels()
  local seeds = {}
  for _, srv in pairs(core.backends[SENTINEL_BACKEND].servers) do
    local ip = split_addr(srv:get_addr())
    if ip ~= nil then seeds[ip] = true end
  end
  for ip, k in pairs(known) do
    if k.seed and not seeds[ip] then k.seed = false end
  end
  for ip in pairs(seeds) do learn(ip, true) end
end

core.register_task(function()
  log(string.format("deciding from %d Sentinels (majority %d), master name %s; every server asked every %d ms", SENTINEL_COUNT, MAJORITY, MASTER_NAME, POLL_MS))
  for name, srv in pairs(core.backends[WRITE_BACKEND].servers) do
    core.register_task(function() redis_poller(name, srv) end)
  end
  -- The clock: answers age out, addresses are learnt and forgotten, the status file follows.
  while true do
    local started = now_ms()
    local ok, err = pcall(function()
      seed_sentinels()
      for ip, k in pairs(known) do
        if not k.seed and started - k.seen > FORGET_MS then known[ip] = nil end
      end
      write_status()
    end)
    if not ok then log("housekeeping failed: " .. tostring(err)) end
    decide_now()
    pace(started)
  end
end)
