// The parts compose by hand into exactly the composite, each part works on its own, and
// several instances live side by side in one chart without touching each other's pods.
import { describe, expect, it } from 'vitest';
import { App, Chart, Size, Testing } from 'cdk8s';
import {
  RedisDisruptionBudget, RedisHaConfiguration, RedisHaSettings, RedisMaster, RedisMonitoring, RedisNetworkPolicies, RedisProxy, RedisReplicaSet,
  RedisSentinelHA, RedisSentinelHAProps, SentinelQuorum,
} from '../../lib';
import { ManifestObject, objectKey } from '../../lib/internal';

const chart = () => new Chart(new App(), 'test');
const sorted = (objects: ManifestObject[]) => [...objects].sort((a, b) => objectKey(a).localeCompare(objectKey(b)));
const synth = (c: Chart) => sorted(Testing.synth(c) as ManifestObject[]);

describe('the parts compose by hand into exactly RedisSentinelHA', () => {
  const cases = {
    'the default props': {},
    'an instance "cache" with 3 replicas, 5 Sentinels, 20Gi volumes and a label': {
      name: 'cache', replicas: 3, sentinels: 5, storageSize: Size.gibibytes(20), labels: { team: 'x' },
    },
    'metrics on (exporters, PodMonitor, PrometheusRule, dashboard)': { name: 'cache', metrics: true },
  };
  for (const [label, props] of Object.entries(cases) as Array<[string, RedisSentinelHAProps]>) {
    it(`with ${label}: deep-equal objects`, () => {
      const composite = chart();
      new RedisSentinelHA(composite, 'redis', props);

      const byHand = chart();
      const configuration = new RedisHaConfiguration(byHand, 'config', props);
      new RedisMaster(byHand, 'master', { configuration });
      new RedisReplicaSet(byHand, 'replicas', { configuration });
      new SentinelQuorum(byHand, 'sentinels', { configuration });
      new RedisDisruptionBudget(byHand, 'budget', { configuration });
      new RedisNetworkPolicies(byHand, 'netpol', { configuration });
      if (props.metrics) new RedisMonitoring(byHand, 'monitoring', { configuration });
      new RedisProxy(byHand, 'proxy', { configuration });

      const expected = synth(composite);
      expect(synth(byHand)).toEqual(expected);
      // With metrics: the PodMonitor, the PrometheusRule and the dashboard's ConfigMap more.
      expect(expected.length).toBe(props.metrics ? 24 : 21);
    });
  }

  it('resolved settings can be passed instead of a configuration, with the same result', () => {
    const settings = RedisHaSettings.resolve({ name: 'cache' });
    const byHand = chart();
    const configuration = new RedisHaConfiguration(byHand, 'config', { settings });
    new RedisMaster(byHand, 'master', { settings, configuration });
    new RedisReplicaSet(byHand, 'replicas', { settings, configuration });
    new SentinelQuorum(byHand, 'sentinels', { settings, configuration });
    new RedisDisruptionBudget(byHand, 'budget', { settings });
    new RedisNetworkPolicies(byHand, 'netpol', { settings });
    new RedisProxy(byHand, 'proxy', { settings });
    const composite = chart();
    new RedisSentinelHA(composite, 'redis', { name: 'cache' });
    expect(synth(byHand)).toEqual(synth(composite));
  });

  it('a system prop next to settings or a configuration is refused: it was resolved already', () => {
    const settings = RedisHaSettings.resolve({});
    expect(() => new RedisMaster(chart(), 'm', { settings, replicas: 3 }))
      .toThrow(/^replicas cannot be given together with settings \(their settings are resolved already\); give it to RedisHaSettings\.resolve\(\) instead, got 3$/);
    const c = chart();
    const configuration = new RedisHaConfiguration(c, 'config', {});
    expect(() => new SentinelQuorum(c, 's', { configuration, sentinels: 5 })).toThrow(/^sentinels cannot be given together with configuration/);
    expect(() => new SentinelQuorum(c, 's2', { configuration, settings: RedisHaSettings.resolve({}) }))
      .toThrow(/^configuration must be made from the same settings as the part/);
  });
});

