// A described world for the script unit tests: which Redis servers and Sentinels exist and
// what each answers, served to the scripts by one stand-in redis-cli
// (stand-in-redis-cli.sh), with stand-in getent (the Sentinel Service lists the Sentinels
// of the world), redis-server and redis-sentinel (print the config they were given). The
// scripts run with the environment the contract gives their container
// (lib/pod/contract.ts), with the mounted paths moved into the world's directory.
import { afterEach } from 'vitest';
import { spawn, spawnSync, SpawnSyncReturns } from 'child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import type { k8s } from 'cdk8s-plus-28';
import { redisAclUsersFile, sentinelAclUsersFile } from '../../../lib/pod/acl';
import {
  guardContainerEnv, janitorContainerEnv, MOUNTS, RedisPodContract, redisContainerEnv, SentinelPodContract, sentinelContainerEnv,
} from '../../../lib/pod/contract';
import { SCRIPTS_DIR } from './shell-source';

export const NAMESPACE = 'ns';
export const MASTER_NAME = 'mymaster';
export const REDIS_PORT = 6379;
export const SENTINEL_PORT = 26379;
export const REDIS_PODS = ['redis-master-0.redis-master', 'redis-slave-0.redis-slave', 'redis-slave-1.redis-slave'];

/** `redis-master-0` or `redis-master-0.redis-master` -> its fully qualified DNS name. */
export function fqdn(pod: string): string {
  const short = pod.includes('.') ? pod : `${pod}.${pod.replace(/-\d+$/, '')}`;
  return `${short}.${NAMESPACE}.svc.cluster.local`;
}
export const MASTER0 = fqdn('redis-master-0');
export const SLAVE0 = fqdn('redis-slave-0');
export const SLAVE1 = fqdn('redis-slave-1');

/** The mounted auth Secret of every world: one password per user (lib/pod/acl.ts). */
export const PASSWORDS: Record<string, string> = {
  'app-password': 'app-secret',
  'replication-password': 'replication-secret',
  'sentinel-password': 'sentinel-secret',
  'operations-password': 'operations-secret',
  'metrics-password': 'metrics-secret',
};

/** A Redis server as INFO, ROLE, PING and CONFIG GET show it. */
export interface RedisServer {
  readonly role?: 'master' | 'slave';
  readonly keys?: number;
  readonly loading?: boolean;
  /** A replica's master (its DNS name). */
  readonly masterHost?: string;
  readonly link?: 'up' | 'down';
  readonly syncing?: boolean;
  readonly replid?: string;
  readonly replid2?: string;
  readonly offset?: number;
  /** A master's replicas, each online and acknowledged within the last second. */
  readonly replicas?: readonly string[];
  readonly runId?: string;
  readonly uptime?: number;
  readonly priority?: number;
  readonly minReplicasToWrite?: number;
  /** Its answer to PING (default PONG). */
  readonly ping?: string;
}

/** One replica as a Sentinel lists it in SENTINEL REPLICAS. */
export interface SentinelReplica {
  readonly name: string;
  readonly runid: string;
  readonly offset: number;
  readonly age: number;
  readonly flags?: string;
  readonly priority?: number;
  readonly link?: string;
}

/** A Sentinel: the master it monitors (none: it does not know one), its replicas and peers. */
export interface SentinelServer {
  readonly master?: { readonly host: string; readonly epoch: number; readonly flags?: string; readonly otherSentinels?: number; readonly roleReported?: string };
  readonly replicas?: readonly SentinelReplica[];
  /** The other Sentinels it knows, with their flags ("sentinel", "s_down,sentinel", ...). */
  readonly peers?: readonly string[];
  /** SENTINEL DEBUG periods (upper-case names as Sentinel prints them). */
  readonly debug?: Record<string, number>;
}

const crlf = (lines: string[]) => `${lines.join('\r\n')}\r\n`;
const raw = (fields: (string | number)[]) => `${fields.join('\n')}\n`;

