// Monitoring (metrics on): the PodMonitor, the PrometheusRule and the Grafana dashboard.
// The alerts, as synthesized, are checked by promtool and unit-tested with promtool on
// synthetic series (each alert: a case where it fires and one where it stays quiet); the
// dashboard's queries are valid PromQL; and every metric the rules and the dashboard read
// is one that the real exporter (Debian's prometheus-redis-exporter 1.45, the sidecar's
// version and flags) produces against a real Redis master, replica and Sentinel.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { App, Chart } from 'cdk8s';
import { stringify } from 'yaml';
import { RedisHaSettings, RedisMonitoring, RedisSentinelHA } from '../../lib';
import { ManifestObject, objectKey, synthEnvironment } from '../../lib/internal';
import { METRICS_EXPORTER_FLAGS, REDIS_ACL, SENTINEL_ACL } from '../../lib/pod/acl';
import { alertRuleGroups, RuleGroup } from '../../lib/monitoring/alert-rules';
import { dashboardPanels } from '../../lib/monitoring/dashboard';
import { findEnvironments } from '../../main';
import { itWith } from '../prerequisites';
import { crdSchemaErrors } from './crd-schema';
import { find } from './helpers';

const itWithPromtool = itWith('promtool', 'apt-get install prometheus');
const itWithExporter = itWith('prometheus-redis-exporter', 'apt-get install prometheus-redis-exporter');

const [staging, production] = findEnvironments(['staging', 'production']);
const monitoringKinds = (objects: ManifestObject[]) => objects
  .filter((o) => o.kind === 'PodMonitor' || o.kind === 'PrometheusRule' || o.metadata.name.endsWith('-grafana-dashboard'))
  .map(objectKey).sort();
const stagingWith = (redis: object) => synthEnvironment({ ...staging, redis: { ...staging.redis, ...redis } });

/** The production PrometheusRule's spec.groups, as synthesized. */
function productionGroups(): RuleGroup[] {
  return find(synthEnvironment(production), 'PrometheusRule', 'redis').spec.groups;
}

