/**
 * `redis-ha status`: what the Sentinels and the Redis servers say, side by side, and what is
 * wrong. Everything is asked live, through the connection layer (connect.ts):
 *
 * - each Sentinel (the given ones and those they know): the master it names
 *   (GET-MASTER-ADDR-BY-NAME, which the failover leader switches first), its view
 *   (SENTINEL MASTER: flags, config epoch, how many replicas and other Sentinels it knows),
 *   the replicas it lists, and SENTINEL CKQUORUM (whether the quorum and a majority for
 *   failover authorisation are reachable from it);
 * - each Redis server the Sentinels name (master, replicas), and each replica the master
 *   streams to: ROLE and INFO replication (its offset, link state, seconds since the last
 *   interaction with its master; the master's ack lag in seconds).
 *
 * Phantom Sentinels: a Sentinel that knows more Sentinels than exist (a Sentinel replaced
 * under a new IP stays in the others' lists until SENTINEL RESET; the janitor resets them).
 * How many exist: `--sentinels N` when given; otherwise the number of distinct Sentinels
 * found, so a phantom then shows as a listed Sentinel that does not answer (down or
 * phantom: with --sentinels N the tool can tell).
 */
import { Address, CliError, HaConnection, flat, formatAddress } from './connect';

export interface StatusOptions {
  /** How many Sentinels the instance has (`--sentinels`); default: as many as are found. */
  readonly expectedSentinels?: number;
}

export interface RedisNodeStatus {
  readonly address: string;
  /** master, replica, or unreachable. */
  role: 'master' | 'replica' | 'unreachable' | string;
  error?: string;
  /** master_repl_offset (master) or slave_repl_offset (replica). */
  offset?: number;
  /** A replica's master (host:port as it was told). */
  masterAddress?: string;
  /** up or down (a replica's master_link_status). */
  link?: string;
  /** Bytes of the master's replication stream this replica has not processed yet. */
  lagBytes?: number;
  /** Seconds since the replica last heard from its master (master_last_io_seconds_ago). */
  lastIoSeconds?: number;
  /** Seconds since the master last had an acknowledgement from this replica (the master's lag=). */
  ackLagSeconds?: number;
  /** A master's connected_slaves. */
  connectedReplicas?: number;
}

export interface SentinelStatus {
  readonly address: string;
  reachable: boolean;
  error?: string;
  /** The master it names to clients (GET-MASTER-ADDR-BY-NAME). */
  master?: string;
  flags?: string;
  configEpoch?: number;
  quorum?: number;
  /** Sentinels it knows, itself included (num-other-sentinels + 1). */
  knownSentinels?: number;
  knownReplicas?: number;
  /** SENTINEL CKQUORUM's reply (OK ... or the error). */
  ckquorum?: string;
  ckquorumOk?: boolean;
}

export type Severity = 'degraded' | 'critical';
export interface Problem {
  readonly severity: Severity;
  readonly message: string;
}

export interface ClusterStatus {
  readonly masterName: string;
  /** The master a majority of the Sentinels names, if one does. */
  master: string | null;
  /** How many Sentinels name it, of how many exist. */
  masterVotes: number;
  sentinelCount: number;
  expectedSentinels: number | null;
  nodes: RedisNodeStatus[];
  sentinels: SentinelStatus[];
  problems: Problem[];
  healthy: boolean;
  /** STATUS_EXIT codes: 0 healthy, 3 degraded, 4 critical. */
  exitCode: number;
}

/** Exit codes of `redis-ha status` (1 and 2 are the CLI's: could not run, usage). */
export const STATUS_EXIT = { healthy: 0, degraded: 3, critical: 4 } as const;

const field = (info: string, name: string): string | undefined => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
const num = (v: string | undefined): number | undefined => (v === undefined || v === '' ? undefined : Number(v));

