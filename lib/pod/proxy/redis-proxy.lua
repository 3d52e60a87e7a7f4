-- The proxy's decider, a task inside HAProxy (lua-load). Every POLL_INTERVAL_MS it asks
-- every Sentinel it knows which node is the master, asks every Redis pod its ROLE, and
-- only then opens a server of the write backend: the one node that the newest Sentinel
-- configuration (highest config epoch, answered by a majority of the Sentinels) names
-- AND that itself says ROLE master. Every other write server is kept in maintenance,
-- and a server that loses the master's place has its sessions shut, so clients
-- reconnect and land on the new master. Without answers from a majority of the
-- Sentinels no server takes writes (a proxy cut off from the majority cannot know
-- whether they have promoted another node). The read backend holds the replicas whose
-- ROLE says connected; the master only while no replica is.
--
-- Decide, then act: decide() returns the verdict and its reason, apply() acts on it,
-- and each change is logged on one line. Nothing here is typed twice: names, ports and
-- timings arrive in the environment (lib/pod/contract.ts, proxyContainerEnv).

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
local TIMEOUT_S = tonumber(env("CHECK_TIMEOUT_MS")) / 1000
local FORGET_MS = tonumber(env("SENTINEL_FORGET_MS"))
local USER = env("PROXY_USER")
local PASSWORD_FILE = env("AUTH_DIR") .. "/" .. USER .. "-password"
local TLS = os.getenv("TLS") == "1"
local DOMAIN_SUFFIX = "." .. env("POD_NAMESPACE") .. ".svc." .. env("CLUSTER_DOMAIN")
local WRITE_BACKEND = env("WRITE_BACKEND")
local READ_BACKEND = env("READ_BACKEND")
local SENTINEL_BACKEND = env("SENTINEL_BACKEND")

local function log(msg)
  core.Info("redis-proxy: " .. msg)
end

local function now_ms()
  local t = core.now()
  return t.sec * 1000 + t.usec // 1000
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

-- Sends AUTH and `commands` on a fresh connection to ip:port; their replies, or nil and
-- why. The password is read from the mounted Secret at every connection, so a rotated
-- one is taken without a restart; the previous one is tried when the current is refused
-- (during a rotation the servers accept both).
local function ask(ip, port, commands)
  local function attempt(password)
    local s = core.tcp()
    s:settimeout(TIMEOUT_S)
    local ok, err
    if TLS then ok, err = s:connect_ssl(ip, port) else ok, err = s:connect(ip, port) end
    if not ok then
      s:close()
      return nil, "cannot connect (" .. tostring(err) .. ")"
    end
    local buf = command({ "AUTH", USER, password })
    for _, c in ipairs(commands) do buf = buf .. command(c) end
    s:send(buf)
    local _, autherr = read_reply(s)
    if autherr then
      s:close()
      return nil, "AUTH: " .. autherr
    end
    local replies = {}
    for i = 1, #commands do
      local v, e = read_reply(s)
      if v == nil then
        s:close()
        return nil, commands[i][1] .. " " .. tostring(commands[i][2]) .. ": " .. e
      end
      replies[i] = v
    end
    s:close()
    return replies
  end
  local function guarded(password)
    local ok, replies, err = pcall(attempt, password)
    if not ok then return nil, tostring(replies) end
    return replies, err
  end
  if ip == nil then return nil, "no address" end
  local password = read_file(PASSWORD_FILE)
  if password == nil then return nil, "no password file " .. PASSWORD_FILE end
  local replies, err = guarded(password)
  if replies == nil and err:find("WRONGPASS", 1, true) then
    local previous = read_file(PASSWORD_FILE .. "-previous")
    if previous ~= nil then replies, err = guarded(previous) end
  end
  return replies, err
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

-- The Sentinels ------------------------------------------------------------------