/** ConfigMaps and the ServiceAccount a pod template refers to. */
function references(o: any): string[] {
  const spec = o.spec.template.spec;
  return [
    ...spec.volumes.filter((v: any) => v.configMap).map((v: any) => `ConfigMap/${v.configMap.name}`),
    ...spec.volumes.filter((v: any) => v.secret).map((v: any) => `Secret/${v.secret.secretName}`),
    `ServiceAccount/${spec.serviceAccountName}`,
  ];
}

describe('each part on its own creates everything its pods refer to', () => {
  const parts = {
    SentinelQuorum: (c: Chart) => new SentinelQuorum(c, 's'),
    RedisMaster: (c: Chart) => new RedisMaster(c, 'm'),
    RedisReplicaSet: (c: Chart) => new RedisReplicaSet(c, 'r'),
  };
  for (const [name, make] of Object.entries(parts)) {
    it(`${name}: every ConfigMap and the ServiceAccount its pods use exist (only the password Secret is external)`, () => {
      const c = chart();
      make(c);
      const objects = synth(c);
      const keys = new Set(objects.map(objectKey));
      const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
      expect(workloads.length).toBe(1);
      const missing = references(workloads[0]).filter((ref) => !keys.has(ref));
      expect(missing).toEqual(['Secret/redis-auth']);
      expect(new Set(objects.map(objectKey)).size).toBe(objects.length);
    });
  }

  it('SentinelQuorum alone makes Services, Deployment, budget, the three ConfigMaps and the ServiceAccount', () => {
    const c = chart();
    new SentinelQuorum(c, 's');
    expect(synth(c).map(objectKey)).toEqual([
      'ConfigMap/redis-config', 'ConfigMap/redis-scripts', 'ConfigMap/redis-sentinel-config', 'Deployment/redis-sentinel',
      'PodDisruptionBudget/redis-sentinel', 'Service/redis-sentinel', 'Service/redis-sentinel-headless', 'ServiceAccount/redis',
    ]);
  });
});

/** Does a label selector ({ matchLabels }) or a Service selector (plain map) match these labels? */
function matches(selector: { [k: string]: string }, labels: { [k: string]: string }): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** Every selector in an object, with where it is. */
function selectorsOf(o: any): Array<{ where: string; selector: { [k: string]: string } }> {
  const found: Array<{ where: string; selector: { [k: string]: string } }> = [];
  const walk = (value: unknown, path: string) => {
    if (value === null || typeof value !== 'object') return;
    for (const [k, v] of Object.entries(value)) {
      // NetworkPolicy peers of client pods and of the cluster DNS select pods outside the
      // instance by design (test/unit/network-policies.test.ts checks them).
      if (k === 'matchLabels' && o.kind === 'NetworkPolicy' && !('app.kubernetes.io/instance' in (v as object))) continue;
      if (k === 'matchLabels') found.push({ where: `${objectKey(o)} ${path}`, selector: v as any });
      else if (k === 'selector' && o.kind === 'Service' && path === '.spec') found.push({ where: `${objectKey(o)} .spec.selector`, selector: v as any });
      walk(v, `${path}.${k}`);
    }
  };
  walk(o, '');
  return found;
}