/** The lines `slaveN:ip=..,port=..,state=..,offset=..,lag=..` of a master's INFO replication. */
export function parseReplicaLines(info: string): { address: string; state: string; offset: number; lag: number }[] {
  const out: { address: string; state: string; offset: number; lag: number }[] = [];
  for (const m of info.matchAll(/^slave\d+:(.*)$/gm)) {
    const kv = Object.fromEntries(m[1].trim().split(',').map((p) => p.split('=') as [string, string]));
    out.push({ address: formatAddress({ host: kv.ip, port: Number(kv.port) }), state: kv.state, offset: Number(kv.offset), lag: Number(kv.lag) });
  }
  return out;
}

function toAddress(text: string): Address {
  const i = text.lastIndexOf(':');
  return { host: text.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(text.slice(i + 1)) };
}

/** Asks everything (see the header); never throws for one server that does not answer, only when no Sentinel does. */
export async function gatherStatus(conn: HaConnection, opts: StatusOptions = {}): Promise<ClusterStatus> {
  const name = conn.opts.masterName;
  const { sentinels: found, errors: seedErrors } = await conn.discoverSentinels();
  const replicaLists: string[][] = [];
  const sentinels: SentinelStatus[] = await Promise.all(found.map(async (addr): Promise<SentinelStatus> => {
    const s: SentinelStatus = { address: formatAddress(addr), reachable: false };
    try {
      const named = await conn.sentinelCommand<[string, string] | null>(addr, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name);
      s.reachable = true;
      if (named) s.master = formatAddress({ host: named[0], port: Number(named[1]) });
      const m = flat(await conn.sentinelCommand(addr, 'SENTINEL', 'MASTER', name));
      s.flags = m.flags;
      s.configEpoch = num(m['config-epoch']);
      s.quorum = num(m.quorum);
      s.knownSentinels = (num(m['num-other-sentinels']) ?? 0) + 1;
      s.knownReplicas = num(m['num-slaves']);
      const replicas = (await conn.sentinelCommand<unknown[]>(addr, 'SENTINEL', 'REPLICAS', name)).map(flat);
      replicaLists.push(replicas.map((r) => formatAddress({ host: r.ip, port: Number(r.port) })));
      try {
        s.ckquorum = String(await conn.sentinelCommand(addr, 'SENTINEL', 'CKQUORUM', name));
        s.ckquorumOk = /^OK/.test(s.ckquorum);
      } catch (err) {
        // NOPERM is the operator's to fix (a user without CKQUORUM): not a verdict on the quorum.
        if (/NOPERM/.test((err as Error).message)) throw err;
        s.ckquorum = (err as Error).message.replace(/^.* answered SENTINEL CKQUORUM with: /, '');
        s.ckquorumOk = false;
      }
    } catch (err) {
      if (err instanceof CliError && /NOPERM|No such master/.test(err.message)) {
        if (/No such master/.test(err.message)) throw await conn.unknownMasterError([addr]);
        throw err;
      }
      s.error = (err as Error).message;
    }
    return s;
  }));
  const answering = sentinels.filter((s) => s.reachable);
  if (!answering.length) {
    const why = [...new Set([...sentinels.map((s) => s.error!), ...seedErrors.values()])].join('; ');
    throw new CliError(`no Sentinel answered (tried ${[...new Set([...conn.opts.sentinels, ...found].map((a) => conn.describe(a)))].join(', ')}): ${why}; `
      + 'give reachable Sentinels with --sentinel HOST:PORT, or --map FROM=TO for addresses only reachable through a port-forward');
  }
  if (answering.every((s) => s.master === undefined)) throw await conn.unknownMasterError(found);

  const problems: Problem[] = [];
  const critical = (message: string) => problems.push({ severity: 'critical', message });
  const degraded = (message: string) => problems.push({ severity: 'degraded', message });

  // The master the Sentinels name.
  const votes = new Map<string, number>();
  for (const s of answering) if (s.master) votes.set(s.master, (votes.get(s.master) ?? 0) + 1);
  const [top, topVotes] = [...votes].sort((a, b) => b[1] - a[1])[0] ?? [null, 0];
  const majority = Math.floor(sentinels.length / 2) + 1;
  const master = top !== null && topVotes >= majority ? top : null;
  if (votes.size > 1) {
    (master ? degraded : critical)(`the Sentinels disagree about the master: ${[...votes].map(([m, n]) => `${n} name ${m}`).join(', ')}`);
  }
  if (!master) critical(`no majority of the ${sentinels.length} Sentinels names one master (${majority} needed)`);

  // The Redis servers: every master named, every replica listed by a Sentinel or the master.
  const addresses = new Set<string>([...votes.keys(), ...replicaLists.flat()]);
  const nodes = new Map<string, RedisNodeStatus>();
  const ask = async (address: string): Promise<RedisNodeStatus> => {
    const n: RedisNodeStatus = { address, role: 'unreachable' };
    try {
      const info = String(await conn.redisCommand(toAddress(address), 'INFO', 'replication')).replace(/\r/g, '');
      const role = field(info, 'role');
      n.role = role === 'slave' ? 'replica' : role ?? 'unknown';
      if (n.role === 'master') {
        n.offset = num(field(info, 'master_repl_offset'));
        n.connectedReplicas = num(field(info, 'connected_slaves'));
        for (const r of parseReplicaLines(info)) addresses.add(r.address);
      } else {
        n.offset = num(field(info, 'slave_repl_offset'));
        n.masterAddress = formatAddress({ host: field(info, 'master_host') ?? '?', port: Number(field(info, 'master_port')) });
        n.link = field(info, 'master_link_status');
        n.lastIoSeconds = num(field(info, 'master_last_io_seconds_ago'));
      }
      (n as { info?: string }).info = info;
    } catch (err) {
      n.error = (err as Error).message;
    }
    return n;
  };
  // The masters first: they list replicas the Sentinels may not know yet.
  for (const n of await Promise.all([...addresses].map(ask))) nodes.set(n.address, n);
  for (const n of await Promise.all([...addresses].filter((a) => !nodes.has(a)).map(ask))) nodes.set(n.address, n);

  const masters = [...nodes.values()].filter((n) => n.role === 'master');
  if (masters.length !== 1) critical(`${masters.length} Redis servers report role master${masters.length ? `: ${masters.map((n) => n.address).join(', ')}` : ''} (exactly one expected)`);
  if (master && nodes.get(master)?.role !== 'master') critical(`the Sentinels name ${master}, which reports ${nodes.get(master)?.role ?? 'nothing'}${nodes.get(master)?.error ? ` (${nodes.get(master)!.error})` : ''}`);

  // Replicas: link, lag, whom they follow.
  const actual = master && nodes.get(master)?.role === 'master' ? nodes.get(master)! : masters.length === 1 ? masters[0] : undefined;
  const masterInfo = (actual as { info?: string } | undefined)?.info ?? '';
  const streamed = new Map(parseReplicaLines(masterInfo).map((r) => [r.address, r]));
  for (const n of nodes.values()) {
    if (n === actual) continue;
    if (n.role === 'unreachable') { degraded(`Redis ${n.address} does not answer: ${n.error}`); continue; }
    if (n.role !== 'replica') continue;
    if (actual && n.offset !== undefined && actual.offset !== undefined) n.lagBytes = Math.max(0, actual.offset - n.offset);
    const s = streamed.get(n.address);
    if (s) n.ackLagSeconds = s.lag;
    if (n.link !== 'up') degraded(`replica ${n.address}: link to its master ${n.masterAddress} is ${n.link ?? 'unknown'}`);
    else if (actual && n.masterAddress !== actual.address && toAddress(n.masterAddress!).host !== toAddress(actual.address).host) {
      degraded(`replica ${n.address} replicates ${n.masterAddress}, not the master ${actual.address}`);
    }
  }
  for (const [address, r] of streamed) {
    if (r.state !== 'online') degraded(`the master streams to ${address} in state ${r.state}, not online`);
  }

  // Sentinels: answering, agreeing, the quorum, phantoms.
  const expected = opts.expectedSentinels ?? null;
  const exist = expected ?? sentinels.length;
  for (const s of sentinels) {
    if (!s.reachable) {
      const hint = expected === null ? ' (down, or a phantom the others still list: --sentinels N tells them apart)' : '';
      degraded(`Sentinel ${s.address} does not answer: ${s.error}${hint}`);
      continue;
    }
    if (s.ckquorumOk === false) critical(`Sentinel ${s.address}: CKQUORUM: ${s.ckquorum}`);
    if (s.flags && s.flags !== 'master') degraded(`Sentinel ${s.address} flags the master ${s.flags}`);
    if (s.knownSentinels !== undefined && s.knownSentinels > exist) {
      degraded(`Sentinel ${s.address} knows ${s.knownSentinels} Sentinels, ${exist} ${expected === null ? 'found' : 'expected'}: phantom Sentinels (SENTINEL RESET ${conn.opts.masterName} on it clears them; the janitor does it)`);
    } else if (s.knownSentinels !== undefined && s.knownSentinels < exist) {
      degraded(`Sentinel ${s.address} knows only ${s.knownSentinels} of the ${exist} Sentinels`);
    }
  }
  if (expected !== null && sentinels.length > expected) {
    degraded(`the Sentinels list ${sentinels.length} Sentinels, ${expected} expected: phantom Sentinels`);
  } else if (expected !== null && sentinels.length < expected) {
    degraded(`only ${sentinels.length} of the ${expected} expected Sentinels are known`);
  }

  for (const n of nodes.values()) delete (n as { info?: string }).info;
  const worst = problems.some((p) => p.severity === 'critical') ? 'critical' : problems.length ? 'degraded' : 'healthy';
  return {
    masterName: name, master, masterVotes: master ? votes.get(master)! : 0, sentinelCount: sentinels.length, expectedSentinels: expected,
    nodes: [...nodes.values()].sort((a, b) => (a.role === 'master' ? -1 : b.role === 'master' ? 1 : a.address.localeCompare(b.address))),
    sentinels: sentinels.sort((a, b) => a.address.localeCompare(b.address)),
    problems, healthy: problems.length === 0, exitCode: STATUS_EXIT[worst],
  };
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd()).join('\n');
}

