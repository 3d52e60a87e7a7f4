// Scheduling and identity props reach the Redis and the Sentinel pods (and only where
// they belong); wrong values are refused naming the field.
import { describe, expect, it } from 'vitest';
import { App, Chart, Size } from 'cdk8s';
import { RedisSentinelHA, RedisSentinelHAProps, SpreadConstraint } from '../../lib';
import { find } from './helpers';

function synth(props: RedisSentinelHAProps = {}): any[] {
  const c = new Chart(new App(), 'test');
  new RedisSentinelHA(c, 'redis', props);
  return c.toJson();
}
const podSpecs = (objects: any[]) => ({
  master: find(objects, 'StatefulSet', 'redis-master').spec.template.spec,
  replica: find(objects, 'StatefulSet', 'redis-slave').spec.template.spec,
  sentinel: find(objects, 'Deployment', 'redis-sentinel').spec.template.spec,
});
const redisTier = { 'app.kubernetes.io/name': 'redis', 'app.kubernetes.io/instance': 'redis' };
const sentinelTier = { ...{ 'app.kubernetes.io/name': 'redis-sentinel', 'app.kubernetes.io/instance': 'redis' }, 'app.kubernetes.io/component': 'sentinel' };

describe('defaults', () => {
  const objects = synth();
  const pods = podSpecs(objects);

  it('a ServiceAccount per instance, without token, used by every pod that never mounts a token', () => {
    expect(find(objects, 'ServiceAccount', 'redis')).toMatchObject({ automountServiceAccountToken: false });
    for (const spec of Object.values(pods)) expect(spec).toMatchObject({ serviceAccountName: 'redis', automountServiceAccountToken: false });
  });

  it('preferred anti-affinity per node and preferred (ScheduleAnyway) spread over zones, per tier of this instance', () => {
    for (const [spec, tier] of [[pods.master, redisTier], [pods.replica, redisTier], [pods.sentinel, sentinelTier]] as const) {
      expect(spec.affinity.podAntiAffinity).toEqual({
        preferredDuringSchedulingIgnoredDuringExecution: [{
          weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: tier } },
        }],
      });
      expect(spec.topologySpreadConstraints).toEqual([{
        maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: tier },
      }]);
    }
  });

  it('no node selector, tolerations, priority class, pull secrets or extra annotations', () => {
    for (const spec of Object.values(pods)) {
      for (const field of ['nodeSelector', 'tolerations', 'priorityClassName', 'imagePullSecrets']) expect(spec[field]).toBeUndefined();
    }
    for (const o of objects.filter((x) => x.kind === 'Service')) expect(o.metadata.annotations).toBeUndefined();
  });
});

describe('every placement prop reaches the Redis and the Sentinel pods', () => {
  const props: RedisSentinelHAProps = {
    nodeSelector: { 'node-pool': 'redis' },
    tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'redis', effect: 'NoSchedule' }],
    zoneSpread: SpreadConstraint.REQUIRED,
    redisAntiAffinity: SpreadConstraint.REQUIRED,
    priorityClassName: 'redis-critical',
    serviceAccountName: 'existing-sa',
    imagePullSecrets: ['registry-creds'],
    podAnnotations: { 'example.com/owner': 'team-cache' },
    serviceAnnotations: { 'service.beta.kubernetes.io/internal': 'true' },
    storageClassName: 'fast-ssd',
  };
  const objects = synth(props);
  const pods = podSpecs(objects);

  it('node selector, tolerations, priority class, ServiceAccount and pull secrets on all three pod templates', () => {
    for (const spec of Object.values(pods)) {
      expect(spec).toMatchObject({
        nodeSelector: { 'node-pool': 'redis' },
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'redis', effect: 'NoSchedule' }],
        priorityClassName: 'redis-critical',
        serviceAccountName: 'existing-sa',
        automountServiceAccountToken: false,
        imagePullSecrets: [{ name: 'registry-creds' }],
      });
      expect(spec.topologySpreadConstraints[0].whenUnsatisfiable).toBe('DoNotSchedule');
    }
  });

  it('an existing ServiceAccount is used, none is created', () => {
    expect(objects.filter((o) => o.kind === 'ServiceAccount')).toEqual([]);
  });

  it('required anti-affinity for Redis only; the Sentinels keep preferred (a rollout surges one Sentinel)', () => {
    for (const spec of [pods.master, pods.replica]) {
      expect(spec.affinity.podAntiAffinity).toEqual({
        requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: redisTier } }],
      });
    }
    expect(pods.sentinel.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution).toHaveLength(1);
    const sentinelRequired = podSpecs(synth({ sentinelAntiAffinity: SpreadConstraint.REQUIRED })).sentinel;
    expect(sentinelRequired.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchLabels).toEqual(sentinelTier);
  });

  it('pod annotations join the configuration hash on every pod template; Service annotations are on every Service', () => {
    for (const [kind, name] of [['StatefulSet', 'redis-master'], ['StatefulSet', 'redis-slave'], ['Deployment', 'redis-sentinel'], ['Deployment', 'redis-proxy']]) {
      const annotations = find(objects, kind, name).spec.template.metadata.annotations;
      expect(Object.keys(annotations).sort()).toEqual(['example.com/owner', 'redis-sentinel-ha/config-hash']);
    }
    const services = objects.filter((o) => o.kind === 'Service');
    expect(services).toHaveLength(6);
    for (const s of services) expect(s.metadata.annotations).toEqual({ 'service.beta.kubernetes.io/internal': 'true' });
  });

  it('the storage class is on both claim templates', () => {
    for (const name of ['redis-master', 'redis-slave']) {
      expect(find(objects, 'StatefulSet', name).spec.volumeClaimTemplates[0].spec.storageClassName).toBe('fast-ssd');
    }
  });
});

