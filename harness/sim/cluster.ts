// SimCluster: runs the pods of rendered Kubernetes manifests as sandboxed processes,
// one network namespace per pod, with just enough kubelet and controller behaviour
// to test Redis Sentinel failover: probes, restarts, graceful deletion with preStop,
// StatefulSet identities and storage, Deployment rollouts, and network faults.
//
// This class is the API tests use; it composes the modules that do the work, which all
// act on one SimState (state.ts):
//   pods.ts        pod creation, boot, termination; delete/stop/start pods
//   containers.ts  container processes: start, exit and restart, preStop and SIGTERM, exec
//   probes.ts      startup, readiness and liveness probes
//   volumes.ts     emptyDir, ConfigMap, Secret and PVC directories; wiping PVCs
//   secrets.ts     Secret volumes in the kubelet's layout; Secret updates with per-pod skew
//   env.ts         container environment (env, envFrom, downward API)
//   dns.ts         cluster DNS as hosts files
//   controllers.ts StatefulSet and Deployment controllers and rollouts
//   network-faults.ts  link down, partitions into groups, freezing a pod
//   network-policy.ts  NetworkPolicy ingress and egress as nftables rules in each pod's namespace
//   clients.ts     client pods (host programs in a pod network namespace)
//   queries.ts     pod summaries, IPs, logs (what tests and failure reports read)
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ClientPodOptions, startClientPod, stopClientPod } from './clients';
import { exec, killContainer, restartContainer } from './containers';
import { allReady, reconcile, rolloutDeployment, rolloutStatefulSet } from './controllers';
import { cleanLeftovers, liveRuns, removeRun } from './network';
import { healPartitions, partitionGroups, setLink, signalPod } from './network-faults';
import { deletePod, recreatePod, startAllPods, stopAllPods } from './pods';
import { describe, logs, podIp, pods, podsOf } from './queries';
import { SimState } from './state';
import { ClientPod, ExecResult, PodInfo, SimOptions } from './types';
import { sleep, waitFor } from './util';
import { SecretRollout, updateSecret } from './secrets';
import { wipeVolumes } from './volumes';

export type { ClientPod, ExecResult, Phase, PodInfo, SimOptions } from './types';
export type { SecretRollout } from './secrets';

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

export class SimCluster {
  private readonly s: SimState;

  private constructor(opts: SimOptions) {
    this.s = new SimState(opts);
    this.s.reconcile = () => reconcile(this.s);
  }

  get runId(): string { return this.s.runId; }
  get dir(): string { return this.s.dir; }
  get events(): string[] { return this.s.events; }

