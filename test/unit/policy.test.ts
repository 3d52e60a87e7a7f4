// The checks of kube-score, kube-linter, Polaris and checkov (test/unit/policy/checks.ts)
// over every object of every environment as kustomize renders it, with the deliberate
// exceptions written on the objects in each tool's own annotation and a reason.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'path';
import { App } from 'cdk8s';
import { Cpu } from 'cdk8s-plus-28';
import { ENVIRONMENTS, renderDist } from '../../main';
import { RedisHaChart, writeTree } from '../../lib/internal';
import { kustomize, TempDirs } from './helpers';
import { checkKey, CHECKS, exemption, formatFindings, runPolicy } from './policy/checks';

const DIGEST_IMAGE = `redis:7.2.7-bookworm@sha256:${'ab12'.repeat(16)}`;
const PROXY_DIGEST_IMAGE = `haproxy:2.6.12@sha256:${'cd34'.repeat(16)}`;

const temp = new TempDirs();
const rendered = new Map<string, any[]>();

beforeAll(() => {
  const dir = temp.make('policy');
  writeTree(dir, renderDist(ENVIRONMENTS), ['']);
  for (const profile of ENVIRONMENTS) rendered.set(profile.name, kustomize(join(dir, 'overlays', profile.name)));
});
afterAll(() => temp.cleanup());

/** A copy of an environment's objects, safe to edit. */
function objectsOf(env: string): any[] {
  return structuredClone(rendered.get(env)!);
}