describe('what monitoring emits, and when', () => {
  it('production (metrics on): PodMonitor redis, PrometheusRule redis, ConfigMap redis-grafana-dashboard; staging: none', () => {
    expect(monitoringKinds(synthEnvironment(production))).toEqual(['ConfigMap/redis-grafana-dashboard', 'PodMonitor/redis', 'PrometheusRule/redis']);
    expect(monitoringKinds(synthEnvironment(staging))).toEqual([]);
  });

  it('prometheusOperator: false leaves out the custom resources (clusters without the CRDs); grafanaDashboard: false the ConfigMap', () => {
    expect(monitoringKinds(stagingWith({ metrics: true, prometheusOperator: false }))).toEqual(['ConfigMap/redis-grafana-dashboard']);
    expect(monitoringKinds(stagingWith({ metrics: true, grafanaDashboard: false }))).toEqual(['PodMonitor/redis', 'PrometheusRule/redis']);
    expect(monitoringKinds(stagingWith({ metrics: true, grafanaDashboard: false, prometheusOperator: false }))).toEqual([]);
  });

  it('the PodMonitor scrapes port metrics of the instance\'s Redis and Sentinel pods and labels each series with ha_instance and ha_component', () => {
    const objects = synthEnvironment(production);
    const pm = find(objects, 'PodMonitor', 'redis');
    expect(pm.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(pm.metadata.labels).toMatchObject({ release: 'prometheus', 'app.kubernetes.io/instance': 'redis' });
    const endpoint = pm.spec.podMetricsEndpoints[0];
    expect(endpoint).toMatchObject({ port: 'metrics', path: '/metrics', interval: '15s' });
    expect(endpoint.relabelings).toEqual([
      { action: 'replace', sourceLabels: ['__meta_kubernetes_pod_label_app_kubernetes_io_instance'], targetLabel: 'ha_instance' },
      { action: 'replace', sourceLabels: ['__meta_kubernetes_pod_label_app_kubernetes_io_component'], targetLabel: 'ha_component' },
    ]);
    // The selector matches exactly the pods that run the exporter, of this instance only.
    const matches = (labels: Record<string, string>) => Object.entries(pm.spec.selector.matchLabels).every(([k, v]) => labels[k] === v)
      && pm.spec.selector.matchExpressions.every((e: any) => e.operator === 'In' && e.values.includes(labels[e.key]));
    for (const [kind, name] of [['StatefulSet', 'redis-master'], ['StatefulSet', 'redis-slave'], ['Deployment', 'redis-sentinel']]) {
      const w = find(objects, kind, name);
      expect(matches(w.spec.template.metadata.labels), name).toBe(true);
      expect(w.spec.template.spec.containers.some((c: any) => c.ports?.some((p: any) => p.name === 'metrics')), name).toBe(true);
      expect(matches({ ...w.spec.template.metadata.labels, 'app.kubernetes.io/instance': 'cache' }), `${name} of another instance`).toBe(false);
    }
    expect(matches({ 'redis-client': 'true', 'app.kubernetes.io/instance': 'redis' })).toBe(false);
  });

  it('labels for Prometheus\' and Grafana\'s selectors are props; the objects are valid by the CRDs in crds/', () => {
    const objects = stagingWith({ metrics: true, monitorLabels: { prometheus: 'main' }, ruleLabels: { role: 'alert-rules' }, dashboardLabels: { dash: 'yes' } });
    expect(find(objects, 'PodMonitor', 'redis').metadata.labels.prometheus).toBe('main');
    expect(find(objects, 'PodMonitor', 'redis').metadata.labels.release).toBeUndefined();
    expect(find(objects, 'PrometheusRule', 'redis').metadata.labels.role).toBe('alert-rules');
    expect(find(objects, 'ConfigMap', 'redis-grafana-dashboard').metadata.labels.dash).toBe('yes');
    expect(find(synthEnvironment(production), 'ConfigMap', 'redis-grafana-dashboard').metadata.labels.grafana_dashboard).toBe('1');
    for (const o of [...objects, ...synthEnvironment(production)].filter((x) => x.apiVersion.startsWith('monitoring.coreos.com/'))) {
      expect(crdSchemaErrors(o)).toEqual([]);
    }
  });

  it('refuses monitoring parts without metrics, non-boolean switches and reserved label keys', () => {
    expect(() => RedisHaSettings.resolve({ prometheusOperator: true }))
      .toThrow('prometheusOperator needs metrics: true (it reads the redis_exporter sidecars); turn metrics on, or leave it out, got true');
    expect(() => RedisHaSettings.resolve({ grafanaDashboard: true })).toThrow(/^grafanaDashboard needs metrics: true/);
    expect(() => RedisHaSettings.resolve({ metrics: true, prometheusOperator: 'yes' as never })).toThrow(/prometheusOperator must be true or false/);
    expect(() => RedisHaSettings.resolve({ metrics: true, ruleLabels: { 'app.kubernetes.io/instance': 'x' } })).toThrow(/^ruleLabels key is set by redis-sentinel-ha itself/);
    expect(RedisHaSettings.resolve({}).prometheusOperator).toBe(false);
    expect(RedisHaSettings.resolve({ metrics: true }).prometheusOperator).toBe(true);
    const c = new Chart(new App(), 'c');
    expect(() => new RedisMonitoring(c, 'm', {})).toThrow(/^metrics is false in the settings this RedisMonitoring was given/);
  });

  // Composing by hand into exactly RedisSentinelHA with metrics on: test/unit/composition.test.ts.
  it('takes the namespace of its chart (or a prop) into the rules', () => {
    const props = { name: 'cache', metrics: true };
    const inNamespace = new Chart(new App(), 'y', { namespace: 'shop' });
    const ha = new RedisSentinelHA(inNamespace, 'redis', props);
    expect(ha.monitoring?.namespace).toBe('shop');
    const exprs = ha.monitoring!.prometheusRule!.toJson().spec.groups[0].rules.map((r: any) => r.expr);
    for (const e of exprs) expect(e).toContain('namespace="shop"');
    const given = new RedisMonitoring(new Chart(new App(), 'z'), 'm', { ...props, namespace: 'orders' });
    expect(given.namespace).toBe('orders');
    // The repository's environments get their namespace from kustomize: RedisHaChart names it in the context.
    for (const g of productionGroups()) for (const r of g.rules) expect(r.expr).toContain('namespace="redis-production"');
    // Without any namespace: by instance name, in every namespace.
    for (const r of new RedisSentinelHA(new Chart(new App(), 'w'), 'redis', props).monitoring!.prometheusRule!.toJson().spec.groups[0].rules) {
      expect(r.expr).not.toContain('namespace="');
    }
  });

  it('every expression selects the instance by ha_instance and aggregates by namespace and ha_instance at most', () => {
    for (const rule of alertRuleGroups(RedisHaSettings.resolve({ name: 'cache', metrics: true }))[0].rules) {
      const selectors = [...rule.expr.matchAll(/\b([a-z_:]+)\{([^}]*)\}/g)];
      expect(selectors.length, rule.alert).toBeGreaterThan(0);
      for (const [, , matchers] of selectors) expect(matchers, rule.alert).toContain('ha_instance="cache"');
      for (const [, by] of rule.expr.matchAll(/by \(([^)]*)\)/g)) expect(by, rule.alert).toMatch(/^namespace, ha_instance\b/);
    }
  });
});

