/**
 * `redis-ha failover`: a manual failover that loses no acknowledged write.
 *
 * A plain SENTINEL FAILOVER promotes a replica while the master still takes writes: what
 * the master acknowledged (even with WAIT, to another replica) after the promoted replica's
 * last byte is lost when the old master becomes its replica. This does what the preStop
 * hook of a master does (lib/pod/scripts/redis-prestop.sh), from outside the pods:
 *
 *   1. the master the Sentinels name (a majority), its online replicas, and the one to
 *      promote (--to, or the one furthest along, replica-priority not 0), given
 *      replica-priority 1 so Sentinel picks it; a Sentinel that names this master and, once
 *      it has seen the priority, would promote that replica (promotion_forecast in common.sh);
 *   2. CLIENT PAUSE WRITE on the master (for at most the timeout: should the tool die,
 *      Redis resumes by itself), then wait until every online replica has processed the
 *      master's whole replication stream (asked of the replicas: the offsets the master
 *      reports are acknowledged only once a second);
 *   3. SENTINEL FAILOVER on that Sentinel; wait until it names the new master and the new
 *      master reports role master;
 *   4. on the old master, in one connection: REPLICAOF the new master, CLIENT KILL TYPE
 *      normal (clients reconnect through Sentinel to the new master), CLIENT UNPAUSE;
 *   5. wait until a majority of the Sentinels name the new master, and return it.
 *
 * On any failure before the failover request it unpauses and restores the priority, and
 * the old master stays master. After the request, if no new master appears in time: when
 * a replica already reports role master, the old master still follows it (unpausing it as
 * master could take writes the new master never sees); otherwise it unpauses.
 *
 * Every command is one the `operations` user may run (OPERATIONS_REDIS_COMMANDS,
 * OPERATIONS_SENTINEL_COMMANDS in lib/pod/acl.ts).
 */
import { Address, CliError, HaConnection, flat, formatAddress } from './connect';
import { parseReplicaLines } from './status';

export interface FailoverOptions {
  /** The replica to promote (as the master lists it); default: the online replica furthest along. */
  readonly to?: Address;
  /** How long the handover may take, the write pause included (the pause never outlasts it). */
  readonly timeoutMs: number;
  /** After the pause: how long a majority of the Sentinels may take to name the new master. Default timeoutMs. */
  readonly confirmTimeoutMs?: number;
  /** How long to wait for a Sentinel to see the target's replica-priority 1 before going on without. Default 3 s. */
  readonly priorityWaitMs?: number;
  readonly log?: (line: string) => void;
}

