/**
 * `redis-ha migrate --from redis://old:6379`: the command line of lib/ops/migrate.ts. The
 * source is the old single Redis (a URL, its password better from --from-password-file);
 * the target is the HA master, found through the Sentinels with the shared connection
 * options (connect.ts), logged in as `app` unless --user says otherwise.
 */
import * as cliProgress from 'cli-progress';
import { existsSync, readFileSync } from 'fs';
import Redis from 'ioredis';
import { parseArgs } from 'util';
import { CONNECTION_OPTIONS, CliError, HaConnection, connectionOptions, connectionUsage, durationOption, formatAddress } from './connect';
import { MigrateError, MigrateProgress, MigrateResult, Migration, STATE_PREFIX, migrate } from './migrate';

export const MIGRATE_USAGE = `  migrate            copy every key of a single Redis into the HA master (README "Migrating from a single Redis")
      --from URL             the old Redis: redis://[USER[:PASSWORD]@]HOST:PORT[/DB] (rediss:// for TLS)
      --from-user NAME       its ACL user (default: the URL's, else none)
      --from-password-file FILE  its password (better than in the URL: ps and shell history show that)
      --from-cacert FILE     CA certificate for rediss://
      --overwrite            replace keys that are newer on the target (default: keep them, and count them)
      --follow               after the copy, keep copying the source's changes until Ctrl-C or --stop-file
      --stop-file FILE       with --follow: stop once FILE exists
      --rescan-interval DUR  with --follow: compare every key again this often (default: 60s)
      --no-keyspace-events   with --follow: do not turn on keyspace notifications on the source; rescans only
      --parallel N           keys copied at once, each on a connection of its own (default: 8)
      --state-key KEY        the state hash on the target (default: ${STATE_PREFIX}state:<source host:port/db>)
      --verify-only          only compare the source's keys with the target's
      plus the connection options of the target (user default: app)`;

interface SourceUrl { host: string; port: number; db: number; user?: string; password?: string; tls: boolean }

export function parseSourceUrl(text: string): SourceUrl {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new CliError(`--from '${text}' is not a URL (for example --from redis://old-redis:6379/0)`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new CliError(`--from '${text}': the scheme must be redis:// or rediss://`);
  const db = u.pathname && u.pathname !== '/' ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new CliError(`--from '${text}': the database must be a number (redis://host:6379/0)`);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : 6379,
    db,
    user: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    tls: u.protocol === 'rediss:',
  };
}

/** Connects to the source; one-line CliErrors for unreachable, wrong password, no such database. */
async function connectSource(src: SourceUrl, label: string, timeoutMs: number, ca?: string): Promise<Redis> {
  let lastError: Error | undefined;
  // AUTH and SELECT are sent here, not by ioredis, so that their errors reach us as replies.
  const client = new Redis({
    host: src.host, port: src.port, lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 2,
    retryStrategy: () => null, enableReadyCheck: false, ...(src.tls ? { tls: ca ? { ca } : {} } : {}),
  });
  client.on('error', (e) => { lastError = e; });
  try {
    await client.connect();
    if (src.password !== undefined) await (src.user ? client.call('AUTH', src.user, src.password) : client.call('AUTH', src.password));
    if (src.db) await client.select(src.db);
    await client.ping();
  } catch (err) {
    client.disconnect();
    const text = `${(err as Error).message ?? String(err)} | ${lastError?.message ?? ''}`;
    if (/WRONGPASS|invalid (username-)?password/i.test(text)) throw new CliError(`source ${label} refused the credentials (WRONGPASS: wrong password, or no such user; see --from-user, --from-password-file)`);
    if (/NOAUTH/i.test(text)) throw new CliError(`source ${label} requires a password: give --from-password-file FILE`);
    if (/DB index|invalid DB/i.test(text)) throw new CliError(`source ${label} has no database ${src.db}`);
    if (/ECONNREFUSED/.test(text)) throw new CliError(`cannot reach source ${label}: connection refused`);
    if (/ENOTFOUND|EAI_AGAIN/.test(text)) throw new CliError(`cannot reach source ${label}: name not found`);
    if (/ETIMEDOUT|timed out/i.test(text)) throw new CliError(`cannot reach source ${label}: no answer within ${timeoutMs} ms`);
    throw new CliError(`source ${label}: ${((err as Error).message ?? String(err)).split('\n')[0]}`);
  }
  // Reconnections log in and select by themselves (and connections made by duplicate()).
  Object.assign(client.options, { username: src.user, password: src.password, db: src.db });
  // Once connected, ride out short interruptions.
  client.options.retryStrategy = (n: number) => (n > 20 ? null : 500);
  return client;
}

