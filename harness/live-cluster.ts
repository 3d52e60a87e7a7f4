import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { RedisHaSettings } from '../lib/constructs/redis-ha-settings';
import { TLS_FILES, TLS_PATHS } from '../lib/pod/contract';
import { writeTree } from '../lib/output/write-files';
import { SimCluster } from './sim';
import { waitFor } from './sim/util';

/**
 * What the live suite (test/live) and the failover benchmark (bench/failover.ts) share:
 * start an environment's rendered overlay in the simulator, drive the in-cluster client
 * agent (client-agent.cjs), and describe the cluster when something goes wrong.
 */

/** The repository root (this file also runs bundled from build/, so look for package.json). */
export const ROOT = (() => {
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
  }
  throw new Error(`no package.json above ${__dirname}`);
})();
export const MASTER_NAME = 'mymaster';
/** A line the pod scripts log (common.sh's log): "<UTC time> <script>: <message>". */
const SCRIPT_LOG_LINE = /^\d{4}-\d\d-\d\dT[\d:]+Z [a-z-]+: /;
/** The auth Secret the overlays name (authSecretName's default). */
export const AUTH_SECRET = 'redis-auth';
/** The ACL users, each with its key `<user>-password` in the auth Secret (lib/pod/acl.ts). */
export const USERS = ['app', 'replication', 'sentinel', 'operations', 'metrics', 'proxy'] as const;
export type User = typeof USERS[number];

/**
 * Shell, inside a Redis or Sentinel pod: redis-cli under `timeout`, logged in as USER with
 * the password from the pod's mounted Secret, passed in REDISCLI_AUTH (never on the command line).
 */
export function cliAs(user: User, timeoutSeconds = 3): string {
  return `REDISCLI_AUTH="$(cat /etc/redis-auth/${user}-password)" timeout ${timeoutSeconds} redis-cli --no-auth-warning --user ${user}`;
}
/** The labels the instance's NetworkPolicies admit as clients (clientLabels' default for the instance `redis`). */
export const CLIENT_LABELS = { 'redis-client': 'true' };

// The write figures are shared with `redis-ha drill` (lib/ops/writes.ts).
import type { WriteRecord } from '../lib/ops/writes';
export type { WriteRecord };
export { confirmedWrites, longestGap, longestPause, writeOutage } from '../lib/ops/writes';

/** The Sentinel-aware application in its own client pod, driven over IPC. */
export class Agent {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  /** The agent's own stdout/stderr, kept for failure reports. */
  output = '';