export interface FailoverResult {
  readonly oldMaster: string;
  readonly newMaster: string;
  /** How long writes were paused on the old master, in ms. */
  readonly pausedMs: number;
  /** The Sentinel asked to fail over. */
  readonly sentinel: string;
  /** How many Sentinels name the new master at the end, of how many. */
  readonly confirmedBy: number;
  readonly sentinels: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const field = (info: string, name: string): string | undefined => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
const key = (a: Address): string => formatAddress({ host: a.host.toLowerCase().replace(/\.$/, ''), port: a.port });

/** Sentinel's pick among SENTINEL REPLICAS (lowest priority not 0, then highest offset, then run id): "host:port", or undefined. */
export function promotionForecast(replicas: Record<string, string>[]): { address: string; priority: number } | undefined {
  const usable = replicas.filter((r) => r.flags === 'slave' && Number(r['slave-priority']) !== 0);
  usable.sort((a, b) => Number(a['slave-priority']) - Number(b['slave-priority'])
    || Number(b['slave-repl-offset']) - Number(a['slave-repl-offset'])
    || a.runid.toLowerCase().localeCompare(b.runid.toLowerCase()));
  const best = usable[0];
  return best ? { address: key({ host: best.ip, port: Number(best.port) }), priority: Number(best['slave-priority']) } : undefined;
}

/** The manual failover without losing writes (see the header). */
export async function safeFailover(conn: HaConnection, opts: FailoverOptions): Promise<FailoverResult> {
  const log = opts.log ?? (() => undefined);
  const name = conn.opts.masterName;
  const master = await conn.masterAddress();
  const { sentinels } = await conn.discoverSentinels();
  const oldName = formatAddress(master);

  // 1. The master, its replicas, the target, the Sentinel.
  const info = async (a: Address): Promise<string> => String(await conn.redisCommand(a, 'INFO', 'replication')).replace(/\r/g, '');
  const masterInfo = await info(master);
  if (field(masterInfo, 'role') !== 'master') {
    throw new CliError(`the Sentinels name ${conn.describe(master)} master, but it reports role ${field(masterInfo, 'role')}: a failover may be under way; run redis-ha status`);
  }
  const online = parseReplicaLines(masterInfo).filter((r) => r.state === 'online').map((r) => {
    const i = r.address.lastIndexOf(':');
    return { host: r.address.slice(0, i), port: Number(r.address.slice(i + 1)) };
  });
  if (!online.length) throw new CliError(`master ${oldName} has no online replica: there is nothing to fail over to`);
  const replicas = await Promise.all(online.map(async (a) => {
    const i = await info(a);
    const priority = Number((await conn.redisCommand<string[]>(a, 'CONFIG', 'GET', 'replica-priority'))[1]);
    return { address: a, offset: Number(field(i, 'slave_repl_offset')), link: field(i, 'master_link_status'), priority };
  }));
  let target = opts.to ? replicas.find((r) => key(r.address) === key(opts.to!)) : undefined;
  if (opts.to && !target) {
    throw new CliError(`--to ${formatAddress(opts.to)} is not an online replica of ${oldName}; its online replicas: ${replicas.map((r) => formatAddress(r.address)).join(', ')}`);
  }
  if (target && target.priority === 0) throw new CliError(`--to ${formatAddress(target.address)} has replica-priority 0: Sentinel never promotes it`);
  if (!target) {
    target = replicas.filter((r) => r.priority !== 0 && r.link === 'up')
      .sort((a, b) => b.offset - a.offset || a.priority - b.priority || key(a.address).localeCompare(key(b.address)))[0];
    if (!target) throw new CliError(`no online replica of ${oldName} may be promoted (link up, replica-priority not 0)`);
  }
  const targetName = formatAddress(target.address);
  const namingMaster: Address[] = [];
  await Promise.all(sentinels.map(async (s) => {
    const named = await conn.sentinelCommand<[string, string] | null>(s, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name).catch(() => null);
    if (named && key({ host: named[0], port: Number(named[1]) }) === key(master)) namingMaster.push(s);
  }));

  let priorityToRestore: number | undefined;
  const restorePriority = async (): Promise<void> => {
    if (priorityToRestore === undefined) return;
    const p = priorityToRestore;
    priorityToRestore = undefined;
    await conn.redisCommand(target!.address, 'CONFIG', 'SET', 'replica-priority', p).catch(() => undefined);
  };
  let paused = false;
  let requested = false;
  const giveUp = async (why: string): Promise<never> => {
    await restorePriority();
    if (paused) await conn.redisCommand(master, 'CLIENT', 'UNPAUSE').catch(() => undefined);
    throw new CliError(`failover abandoned: ${why}; ${paused ? 'writes resumed on' : 'nothing changed:'} ${oldName}${requested ? '' : ' is still master'}`);
  };

  try {
    if (target.priority !== 1) {
      await conn.redisCommand(target.address, 'CONFIG', 'SET', 'replica-priority', 1);
      priorityToRestore = target.priority;
    }
    log(`master ${oldName}; promoting ${targetName} (replica-priority 1 until the handover ends)`);

    // A Sentinel that names this master and, having seen the priority, would promote the target.
    let sentinel: Address | undefined;
    const seenBy = Date.now() + (opts.priorityWaitMs ?? 3000);
    while (!sentinel && Date.now() < seenBy) {
      for (const s of namingMaster) {
        const list = await conn.sentinelCommand<unknown[]>(s, 'SENTINEL', 'REPLICAS', name).catch(() => []);
        if (promotionForecast(list.map(flat))?.address === key(target.address)) { sentinel = s; break; }
      }
      if (!sentinel) await sleep(100);
    }
    if (!sentinel) {
      sentinel = namingMaster[0];
      if (!sentinel) return await giveUp('no Sentinel that names it master answers');
      log(`no Sentinel showed the new replica-priority of ${targetName} yet; every replica will have every write, so any choice loses nothing`);
    }
    const sentinelName = formatAddress(sentinel);

    // 2. Pause writes, wait for every online replica to have the whole stream.
    const deadline = Date.now() + opts.timeoutMs;
    await conn.redisCommand(master, 'CLIENT', 'PAUSE', Math.max(1000, Math.round(opts.timeoutMs)), 'WRITE');
    paused = true;
    const pausedAt = Date.now();
    for (;;) {
      const offset = Number(field(await info(master), 'master_repl_offset'));
      const offsets = await Promise.all(replicas.map(async (r) => Number(field(await info(r.address), 'slave_repl_offset'))));
      if (offsets.every((o) => o === offset)) break;
      if (Date.now() >= deadline) {
        return await giveUp(`the replicas did not catch up with the master's offset ${offset} within ${opts.timeoutMs} ms (${replicas.map((r, i) => `${formatAddress(r.address)} at ${offsets[i]}`).join(', ')})`);
      }
      await sleep(10);
    }
    log(`writes paused; every replica has the master's whole replication stream; asking Sentinel ${sentinelName} to fail over`);

    // 3. The failover.
    const reply = await conn.sentinelCommand(sentinel, 'SENTINEL', 'FAILOVER', name).catch((e: Error) => e.message);
    if (reply !== 'OK') return await giveUp(`Sentinel ${sentinelName} refused the failover: ${String(reply)}`);
    requested = true;
    let promoted: Address | undefined;
    while (!promoted) {
      const named = await conn.sentinelCommand<[string, string] | null>(sentinel, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name).catch(() => null);
      if (named && key({ host: named[0], port: Number(named[1]) }) !== key(master)) {
        const candidate = { host: named[0], port: Number(named[1]) };
        const role = await conn.redisCommand<unknown[]>(candidate, 'ROLE').catch(() => []);
        if (role[0] === 'master') promoted = candidate;
      }
      if (promoted) break;
      if (Date.now() >= deadline) {
        // A replica that reports master already: the old master must follow it, not take writes.
        const now = await Promise.all(replicas.map(async (r) => ((await conn.redisCommand<unknown[]>(r.address, 'ROLE').catch(() => []))[0] === 'master' ? r.address : undefined)));
        promoted = now.find((a) => a !== undefined);
        if (!promoted) {
          requested = false;
          return await giveUp(`Sentinel ${sentinelName} accepted the failover but named no new master within ${opts.timeoutMs} ms (Sentinel may still try until its failover-timeout; run redis-ha status)`);
        }
        log(`Sentinel ${sentinelName} named no new master in time, but ${formatAddress(promoted)} reports role master: the old master follows it`);
        break;
      }
      await sleep(20);
    }
    const newName = formatAddress(promoted);

    // 4. The old master follows the new one; its clients reconnect through Sentinel.
    await conn.redisCommand(master, 'REPLICAOF', promoted.host, promoted.port).catch((e: Error) => log(`REPLICAOF on ${oldName} failed (${e.message}); Sentinel will reconfigure it`));
    await conn.redisCommand(master, 'CLIENT', 'KILL', 'TYPE', 'normal').catch(() => undefined);
    await conn.redisCommand(master, 'CLIENT', 'UNPAUSE').catch(() => undefined);
    paused = false;
    const pausedMs = Date.now() - pausedAt;
    await restorePriority();
    log(`${newName} is master; ${oldName} follows it; writes were paused for ${pausedMs} ms`);

    // 5. A majority of the Sentinels name it.
    const majority = Math.floor(sentinels.length / 2) + 1;
    const confirmBy = Date.now() + (opts.confirmTimeoutMs ?? opts.timeoutMs);
    let confirmed = 0;
    for (;;) {
      const names = await Promise.all(sentinels.map((s) => conn.sentinelCommand<[string, string] | null>(s, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name).catch(() => null)));
      confirmed = names.filter((n) => n && key({ host: n[0], port: Number(n[1]) }) === key(promoted!)).length;
      if (confirmed >= majority) break;
      if (Date.now() >= confirmBy) {
        throw new CliError(`${newName} is master and ${oldName} follows it, but only ${confirmed} of the ${sentinels.length} Sentinels name it after ${opts.confirmTimeoutMs ?? opts.timeoutMs} ms; run redis-ha status`);
      }
      await sleep(100);
    }
    return { oldMaster: oldName, newMaster: newName, pausedMs, sentinel: sentinelName, confirmedBy: confirmed, sentinels: sentinels.length };
  } catch (err) {
    if (paused && !requested) {
      await restorePriority();
      await conn.redisCommand(master, 'CLIENT', 'UNPAUSE').catch(() => undefined);
      if (err instanceof CliError && !/^failover abandoned/.test(err.message)) throw new CliError(`failover abandoned: ${err.message}; writes resumed on ${oldName}, still master`);
    } else {
      await restorePriority();
    }
    throw err;
  }
}
