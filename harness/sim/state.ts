// What one simulated cluster holds, shared by the modules that act on it (pods,
// containers, probes, volumes, DNS, controllers, network faults, queries), and the few
// lookups and event lines they all use.
import { Manifests, Workload, parseManifests } from './manifests';
import { Network, PREFIX, newRunId } from './network';
import { Client, Container, Pod, SimOptions } from './types';

export const randomName = (n: number): string =>
  Array.from({ length: n }, () => 'bcdfghjklmnpqrstvwxz2456789'[Math.floor(Math.random() * 27)]).join('');

export class SimState {
  readonly runId: string;
  readonly dir: string;
  readonly events: string[] = [];
  readonly m: Manifests;
  readonly net: Network;
  readonly podMap = new Map<string, Pod>();
  readonly clients = new Map<string, Client>();
  // Pods whose recreation the test holds back: name -> time it may be recreated.
  readonly holds = new Map<string, { wl: Workload; until: number }>();
  // Pod and client-pod names of each side of the partition in force (partitionGroups).
  partitionSpec: string[][] = [];
  readonly revisions = new Map<Workload, string>();
  readonly rolling = new Set<Workload>();
  readonly notices = new Set<string>();
  readonly lastLogs = new Map<string, string>(); // "<pod>/<container>" -> log file
  readonly previousLogs = new Map<string, string>(); // same, for the pod instance before (kubectl logs --previous)
  // Secrets changed while the cluster runs (updateSecret): "<ns>/<name>" -> data; wins over opts.secrets.
  readonly secretUpdates = new Map<string, Record<string, string>>();
  // Secret updates a pod's kubelet has yet to apply (secrets.ts); cleared on stop.
  readonly secretSyncs = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  uidSeq = 0;
  timer?: NodeJS.Timeout;
  reconciling = false;
  stopped = false;
  readonly restartDelayMs: number;
  // The controllers' reconcile loop (controllers.ts), set by the cluster: called when a pod
  // goes, a container becomes ready, or a hold is released.
  reconcile: () => Promise<void> = async () => {};

  constructor(readonly opts: SimOptions) {
    this.m = parseManifests(opts.manifests);
    this.runId = newRunId();
    this.dir = `/tmp/${PREFIX}-${this.runId}`;
    this.net = new Network(this.runId);
    this.restartDelayMs = opts.restartDelayMs ?? 1000;
    for (const wl of this.m.workloads) this.revisions.set(wl, randomName(9));
  }

  podReady(p: Pod): boolean {
    return p.phase === 'Running' && !p.terminating && p.containers.every((c) => c.ready);
  }

  container(pod: string, name?: string): Container {
    const p = this.podMap.get(pod);
    if (!p) throw new Error(`no pod ${pod}`);
    const c = name ? p.containers.find((x) => x.spec.name === name) : p.containers[0];
    if (!c) throw new Error(`no container ${name ?? '(default)'} in pod ${pod}`);
    return c;
  }

  workload(kind: string, name: string): Workload {
    const wl = this.m.workloads.find((w) => w.kind === kind && w.name === name);
    if (!wl) throw new Error(`no ${kind} ${name}`);
    return wl;
  }

  // The StatefulSet whose ordinal pod this name is ("redis-slave-1"), if any.
  statefulSetOf(pod: string): Workload | undefined {
    return this.m.workloads.find((w) => {
      const m = w.kind === 'StatefulSet' && pod.startsWith(`${w.name}-`) ? /^(0|[1-9]\d*)$/.exec(pod.slice(w.name.length + 1)) : null;
      return m !== null && Number(m[1]) < w.replicas;
    });
  }

  defaultNamespace(): string {
    return this.m.workloads[0]?.namespace ?? 'default';
  }

  secretData(ns: string, name: string): Record<string, string> | undefined {
    return this.secretUpdates.get(`${ns}/${name}`) ?? this.opts.secrets?.[`${ns}/${name}`] ?? this.opts.secrets?.[name] ?? this.m.secrets.get(`${ns}/${name}`);
  }

  event(line: string): void {
    const l = `${new Date().toISOString().slice(11, 23)} ${line}`;
    this.events.push(l);
    if (this.events.length > 5000) this.events.splice(0, 1000);
    this.opts.log?.(l);
  }

  notice(line: string): void {
    if (this.notices.has(line)) return;
    this.notices.add(line);
    this.event(line);
    if (!this.opts.log) console.warn(`[sim] ${line}`);
  }
}
