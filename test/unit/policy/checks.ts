// The checks of kube-score, kube-linter, Polaris and checkov that fit the objects this
// package writes (StatefulSet, Deployment, Service, ConfigMap, PodDisruptionBudget,
// ServiceAccount, Namespace, NetworkPolicy), each named by its upstream id and written as a
// predicate over the synthesized JSON, and the tools' own exemption annotations.
//
// An exemption is honoured only when it is written with the tool's annotation AND carries a
// reason: kube-linter's and checkov's annotations hold the reason themselves; kube-score's
// `kube-score/ignore` and Polaris' `polaris.fairwinds.com/<id>-exempt` need the reason
// annotation `redis-sentinel-ha/reason.<tool>.<id>` beside them. An exemption the object
// does not need (the check passes) or that names no check known here is reported too.
//
// Stricter than the tools in one place on purpose: kube-score treats an ignored
// container-resources as ignoring container-ephemeral-storage-request-and-limit too; here
// the ephemeral-storage check still applies, since the exemption is about the CPU limit only.
import { EXEMPTION_REASON_PREFIX } from '../../../lib/internal';

export type Tool = 'kube-score' | 'kube-linter' | 'polaris' | 'checkov';
type Obj = any;

export interface Check {
  readonly tool: Tool;
  readonly id: string;
  readonly what: string;
  /** Kinds the check applies to. */
  readonly kinds: readonly string[];
  /** What is wrong with the object (empty: it passes). `all` is every object of the environment. */
  readonly violations: (o: Obj, all: readonly Obj[]) => string[];
}

export interface Finding {
  readonly tool: Tool;
  readonly id: string;
  readonly object: string;
  readonly message: string;
}

export interface Exempted {
  readonly tool: Tool;
  readonly id: string;
  readonly object: string;
  readonly reason: string;
}

const WORKLOADS = ['StatefulSet', 'Deployment', 'DaemonSet', 'ReplicaSet', 'Job', 'Pod'];
const NAMESPACED = ['StatefulSet', 'Deployment', 'DaemonSet', 'ReplicaSet', 'Job', 'Pod', 'Service', 'ConfigMap',
  'Secret', 'PodDisruptionBudget', 'ServiceAccount', 'NetworkPolicy', 'Role', 'RoleBinding'];

// --- reading the objects --------------------------------------------------------------

export function objectName(o: Obj): string {
  return `${o.kind}/${o.metadata?.name}`;
}

function podSpec(o: Obj): Obj {
  return o.kind === 'Pod' ? o.spec ?? {} : o.spec?.template?.spec ?? {};
}

function podLabels(o: Obj): { [k: string]: string } {
  return (o.kind === 'Pod' ? o.metadata?.labels : o.spec?.template?.metadata?.labels) ?? {};
}

function containers(o: Obj): Obj[] {
  return podSpec(o).containers ?? [];
}

function allContainers(o: Obj): Obj[] {
  return [...(podSpec(o).initContainers ?? []), ...containers(o)];
}

function sameNamespace(a: Obj, b: Obj): boolean {
  return (a.metadata?.namespace ?? '') === (b.metadata?.namespace ?? '');
}

function matchLabels(selector: { [k: string]: string } | undefined, labels: { [k: string]: string }): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** A label selector (matchLabels and matchExpressions In/NotIn/Exists/DoesNotExist); an empty one selects everything. */
function selects(selector: Obj, labels: { [k: string]: string }): boolean {
  if (!selector) return false;
  const ml: { [k: string]: string } = selector.matchLabels ?? {};
  if (!Object.entries(ml).every(([k, v]) => labels[k] === v)) return false;
  return (selector.matchExpressions ?? []).every((e: Obj) => {
    switch (e.operator) {
      case 'In': return e.values.includes(labels[e.key]);
      case 'NotIn': return !e.values.includes(labels[e.key]);
      case 'Exists': return e.key in labels;
      case 'DoesNotExist': return !(e.key in labels);
      default: return false;
    }
  });
}

function workloadsIn(o: Obj, all: readonly Obj[]): Obj[] {
  return all.filter((w) => WORKLOADS.includes(w.kind) && sameNamespace(w, o));
}

/** `repository[:tag][@digest]`: the tag ('' when none) and the digest. */
export function imageParts(image: string): { tag: string; digest: string } {
  const at = image.indexOf('@');
  const digest = at < 0 ? '' : image.slice(at + 1);
  const name = at < 0 ? image : image.slice(0, at);
  const colon = name.indexOf(':', name.lastIndexOf('/') + 1);
  return { tag: colon < 0 ? '' : name.slice(colon + 1), digest };
}

function effective(o: Obj, c: Obj, field: string): unknown {
  return c.securityContext?.[field] ?? podSpec(o).securityContext?.[field];
}

function resource(c: Obj, kind: 'requests' | 'limits', name: string): unknown {
  return c.resources?.[kind]?.[name];
}

function present(q: unknown): boolean {
  return q !== undefined && q !== null && String(q) !== '' && String(q) !== '0';
}

/** One message per container that fails `ok`. */
function perContainer(o: Obj, ok: (c: Obj) => boolean, message: string, list: (o: Obj) => Obj[] = containers): string[] {
  return list(o).filter((c) => !ok(c)).map((c) => `container ${c.name}: ${message}`);
}

