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
 * It refuses to start while a Sentinel reports a failover in progress. On any failure
 * before the failover request it unpauses and restores the priority, and the old master
 * stays master; when the request meets a failover already in progress (INPROG), it keeps
 * writes paused and follows that failover instead (unpausing then could lose writes). After the request, if no new master appears in time: when
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
  /**
   * How long to wait for a Sentinel to see the target's replica-priority 1: then, with `to`,
   * give up (nothing changed); without, go on (any replica has every write). Default 12 s
   * with `to`, 3 s without.
   */
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
/** With --to: how long a Sentinel may take to see the target's replica-priority (Sentinel's default INFO period to replicas is 10 s). */
const TO_PRIORITY_WAIT_MS = 12_000;
const field = (info: string, name: string): string | undefined => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
const key = (a: Address): string => formatAddress({ host: a.host.toLowerCase().replace(/\.$/, ''), port: a.port });

/**
 * Sentinel's pick among SENTINEL REPLICAS (lowest priority not 0, then highest offset, then
 * run id): "host:port", its priority as that Sentinel last saw it, and whether the priority
 * alone decides (every other candidate's is higher). Only such a pick holds through the
 * handover: once writes are paused every replica catches up, so offsets that made the
 * pick a moment ago end equal, and the run id decides instead.
 */