describe('persistent volume claim templates', () => {
  it('carry apiVersion and kind, only the stable selector labels (no user labels) and the size', () => {
    const objects = synth({ labels: { team: 'cache' }, storageSize: Size.gibibytes(20) });
    for (const [name, component] of [['redis-master', 'master'], ['redis-slave', 'replica']]) {
      const sts = find(objects, 'StatefulSet', name);
      expect(sts.metadata.labels.team).toBe('cache');
      expect(sts.spec.volumeClaimTemplates).toEqual([{
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: { name: 'data', labels: { ...redisTier, 'app.kubernetes.io/component': component } },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '20Gi' } } },
      }]);
    }
  });
});

describe('wrong placement values are refused, naming the field', () => {
  const cases: Array<[string, RedisSentinelHAProps, RegExp]> = [
    ['a node selector key that is not a label key', { nodeSelector: { 'bad key': 'x' } }, /^nodeSelector key must be a Kubernetes label key .*, got "bad key"$/],
    ['a toleration operator that does not exist', { tolerations: [{ key: 'a', operator: 'Equals' }] }, /^tolerations\[0\]\.operator must be one of Equal, Exists, got "Equals"$/],
    ['a toleration effect that does not exist', { tolerations: [{ key: 'a', effect: 'NoScheduling' }] }, /^tolerations\[0\]\.effect must be one of NoSchedule, PreferNoSchedule, NoExecute, got "NoScheduling"$/],
    ['a toleration with operator Exists and a value', { tolerations: [{ key: 'a', operator: 'Exists', value: 'b' }] }, /^tolerations\[0\]\.value must be empty with operator "Exists", got "b"$/],
    ['a misspelled toleration field', { tolerations: [{ key: 'a', efect: 'NoSchedule' } as never] }, /^tolerations\[0\]\.efect is not a known prop \(did you mean effect\?\)/],
    ['tolerationSeconds without NoExecute', { tolerations: [{ key: 'a', tolerationSeconds: 30 }] }, /^tolerations\[0\]\.tolerationSeconds is only allowed with effect "NoExecute", got 30$/],
    ['a zone spread that is not a SpreadConstraint', { zoneSpread: 'always' as never }, /^zoneSpread must be one of preferred, required, got "always"$/],
    ['a priority class that is not a DNS subdomain', { priorityClassName: 'High' }, /^priorityClassName must be a DNS subdomain .*, got "High"$/],
    ['a ServiceAccount name that is not a DNS subdomain', { serviceAccountName: 'my_sa' }, /^serviceAccountName must be a DNS subdomain .*, got "my_sa"$/],
    ['a pull secret that is not a DNS subdomain', { imagePullSecrets: ['ok', 'Not OK'] }, /^imagePullSecrets\[1\] must be a DNS subdomain .*, got "Not OK"$/],
    ['a pod annotation that would replace the configuration hash', { podAnnotations: { 'redis-sentinel-ha/config-hash': 'x' } }, /^podAnnotations key is set by redis-sentinel-ha itself; use another key, got "redis-sentinel-ha\/config-hash"$/],
    ['a Service annotation key that is not a key', { serviceAnnotations: { '-x': 'y' } }, /^serviceAnnotations key must be a Kubernetes annotation key .*, got "-x"$/],
    ['a pod annotation value that is not a string', { podAnnotations: { a: 1 as never } }, /^podAnnotations\["a"\] must be a string, got 1$/],
  ];
  for (const [what, props, message] of cases) {
    it(what, () => expect(() => synth(props)).toThrow(message));
  }

  it('valid tolerations are accepted: Exists without key, NoExecute with seconds', () => {
    expect(() => synth({ tolerations: [{ operator: 'Exists' }, { key: 'a', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 30 }] })).not.toThrow();
  });
});