describe('two instances in one chart', () => {
  const c = chart();
  const redis = new RedisSentinelHA(c, 'redis');
  const cache = new RedisSentinelHA(c, 'cache', { name: 'cache', replicas: 1 });
  const objects = Testing.synth(c) as ManifestObject[];
  const pods = objects.filter((o: any) => o.spec?.template).map((o: any) => ({
    owner: objectKey(o), labels: o.spec.template.metadata.labels as { [k: string]: string },
    instance: o.metadata.labels['app.kubernetes.io/instance'] as string,
  }));

  it('have disjoint object names: the default keeps the seed names, "cache" prefixes its own', () => {
    expect(new Set(objects.map(objectKey)).size).toBe(objects.length);
    const names = (instance: string) => objects.filter((o: any) => o.metadata.labels['app.kubernetes.io/instance'] === instance).map(objectKey).sort();
    expect(names('redis')).toEqual([
      'ConfigMap/redis-config', 'ConfigMap/redis-scripts', 'ConfigMap/redis-sentinel-config', 'Deployment/redis-sentinel',
      'ConfigMap/redis-proxy', 'Deployment/redis-proxy',
      'NetworkPolicy/redis', 'NetworkPolicy/redis-proxy', 'NetworkPolicy/redis-sentinel',
      'PodDisruptionBudget/redis', 'PodDisruptionBudget/redis-proxy', 'PodDisruptionBudget/redis-sentinel', 'Service/redis-master',
      'Service/redis-read', 'Service/redis-sentinel', 'Service/redis-sentinel-headless', 'Service/redis-slave', 'Service/redis-write',
      'ServiceAccount/redis', 'StatefulSet/redis-master', 'StatefulSet/redis-slave',
    ].sort());
    expect(names('cache')).toEqual(names('redis').map((n) => n.replace('/redis', '/cache')));
    expect(names('redis').length + names('cache').length).toBe(objects.length);
  });

  it('every object and every pod template carries its instance label', () => {
    for (const o of objects as any[]) expect(o.metadata.labels['app.kubernetes.io/instance'], objectKey(o)).toMatch(/^(redis|cache)$/);
    for (const p of pods) expect(p.labels['app.kubernetes.io/instance'], p.owner).toBe(p.instance);
  });

  it('every selector (Services, budgets, workloads, anti-affinity, zone spread) matches pods of its own instance only', () => {
    const all = objects.flatMap(selectorsOf);
    expect(all.length).toBeGreaterThan(20);
    for (const { where, selector } of all) {
      const owner = objects.find((o) => where.startsWith(`${objectKey(o)} `)) as any;
      const instance = owner.metadata.labels['app.kubernetes.io/instance'];
      const matched = pods.filter((p) => matches(selector, p.labels));
      expect(matched.length, where).toBeGreaterThan(0);
      expect(matched.filter((p) => p.instance !== instance).map((p) => p.owner), where).toEqual([]);
    }
  });

  it('everything the scripts get follows the name: pod list, Sentinel service, bootstrap master, mounted ConfigMaps, monitor line', () => {
    const env = (o: any, container = 0) => Object.fromEntries(o.spec.template.spec.containers[container].env
      .filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]));
    const master = env(redis.master.statefulSet.toJson());
    expect(master).toMatchObject({
      GOVERNING_SERVICE: 'redis-master', BOOTSTRAP_MASTER: 'redis-master-0.redis-master', SENTINEL_SERVICE: 'redis-sentinel-headless',
      REDIS_NODES: 'redis-master-0.redis-master redis-slave-0.redis-slave redis-slave-1.redis-slave',
    });
    const cacheReplica = cache.replicaSet.statefulSet.toJson();
    expect(env(cacheReplica)).toMatchObject({
      GOVERNING_SERVICE: 'cache-slave', BOOTSTRAP_MASTER: 'cache-master-0.cache-master', SENTINEL_SERVICE: 'cache-sentinel-headless',
      REDIS_NODES: 'cache-master-0.cache-master cache-slave-0.cache-slave',
    });
    expect(env(cacheReplica, 1).REDIS_NODES).toBe('cache-master-0.cache-master cache-slave-0.cache-slave');
    const sentinel = cache.sentinels.deployment.toJson();
    expect(env(sentinel)).toMatchObject({ SENTINEL_SERVICE: 'cache-sentinel-headless', REDIS_NODES: 'cache-master-0.cache-master cache-slave-0.cache-slave' });
    expect(references(sentinel)).toEqual(['ConfigMap/cache-sentinel-config', 'ConfigMap/cache-scripts', 'Secret/redis-auth', 'ServiceAccount/cache']);
    expect(references(cacheReplica)).toEqual(['ConfigMap/cache-config', 'ConfigMap/cache-scripts', 'Secret/redis-auth', 'ServiceAccount/cache']);
    expect(cache.settings.sentinelConf).toContain('sentinel monitor mymaster cache-master-0.cache-master 6379 2\n');
    expect(cacheReplica.spec.serviceName).toBe('cache-slave');
  });
});

