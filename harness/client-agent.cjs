// A Sentinel-aware application, run inside a client pod of the simulator and driven
// by the test over Node's IPC channel. It reaches Redis only the way an application in
// the cluster would: through `redis-sentinel:26379` and the pods' DNS names.
//
// Credentials: REDIS_USERS is a JSON object user -> password (the four ACL users of the
// Secret). The application (writer, readers) logs in as `app` on Redis and on the
// Sentinels; what an application may not do (ROLE, INFO, SENTINEL MASTER/REPLICAS...
// for inspection, SENTINEL FAILOVER) is done as `operations`, as an operator would.
//
// Requests: { id, op, ...args }; replies: { id, ok, result } or { id, ok: false, error }.
'use strict';
const Redis = require('ioredis');

const SENTINEL = { host: process.env.SENTINEL_HOST || 'redis-sentinel', port: 26379 };
const MASTER_NAME = process.env.MASTER_NAME || 'mymaster';
const USERS = JSON.parse(process.env.REDIS_USERS || '{}');
const APP = { username: 'app', password: USERS.app };
// With TLS (the tls prop), the CA certificate (PEM): every connection uses TLS and checks
// the server's certificate against it. A Redis pod is checked by the name it is reached
// by (Sentinel names pods by their fully qualified DNS names); a Sentinel, often reached
// by its IP (the Sentinels list each other by IP), by the Service name the certificate
// carries for every Sentinel.
const TLS_CA = process.env.REDIS_TLS_CA || '';
const SENTINEL_SERVICE = process.env.SENTINEL_HOST || 'redis-sentinel';
function tlsOptions(port) {
  if (!TLS_CA) return undefined;
  return port === 26379 ? { ca: TLS_CA, servername: SENTINEL_SERVICE } : { ca: TLS_CA };
}
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The client settings the examples recommend (CLIENT_SETTINGS of
// examples/typescript/sentinel-client.ts, the constants of examples/python/sentinel_client.py;
// test/unit/examples.test.ts keeps the three equal), so the failover benchmark measures
// what an application following the examples gets.
const CLIENT_SETTINGS = { connectTimeoutMs: 250, commandTimeoutMs: 1000, retryDelayMs: 50, sentinelRetryDelayMs: 100 };

// "Ordinary retries": errors that mean "the master moved, ask again" are retried.
const RETRYABLE = /READONLY|NOREPLICAS|LOADING|MASTERDOWN|Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|Command timed out|max retries|UNBLOCKED/i;

function sentinelClient(role) {
  const client = new Redis({
    sentinels: [SENTINEL],
    name: MASTER_NAME,
    role,
    ...APP,
    sentinelUsername: APP.username,
    sentinelPassword: APP.password,
    // The ready check sends INFO, which the app user may not run (it would reconnect
    // forever); without it ioredis does not check the role either, so a write that
    // reaches a demoted master gets READONLY and reconnects (reconnectOnError below).
    enableReadyCheck: false,
    ...(TLS_CA ? { tls: tlsOptions(6379), enableTLSForSentinelMode: true, sentinelTLS: tlsOptions(26379) } : {}),
    // Reconnect quickly and ask the Sentinels again: that is how a client follows a
    // failover. (ioredis' failoverDetector is left off: after a +switch-master that
    // arrives mid-reconnect it can leave the client closed for good.)
    retryStrategy: () => CLIENT_SETTINGS.retryDelayMs,
    sentinelRetryStrategy: () => CLIENT_SETTINGS.sentinelRetryDelayMs,
    // Short: an attempt on a master that just became unreachable must not hold the
    // client once the Sentinels name the new one (1000 ms cost ~0.6 s of every partition).
    connectTimeout: CLIENT_SETTINGS.connectTimeoutMs,
    commandTimeout: CLIENT_SETTINGS.commandTimeoutMs,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    reconnectOnError: (err) => (/READONLY/.test(err.message) ? 2 : false),
  });
  // A command that times out usually means the server is unreachable (a partition):
  // reconnect, which asks the Sentinels again, instead of waiting on a dead socket.
  const sendCommand = client.sendCommand.bind(client);
  client.sendCommand = (command, stream) => {
    command.promise.catch((err) => {
      if (/Command timed out/.test(err.message) && client.status === 'ready') client.disconnect(true);
    });
    return sendCommand(command, stream);
  };
  let lastError = '';
  client.on('error', (err) => {
    if (err.message !== lastError) console.error(`[${role}] ${err.message}`);
    lastError = err.message;
  });
  return client;
}

/**
 * A client that knows nothing of Sentinel: one address (the proxy's Service), the same
 * settings as the Sentinel client (quick reconnects, short timeouts, READONLY reconnects).
 */
function proxyClient(host, port, label, replace) {
  const client = new Redis({
    host, port, ...APP, tls: tlsOptions(port),
    enableReadyCheck: false,
    retryStrategy: () => CLIENT_SETTINGS.retryDelayMs,
    connectTimeout: CLIENT_SETTINGS.connectTimeoutMs,
    commandTimeout: CLIENT_SETTINGS.commandTimeoutMs,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    reconnectOnError: (err) => (/READONLY/.test(err.message) ? 2 : false),
  });
  // A command that times out: replace the client with a new one (a connection pool drops a
  // bad connection the same way). ioredis 5 can be left "ready" on a socket that is already
  // closed when a proxy accepts and closes connections in quick succession during a
  // failover, and then neither disconnect(true) nor a new connect() recovers it.
  let replaced = false;
  const sendCommand = client.sendCommand.bind(client);
  client.sendCommand = (command, stream) => {
    command.promise.catch((err) => {
      if (!/Command timed out/.test(err.message) || replaced) return;
      replaced = true;
      client.disconnect();
      replace();
    });
    return sendCommand(command, stream);
  };
  let lastError = '';
  client.on('error', (err) => {
    if (err.message !== lastError) console.error(`[${label}] ${err.message}`);
    lastError = err.message;
  });
  return client;
}

/** The server address (CLIENT INFO laddr) of the connection a reply came on. */
function laddrOf(clientInfo) {
  return /(?:^| )laddr=(\S+)/.exec(String(clientInfo))?.[1]?.replace(/:\d+$/, '') ?? null;
}

let viaProxy = false;
const idle = new Map();

/**
 * Credentials of USER (null: none; a user with `password` given: that password instead of
 * the Secret's, to try a wrong one).
 */
function credentials(user, password) {
  if (user === null) return {};
  return { username: user, password: password ?? USERS[user] };
}

function directClient(host, port = 6379, user = 'operations', password = undefined) {
  const client = new Redis({
    host, port, ...credentials(user, password), tls: tlsOptions(port), lazyConnect: true, connectTimeout: 800, commandTimeout: 1500,
    maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false, enableReadyCheck: false,
  });
  client.on('error', () => {}); // failures surface as rejected commands
  return client;
}

/** One command on a fresh connection as USER (null: without logging in). */
async function once(host, port, user, args, password = undefined) {
  const c = directClient(host, port, user, password);
  try {
    await c.connect();
    return await c.call(...args);
  } finally {
    c.disconnect();
  }
}

/**
 * SENTINEL CKQUORUM's answer, worked out as Sentinel does (src/sentinel.c,
 * sentinelIsQuorumReachable) from SENTINEL MASTER and SENTINELS: the operations user may
 * not run CKQUORUM itself (no script needs it). Voters: this Sentinel and every peer it
 * knows; usable: those not subjectively or objectively down.
 */
function ckquorumOf(m, peers) {
  const voters = peers.length + 1;
  const usable = 1 + peers.filter((p) => !/(^|,)[so]_down(,|$)/.test(p.flags)).length;
  const quorum = Number(m.quorum);
  const problems = [];
  if (usable < quorum) problems.push(`NOQUORUM ${usable} usable Sentinels. Not enough available Sentinels to reach the specified quorum for this master`);
  if (usable < Math.floor(voters / 2) + 1) problems.push(`NOQUORUM ${usable} usable Sentinels. Not enough available Sentinels to reach the majority and authorize a failover`);
  return problems[0] ?? `OK ${usable} usable Sentinels. Quorum and failover authorization can be reached`;
}

let master;
let replica;
let writer;
let nodeWatch;

async function retrying(fn, { attempts = 40, delayMs = 100 } = {}) {
  let lastError;
  for (let i = 0; i < attempts; i++) {
    try {
      return await fn();
    } catch (err) {
      lastError = err;
      if (!RETRYABLE.test(err.message)) throw err;
      await sleep(delayMs);
    }
  }
  throw lastError;
}

/**
 * Writes `<prefix>:<n>` = n one after another. Each write is a SET, then WAIT 1 to learn
 * whether a replica has it. Every attempt is recorded with its times and outcome.
 */
function startWriter({ prefix, retries = 0, waitTimeoutMs = 500, intervalMs = 0 }) {
  const state = { stop: false, log: [], n: 0 };
  state.done = (async () => {
    while (!state.stop) {
      const n = state.n++;
      const entry = { n, start: now(), ack: null, confirmed: false, error: null, attempts: 0 };
      state.log.push(entry);
      try {
        await retrying(async () => {
          entry.attempts++;
          try {
            if (viaProxy) {
              // Through the proxy: which node took the write, from the same connection.
              const [[setErr], [infoErr, info]] = await master.multi().set(`${prefix}:${n}`, String(n)).client('INFO').exec();
              if (setErr) throw setErr;
              entry.node = infoErr ? null : laddrOf(info);
            } else {
              await master.set(`${prefix}:${n}`, String(n));
            }
          } catch (err) {
            entry.firstError = entry.firstError || err.message; // what a retried write first met
            throw err;
          }
        }, { attempts: retries + 1, delayMs: 100 });
        entry.ack = now();
        try {
          entry.confirmed = (await master.wait(1, waitTimeoutMs)) >= 1;
        } catch {
          entry.confirmed = false;
        }
      } catch (err) {
        entry.error = err.message;
      }
      if (intervalMs) await sleep(intervalMs);
    }
  })();
  return state;
}

const ops = {
  async connect() {
    master = sentinelClient('master');
    replica = sentinelClient('slave');
    await retrying(() => master.ping(), { attempts: 100, delayMs: 200 });
    return true;
  },
  /** Use only the proxy's Services: writes to `write` (host:port), replica reads from `read`. */
  async connectProxy({ write, read }) {
    for (const c of [master, replica]) c?.disconnect();
    const writer = () => { master = proxyClient(write.host, write.port, 'proxy-write', writer); };
    const reader = () => { replica = proxyClient(read.host, read.port, 'proxy-read', reader); };
    writer();
    reader();
    viaProxy = true;
    await retrying(() => master.set('proxy:ready', '1'), { attempts: 150, delayMs: 200 });
    await retrying(() => replica.get('proxy:ready'), { attempts: 150, delayMs: 200 });
    return true;
  },
  /**
   * An idle connection through the proxy (no reconnect): which node it reached, and later
   * (idleStatus) when it was closed, if it was.
   */
  async openIdle({ host, port, name }) {
    const c = new Redis({
      host, port, ...APP, tls: tlsOptions(port), lazyConnect: true, enableReadyCheck: false, retryStrategy: () => null,
      maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 1000, commandTimeout: 1000,
    });
    c.on('error', () => {});
    const state = { closedAt: null, node: null };
    c.on('close', () => { if (state.closedAt === null) state.closedAt = now(); });
    await c.connect();
    state.node = laddrOf(await c.client('INFO'));
    idle.set(name, { c, state });
    return state.node;
  },
  async idleStatus({ name }) {
    const i = idle.get(name);
    if (!i) throw new Error(`no idle connection ${name}`);
    i.c.disconnect();
    idle.delete(name);
    return i.state;
  },
  /** A read through the read Service, with the node that served it. */
  async readVia({ key }) {
    return retrying(async () => {
      const [[e1, v], [e2, info]] = await replica.multi().get(key).client('INFO').exec();
      if (e1) throw e1;
      return { value: v, node: e2 ? null : laddrOf(info) };
    });
  },
  async write({ key, value, wait }) {
    await retrying(() => master.set(key, value));
    return wait ? master.wait(wait, 2000) : 'OK';
  },
  async readMaster({ key }) {
    return retrying(() => master.get(key));
  },
  async readReplica({ key }) {
    return retrying(() => replica.get(key));
  },
  /** ROLE of the replica the app's replica connection uses (asked as operations: the app may not run ROLE). */
  async replicaRole() {
    return retrying(async () => {
      const stream = replica.stream;
      if (replica.status !== 'ready' || !stream?.remoteAddress) throw new Error('Connection is closed (replica not connected)');
      return (await once(stream.remoteAddress, stream.remotePort, 'operations', ['ROLE']))[0];
    });
  },
  /** Which of keys `<prefix>:<n>` for the given n are missing on the current master. */
  async missing({ prefix, ns }) {
    const missing = [];
    for (let i = 0; i < ns.length; i += 500) {
      const chunk = ns.slice(i, i + 500);
      const values = await retrying(() => master.mget(chunk.map((n) => `${prefix}:${n}`)));
      values.forEach((v, j) => { if (v !== String(chunk[j])) missing.push(chunk[j]); });
    }
    return missing;
  },
  /**
   * A rotated password: USER logs in with PASSWORD from now on. For the application (app)
   * the connections already open stay as they are; each new one, to a Sentinel or to
   * Redis, logs in with the new password (ioredis reads its options at every connect).
   */
  async setPassword({ user, password }) {
    USERS[user] = password;
    if (user === 'app') {
      APP.password = password;
      for (const c of [master, replica].filter(Boolean)) {
        c.options.password = password;
        c.options.sentinelPassword = password;
      }
    }
    return true;
  },
  async startWriter(args) {
    if (writer) throw new Error('writer already running');
    writer = startWriter(args);
    return true;
  },
  /** Time of the running writer's latest acknowledged write (0 if none). */
  async writerLastAck() {
    if (!writer) throw new Error('no writer running');
    for (let i = writer.log.length - 1; i >= 0; i--) if (writer.log[i].ack) return writer.log[i].ack;
    return 0;
  },
  async stopWriter() {
    if (!writer) throw new Error('no writer running');
    writer.stop = true;
    await writer.done;
    const log = writer.log;
    writer = undefined;
    return log;
  },
  /** ROLE of each Redis node and the view of each Sentinel, for assertions and failure reports. */
  async inspect({ nodes, sentinels }) {
    const result = { nodes: {}, sentinels: {} };
    await Promise.all(nodes.map(async (host) => {
      try {
        const role = await once(host, 6379, 'operations', ['ROLE']);
        const info = await once(host, 6379, 'operations', ['INFO', 'replication']);
        result.nodes[host] = { role: role[0], roleReply: role, info: String(info).replace(/\r/g, '') };
      } catch (err) {
        result.nodes[host] = { role: 'unreachable', error: err.message };
      }
    }));
    await Promise.all(sentinels.map(async (host) => {
      try {
        const flat = (a) => Object.fromEntries(a.reduce((acc, v, i) => (i % 2 ? acc : [...acc, [v, a[i + 1]]]), []));
        const m = flat(await once(host, 26379, 'operations', ['SENTINEL', 'MASTER', MASTER_NAME]));
        const replicas = (await once(host, 26379, 'operations', ['SENTINEL', 'REPLICAS', MASTER_NAME])).map(flat);
        const peers = (await once(host, 26379, 'operations', ['SENTINEL', 'SENTINELS', MASTER_NAME])).map(flat);
        const ckquorum = ckquorumOf(m, peers);
        const address = await once(host, 26379, 'operations', ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME]);
        result.sentinels[host] = { master: m, address, replicas, sentinels: peers, ckquorum };
      } catch (err) {
        result.sentinels[host] = { error: err.message };
      }
    }));
    return result;
  },
  /**
   * Watch one Redis node directly (not through Sentinel) for a while: sample its ROLE and
   * try a SET every few milliseconds. Proves whether it ever accepted a write as master.
   */
  async watchNode({ host, durationMs, everyMs = 20 }) {
    const end = now() + durationMs;
    const result = { roles: {}, writesAccepted: 0, firstReachable: null, errors: {} };
    // ROLE as operations, the writes as the application.
    let c;
    let app;
    while (now() < end) {
      try {
        if (!c) {
          c = directClient(host);
          app = directClient(host, 6379, 'app');
          await c.connect();
          await app.connect();
          if (result.firstReachable === null) result.firstReachable = now();
        }
        const role = (await c.role())[0];
        result.roles[role] = (result.roles[role] || 0) + 1;
        try {
          await app.set('watch:probe', String(now()));
          result.writesAccepted++;
        } catch (err) {
          const kind = err.message.split(' ')[0];
          result.errors[kind] = (result.errors[kind] || 0) + 1;
        }
      } catch (err) {
        c?.disconnect();
        app?.disconnect();
        c = undefined;
      }
      await sleep(everyMs);
    }
    c?.disconnect();
    app?.disconnect();
    return result;
  },
  /**
   * Loads `count` keys `<prefix>:<n>` with values of `size` bytes through the master, in
   * pipelined batches (DEBUG POPULATE is disabled since Redis 7). Returns the DBSIZE after.
   */
  async load({ prefix, count, size = 100, batch = 1000 }) {
    const value = 'x'.repeat(size);
    for (let i = 0; i < count; i += batch) {
      // A batch whose commands time out on a busy machine (each has the 1 s command
      // timeout) is sent again: SET of the same value is idempotent.
      await retrying(async () => {
        const p = master.pipeline();
        for (let n = i; n < Math.min(count, i + batch); n++) p.set(`${prefix}:${n}`, value);
        const results = await p.exec();
        const failed = results.find(([err]) => err);
        if (failed) throw failed[0];
      }, { attempts: 10, delayMs: 200 });
    }
    return master.dbsize();
  },
  /**
   * Samples each Redis node directly every `everyMs` until nodeWatchStop: "serving" (it
   * answers, is not loading, and is master or a replica with its link up and no sync in
   * progress), "syncing" (a replica that answers but is not in sync) or "down" (no answer,
   * an error such as LOADING, or still loading).
   */
  async nodeWatchStart({ hosts, everyMs = 50 }) {
    if (nodeWatch) throw new Error('node watch already running');
    const watch = { stop: false, samples: Object.fromEntries(hosts.map((h) => [h, []])) };
    watch.done = Promise.all(hosts.map(async (host) => {
      let c;
      const connect = async () => {
        c = new Redis({
          host, port: 6379, ...credentials('operations'), tls: tlsOptions(6379), lazyConnect: true, connectTimeout: 300, commandTimeout: 300,
          maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false, enableReadyCheck: false,
        });
        c.on('error', () => {});
        await c.connect();
      };
      const sample = async () => {
        if (!c) await connect();
        const info = String(await c.call('INFO', 'replication', 'persistence'));
        const field = (name) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
        if (field('loading') === '1') return 'down';
        if (field('role') === 'master') return 'serving';
        return field('master_link_status') === 'up' && field('master_sync_in_progress') === '0' ? 'serving' : 'syncing';
      };
      while (!watch.stop) {
        const t = now();
        let state = 'down';
        // A killed connection (CLIENT KILL in a failover) is not a node down: try a new one at once.
        for (let attempt = 0; attempt < 2 && state === 'down'; attempt++) {
          try {
            state = await sample();
            if (state === 'down') break;
          } catch {
            c?.disconnect();
            c = undefined;
          }
        }
        watch.samples[host].push([t, state]);
        await sleep(Math.max(0, t + everyMs - now()));
      }
      c?.disconnect();
    }));
    nodeWatch = watch;
    return true;
  },
  async nodeWatchStop() {
    if (!nodeWatch) throw new Error('no node watch running');
    nodeWatch.stop = true;
    await nodeWatch.done;
    const { samples } = nodeWatch;
    nodeWatch = undefined;
    return samples;
  },
  /**
   * One command to one host (e.g. a Sentinel by IP) with a short timeout, as USER
   * (default operations; null: without logging in; `password` to try another one).
   */
  async call({ host, port, args, user = 'operations', password }) {
    return once(host, port, user, args, password);
  },
  /** Like call, but the error message of a refused command as {error} instead of a rejection. */
  async attempt({ host, port, args, user = 'operations', password }) {
    try {
      return { reply: await once(host, port, user, args, password) };
    } catch (err) {
      return { error: err.message };
    }
  },
};

process.on('message', async (msg) => {
  try {
    const result = await ops[msg.op](msg);
    process.send({ id: msg.id, ok: true, result });
  } catch (err) {
    process.send({ id: msg.id, ok: false, error: err && err.message ? err.message : String(err) });
  }
});
process.on('disconnect', () => process.exit(0));
process.on('unhandledRejection', (err) => console.error(`unhandled rejection: ${err && err.stack ? err.stack : err}`));
process.send({ ready: true });