  constructor(private readonly proc: import('node:child_process').ChildProcess) {
    const keep = (chunk: Buffer) => { this.output = (this.output + chunk.toString()).slice(-20_000); };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    proc.on('message', (m: any) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(m.error));
    });
    proc.on('error', (err) => { this.output += `\n(client agent: ${err.message})`; });
    proc.on('exit', (code, signal) => {
      this.output += `\n(client agent exited: code ${code}, signal ${signal})`;
      for (const p of this.pending.values()) p.reject(new Error('client agent exited'));
      this.pending.clear();
    });
  }

  call<T = any>(op: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`client agent: ${op} timed out after ${timeoutMs}ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      if (!this.proc.connected) {
        this.pending.delete(id);
        clearTimeout(timer);
        reject(new Error(`client agent is not running: ${this.output.slice(-500)}`));
        return;
      }
      // With a callback, a send to an agent that just died rejects instead of raising EPIPE.
      this.proc.send({ id, op, ...args }, (err) => {
        if (!err || !this.pending.has(id)) return;
        this.pending.delete(id);
        clearTimeout(timer);
        reject(new Error(`client agent: cannot send ${op}: ${err.message}`));
      });
    });
  }
}

export interface NodeView { role: string; roleReply?: any[]; info?: string; error?: string }
export interface SentinelView {
  master?: Record<string, string>;
  /** GET-MASTER-ADDR-BY-NAME: what clients are told (the leader names the promoted replica before its MASTER output switches). */
  address?: [string, string];
  replicas?: Record<string, string>[];
  sentinels?: Record<string, string>[];
  ckquorum?: string;
  error?: string;
}
export interface ClusterView { nodes: Record<string, NodeView>; sentinels: Record<string, SentinelView> }

/** One Redis process's replication counters (INFO stats), served as a master since it started. */
export interface SyncCounters { runId: string; full: number; partialOk: number; partialErr: number }
export interface Resyncs { full: number; partialOk: number; partialErr: number }

/**
 * Resynchronisations served between two syncCounters() readings, summed over the nodes. A node
 * whose process changed (other run_id: restarted or recreated) counts from zero; a node
 * unreadable at either end is left out.
 */
export function resyncsBetween(before: Record<string, SyncCounters>, after: Record<string, SyncCounters>): Resyncs {
  const total: Resyncs = { full: 0, partialOk: 0, partialErr: 0 };
  for (const [pod, a] of Object.entries(after)) {
    const b = before[pod]?.runId === a.runId ? before[pod] : { full: 0, partialOk: 0, partialErr: 0 };
    total.full += a.full - b.full;
    total.partialOk += a.partialOk - b.partialOk;
    total.partialErr += a.partialErr - b.partialErr;
  }
  return total;
}

/** The TLS Secret of a cluster started with `tls` (the files of a `kubernetes.io/tls` Secret, PEM). */
export const TLS_SECRET = 'redis-tls';
export interface TlsFiles { 'tls.crt': string; 'tls.key': string; 'ca.crt': string }

/**
 * A test CA and a server certificate signed by it, made with openssl in a temporary
 * directory (removed again): the certificate names every DNS name in `dnsNames` plus
 * localhost and 127.0.0.1, and serves as server and client certificate (Redis and
 * Sentinel present it to each other).
 */
export function makeTestCertificates(dnsNames: string[]): TlsFiles {
  const dir = mkdtempSync(join(tmpdir(), 'redis-ha-tls-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=redis-ha test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    openssl('req', ...ec, '-keyout', 'tls.key', '-out', 'tls.csr', '-subj', '/CN=redis-ha');
    writeFileSync(join(dir, 'ext.cnf'), [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth,clientAuth',
      `subjectAltName=${[...dnsNames, 'localhost'].map((n) => `DNS:${n}`).join(',')},IP:127.0.0.1`,
    ].join('\n') + '\n');
    openssl('x509', '-req', '-in', 'tls.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'tls.crt', '-days', '2',
      '-extfile', 'ext.cnf');
    const read = (f: string) => readFileSync(join(dir, f), 'utf8');
    return { [TLS_FILES.cert]: read('tls.crt'), [TLS_FILES.key]: read('tls.key'), [TLS_FILES.ca]: read('ca.crt') } as TlsFiles;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface LiveClusterOptions {
  /**
   * Start the environment with the tls prop on (TLS_SECRET, made by makeTestCertificates
   * for every name of the instance in the environment's namespace); the client agent
   * then connects with TLS. The overlay is rendered in memory, not read from dist/.
   * @default false
   */
  readonly tls?: boolean;
  /**
   * Start the environment with the metrics prop on: a redis_exporter sidecar (run from
   * Debian's prometheus-redis-exporter) on every Redis and Sentinel pod. Rendered in memory too.
   * @default false
   */
  readonly metrics?: boolean;
  /**
   * false: start the environment without the proxy tier (prop proxy false; rendered in
   * memory too), for tests about something else that should not share the two cores with
   * the proxy pods' deciders.
   * @default - the environment's own setting (on)
   */
  readonly proxy?: boolean;
}

/** The overlay of `env` with TLS and/or metrics on, rendered like `npm run synth` into a temporary directory, as `kubectl kustomize` prints it. */
async function renderedManifests(env: string, opts: LiveClusterOptions): Promise<{ manifests: string; dnsNames: string[] }> {
  // main.ts holds the profiles. Imported at run time, and only with tls or metrics, so that the failover
  // benchmark's bundle of this file does not carry the synth command (which runs when main).
  const { findEnvironments, renderDist }: typeof import('../main') = await import(/* @vite-ignore */ join(ROOT, 'main.ts'));
  const [profile] = findEnvironments([env]);
  const redis = {
    ...profile.redis,
    ...(opts.tls ? { tls: { secretName: TLS_SECRET } } : {}),
    ...(opts.metrics ? { metrics: true } : {}),
    ...(opts.proxy === false ? { proxy: false } : {}),
  };
  const dir = mkdtempSync(join(tmpdir(), 'redis-ha-tls-dist-'));
  try {
    writeTree(dir, renderDist([{ ...profile, redis }]), ['']);
    const manifests = execFileSync('kubectl', ['kustomize', join(dir, 'overlays', env)], { encoding: 'utf8' });
    return { manifests, dnsNames: RedisHaSettings.resolve(redis).tlsDnsNames(profile.namespace) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export class LiveCluster {
  private constructor(
    readonly env: string,
    readonly namespace: string,
    readonly sim: SimCluster,
    readonly agent: Agent,
    /** The password of each ACL user, as the auth Secret holds them. */
    readonly passwords: Record<User, string>,
    readonly downAfterMs: number,
    /** The TLS files when started with `tls` (the CA in `ca.crt`); undefined: plaintext. */
    readonly tls?: TlsFiles,
  ) {}

  /** The application user's password (user `app`, on Redis and on the Sentinels). */
  get appPassword(): string {
    return this.passwords.app;
  }

  static async start(env = 'staging', opts: LiveClusterOptions = {}): Promise<LiveCluster> {
    let manifests: string;
    let tls: TlsFiles | undefined;
    if (opts.tls || opts.metrics || opts.proxy === false) {
      const rendered = await renderedManifests(env, opts);
      manifests = rendered.manifests;
      if (opts.tls) tls = makeTestCertificates(rendered.dnsNames);
    } else {
      manifests = execFileSync('kubectl', ['kustomize', join(ROOT, 'dist', 'overlays', env)], { encoding: 'utf8' });
    }
    const namespace = /^kind: Namespace\nmetadata:\n(?:  .*\n)*?  name: (\S+)/m.exec(manifests)?.[1]
      ?? /namespace: (\S+)/.exec(manifests)?.[1] ?? 'default';
    const downAfterMs = Number(/down-after-milliseconds \S+ (\d+)/.exec(manifests)?.[1] ?? 5000);
    // The auth Secret as an operator creates it: one random password per user.
    const passwords = Object.fromEntries(USERS.map((u) => [u, randomBytes(16).toString('hex')])) as Record<User, string>;
    const secrets: Record<string, Record<string, string>> = {
      [AUTH_SECRET]: Object.fromEntries(USERS.map((u) => [`${u}-password`, passwords[u]])),
    };
    if (tls) secrets[TLS_SECRET] = { ...tls };
    // Client pods (the agent, and any a test starts) carry the client label unless a test says otherwise.
    const sim = await SimCluster.start({ manifests, secrets, clientLabels: CLIENT_LABELS });
    try {
      await sim.waitReady(120_000);
      const client = await sim.startClientPod('app', [process.execPath, join(ROOT, 'harness', 'client-agent.cjs')], {
        ipc: true, cwd: ROOT,
        env: {
          REDIS_USERS: JSON.stringify(passwords), MASTER_NAME, DEBUG: process.env.AGENT_DEBUG ?? '',
          ...(tls ? { REDIS_TLS_CA: tls['ca.crt'] } : {}),
        },
      });
      const agent = new Agent(client.proc);
      const live = new LiveCluster(env, namespace, sim, agent, passwords, downAfterMs, tls);
      await agent.call('connect', {}, 60_000);
      return live;
    } catch (err) {
      await sim.stop();
      throw err;
    }
  }

  /** redis-cli's transport options inside a pod: TLS with the mounted CA when the cluster has TLS. */
  cliTls(): string {
    return this.tls ? `--tls --cacert ${TLS_PATHS.ca} ` : '';
  }

  /** cliAs(USER, TIMEOUT) over this cluster's transport: with TLS when the cluster has TLS. */
  cliAs(user: User, timeoutSeconds = 3): string {
    return `${cliAs(user, timeoutSeconds)} ${this.cliTls()}`.trimEnd();
  }

  fqdn(pod: string): string {
    const service = pod.replace(/-\d+$/, '');
    return `${pod}.${service}.${this.namespace}.svc.cluster.local`;
  }

  redisPods(): string[] {
    return [...this.sim.podsOf('redis-master'), ...this.sim.podsOf('redis-slave')].map((p) => p.name);
  }

  sentinelPods(): string[] {
    return this.sim.podsOf('redis-sentinel').filter((p) => p.phase !== 'Terminating').map((p) => p.name);
  }

  async view(): Promise<ClusterView> {
    const sentinels = this.sentinelPods().map((p) => this.sim.podIp(p)).filter(Boolean);
    return this.agent.call<ClusterView>('inspect', { nodes: this.redisPods().map((p) => this.fqdn(p)), sentinels }, 20_000);
  }

  /**
   * Pod name of the master the Sentinels tell clients about: GET-MASTER-ADDR-BY-NAME of the
   * Sentinel with the newest config epoch (the failover leader answers with the promoted
   * replica about a second before its SENTINEL MASTER output switches), or undefined.
   */
  async sentinelMaster(): Promise<string | undefined> {
    const view = await this.view();
    let best: { epoch: number; host: string } | undefined;
    for (const s of Object.values(view.sentinels)) {
      if (!s.master) continue;
      const epoch = Number(s.master['config-epoch']);
      if (!best || epoch > best.epoch) best = { epoch, host: s.address?.[0] ?? s.master.ip };
    }
    return best?.host.split('.')[0];
  }

  /**
   * Healthy means: exactly one node is master, every other node is its replica with the
   * link up and the same offset, and every Sentinel names that master, sees all replicas,
   * knows exactly the other live Sentinels and passes CKQUORUM.
   */
  async healthProblems(): Promise<string[]> {
    const view = await this.view();
    const problems: string[] = [];
    const masters = Object.entries(view.nodes).filter(([, n]) => n.role === 'master').map(([h]) => h);
    if (masters.length !== 1) return [`expected exactly one master, found ${masters.length}: ${masters.join(', ')}`];
    const master = masters[0];
    const masterOffset = Number(/master_repl_offset:(\d+)/.exec(view.nodes[master].info ?? '')?.[1]);
    for (const [host, n] of Object.entries(view.nodes)) {
      if (host === master) continue;
      if (n.role !== 'slave') { problems.push(`${host} is ${n.role}`); continue; }
      if (n.roleReply?.[1] !== master) problems.push(`${host} replicates ${n.roleReply?.[1]}, not ${master}`);
      if (!/master_link_status:up/.test(n.info ?? '')) problems.push(`${host} link to master is down`);
      const offset = Number(/slave_repl_offset:(\d+)/.exec(n.info ?? '')?.[1]);
      if (offset !== masterOffset) problems.push(`${host} offset ${offset} != master ${masterOffset}`);
    }
    const sentinelCount = Object.keys(view.sentinels).length;
    for (const [ip, s] of Object.entries(view.sentinels)) {
      if (!s.master) { problems.push(`sentinel ${ip}: ${s.error}`); continue; }
      if (s.master.ip !== master) problems.push(`sentinel ${ip} names ${s.master.ip}`);
      if (s.master.flags !== 'master') problems.push(`sentinel ${ip} flags master ${s.master.flags}`);
      if (Number(s.master['num-slaves']) !== this.redisPods().length - 1) problems.push(`sentinel ${ip} knows ${s.master['num-slaves']} replicas`);
      const liveReplicas = (s.replicas ?? []).filter((r) => !/_down|disconnected/.test(r.flags)).length;
      if (liveReplicas !== this.redisPods().length - 1) problems.push(`sentinel ${ip} sees ${liveReplicas} healthy replicas`);
      if (Number(s.master['num-other-sentinels']) !== sentinelCount - 1) problems.push(`sentinel ${ip} knows ${s.master['num-other-sentinels']} other sentinels`);
      if (!/^OK/.test(String(s.ckquorum))) problems.push(`sentinel ${ip} CKQUORUM: ${s.ckquorum}`);
    }
    return problems;
  }

  /**
   * sync_full, sync_partial_ok and sync_partial_err of every Redis node that answers (read
   * with exec inside the pod, so a network partition does not hide it), keyed by pod.
   */
  async syncCounters(): Promise<Record<string, SyncCounters>> {
    const out: Record<string, SyncCounters> = {};
    await Promise.all(this.redisPods().map(async (pod) => {
      try {
        const r = await this.sim.exec(pod, ['sh', '-c', `${this.cliAs('operations')} INFO server stats`],
          { container: 'redis', timeoutMs: 8000 });
        const field = (name: string) => new RegExp(`^${name}:(\\S+)`, 'm').exec(r.stdout)?.[1];
        const runId = field('run_id');
        if (r.code !== 0 || !runId) return;
        out[pod] = { runId, full: Number(field('sync_full')), partialOk: Number(field('sync_partial_ok')), partialErr: Number(field('sync_partial_err')) };
      } catch {
        // not running (crashed, held or being recreated): left out
      }
    }));
    return out;
  }

  async waitHealthy(timeoutMs = 60_000): Promise<void> {
    let last: string[] = [];
    await waitFor(async () => {
      last = await this.healthProblems();
      return last.length === 0;
    }, timeoutMs, 'a healthy cluster', 250).catch((err) => {
      throw new Error(`${err.message}; still wrong: ${last.join('; ')}`);
    });
  }

  /** Pod name of the only node that reports role master; throws when there is not exactly one. */
  async onlyMaster(): Promise<string> {
    const view = await this.view();
    const masters = Object.entries(view.nodes).filter(([, n]) => n.role === 'master').map(([h]) => h.split('.')[0]);
    if (masters.length !== 1) throw new Error(`expected exactly one master, found: [${masters.join(', ')}]`);
    return masters[0];
  }

  async waitForSentinelMasterOtherThan(pod: string, timeoutMs = 30_000): Promise<string> {
    // waitFor only returns once the value is truthy.
    return waitFor<string | undefined>(async () => {
      const m = await this.sentinelMaster();
      return m && m !== pod ? m : undefined;
    }, timeoutMs, `Sentinels to name a master other than ${pod}`, 100) as Promise<string>;
  }

  /** The last `max` lines the pod scripts (start, preStop, guard...) logged in one container. */
  scriptLines(pod: string, container: string, opts: { previous?: boolean; max?: number } = {}): string[] {
    return this.sim.logs(pod, container, 5000, { previous: opts.previous }).split('\n')
      .filter((l) => SCRIPT_LOG_LINE.test(l)).slice(-(opts.max ?? 25));
  }

  /**
   * What a failing test prints: each node's ROLE, each Sentinel's view, the pods, and the
   * tail of each pod's log. Gathered with exec inside the pods, so it works even when the
   * client agent is stuck.
   */
  async report(logLines = 30): Promise<string> {
    const lines: string[] = [`cluster: ${this.sim.describe()}`];
    const run = async (pod: string, container: string, script: string) => {
      try {
        const r = await this.sim.exec(pod, ['sh', '-c', script], { container, timeoutMs: 8000 });
        return (r.stdout + r.stderr).trim();
      } catch (err) {
        return `(${(err as Error).message})`;
      }
    };
    for (const pod of this.redisPods()) {
      lines.push(`ROLE ${pod}: ${(await run(pod, 'redis', `${this.cliAs('operations')} ROLE`)).replace(/\n/g, ' ')}`);
    }
    for (const pod of this.sentinelPods()) {
      const q = (cmd: string) => `echo "== ${cmd}"; ${this.cliAs('operations')} -p 26379 ${cmd} | paste -sd' ' | cut -c1-1500`;
      lines.push(`SENTINEL ${pod} (${this.sim.podIp(pod)}):`);
      lines.push(await run(pod, 'sentinel', [q(`SENTINEL MASTER ${MASTER_NAME}`), q(`SENTINEL REPLICAS ${MASTER_NAME}`),
        q(`SENTINEL SENTINELS ${MASTER_NAME}`)].join('; ')));
    }
    for (const p of this.sim.pods()) {
      lines.push(`--- ${p.name} (${p.ip}, ${p.phase}, ready=${p.ready}, restarts=${p.restarts}) ---`);
      for (const c of p.name.startsWith('redis-sentinel') ? ['sentinel', 'janitor'] : p.name.startsWith('redis-proxy') ? ['haproxy'] : ['redis']) {
        lines.push(`[${c}]`, this.sim.logs(p.name, c, logLines));
      }
      // The start, stop and guard scripts' decisions, which Redis' own lines push out of the tail.
      for (const c of p.name.startsWith('redis-sentinel') ? ['sentinel'] : p.name.startsWith('redis-proxy') ? [] : ['redis', 'guard']) {
        const current = this.scriptLines(p.name, c);
        if (current.length) lines.push(`[${c}: the scripts' lines]`, ...current);
        const earlier = p.restarts > 0 ? this.scriptLines(p.name, c, { previous: true }) : [];
        if (earlier.length) lines.push(`[${c}, previous run: the scripts' lines]`, ...earlier);
      }
    }
    lines.push('--- client agent output ---', this.agent.output.slice(-3000));
    lines.push('--- events ---', ...this.sim.events.slice(-30));
    return lines.join('\n');
  }

  /**
   * Runs `body` while the client writes continuously; returns every write it attempted.
   * When `body` fails, prints what the writer saw (acknowledged writes, errors) first.
   */
  async runWriter(prefix: string, body: () => Promise<void>, opts: { retries?: number } = {}): Promise<WriteRecord[]> {
    await this.agent.call('startWriter', { prefix, retries: opts.retries ?? 0 });
    let failure: unknown;
    try {
      await body();
    } catch (err) {
      failure = err;
    }
    const log = await this.agent.call<WriteRecord[]>('stopWriter', {}, 60_000);
    if (failure) {
      const errors = new Map<string, number>();
      for (const w of log) if (w.error) errors.set(w.error, (errors.get(w.error) ?? 0) + 1);
      const acked = log.filter((w) => w.ack !== null);
      const last = acked.length ? new Date(acked[acked.length - 1].ack as number).toISOString() : 'never';
      console.log(`writer: ${log.length} writes, ${acked.length} acknowledged (last at ${last}); errors: ` +
        `${[...errors].map(([m, n]) => `${n}x ${m}`).join('; ') || 'none'}`);
      throw failure;
    }
    return log;
  }

  async stop(): Promise<void> {
    await this.sim.stop();
  }
}