function replicationSection(s: RedisServer): string[] {
  const offset = s.offset ?? 100;
  const ids = [`master_replid:${s.replid ?? 'a'.repeat(40)}`, `master_replid2:${s.replid2 ?? '0'.repeat(40)}`, `master_repl_offset:${offset}`];
  if ((s.role ?? 'master') === 'master') {
    const replicas = s.replicas ?? [];
    return ['# Replication', 'role:master', `connected_slaves:${replicas.length}`,
      ...replicas.map((r, i) => `slave${i}:ip=${r},port=${REDIS_PORT},state=online,offset=${offset},lag=0`), ...ids];
  }
  return ['# Replication', 'role:slave', `master_host:${s.masterHost ?? MASTER0}`, `master_port:${REDIS_PORT}`,
    `master_link_status:${s.link ?? 'up'}`, 'master_last_io_seconds_ago:0', `master_sync_in_progress:${s.syncing ? 1 : 0}`,
    `slave_repl_offset:${offset}`, `slave_priority:${s.priority ?? 100}`, ...ids];
}

/** SENTINEL REPLICAS as `redis-cli --raw` prints it: one field name or value per line. */
export function sentinelReplicasReply(replicas: readonly SentinelReplica[]): string {
  return replicas.map((r) => raw([
    'name', r.name, 'ip', r.name.replace(/:\d+$/, ''), 'port', REDIS_PORT, 'runid', r.runid, 'flags', r.flags ?? 'slave',
    'link-pending-commands', 0, 'link-refcount', 1, 'last-ping-sent', 0, 'last-ok-ping-reply', 120,
    'last-ping-reply', 120, 'down-after-milliseconds', 5000, 'info-refresh', r.age,
    'role-reported', 'slave', 'role-reported-time', 90000, 'master-link-down-time', 0,
    'master-link-status', r.link ?? 'ok', 'master-host', MASTER0, 'master-port', REDIS_PORT,
    'slave-priority', r.priority ?? 100, 'slave-repl-offset', r.offset, 'replica-announced', 1,
  ])).join('');
}

/** A `newWorld()` for a test file: each world it makes is removed after its test. */
export function useWorlds(): () => World {
  const worlds: World[] = [];
  afterEach(() => {
    for (const w of worlds.splice(0)) w.remove();
  });
  return () => {
    const w = new World();
    worlds.push(w);
    return w;
  };
}

export class World {
  readonly dir = mkdtempSync(join(tmpdir(), 'redis-world-'));
  private readonly bin = join(this.dir, 'bin');

  constructor() {
    mkdirSync(this.bin);
    mkdirSync(join(this.dir, 'hosts'));
    copyFileSync(join(__dirname, 'stand-in-redis-cli.sh'), join(this.bin, 'redis-cli'));
    writeFileSync(join(this.bin, 'getent'), `#!/bin/sh
# getent ahostsv4 NAME: every Sentinel of the world (the headless Service's addresses).
for d in "${this.dir}"/hosts/*:${SENTINEL_PORT}; do
  [ -d "$d" ] || continue
  d="\${d##*/}"
  echo "\${d%:*} STREAM $2"
done
`);
    writeFileSync(join(this.bin, 'redis-server'), '#!/bin/sh\ncat "$1"\n');
    writeFileSync(join(this.bin, 'redis-sentinel'), '#!/bin/sh\ncat "$1"\n');
    for (const f of ['redis-cli', 'getent', 'redis-server', 'redis-sentinel']) chmodSync(join(this.bin, f), 0o755);
    for (const [key, value] of Object.entries(PASSWORDS)) writeFileSync(this.path(MOUNTS.auth, key), value);
  }

