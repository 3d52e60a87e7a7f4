// The seed's resource contract: names, replica counts, ports and sizes that clients,
// runbooks and the GitOps repository rely on.
import { describe, expect, it } from 'vitest';
import { Duration } from 'cdk8s';
import { CONFIG_HASH_ANNOTATION, configHash, ManifestObject, MaxmemoryPolicy, synthBase, synthEnvironment, tierScripts } from '../../lib/internal';
import { RedisHaSettings } from '../../lib';
import { loadScripts } from '../../lib/pod/scripts';
import { ENVIRONMENTS, findEnvironments } from '../../main';
import { find, objectKey, quantityBytes } from './helpers';

const [staging, production] = findEnvironments(['staging', 'production']);
const stagingObjects = synthEnvironment(staging);
const productionObjects = synthEnvironment(production);

function container(workload: any, name: string): any {
  const c = workload.spec.template.spec.containers.find((x: any) => x.name === name);
  if (!c) throw new Error(`no container ${name} in ${workload.kind}/${workload.metadata.name}`);
  return c;
}

/** Every label selector in an object: Service selectors, matchLabels of workloads, PDBs and affinity terms. */
function selectors(o: ManifestObject): Record<string, string>[] {
  const found: Record<string, string>[] = [];
  const walk = (value: unknown, key: string) => {
    if (value === null || typeof value !== 'object') return;
    if (key === 'matchLabels' || (key === 'selector' && o.kind === 'Service')) found.push(value as Record<string, string>);
    for (const [k, v] of Object.entries(value)) walk(v, k);
  };
  walk(o, '');
  return found;
}

describe('the seed\'s objects, with their names, replicas and ports', () => {
  it('the staging environment has exactly the seed\'s objects, under their seed names, plus the pods\' ServiceAccount, NetworkPolicies and the proxy tier', () => {
    expect(stagingObjects.map(objectKey).sort()).toEqual([
      'ConfigMap/redis-config',
      'ConfigMap/redis-proxy',
      'ConfigMap/redis-scripts',
      'ConfigMap/redis-sentinel-config',
      'Deployment/redis-proxy',
      'Deployment/redis-sentinel',
      'Namespace/redis-staging',
      'NetworkPolicy/redis',
      'NetworkPolicy/redis-proxy',
      'NetworkPolicy/redis-sentinel',
      'PodDisruptionBudget/redis',
      'PodDisruptionBudget/redis-proxy',
      'PodDisruptionBudget/redis-sentinel',
      'Service/redis-master',
      'Service/redis-read',
      'Service/redis-sentinel',
      'Service/redis-sentinel-headless',
      'Service/redis-slave',
      'Service/redis-write',
      'ServiceAccount/redis',
      'StatefulSet/redis-master',
      'StatefulSet/redis-slave',
    ]);
  });

  for (const [name, pods, checkContainerPort] of [['redis-master', 1, true], ['redis-slave', 2, false]] as const) {
    it(`${name} is a StatefulSet of ${pods} pod${pods > 1 ? 's' : ''} governed by the headless Service ${name} on 6379`, () => {
      const sts = find(stagingObjects, 'StatefulSet', name);
      expect(sts.spec.replicas).toBe(pods);
      expect(sts.spec.serviceName).toBe(name);
      const svc = find(stagingObjects, 'Service', name);
      expect(svc.spec.clusterIP).toBe('None');
      expect(svc.spec.ports).toEqual([{ name: 'redis', port: 6379, targetPort: 'redis' }]);
      if (checkContainerPort) expect(container(sts, 'redis').ports).toEqual([{ name: 'redis', containerPort: 6379 }]);
      expect(svc.spec.selector).toEqual(sts.spec.selector.matchLabels);
    });
  }

  it("both StatefulSets' preStop gate waits for every Redis pod of both, and the grace period covers gate, handover and shutdown", () => {
    for (const name of ['redis-master', 'redis-slave']) {
      const sts = find(stagingObjects, 'StatefulSet', name);
      const env = Object.fromEntries(container(sts, 'redis').env.filter((e: any) => 'value' in e).map((e: any) => [e.name, e.value]));
      expect(env.REDIS_NODES, name).toBe('redis-master-0.redis-master redis-slave-0.redis-slave redis-slave-1.redis-slave');
      expect(env.GATE_TIMEOUT_SECONDS, name).toBe('120');
      expect(env.HANDOVER_TIMEOUT_SECONDS, name).toBe('20');
      expect(sts.spec.template.spec.terminationGracePeriodSeconds, name).toBe(120 + 20 + 15);
    }
    const shorter = synthEnvironment({ ...staging, redis: { ...staging.redis, shutdownGateTimeout: Duration.seconds(30) } });
    const sts = find(shorter, 'StatefulSet', 'redis-slave');
    expect(container(sts, 'redis').env).toContainEqual({ name: 'GATE_TIMEOUT_SECONDS', value: '30' });
    expect(sts.spec.template.spec.terminationGracePeriodSeconds).toBe(30 + 20 + 15);
  });

  it('headless Services publish not-ready pods, so pods find each other by DNS name before they are ready', () => {
    for (const name of ['redis-master', 'redis-slave', 'redis-sentinel-headless']) {
      expect(find(stagingObjects, 'Service', name).spec.publishNotReadyAddresses).toBe(true);
    }
  });

  it('redis-sentinel is a Deployment of 3 pods behind the Service redis-sentinel on port 26379', () => {
    const deployment = find(stagingObjects, 'Deployment', 'redis-sentinel');
    expect(deployment.spec.replicas).toBe(3);
    expect(container(deployment, 'sentinel').ports).toEqual([{ name: 'sentinel', containerPort: 26379 }]);
    const svc = find(stagingObjects, 'Service', 'redis-sentinel');
    expect(svc.spec.clusterIP).toBeUndefined(); // a normal ClusterIP Service, what clients use
    expect(svc.spec.ports).toEqual([{ name: 'sentinel', port: 26379, targetPort: 'sentinel' }]);
    expect(svc.spec.selector).toEqual(deployment.spec.selector.matchLabels);
  });

  it('sentinel.conf monitors the master under the name mymaster, at redis-master-0.redis-master:6379', () => {
    const conf: string = find(stagingObjects, 'ConfigMap', 'redis-sentinel-config').data['sentinel.conf'];
    expect(conf.split('\n')).toContain('sentinel monitor mymaster redis-master-0.redis-master 6379 2');
    expect(container(find(stagingObjects, 'Deployment', 'redis-sentinel'), 'sentinel').env)
      .toContainEqual({ name: 'MASTER_NAME', value: 'mymaster' });
  });

  it('both StatefulSets keep /data on a per-pod PersistentVolumeClaim template', () => {
    for (const name of ['redis-master', 'redis-slave']) {
      const sts = find(stagingObjects, 'StatefulSet', name);
      expect(sts.spec.volumeClaimTemplates).toHaveLength(1);
      const claim = sts.spec.volumeClaimTemplates[0];
      expect(claim.metadata.name).toBe('data');
      expect(claim.spec.accessModes).toEqual(['ReadWriteOnce']);
      expect(container(sts, 'redis').volumeMounts).toContainEqual({ name: 'data', mountPath: '/data' });
      // The claim, not a pod volume, backs /data.
      expect(sts.spec.template.spec.volumes.map((v: any) => v.name)).not.toContain('data');
    }
  });
});