export function promotionForecast(replicas: Record<string, string>[]): { address: string; priority: number; byPriority: boolean } | undefined {
  const usable = replicas.filter((r) => r.flags === 'slave' && Number(r['slave-priority']) !== 0);
  usable.sort((a, b) => Number(a['slave-priority']) - Number(b['slave-priority'])
    || Number(b['slave-repl-offset']) - Number(a['slave-repl-offset'])
    || a.runid.toLowerCase().localeCompare(b.runid.toLowerCase()));
  const [best, next] = usable;
  if (!best) return undefined;
  const priority = Number(best['slave-priority']);
  return { address: key({ host: best.ip, port: Number(best.port) }), priority, byPriority: !next || Number(next['slave-priority']) > priority };
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
  const underWay: string[] = [];
  await Promise.all(sentinels.map(async (s) => {
    const named = await conn.sentinelCommand<[string, string] | null>(s, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name).catch(() => null);
    if (named && key({ host: named[0], port: Number(named[1]) }) === key(master)) namingMaster.push(s);
    const view = flat(await conn.sentinelCommand(s, 'SENTINEL', 'MASTER', name).catch(() => []));
    if (/failover_in_progress|promoted/.test(view.flags ?? '')) underWay.push(formatAddress(s));
  }));
  if (underWay.length) throw new CliError(`a failover is already under way (Sentinel ${underWay.join(', ')}): wait for it to end, then run redis-ha status`);

  let priorityToRestore: number | undefined;
  const restorePriority = async (): Promise<void> => {
    if (priorityToRestore === undefined) return;
    const p = priorityToRestore;
    priorityToRestore = undefined;
    await conn.redisCommand(target!.address, 'CONFIG', 'SET', 'replica-priority', p).catch(() => undefined);
  };
  let paused = false;
  let pausedAt = 0;
  let deadline = Date.now() + opts.timeoutMs;
  let sentinelName = '-';
  let following = false;
  /** Errors giveUp throws: final, not to be handled again. */
  const abandoned = new WeakSet<Error>();
  /**
   * Something failed. Paused, with another failover under way (a replica may be master
   * already), unpausing could take writes the new master never sees: follow it instead.
   * After this failover's request, a replica that reports master is followed too.
   * Otherwise: unpause, restore the priority, and say what happened.
   */
  const giveUp = async (why: string): Promise<FailoverResult> => {
    if (paused && !following && await otherFailover()) {
      log(`${why}; but a failover is under way: following it (writes stay paused until the new master is named)`);
      return follow();
    }
    if (paused && following) {
      const promoted = await replicaReportingMaster();
      if (promoted) {
        log(`${why}; but ${formatAddress(promoted)} reports role master: the old master follows it`);
        return finish(promoted);
      }
    }
    await restorePriority();
    if (paused) await conn.redisCommand(master, 'CLIENT', 'UNPAUSE').catch(() => undefined);
    paused = false;
    const e = new CliError(`failover abandoned: ${why}; ${pausedAt ? `writes on ${oldName} resumed` : 'nothing was changed'}`);
    abandoned.add(e);
    throw e;
  };
  const replicaReportingMaster = async (): Promise<Address | undefined> => {
    for (const r of replicas) if ((await conn.redisCommand<unknown[]>(r.address, 'ROLE').catch(() => []))[0] === 'master') return r.address;
    return undefined;
  };

  /** A master other than the old one: named by a Sentinel and reporting role master, or a replica that reports master. */
  const newMaster = async (): Promise<Address | undefined> => {
    const named = await Promise.all(sentinels.map((s) => conn.sentinelCommand<[string, string] | null>(s, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name).catch(() => null)));
    const candidates = new Map<string, Address>();
    for (const n of named) if (n && key({ host: n[0], port: Number(n[1]) }) !== key(master)) candidates.set(key({ host: n[0], port: Number(n[1]) }), { host: n[0], port: Number(n[1]) });
    for (const c of candidates.values()) {
      if ((await conn.redisCommand<unknown[]>(c, 'ROLE').catch(() => []))[0] === 'master') return c;
    }
    return undefined;
  };
  /** Whether a failover other than this one's is under way or done: a Sentinel names another master or flags one in progress, or a replica reports master. */
  const otherFailover = async (): Promise<boolean> => {
    for (const s of sentinels) {
      const n = await conn.sentinelCommand<[string, string] | null>(s, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name).catch(() => null);
      if (n && key({ host: n[0], port: Number(n[1]) }) !== key(master)) return true;
      const view = flat(await conn.sentinelCommand(s, 'SENTINEL', 'MASTER', name).catch(() => []));
      if (/failover_in_progress|promoted/.test(view.flags ?? '')) return true;
    }
    for (const r of replicas) if ((await conn.redisCommand<unknown[]>(r.address, 'ROLE').catch(() => []))[0] === 'master') return true;
    return false;
  };

  /**
   * 3b-5: with writes paused and every replica holding every write, waits for the new master
   * (of this failover or of one already under way), makes the old master follow it, unpauses,
   * and waits for a majority of the Sentinels to name it.
   */
  const follow = async (): Promise<FailoverResult> => {
    following = true;
    let promoted: Address | undefined;
    while (!(promoted = await newMaster())) {
      if (Date.now() >= deadline) {
        return giveUp(`the Sentinels named no new master within ${opts.timeoutMs} ms (Sentinel may still try until its failover-timeout; run redis-ha status)`);
      }
      await sleep(20);
    }
    return finish(promoted);
  };
  const finish = async (promoted: Address): Promise<FailoverResult> => {
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
    const confirmMs = opts.confirmTimeoutMs ?? opts.timeoutMs;
    const confirmBy = Date.now() + confirmMs;
    let confirmed = 0;
    for (;;) {
      const names = await Promise.all(sentinels.map((s) => conn.sentinelCommand<[string, string] | null>(s, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name).catch(() => null)));
      confirmed = names.filter((n) => n && key({ host: n[0], port: Number(n[1]) }) === key(promoted!)).length;
      if (confirmed >= majority) break;
      if (Date.now() >= confirmBy) {
        throw new CliError(`${newName} is master and ${oldName} follows it, but only ${confirmed} of the ${sentinels.length} Sentinels name it after ${confirmMs} ms; run redis-ha status`);
      }
      await sleep(100);
    }
    return { oldMaster: oldName, newMaster: newName, pausedMs, sentinel: sentinelName, confirmedBy: confirmed, sentinels: sentinels.length };
  };

  try {
    if (target.priority !== 1) {
      await conn.redisCommand(target.address, 'CONFIG', 'SET', 'replica-priority', 1);
      priorityToRestore = target.priority;
    }
    log(`master ${oldName}; promoting ${targetName} (replica-priority 1 until the handover ends)`);

    // A Sentinel that names this master and, having seen the priority, would promote the
    // target whatever the offsets (they end equal once writes are paused).
    let sentinel: Address | undefined;
    const waitMs = opts.priorityWaitMs ?? (opts.to ? TO_PRIORITY_WAIT_MS : 3000);
    const seenBy = Date.now() + waitMs;
    while (!sentinel && Date.now() < seenBy) {
      for (const s of namingMaster) {
        const list = await conn.sentinelCommand<unknown[]>(s, 'SENTINEL', 'REPLICAS', name).catch(() => []);
        const forecast = promotionForecast(list.map(flat));
        if (forecast?.byPriority && forecast.address === key(target.address)) { sentinel = s; break; }
      }
      if (!sentinel) await sleep(100);
    }
    if (!sentinel && opts.to) {
      // Asked for this replica: promoting another would do what the operator did not ask.
      return giveUp(`no Sentinel showed the new replica-priority of ${targetName} within ${waitMs} ms, so Sentinel could promote another replica; run it again, or leave out --to`);
    }
    if (!sentinel) {
      sentinel = namingMaster[0];
      if (!sentinel) return giveUp('no Sentinel that names it master answers');
      log(`no Sentinel showed the new replica-priority of ${targetName} yet; every replica will have every write, so any choice loses nothing`);
    }
    sentinelName = formatAddress(sentinel);

    // 2. Pause writes, wait for every online replica to have the whole stream.
    deadline = Date.now() + opts.timeoutMs;
    await conn.redisCommand(master, 'CLIENT', 'PAUSE', Math.max(1000, Math.round(opts.timeoutMs)), 'WRITE');
    paused = true;
    pausedAt = Date.now();
    // Still the master, and still the one the Sentinel names (another failover may have ended meanwhile)?
    const stillNamed = await conn.sentinelCommand<[string, string] | null>(sentinel, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name).catch(() => null);
    if (field(await info(master), 'role') !== 'master' || !stillNamed || key({ host: stillNamed[0], port: Number(stillNamed[1]) }) !== key(master)) {
      return giveUp(`${oldName} is no longer the master Sentinel ${sentinelName} names (another failover?); run redis-ha status`);
    }
    for (;;) {
      const offset = Number(field(await info(master), 'master_repl_offset'));
      const offsets = await Promise.all(replicas.map(async (r) => Number(field(await info(r.address), 'slave_repl_offset'))));
      if (offsets.every((o) => o === offset)) break;
      if (Date.now() >= deadline) {
        return giveUp(`the replicas did not catch up with the master's offset ${offset} within ${opts.timeoutMs} ms (${replicas.map((r, i) => `${formatAddress(r.address)} at ${offsets[i]}`).join(', ')})`);
      }
      await sleep(10);
    }
    log(`writes paused; every replica has the master's whole replication stream; asking Sentinel ${sentinelName} to fail over`);

    // 3. The failover.
    const reply = await conn.sentinelCommand(sentinel, 'SENTINEL', 'FAILOVER', name).catch((e: Error) => e.message);
    if (reply !== 'OK' && /INPROG/.test(String(reply))) {
      // Another failover started meanwhile (another operator, or Sentinel itself): a replica
      // may be master already, so unpausing could take writes the new master never sees.
      // Every replica has every write: follow that failover as if it were this one.
      log(`Sentinel ${sentinelName}: a failover is already in progress; following it (writes stay paused until the new master is named)`);
    } else if (reply !== 'OK') {
      return giveUp(`Sentinel ${sentinelName} refused the failover: ${String(reply)}`);
    }
    return await follow();
  } catch (err) {
    if (abandoned.has(err as Error) || !paused) {
      await restorePriority();
      throw err;
    }
    return giveUp((err as Error).message);
  }
}
