// The simulator's types: what tests see (options, pod summaries, exec results) and the
// pods, containers and client pods it keeps.
import { ChildProcess } from 'node:child_process';
import { ContainerSpec, PodSpec, Workload } from './manifests';
import { PodNet } from './network';
import { SandboxSpec } from './sandbox';

export interface SimOptions {
  manifests: string; // multi-document YAML, e.g. `kubectl kustomize dist/overlays/staging`
  secrets?: Record<string, Record<string, string>>; // Secrets created out of band: name (or "<ns>/<name>") -> key -> value
  log?: (line: string) => void; // cluster events (pod created, container exited, probe failed...)
  restartDelayMs?: number; // back-off before restarting an exited container (default 1000)
  nodeName?: string; // spec.nodeName seen through the downward API (default "sim-node")
  // Labels of client pods started without `labels` (what the NetworkPolicies admit as
  // clients, e.g. { 'redis-client': 'true' }); default none.
  clientLabels?: Record<string, string>;
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
  labels: Record<string, string>;
  proc: ChildProcess;
}

export interface Container {
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

export interface Pod {
  name: string;
  /** The pod's DNS server (dns-server.ts), for pods that resolve names at run time. */
  dnsServer?: import('node:child_process').ChildProcess;
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
  volumeGroup?: number; // the group volumes are owned by (fsGroup), set with the volumes
  uidGid: { uid?: number; gid?: number; fsGroup?: number; groups: number[] };
  boot?: Promise<void>;
  /** Why a Pending pod is not running yet, while it waits (for failure messages). */
  waiting?: string;
}

export interface Client {
  name: string;
  namespace: string;
  labels: Record<string, string>; // what NetworkPolicies see
  net: PodNet;
  dir: string;
  proc: ChildProcess;
  partitioned: boolean;
}