describe('per-environment sizing', () => {
  const memory = (objects: ManifestObject[], kind: string, name: string, containerName: string) => {
    const r = container(find(objects, kind, name), containerName).resources;
    return { request: r.requests.memory, limit: r.limits.memory };
  };
  const storage = (objects: ManifestObject[], name: string) =>
    find(objects, 'StatefulSet', name).spec.volumeClaimTemplates[0].spec.resources.requests.storage;

  it('staging Redis (master and slaves) requests 256Mi and is limited to 2Gi', () => {
    expect(memory(stagingObjects, 'StatefulSet', 'redis-master', 'redis')).toEqual({ request: '256Mi', limit: '2Gi' });
    expect(memory(stagingObjects, 'StatefulSet', 'redis-slave', 'redis')).toEqual({ request: '256Mi', limit: '2Gi' });
  });

  it('staging Sentinels request 64Mi and are limited to 128Mi', () => {
    expect(memory(stagingObjects, 'Deployment', 'redis-sentinel', 'sentinel')).toEqual({ request: '64Mi', limit: '128Mi' });
  });

  it('no container has a CPU limit (throttling stalls Redis and causes false failovers), but each requests CPU', () => {
    for (const objects of [stagingObjects, productionObjects]) {
      for (const o of objects.filter((x: any) => x.spec?.template)) {
        for (const c of (o as any).spec.template.spec.containers) {
          expect(c.resources.limits.cpu, `${objectKey(o)} ${c.name}`).toBeUndefined();
          expect(c.resources.requests.cpu, `${objectKey(o)} ${c.name}`).toBeDefined();
        }
      }
    }
  });

  it('production Redis requests all the memory it is limited to (8Gi), so the node never overcommits it', () => {
    for (const name of ['redis-master', 'redis-slave']) {
      const { request, limit } = memory(productionObjects, 'StatefulSet', name, 'redis');
      expect(limit, name).toBe('8Gi');
      expect(quantityBytes(request), name).toBe(quantityBytes(limit));
    }
  });

  it('production has higher memory limits than staging for Redis and Sentinel', () => {
    for (const [kind, name, c] of [['StatefulSet', 'redis-master', 'redis'], ['StatefulSet', 'redis-slave', 'redis'], ['Deployment', 'redis-sentinel', 'sentinel']]) {
      const stagingLimit = quantityBytes(memory(stagingObjects, kind, name, c).limit);
      const productionLimit = quantityBytes(memory(productionObjects, kind, name, c).limit);
      expect(productionLimit, `${kind}/${name}`).toBeGreaterThan(stagingLimit);
    }
  });

  it('production has larger volumes than staging', () => {
    for (const name of ['redis-master', 'redis-slave']) {
      expect(quantityBytes(storage(productionObjects, name))).toBeGreaterThan(quantityBytes(storage(stagingObjects, name)));
    }
    expect(storage(stagingObjects, 'redis-master')).toBe('8Gi');
  });

  it('master and slaves are sized alike in every environment (any of them can become master)', () => {
    for (const objects of [stagingObjects, productionObjects]) {
      expect(memory(objects, 'StatefulSet', 'redis-master', 'redis')).toEqual(memory(objects, 'StatefulSet', 'redis-slave', 'redis'));
      expect(storage(objects, 'redis-master')).toBe(storage(objects, 'redis-slave'));
    }
  });
});

