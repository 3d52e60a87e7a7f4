// An ioredis application of redis-sentinel-ha: Sentinel discovery, the `app` user's
// credentials, writes to the master, reads from a replica, and settings that carry writes
// through a failover.
//
// Run it in a pod whose labels the NetworkPolicies admit (by default
// `redis-client: "true"` with the instance name `redis`), with the Secret's `app-password`
// mounted:
//
//   REDIS_PASSWORD_FILE=/etc/redis-app/app-password node sentinel-client.js --seconds 60
//
// It writes keys for that long, reads each back from a replica, and prints one JSON line:
// how many writes, how many needed a retry, the longest wait, how many failed for good
// (exit status 1 when one did). Environment: REDIS_SENTINELS (host:port,...; default
// redis-sentinel:26379), REDIS_MASTER_NAME (mymaster), REDIS_USERNAME (app),
// REDIS_PASSWORD_FILE or REDIS_PASSWORD, REDIS_TLS_CA (a CA file: connect with TLS).
import { readFileSync } from 'fs';
import Redis, { RedisOptions } from 'ioredis';

/**
 * The recommended client settings (the README explains each; the failover benchmark's
 * client uses the same numbers).
 */
export const CLIENT_SETTINGS = {
  /**
   * A connection inside the cluster takes well under a millisecond; an attempt on a master
   * that just became unreachable must not hold the client once the Sentinels name the new
   * one (the attempt in progress runs to its end first).
   */
  connectTimeoutMs: 250,
  /** A command on a dead socket fails after this, and the client asks the Sentinels again. */
  commandTimeoutMs: 1000,
  /** Reconnect (asking the Sentinels again) this soon after a lost connection. */
  retryDelayMs: 50,
  /** Ask the Sentinels again this soon when none answered. */
  sentinelRetryDelayMs: 100,
  /** How long the application retries one write: Sentinel needs downAfter (5 s) + ~1.5 s. */
  retryForMs: 30_000,
} as const;

/** Replies after which the same command succeeds once the client has found the (new) master. */
export const RETRYABLE = /READONLY|NOREPLICAS|LOADING|MASTERDOWN|Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|Command timed out|max retries|All sentinels are unreachable/i;

export interface ConnectionConfig {
  sentinels: Array<{ host: string; port: number }>;
  masterName: string;
  username: string;
  password: string;
  /** PEM of the CA that signed the servers' certificate: TLS to Redis and to the Sentinels. */
  tlsCa?: string;
}

export function configFromEnvironment(env: NodeJS.ProcessEnv = process.env): ConnectionConfig {
  const password = env.REDIS_PASSWORD_FILE ? readFileSync(env.REDIS_PASSWORD_FILE, 'utf8').trim() : env.REDIS_PASSWORD;
  if (!password) throw new Error('set REDIS_PASSWORD_FILE (a file holding the app password) or REDIS_PASSWORD');
  return {
    sentinels: (env.REDIS_SENTINELS ?? 'redis-sentinel:26379').split(',').map((a) => {
      const i = a.lastIndexOf(':');
      return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
    }),
    masterName: env.REDIS_MASTER_NAME ?? 'mymaster',
    username: env.REDIS_USERNAME ?? 'app',
    password,
    tlsCa: env.REDIS_TLS_CA ? readFileSync(env.REDIS_TLS_CA, 'utf8') : undefined,
  };
}

/** ioredis options for the master (`role: 'master'`) or a replica (`'slave'`). */
export function sentinelOptions(c: ConnectionConfig, role: 'master' | 'slave'): RedisOptions {
  const s = CLIENT_SETTINGS;
  return {
    sentinels: c.sentinels,
    name: c.masterName,
    role,
    // The same user logs in to the Sentinels and to Redis.
    username: c.username,
    password: c.password,
    sentinelUsername: c.username,
    sentinelPassword: c.password,
    ...(c.tlsCa ? { tls: { ca: c.tlsCa }, sentinelTLS: { ca: c.tlsCa }, enableTLSForSentinelMode: true } : {}),
    connectTimeout: s.connectTimeoutMs,
    commandTimeout: s.commandTimeoutMs,
    retryStrategy: () => s.retryDelayMs,
    sentinelRetryStrategy: () => s.sentinelRetryDelayMs,
    // The app user may not run INFO (it is @dangerous), which the ready check uses.
    enableReadyCheck: false,
    // A master that was demoted answers READONLY: reconnect, which asks the Sentinels.
    reconnectOnError: (err) => (/READONLY/.test(err.message) ? 2 : false),
    maxRetriesPerRequest: 2,
  };
}

/** A Sentinel-aware client; a command that times out drops the connection so the next asks the Sentinels. */
export function connect(c: ConnectionConfig, role: 'master' | 'slave'): Redis {
  const client = new Redis(sentinelOptions(c, role));
  const sendCommand = client.sendCommand.bind(client);
  client.sendCommand = (command, stream) => {
    command.promise.catch((err: Error) => {
      if (/Command timed out/.test(err.message) && client.status === 'ready') client.disconnect(true);
    });
    return sendCommand(command, stream);
  };
  client.on('error', () => { /* reported through the commands that fail */ });
  return client;
}

/** Runs `command` until it succeeds or CLIENT_SETTINGS.retryForMs has passed. */
export async function withRetries<T>(command: () => Promise<T>): Promise<{ result: T; retries: number }> {
  const deadline = Date.now() + CLIENT_SETTINGS.retryForMs;
  for (let retries = 0; ; retries++) {
    try {
      return { result: await command(), retries };
    } catch (err) {
      if (!RETRYABLE.test((err as Error).message) || Date.now() >= deadline) throw err;
      await new Promise((r) => setTimeout(r, CLIENT_SETTINGS.retryDelayMs));
    }
  }
}

async function main(argv: string[]): Promise<number> {
  const seconds = Number(argv[argv.indexOf('--seconds') + 1] ?? 10) || 10;
  const prefix = argv.includes('--prefix') ? argv[argv.indexOf('--prefix') + 1] : 'example:ts';
  const config = configFromEnvironment();
  const master = connect(config, 'master');
  const replica = connect(config, 'slave');
  let writes = 0; let retried = 0; let failed = 0; let replicaReads = 0; let longestWaitMs = 0;
  const end = Date.now() + seconds * 1000;
  for (let i = 0; Date.now() < end; i++) {
    const key = `${prefix}:${i}`;
    const started = Date.now();
    try {
      // SET is idempotent, so repeating it after an unanswered attempt is safe; a
      // non-idempotent command (INCR, LPUSH) can run twice when a reply is lost.
      const { retries } = await withRetries(() => master.set(key, String(i)));
      writes++;
      if (retries) retried++;
    } catch (err) {
      failed++;
      console.error(`write ${key} failed for good: ${(err as Error).message}`);
    }
    longestWaitMs = Math.max(longestWaitMs, Date.now() - started);
    // Reads may go to a replica, which can lag a little behind the master.
    if (await replica.get(key).catch(() => null) !== null) replicaReads++;
    await new Promise((r) => setTimeout(r, 10));
  }
  console.log(JSON.stringify({ writes, retried, failed, longest_wait_ms: longestWaitMs, replica_reads: replicaReads }));
  master.disconnect();
  replica.disconnect();
  return failed ? 1 : 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (err) => {
    console.error(err.message);
    process.exit(1);
  });
}