function find(objects: any[], kind: string, name: string): any {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind}/${name}`);
  return o;
}

/** A chart with these props, namespaced as an overlay would be. */
function chartObjects(redis: object): any[] {
  const objects = new RedisHaChart(new App(), 'policy', { namespace: 'redis-policy', redis }).toJson() as any[];
  return objects.map((o) => (o.kind === 'Namespace' ? o : { ...o, metadata: { ...o.metadata, namespace: 'redis-policy' } }));
}

describe('policy checks', () => {
  for (const profile of ENVIRONMENTS) {
    it(`every object of ${profile.name} passes every check, or carries the tool's exemption with a reason`, () => {
      const report = runPolicy(objectsOf(profile.name));
      expect(formatFindings(report.findings)).toBe('');
      // Each fitting check ran against some object; the kinds here are the package's.
      const kinds = new Set(objectsOf(profile.name).map((o) => o.kind));
      for (const kind of ['ConfigMap', 'Deployment', 'Namespace', 'PodDisruptionBudget', 'Service', 'ServiceAccount', 'StatefulSet']) {
        expect(kinds.has(kind), kind).toBe(true);
      }
      const notApplied = CHECKS.filter((c) => !report.applied.has(checkKey(c)) && c.kinds.some((k) => kinds.has(k) || k === '*'));
      expect(notApplied).toEqual([]);
    });
  }

  it('the deliberate exceptions are exactly these, on the Redis StatefulSets, the Sentinel Deployment and the proxy Deployment', () => {
    const report = runPolicy(objectsOf('staging'));
    const byObject = new Map<string, string[]>();
    for (const e of report.exempted) byObject.set(e.object, [...(byObject.get(e.object) ?? []), `${e.tool} ${e.id}`]);
    const expected = [
      'checkov CKV_K8S_11', 'checkov CKV_K8S_15', 'checkov CKV_K8S_40', 'checkov CKV_K8S_43', 'checkov CKV_K8S_8', 'checkov CKV_K8S_9',
      'kube-linter no-liveness-probe', 'kube-linter no-readiness-probe', 'kube-linter unset-cpu-requirements',
      'kube-score container-image-pull-policy', 'kube-score container-resources', 'kube-score container-security-context-user-group-id',
      'polaris cpuLimitsMissing', 'polaris livenessProbeMissing', 'polaris pullPolicyNotAlways', 'polaris readinessProbeMissing',
    ];
    expect([...byObject.keys()].sort()).toEqual(['Deployment/redis-proxy', 'Deployment/redis-sentinel', 'StatefulSet/redis-master', 'StatefulSet/redis-slave']);
    // The proxy runs as uid 10001 and has no helper container: only the CPU limit, pull policy and digest.
    const proxy = byObject.get('Deployment/redis-proxy')!;
    byObject.delete('Deployment/redis-proxy');
    expect(proxy.sort()).toEqual([
      'checkov CKV_K8S_11', 'checkov CKV_K8S_15', 'checkov CKV_K8S_43', 'kube-linter unset-cpu-requirements',
      'kube-score container-image-pull-policy', 'kube-score container-resources', 'polaris cpuLimitsMissing', 'polaris pullPolicyNotAlways',
    ]);
    for (const ids of byObject.values()) expect(ids.sort()).toEqual(expected);
    for (const e of report.exempted) expect(e.reason.length).toBeGreaterThan(20);
    const cpu = report.exempted.find((e) => e.id === 'CKV_K8S_11')!;
    expect(cpu.reason).toMatch(/CFS throttling/);
  });

  it('the tools\' own annotations carry the exemptions: kube-score/ignore, ignore-check.kube-linter.io, polaris.fairwinds.com, checkov.io/skipN', () => {
    const sts = find(objectsOf('production'), 'StatefulSet', 'redis-master');
    const a = sts.metadata.annotations;
    expect(a['kube-score/ignore'].split(',')).toContain('container-resources');
    expect(a['redis-sentinel-ha/reason.kube-score.container-resources']).toMatch(/CFS throttling/);
    expect(a['ignore-check.kube-linter.io/unset-cpu-requirements']).toMatch(/CFS throttling/);
    expect(a['polaris.fairwinds.com/cpuLimitsMissing-exempt']).toBe('true');
    expect(a['redis-sentinel-ha/reason.polaris.cpuLimitsMissing']).toMatch(/CFS throttling/);
    const skips = Object.entries(a).filter(([k]) => /^checkov\.io\/skip\d+$/.test(k)).map(([, v]) => v as string);
    expect(skips.find((v) => v.startsWith('CKV_K8S_11='))).toMatch(/^CKV_K8S_11=No CPU limit on purpose/);
  });

  it('every container has ephemeral-storage requests and limits that hold its emptyDirs and rotated logs', () => {
    for (const profile of ENVIRONMENTS) {
      for (const w of objectsOf(profile.name).filter((o) => o.kind === 'StatefulSet' || o.kind === 'Deployment')) {
        const spec = w.spec.template.spec;
        const mib = (q: string) => Number(/^(\d+)Mi$/.exec(q)![1]);
        const diskEmptyDirs = spec.volumes.filter((v: any) => v.emptyDir && v.emptyDir.medium !== 'Memory')
          .reduce((n: number, v: any) => n + mib(v.emptyDir.sizeLimit), 0);
        let limits = 0;
        for (const c of spec.containers) {
          const { requests, limits: l } = c.resources;
          expect(requests['ephemeral-storage'], `${w.metadata.name}/${c.name}`).toBeDefined();
          // Each container's own usage is its logs: the kubelet keeps up to 5 x 10Mi.
          expect(mib(l['ephemeral-storage'])).toBeGreaterThan(50);
          expect(mib(requests['ephemeral-storage'])).toBeLessThanOrEqual(mib(l['ephemeral-storage']));
          limits += mib(l['ephemeral-storage']);
        }
        // The pod's limit (the sum) holds its disk emptyDirs plus every container's logs.
        expect(limits).toBeGreaterThan(diskEmptyDirs + 50 * spec.containers.length);
      }
    }
  });

  it('with an image digest CKV_K8S_43 passes and carries no exemption; without one it is exempted with its reason', () => {
    const withDigest = chartObjects({ image: DIGEST_IMAGE, proxyImage: PROXY_DIGEST_IMAGE });
    const report = runPolicy(withDigest);
    expect(formatFindings(report.findings)).toBe('');
    expect(report.exempted.filter((e) => e.id === 'CKV_K8S_43')).toEqual([]);
    for (const w of withDigest.filter((o) => o.kind === 'StatefulSet' || o.kind === 'Deployment')) {
      expect(exemption('checkov', 'CKV_K8S_43', w).written).toBe(false);
      for (const c of w.spec.template.spec.containers) expect(c.image).toBe(c.name === 'haproxy' ? PROXY_DIGEST_IMAGE : DIGEST_IMAGE);
    }
    const tagOnly = runPolicy(chartObjects({}));
    expect(formatFindings(tagOnly.findings)).toBe('');
    expect(tagOnly.exempted.filter((e) => e.id === 'CKV_K8S_43').map((e) => e.reason)).toEqual([
      expect.stringMatching(/digest/), expect.stringMatching(/digest/), expect.stringMatching(/digest/), expect.stringMatching(/digest/)]);
  });

  it('a CPU limit given for Redis keeps the exemption only for the helper containers that still have none', () => {
    // The guard has no CPU limit, so the exemption stays and the check still fails without it.
    const objects = chartObjects({ redisResources: { cpu: { request: Cpu.millis(250), limit: Cpu.units(1) } } });
    expect(formatFindings(runPolicy(objects).findings)).toBe('');
  });
});