describe('names and selectors are stable', () => {
  const everything = [synthBase(), ...ENVIRONMENTS.map(synthEnvironment)];

  it('no object name carries a hash suffix', () => {
    for (const objects of everything) {
      for (const o of objects) {
        expect(o.metadata.name).toMatch(/^[a-z0-9-]+$/);
        expect(o.metadata.name, objectKey(o)).not.toMatch(/-c8[0-9a-f]{6,}$|[0-9a-f]{8}$/);
      }
    }
  });

  it('selectors contain only app.kubernetes.io/* labels, and no cdk8s.io label appears anywhere', () => {
    for (const objects of everything) {
      for (const o of objects) {
        for (const selector of selectors(o)) {
          expect(Object.keys(selector).length, objectKey(o)).toBeGreaterThan(0);
          // A NetworkPolicy's client and DNS peers select pods outside the instance by their own labels.
          if (o.kind === 'NetworkPolicy' && !('app.kubernetes.io/instance' in selector)) continue;
          expect(Object.keys(selector).filter((k) => !k.startsWith('app.kubernetes.io/')), objectKey(o)).toEqual([]);
        }
      }
      expect(JSON.stringify(objects)).not.toContain('cdk8s.io');
    }
  });

  it('every workload selector matches its own pod template labels', () => {
    for (const o of stagingObjects.filter((x: any) => x.spec?.template)) {
      const spec = (o as any).spec;
      expect(spec.template.metadata.labels).toMatchObject(spec.selector.matchLabels);
    }
  });

  it('selectors are identical across two synths, across environments and in the base', () => {
    const selectorsOf = (objects: ManifestObject[]) => Object.fromEntries(objects.map((o) => [objectKey(o), selectors(o)]));
    const base = selectorsOf(synthBase());
    expect(selectorsOf(synthBase())).toEqual(base);
    for (const profile of ENVIRONMENTS) {
      const first = selectorsOf(synthEnvironment(profile));
      expect(selectorsOf(synthEnvironment(profile))).toEqual(first);
      const { [`Namespace/${profile.namespace}`]: namespace, ...rest } = first;
      expect(namespace).toEqual([]);
      // With metrics on (production), the policies also admit the monitoring namespaces to
      // the metrics port: a namespace selector, the only difference allowed.
      if (profile.redis.metrics) {
        const monitoring = JSON.stringify(RedisHaSettings.resolve(profile.redis).monitoringNamespaceLabels);
        for (const key of ['NetworkPolicy/redis', 'NetworkPolicy/redis-sentinel']) {
          const extra = rest[key].filter((sel) => JSON.stringify(sel) === monitoring);
          expect(extra, key).toHaveLength(1);
          rest[key] = rest[key].filter((sel) => JSON.stringify(sel) !== monitoring);
        }
        // The PodMonitor (metrics on, environment only): selects the instance's Redis and Sentinel pods.
        expect(rest['PodMonitor/redis']).toHaveLength(1);
        expect([rest['PrometheusRule/redis'], rest['ConfigMap/redis-grafana-dashboard']]).toEqual([[], []]);
        for (const key of ['PodMonitor/redis', 'PrometheusRule/redis', 'ConfigMap/redis-grafana-dashboard']) delete rest[key];
      }
      expect(rest).toEqual(base);
    }
  });
});

