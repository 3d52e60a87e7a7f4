import { RedisHaSettings } from '../constructs/redis-ha-settings';

/**
 * The alerts of one instance, as Prometheus rule groups (the PrometheusRule's
 * spec.groups, and what `promtool` checks). Pure: settings in, rules out.
 *
 * Every expression reads only metrics that redis_exporter 1.45 (the sidecar) produces, plus
 * Prometheus' own `up`, selects the instance by the target labels the PodMonitor adds
 * (`ha_instance` = the pods' app.kubernetes.io/instance, `ha_component` = master, replica
 * or sentinel) and, when known, its namespace, and aggregates by (namespace, ha_instance)
 * at most, so two instances never mix. The README's "Monitoring" section has a runbook
 * paragraph per alert.
 */

/** Target labels the PodMonitor puts on every series (from the pods' labels). */
export const INSTANCE_TARGET_LABEL = 'ha_instance';
export const COMPONENT_TARGET_LABEL = 'ha_component';

/** Errors a Redis server answers a write with when it refuses it (INFO errorstats, redis_errors_total{err}). */
export const REJECTED_WRITE_ERRORS = ['NOREPLICAS', 'OOM', 'MISCONF'] as const;

/** Share of maxmemory above which RedisHAMemoryNearMaxmemory fires. */
export const MEMORY_ALERT_RATIO = 0.9;

/** How far back RedisHAFailover looks for a change of master. */
export const FAILOVER_WINDOW = '10m';

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels: { [key: string]: string };
  readonly annotations: { [key: string]: string };
}

export interface RuleGroup {
  readonly name: string;
  readonly rules: AlertRule[];
}

/** PromQL selectors of one instance's series. */
export interface InstanceSelectors {
  /** Every target of the instance (Redis and Sentinel exporters). */
  readonly all: string;
  /** The Redis servers' exporters (master and replica pods). */
  readonly redis: string;
  /** The Sentinels' exporters. */
  readonly sentinel: string;
  /** The Sentinels' per-master metrics of the instance's master name. */
  readonly sentinelMaster: string;
}

/** Selectors for instance `s.name`, in `namespace` when given (else in every namespace). */
export function instanceSelectors(s: RedisHaSettings, namespace?: string): InstanceSelectors {
  const base = [`${INSTANCE_TARGET_LABEL}="${s.name}"`, ...(namespace !== undefined ? [`namespace="${namespace}"`] : [])];
  const sel = (...extra: string[]) => `{${[...base, ...extra].join(', ')}}`;
  return {
    all: sel(),
    redis: sel(`${COMPONENT_TARGET_LABEL}!="sentinel"`),
    sentinel: sel(`${COMPONENT_TARGET_LABEL}="sentinel"`),
    sentinelMaster: sel(`${COMPONENT_TARGET_LABEL}="sentinel"`, `master_name="${s.masterName}"`),
  };
}

const BY = `namespace, ${INSTANCE_TARGET_LABEL}`;