  private server(host: string, port: number): string {
    const d = join(this.dir, 'hosts', `${host}:${port}`);
    if (!existsSync(d)) {
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'users'), `operations ${PASSWORDS['operations-password']}\n`);
    }
    return d;
  }

  /** The "<user> <password>" pairs a server accepts (every server starts with operations and its current password). */
  accepts(host: string, port: number, pairs: [string, string][]): this {
    writeFileSync(join(this.server(host, port), 'users'), pairs.map(([u, p]) => `${u} ${p}\n`).join(''));
    return this;
  }

  /** Sets (or with undefined removes) a key of the mounted auth Secret. */
  secret(key: string, value: string | undefined): this {
    const f = this.path(MOUNTS.auth, key);
    if (value === undefined) rmSync(f, { force: true });
    else writeFileSync(f, value);
    return this;
  }

  /** Every command the scripts sent, as "<host> <user> <command>" (user "-": not logged in). */
  authCalls(): string[] {
    const f = join(this.dir, 'auth-calls');
    return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').filter(Boolean) : [];
  }

  /** A Redis server at HOST (its DNS name), answering as described. Describing it again changes its answers. */
  redis(host: string, s: RedisServer = {}): this {
    const role = s.role ?? 'master';
    const server = ['# Server', `run_id:${s.runId ?? 'r'.repeat(40)}`, `uptime_in_seconds:${s.uptime ?? 3600}`];
    const persistence = ['# Persistence', `loading:${s.loading ? 1 : 0}`];
    const keyspace = ['# Keyspace', ...(s.keys ? [`db0:keys=${s.keys},expires=0,avg_ttl=0`] : [])];
    const offset = s.offset ?? 100;
    const roleReply = role === 'master'
      ? raw(['master', offset, ...(s.replicas ?? []).flatMap((r) => [r, REDIS_PORT, offset])])
      : raw(['slave', s.masterHost ?? MASTER0, REDIS_PORT, 'connected', offset]);
    return this.replies(host, REDIS_PORT, {
      PING: `${s.ping ?? 'PONG'}\n`,
      INFO: crlf([...server, ...persistence, ...replicationSection(s), ...keyspace]),
      INFO_server: crlf(server),
      INFO_replication: crlf(replicationSection(s)),
      ROLE: roleReply,
      DBSIZE: `${s.keys ?? 0}\n`,
      'CONFIG_GET_replica-priority': raw(['replica-priority', s.priority ?? 100]),
      'CONFIG_GET_min-replicas-to-write': raw(['min-replicas-to-write', s.minReplicasToWrite ?? 1]),
      // As the start script writes it (no rotation under way).
      CONFIG_GET_masterauth: raw(['masterauth', PASSWORDS['replication-password']]),
    });
  }

  /** A Sentinel at ADDR (an IP), answering as described. */
  sentinel(addr: string, s: SentinelServer = {}): this {
    const m = s.master;
    const replies: Record<string, string> = {
      PING: 'PONG\n',
      SENTINEL_DEBUG: raw(Object.entries(s.debug ?? { 'INFO-PERIOD': 10000 }).flat()),
      [`SENTINEL_REPLICAS_${MASTER_NAME}`]: sentinelReplicasReply(s.replicas ?? []),
      [`SENTINEL_SENTINELS_${MASTER_NAME}`]: (s.peers ?? []).map((flags, i) => raw([
        'name', `peer${i}`, 'ip', `10.0.9.${i}`, 'port', SENTINEL_PORT, 'flags', flags])).join(''),
    };
    if (m) {
      replies[`SENTINEL_MASTER_${MASTER_NAME}`] = raw(['name', MASTER_NAME, 'ip', m.host, 'port', REDIS_PORT,
        'flags', m.flags ?? 'master', 'role-reported', m.roleReported ?? 'master', 'num-other-sentinels', m.otherSentinels ?? 2, 'config-epoch', m.epoch]);
      replies[`SENTINEL_GET-MASTER-ADDR-BY-NAME_${MASTER_NAME}`] = raw([m.host, REDIS_PORT]);
    } else {
      replies[`SENTINEL_MASTER_${MASTER_NAME}`] = `ERR No such master with that name\n`;
      replies[`SENTINEL_GET-MASTER-ADDR-BY-NAME_${MASTER_NAME}`] = '';
    }
    return this.replies(addr, SENTINEL_PORT, replies);
  }

  /** Raw replies of one server, by command (words joined by "_"; a key ending in ".sh" is a script). */
  replies(host: string, port: number, replies: Record<string, string>): this {
    const d = this.server(host, port);
    for (const [key, reply] of Object.entries(replies)) writeFileSync(join(d, key), reply);
    return this;
  }

  /** The server stops answering (connection refused). */
  down(host: string, port = host.includes('.svc.') ? REDIS_PORT : SENTINEL_PORT): this {
    rmSync(join(this.dir, 'hosts', `${host}:${port}`), { recursive: true, force: true });
    return this;
  }

  /** What a server holds now: a reply file or its state (acl-users, CONFIG_GET_<name>, SENTINEL_DEBUG). */
  file(host: string, key: string, port = host.includes('.svc.') ? REDIS_PORT : SENTINEL_PORT): string {
    const f = join(this.dir, 'hosts', `${host}:${port}`, key);
    return existsSync(f) ? readFileSync(f, 'utf8') : '';
  }

  /** Every command the scripts sent, as "<host> <command>", in order. */
  calls(host?: string): string[] {
    const f = join(this.dir, 'calls');
    const all = existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').filter(Boolean) : [];
    return host === undefined ? all : all.filter((c) => c.startsWith(`${host} `)).map((c) => c.slice(host.length + 1));
  }

  /** A path inside a container, moved into the world (per pod for the pods' own volumes). */
  path(mounted: string, file: string, pod = ''): string {
    const dir = join(this.dir, 'mounts', pod, mounted);
    mkdirSync(dir, { recursive: true });
    return join(dir, file);
  }

  /** The environment of a container from the contract, its mounts moved into the world. */
  private environment(vars: k8s.EnvVar[], pod: string, fields: Record<string, string>, extra: Record<string, string>): Record<string, string> {
    const env: Record<string, string> = { PATH: `${this.bin}:${process.env.PATH}`, HOOK_LOG: '/nonexistent' };
    const mounts = Object.values(MOUNTS).sort((a, b) => b.length - a.length);
    for (const v of vars) {
      if (v.valueFrom?.fieldRef) { env[v.name] = fields[v.valueFrom.fieldRef.fieldPath]; continue; }
      let value = v.value ?? '';
      const mount = mounts.find((m) => value === m || value.startsWith(`${m}/`));
      if (mount) {
        const perPod = mount !== MOUNTS.auth;
        const dir = join(this.dir, 'mounts', perPod ? pod : '', mount);
        mkdirSync(dir, { recursive: true });
        value = dir + value.slice(mount.length);
      }
      env[v.name] = value;
    }
    return { ...env, ...extra };
  }

  /** The ConfigMap's acl-users file in place, as the constructs render it. */
  private withAclUsers(env: Record<string, string>, content: string): Record<string, string> {
    if (env.ACL_USERS_FILE && !existsSync(env.ACL_USERS_FILE)) writeFileSync(env.ACL_USERS_FILE, content);
    return env;
  }

  private redisContract(pod: string, extra: Partial<RedisPodContract>): RedisPodContract {
    return {
      governingService: pod.replace(/-\d+$/, ''), bootstrapMaster: REDIS_PODS[0], redisPods: REDIS_PODS,
      sentinelService: 'redis-sentinel-headless', masterName: MASTER_NAME, clusterDomain: 'cluster.local',
      redisPort: REDIS_PORT, sentinelPort: SENTINEL_PORT, sentinelCount: 3, sentinelQuorum: 2, failoverWaitSeconds: 20,
      handoverTimeoutSeconds: 3, shutdownGateTimeoutSeconds: 5, authSecretName: 'redis-auth', metrics: true, ...extra,
    };
  }

  private sentinelContract(extra: Partial<SentinelPodContract>): SentinelPodContract {
    return {
      sentinelService: 'redis-sentinel-headless', redisPods: REDIS_PODS, masterName: MASTER_NAME, clusterDomain: 'cluster.local',
      redisPort: REDIS_PORT, sentinelPort: SENTINEL_PORT, sentinelCount: 3, janitorIntervalSeconds: 5, authSecretName: 'redis-auth', metrics: true, ...extra,
    };
  }

  /**
   * The environment of a Redis pod's container (`redis` or `guard`) named POD
   * (redis-master-0, ...); 127.0.0.1 is that pod's server. `contract` changes the
   * contract's inputs, `extra` sets variables directly.
   */
  redisEnv(pod: string, opts: { container?: 'redis' | 'guard'; contract?: Partial<RedisPodContract>; extra?: Record<string, string> } = {}): Record<string, string> {
    const c = this.redisContract(pod, opts.contract ?? {});
    const vars = opts.container === 'guard' ? guardContainerEnv(c) : redisContainerEnv(c);
    const fields = { 'metadata.name': pod, 'metadata.namespace': NAMESPACE, 'status.podIP': '10.1.0.9' };
    return this.withAclUsers(this.environment(vars, pod, fields, { STANDIN_SELF: fqdn(pod), ...opts.extra }), redisAclUsersFile(c.metrics ?? false));
  }

  /** The environment of a Sentinel pod's container (`sentinel` or `janitor`) whose IP is ADDR. */
  sentinelEnv(addr: string, opts: { container?: 'sentinel' | 'janitor'; contract?: Partial<SentinelPodContract>; extra?: Record<string, string> } = {}): Record<string, string> {
    const c = this.sentinelContract(opts.contract ?? {});
    const vars = opts.container === 'janitor' ? janitorContainerEnv(c) : sentinelContainerEnv(c);
    const fields = { 'metadata.namespace': NAMESPACE, 'status.podIP': addr };
    return this.withAclUsers(this.environment(vars, `sentinel-${addr}`, fields, { STANDIN_SELF: addr, ...opts.extra }), sentinelAclUsersFile(c.metrics ?? false));
  }

  /** Runs shell code after sourcing these script files (common.sh first); throws unless it exits 0. */
  functions(files: string[], code: string, env: Record<string, string>, stdin = ''): SpawnSyncReturns<string> {
    const sources = files.map((f) => `. "${join(SCRIPTS_DIR, f)}"`).join('; ');
    const r = spawnSync('sh', ['-c', `set -eu; ${sources}; ${code}`], { input: stdin, encoding: 'utf8', env });
    if (r.status !== 0) throw new Error(`sh exited ${r.status}: ${r.stderr}`);
    return r;
  }

  /** Runs a script to its end. */
  script(name: string, env: Record<string, string>, args: string[] = [], timeoutMs = 30_000): SpawnSyncReturns<string> {
    return spawnSync('sh', [join(SCRIPTS_DIR, name), ...args], { encoding: 'utf8', env, timeout: timeoutMs });
  }

  /** Runs a script in the background; resolves with its log (stderr) once it ends. */
  scriptAsync(name: string, env: Record<string, string>): Promise<string> {
    return new Promise((resolve) => {
      const child = spawn('sh', [join(SCRIPTS_DIR, name)], { env });
      let log = '';
      child.stderr.on('data', (d) => { log += d; });
      child.on('close', () => resolve(log));
    });
  }

  /**
   * Makes every server of this world accept TLS only (the tls prop): a redis-cli call
   * without `--tls --cacert CA_FILE` is refused, and recorded as "<host> plaintext-refused ...".
   */
  tlsOnly(caFile: string): this {
    writeFileSync(join(this.dir, 'tls-ca'), caFile);
    return this;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