describe('each tier rolls only when what it uses changes', () => {
  const hashes = (redis: Partial<typeof staging.redis>) => {
    const objects = synthEnvironment({ ...staging, redis: { ...staging.redis, ...redis } });
    const of = (kind: string, name: string) => find(objects, kind, name).spec.template.metadata.annotations[CONFIG_HASH_ANNOTATION];
    return { master: of('StatefulSet', 'redis-master'), slave: of('StatefulSet', 'redis-slave'), sentinel: of('Deployment', 'redis-sentinel') };
  };
  const before = hashes({});

  it('both StatefulSets carry the same Redis hash, and the Sentinels a different one', () => {
    expect(before.master).toMatch(/^[0-9a-f]{16}$/);
    expect(before.slave).toBe(before.master);
    expect(before.sentinel).toMatch(/^[0-9a-f]{16}$/);
    expect(before.sentinel).not.toBe(before.master);
  });

  it('a sentinel.conf change (downAfter) rolls the Sentinels and leaves the Redis pods alone', () => {
    // minReplicasMaxLag pinned, so the change does not reach redis.conf through its default.
    const pinned = { minReplicasMaxLag: Duration.seconds(5) };
    const base = hashes(pinned);
    const after = hashes({ ...pinned, downAfter: Duration.seconds(7) });
    expect(after.sentinel).not.toBe(base.sentinel);
    expect(after.master).toBe(base.master);
    expect(after.slave).toBe(base.slave);
  });

  it('a Sentinel-only change (parallelSyncs) leaves both StatefulSets byte-for-byte unchanged', () => {
    const statefulSets = (redis: Partial<typeof staging.redis>) => synthEnvironment({ ...staging, redis: { ...staging.redis, ...redis } })
      .filter((o) => o.kind === 'StatefulSet');
    expect(statefulSets({ parallelSyncs: 2 })).toEqual(statefulSets({}));
    expect(hashes({ parallelSyncs: 2 }).sentinel).not.toBe(before.sentinel);
  });

  it('a redis.conf change (maxmemoryPolicy) rolls the Redis pods and leaves the Sentinels alone', () => {
    const after = hashes({ maxmemoryPolicy: MaxmemoryPolicy.ALLKEYS_LRU });
    expect(after.master).not.toBe(before.master);
    expect(after.slave).toBe(after.master);
    expect(after.sentinel).toBe(before.sentinel);
    const sentinelDeployment = (redis: Partial<typeof staging.redis>) =>
      find(synthEnvironment({ ...staging, redis: { ...staging.redis, ...redis } }), 'Deployment', 'redis-sentinel');
    expect(sentinelDeployment({ maxmemoryPolicy: MaxmemoryPolicy.ALLKEYS_LRU })).toEqual(sentinelDeployment({}));
  });

  it('scripts belong to a tier by name: common.sh to both, redis-* to Redis, sentinel-* to Sentinel', () => {
    const scripts = loadScripts();
    expect(Object.keys(tierScripts('redis', scripts))).toEqual(['common.sh', 'redis-decide.sh', 'redis-guard.sh', 'redis-prestop.sh', 'redis-probe.sh', 'redis-start.sh']);
    expect(Object.keys(tierScripts('sentinel', scripts))).toEqual(['common.sh', 'sentinel-decide.sh', 'sentinel-janitor.sh', 'sentinel-probe.sh', 'sentinel-start.sh']);
  });

  it('a new redis-* script changes only the Redis hash; a sentinel-* script only the Sentinel hash; common.sh both', () => {
    const scripts = { 'common.sh': 'c', 'redis-start.sh': 'r', 'sentinel-start.sh': 's' };
    const both = (s: Record<string, string>) => ({ redis: configHash('redis', 'port 6379', s), sentinel: configHash('sentinel', 'port 26379', s) });
    const base = both(scripts);
    const guard = both({ ...scripts, 'redis-guard.sh': 'g' });
    expect(guard.redis).not.toBe(base.redis);
    expect(guard.sentinel).toBe(base.sentinel);
    const janitor = both({ ...scripts, 'sentinel-start.sh': 's2' });
    expect(janitor.sentinel).not.toBe(base.sentinel);
    expect(janitor.redis).toBe(base.redis);
    const common = both({ ...scripts, 'common.sh': 'c2' });
    expect(common.redis).not.toBe(base.redis);
    expect(common.sentinel).not.toBe(base.sentinel);
  });
});