/** The alert rule groups of one instance. */
export function alertRuleGroups(s: RedisHaSettings, namespace?: string): RuleGroup[] {
  const q = instanceSelectors(s, namespace);
  const where = `{{ $labels.namespace }}/{{ $labels.${INSTANCE_TARGET_LABEL} }}`;
  // A failover leaves the instance without a master for about downAfter plus the
  // election; a restarted old master is demoted within seconds. Longer means it is stuck.
  const masterFor = `${Math.max(60, s.failoverWaitSeconds)}s`;
  const rule = (alert: string, severity: string, expr: string, forDuration: string | undefined, summary: string, description: string): AlertRule => ({
    alert, expr, ...(forDuration ? { for: forDuration } : {}), labels: { severity },
    annotations: { summary, description },
  });
  const expectedTargets = s.replicas + 1 + s.sentinels;
  const lagBytes = Math.floor(s.replBacklogBytes / 2);
  return [{
    name: `redis-sentinel-ha.${s.name}`,
    rules: [
      rule('RedisHANotExactlyOneMaster', 'critical',
        `(count by (${BY}) (redis_instance_info${sel(q.redis, 'role="master"')}) != 1)\n`
        + `or\n(count by (${BY}) (redis_up${q.redis}) * 0 unless count by (${BY}) (redis_instance_info${sel(q.redis, 'role="master"')}))`,
        masterFor, `${where}: {{ $value }} Redis servers say they are master`,
        'Not exactly one Redis server of the instance reports role master (0: no master takes writes; 2 or more: a split brain or an old master not yet demoted).'),
      rule('RedisHASentinelsDisagree', 'warning',
        `count by (${BY}) (count by (${BY}, master_address) (redis_sentinel_master_status${q.sentinelMaster})) > 1`,
        '1m', `${where}: the Sentinels name {{ $value }} different masters`,
        `The Sentinels do not agree which server is master of ${s.masterName} (after a failover they converge within seconds).`),
      rule('RedisHASentinelQuorumUnreachable', 'critical',
        `min by (${BY}, pod) (redis_sentinel_master_ckquorum_status${q.sentinelMaster}) == 0`,
        '1m', `${where}: Sentinel {{ $labels.pod }} cannot reach the quorum or a majority (CKQUORUM)`,
        `SENTINEL CKQUORUM ${s.masterName} fails on this Sentinel: it sees too few usable Sentinels to reach the quorum (${s.quorum}) or the majority that authorises a failover. A master failure now would not be failed over.`),
      rule('RedisHAPhantomSentinels', 'warning',
        `max by (${BY}, pod) (redis_sentinel_master_sentinels${q.sentinelMaster}) > ${s.sentinels}`,
        '10m', `${where}: Sentinel {{ $labels.pod }} knows {{ $value }} Sentinels, ${s.sentinels} exist`,
        `A Sentinel counts more Sentinels than the ${s.sentinels} the instance runs: phantoms of replaced Sentinel pods, which count towards the majority a failover needs. The janitor beside each Sentinel removes them; this means it has not.`),
      rule('RedisHAReplicaLinkDown', 'warning',
        `max by (${BY}, pod) (redis_master_link_up${q.redis}) == 0`,
        '1m', `${where}: replica {{ $labels.pod }} is not connected to its master`,
        'A replica\'s replication link to its master is down: it serves stale reads, and cannot be promoted with current data.'),
      rule('RedisHAReplicationLag', 'warning',
        `max by (${BY}, pod, slave_ip, slave_port) (redis_connected_slave_lag_seconds${q.redis}) > ${s.minReplicasMaxLagSeconds}\n`
        + `or\nmax by (${BY}, pod, slave_ip, slave_port) (redis_master_repl_offset${q.redis} - ignoring (slave_ip, slave_port, slave_state) group_right redis_connected_slave_offset_bytes${q.redis}) > ${lagBytes}`,
        '2m', `${where}: replica {{ $labels.slave_ip }} of {{ $labels.pod }} lags ({{ $value | humanize }})`,
        `A replica has not acknowledged for more than ${s.minReplicasMaxLagSeconds}s (min-replicas-max-lag: the master no longer counts it for min-replicas-to-write), or is more than ${lagBytes} bytes behind (half the replication backlog: a reconnect may need a full resync).`),
      rule('RedisHAMemoryNearMaxmemory', 'warning',
        `max by (${BY}, pod) (redis_memory_used_bytes${q.redis} / (redis_memory_max_bytes${q.redis} > 0)) > ${MEMORY_ALERT_RATIO}`,
        '5m', `${where}: {{ $labels.pod }} uses {{ $value | humanizePercentage }} of maxmemory`,
        `Redis uses more than ${MEMORY_ALERT_RATIO * 100}% of maxmemory; at 100% it ${s.maxmemoryPolicy === 'noeviction' ? 'refuses writes with OOM' : `evicts keys (${s.maxmemoryPolicy})`}.`),
      rule('RedisHARejectedWrites', 'warning',
        `sum by (${BY}, pod, err) (increase(redis_errors_total${sel(q.redis, `err=~"${REJECTED_WRITE_ERRORS.join('|')}"`)}[5m])) > 0`,
        undefined, `${where}: {{ $labels.pod }} refused writes with {{ $labels.err }} ({{ $value | humanize }} in 5m)`,
        'A Redis server answered commands with NOREPLICAS (too few replicas in sync, or the guard fenced an isolated master), OOM (maxmemory reached) or MISCONF (a failed save).'),
      rule('RedisHAFailover', 'info',
        `count by (${BY}) (count by (${BY}, master_address) (max_over_time(redis_sentinel_master_status${q.sentinelMaster}[${FAILOVER_WINDOW}]))) > 1`,
        undefined, `${where}: the master changed in the last ${FAILOVER_WINDOW}`,
        `The Sentinels named more than one master of ${s.masterName} in the last ${FAILOVER_WINDOW}: a failover (or a manual one, or a handover by a master's preStop hook) happened.`),
      rule('RedisHAServerDown', 'critical',
        `max by (${BY}, pod, ${COMPONENT_TARGET_LABEL}) (redis_up${q.all}) == 0`,
        '1m', `${where}: the server in {{ $labels.pod }} does not answer its exporter`,
        'The exporter beside a Redis server or Sentinel cannot reach it (process down, restarting, or refusing the metrics user).'),
      rule('RedisHAExporterDown', 'warning',
        `max by (${BY}, pod) (up${q.all}) == 0`,
        '5m', `${where}: Prometheus cannot scrape {{ $labels.pod }}`,
        'Prometheus cannot scrape the redis_exporter sidecar of a pod (pod down, sidecar crashing, or the NetworkPolicy not admitting Prometheus\' namespace).'),
      rule('RedisHATargetsMissing', 'warning',
        `count by (${BY}) (up${q.all}) < ${expectedTargets}\nor\nabsent(up${q.all})`,
        '10m', `${where}: fewer exporters scraped than the ${expectedTargets} pods of the instance`,
        `Prometheus scrapes fewer than the instance's ${expectedTargets} exporters (${s.replicas + 1} Redis, ${s.sentinels} Sentinel), or none: pods missing or pending, or the PodMonitor not selected by Prometheus.`),
      rule('RedisHASentinelTilt', 'warning',
        `max by (${BY}, pod) (redis_sentinel_tilt${q.sentinel}) == 1`,
        '1m', `${where}: Sentinel {{ $labels.pod }} is in TILT mode`,
        'A Sentinel in TILT mode (its clock jumped or it was stalled) acts on nothing until it leaves it, 30s after time is normal again.'),
    ],
  }];
}

/** A selector `{a, b}` with more matchers. */
function sel(selector: string, ...extra: string[]): string {
  return `${selector.slice(0, -1)}, ${extra.join(', ')}}`;
}
