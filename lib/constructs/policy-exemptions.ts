/**
 * Deliberate exceptions to the checks of kube-score, kube-linter, Polaris and checkov,
 * written on the workload with each tool's own exemption annotation and the reason next
 * to it. The policy test (test/unit/policy.test.ts) honours an exemption only when both
 * are there, and reports an exemption that is no longer needed.
 */

/** One deliberate exception: the checks it covers, by upstream id per tool, and why. */
export interface PolicyExemption {
  readonly reason: string;
  readonly kubeScore?: readonly string[];
  readonly kubeLinter?: readonly string[];
  readonly polaris?: readonly string[];
  readonly checkov?: readonly string[];
}

/** Prefix of the reason annotations of the tools whose own annotation has no room for one. */
export const EXEMPTION_REASON_PREFIX = 'redis-sentinel-ha/reason.';

const CPU_LIMIT: PolicyExemption = {
  reason: 'No CPU limit on purpose: CFS throttling stalls Redis, Sentinel and their helper containers past their timeouts and causes false failovers; CPU requests are set',
  kubeScore: ['container-resources'],
  kubeLinter: ['unset-cpu-requirements'],
  polaris: ['cpuLimitsMissing'],
  checkov: ['CKV_K8S_11'],
};

const UID: PolicyExemption = {
  reason: 'uid/gid 999 is the redis user the official Redis image is built for and that owns existing data volumes; runAsNonRoot is enforced',
  kubeScore: ['container-security-context-user-group-id'],
  checkov: ['CKV_K8S_40'],
};

const PULL_POLICY: PolicyExemption = {
  reason: 'The image is pinned (version tag, optionally a digest), so IfNotPresent pulls the same image; Always would make every restart after a failover depend on the registry',
  kubeScore: ['container-image-pull-policy'],
  polaris: ['pullPolicyNotAlways'],
  checkov: ['CKV_K8S_15'],
};

const NO_DIGEST: PolicyExemption = {
  reason: 'Pinned to a version tag; give the image as name:tag@sha256:digest to pin its content',
  checkov: ['CKV_K8S_43'],
};

const METRICS_SECRET_ENV: PolicyExemption = {
  reason: 'redis_exporter takes its password only from the environment or a JSON map file read once at start, not from a plain Secret file; the value stays in the Secret (secretKeyRef), is the read-only metrics user\'s, and never appears in the manifests',
  checkov: ['CKV_K8S_35'],
};

/**
 * What the pod's images and sidecars change about the exemptions: whether every image
 * carries a digest (the Redis image, and the exporter's when `metrics` is on), and whether
 * the exporter sidecar is there.
 */
export interface WorkloadImages {
  readonly allDigests: boolean;
  readonly metrics: boolean;
}

function sidecarProbes(container: string, main: string): PolicyExemption {
  return {
    reason: `The ${container} container serves no traffic and has no port: a loop whose every redis-cli call has a timeout, it exits on error and the kubelet restarts it; the pod's readiness is the ${main} container's`,
    kubeLinter: ['no-liveness-probe', 'no-readiness-probe'],
    polaris: ['livenessProbeMissing', 'readinessProbeMissing'],
    checkov: ['CKV_K8S_8', 'CKV_K8S_9'],
  };
}

/** The exemptions of a Redis StatefulSet (containers redis and guard, and metrics when on). */
export function redisExemptions(w: WorkloadImages): PolicyExemption[] {
  return [CPU_LIMIT, UID, PULL_POLICY, ...(w.allDigests ? [] : [NO_DIGEST]),
    sidecarProbes('guard', 'redis'), ...(w.metrics ? [METRICS_SECRET_ENV] : [])];
}

/** The exemptions of the Sentinel Deployment (containers sentinel and janitor, and metrics when on). */
export function sentinelExemptions(w: WorkloadImages): PolicyExemption[] {
  return [CPU_LIMIT, UID, PULL_POLICY, ...(w.allDigests ? [] : [NO_DIGEST]),
    sidecarProbes('janitor', 'sentinel'), ...(w.metrics ? [METRICS_SECRET_ENV] : [])];
}

/** The annotations that write these exemptions, in each tool's own form, with their reasons. */
export function exemptionAnnotations(exemptions: readonly PolicyExemption[]): { [key: string]: string } {
  const annotations: { [key: string]: string } = {};
  const kubeScore: string[] = [];
  let skip = 0;
  for (const e of exemptions) {
    for (const id of e.kubeScore ?? []) {
      kubeScore.push(id);
      annotations[`${EXEMPTION_REASON_PREFIX}kube-score.${id}`] = e.reason;
    }
    for (const id of e.kubeLinter ?? []) annotations[`ignore-check.kube-linter.io/${id}`] = e.reason;
    for (const id of e.polaris ?? []) {
      annotations[`polaris.fairwinds.com/${id}-exempt`] = 'true';
      annotations[`${EXEMPTION_REASON_PREFIX}polaris.${id}`] = e.reason;
    }
    // checkov reads "<check id>=<comment>"; the comment is the reason.
    for (const id of e.checkov ?? []) annotations[`checkov.io/skip${++skip}`] = `${id}=${e.reason}`;
  }
  if (kubeScore.length) annotations['kube-score/ignore'] = kubeScore.join(',');
  return annotations;
}

const PROXY_CPU_LIMIT: PolicyExemption = {
  reason: 'No CPU limit on purpose: CFS throttling would stall HAProxy\'s forwarding and its decider past their 500 ms checks, closing writes for nothing; a CPU request is set',
  kubeScore: ['container-resources'],
  kubeLinter: ['unset-cpu-requirements'],
  polaris: ['cpuLimitsMissing'],
  checkov: ['CKV_K8S_11'],
};

/** The exemptions of the proxy Deployment (container haproxy); NO_DIGEST unless its image has a digest. */
export function proxyExemptions(imageHasDigest: boolean): PolicyExemption[] {
  return [PROXY_CPU_LIMIT, PULL_POLICY, ...(imageHasDigest ? [] : [NO_DIGEST])];
}
