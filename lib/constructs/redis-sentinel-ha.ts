import { Construct } from 'constructs';
import { RedisDisruptionBudget } from './redis-disruption-budget';
import { RedisHaConfiguration } from './redis-ha-configuration';
import { RedisHaProps, RedisHaSettings } from './redis-ha-settings';
import { RedisMaster } from './redis-master';
import { RedisMonitoring } from './redis-monitoring';
import { RedisNetworkPolicies } from './redis-network-policies';
import { RedisProxy } from './redis-proxy';
import { RedisReplicaSet } from './redis-replica-set';
import { SentinelQuorum } from './sentinel-quorum';

export interface RedisSentinelHAProps extends RedisHaProps {}

/**
 * The whole Redis Sentinel system of docs/architecture.md: master, replicas,
 * Sentinels, their configuration and scripts, ServiceAccount and disruption budgets,
 * wired together from one set of props. The objects take their namespace from the
 * chart (`new Chart(app, id, { namespace })`). It is exactly the parts composed by hand:
 *
 *   const configuration = new RedisHaConfiguration(scope, 'Configuration', props);
 *   new RedisMaster(scope, 'Master', { configuration });
 *   new RedisReplicaSet(scope, 'Replicas', { configuration });
 *   new SentinelQuorum(scope, 'Sentinels', { configuration });
 *   new RedisDisruptionBudget(scope, 'RedisBudget', { configuration });
 *   new RedisNetworkPolicies(scope, 'NetworkPolicies', { configuration }); // unless networkPolicies: false
 *   new RedisMonitoring(scope, 'Monitoring', { configuration }); // with metrics, unless prometheusOperator and grafanaDashboard are false
 *   new RedisProxy(scope, 'Proxy', { configuration }); // unless proxy: false
 */
export class RedisSentinelHA extends Construct {
  /** The props, validated and resolved; every part reads them from here. */
  public readonly settings: RedisHaSettings;
  public readonly configuration: RedisHaConfiguration;
  public readonly master: RedisMaster;
  public readonly replicaSet: RedisReplicaSet;
  public readonly sentinels: SentinelQuorum;
  public readonly redisBudget: RedisDisruptionBudget;
  /** The NetworkPolicies, unless networkPolicies is false. */
  public readonly networkPolicies?: RedisNetworkPolicies;
  /** The PodMonitor, PrometheusRule and Grafana dashboard, with metrics (unless prometheusOperator and grafanaDashboard are false). */
  public readonly monitoring?: RedisMonitoring;
  /** The proxy tier (`<name>-write`, `<name>-read`), unless proxy is false. */
  public readonly proxy?: RedisProxy;

  constructor(scope: Construct, id: string, props: RedisSentinelHAProps = {}) {
    super(scope, id);
    this.settings = RedisHaSettings.resolve(props);
    const configuration = new RedisHaConfiguration(this, 'Configuration', { settings: this.settings });
    this.configuration = configuration;
    this.master = new RedisMaster(this, 'Master', { configuration });
    this.replicaSet = new RedisReplicaSet(this, 'Replicas', { configuration });
    this.sentinels = new SentinelQuorum(this, 'Sentinels', { configuration });
    this.redisBudget = new RedisDisruptionBudget(this, 'RedisBudget', { configuration });
    if (this.settings.networkPolicies) this.networkPolicies = new RedisNetworkPolicies(this, 'NetworkPolicies', { configuration });
    if (this.settings.prometheusOperator || this.settings.grafanaDashboard) this.monitoring = new RedisMonitoring(this, 'Monitoring', { configuration });
    if (this.settings.proxy) this.proxy = new RedisProxy(this, 'Proxy', { configuration });
  }

  /** The rendered redis.conf. */
  public get redisConf(): string { return this.settings.redisConf; }
  /** The rendered sentinel.conf. */
  public get sentinelConf(): string { return this.settings.sentinelConf; }
}