const show = (v: unknown): string => (v === undefined || v === null ? '-' : String(v));

/** The table `redis-ha status` prints. */
export function formatStatus(s: ClusterStatus): string {
  const out: string[] = [];
  out.push(s.master
    ? `master ${s.masterName}: ${s.master} (named by ${s.masterVotes} of ${s.sentinelCount} Sentinels)`
    : `master ${s.masterName}: no majority of the ${s.sentinelCount} Sentinels names one`);
  out.push('');
  out.push(table([
    ['REDIS', 'ROLE', 'LINK', 'OFFSET', 'LAG BYTES', 'LAST IO S', 'ACK LAG S'],
    ...s.nodes.map((n) => [n.address, n.role, show(n.link), show(n.offset), show(n.lagBytes), show(n.lastIoSeconds), show(n.ackLagSeconds)]),
  ]));
  out.push('');
  out.push(table([
    ['SENTINEL', 'NAMES MASTER', 'EPOCH', 'FLAGS', 'SENTINELS', 'REPLICAS', 'CKQUORUM'],
    ...s.sentinels.map((x) => x.reachable
      ? [x.address, show(x.master), show(x.configEpoch), show(x.flags), show(x.knownSentinels), show(x.knownReplicas), x.ckquorumOk ? 'OK' : show(x.ckquorum)]
      : [x.address, 'unreachable', '-', '-', '-', '-', '-']),
  ]));
  out.push('');
  if (s.healthy) out.push('healthy');
  else out.push(`${s.exitCode === STATUS_EXIT.critical ? 'CRITICAL' : 'DEGRADED'}:`, ...s.problems.map((p) => `  - ${p.severity}: ${p.message}`));
  return out.join('\n');
}