/** A temporary directory for promtool's files. */
function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `monitoring-${label}-`));
}

function promtool(args: string[], cwd: string): { ok: boolean; output: string } {
  const r = spawnSync('promtool', args, { cwd, encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

/** Labels of a pod's series as the PodMonitor makes them. */
const pod = (name: string, component: string, extra: Record<string, string> = {}, namespace = 'redis-production', instance = 'redis') =>
  ({ namespace, ha_instance: instance, ha_component: component, pod: name, container: 'metrics', endpoint: 'metrics',
    instance: `${name}:9121`, job: `${namespace}/${instance}`, ...extra });
const series = (metric: string, labels: Record<string, string>, values: string) =>
  ({ series: `${metric}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(', ')}}`, values });

const MASTER = pod('redis-master-0', 'master');
const REPLICAS = [pod('redis-slave-0', 'replica'), pod('redis-slave-1', 'replica')];
const SENTINELS = ['a', 'b', 'c'].map((x) => pod(`redis-sentinel-${x}`, 'sentinel'));
const ADDRESS_A = 'redis-master-0.redis-master.redis-production.svc.cluster.local:6379';
const ADDRESS_B = 'redis-slave-0.redis-slave.redis-production.svc.cluster.local:6379';
const sentinelStatus = (p: Record<string, string>, address: string, values: string) =>
  series('redis_sentinel_master_status', { ...p, master_address: address, master_name: 'mymaster', master_status: 'ok' }, values);
/** A healthy instance: one master, two replicas, everything up, Sentinels agreeing. */
const healthy = (minutes = 30) => {
  const n = `1x${minutes * 4}`;
  return [
    series('redis_instance_info', { ...MASTER, role: 'master', redis_mode: 'standalone' }, n),
    ...REPLICAS.map((r) => series('redis_instance_info', { ...r, role: 'slave', redis_mode: 'standalone' }, n)),
    ...[MASTER, ...REPLICAS, ...SENTINELS].flatMap((p) => [series('redis_up', p, n), series('up', p, n)]),
    ...SENTINELS.map((s) => sentinelStatus(s, ADDRESS_A, n)),
  ];
};

interface AlertCase {
  alert: string;
  name: string;
  series: Array<{ series: string; values: string }>;
  at: string;
  /** Expected alerts: their labels (severity added) and value (for the annotations). */
  fires: Array<{ labels: Record<string, string>; value: number }>;
}

const key = { namespace: 'redis-production', ha_instance: 'redis' };
const ALERT_CASES: AlertCase[] = [
  { alert: 'RedisHANotExactlyOneMaster', name: 'one master, and another instance and namespace with their own masters', at: '10m', fires: [],
    series: [...healthy(),
      series('redis_instance_info', { ...pod('cache-master-0', 'master', {}, 'redis-production', 'cache'), role: 'master' }, '1x120'),
      series('redis_up', pod('cache-master-0', 'master', {}, 'redis-production', 'cache'), '1x120'),
      series('redis_instance_info', { ...pod('redis-master-0', 'master', {}, 'other'), role: 'master' }, '1x120'),
      series('redis_up', pod('redis-master-0', 'master', {}, 'other'), '1x120')] },
  { alert: 'RedisHANotExactlyOneMaster', name: 'no master for 20 s (a failover) is not an alert', at: '10m', fires: [],
    series: [series('redis_instance_info', { ...MASTER, role: 'master' }, '1x20 _x2 1x100'),
      ...REPLICAS.map((r) => series('redis_instance_info', { ...r, role: 'slave' }, '1x120')),
      ...[MASTER, ...REPLICAS].map((p) => series('redis_up', p, '1x120'))] },
  { alert: 'RedisHANotExactlyOneMaster', name: 'two masters', at: '10m', fires: [{ labels: key, value: 2 }],
    series: [...healthy(), series('redis_instance_info', { ...REPLICAS[0], role: 'master' }, '1x120')] },
  { alert: 'RedisHANotExactlyOneMaster', name: 'no master: every Redis server up, none master', at: '10m', fires: [{ labels: key, value: 0 }],
    series: [...REPLICAS.map((r) => series('redis_instance_info', { ...r, role: 'slave' }, '1x120')),
      ...[MASTER, ...REPLICAS].map((p) => series('redis_up', p, '1x120'))] },

  { alert: 'RedisHASentinelsDisagree', name: 'all three name the same master', at: '10m', fires: [], series: healthy() },
  { alert: 'RedisHASentinelsDisagree', name: 'one names another master', at: '10m', fires: [{ labels: key, value: 2 }],
    series: [sentinelStatus(SENTINELS[0], ADDRESS_A, '1x120'), sentinelStatus(SENTINELS[1], ADDRESS_A, '1x120'), sentinelStatus(SENTINELS[2], ADDRESS_B, '1x120')] },

  { alert: 'RedisHASentinelQuorumUnreachable', name: 'CKQUORUM OK everywhere', at: '10m', fires: [],
    series: SENTINELS.map((s) => series('redis_sentinel_master_ckquorum_status', { ...s, master_name: 'mymaster', message: 'OK 3 usable Sentinels' }, '1x120')) },
  { alert: 'RedisHASentinelQuorumUnreachable', name: 'one Sentinel fails CKQUORUM', at: '10m', fires: [{ labels: { ...key, pod: 'redis-sentinel-c' }, value: 0 }],
    series: [...SENTINELS.slice(0, 2).map((s) => series('redis_sentinel_master_ckquorum_status', { ...s, master_name: 'mymaster', message: 'OK 3 usable Sentinels' }, '1x120')),
      series('redis_sentinel_master_ckquorum_status', { ...SENTINELS[2], master_name: 'mymaster', message: 'NOQUORUM 1 usable Sentinels' }, '0x120')] },

  { alert: 'RedisHAPhantomSentinels', name: 'four Sentinels for five minutes (a rollout\'s surge pod)', at: '10m', fires: [],
    series: SENTINELS.map((s) => series('redis_sentinel_master_sentinels', { ...s, master_address: ADDRESS_A, master_name: 'mymaster' }, '3x20 4x20 3x80')) },
  { alert: 'RedisHAPhantomSentinels', name: 'a Sentinel that keeps counting four', at: '20m', fires: [{ labels: { ...key, pod: 'redis-sentinel-a' }, value: 4 }],
    series: [series('redis_sentinel_master_sentinels', { ...SENTINELS[0], master_address: ADDRESS_A, master_name: 'mymaster' }, '4x120'),
      ...SENTINELS.slice(1).map((s) => series('redis_sentinel_master_sentinels', { ...s, master_address: ADDRESS_A, master_name: 'mymaster' }, '3x120'))] },

  { alert: 'RedisHAReplicaLinkDown', name: 'both replicas linked', at: '10m', fires: [],
    series: REPLICAS.map((r) => series('redis_master_link_up', { ...r, master_host: 'redis-master-0.redis-master', master_port: '6379' }, '1x120')) },
  { alert: 'RedisHAReplicaLinkDown', name: 'a replica\'s link down', at: '10m', fires: [{ labels: { ...key, pod: 'redis-slave-1' }, value: 0 }],
    series: [series('redis_master_link_up', { ...REPLICAS[0], master_host: 'redis-master-0.redis-master', master_port: '6379' }, '1x120'),
      series('redis_master_link_up', { ...REPLICAS[1], master_host: 'redis-master-0.redis-master', master_port: '6379' }, '0x120')] },

  ...(() => {
    const replica = (n: number) => ({ slave_ip: `redis-slave-${n}.redis-slave`, slave_port: '6379', slave_state: 'online' });
    const lagged = (lagSeconds: string, offset: string) => [
      series('redis_master_repl_offset', MASTER, '1000000000x120'),
      series('redis_connected_slave_lag_seconds', { ...MASTER, ...replica(0) }, '0x120'),
      series('redis_connected_slave_offset_bytes', { ...MASTER, ...replica(0) }, '1000000000x120'),
      series('redis_connected_slave_lag_seconds', { ...MASTER, ...replica(1) }, lagSeconds),
      series('redis_connected_slave_offset_bytes', { ...MASTER, ...replica(1) }, offset),
    ];
    const firing = { ...key, pod: 'redis-master-0', slave_ip: 'redis-slave-1.redis-slave', slave_port: '6379' };
    return [
      { alert: 'RedisHAReplicationLag', name: 'replicas in step', at: '10m', fires: [], series: lagged('1x120', '999999000x120') },
      { alert: 'RedisHAReplicationLag', name: 'a replica not acknowledging for 10 s', at: '10m', fires: [{ labels: firing, value: 10 }], series: lagged('10x120', '999999000x120') },
      { alert: 'RedisHAReplicationLag', name: 'a replica 500 MB behind', at: '10m', fires: [{ labels: firing, value: 500000000 }], series: lagged('1x120', '500000000x120') },
    ];
  })(),

  { alert: 'RedisHAMemoryNearMaxmemory', name: 'half full, and a server without maxmemory', at: '10m', fires: [],
    series: [series('redis_memory_used_bytes', MASTER, '50x120'), series('redis_memory_max_bytes', MASTER, '100x120'),
      series('redis_memory_used_bytes', REPLICAS[0], '50x120'), series('redis_memory_max_bytes', REPLICAS[0], '0x120')] },
  { alert: 'RedisHAMemoryNearMaxmemory', name: '95% of maxmemory', at: '10m', fires: [{ labels: { ...key, pod: 'redis-master-0' }, value: 0.95 }],
    series: [series('redis_memory_used_bytes', MASTER, '95x120'), series('redis_memory_max_bytes', MASTER, '100x120')] },

  { alert: 'RedisHARejectedWrites', name: 'no new NOREPLICAS or OOM, and other errors rising', at: '10m', fires: [],
    series: [series('redis_errors_total', { ...MASTER, err: 'NOREPLICAS' }, '3x120'), series('redis_errors_total', { ...MASTER, err: 'ERR' }, '0+5x120'),
      series('redis_errors_total', { ...MASTER, err: 'WRONGPASS' }, '0+5x120')] },
  { alert: 'RedisHARejectedWrites', name: 'NOREPLICAS rising', at: '10m', fires: [{ labels: { ...key, pod: 'redis-master-0', err: 'NOREPLICAS' }, value: 20 }],
    series: [series('redis_errors_total', { ...MASTER, err: 'NOREPLICAS' }, '0+1x120'), series('redis_errors_total', { ...MASTER, err: 'OOM' }, '7x120')] },
  { alert: 'RedisHARejectedWrites', name: 'OOM rising', at: '10m', fires: [{ labels: { ...key, pod: 'redis-master-0', err: 'OOM' }, value: 20 }],
    series: [series('redis_errors_total', { ...MASTER, err: 'OOM' }, '0+1x120')] },

  { alert: 'RedisHAFailover', name: 'the same master all along', at: '20m', fires: [], series: healthy() },
  { alert: 'RedisHAFailover', name: 'the Sentinels switched master 2 minutes ago', at: '7m', fires: [{ labels: key, value: 2 }],
    series: SENTINELS.flatMap((s) => [sentinelStatus(s, ADDRESS_A, '1x20'), sentinelStatus(s, ADDRESS_B, '_x20 1x100')]) },
  { alert: 'RedisHAFailover', name: 'a switch 15 minutes ago is forgotten', at: '20m', fires: [],
    series: SENTINELS.flatMap((s) => [sentinelStatus(s, ADDRESS_A, '1x20'), sentinelStatus(s, ADDRESS_B, '_x20 1x100')]) },

  { alert: 'RedisHAServerDown', name: 'every server up', at: '10m', fires: [], series: healthy() },
  { alert: 'RedisHAServerDown', name: 'a Sentinel\'s server down', at: '10m', fires: [{ labels: { ...key, pod: 'redis-sentinel-b', ha_component: 'sentinel' }, value: 0 }],
    series: [...healthy().filter((x) => !x.series.startsWith('redis_up{') || !x.series.includes('redis-sentinel-b')), series('redis_up', SENTINELS[1], '0x120')] },

  { alert: 'RedisHAExporterDown', name: 'every exporter scraped', at: '10m', fires: [], series: healthy() },
  { alert: 'RedisHAExporterDown', name: 'a replica\'s exporter not scraped', at: '10m', fires: [{ labels: { ...key, pod: 'redis-slave-0' }, value: 0 }],
    series: [...healthy().filter((x) => !x.series.startsWith('up{') || !x.series.includes('redis-slave-0')), series('up', REPLICAS[0], '0x120')] },

  { alert: 'RedisHATargetsMissing', name: 'all six targets', at: '20m', fires: [], series: healthy() },
  { alert: 'RedisHATargetsMissing', name: 'a Sentinel pod without a target', at: '20m', fires: [{ labels: key, value: 5 }],
    series: healthy().filter((x) => !x.series.startsWith('up{') || !x.series.includes('redis-sentinel-c')) },
  { alert: 'RedisHATargetsMissing', name: 'no target at all (the PodMonitor not picked up), while another namespace has its own', at: '20m', fires: [{ labels: key, value: 1 }],
    series: [series('up', pod('cache-master-0', 'master', {}, 'redis-production', 'cache'), '1x120'),
      ...[MASTER, ...REPLICAS, ...SENTINELS].map((p) => series('up', { ...p, namespace: 'redis-staging' }, '1x120'))] },
  { alert: 'RedisHATargetsMissing', name: 'all six targets here, and an instance of the same name elsewhere with two', at: '20m', fires: [],
    series: [...healthy(), ...[MASTER, SENTINELS[0]].map((p) => series('up', { ...p, namespace: 'redis-staging' }, '1x120'))] },

  { alert: 'RedisHASentinelTilt', name: 'no TILT', at: '10m', fires: [], series: SENTINELS.map((s) => series('redis_sentinel_tilt', s, '0x120')) },
  { alert: 'RedisHASentinelTilt', name: 'a Sentinel in TILT', at: '10m', fires: [{ labels: { ...key, pod: 'redis-sentinel-a' }, value: 1 }],
    series: [series('redis_sentinel_tilt', SENTINELS[0], '1x120'), ...SENTINELS.slice(1).map((s) => series('redis_sentinel_tilt', s, '0x120'))] },
];

/** Prometheus' humanize for the values used here: SI prefixes (k, M, G), at most 4 significant digits. */
function humanize(value: number): string {
  const prefixes = ['', 'k', 'M', 'G', 'T'];
  let i = 0;
  while (Math.abs(value) >= 1000 && i < prefixes.length - 1) { value /= 1000; i++; }
  return `${Number(value.toPrecision(4))}${prefixes[i]}`;
}

/** An annotation template filled in as Prometheus would for these simple values. */
function render(template: string, labels: Record<string, string>, value: number): string {
  return template
    .replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, name) => labels[name] ?? '')
    .replace(/\{\{ \$value \| humanizePercentage \}\}/g, `${Math.round(value * 100)}%`)
    .replace(/\{\{ \$value \| humanize \}\}/g, humanize(value))
    .replace(/\{\{ \$value \}\}/g, String(value));
}

describe('the alerts, as synthesized for production (2 replicas, 3 Sentinels), run by promtool', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('rules');
    writeFileSync(join(dir, 'rules.yaml'), stringify({ groups: productionGroups() }));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  itWithPromtool('promtool check rules accepts them (expressions and annotation templates)', () => {
    const r = promtool(['check', 'rules', 'rules.yaml'], dir);
    expect(r.output).toContain('SUCCESS: 13 rules found');
    expect(r.ok, r.output).toBe(true);
  });

  it('every alert has a case where it fires and one where it stays quiet', () => {
    const alerts = productionGroups()[0].rules.map((r) => r.alert);
    for (const alert of alerts) {
      expect(ALERT_CASES.some((c) => c.alert === alert && c.fires.length > 0), `${alert} fires`).toBe(true);
      expect(ALERT_CASES.some((c) => c.alert === alert && c.fires.length === 0), `${alert} quiet`).toBe(true);
    }
    expect(new Set(ALERT_CASES.map((c) => c.alert))).toEqual(new Set(alerts));
  });

  for (const c of ALERT_CASES) {
    itWithPromtool(`${c.alert}: ${c.name} -> ${c.fires.length ? 'fires' : 'quiet'}`, () => {
      const rule = productionGroups()[0].rules.find((r) => r.alert === c.alert)!;
      const expAlerts = c.fires.map(({ labels, value }) => {
        const all = { ...labels, severity: rule.labels.severity };
        return { exp_labels: all, exp_annotations: Object.fromEntries(Object.entries(rule.annotations).map(([k, t]) => [k, render(t, all, value)])) };
      });
      const file = `test-${ALERT_CASES.indexOf(c)}.yaml`;
      writeFileSync(join(dir, file), stringify({
        rule_files: ['rules.yaml'],
        evaluation_interval: '15s',
        tests: [{ interval: '15s', input_series: c.series, alert_rule_test: [{ eval_time: c.at, alertname: c.alert, exp_alerts: expAlerts }] }],
      }));
      const r = promtool(['test', 'rules', file], dir);
      expect(r.ok, r.output).toBe(true);
    });
  }
});