-- Sentinel IPs known: the seed (the Sentinel Service's address, from SENTINEL_BACKEND)
-- and every peer a Sentinel lists; a peer not reached for FORGET_MS is dropped.
local known = {}

local function seed_sentinels()
  for _, srv in pairs(core.backends[SENTINEL_BACKEND].servers) do
    local ip = split_addr(srv:get_addr())
    if ip ~= nil and known[ip] == nil then known[ip] = { seen = now_ms(), seed = true } end
  end
end

-- Each Sentinel's view, by its id (SENTINEL MYID), so that one Sentinel reached at two
-- addresses (the Service and its pod IP) counts once.
local function poll_sentinels()
  seed_sentinels()
  local views, errors = {}, {}
  for ip, k in pairs(known) do
    local r, err = ask(ip, SENTINEL_PORT, {
      { "SENTINEL", "MYID" },
      { "SENTINEL", "MASTER", MASTER_NAME },
      { "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME },
      { "SENTINEL", "SENTINELS", MASTER_NAME },
    })
    if r then
      k.seen = now_ms()
      local master = fields(r[2])
      local addr = r[3]
      views[r[1]] = { epoch = tonumber(master["config-epoch"]) or -1, host = addr and addr[1] or master.ip, ip = ip }
      for _, peer in ipairs(r[4]) do
        local p = fields(peer)
        if p.ip and known[p.ip] == nil then known[p.ip] = { seen = now_ms() } end
      end
    else
      errors[#errors + 1] = ip .. ": " .. err
    end
  end
  for ip, k in pairs(known) do
    if not k.seed and now_ms() - k.seen > FORGET_MS then known[ip] = nil end
  end
  return views, errors
end

-- The Redis pods -------------------------------------------------------------------

-- Server name (the pod's name) from the host the Sentinels announce
-- (<pod>.<service>.<namespace>.svc.<domain>); nil for a host that is no pod of ours.
local function pod_of(host)
  if host == nil then return nil end
  local short = host:sub(-#DOMAIN_SUFFIX) == DOMAIN_SUFFIX and host:sub(1, #host - #DOMAIN_SUFFIX) or host
  local pod, service = short:match("^([^.]+)%.([^.]+)$")
  if pod == nil or pod:gsub("%-%d+$", "") ~= service then return nil end
  return pod
end

-- ROLE of every server of the write backend (the same pods as the read backend):
-- name -> { role = "master" | "slave" | ..., state = replication state } or { error }.
local function poll_roles()
  local roles = {}
  for name, srv in pairs(core.backends[WRITE_BACKEND].servers) do
    local ip = split_addr(srv:get_addr())
    local r, err = ask(ip, REDIS_PORT, { { "ROLE" } })
    if r then roles[name] = { role = r[1][1], state = r[1][4] } else roles[name] = { error = err } end
  end
  return roles
end

-- Decide ---------------------------------------------------------------------------

local state = { epoch = -1, host = nil }

-- The write verdict: the server to open (or nil) and why.
local function decide(views, errors, roles)
  local count, best = 0, nil
  for _, v in pairs(views) do
    count = count + 1
    if best == nil or v.epoch > best.epoch then best = v end
  end
  if count < MAJORITY then
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
  local r = roles[pod]
  if r.role ~= "master" then
    return nil, string.format("the Sentinels name %s (epoch %d) but it says %s", pod, state.epoch, r.role or tostring(r.error))
  end
  return pod, string.format("%d of %d Sentinels answered, epoch %d names %s and it says ROLE master", count, SENTINEL_COUNT, state.epoch, pod)
end

-- The read servers and why: the replicas whose link to their master is up; while none is
-- (a failover), every replica (possibly stale, as Redis itself serves them); while there
-- is no replica at all, the master.
local function decide_reads(roles)
  local function pick(accept)
    local open, n = {}, 0
    for name, r in pairs(roles) do
      if accept(r) then open[name] = true; n = n + 1 end
    end
    return open, n
  end
  local open, n = pick(function(r) return r.role == "slave" and r.state == "connected" end)
  if n > 0 then return open, "it is a replica in sync" end
  open, n = pick(function(r) return r.role == "slave" end)
  if n > 0 then return open, "no replica is in sync, and it is a replica" end
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

local function round()
  local views, errors = poll_sentinels()
  local roles = poll_roles()
  local target, reason = decide(views, errors, roles)
  if reason ~= last_reason and target == nil then log("writes closed: " .. reason) end
  last_reason = reason
  apply(WRITE_BACKEND, target and { [target] = true } or {}, true, reason)
  local reads, why = decide_reads(roles)
  apply(READ_BACKEND, reads, false, why)
end

core.register_task(function()
  log(string.format("deciding every %d ms from %d Sentinels (majority %d), master name %s", POLL_MS, SENTINEL_COUNT, MAJORITY, MASTER_NAME))
  while true do
    local started = now_ms()
    local ok, err = pcall(round)
    if not ok then
      -- Not knowing is no reason to keep writing: close the write servers.
      log("round failed: " .. tostring(err))
      pcall(apply, WRITE_BACKEND, {}, true, "a round failed")
      last_reason = nil
    end
    local rest = POLL_MS - (now_ms() - started)
    if rest > 0 then core.msleep(rest) end
  end
end)