  static async start(opts: SimOptions): Promise<SimCluster> {
    cleanLeftovers();
    const c = new SimCluster(opts);
    const s = c.s;
    liveRuns.add(s.runId);
    live.add(c);
    installSignalHandlers();
    try {
      mkdirSync(s.dir, { recursive: true });
      for (const d of ['pods', 'pvc', 'logs', 'clients']) mkdirSync(join(s.dir, d));
      await s.net.start();
      s.timer = setInterval(() => void s.reconcile(), 100);
      void s.reconcile();
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  // ---------------------------------------------------------------- queries (queries.ts)

  pods(): PodInfo[] { return pods(this.s); }
  podIp(name: string): string { return podIp(this.s, name); }
  // Pods of one controller ("redis-sentinel" or "Deployment/redis-sentinel"), by name.
  podsOf(workload: string): PodInfo[] { return podsOf(this.s, workload); }
  // previous: the log of the pod's instance before the current one (deleted and recreated).
  logs(pod: string, container?: string, lines = 50, opts: { previous?: boolean } = {}): string {
    return logs(this.s, pod, container, lines, opts);
  }
  // One line per pod, for failure messages.
  describe(): string { return describe(this.s); }

  async waitReady(timeoutMs = 120_000): Promise<void> {
    await waitFor(() => allReady(this.s), timeoutMs, () => `all pods ready (${this.describe()})`);
  }

  async waitPodReady(name: string, timeoutMs = 60_000): Promise<void> {
    await waitFor(() => { const p = this.s.podMap.get(name); return p && this.s.podReady(p); }, timeoutMs, () => `pod ${name} ready (${this.describe()})`);
  }

  waitFor<T>(cond: () => T | Promise<T>, timeoutMs: number, what: string): Promise<T> {
    return waitFor(cond, timeoutMs, what);
  }

  // ---------------------------------------------------------------- containers (containers.ts)

  // SIGKILL the container's process tree. restart: true = after the normal back-off,
  // a number = after that many ms, false = held until restartContainer().
  killContainer(pod: string, container?: string, opts: { restart?: boolean | number } = {}): Promise<void> {
    return killContainer(this.s, pod, container, opts);
  }
  // Starts a held (or running: kills and restarts) container now.
  restartContainer(pod: string, container?: string): Promise<void> { return restartContainer(this.s, pod, container); }
  // Like `kubectl exec`: runs argv in the container's sandbox (same volumes, env, user).
  exec(pod: string, argv: string[], opts: { container?: string; timeoutMs?: number; stdin?: string } = {}): Promise<ExecResult> {
    return exec(this.s, pod, argv, opts);
  }

  // ---------------------------------------------------------------- pods (pods.ts, volumes.ts)

  // Like `kubectl delete pod`: graceful = preStop, SIGTERM, SIGKILL after the grace
  // period; grace: false = SIGKILL now. The controller then recreates the pod (new IP)
  // immediately, after `recreate` ms, or (recreate: false) when recreatePod() is called.
  // wipeVolumes: the pod's PVCs are emptied once it is gone and before it is recreated.
  deletePod(name: string, opts: { grace?: boolean; recreate?: boolean | number; wipeVolumes?: boolean } = {}): Promise<void> {
    return deletePod(this.s, name, opts);
  }
  recreatePod(name: string): void { recreatePod(this.s, name); }
  // Every pod deleted (gracefully unless grace: false), none recreated until startAllPods().
  stopAllPods(opts: { grace?: boolean } = {}): Promise<string[]> { return stopAllPods(this.s, opts); }
  // Releases every held recreation: the controllers create the pods again.
  startAllPods(): void { startAllPods(this.s); }
  // Empties the PVCs of a deleted StatefulSet pod (a lost disk); see volumes.ts.
  wipeVolumes(pod: string): void { wipeVolumes(this.s, pod); }

  // ---------------------------------------------------------------- secrets (secrets.ts)

  // The Secret's data as the API holds it now (a copy), undefined when there is none.
  secret(namespace: string, name: string): Record<string, string> | undefined {
    const d = this.s.secretData(namespace, name);
    return d ? { ...d } : undefined;
  }
  // Like `kubectl apply` of the Secret with this data: each pod mounting it gets the new
  // files (atomic ..data swap) at its own random moment within maxSkewMs, as kubelets on
  // different nodes do; pods created later mount the new data. Does not wait: the
  // returned rollout's `settled` resolves once every pod has it.
  updateSecret(namespace: string, name: string, data: Record<string, string>, opts: { maxSkewMs?: number } = {}): SecretRollout {
    return updateSecret(this.s, namespace, name, data, opts);
  }

  // ---------------------------------------------------------------- faults (network-faults.ts)

  async partition(name: string): Promise<void> { await setLink(this.s, name, false); }
  async heal(name: string): Promise<void> { await setLink(this.s, name, true); }
  // A silent network split between groups of pod or client-pod names; see network-faults.ts.
  partitionGroups(groups: string[][]): Promise<void> { return partitionGroups(this.s, groups); }
  // Removes the split of partitionGroups(): every packet flows again.
  healPartitions(): Promise<void> { return healPartitions(this.s); }
  // The names in force (a copy), [] when healed.
  partitionedGroups(): string[][] { return this.s.partitionSpec.map((g) => [...g]); }
  // Every process of the pod stopped (SIGSTOP), as a stalled node or a long VM pause
  // does: its sockets stay open and nothing answers. thawPod resumes them (SIGCONT).
  async freezePod(name: string): Promise<void> { await signalPod(this.s, name, 'SIGSTOP'); }
  async thawPod(name: string): Promise<void> { await signalPod(this.s, name, 'SIGCONT'); }

  // ---------------------------------------------------------------- rollouts (controllers.ts)

  // RollingUpdate of a Deployment: surge new pods, then delete old ones, batch by batch.
  rolloutDeployment(name: string, timeoutMs = 300_000): Promise<void> { return rolloutDeployment(this.s, name, timeoutMs); }
  // RollingUpdate of a StatefulSet: highest ordinal first, each recreated and Ready before the next.
  rolloutStatefulSet(name: string, timeoutMs = 300_000): Promise<void> { return rolloutStatefulSet(this.s, name, timeoutMs); }
  // A change that alters several pod templates at once (a ConfigMap they all hash): each
  // StatefulSet's controller rolls its own pods, and nothing orders one after the other.
  async rolloutStatefulSets(names: string[], timeoutMs = 300_000): Promise<void> {
    await Promise.all(names.map((n) => this.rolloutStatefulSet(n, timeoutMs)));
  }

  // ---------------------------------------------------------------- client pods (clients.ts)

  // labels: what NetworkPolicies select the pod by (default SimOptions.clientLabels; {} for an unlabelled pod).
  startClientPod(name: string, argv: string[], opts: ClientPodOptions = {}): Promise<ClientPod> {
    return startClientPod(this.s, name, argv, opts);
  }
  stopClientPod(name: string): Promise<void> { return stopClientPod(this.s, name); }

  // ---------------------------------------------------------------- teardown

  // Tears everything down (SIGKILL, no grace). Idempotent; also safe after failures.
  async stop(): Promise<void> {
    const s = this.s;
    if (s.stopped) return;
    s.stopped = true;
    clearInterval(s.timer);
    const procs = [...s.clients.values()].map((c) => c.proc);
    for (const p of s.podMap.values()) {
      for (const c of [...p.initContainers, ...p.containers]) {
        clearTimeout(c.restartTimer);
        if (c.proc) procs.push(c.proc);
      }
      if (p.dnsServer) procs.push(p.dnsServer);
    }
    const exits = procs.filter((p) => p.exitCode === null && p.signalCode === null).map((p) => new Promise((r) => { p.once('exit', r); p.kill('SIGKILL'); }));
    await Promise.race([Promise.all(exits), sleep(5000)]);
    this.stopSync();
  }

  // Synchronous part of stop(), also used from signal/exit handlers.
  stopSync(): void {
    this.s.stopped = true;
    clearInterval(this.s.timer);
    for (const p of this.s.secretSyncs) {
      clearTimeout(p.timer);
      p.resolve();
    }
    this.s.secretSyncs.clear();
    removeRun(this.s.runId);
    liveRuns.delete(this.s.runId);
    live.delete(this);
  }
}