/** Metric names a PromQL expression reads (identifiers followed by a selector). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{/g)].map((m) => m[1]);
}

describe('the Grafana dashboard', () => {
  const settings = RedisHaSettings.resolve(production.redis);
  const panels = dashboardPanels(settings);

  it('has the panels operators asked for, every query scoped to the instance and the chosen namespace', () => {
    expect(panels.map((p) => p.title)).toEqual(['Master', 'Failovers', 'Sentinel agreement', 'Replication lag (bytes)',
      'Replica acknowledgement age', 'Memory against maxmemory', 'Commands per second', 'Rejected writes per second', 'Exporters and servers up']);
    for (const p of panels) {
      for (const t of p.targets) {
        for (const [, matchers] of t.expr.matchAll(/\{([^}]*)\}/g)) expect(matchers, p.title).toMatch(/^ha_instance="redis", namespace="\$namespace"/);
      }
    }
    const cm = find(synthEnvironment(production), 'ConfigMap', 'redis-grafana-dashboard');
    const json = JSON.parse(cm.data['redis-ha-redis.json']);
    expect(json.uid).toBe('redis-ha-redis');
    expect(json.panels.map((p: any) => p.title)).toEqual(panels.map((p) => p.title));
  });

  itWithPromtool('every panel query is valid PromQL (promtool checks them as recording rules)', () => {
    const dir = tempDir('dashboard');
    try {
      const rules = panels.flatMap((p) => p.targets.map((t, i) => ({
        record: `dashboard:panel_${p.id}_${i}`,
        expr: t.expr.replace(/\$namespace/g, 'shop').replace(/\$__rate_interval/g, '1m'),
      })));
      writeFileSync(join(dir, 'dashboard.yaml'), stringify({ groups: [{ name: 'dashboard', rules }] }));
      const r = promtool(['check', 'rules', 'dashboard.yaml'], dir);
      expect(r.ok, r.output).toBe(true);
      expect(r.output).toContain(`SUCCESS: ${rules.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Starts a Redis master (min-replicas-to-write 1, small maxmemory), a replica and a
 * Sentinel with the ACL users metrics (the sidecar's rules) and default, and the exporter
 * beside each with the sidecar's flags; makes the master refuse writes with NOREPLICAS
 * and OOM; returns every metric name each exporter served.
 */