describe('the checks fail when violated (none is vacuous)', () => {
  it('a memory limit removed is reported by kube-score, kube-linter, Polaris and checkov', () => {
    const objects = objectsOf('staging');
    delete find(objects, 'StatefulSet', 'redis-slave').spec.template.spec.containers[0].resources.limits.memory;
    const got = runPolicy(objects).findings.filter((f) => f.object === 'StatefulSet/redis-slave').map((f) => `${f.tool} ${f.id}`);
    // kube-score's container-resources is ignored on this object (for the CPU limit), so it stays silent.
    expect(got.sort()).toEqual(['checkov CKV_K8S_13', 'kube-linter unset-memory-requirements', 'polaris memoryLimitsMissing']);
  });

  it('an exemption whose reason is removed is not honoured, for each tool', () => {
    const objects = objectsOf('staging');
    const a = find(objects, 'Deployment', 'redis-sentinel').metadata.annotations;
    delete a['redis-sentinel-ha/reason.kube-score.container-resources'];
    a['ignore-check.kube-linter.io/unset-cpu-requirements'] = '';
    delete a['redis-sentinel-ha/reason.polaris.cpuLimitsMissing'];
    const skip = Object.keys(a).find((k) => /^checkov\.io\/skip\d+$/.test(k) && a[k].startsWith('CKV_K8S_11='))!;
    a[skip] = 'CKV_K8S_11';
    const findings = runPolicy(objects).findings;
    for (const id of ['kube-score container-resources', 'kube-linter unset-cpu-requirements', 'polaris cpuLimitsMissing', 'checkov CKV_K8S_11']) {
      const f = findings.filter((x) => `${x.tool} ${x.id}` === id && x.object === 'Deployment/redis-sentinel');
      expect(f.length, id).toBeGreaterThan(0);
      expect(f[0].message).toMatch(/no CPU limit \(exemption written without a reason/);
    }
  });

  it('an exemption annotation removed makes the check report every container it covers', () => {
    const objects = objectsOf('production');
    const a = find(objects, 'StatefulSet', 'redis-master').metadata.annotations;
    delete a['ignore-check.kube-linter.io/no-liveness-probe'];
    a['kube-score/ignore'] = a['kube-score/ignore'].split(',').filter((x: string) => x !== 'container-security-context-user-group-id').join(',');
    const findings = runPolicy(objects).findings.map((f) => `${f.tool} ${f.id} ${f.message}`);
    expect(findings).toContain('kube-linter no-liveness-probe container guard: no livenessProbe');
    expect(findings).toContain('kube-score container-security-context-user-group-id container redis: runAsUser or runAsGroup below 10000');
    expect(findings).toContain('kube-score container-security-context-user-group-id container guard: runAsUser or runAsGroup below 10000');
  });

  it('an exemption that is not needed, or names an unknown check, is reported', () => {
    const objects = chartObjects({ image: DIGEST_IMAGE });
    const sts = find(objects, 'StatefulSet', 'redis-master');
    sts.metadata.annotations['checkov.io/skip99'] = 'CKV_K8S_43=left over';
    sts.metadata.annotations['ignore-check.kube-linter.io/no-such-check'] = 'typo';
    const findings = formatFindings(runPolicy(objects).findings);
    expect(findings).toContain('checkov CKV_K8S_43 StatefulSet/redis-master: exemption written but not needed');
    expect(findings).toContain('kube-linter no-such-check StatefulSet/redis-master: exemption names no known kube-linter check');
  });

  it('each kind of violation is caught: latest tag, root, writable root, privilege escalation, NET_RAW, token, anti-affinity, PDB, default namespace, ephemeral storage', () => {
    const objects = objectsOf('staging');
    const dep = find(objects, 'Deployment', 'redis-sentinel');
    const spec = dep.spec.template.spec;
    spec.containers[0].image = 'redis:latest';
    spec.containers[1].securityContext = { readOnlyRootFilesystem: false, allowPrivilegeEscalation: true, capabilities: { add: ['NET_ADMIN'] } };
    spec.securityContext.runAsNonRoot = false;
    spec.securityContext.runAsUser = 0;
    delete spec.automountServiceAccountToken;
    delete spec.affinity;
    delete spec.containers[0].resources.limits['ephemeral-storage'];
    find(objects, 'PodDisruptionBudget', 'redis-sentinel').spec.selector.matchLabels['app.kubernetes.io/name'] = 'other';
    find(objects, 'ConfigMap', 'redis-config').metadata.namespace = 'default';
    const got = new Set(runPolicy(objects).findings.map((f) => `${f.tool} ${f.id}`));
    for (const id of [
      'kube-score container-image-tag', 'kube-linter latest-tag', 'polaris tagNotSpecified', 'checkov CKV_K8S_14',
      'kube-linter run-as-non-root', 'polaris runAsRootAllowed', 'checkov CKV_K8S_23',
      'kube-score container-security-context-readonlyrootfilesystem', 'kube-linter no-read-only-root-fs', 'polaris notReadOnlyRootFilesystem', 'checkov CKV_K8S_22',
      'kube-linter privilege-escalation-container', 'polaris privilegeEscalationAllowed', 'checkov CKV_K8S_20',
      'kube-linter drop-net-raw-capability', 'checkov CKV_K8S_28', 'checkov CKV_K8S_37', 'checkov CKV_K8S_25', 'polaris dangerousCapabilities', 'polaris insecureCapabilities',
      'polaris automountServiceAccountToken', 'checkov CKV_K8S_38',
      'kube-score deployment-has-host-podantiaffinity', 'kube-linter no-anti-affinity',
      'kube-score deployment-has-poddisruptionbudget', 'polaris missingPodDisruptionBudget',
      'checkov CKV_K8S_21', 'kube-score container-ephemeral-storage-request-and-limit',
    ]) expect(got, id).toContain(id);
  });

  it('the NetworkPolicy checks: every pod is selected by a policy; without the Sentinel policy, the Sentinel pods are reported', () => {
    const objects = objectsOf('staging');
    expect(objects.filter((o) => o.kind === 'NetworkPolicy').map((o) => o.metadata.name).sort()).toEqual(['redis', 'redis-proxy', 'redis-sentinel']);
    const networkIds = (findings: Array<{ tool: string; id: string; object: string }>) => findings
      .filter((f) => ['pod-networkpolicy', 'non-isolated-pod', 'missingNetworkPolicy', 'networkpolicy-targets-pod'].includes(f.id))
      .map((f) => `${f.tool} ${f.id} ${f.object}`);
    expect(networkIds(runPolicy(objects).findings)).toEqual([]);
    const withoutSentinelPolicy = objects.filter((o) => !(o.kind === 'NetworkPolicy' && o.metadata.name === 'redis-sentinel'));
    const findings = networkIds(runPolicy(withoutSentinelPolicy).findings);
    expect(findings).toContain('kube-score pod-networkpolicy Deployment/redis-sentinel');
    expect(findings).toContain('kube-linter non-isolated-pod Deployment/redis-sentinel');
    expect(findings).toContain('polaris missingNetworkPolicy Deployment/redis-sentinel');
    expect(findings.filter((f) => f.includes('StatefulSet/redis-'))).toEqual([]);
  });

  it('a Service that selects no pod and a PDB that allows no disruption are reported', () => {
    const objects = objectsOf('staging');
    find(objects, 'Service', 'redis-sentinel').spec.selector = { 'app.kubernetes.io/name': 'nothing' };
    find(objects, 'PodDisruptionBudget', 'redis').spec.maxUnavailable = 0;
    const got = new Set(runPolicy(objects).findings.map((f) => `${f.tool} ${f.id} ${f.object}`));
    expect(got).toContain('kube-score service-targets-pod Service/redis-sentinel');
    expect(got).toContain('kube-linter dangling-service Service/redis-sentinel');
    expect(got).toContain('kube-linter pdb-max-unavailable PodDisruptionBudget/redis');
    expect(got).toContain('polaris pdbDisruptionsIsZero PodDisruptionBudget/redis');
  });
});
