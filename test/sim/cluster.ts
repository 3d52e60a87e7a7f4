// SimCluster: runs the pods of rendered Kubernetes manifests as sandboxed processes,
// one network namespace per pod, with just enough kubelet and controller behaviour
// to test Redis Sentinel failover: probes, restarts, graceful deletion with preStop,
// StatefulSet identities and storage, Deployment rollouts, and network faults.
import { ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync, chownSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readdirSync,
  rmSync, statSync, writeFileSync, writeSync,
} from 'node:fs';
import { totalmem, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { ContainerSpec, Manifests, Obj, PodSpec, Probe, Workload, imageRunnable, isRedisImage, parseManifests, parseQuantity } from './manifests';
import { Network, PodNet, PREFIX, cleanLeftovers, liveRuns, newRunId, removeRun } from './network';
import { Mount, SandboxSpec, sandboxArgv } from './sandbox';
import { run, sleep, waitFor } from './util';

export interface SimOptions {
  manifests: string; // multi-document YAML, e.g. `kubectl kustomize dist/overlays/staging`
  secrets?: Record<string, Record<string, string>>; // Secrets created out of band: name (or "<ns>/<name>") -> key -> value
  log?: (line: string) => void; // cluster events (pod created, container exited, probe failed...)
  restartDelayMs?: number; // back-off before restarting an exited container (default 1000)
  nodeName?: string; // spec.nodeName seen through the downward API (default "sim-node")
}

export type Phase = 'Pending' | 'Running' | 'Terminating';

export interface PodInfo {
  name: string;
  ip: string;
  ready: boolean;
  phase: Phase;
  controller: string; // "StatefulSet/redis-master", "Deployment/redis-sentinel"
  ns: string; // Kubernetes namespace
  netns: string; // Linux network namespace (for debugging with `ip netns exec`)
  restarts: number;
  partitioned: boolean;
  revision: string; // the controller revision the pod was created from
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ClientPod {
  name: string;
  ip: string;
  proc: ChildProcess;
}

interface Container {
  pod: Pod;
  spec: ContainerSpec;
  init: boolean;
  argv: string[];
  logFile: string;
  tmpDir: string;
  sandbox?: SandboxSpec;
  proc?: ChildProcess;
  exited?: Promise<number>;
  running: boolean;
  ready: boolean;
  startedAt: number;
  gen: number; // bumps on every start; stale probe loops compare it and stop
  restarts: number;
  nextRestart?: number | 'hold'; // set by killContainer
  held: boolean;
  restartTimer?: NodeJS.Timeout;
}

interface Pod {
  name: string;
  uid: number;
  namespace: string;
  wl: Workload;
  revision: string; // Deployment pod-template-hash
  labels: Record<string, string>;
  spec: PodSpec;
  hostname: string;
  subdomain?: string;
  dir: string;
  net?: PodNet;
  ip: string;
  phase: Phase;
  terminating: boolean;
  partitioned: boolean;
  containers: Container[]; // runnable main containers
  initContainers: Container[];
  volumes: Map<string, { dir: string; readOnly: boolean }>;
  uidGid: { uid?: number; gid?: number; fsGroup?: number; groups: number[] };
  boot?: Promise<void>;
}

interface Client {
  name: string;
  net: PodNet;
  dir: string;
  proc: ChildProcess;
  partitioned: boolean;
}

const live = new Set<SimCluster>();
let handlersInstalled = false;

// Stop everything of every live cluster when the test process is interrupted or exits.
function installSignalHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const cleanup = (): void => {
    for (const c of live) c.stopSync();
  };
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      cleanup();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
}

const sameLabels = (sel: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.keys(sel).length > 0 && Object.entries(sel).every(([k, v]) => labels[k] === v);

const randomName = (n: number): string =>
  Array.from({ length: n }, () => 'bcdfghjklmnpqrstvwxz2456789'[Math.floor(Math.random() * 27)]).join('');

// Writes a file bound into sandboxes without replacing its inode, and without a
// moment where it is empty (a resolver reading then would see no names): overwrite
// from offset 0 and pad to the old length with a comment instead of truncating.
function writeInPlace(path: string, content: string): void {
  const fd = openSync(path, existsSync(path) ? 'r+' : 'w');
  try {
    const old = fstatSync(fd).size;
    let text = content;
    if (text.length < old) text += old - text.length >= 2 ? '#' + ' '.repeat(old - text.length - 2) + '\n' : '\n'.repeat(old - text.length);
    writeSync(fd, text, 0);
  } finally {
    closeSync(fd);
  }
}

// Kubernetes $(VAR) expansion in env values, command and args ($$ escapes).
function expand(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name) => (m === '$$' ? '$' : name in env ? env[name] : m));
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export class SimCluster {
  readonly runId: string;
  readonly dir: string;
  readonly events: string[] = [];
  private readonly m: Manifests;
  private readonly net: Network;
  private readonly podMap = new Map<string, Pod>();
  private readonly clients = new Map<string, Client>();
  // Pods whose recreation the test holds back: name -> time it may be recreated.
  private readonly holds = new Map<string, { wl: Workload; until: number }>();
  // Pod and client-pod names of each side of the partition in force (partitionGroups).
  private partitionSpec: string[][] = [];
  private readonly revisions = new Map<Workload, string>();
  private readonly rolling = new Set<Workload>();
  private readonly notices = new Set<string>();
  private readonly lastLogs = new Map<string, string>(); // "<pod>/<container>" -> log file
  private readonly previousLogs = new Map<string, string>(); // same, for the pod instance before (kubectl logs --previous)
  private uidSeq = 0;
  private timer?: NodeJS.Timeout;
  private reconciling = false;
  private stopped = false;
  private readonly restartDelayMs: number;

  private constructor(private readonly opts: SimOptions) {
    this.m = parseManifests(opts.manifests);
    this.runId = newRunId();
    this.dir = `/tmp/${PREFIX}-${this.runId}`;
    this.net = new Network(this.runId);
    this.restartDelayMs = opts.restartDelayMs ?? 1000;
    for (const wl of this.m.workloads) this.revisions.set(wl, randomName(9));
  }

  static async start(opts: SimOptions): Promise<SimCluster> {
    cleanLeftovers();
    const c = new SimCluster(opts);
    liveRuns.add(c.runId);
    live.add(c);
    installSignalHandlers();
    try {
      mkdirSync(c.dir, { recursive: true });
      for (const d of ['pods', 'pvc', 'logs', 'clients']) mkdirSync(join(c.dir, d));
      await c.net.start();
      c.timer = setInterval(() => void c.reconcile(), 100);
      void c.reconcile();
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  // ---------------------------------------------------------------- queries

  pods(): PodInfo[] {
    return [...this.podMap.values()].map((p) => ({
      name: p.name,
      ip: p.ip,
      ready: this.podReady(p),
      phase: p.phase,
      controller: `${p.wl.kind}/${p.wl.name}`,
      ns: p.namespace,
      netns: p.net?.netns ?? '',
      restarts: p.containers.reduce((n, c) => n + c.restarts, 0),
      partitioned: p.partitioned,
      revision: p.revision,
    }));
  }

  podIp(name: string): string {
    const p = this.podMap.get(name) ?? this.clients.get(name);
    const ip = p ? ('ip' in p ? p.ip : p.net.ip) : '';
    if (!ip) throw new Error(`pod ${name} has no IP`);
    return ip;
  }

  // Pods of one controller ("redis-sentinel" or "Deployment/redis-sentinel"), by name.
  podsOf(workload: string): PodInfo[] {
    const n = workload.includes('/') ? workload : undefined;
    return this.pods()
      .filter((p) => (n ? p.controller === n : p.controller.endsWith(`/${workload}`)))
      .sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
  }

  async waitReady(timeoutMs = 120_000): Promise<void> {
    await waitFor(() => this.allReady(), timeoutMs, `all pods ready (${this.describe()})`);
  }

  async waitPodReady(name: string, timeoutMs = 60_000): Promise<void> {
    await waitFor(() => { const p = this.podMap.get(name); return p && this.podReady(p); }, timeoutMs, `pod ${name} ready`);
  }

  waitFor<T>(cond: () => T | Promise<T>, timeoutMs: number, what: string): Promise<T> {
    return waitFor(cond, timeoutMs, what);
  }

  // previous: the log of the pod's instance before the current one (deleted and recreated).
  logs(pod: string, container?: string, lines = 50, opts: { previous?: boolean } = {}): string {
    const p = this.podMap.get(pod);
    const cname = container ?? p?.containers[0]?.spec.name ?? [...this.lastLogs.keys()].find((k) => k.startsWith(`${pod}/`))?.split('/')[1];
    const file = (opts.previous ? this.previousLogs : this.lastLogs).get(`${pod}/${cname}`);
    if (!file || !existsSync(file)) return '';
    return readFileSync(file, 'utf8').split('\n').slice(-lines - 1).join('\n');
  }

  // One line per pod, for failure messages.
  describe(): string {
    return this.pods().map((p) => `${p.name}=${p.phase}${p.ready ? '/ready' : ''}@${p.ip || '-'}`).join(', ');
  }

  // ---------------------------------------------------------------- faults

  // SIGKILL the container's process tree. restart: true = after the normal back-off,
  // a number = after that many ms, false = held until restartContainer().
  async killContainer(pod: string, container?: string, opts: { restart?: boolean | number } = {}): Promise<void> {
    const c = this.container(pod, container);
    const r = opts.restart ?? true;
    this.event(`kill ${pod}/${c.spec.name}${r === false ? ' (restart held)' : ''}`);
    if (!c.running || !c.proc?.pid) {
      // Already down (crashed, waiting for its back-off, or held): only adjust the restart.
      clearTimeout(c.restartTimer);
      c.held = r === false;
      if (r !== false) c.restartTimer = setTimeout(() => this.startContainer(c), r === true ? this.restartDelayMs : r);
      return;
    }
    c.nextRestart = r === false ? 'hold' : r === true ? undefined : r;
    process.kill(c.proc.pid, 'SIGKILL'); // bwrap's reaper dies with it, and with it the pid namespace
    await c.exited;
  }

  // Starts a held (or running: kills and restarts) container now.
  async restartContainer(pod: string, container?: string): Promise<void> {
    const c = this.container(pod, container);
    if (c.running) await this.killContainer(pod, c.spec.name, { restart: 0 });
    else {
      clearTimeout(c.restartTimer);
      c.held = false;
      this.startContainer(c);
    }
  }

  // Like `kubectl delete pod`: graceful = preStop, SIGTERM, SIGKILL after the grace
  // period; grace: false = SIGKILL now. The controller then recreates the pod (new IP)
  // immediately, after `recreate` ms, or (recreate: false) when recreatePod() is called.
  // wipeVolumes: the pod's PVCs are emptied once it is gone and before it is recreated
  // (a lost or re-provisioned disk), see wipeVolumes().
  async deletePod(name: string, opts: { grace?: boolean; recreate?: boolean | number; wipeVolumes?: boolean } = {}): Promise<void> {
    const p = this.podMap.get(name);
    if (!p) throw new Error(`no pod ${name}`);
    const r = opts.recreate ?? true;
    const until = r === false ? Infinity : r === true ? 0 : Date.now() + r;
    // With a wipe, recreation waits for it whatever `recreate` says.
    if (r !== true || opts.wipeVolumes) this.holds.set(name, { wl: p.wl, until: opts.wipeVolumes ? Infinity : until });
    await this.terminate(p, opts.grace ?? true);
    if (!opts.wipeVolumes) return;
    try {
      this.wipeVolumes(name);
    } finally {
      if (r === true) this.recreatePod(name);
      else if (r !== false) this.holds.set(name, { wl: p.wl, until });
    }
  }

  recreatePod(name: string): void {
    this.holds.delete(name);
    void this.reconcile();
  }

  // A cluster-wide stop: every pod deleted (gracefully unless grace: false), none
  // recreated until startAllPods(). Returns the names of the pods deleted.
  async stopAllPods(opts: { grace?: boolean } = {}): Promise<string[]> {
    const names = [...this.podMap.values()].filter((p) => !p.terminating).map((p) => p.name);
    await Promise.all(names.map((n) => this.deletePod(n, { grace: opts.grace ?? true, recreate: false })));
    this.event(`stopped all pods (${names.length})`);
    return names;
  }

  // Releases every held recreation (pods deleted with recreate: false or a delay, or by
  // stopAllPods): the controllers create them again (StatefulSet pods under their names).
  startAllPods(): void {
    this.event(`starting all held pods (${[...this.holds.keys()].join(', ') || 'none'})`);
    this.holds.clear();
    void this.reconcile();
  }

  // Empties every PVC directory of a StatefulSet pod (its claim-template volumes), as a
  // lost or re-provisioned disk: the recreated pod starts on empty volumes. The pod must
  // not exist: delete it with recreate: false first (or use deletePod's wipeVolumes).
  wipeVolumes(pod: string): void {
    const p = this.podMap.get(pod);
    if (p) throw new Error(`wipeVolumes(${pod}): the pod exists (${p.phase}); delete it with recreate: false first`);
    const wl = this.statefulSetOf(pod);
    if (!wl?.claimTemplates.length) throw new Error(`wipeVolumes(${pod}): not a StatefulSet pod with volume claim templates`);
    const wiped: string[] = [];
    for (const claim of wl.claimTemplates) {
      const dir = join(this.dir, 'pvc', `${claim}-${pod}`);
      if (!existsSync(dir)) continue;
      for (const e of readdirSync(dir)) rmSync(join(dir, e), { recursive: true, force: true });
      wiped.push(`${claim}-${pod}`);
    }
    this.event(`wiped volumes of ${pod}: ${wiped.join(', ') || 'none existed yet'}`);
  }

  async partition(name: string): Promise<void> {
    await this.setLink(name, false);
  }

  async heal(name: string): Promise<void> {
    await this.setLink(name, true);
  }

  // A network split: members (pod or client-pod names) of different groups exchange no
  // packet in either direction, established connections included; packets are dropped
  // silently (no RST, no ICMP), as in a real split. Members of one group, and pods in no
  // group, are unaffected. Replaces any earlier partitionGroups(). A pod listed by name
  // and (re)created while the split is in force is split too (a StatefulSet pod keeps
  // its name; a replaced Deployment pod gets a new name and is not).
  async partitionGroups(groups: string[][]): Promise<void> {
    const names = groups.flat();
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup) throw new Error(`partitionGroups: ${dup} is listed twice`);
    const unknown = names.filter((n) => !this.knownPodName(n));
    if (unknown.length) throw new Error(`partitionGroups: no pod or client pod named ${unknown.join(', ')}`);
    this.partitionSpec = groups.map((g) => [...g]);
    await this.applyPartitions();
    this.event(`partition groups ${groups.map((g) => `{${g.join(', ')}}`).join(' / ')}`);
  }

  // Removes the split of partitionGroups(): every packet flows again.
  async healPartitions(): Promise<void> {
    this.partitionSpec = [];
    await this.applyPartitions();
    this.event('partition groups healed');
  }

  // The names in force (a copy), [] when healed.
  partitionedGroups(): string[][] {
    return this.partitionSpec.map((g) => [...g]);
  }

  private knownPodName(n: string): boolean {
    return this.podMap.has(n) || this.clients.has(n) || this.holds.has(n)
      || this.statefulSetOf(n) !== undefined;
  }

  // The StatefulSet whose ordinal pod this name is ("redis-slave-1"), if any.
  private statefulSetOf(pod: string): Workload | undefined {
    return this.m.workloads.find((w) => {
      const m = w.kind === 'StatefulSet' && pod.startsWith(`${w.name}-`) ? /^(0|[1-9]\d*)$/.exec(pod.slice(w.name.length + 1)) : null;
      return m !== null && Number(m[1]) < w.replicas;
    });
  }

  // Rewrites the bridge's drop rules from the names in force and the current veths.
  // `extra`: veths of client pods not registered yet.
  private async applyPartitions(extra: Record<string, string> = {}): Promise<void> {
    if (this.stopped) return;
    const veth = (n: string): string | undefined => (this.podMap.get(n)?.net ?? this.clients.get(n)?.net)?.hostVeth ?? extra[n];
    const groups = this.partitionSpec.map((g) => g.map(veth).filter((v): v is string => !!v));
    await this.net.setPartitions(groups, join(this.dir, 'partition.nft'));
  }

  // Every process of the pod stopped (SIGSTOP), as a stalled node or a long VM pause
  // does: its sockets stay open and nothing answers. thawPod resumes them (SIGCONT).
  async freezePod(name: string): Promise<void> {
    await this.signalPod(name, 'SIGSTOP');
  }

  async thawPod(name: string): Promise<void> {
    await this.signalPod(name, 'SIGCONT');
  }

  private async signalPod(name: string, signal: NodeJS.Signals): Promise<void> {
    const p = this.podMap.get(name);
    if (!p?.net) throw new Error(`no running pod ${name}`);
    const pids = (await run('ip', ['netns', 'pids', p.net.netns])).split('\n').map(Number).filter((n) => n > 0);
    for (const pid of pids) {
      try {
        process.kill(pid, signal);
      } catch {
        // exited meanwhile
      }
    }
    this.event(`${signal === 'SIGSTOP' ? 'froze' : 'thawed'} pod ${name} (${pids.length} processes)`);
  }

  // RollingUpdate of a Deployment to a new pod-template-hash: surge new pods, wait
  // until they are ready, then delete old pods gracefully, one batch at a time.
  async rolloutDeployment(name: string, timeoutMs = 300_000): Promise<void> {
    const wl = this.workload('Deployment', name);
    const deadline = Date.now() + timeoutMs;
    this.rolling.add(wl);
    const terminations: Promise<void>[] = [];
    try {
      this.revisions.set(wl, randomName(9));
      const rev = this.revisions.get(wl);
      const surge = wl.maxSurge || (wl.maxUnavailable ? 0 : 1);
      const step = Math.max(surge, wl.maxUnavailable, 1);
      for (;;) {
        const old = [...this.podMap.values()].filter((p) => p.wl === wl && p.revision !== rev && !p.terminating);
        if (!old.length) break;
        const batch = old.slice(0, step);
        if (surge === 0) terminations.push(...batch.map((p) => this.terminate(p, true)));
        const fresh = batch.map(() => this.createPod(wl));
        await waitFor(() => fresh.every((p) => this.podReady(p)), deadline - Date.now(), `rollout of ${name}: ${fresh.map((p) => p.name).join(', ')} ready`);
        if (surge > 0) terminations.push(...batch.map((p) => this.terminate(p, true)));
      }
      await Promise.all(terminations);
    } finally {
      this.rolling.delete(wl);
    }
    this.event(`rollout of Deployment/${name} complete`);
  }

  // RollingUpdate of a StatefulSet to a new revision, as its controller does it: delete
  // the pods from the highest ordinal down, each recreated (same name, new IP, the new
  // revision) and Ready before the next.
  async rolloutStatefulSet(name: string, timeoutMs = 300_000): Promise<void> {
    const wl = this.workload('StatefulSet', name);
    const deadline = Date.now() + timeoutMs;
    const rev = randomName(9);
    this.revisions.set(wl, rev);
    this.event(`rollout of StatefulSet/${name} to revision ${rev}`);
    for (let i = wl.replicas - 1; i >= 0; i--) {
      const pod = `${name}-${i}`;
      const before = this.podMap.get(pod)?.uid;
      await this.deletePod(pod, { grace: true });
      await waitFor(() => { const p = this.podMap.get(pod); return p && p.uid !== before && this.podReady(p); }, deadline - Date.now(), `${pod} recreated and ready`);
    }
    this.event(`rollout of StatefulSet/${name} complete`);
  }

  // A change that alters several pod templates at once (a ConfigMap they all hash): each
  // StatefulSet's controller rolls its own pods, and nothing orders one after the other.
  async rolloutStatefulSets(names: string[], timeoutMs = 300_000): Promise<void> {
    await Promise.all(names.map((n) => this.rolloutStatefulSet(n, timeoutMs)));
  }

  // Like `kubectl exec`: runs argv in the container's sandbox (same volumes, env, user).
  async exec(pod: string, argv: string[], opts: { container?: string; timeoutMs?: number; stdin?: string } = {}): Promise<ExecResult> {
    const c = this.container(pod, opts.container);
    if (!c.running || !c.sandbox) throw new Error(`container ${pod}/${c.spec.name} is not running`);
    return this.runSandboxed(c.sandbox, argv, opts.timeoutMs ?? 30_000, opts.stdin);
  }

  // A program from the host (e.g. `node agent.js`, `/usr/bin/python3 x.py`) in a new
  // pod-like network namespace: host filesystem, but the cluster DNS as /etc/hosts.
  // ipc: true adds a Node IPC channel (child.send / process.on('message')).
  async startClientPod(name: string, argv: string[], opts: { env?: Record<string, string>; cwd?: string; ipc?: boolean; namespace?: string } = {}): Promise<ClientPod> {
    if (this.clients.has(name) || this.podMap.has(name)) throw new Error(`pod ${name} exists`);
    const net = await this.net.addPod();
    const dir = join(this.dir, 'clients', name);
    if (this.partitionSpec.some((g) => g.includes(name))) await this.applyPartitions({ [name]: net.hostVeth });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'resolv.conf'), this.resolvConf(opts.namespace ?? this.defaultNamespace()));
    writeInPlace(join(dir, 'hosts'), this.hostsFor(name, net.ip));
    const args = [
      `--net=/run/netns/${net.netns}`, '--', 'bwrap', '--dev-bind', '/', '/',
      '--ro-bind', join(dir, 'hosts'), '/etc/hosts', '--ro-bind', join(dir, 'resolv.conf'), '/etc/resolv.conf',
      '--unshare-uts', '--hostname', name, '--die-with-parent', '--', ...argv,
    ];
    const proc = spawn('nsenter', args, {
      cwd: opts.cwd ?? process.cwd(),
      env: { ...process.env, ...opts.env, HOSTNAME: name },
      stdio: opts.ipc ? ['pipe', 'pipe', 'pipe', 'ipc'] : ['pipe', 'pipe', 'pipe'],
    });
    const client: Client = { name, net, dir, proc, partitioned: false };
    this.clients.set(name, client);
    this.event(`client pod ${name} started at ${net.ip}: ${argv.join(' ')}`);
    return { name, ip: net.ip, proc };
  }

  async stopClientPod(name: string): Promise<void> {
    const cl = this.clients.get(name);
    if (!cl) return;
    this.clients.delete(name);
    if (cl.proc.exitCode === null && cl.proc.signalCode === null) {
      const exited = new Promise((r) => cl.proc.once('exit', r));
      cl.proc.kill('SIGKILL');
      await exited;
    }
    await this.net.removePod(cl.net);
  }

  // Tears everything down (SIGKILL, no grace). Idempotent; also safe after failures.
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    const procs: ChildProcess[] = [...this.clients.values()].map((c) => c.proc);
    for (const p of this.podMap.values()) {
      for (const c of [...p.initContainers, ...p.containers]) {
        clearTimeout(c.restartTimer);
        if (c.proc) procs.push(c.proc);
      }
    }
    const exits = procs.filter((p) => p.exitCode === null && p.signalCode === null).map((p) => new Promise((r) => { p.once('exit', r); p.kill('SIGKILL'); }));
    await Promise.race([Promise.all(exits), sleep(5000)]);
    this.stopSync();
  }

  // Synchronous part of stop(), also used from signal/exit handlers.
  stopSync(): void {
    this.stopped = true;
    clearInterval(this.timer);
    removeRun(this.runId);
    liveRuns.delete(this.runId);
    live.delete(this);
  }

  // ---------------------------------------------------------------- controllers

  private async reconcile(): Promise<void> {
    if (this.reconciling || this.stopped) return;
    this.reconciling = true;
    try {
      const now = Date.now();
      for (const [name, h] of this.holds) if (h.until <= now) this.holds.delete(name);
      for (const wl of this.m.workloads) {
        if (wl.kind === 'StatefulSet') this.reconcileStatefulSet(wl);
        else if (!this.rolling.has(wl)) this.reconcileDeployment(wl);
      }
    } finally {
      this.reconciling = false;
    }
  }

  // Ordinal pods with stable names; OrderedReady creates one at a time and waits for
  // it to be ready; a pod is recreated only once its predecessor is fully gone.
  private reconcileStatefulSet(wl: Workload): void {
    for (let i = 0; i < wl.replicas; i++) {
      const name = `${wl.name}-${i}`;
      const p = this.podMap.get(name);
      if (!p) {
        if (this.holds.has(name)) continue;
        this.createPod(wl, name);
        if (!wl.parallel) return;
      } else if (!wl.parallel && (p.terminating || !this.podReady(p))) return;
    }
  }

  // A ReplicaSet replaces a deleted pod as soon as it starts terminating.
  private reconcileDeployment(wl: Workload): void {
    const active = [...this.podMap.values()].filter((p) => p.wl === wl && !p.terminating).length;
    const held = [...this.holds.values()].filter((h) => h.wl === wl).length;
    for (let n = active; n < wl.replicas - held; n++) this.createPod(wl);
  }

  private createPod(wl: Workload, name?: string): Pod {
    const rev = this.revisions.get(wl) ?? '';
    const podName = name ?? `${wl.name}-${rev}-${randomName(5)}`;
    const spec = wl.spec;
    const uid = ++this.uidSeq;
    const sc = spec.securityContext ?? {};
    const p: Pod = {
      name: podName,
      uid,
      namespace: wl.namespace,
      wl,
      revision: rev,
      labels: wl.labels,
      spec,
      hostname: spec.hostname ?? podName,
      subdomain: wl.kind === 'StatefulSet' ? wl.serviceName : spec.subdomain,
      dir: join(this.dir, 'pods', `${podName}.${uid}`),
      ip: '',
      phase: 'Pending',
      terminating: false,
      partitioned: false,
      containers: [],
      initContainers: [],
      volumes: new Map(),
      uidGid: { fsGroup: sc.fsGroup, groups: [...(sc.fsGroup !== undefined ? [sc.fsGroup] : []), ...(sc.supplementalGroups ?? [])] },
    };
    const mk = (cs: ContainerSpec, init: boolean): Container | undefined => {
      if (!imageRunnable(cs.image)) {
        this.notice(`skipping container ${wl.name}/${cs.name}: image ${cs.image} cannot run in the simulator`);
        return undefined;
      }
      const logFile = join(this.dir, 'logs', `${podName}.${uid}.${cs.name}.log`);
      const prior = this.lastLogs.get(`${podName}/${cs.name}`);
      if (prior && prior !== logFile) this.previousLogs.set(`${podName}/${cs.name}`, prior);
      this.lastLogs.set(`${podName}/${cs.name}`, logFile);
      return { pod: p, spec: cs, init, argv: [], logFile, tmpDir: join(p.dir, 'tmp', cs.name), running: false, ready: false, startedAt: 0, gen: 0, restarts: 0, held: false };
    };
    p.initContainers = (spec.initContainers ?? []).map((c) => mk(c, true)).filter((c): c is Container => !!c);
    p.containers = spec.containers.map((c) => mk(c, false)).filter((c): c is Container => !!c);
    this.podMap.set(podName, p);
    this.event(`create pod ${podName} (${wl.kind}/${wl.name})`);
    p.boot = this.bootPod(p).catch((e) => {
      // Shown even without a log callback: a pod that cannot start stalls every wait.
      if (!p.terminating) this.notice(`pod ${podName} failed to start: ${String(e)}`);
    });
    return p;
  }

  private async bootPod(p: Pod): Promise<void> {
    mkdirSync(p.dir, { recursive: true });
    p.net = await this.net.addPod();
    p.ip = p.net.ip;
    // Split before anything runs, if the pod is named in a partition in force.
    if (this.partitionSpec.some((g) => g.includes(p.name))) await this.applyPartitions();
    writeFileSync(join(p.dir, 'resolv.conf'), this.resolvConf(p.namespace));
    this.prepareVolumes(p);
    this.publish();
    this.event(`pod ${p.name} has IP ${p.ip}`);
    for (const c of [...p.initContainers, ...p.containers]) this.prepareContainer(c);
    // Init containers run to completion in order; a failed one is retried.
    for (const c of p.initContainers) {
      for (;;) {
        if (p.terminating) return;
        this.startContainer(c);
        const code = await c.exited;
        if (code === 0) break;
        if (p.terminating) return;
        c.restarts++;
        this.event(`init container ${p.name}/${c.spec.name} exited ${code}; retrying\n${this.logs(p.name, c.spec.name, 10)}`);
        await sleep(this.restartDelayMs);
      }
    }
    if (p.terminating) return;
    p.phase = 'Running';
    for (const c of p.containers) this.startContainer(c);
    this.publish();
  }

  // Kubelet-style termination; resolves once the pod is gone (namespace deleted).
  private async terminate(p: Pod, graceful: boolean): Promise<void> {
    if (p.terminating) {
      await waitFor(() => !this.podMap.has(p.name) || this.podMap.get(p.name) !== p, 600_000, `pod ${p.name} gone`);
      return;
    }
    p.terminating = true;
    p.phase = 'Terminating';
    this.publish();
    void this.reconcile(); // a Deployment replaces the pod right away
    const graceMs = graceful ? (p.spec.terminationGracePeriodSeconds ?? 30) * 1000 : 0;
    this.event(`delete pod ${p.name} (${graceful ? `grace ${graceMs / 1000}s` : 'force'})`);
    await Promise.all([...p.initContainers, ...p.containers].map((c) => this.stopContainer(c, graceMs, graceful)));
    await p.boot;
    await Promise.all([...p.initContainers, ...p.containers].map((c) => this.stopContainer(c, 0, false)));
    if (p.net) await this.net.removePod(p.net);
    // emptyDirs and the pod's config/secret copies go with the pod; PVCs stay.
    rmSync(p.dir, { recursive: true, force: true });
    this.podMap.delete(p.name);
    this.publish();
    this.event(`pod ${p.name} deleted`);
    void this.reconcile();
  }

  // ---------------------------------------------------------------- containers

  private prepareContainer(c: Container): void {
    const p = c.pod;
    const s = c.spec;
    const psc = p.spec.securityContext ?? {};
    const csc = s.securityContext ?? {};
    const uid: number | undefined = csc.runAsUser ?? psc.runAsUser;
    const gid: number | undefined = csc.runAsGroup ?? psc.runAsGroup;
    const env = this.containerEnv(c);
    let argv: string[];
    if (s.command?.length) argv = [...s.command, ...(s.args ?? [])];
    else if (isRedisImage(s.image)) {
      // The official image's entrypoint: "-flag ..." or "x.conf" means redis-server.
      argv = s.args?.length ? [...s.args] : ['redis-server'];
      if (argv[0].startsWith('-') || argv[0].endsWith('.conf')) argv.unshift('redis-server');
    } else argv = s.args?.length ? [...s.args] : ['sh'];
    c.argv = argv.map((a) => expand(a, env));
    const mounts: Mount[] = [];
    for (const vm of s.volumeMounts ?? []) {
      const v = p.volumes.get(vm.name);
      if (!v) continue;
      let source = v.dir;
      if (vm.subPath) {
        source = join(v.dir, vm.subPath);
        if (!existsSync(source)) mkdirSync(source, { recursive: true }); // as the kubelet does
      }
      mounts.push({ target: vm.mountPath, source, readOnly: v.readOnly || vm.readOnly === true });
    }
    c.sandbox = {
      netns: p.net!.netns,
      hostname: p.hostname,
      hostsFile: join(p.dir, 'hosts'),
      resolvFile: join(p.dir, 'resolv.conf'),
      tmpDir: c.tmpDir,
      mounts,
      env,
      uid,
      gid: uid !== undefined && gid === undefined ? 0 : gid,
      groups: p.uidGid.groups,
      cwd: s.workingDir ?? (isRedisImage(s.image) ? '/data' : '/'),
      readOnlyRoot: csc.readOnlyRootFilesystem === true,
      redisBinaries: isRedisImage(s.image),
    };
  }

  private startContainer(c: Container): void {
    if (this.stopped || c.pod.terminating) return;
    // The container's writable layer (/tmp here) starts fresh on every start.
    rmSync(c.tmpDir, { recursive: true, force: true });
    mkdirSync(c.tmpDir, { recursive: true });
    chmodSync(c.tmpDir, 0o1777);
    const argv = sandboxArgv(c.sandbox!, c.argv);
    const fd = openSync(c.logFile, 'a');
    const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    c.proc = proc;
    c.running = true;
    c.ready = false;
    c.held = false;
    c.startedAt = Date.now();
    const gen = ++c.gen;
    this.event(`start ${c.init ? 'init ' : ''}container ${c.pod.name}/${c.spec.name}${c.restarts ? ` (restart ${c.restarts})` : ''}`);
    c.exited = new Promise<number>((resolve) => {
      proc.once('exit', (code, signal) => {
        c.running = false;
        c.ready = false;
        c.proc = undefined;
        resolve(code ?? 128);
        this.onExit(c, gen, code, signal);
      });
    });
    proc.once('error', (e) => this.event(`container ${c.pod.name}/${c.spec.name}: ${e.message}`));
    if (!c.init) void this.postStart(c, gen);
  }

  // Probes begin once the postStart hook (if any) has succeeded; a failed hook kills
  // the container, which is then restarted like any other exit.
  private async postStart(c: Container, gen: number): Promise<void> {
    const hook = c.spec.lifecycle?.postStart?.exec?.command;
    if (hook) {
      const r = await this.runSandboxed(c.sandbox!, hook, 60_000);
      if (c.gen !== gen || !c.running) return;
      if (r.code !== 0) {
        this.event(`postStart ${c.pod.name}/${c.spec.name} failed (${r.code}): ${(r.stdout + r.stderr).trim().slice(-300)}`);
        if (c.proc?.pid) process.kill(c.proc.pid, 'SIGKILL');
        return;
      }
    }
    this.startProbes(c, gen);
  }

  private onExit(c: Container, gen: number, code: number | null, signal: string | null): void {
    if (c.init || gen !== c.gen) return;
    this.event(`container ${c.pod.name}/${c.spec.name} exited (${signal ?? code})`);
    this.publish();
    if (this.stopped || c.pod.terminating) return;
    const delay = c.nextRestart ?? this.restartDelayMs;
    c.nextRestart = undefined;
    c.restarts++;
    if (delay === 'hold') {
      c.held = true;
      return;
    }
    c.restartTimer = setTimeout(() => this.startContainer(c), delay);
  }

  // preStop hook (bounded by the grace period), SIGTERM to the container's main
  // process, SIGKILL of the whole sandbox when the grace period runs out.
  private async stopContainer(c: Container, graceMs: number, runHook: boolean): Promise<void> {
    clearTimeout(c.restartTimer);
    if (!c.running || !c.proc) return;
    const outer = c.proc.pid!;
    let deadline = Date.now() + graceMs;
    const hook = c.spec.lifecycle?.preStop?.exec?.command;
    if (runHook && hook && !c.init && graceMs > 0) {
      const t0 = Date.now();
      const r = await this.runSandboxed(c.sandbox!, hook, graceMs);
      this.appendToLog(c, r.stderr);
      this.event(`preStop ${c.pod.name}/${c.spec.name} exited ${r.code} after ${Date.now() - t0} ms${r.code ? `: ${(r.stdout + r.stderr).trim().slice(-500)}` : ''}`);
      deadline = Math.max(deadline, Date.now() + 2000); // the kubelet's minimum after a slow hook
    }
    if (graceMs > 0 && c.running) {
      // bwrap's pid 1 is a reaper; the container's command is its child.
      const [init] = childPids(outer);
      for (const pid of init ? childPids(init) : []) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* exited meanwhile */
        }
      }
      await Promise.race([c.exited, sleep(Math.max(0, deadline - Date.now()))]);
    }
    if (c.running) {
      try {
        process.kill(outer, 'SIGKILL'); // bwrap's reaper dies with it, and with it the pid namespace
      } catch {
        /* gone */
      }
    }
    await c.exited;
  }

  private async runSandboxed(sb: SandboxSpec, argv: string[], timeoutMs: number, stdin?: string): Promise<ExecResult> {
    const a = sandboxArgv(sb, argv);
    return new Promise((resolve) => {
      const proc = spawn(a[0], a.slice(1), { stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      proc.stdout!.on('data', (d) => { if (stdout.length < 4_000_000) stdout += d; });
      proc.stderr!.on('data', (d) => { if (stderr.length < 4_000_000) stderr += d; });
      if (stdin !== undefined) proc.stdin!.end(stdin);
      const t = setTimeout(() => { timedOut = true; proc.kill('SIGKILL'); }, timeoutMs);
      proc.once('error', (e) => { stderr += e.message; });
      proc.once('close', (code) => {
        clearTimeout(t);
        resolve({ code: timedOut ? 124 : code ?? 137, stdout, stderr: timedOut ? `${stderr}timed out after ${timeoutMs} ms\n` : stderr });
      });
    });
  }

  // ---------------------------------------------------------------- probes

  private startProbes(c: Container, gen: number): void {
    const s = c.spec;
    const rest = (): void => {
      if (s.readinessProbe) void this.probeLoop(c, gen, 'readiness', s.readinessProbe);
      else this.setReady(c, true);
      if (s.livenessProbe) void this.probeLoop(c, gen, 'liveness', s.livenessProbe);
    };
    if (s.startupProbe) void this.probeLoop(c, gen, 'startup', s.startupProbe, rest);
    else rest();
  }

  private async probeLoop(c: Container, gen: number, kind: 'startup' | 'readiness' | 'liveness', p: Probe, onStarted?: () => void): Promise<void> {
    const alive = (): boolean => c.running && c.gen === gen && !this.stopped;
    const periodMs = (p.periodSeconds ?? 10) * 1000;
    const succT = kind === 'readiness' ? p.successThreshold ?? 1 : 1;
    const failT = p.failureThreshold ?? 3;
    const firstAt = c.startedAt + (p.initialDelaySeconds ?? 0) * 1000;
    while (alive() && Date.now() < firstAt) await sleep(Math.min(200, firstAt - Date.now()));
    let succ = 0;
    let fail = 0;
    while (alive()) {
      const t0 = Date.now();
      const { ok, out } = await this.runProbe(c, p);
      if (!alive()) return;
      if (ok) { succ++; fail = 0; } else { fail++; succ = 0; }
      if (!ok) this.event(`${kind} probe failed ${c.pod.name}/${c.spec.name} (${fail}/${failT}): ${out.trim().slice(0, 200)}`);
      if (kind === 'startup' && succ >= 1) return onStarted?.();
      if (kind === 'readiness') {
        if (succ >= succT) this.setReady(c, true);
        if (fail >= failT) this.setReady(c, false);
      }
      if ((kind === 'liveness' || kind === 'startup') && fail >= failT) {
        this.event(`${kind} probe of ${c.pod.name}/${c.spec.name} failed ${fail} times: restarting container`);
        const grace = (c.pod.spec.terminationGracePeriodSeconds ?? 30) * 1000;
        void this.stopContainer(c, grace, true);
        return;
      }
      const wait = t0 + periodMs - Date.now();
      for (let end = Date.now() + wait; alive() && Date.now() < end;) await sleep(Math.min(200, end - Date.now()));
    }
  }

  // Hooks and probes run in a sandbox of their own (not the container's pid namespace),
  // so the scripts' `exec 2>/proc/1/fd/2` cannot reach the container log as it does in
  // Kubernetes; their stderr is appended to the log here instead.
  private appendToLog(c: Container, text: string): void {
    if (text.trim()) writeFileSync(c.logFile, text.endsWith('\n') ? text : `${text}\n`, { flag: 'a' });
  }

  private async runProbe(c: Container, p: Probe): Promise<{ ok: boolean; out: string }> {
    const timeoutMs = (p.timeoutSeconds ?? 1) * 1000;
    if (p.exec) {
      const r = await this.runSandboxed(c.sandbox!, p.exec.command, timeoutMs);
      this.appendToLog(c, r.stderr);
      return { ok: r.code === 0, out: r.stdout + r.stderr };
    }
    if (p.tcpSocket) {
      let port = p.tcpSocket.port;
      if (typeof port === 'string' && !/^\d+$/.test(port)) port = c.spec.ports?.find((x) => x.name === port)?.containerPort ?? 0;
      const host = p.tcpSocket.host ?? c.pod.ip;
      try {
        await run('nsenter', [`--net=/run/netns/${c.pod.net!.netns}`, '--', 'timeout', String(Math.max(1, timeoutMs / 1000)), 'bash', '-c', `exec 3<>/dev/tcp/${host}/${port}`], timeoutMs + 2000);
        return { ok: true, out: '' };
      } catch (e) {
        return { ok: false, out: String(e) };
      }
    }
    this.notice(`probe type of ${c.pod.wl.name}/${c.spec.name} is not simulated (only exec and tcpSocket): treated as passing`);
    return { ok: true, out: '' };
  }

  private setReady(c: Container, ready: boolean): void {
    if (c.ready === ready) return;
    c.ready = ready;
    this.event(`container ${c.pod.name}/${c.spec.name} ${ready ? 'ready' : 'not ready'}`);
    this.publish();
    if (ready) void this.reconcile();
  }

  private podReady(p: Pod): boolean {
    return p.phase === 'Running' && !p.terminating && p.containers.every((c) => c.ready);
  }

  private allReady(): boolean {
    for (const wl of this.m.workloads) {
      const pods = [...this.podMap.values()].filter((p) => p.wl === wl);
      const held = [...this.holds.values()].filter((h) => h.wl === wl).length;
      if (pods.some((p) => p.terminating || !this.podReady(p))) return false;
      if (pods.length !== wl.replicas - held) return false;
    }
    return true;
  }

  // ---------------------------------------------------------------- volumes and env

  private prepareVolumes(p: Pod): void {
    const { fsGroup } = p.uidGid;
    const runAs = p.spec.securityContext?.runAsUser ?? p.spec.containers.find((c) => c.securityContext?.runAsUser !== undefined)?.securityContext?.runAsUser;
    // Without fsGroup a non-root pod could not write its PVC on most clusters; the
    // simulator still makes volumes usable, but says so once.
    const group: number | undefined = fsGroup ?? (runAs ? p.spec.securityContext?.runAsGroup ?? runAs : undefined);
    if (fsGroup === undefined && runAs) this.notice(`${p.wl.name}: runAsUser ${runAs} without fsGroup; volumes made group-owned by ${group} anyway (a real cluster may need fsGroup)`);
    const claims = new Set(p.wl.claimTemplates);
    // Claim templates become volumes of the same name (as the StatefulSet controller does).
    const vols: Obj[] = [...(p.spec.volumes ?? [])];
    for (const n of p.wl.claimTemplates) if (!vols.some((v) => v.name === n)) vols.push({ name: n, persistentVolumeClaim: { claimName: n } });
    for (const v of vols) {
      const dir = join(p.dir, 'volumes', v.name);
      if (v.emptyDir) {
        mkdirSync(dir, { recursive: true });
        chmodSync(dir, 0o777);
        p.volumes.set(v.name, { dir, readOnly: false });
      } else if (v.configMap || v.secret) {
        const isSecret = !!v.secret;
        const ref: string = isSecret ? v.secret.secretName : v.configMap.name;
        const data = isSecret ? this.secretData(p.namespace, ref) : this.m.configMaps.get(`${p.namespace}/${ref}`);
        const src: Obj = isSecret ? v.secret : v.configMap;
        if (!data && !src.optional) throw new Error(`${isSecret ? 'secret' : 'configmap'} ${ref} not found for pod ${p.name}`);
        mkdirSync(dir, { recursive: true });
        const items: { key: string; path: string; mode?: number }[] = data ? src.items ?? Object.keys(data).map((k) => ({ key: k, path: k })) : [];
        for (const it of items) {
          if (!data || !(it.key in data)) throw new Error(`key ${it.key} missing in ${ref}`);
          const f = join(dir, it.path);
          mkdirSync(dirname(f), { recursive: true });
          writeFileSync(f, data[it.key]);
          let mode = it.mode ?? src.defaultMode ?? 0o644;
          if (group !== undefined) { chownSync(f, 0, group); mode |= 0o440; }
          chmodSync(f, mode);
        }
        p.volumes.set(v.name, { dir, readOnly: true });
        continue;
      } else if (v.persistentVolumeClaim) {
        const claim: string = v.persistentVolumeClaim.claimName;
        // A claim template's PVC is "<claim>-<pod>" and outlives the pod.
        const pvc = join(this.dir, 'pvc', claims.has(claim) ? `${claim}-${p.name}` : claim);
        mkdirSync(pvc, { recursive: true });
        p.volumes.set(v.name, { dir: pvc, readOnly: v.persistentVolumeClaim.readOnly === true });
      } else {
        this.notice(`${p.wl.name}: volume ${v.name} of type ${Object.keys(v).filter((k) => k !== 'name').join(',')} is not simulated (empty directory instead)`);
        mkdirSync(dir, { recursive: true });
        p.volumes.set(v.name, { dir, readOnly: false });
      }
      if (group !== undefined) this.chownTree(p.volumes.get(v.name)!.dir, group);
    }
  }

  // fsGroup semantics: group-owned, group-writable, setgid directories.
  private chownTree(dir: string, gid: number): void {
    const walk = (f: string): void => {
      const st = statSync(f);
      chownSync(f, st.uid, gid);
      chmodSync(f, (st.mode & 0o7777) | (st.isDirectory() ? 0o2070 : 0o060));
      if (st.isDirectory()) for (const e of readdirSync(f)) walk(join(f, e));
    };
    walk(dir);
  }

  private secretData(ns: string, name: string): Record<string, string> | undefined {
    return this.opts.secrets?.[`${ns}/${name}`] ?? this.opts.secrets?.[name] ?? this.m.secrets.get(`${ns}/${name}`);
  }

  private containerEnv(c: Container): Record<string, string> {
    const p = c.pod;
    const s = c.spec;
    const env: Record<string, string> = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOSTNAME: p.hostname,
      HOME: '/root',
    };
    for (const ef of s.envFrom ?? []) {
      const data = ef.configMapRef ? this.m.configMaps.get(`${p.namespace}/${ef.configMapRef.name}`) : ef.secretRef ? this.secretData(p.namespace, ef.secretRef.name) : undefined;
      for (const [k, v] of Object.entries(data ?? {})) env[(ef.prefix ?? '') + k] = v;
    }
    for (const e of s.env ?? []) {
      const vf = e.valueFrom;
      if (!vf) env[e.name] = expand(String(e.value ?? ''), env);
      else if (vf.fieldRef) env[e.name] = this.fieldRef(p, vf.fieldRef.fieldPath);
      else if (vf.resourceFieldRef) env[e.name] = this.resourceRef(p, s, vf.resourceFieldRef);
      else if (vf.secretKeyRef || vf.configMapKeyRef) {
        const ref = vf.secretKeyRef ?? vf.configMapKeyRef;
        const data = vf.secretKeyRef ? this.secretData(p.namespace, ref.name) : this.m.configMaps.get(`${p.namespace}/${ref.name}`);
        if (data && ref.key in data) env[e.name] = data[ref.key];
        else if (!ref.optional) throw new Error(`env ${e.name}: ${ref.name}/${ref.key} not found`);
      }
    }
    return env;
  }

  private fieldRef(p: Pod, path: string): string {
    const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
    if (m) return m[1] === 'labels' ? p.labels[m[2]] ?? '' : '';
    const v: Record<string, string> = {
      'metadata.name': p.name,
      'metadata.namespace': p.namespace,
      'metadata.uid': `sim-${this.runId}-${p.uid}`,
      'status.podIP': p.ip,
      'status.podIPs': p.ip,
      'status.hostIP': p.ip,
      'spec.nodeName': this.opts.nodeName ?? 'sim-node',
      'spec.serviceAccountName': 'default',
    };
    if (!(path in v)) throw new Error(`fieldRef ${path} not simulated`);
    return v[path];
  }

  private resourceRef(p: Pod, self: ContainerSpec, r: Obj): string {
    const cs = r.containerName ? p.spec.containers.find((c) => c.name === r.containerName) ?? self : self;
    const [kind, res] = String(r.resource).split('.');
    const q = cs.resources?.[kind as 'limits' | 'requests']?.[res];
    const node = res === 'cpu' ? cpus().length : res === 'memory' ? totalmem() : 0;
    const value = q !== undefined ? parseQuantity(q) : kind === 'limits' ? node : 0;
    return String(Math.ceil(value / parseQuantity(r.divisor ?? 1)));
  }

  // ---------------------------------------------------------------- DNS

  // Cluster DNS as hosts files (one per pod, each with its own hostname, the rest
  // shared). Kubernetes rules: Service names -> endpoint IPs; pod records
  // <hostname>.<subdomain> of headless Services; endpoints are ready, non-terminating
  // pods, or every pod with an IP when publishNotReadyAddresses is set.
  private publish(): void {
    if (this.stopped) return;
    for (const p of this.podMap.values()) if (p.ip && existsSync(p.dir)) writeInPlace(join(p.dir, 'hosts'), this.hostsFor(p.hostname, p.ip, p));
    for (const c of this.clients.values()) writeInPlace(join(c.dir, 'hosts'), this.hostsFor(c.name, c.net.ip));
  }

  private hostsFor(hostname: string, ip: string, self?: Pod): string {
    const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
    const own = self?.subdomain ? `${hostname}.${self.subdomain}.${self.namespace}.svc.cluster.local ` : '';
    lines.push(`${ip}\t${own}${hostname}`);
    for (const svc of this.m.services) {
      const eps = [...this.podMap.values()].filter((p) =>
        p.ip && p.namespace === svc.namespace && sameLabels(svc.selector, p.labels) && (svc.publishNotReadyAddresses || this.podReady(p)));
      const names = (n: string): string => `${n} ${n}.${svc.namespace} ${n}.${svc.namespace}.svc ${n}.${svc.namespace}.svc.cluster.local`;
      for (const p of eps) lines.push(`${p.ip}\t${names(svc.name)}`);
      if (svc.headless) for (const p of eps) if (p.subdomain === svc.name) lines.push(`${p.ip}\t${names(`${p.hostname}.${svc.name}`)}`);
    }
    return lines.join('\n') + '\n';
  }

  private resolvConf(ns: string): string {
    // Names missing from /etc/hosts fail fast: nothing listens on the pod's loopback.
    return `nameserver 127.0.0.1\nsearch ${ns}.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:1 attempts:1\n`;
  }

  // ---------------------------------------------------------------- helpers

  private async setLink(name: string, up: boolean): Promise<void> {
    const target = this.podMap.get(name) ?? this.clients.get(name);
    const net = target?.net;
    if (!target || !net) throw new Error(`no pod ${name} with a network`);
    await this.net.setLink(net, up);
    target.partitioned = !up;
    this.event(`${up ? 'heal' : 'partition'} ${name}`);
  }

  private container(pod: string, name?: string): Container {
    const p = this.podMap.get(pod);
    if (!p) throw new Error(`no pod ${pod}`);
    const c = name ? p.containers.find((x) => x.spec.name === name) : p.containers[0];
    if (!c) throw new Error(`no container ${name ?? '(default)'} in pod ${pod}`);
    return c;
  }

  private workload(kind: string, name: string): Workload {
    const wl = this.m.workloads.find((w) => w.kind === kind && w.name === name);
    if (!wl) throw new Error(`no ${kind} ${name}`);
    return wl;
  }

  private defaultNamespace(): string {
    return this.m.workloads[0]?.namespace ?? 'default';
  }

  private event(line: string): void {
    const l = `${new Date().toISOString().slice(11, 23)} ${line}`;
    this.events.push(l);
    if (this.events.length > 5000) this.events.splice(0, 1000);
    this.opts.log?.(l);
  }

  private notice(line: string): void {
    if (this.notices.has(line)) return;
    this.notices.add(line);
    this.event(line);
    if (!this.opts.log) console.warn(`[sim] ${line}`);
  }
}