/** Progress: a bar on a terminal, a line every 5 s otherwise. */
function progressReporter(): { update: (p: MigrateProgress) => void; stop: () => void } {
  // Rates are per phase (the copy, each rescan).
  let start = Date.now();
  let ratePhase = '';
  let rateDone = 0;
  const rate = (p: MigrateProgress): number => {
    if (p.phase !== ratePhase || p.done < rateDone) {
      ratePhase = p.phase;
      start = Date.now();
    }
    rateDone = p.done;
    return Math.round(p.done / Math.max(0.001, (Date.now() - start) / 1000));
  };
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar({
      format: '{phase} [{bar}] {value}/{total} keys | {rate} keys/s | copied {copied}, kept newer {newer}, gone {vanished}',
      stream: process.stderr, hideCursor: true, clearOnComplete: false,
    }, cliProgress.Presets.shades_classic);
    let phase = '';
    return {
      update: (p) => {
        if (p.phase === 'follow' || p.phase === 'verify') return;
        const payload = { phase: p.phase.padEnd(6), rate: rate(p), ...p.counts };
        if (phase !== p.phase) {
          if (phase) bar.stop();
          phase = p.phase;
          bar.start(Math.max(p.total, p.done), p.done, payload);
        } else {
          bar.setTotal(Math.max(p.total, p.done));
          bar.update(p.done, payload);
        }
      },
      stop: () => { if (phase) bar.stop(); },
    };
  }
  let last = 0;
  let lastPhase = '';
  return {
    update: (p) => {
      const now = Date.now();
      if (p.phase === 'follow' || p.phase === 'verify') return;
      const r = rate(p);
      if (p.phase === lastPhase && now - last < 5000 && p.done < p.total) return;
      last = now;
      lastPhase = p.phase;
      const c = p.counts;
      console.error(`${new Date().toISOString().slice(11, 19)} ${p.phase}: ${p.done}/${p.total} keys, ${r} keys/s; copied ${c.copied}, `
        + `already ${c.already}, kept newer ${c.newer}, overwritten ${c.overwritten}, gone ${c.vanished}, deleted ${c.deleted}`);
    },
    stop: () => undefined,
  };
}

export async function migrateCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...CONNECTION_OPTIONS,
      from: { type: 'string' },
      'from-user': { type: 'string' },
      'from-password-file': { type: 'string' },
      'from-cacert': { type: 'string' },
      overwrite: { type: 'boolean', default: false },
      follow: { type: 'boolean', default: false },
      'stop-file': { type: 'string' },
      'rescan-interval': { type: 'string', default: '60s' },
      'no-keyspace-events': { type: 'boolean', default: false },
      parallel: { type: 'string', default: '8' },
      'state-key': { type: 'string' },
      'verify-only': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(`usage: redis-ha migrate --from URL [options]\n${MIGRATE_USAGE}\n\n${connectionUsage('app')}`);
    return 0;
  }
  if (!values.from) throw new CliError('--from URL is required (the old Redis, e.g. --from redis://old-redis:6379/0)');
  const src = parseSourceUrl(values.from);
  if (values['from-user']) src.user = values['from-user'];
  if (values['from-password-file']) {
    try {
      src.password = readFileSync(values['from-password-file'], 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new CliError(`--from-password-file '${values['from-password-file']}': cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
  const parallel = Number(values.parallel);
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > 64) throw new CliError(`--parallel '${values.parallel}' is not a number from 1 to 64`);
  const rescanIntervalMs = durationOption(values['rescan-interval']!, '--rescan-interval');
  const conn = new HaConnection(connectionOptions(values, { user: 'app' }));
  const sourceLabel = `${src.host}:${src.port}/${src.db}`;
  let ca: string | undefined;
  if (values['from-cacert']) ca = readFileSync(values['from-cacert'], 'utf8');
  const source = await connectSource(src, sourceLabel, conn.opts.connectTimeoutMs, ca);

  // A new connection to the current master per worker (WATCH is per connection), logged in
  // like conn's; a server that answers a write with READONLY is not the master (yet).
  const target = async (): Promise<Redis> => {
    const addr = await conn.masterAddress();
    const base = await conn.redis(addr);
    const client = base.duplicate();
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.call('AUTH', conn.opts.user, conn.opts.password);
      await client.del(`${STATE_PREFIX}probe`);
    } catch (err) {
      client.disconnect();
      const text = (err as Error).message;
      if (/READONLY/.test(text)) throw new CliError(`target ${conn.describe(addr)}, named master by the Sentinels, is a replica (READONLY): a failover under way? try again`);
      throw new CliError(`target ${conn.describe(addr)}: ${text.split('\n')[0]}`);
    }
    return client;
  };
  // The first connection now, so that an unreachable or wrong target fails before anything starts.
  const first = await target();
  const master = formatAddress((await conn.masterAddress()));
  first.disconnect();

  const stopFile = values['stop-file'];
  let stopping = false;
  const onSignal = () => {
    if (stopping) process.exit(130);
    stopping = true;
    console.error('stopping after the last changes (Ctrl-C again to quit at once; the next run resumes)');
  };
  const progress = progressReporter();
  const log = (line: string) => console.error(`${new Date().toISOString().slice(11, 19)} ${line}`);
  if (values.follow) process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  log(`source ${sourceLabel} (${await source.dbsize()} keys) -> master ${master} as ${conn.opts.user}`);
  try {
    const opts = {
      sourceId: sourceLabel,
      stateKey: values['state-key'],
      overwrite: values.overwrite,
      parallel,
      log,
      onProgress: progress.update,
      follow: values.follow ? {
        stop: () => stopping || (stopFile !== undefined && existsSync(stopFile)),
        rescanIntervalMs,
        notifications: !values['no-keyspace-events'],
        db: src.db,
      } : undefined,
    };
    let result: MigrateResult;
    if (values['verify-only']) {
      const m = new Migration(source, target, opts);
      try {
        result = { counts: m.counts, verification: await m.verify(), notes: [] };
      } finally {
        m.close();
      }
    } else {
      result = await migrate(source, target, opts);
    }
    progress.stop();
    const c = result.counts;
    if (!values['verify-only']) {
      console.log(`copied ${c.copied}, already copied before ${c.already}, kept because newer on the target ${c.newer}, `
        + `overwritten ${c.overwritten}, gone from the source ${c.vanished}, deleted on the target ${c.deleted}`);
    }
    for (const n of result.notes) console.log(`note: ${n}`);
    console.log(result.verification.summary);
    return result.verification.ok ? 0 : 1;
  } catch (err) {
    progress.stop();
    if (err instanceof MigrateError) throw new CliError(err.message);
    throw err;
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    source.disconnect();
    await conn.close();
  }
}
