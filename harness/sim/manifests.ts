// Reads rendered multi-document Kubernetes YAML into the few shapes the simulator
// runs: workloads (StatefulSet/Deployment) with their pod template, Services,
// ConfigMaps and Secrets. Only the fields a kubelet-like runner needs are typed.
import { parseAllDocuments } from 'yaml';
import { existsSync } from 'node:fs';

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Obj = Record<string, any>;

export interface Probe {
  exec?: { command: string[] };
  tcpSocket?: { port: number | string; host?: string };
  httpGet?: Obj;
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
}

export interface ContainerSpec {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: Obj[];
  envFrom?: Obj[];
  ports?: { name?: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string; subPath?: string; readOnly?: boolean }[];
  resources?: { limits?: Obj; requests?: Obj };
  securityContext?: Obj;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] } }; postStart?: { exec?: { command: string[] } } };
}

export interface PodSpec {
  containers: ContainerSpec[];
  initContainers?: ContainerSpec[];
  volumes?: Obj[];
  securityContext?: Obj;
  terminationGracePeriodSeconds?: number;
  hostname?: string;
  subdomain?: string;
}

export interface Workload {
  kind: 'StatefulSet' | 'Deployment';
  name: string;
  namespace: string;
  replicas: number;
  labels: Record<string, string>; // pod template labels
  spec: PodSpec;
  serviceName?: string; // StatefulSet: governing headless Service (pod DNS subdomain)
  parallel: boolean; // StatefulSet podManagementPolicy: Parallel
  claimTemplates: string[]; // StatefulSet volumeClaimTemplates names
  maxSurge: number; // Deployment RollingUpdate, resolved against replicas
  maxUnavailable: number;
}

export interface Service {
  name: string;
  namespace: string;
  selector: Record<string, string>;
  headless: boolean;
  publishNotReadyAddresses: boolean;
}

// A label selector (matchLabels and matchExpressions), as in NetworkPolicies.
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

export interface NetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string; except?: string[] };
}

export interface NetworkPolicyPort {
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  port?: number | string;
  endPort?: number;
}

export interface NetworkPolicyRule {
  peers?: NetworkPolicyPeer[]; // `from` (ingress) or `to` (egress); absent or empty: every source/destination
  ports?: NetworkPolicyPort[]; // absent or empty: every port
}

export interface NetworkPolicy {
  name: string;
  namespace: string;
  podSelector: LabelSelector;
  ingress?: NetworkPolicyRule[]; // undefined: the policy does not isolate ingress
  egress?: NetworkPolicyRule[]; // undefined: the policy does not isolate egress
}

export interface Manifests {
  workloads: Workload[];
  networkPolicies: NetworkPolicy[];
  namespaceLabels: Map<string, Record<string, string>>; // Namespace objects of the manifests: name -> labels
  services: Service[];
  configMaps: Map<string, Record<string, string>>; // key: <ns>/<name>; binaryData decoded to text
  secrets: Map<string, Record<string, string>>; // key: <ns>/<name>
}

// "25%" of n rounded up (surge) or down (unavailable), or an absolute number.
function intOrPercent(v: unknown, n: number, def: string, roundUp: boolean): number {
  const s = String(v ?? def);
  if (!s.endsWith('%')) return Number(s);
  const x = (Number(s.slice(0, -1)) * n) / 100;
  return roundUp ? Math.ceil(x) : Math.floor(x);
}

export function parseManifests(yamlText: string): Manifests {
  const out: Manifests = { workloads: [], networkPolicies: [], namespaceLabels: new Map(), services: [], configMaps: new Map(), secrets: new Map() };
  // YAML 1.1 like Kubernetes' parser: defaultMode: 0755 is octal there.
  for (const doc of parseAllDocuments(yamlText, { version: '1.1' })) {
    const o = doc.toJS() as Obj | null;
    if (!o || typeof o !== 'object') continue;
    const items: Obj[] = o.kind === 'List' ? o.items ?? [] : [o];
    for (const r of items) addObject(out, r);
  }
  return out;
}