function drops(c: Obj, capability: string): boolean {
  const drop: string[] = (c.securityContext?.capabilities?.drop ?? []).map((x: string) => x.toUpperCase());
  return drop.includes('ALL') || drop.includes(capability);
}

function dropsAll(c: Obj): boolean {
  return (c.securityContext?.capabilities?.drop ?? []).map((x: string) => x.toUpperCase()).includes('ALL');
}

function added(c: Obj): string[] {
  return (c.securityContext?.capabilities?.add ?? []).map((x: string) => x.toUpperCase().replace(/^CAP_/, ''));
}

function hostnameAntiAffinity(o: Obj): boolean {
  const anti = podSpec(o).affinity?.podAntiAffinity ?? {};
  const terms: Obj[] = [
    ...(anti.requiredDuringSchedulingIgnoredDuringExecution ?? []),
    ...(anti.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((t: Obj) => t.podAffinityTerm),
  ];
  return terms.some((t) => t?.topologyKey === 'kubernetes.io/hostname' && selects(t.labelSelector, podLabels(o)));
}

function antiAffinityCheck(o: Obj): string[] {
  if ((o.spec?.replicas ?? 1) < 2) return [];
  return hostnameAntiAffinity(o) ? [] : ['no pod anti-affinity on kubernetes.io/hostname selecting its own pods'];
}

function hasPdb(o: Obj, all: readonly Obj[]): string[] {
  const ok = all.some((p) => p.kind === 'PodDisruptionBudget' && sameNamespace(p, o) && selects(p.spec?.selector, podLabels(o)));
  return ok ? [] : ['no PodDisruptionBudget selects its pods'];
}

function targetedByService(o: Obj, all: readonly Obj[]): boolean {
  return all.some((s) => s.kind === 'Service' && sameNamespace(s, o) && matchLabels(s.spec?.selector, podLabels(o)));
}

/**
 * NetworkPolicy checks apply once the environment has NetworkPolicy objects (issue 9 adds
 * them in a separate part); until then they pass with nothing to check.
 */
function isolation(o: Obj, all: readonly Obj[], types: readonly string[]): string[] {
  const policies = all.filter((p) => p.kind === 'NetworkPolicy' && sameNamespace(p, o));
  if (!all.some((p) => p.kind === 'NetworkPolicy')) return [];
  const covering = policies.filter((p) => selects(p.spec?.podSelector, podLabels(o)));
  const missing = types.filter((t) => !covering.some((p) => (p.spec?.policyTypes ?? ['Ingress']).includes(t)));
  return missing.map((t) => `no NetworkPolicy with policyType ${t} selects its pods`);
}

function pdbDisruptions(o: Obj, all: readonly Obj[]): { zero: boolean; why: string } {
  const { minAvailable, maxUnavailable } = o.spec ?? {};
  if (maxUnavailable !== undefined) return { zero: maxUnavailable === 0 || maxUnavailable === '0%', why: `maxUnavailable ${maxUnavailable}` };
  if (minAvailable === '100%') return { zero: true, why: 'minAvailable 100%' };
  if (typeof minAvailable === 'number') {
    const targets = workloadsIn(o, all).filter((w) => selects(o.spec?.selector, podLabels(w)));
    const replicas = targets.reduce((n, w) => n + (w.spec?.replicas ?? 1), 0);
    return { zero: targets.length > 0 && minAvailable >= replicas, why: `minAvailable ${minAvailable} of ${replicas} pods` };
  }
  return { zero: false, why: '' };
}

const SENSITIVE_NAME = /secret|password|passwd|token|api[-_]?key|private[-_]?key|credential/i;
const DEPRECATED_API_VERSIONS = ['extensions/v1beta1', 'apps/v1beta1', 'apps/v1beta2', 'policy/v1beta1',
  'networking.k8s.io/v1beta1', 'batch/v1beta1'];
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const DANGEROUS_CAPABILITIES = ['ALL', 'SYS_ADMIN', 'NET_ADMIN'];
const INSECURE_CAPABILITIES = ['NET_ADMIN', 'CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW',
  'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE'];

// --- checks shared by several tools ---------------------------------------------------

const cpuRequest = (o: Obj) => perContainer(o, (c) => present(resource(c, 'requests', 'cpu')), 'no CPU request');
const cpuLimit = (o: Obj) => perContainer(o, (c) => present(resource(c, 'limits', 'cpu')), 'no CPU limit');
const memoryRequest = (o: Obj) => perContainer(o, (c) => present(resource(c, 'requests', 'memory')), 'no memory request');
const memoryLimit = (o: Obj) => perContainer(o, (c) => present(resource(c, 'limits', 'memory')), 'no memory limit');
const liveness = (o: Obj) => perContainer(o, (c) => c.livenessProbe !== undefined, 'no livenessProbe');
const readiness = (o: Obj) => perContainer(o, (c) => c.readinessProbe !== undefined, 'no readinessProbe');
const readOnlyRoot = (o: Obj) => perContainer(o, (c) => c.securityContext?.readOnlyRootFilesystem === true,
  'readOnlyRootFilesystem is not true', allContainers);
const noPrivilegeEscalation = (o: Obj) => perContainer(o, (c) => c.securityContext?.allowPrivilegeEscalation === false,
  'allowPrivilegeEscalation is not false', allContainers);
const notPrivileged = (o: Obj) => perContainer(o, (c) => c.securityContext?.privileged !== true, 'privileged', allContainers);
const nonRoot = (o: Obj) => perContainer(o, (c) => effective(o, c, 'runAsNonRoot') === true || Number(effective(o, c, 'runAsUser')) > 0,
  'may run as root (neither runAsNonRoot nor a non-zero runAsUser)', allContainers);
const pinnedTag = (o: Obj) => perContainer(o, (c) => {
  const { tag, digest } = imageParts(c.image ?? '');
  return digest !== '' || (tag !== '' && tag !== 'latest');
}, 'image has no tag or the tag "latest"', allContainers);
const pullAlways = (o: Obj) => perContainer(o, (c) => c.imagePullPolicy === 'Always', 'imagePullPolicy is not Always', allContainers);
const hostField = (field: string) => (o: Obj) => (podSpec(o)[field] === true ? [`${field} is true`] : []);
const hostPort = (o: Obj) => perContainer(o, (c) => !(c.ports ?? []).some((p: Obj) => p.hostPort !== undefined), 'uses a hostPort', allContainers);
const hostPathVolumes = (o: Obj): string[] => (podSpec(o).volumes ?? []).filter((v: Obj) => v.hostPath).map((v: Obj) => `volume ${v.name} is a hostPath (${v.hostPath.path})`);
const dropsNetRaw = (o: Obj) => perContainer(o, (c) => drops(c, 'NET_RAW'), 'does not drop NET_RAW (or ALL)', allContainers);
const noAddedCapabilities = (o: Obj) => perContainer(o, (c) => added(c).length === 0, 'adds capabilities', allContainers);
const tokenNotMounted = (o: Obj) => (podSpec(o).automountServiceAccountToken === false ? [] : ['automountServiceAccountToken is not false']);
const highUid = (o: Obj) => perContainer(o, (c) => Number(effective(o, c, 'runAsUser')) >= 10000, 'runAsUser is below 10000', allContainers);

// --- the checks -------------------------------------------------------------------------

const W = ['StatefulSet', 'Deployment'];

export const CHECKS: readonly Check[] = [
  // kube-score (README_CHECKS.md), default checks plus the optional seccomp one.
  { tool: 'kube-score', id: 'container-resources', kinds: W, what: 'every container has CPU and memory requests and limits',
    violations: (o) => [...cpuRequest(o), ...cpuLimit(o), ...memoryRequest(o), ...memoryLimit(o)] },
  { tool: 'kube-score', id: 'container-image-tag', kinds: W, what: 'an explicit tag that is not latest', violations: pinnedTag },
  { tool: 'kube-score', id: 'container-image-pull-policy', kinds: W, what: 'imagePullPolicy Always (unless unset with latest/no tag)',
    violations: (o) => perContainer(o, (c) => {
      const { tag } = imageParts(c.image ?? '');
      return c.imagePullPolicy === 'Always' || (c.imagePullPolicy === undefined && (tag === '' || tag === 'latest'));
    }, 'imagePullPolicy is not Always', allContainers) },
  { tool: 'kube-score', id: 'container-ephemeral-storage-request-and-limit', kinds: W, what: 'every container has an ephemeral-storage request and limit',
    violations: (o) => perContainer(o, (c) => present(resource(c, 'requests', 'ephemeral-storage')) && present(resource(c, 'limits', 'ephemeral-storage')),
      'no ephemeral-storage request and limit') },
  { tool: 'kube-score', id: 'pod-probes', kinds: W, what: 'a pod behind a Service has a readinessProbe, a livenessProbe, and they differ',
    violations: (o, all) => {
      if (!targetedByService(o, all)) return [];
      const cs = containers(o);
      const out: string[] = [];
      if (!cs.some((c) => c.readinessProbe)) out.push('no container has a readinessProbe');
      if (!cs.some((c) => c.livenessProbe)) out.push('no container has a livenessProbe');
      for (const c of cs) {
        if (c.readinessProbe && c.livenessProbe && JSON.stringify(c.readinessProbe) === JSON.stringify(c.livenessProbe)) {
          out.push(`container ${c.name}: readinessProbe and livenessProbe are identical`);
        }
      }
      return out;
    } },
  { tool: 'kube-score', id: 'container-security-context-user-group-id', kinds: W, what: 'runAsUser and runAsGroup of 10000 or more',
    violations: (o) => perContainer(o, (c) => Number(effective(o, c, 'runAsUser')) >= 10000 && Number(effective(o, c, 'runAsGroup')) >= 10000,
      'runAsUser or runAsGroup below 10000', allContainers) },
  { tool: 'kube-score', id: 'container-security-context-privileged', kinds: W, what: 'no privileged container', violations: notPrivileged },
  { tool: 'kube-score', id: 'container-security-context-readonlyrootfilesystem', kinds: W, what: 'read-only root filesystem', violations: readOnlyRoot },
  { tool: 'kube-score', id: 'container-seccomp-profile', kinds: W, what: 'a seccomp profile on the pod or every container',
    violations: (o) => perContainer(o, (c) => effective(o, c, 'seccompProfile') !== undefined, 'no seccompProfile', allContainers) },
  { tool: 'kube-score', id: 'statefulset-has-poddisruptionbudget', kinds: ['StatefulSet'], what: 'a PDB selects its pods', violations: hasPdb },
  { tool: 'kube-score', id: 'deployment-has-poddisruptionbudget', kinds: ['Deployment'], what: 'a PDB selects its pods', violations: hasPdb },
  { tool: 'kube-score', id: 'poddisruptionbudget-has-policy', kinds: ['PodDisruptionBudget'], what: 'minAvailable or maxUnavailable is set',
    violations: (o) => (o.spec?.minAvailable !== undefined || o.spec?.maxUnavailable !== undefined ? [] : ['neither minAvailable nor maxUnavailable']) },
  { tool: 'kube-score', id: 'statefulset-has-host-podantiaffinity', kinds: ['StatefulSet'], what: 'with 2+ replicas, anti-affinity per node', violations: antiAffinityCheck },
  { tool: 'kube-score', id: 'deployment-has-host-podantiaffinity', kinds: ['Deployment'], what: 'with 2+ replicas, anti-affinity per node', violations: antiAffinityCheck },
  { tool: 'kube-score', id: 'statefulset-has-servicename', kinds: ['StatefulSet'], what: 'serviceName names a headless Service selecting its pods',
    violations: (o, all) => {
      const svc = all.find((s) => s.kind === 'Service' && sameNamespace(s, o) && s.metadata.name === o.spec?.serviceName);
      return svc && svc.spec?.clusterIP === 'None' && matchLabels(svc.spec?.selector, podLabels(o)) ? [] : [`serviceName ${o.spec?.serviceName} is no headless Service selecting its pods`];
    } },
  { tool: 'kube-score', id: 'statefulset-pod-selector-labels-match-template-metadata-labels', kinds: ['StatefulSet'], what: 'selector matches the template labels',
    violations: (o) => (selects(o.spec?.selector, podLabels(o)) ? [] : ['selector does not match the pod template labels']) },
  { tool: 'kube-score', id: 'deployment-pod-selector-labels-match-template-metadata-labels', kinds: ['Deployment'], what: 'selector matches the template labels',
    violations: (o) => (selects(o.spec?.selector, podLabels(o)) ? [] : ['selector does not match the pod template labels']) },
  { tool: 'kube-score', id: 'deployment-strategy', kinds: ['Deployment'], what: 'RollingUpdate when behind a Service',
    violations: (o, all) => (!targetedByService(o, all) || (o.spec?.strategy?.type ?? 'RollingUpdate') === 'RollingUpdate' ? [] : ['strategy is not RollingUpdate']) },
  { tool: 'kube-score', id: 'deployment-replicas', kinds: ['Deployment'], what: 'at least 2 replicas',
    violations: (o) => ((o.spec?.replicas ?? 1) >= 2 ? [] : [`${o.spec?.replicas ?? 1} replica(s)`]) },
  { tool: 'kube-score', id: 'pod-networkpolicy', kinds: W, what: 'a NetworkPolicy (Ingress and Egress) selects its pods (once the environment has NetworkPolicies)',
    violations: (o, all) => isolation(o, all, ['Ingress', 'Egress']) },
  { tool: 'kube-score', id: 'networkpolicy-targets-pod', kinds: ['NetworkPolicy'], what: 'the policy selects at least one pod',
    violations: (o, all) => (workloadsIn(o, all).some((w) => selects(o.spec?.podSelector, podLabels(w))) ? [] : ['selects no pod']) },
  { tool: 'kube-score', id: 'service-targets-pod', kinds: ['Service'], what: 'the selector matches a pod template',
    violations: (o, all) => (workloadsIn(o, all).some((w) => matchLabels(o.spec?.selector, podLabels(w))) ? [] : ['selects no pod']) },
  { tool: 'kube-score', id: 'service-type', kinds: ['Service'], what: 'not a NodePort Service',
    violations: (o) => (o.spec?.type === 'NodePort' ? ['type NodePort'] : []) },
  { tool: 'kube-score', id: 'stable-version', kinds: ['*'], what: 'no deprecated apiVersion',
    violations: (o) => (DEPRECATED_API_VERSIONS.includes(o.apiVersion) ? [`deprecated apiVersion ${o.apiVersion}`] : []) },
  { tool: 'kube-score', id: 'label-values', kinds: ['*'], what: 'valid label values',
    violations: (o) => Object.entries(o.metadata?.labels ?? {}).filter(([, v]) => !(String(v).length <= 63 && LABEL_VALUE.test(String(v))))
      .map(([k, v]) => `label ${k}="${v}" is not a valid label value`) },
  { tool: 'kube-score', id: 'environment-variable-key-duplication', kinds: W, what: 'no env var twice in a container',
    violations: (o) => perContainer(o, (c) => new Set((c.env ?? []).map((e: Obj) => e.name)).size === (c.env ?? []).length, 'an env var is set twice', allContainers) },

  // kube-linter (docs/generated/checks.md), the default checks plus no-liveness-probe and no-readiness-probe.
  { tool: 'kube-linter', id: 'no-read-only-root-fs', kinds: W, what: 'read-only root filesystem', violations: readOnlyRoot },
  { tool: 'kube-linter', id: 'run-as-non-root', kinds: W, what: 'runAsNonRoot or a non-zero runAsUser', violations: nonRoot },
  { tool: 'kube-linter', id: 'privilege-escalation-container', kinds: W, what: 'allowPrivilegeEscalation false', violations: noPrivilegeEscalation },
  { tool: 'kube-linter', id: 'privileged-container', kinds: W, what: 'no privileged container', violations: notPrivileged },
  { tool: 'kube-linter', id: 'unset-cpu-requirements', kinds: W, what: 'CPU request and limit', violations: (o) => [...cpuRequest(o), ...cpuLimit(o)] },
  { tool: 'kube-linter', id: 'unset-memory-requirements', kinds: W, what: 'memory request and limit', violations: (o) => [...memoryRequest(o), ...memoryLimit(o)] },
  { tool: 'kube-linter', id: 'latest-tag', kinds: W, what: 'no latest or missing tag', violations: pinnedTag },
  { tool: 'kube-linter', id: 'no-anti-affinity', kinds: W, what: 'with 2+ replicas, anti-affinity per node', violations: antiAffinityCheck },
  { tool: 'kube-linter', id: 'drop-net-raw-capability', kinds: W, what: 'NET_RAW (or ALL) dropped', violations: dropsNetRaw },
  { tool: 'kube-linter', id: 'non-isolated-pod', kinds: W, what: 'a NetworkPolicy selects its pods (once the environment has NetworkPolicies)',
    violations: (o, all) => isolation(o, all, ['Ingress']) },
  { tool: 'kube-linter', id: 'host-network', kinds: W, what: 'no hostNetwork', violations: hostField('hostNetwork') },
  { tool: 'kube-linter', id: 'host-pid', kinds: W, what: 'no hostPID', violations: hostField('hostPID') },
  { tool: 'kube-linter', id: 'host-ipc', kinds: W, what: 'no hostIPC', violations: hostField('hostIPC') },
  { tool: 'kube-linter', id: 'sensitive-host-mounts', kinds: W, what: 'no hostPath volumes', violations: hostPathVolumes },
  { tool: 'kube-linter', id: 'docker-sock', kinds: W, what: 'no docker.sock mount',
    violations: (o) => hostPathVolumes(o).filter((m) => m.includes('docker.sock')) },
  { tool: 'kube-linter', id: 'no-liveness-probe', kinds: W, what: 'every container has a livenessProbe', violations: liveness },
  { tool: 'kube-linter', id: 'no-readiness-probe', kinds: W, what: 'every container has a readinessProbe', violations: readiness },
  { tool: 'kube-linter', id: 'dangling-service', kinds: ['Service'], what: 'the selector matches a pod template',
    violations: (o, all) => (workloadsIn(o, all).some((w) => matchLabels(o.spec?.selector, podLabels(w))) ? [] : ['selects no pod']) },
  { tool: 'kube-linter', id: 'mismatching-selector', kinds: W, what: 'selector matches the template labels',
    violations: (o) => (selects(o.spec?.selector, podLabels(o)) ? [] : ['selector does not match the pod template labels']) },
  { tool: 'kube-linter', id: 'non-existent-service-account', kinds: W, what: 'the ServiceAccount exists among the objects',
    violations: (o, all) => {
      const sa = podSpec(o).serviceAccountName;
      return !sa || all.some((x) => x.kind === 'ServiceAccount' && sameNamespace(x, o) && x.metadata.name === sa) ? [] : [`ServiceAccount ${sa} is not among the objects`];
    } },
  { tool: 'kube-linter', id: 'default-service-account', kinds: W, what: 'not the default ServiceAccount',
    violations: (o) => ((podSpec(o).serviceAccountName ?? 'default') === 'default' ? ['runs as ServiceAccount default'] : []) },
  { tool: 'kube-linter', id: 'deprecated-service-account-field', kinds: W, what: 'no spec.serviceAccount',
    violations: (o) => (podSpec(o).serviceAccount !== undefined ? ['uses the deprecated serviceAccount field'] : []) },
  { tool: 'kube-linter', id: 'env-var-secret', kinds: W, what: 'no secret-looking env var with a literal value',
    violations: (o) => allContainers(o).flatMap((c) => (c.env ?? []).filter((e: Obj) => SENSITIVE_NAME.test(e.name) && e.value)
      .map((e: Obj) => `container ${c.name}: env ${e.name} has a literal value`)) },
  { tool: 'kube-linter', id: 'ssh-port', kinds: W, what: 'no port 22',
    violations: (o) => perContainer(o, (c) => !(c.ports ?? []).some((p: Obj) => p.containerPort === 22), 'exposes port 22', allContainers) },
  { tool: 'kube-linter', id: 'privileged-ports', kinds: W, what: 'no container port below 1024',
    violations: (o) => perContainer(o, (c) => !(c.ports ?? []).some((p: Obj) => p.containerPort < 1024), 'exposes a privileged port', allContainers) },
  { tool: 'kube-linter', id: 'unsafe-sysctls', kinds: W, what: 'no sysctls',
    violations: (o) => (podSpec(o).securityContext?.sysctls ?? []).map((s: Obj) => `sysctl ${s.name}`) },
  { tool: 'kube-linter', id: 'pdb-max-unavailable', kinds: ['PodDisruptionBudget'], what: 'maxUnavailable is not 0',
    violations: (o) => (o.spec?.maxUnavailable === 0 || o.spec?.maxUnavailable === '0%' ? ['maxUnavailable 0 blocks every eviction'] : []) },
  { tool: 'kube-linter', id: 'pdb-min-available', kinds: ['PodDisruptionBudget'], what: 'minAvailable below the replicas it covers',
    violations: (o, all) => (o.spec?.minAvailable !== undefined && pdbDisruptions(o, all).zero ? [`${pdbDisruptions(o, all).why} blocks every eviction`] : []) },

  // Polaris (docs/checks), the checks that apply to these kinds.
  { tool: 'polaris', id: 'cpuRequestsMissing', kinds: W, what: 'CPU request', violations: cpuRequest },
  { tool: 'polaris', id: 'cpuLimitsMissing', kinds: W, what: 'CPU limit', violations: cpuLimit },
  { tool: 'polaris', id: 'memoryRequestsMissing', kinds: W, what: 'memory request', violations: memoryRequest },
  { tool: 'polaris', id: 'memoryLimitsMissing', kinds: W, what: 'memory limit', violations: memoryLimit },
  { tool: 'polaris', id: 'readinessProbeMissing', kinds: W, what: 'readinessProbe on every container', violations: readiness },
  { tool: 'polaris', id: 'livenessProbeMissing', kinds: W, what: 'livenessProbe on every container', violations: liveness },
  { tool: 'polaris', id: 'tagNotSpecified', kinds: W, what: 'a tag that is not latest', violations: pinnedTag },
  { tool: 'polaris', id: 'pullPolicyNotAlways', kinds: W, what: 'imagePullPolicy Always', violations: pullAlways },
  { tool: 'polaris', id: 'hostIPCSet', kinds: W, what: 'no hostIPC', violations: hostField('hostIPC') },
  { tool: 'polaris', id: 'hostPIDSet', kinds: W, what: 'no hostPID', violations: hostField('hostPID') },
  { tool: 'polaris', id: 'hostNetworkSet', kinds: W, what: 'no hostNetwork', violations: hostField('hostNetwork') },
  { tool: 'polaris', id: 'hostPortSet', kinds: W, what: 'no hostPort', violations: hostPort },
  { tool: 'polaris', id: 'runAsRootAllowed', kinds: W, what: 'runAsNonRoot or a non-zero runAsUser', violations: nonRoot },
  { tool: 'polaris', id: 'runAsPrivileged', kinds: W, what: 'no privileged container', violations: notPrivileged },
  { tool: 'polaris', id: 'notReadOnlyRootFilesystem', kinds: W, what: 'read-only root filesystem', violations: readOnlyRoot },
  { tool: 'polaris', id: 'privilegeEscalationAllowed', kinds: W, what: 'allowPrivilegeEscalation false', violations: noPrivilegeEscalation },
  { tool: 'polaris', id: 'dangerousCapabilities', kinds: W, what: `none of ${DANGEROUS_CAPABILITIES.join(', ')} added`,
    violations: (o) => perContainer(o, (c) => !added(c).some((x) => DANGEROUS_CAPABILITIES.includes(x)), 'adds a dangerous capability', allContainers) },
  { tool: 'polaris', id: 'insecureCapabilities', kinds: W, what: 'the insecure capabilities dropped (ALL does)',
    violations: (o) => perContainer(o, (c) => INSECURE_CAPABILITIES.every((x) => drops(c, x) && !added(c).includes(x)), 'keeps an insecure capability', allContainers) },
  { tool: 'polaris', id: 'automountServiceAccountToken', kinds: W, what: 'automountServiceAccountToken false', violations: tokenNotMounted },
  { tool: 'polaris', id: 'linuxHardening', kinds: W, what: 'seccomp, AppArmor or SELinux, or all capabilities dropped',
    violations: (o) => perContainer(o, (c) => effective(o, c, 'seccompProfile') !== undefined || effective(o, c, 'seLinuxOptions') !== undefined
      || effective(o, c, 'appArmorProfile') !== undefined || dropsAll(c), 'no Linux hardening', allContainers) },
  { tool: 'polaris', id: 'procMount', kinds: W, what: 'default procMount',
    violations: (o) => perContainer(o, (c) => (c.securityContext?.procMount ?? 'Default') === 'Default', 'procMount is not Default', allContainers) },
  { tool: 'polaris', id: 'deploymentMissingReplicas', kinds: ['Deployment'], what: 'more than one replica',
    violations: (o) => ((o.spec?.replicas ?? 1) > 1 ? [] : ['a single replica']) },
  { tool: 'polaris', id: 'missingPodDisruptionBudget', kinds: W, what: 'a PDB selects its pods', violations: hasPdb },
  { tool: 'polaris', id: 'pdbDisruptionsIsZero', kinds: ['PodDisruptionBudget'], what: 'the PDB allows at least one disruption',
    violations: (o, all) => (pdbDisruptions(o, all).zero ? [`${pdbDisruptions(o, all).why} allows no disruption`] : []) },
  { tool: 'polaris', id: 'topologySpreadConstraint', kinds: W, what: 'a topologySpreadConstraint',
    violations: (o) => ((podSpec(o).topologySpreadConstraints ?? []).length ? [] : ['no topologySpreadConstraints']) },
  { tool: 'polaris', id: 'sensitiveContainerEnvVar', kinds: W, what: 'no secret-looking env var with a literal value',
    violations: (o) => allContainers(o).flatMap((c) => (c.env ?? []).filter((e: Obj) => SENSITIVE_NAME.test(e.name) && e.value !== undefined)
      .map((e: Obj) => `container ${c.name}: env ${e.name} has a literal value`)) },
  { tool: 'polaris', id: 'sensitiveConfigmapContent', kinds: ['ConfigMap'], what: 'no secret-looking ConfigMap keys',
    violations: (o) => Object.keys({ ...o.data, ...o.binaryData }).filter((k) => SENSITIVE_NAME.test(k)).map((k) => `key ${k}`) },
  { tool: 'polaris', id: 'missingNetworkPolicy', kinds: W, what: 'a NetworkPolicy selects its pods (once the environment has NetworkPolicies)',
    violations: (o, all) => isolation(o, all, ['Ingress']) },

  // checkov (Kubernetes policy index).
  { tool: 'checkov', id: 'CKV_K8S_8', kinds: W, what: 'liveness probe configured', violations: liveness },
  { tool: 'checkov', id: 'CKV_K8S_9', kinds: W, what: 'readiness probe configured', violations: readiness },
  { tool: 'checkov', id: 'CKV_K8S_10', kinds: W, what: 'CPU requests set', violations: cpuRequest },
  { tool: 'checkov', id: 'CKV_K8S_11', kinds: W, what: 'CPU limits set', violations: cpuLimit },
  { tool: 'checkov', id: 'CKV_K8S_12', kinds: W, what: 'memory requests set', violations: memoryRequest },
  { tool: 'checkov', id: 'CKV_K8S_13', kinds: W, what: 'memory limits set', violations: memoryLimit },
  { tool: 'checkov', id: 'CKV_K8S_14', kinds: W, what: 'image tag fixed, not latest or blank', violations: pinnedTag },
  { tool: 'checkov', id: 'CKV_K8S_15', kinds: W, what: 'imagePullPolicy Always',
    violations: (o) => perContainer(o, (c) => {
      const { tag } = imageParts(c.image ?? '');
      return c.imagePullPolicy === 'Always' || (c.imagePullPolicy === undefined && (tag === '' || tag === 'latest'));
    }, 'imagePullPolicy is not Always', allContainers) },
  { tool: 'checkov', id: 'CKV_K8S_16', kinds: W, what: 'no privileged container', violations: notPrivileged },
  { tool: 'checkov', id: 'CKV_K8S_17', kinds: W, what: 'no hostPID', violations: hostField('hostPID') },
  { tool: 'checkov', id: 'CKV_K8S_18', kinds: W, what: 'no hostIPC', violations: hostField('hostIPC') },
  { tool: 'checkov', id: 'CKV_K8S_19', kinds: W, what: 'no hostNetwork', violations: hostField('hostNetwork') },
  { tool: 'checkov', id: 'CKV_K8S_20', kinds: W, what: 'allowPrivilegeEscalation false', violations: noPrivilegeEscalation },
  { tool: 'checkov', id: 'CKV_K8S_21', kinds: NAMESPACED, what: 'not in the default namespace',
    violations: (o) => ((o.metadata?.namespace ?? 'default') === 'default' ? [`namespace ${o.metadata?.namespace ?? '(none: default)'}`] : []) },
  { tool: 'checkov', id: 'CKV_K8S_22', kinds: W, what: 'read-only root filesystem', violations: readOnlyRoot },
  { tool: 'checkov', id: 'CKV_K8S_23', kinds: W, what: 'no root containers admitted', violations: nonRoot },
  { tool: 'checkov', id: 'CKV_K8S_25', kinds: W, what: 'no added capabilities', violations: noAddedCapabilities },
  { tool: 'checkov', id: 'CKV_K8S_26', kinds: W, what: 'no hostPort', violations: hostPort },
  { tool: 'checkov', id: 'CKV_K8S_27', kinds: W, what: 'no docker.sock mount',
    violations: (o) => hostPathVolumes(o).filter((m) => m.includes('docker.sock')) },
  { tool: 'checkov', id: 'CKV_K8S_28', kinds: W, what: 'NET_RAW dropped', violations: dropsNetRaw },
  { tool: 'checkov', id: 'CKV_K8S_29', kinds: W, what: 'a pod securityContext',
    violations: (o) => (podSpec(o).securityContext ? [] : ['no pod securityContext']) },
  { tool: 'checkov', id: 'CKV_K8S_30', kinds: W, what: 'a container securityContext',
    violations: (o) => perContainer(o, (c) => c.securityContext !== undefined, 'no securityContext', allContainers) },
  { tool: 'checkov', id: 'CKV_K8S_31', kinds: W, what: 'seccomp RuntimeDefault',
    violations: (o) => perContainer(o, (c) => (effective(o, c, 'seccompProfile') as Obj)?.type === 'RuntimeDefault', 'seccompProfile is not RuntimeDefault', allContainers) },
  { tool: 'checkov', id: 'CKV_K8S_35', kinds: W, what: 'secrets as files, not env vars',
    violations: (o) => allContainers(o).flatMap((c) => [
      ...(c.env ?? []).filter((e: Obj) => e.valueFrom?.secretKeyRef).map((e: Obj) => `container ${c.name}: env ${e.name} from a Secret`),
      ...(c.envFrom ?? []).filter((e: Obj) => e.secretRef).map(() => `container ${c.name}: envFrom a Secret`),
    ]) },
  { tool: 'checkov', id: 'CKV_K8S_37', kinds: W, what: 'all capabilities dropped',
    violations: (o) => perContainer(o, (c) => dropsAll(c), 'does not drop ALL capabilities', allContainers) },
  { tool: 'checkov', id: 'CKV_K8S_38', kinds: W, what: 'service account token not mounted', violations: tokenNotMounted },
  { tool: 'checkov', id: 'CKV_K8S_39', kinds: W, what: 'no CAP_SYS_ADMIN',
    violations: (o) => perContainer(o, (c) => !added(c).includes('SYS_ADMIN'), 'adds SYS_ADMIN', allContainers) },
  { tool: 'checkov', id: 'CKV_K8S_40', kinds: W, what: 'runAsUser of 10000 or more', violations: highUid },
  { tool: 'checkov', id: 'CKV_K8S_43', kinds: W, what: 'image pinned by digest',
    violations: (o) => perContainer(o, (c) => imageParts(c.image ?? '').digest.startsWith('sha256:'), 'image has no digest', allContainers) },
];

// --- exemptions --------------------------------------------------------------------------

/** The exemption a tool reads for this check on this object: written at all, and its reason. */
export function exemption(tool: Tool, id: string, o: Obj): { written: boolean; reason: string } {
  const a: { [k: string]: string } = o.metadata?.annotations ?? {};
  const reasonOf = (key: string) => String(a[key] ?? '').trim();
  switch (tool) {
    case 'kube-score': {
      // kube-score reads its ignore list on the object and on the pod template.
      const lists = [a['kube-score/ignore'], o.spec?.template?.metadata?.annotations?.['kube-score/ignore']];
      const written = lists.some((l) => String(l ?? '').split(',').map((x) => x.trim()).includes(id));
      return { written, reason: reasonOf(`${EXEMPTION_REASON_PREFIX}kube-score.${id}`) };
    }
    case 'kube-linter': {
      const key = `ignore-check.kube-linter.io/${id}`;
      return { written: key in a, reason: reasonOf(key) };
    }
    case 'polaris':
      return { written: a[`polaris.fairwinds.com/${id}-exempt`] === 'true', reason: reasonOf(`${EXEMPTION_REASON_PREFIX}polaris.${id}`) };
    case 'checkov': {
      for (const [k, v] of Object.entries(a)) {
        if (!/^checkov\.io\/skip\d+$/.test(k)) continue;
        const eq = v.indexOf('=');
        const skipped = (eq < 0 ? v : v.slice(0, eq)).trim();
        if (skipped === id) return { written: true, reason: eq < 0 ? '' : v.slice(eq + 1).trim() };
      }
      return { written: false, reason: '' };
    }
  }
}

/** Exemption annotations naming a check unknown here (a typo exempts nothing). */
function unknownExemptions(o: Obj): Finding[] {
  const a: { [k: string]: string } = o.metadata?.annotations ?? {};
  const known = (tool: Tool, id: string) => CHECKS.some((c) => c.tool === tool && c.id === id);
  const named: [Tool, string][] = [];
  for (const [k, v] of Object.entries(a)) {
    if (k === 'kube-score/ignore') named.push(...String(v).split(',').map((x): [Tool, string] => ['kube-score', x.trim()]));
    let m = /^ignore-check\.kube-linter\.io\/(.+)$/.exec(k);
    if (m) named.push(['kube-linter', m[1]]);
    m = /^polaris\.fairwinds\.com\/(.+)-exempt$/.exec(k);
    if (m) named.push(['polaris', m[1]]);
    if (/^checkov\.io\/skip\d+$/.test(k)) named.push(['checkov', String(v).split('=')[0].trim()]);
  }
  return named.filter(([tool, id]) => !known(tool, id))
    .map(([tool, id]) => ({ tool, id, object: objectName(o), message: `exemption names no known ${tool} check "${id}"` }));
}

export interface PolicyReport {
  /** Violations not covered by a valid exemption, stale or unknown exemptions. */
  readonly findings: Finding[];
  /** Violations covered by an exemption with its reason. */
  readonly exempted: Exempted[];
  /** Checks that applied to at least one object. */
  readonly applied: Set<string>;
}

export function checkKey(c: { tool: Tool; id: string }): string {
  return `${c.tool} ${c.id}`;
}

/** Every check over every object of one environment (`objects` is the whole environment). */
export function runPolicy(objects: readonly Obj[], checks: readonly Check[] = CHECKS): PolicyReport {
  const findings: Finding[] = [];
  const exempted: Exempted[] = [];
  const applied = new Set<string>();
  for (const o of objects) {
    findings.push(...unknownExemptions(o));
    for (const check of checks) {
      if (!check.kinds.includes('*') && !check.kinds.includes(o.kind)) continue;
      applied.add(checkKey(check));
      const problems = check.violations(o, objects);
      const ex = exemption(check.tool, check.id, o);
      const base = { tool: check.tool, id: check.id, object: objectName(o) };
      if (problems.length === 0) {
        if (ex.written) findings.push({ ...base, message: 'exemption written but not needed: the check passes; remove it' });
      } else if (ex.written && ex.reason) {
        exempted.push({ ...base, reason: ex.reason });
      } else {
        const why = ex.written ? ' (exemption written without a reason, so not honoured)' : '';
        findings.push(...problems.map((message) => ({ ...base, message: message + why })));
      }
    }
  }
  return { findings, exempted, applied };
}

export function formatFindings(findings: readonly Finding[]): string {
  return findings.map((f) => `${f.tool} ${f.id} ${f.object}: ${f.message}`).join('\n');
}
