import { RedisHaSettings } from '../constructs/redis-ha-settings';
import { COMPONENT_TARGET_LABEL, INSTANCE_TARGET_LABEL } from './alert-rules';

/**
 * The Grafana dashboard of one instance (JSON model, schemaVersion 39), for Grafana's
 * dashboard sidecar. Pure: settings in, dashboard out. A variable picks the Prometheus
 * data source and the namespace; the instance is fixed (one dashboard per instance name,
 * uid `redis-ha-<name>`). Every query reads only metrics redis_exporter 1.45 produces
 * (and Prometheus' `up`), through the PodMonitor's target labels.
 */

/** Rejected writes the dashboard plots: the alert's errors and READONLY (a client writing to a replica or a demoted master). */
export const DASHBOARD_REJECTED_ERRORS = ['NOREPLICAS', 'OOM', 'MISCONF', 'READONLY'];

export interface DashboardTarget { readonly expr: string; readonly legendFormat: string; readonly refId: string }
export interface DashboardPanel {
  readonly id: number;
  readonly title: string;
  readonly description: string;
  readonly type: string;
  readonly gridPos: { h: number; w: number; x: number; y: number };
  readonly datasource: { type: string; uid: string };
  readonly targets: DashboardTarget[];
  readonly fieldConfig: { defaults: { unit?: string; min?: number; custom?: { [k: string]: unknown } }; overrides: unknown[] };
  readonly options: { [k: string]: unknown };
}

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

/** The dashboard's panels (in order) with their PromQL. */
export function dashboardPanels(s: RedisHaSettings): DashboardPanel[] {
  const base = `${INSTANCE_TARGET_LABEL}="${s.name}", namespace="$namespace"`;
  const all = `{${base}}`;
  const redis = `{${base}, ${COMPONENT_TARGET_LABEL}!="sentinel"}`;
  const sentinelMaster = `{${base}, ${COMPONENT_TARGET_LABEL}="sentinel", master_name="${s.masterName}"}`;
  const withMatcher = (selector: string, matcher: string) => `${selector.slice(0, -1)}, ${matcher}}`;
  let id = 0;
  const panel = (title: string, description: string, type: string, unit: string | undefined,
    targets: Array<[string, string]>, options: { [k: string]: unknown } = {}): Omit<DashboardPanel, 'gridPos'> => ({
    id: ++id, title, description, type, datasource: DATASOURCE,
    targets: targets.map(([expr, legendFormat], i) => ({ expr, legendFormat, refId: String.fromCharCode(65 + i) })),
    fieldConfig: { defaults: { ...(unit ? { unit } : {}), ...(type === 'timeseries' ? { custom: { lineWidth: 1, fillOpacity: 0 } } : {}) }, overrides: [] },
    options: { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'none' }, ...options },
  });
  const panels = [
    panel('Master', 'Which Redis pod reports role master, over time (exactly one at any time, but for a failover\'s few seconds).',
      'state-timeline', undefined,
      [[`max by (pod) (redis_instance_info${withMatcher(redis, 'role="master"')})`, '{{pod}}']], { mergeValues: true, showValue: 'never' }),
    panel('Failovers', `Masters the Sentinels named of ${s.masterName} in a sliding 10 minutes, minus one: above 0 after a failover.`,
      'timeseries', 'short',
      [[`count(count by (master_address) (max_over_time(redis_sentinel_master_status${sentinelMaster}[10m]))) - 1`, 'failovers (10m window)']]),
    panel('Sentinel agreement', 'How many Sentinels name each address as master, and how many usable Sentinels each one sees; one line at the Sentinel count when they agree.',
      'timeseries', 'short',
      [[`count by (master_address) (redis_sentinel_master_status${sentinelMaster})`, 'naming {{master_address}}'],
        [`redis_sentinel_master_ok_sentinels${sentinelMaster}`, 'usable Sentinels seen by {{pod}}'],
        [`redis_sentinel_master_ckquorum_status${sentinelMaster}`, 'CKQUORUM ok at {{pod}}']]),
    panel('Replication lag (bytes)', 'How far each replica is behind its master (master offset minus the offset the replica acknowledged).',
      'timeseries', 'bytes',
      [[`redis_master_repl_offset${redis} - ignoring (slave_ip, slave_port, slave_state) group_right redis_connected_slave_offset_bytes${redis}`, '{{slave_ip}}']]),
    panel('Replica acknowledgement age', `Seconds since each replica last acknowledged; above ${s.minReplicasMaxLagSeconds}s (min-replicas-max-lag) the master stops counting it.`,
      'timeseries', 's',
      [[`redis_connected_slave_lag_seconds${redis}`, '{{slave_ip}}'],
        [`redis_master_link_up${redis}`, 'link up: {{pod}}']]),
    panel('Memory against maxmemory', 'Memory each Redis server uses, and its maxmemory.', 'timeseries', 'bytes',
      [[`redis_memory_used_bytes${redis}`, 'used {{pod}}'], [`redis_memory_max_bytes${redis}`, 'maxmemory {{pod}}']]),
    panel('Commands per second', 'Commands each Redis server processes per second.', 'timeseries', 'ops',
      [[`sum by (pod) (rate(redis_commands_processed_total${redis}[$__rate_interval]))`, '{{pod}}']]),
    panel('Rejected writes per second', `Commands refused with ${DASHBOARD_REJECTED_ERRORS.join(', ')}, per server and error.`,
      'timeseries', 'ops',
      [[`sum by (pod, err) (rate(redis_errors_total${withMatcher(redis, `err=~"${DASHBOARD_REJECTED_ERRORS.join('|')}"`)}[$__rate_interval]))`, '{{pod}} {{err}}']]),
    panel('Exporters and servers up', 'Prometheus reaching each exporter (up), and each exporter reaching its server (redis_up).', 'timeseries', 'short',
      [[`up${all}`, 'scraped {{pod}}'], [`redis_up${all}`, 'server up {{pod}}']]),
  ];
  // Lay the panels out left to right, 8 high, wrapping at 24 columns.
  let x = 0;
  let y = 0;
  return panels.map((p) => {
    const w = p.id === 1 ? 24 : 12;
    if (x + w > 24) { x = 0; y += 8; }
    const placed = { ...p, gridPos: { h: 8, w, x, y } } as DashboardPanel;
    x += w;
    return placed;
  });
}

/** The dashboard JSON model. */
export function grafanaDashboard(s: RedisHaSettings): object {
  return {
    uid: `redis-ha-${s.name}`.slice(0, 40),
    title: `Redis Sentinel HA: ${s.name}`,
    tags: ['redis', 'redis-sentinel-ha'],
    timezone: 'browser',
    schemaVersion: 39,
    version: 1,
    editable: false,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    templating: {
      list: [
        { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {}, hide: 0 },
        {
          name: 'namespace', label: 'Namespace', type: 'query', datasource: DATASOURCE,
          query: { query: `label_values(redis_up{${INSTANCE_TARGET_LABEL}="${s.name}"}, namespace)`, refId: 'namespace' },
          definition: `label_values(redis_up{${INSTANCE_TARGET_LABEL}="${s.name}"}, namespace)`,
          refresh: 2, sort: 1, current: {}, hide: 0,
        },
      ],
    },
    annotations: { list: [] },
    panels: dashboardPanels(s),
  };
}