describe('two sets of the same objects in one chart are refused, not silently written twice', () => {
  it('two RedisSentinelHA left at the same name: the error names the name, both places and the fix', () => {
    const c = chart();
    new RedisSentinelHA(c, 'sessions');
    expect(() => new RedisSentinelHA(c, 'cache')).toThrow(
      'name already has a RedisHaConfiguration in chart test (at test/sessions/Configuration; a second one at test/cache/Configuration), '
      + 'and both would write objects with the same names: give each RedisSentinelHA its own name prop, and when composing parts by hand '
      + 'pass one RedisHaConfiguration to all of them (configuration prop), got "redis"');
  });

  it('parts composed by hand that each create their own configuration', () => {
    const c = chart();
    new RedisMaster(c, 'master');
    expect(() => new RedisReplicaSet(c, 'replicas')).toThrow(/^name already has a RedisHaConfiguration in chart test \(at test\/master\/Configuration; a second one at test\/replicas\/Configuration\)/);
  });

  it('the same part twice for one instance', () => {
    const c = chart();
    const configuration = new RedisHaConfiguration(c, 'config');
    new SentinelQuorum(c, 'sentinels', { configuration });
    expect(() => new SentinelQuorum(c, 'more-sentinels', { configuration })).toThrow(/^name already has a SentinelQuorum in chart test/);
    new RedisDisruptionBudget(c, 'budget', { configuration });
    expect(() => new RedisDisruptionBudget(c, 'budget2', { configuration })).toThrow(/^name already has a RedisDisruptionBudget/);
  });

  it('the same name in two charts is each chart\'s own business', () => {
    const app = new App();
    new RedisSentinelHA(new Chart(app, 'one', { namespace: 'a' }), 'redis');
    expect(() => new RedisSentinelHA(new Chart(app, 'two', { namespace: 'b' }), 'redis')).not.toThrow();
  });
});

describe('the instance name', () => {
  it('must be a DNS label starting with a letter, at most 45 characters (so <name>-sentinel-headless fits 63)', () => {
    expect(() => RedisHaSettings.resolve({ name: 'Cache' })).toThrow(/^name must be a DNS label of at most 45 characters .*, got "Cache"$/);
    expect(() => RedisHaSettings.resolve({ name: 'a'.repeat(46) })).toThrow(/^name must be a DNS label of at most 45 characters/);
    expect(() => RedisHaSettings.resolve({ name: '1cache' })).toThrow(/^name must start with a letter .*, got "1cache"$/);
    const longest = RedisHaSettings.resolve({ name: 'a'.repeat(45) });
    expect(longest.names.sentinelHeadless.length).toBe(63);
  });
});

describe('the namespace comes from the chart, the cdk8s way', () => {
  it('every object of a RedisSentinelHA in new Chart(app, id, { namespace }) is in that namespace', () => {
    const c = new Chart(new App(), 'app', { namespace: 'team-cache' });
    new RedisSentinelHA(c, 'redis');
    const objects = c.toJson();
    expect(objects.length).toBe(21);
    for (const o of objects) expect(o.metadata.namespace, objectKey(o)).toBe('team-cache');
  });

  it('without a chart namespace the objects name none (the kustomize overlay sets it)', () => {
    for (const o of synth(chartWith())) expect(o.metadata.namespace, objectKey(o)).toBeUndefined();
  });
});

function chartWith(): Chart {
  const c = chart();
  new RedisSentinelHA(c, 'redis');
  return c;
}