function addObject(out: Manifests, r: Obj): void {
  const name: string = r.metadata?.name;
  const namespace: string = r.metadata?.namespace ?? 'default';
  const key = `${namespace}/${name}`;
  switch (r.kind) {
    case 'ConfigMap': {
      const data: Record<string, string> = { ...(r.data ?? {}) };
      for (const [k, v] of Object.entries(r.binaryData ?? {})) data[k] = Buffer.from(String(v), 'base64').toString();
      out.configMaps.set(key, data);
      break;
    }
    case 'Secret': {
      const data: Record<string, string> = {};
      for (const [k, v] of Object.entries(r.data ?? {})) data[k] = Buffer.from(String(v), 'base64').toString();
      Object.assign(data, r.stringData ?? {});
      out.secrets.set(key, data);
      break;
    }
    case 'Service':
      out.services.push({
        name,
        namespace,
        selector: r.spec?.selector ?? {},
        headless: r.spec?.clusterIP === 'None',
        publishNotReadyAddresses: r.spec?.publishNotReadyAddresses === true,
      });
      break;
    case 'StatefulSet':
    case 'Deployment': {
      const replicas = r.spec?.replicas ?? 1;
      const ru = r.spec?.strategy?.rollingUpdate ?? {};
      out.workloads.push({
        kind: r.kind,
        name,
        namespace,
        replicas,
        labels: r.spec?.template?.metadata?.labels ?? {},
        spec: r.spec?.template?.spec,
        serviceName: r.spec?.serviceName,
        parallel: r.spec?.podManagementPolicy === 'Parallel',
        claimTemplates: (r.spec?.volumeClaimTemplates ?? []).map((c: Obj) => c.metadata?.name),
        maxSurge: intOrPercent(ru.maxSurge, replicas, '25%', true),
        maxUnavailable: intOrPercent(ru.maxUnavailable, replicas, '25%', false),
      });
      break;
    }
    case 'Namespace':
      out.namespaceLabels.set(name, r.metadata?.labels ?? {});
      break;
    case 'NetworkPolicy': {
      // policyTypes defaults as in Kubernetes: Ingress always, Egress when there are egress rules.
      const spec = r.spec ?? {};
      const types: string[] = spec.policyTypes ?? ['Ingress', ...(spec.egress ? ['Egress'] : [])];
      const rules = (list: Obj[] | undefined, peers: 'from' | 'to'): NetworkPolicyRule[] =>
        (list ?? []).map((x) => ({ peers: x[peers], ports: x.ports }));
      out.networkPolicies.push({
        name,
        namespace,
        podSelector: spec.podSelector ?? {},
        ingress: types.includes('Ingress') ? rules(spec.ingress, 'from') : undefined,
        egress: types.includes('Egress') ? rules(spec.egress, 'to') : undefined,
      });
      break;
    }
    default: // PDBs, monitors...: nothing to run
  }
}

// Kubernetes resource quantities ("256Mi", "1G", "500m", "0.5Gi") as a number.
export function parseQuantity(q: string | number): number {
  if (typeof q === 'number') return q;
  const m = /^([0-9.]+(?:e[0-9]+)?)([a-zA-Z]*)$/.exec(q.trim());
  if (!m) throw new Error(`bad quantity ${q}`);
  const mult: Record<string, number> = {
    '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
    Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
  };
  if (!(m[2] in mult)) throw new Error(`bad quantity suffix ${q}`);
  return Number(m[1]) * mult[m[2]];
}

// Which images the host can stand in for. Redis/Valkey images use the host's Redis
// binaries; redis_exporter images the host's prometheus-redis-exporter (EXPORTER_BINARY);
// haproxy images the host's haproxy (HAPROXY_BINARY);
// plain OS images only need the host's sh/coreutils. Everything else (other exporters,
// ...) cannot run here and is skipped with a notice.
export function imageRunnable(image: string): boolean {
  const repo = imageRepo(image);
  if (isExporterImage(image)) return existsSync(EXPORTER_BINARY);
  if (isHaproxyImage(image)) return existsSync(HAPROXY_BINARY);
  if (/exporter|metrics/i.test(repo)) return false;
  return /redis|valkey/i.test(repo) || /^(busybox|alpine|debian|ubuntu)$/.test(repo);
}

function imageRepo(image: string): string {
  return image.split('@')[0].replace(/:[^/]*$/, '').split('/').pop() ?? '';
}

export function isRedisImage(image: string): boolean {
  return !isExporterImage(image) && /redis|valkey/i.test(imageRepo(image));
}

/**
 * oliver006/redis_exporter (a scratch image: the binary /redis_exporter, its entrypoint).
 * The simulator runs Debian's build of the same program in its place, bound at
 * EXPORTER_ENTRYPOINT; the flags are the same (Go's flag package, one or two dashes).
 */
export function isExporterImage(image: string): boolean {
  return /^redis_exporter$/i.test(imageRepo(image));
}
export const EXPORTER_BINARY = '/usr/bin/prometheus-redis-exporter';
export const EXPORTER_ENTRYPOINT = '/redis_exporter';

/**
 * The official haproxy image (binary /usr/local/sbin/haproxy). The simulator runs Debian's
 * haproxy of the same version (built with Lua and the Prometheus exporter too), bound at
 * HAPROXY_ENTRYPOINT; the container's command names that path.
 */
export function isHaproxyImage(image: string): boolean {
  return /^haproxy$/i.test(imageRepo(image));
}
export const HAPROXY_BINARY = '/usr/sbin/haproxy';
export const HAPROXY_ENTRYPOINT = '/usr/local/sbin/haproxy';