async function scrapeRealExporters(): Promise<Set<string>> {
  const dir = tempDir('exporter');
  const procs: ChildProcess[] = [];
  const port = 22000 + Math.floor(Math.random() * 8000);
  const [master, replica, sentinel] = [port, port + 1, port + 2];
  const cli = (p: number, ...args: string[]) => spawnSync('redis-cli', ['-p', String(p), ...args], { encoding: 'utf8', timeout: 10_000 }).stdout.trim();
  const wait = async (what: string, ok: () => boolean | Promise<boolean>) => {
    for (let i = 0; i < 150; i++) {
      if (await ok()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}`);
  };
  try {
    const users = (acl: string) => `user default on nopass ~* &* +@all\nuser metrics on >pw ${acl}\n`;
    for (const [name, p, extra] of [['master', master, 'min-replicas-to-write 1\nmin-replicas-max-lag 5\nmaxmemory 8mb\nmaxmemory-policy noeviction\n'],
      ['replica', replica, `replicaof 127.0.0.1 ${master}\n`]] as const) {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, 'redis.conf'), `port ${p}\nbind 127.0.0.1\nsave ""\ndir ${join(dir, name)}\n${extra}${users(REDIS_ACL.metrics)}`);
      procs.push(spawn('redis-server', [join(dir, name, 'redis.conf')], { stdio: 'ignore' }));
    }
    mkdirSync(join(dir, 'sentinel'));
    writeFileSync(join(dir, 'sentinel', 'sentinel.conf'), `port ${sentinel}\nbind 127.0.0.1\ndir ${join(dir, 'sentinel')}\n`
      + `sentinel monitor mymaster 127.0.0.1 ${master} 1\n${users(SENTINEL_ACL.metrics!)}`);
    procs.push(spawn('redis-sentinel', [join(dir, 'sentinel', 'sentinel.conf')], { stdio: 'ignore' }));
    await wait('the replica in sync', () => /master_link_status:up/.test(cli(replica, 'INFO', 'replication')));
    await wait('the Sentinel to see the replica', () => /num-slaves\n1\b/.test(cli(sentinel, 'SENTINEL', 'MASTER', 'mymaster')));
    // Refused writes: NOREPLICAS (replica stopped), then OOM (maxmemory filled).
    expect(cli(master, 'SET', 'k', 'v')).toBe('OK');
    cli(replica, 'SHUTDOWN', 'NOSAVE');
    await wait('NOREPLICAS', () => cli(master, 'SET', 'k', 'v').startsWith('NOREPLICAS'));
    cli(master, 'CONFIG', 'SET', 'min-replicas-to-write', '0');
    cli(master, 'EVAL', "for i=1,100000 do redis.call('SET','k'..i,string.rep('x',100)) end", '0');
    expect(cli(master, 'SET', 'z', 'z')).toMatch(/^OOM/);
    // The replica's own metrics (link, offsets) need it running: start it again.
    procs.push(spawn('redis-server', [join(dir, 'replica', 'redis.conf')], { stdio: 'ignore' }));
    await wait('the replica in sync again', () => /master_link_status:up/.test(cli(replica, 'INFO', 'replication')));

    const names = new Set<string>();
    for (const [i, p] of [master, replica, sentinel].entries()) {
      const listen = port + 10 + i;
      procs.push(spawn('prometheus-redis-exporter', [...METRICS_EXPORTER_FLAGS, `--redis.addr=redis://127.0.0.1:${p}`, '--redis.user=metrics',
        '--redis.password=pw', `--web.listen-address=127.0.0.1:${listen}`], { stdio: 'ignore' }));
      let text = '';
      await wait(`exporter of ${p}`, async () => {
        text = await fetch(`http://127.0.0.1:${listen}/metrics`).then((r) => r.text()).catch(() => '');
        return /^redis_up 1$/m.test(text);
      });
      for (const line of text.split('\n')) {
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? /.exec(line);
        if (m) names.add(m[1]);
        // The error labels the alert's rejected writes select.
        const err = /^redis_errors_total\{err="(\w+)"\}/.exec(line);
        if (err) names.add(`redis_errors_total:${err[1]}`);
      }
    }
    return names;
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the real exporter (Debian\'s 1.45, the sidecar\'s flags and ACL user) produces every metric the rules and the dashboard read', () => {
  itWithExporter('against a real master refusing writes (NOREPLICAS, OOM), a replica and a Sentinel', async () => {
    const produced = await scrapeRealExporters();
    const settings = RedisHaSettings.resolve(production.redis);
    const read = new Set([
      ...alertRuleGroups(settings)[0].rules.flatMap((r) => metricNames(r.expr)),
      ...dashboardPanels(settings).flatMap((p) => p.targets.flatMap((t) => metricNames(t.expr))),
    ]);
    read.delete('up'); // Prometheus' own, per target
    const missing = [...read].filter((m) => !produced.has(m));
    expect(missing).toEqual([]);
    expect(read.size).toBeGreaterThan(12);
    for (const err of ['NOREPLICAS', 'OOM']) expect(produced.has(`redis_errors_total:${err}`), err).toBe(true);
  }, 60_000);
});

describe('the generated bindings', () => {
  it('npm run import:crds writes each import where its code needs it (the Prometheus Operator\'s inside lib/, the library\'s jsii root)', () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8'));
    expect(pkg.scripts['import:crds']).toBe('cdk8s import crds/argoproj.io_applications.yaml -o imports && cdk8s import crds/monitoring.coreos.com.yaml -o lib/imports');
  });

  it('lib/imports/monitoring.coreos.com.ts is what cdk8s import makes of crds/monitoring.coreos.com.yaml', () => {
    const dir = tempDir('import');
    try {
      const r = spawnSync('npx', ['cdk8s', 'import', 'crds/monitoring.coreos.com.yaml', '--language', 'typescript', '--output', dir],
        { cwd: join(__dirname, '..', '..'), encoding: 'utf8', timeout: 120_000 });
      expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
      expect(readFileSync(join(dir, 'monitoring.coreos.com.ts'), 'utf8'))
        .toBe(readFileSync(join(__dirname, '..', '..', 'lib', 'imports', 'monitoring.coreos.com.ts'), 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
