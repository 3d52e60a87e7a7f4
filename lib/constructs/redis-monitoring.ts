import { Chart } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import {
  PodMonitor, PodMonitorSpecPodMetricsEndpointsRelabelingsAction, PrometheusRule, PrometheusRuleSpecGroupsRulesExpr,
} from '../imports/monitoring.coreos.com';
import { alertRuleGroups, COMPONENT_TARGET_LABEL, INSTANCE_TARGET_LABEL } from '../monitoring/alert-rules';
import { grafanaDashboard } from '../monitoring/dashboard';
import { commonLabels } from './names';
import { RedisHaPartProps, claimPart, settingsOf } from './redis-ha-configuration';
import { RedisHaSettings } from './redis-ha-settings';
import { requireDnsLabel, ValidationError } from './validation';

export interface RedisMonitoringProps extends RedisHaPartProps {
  /**
   * Namespace the instance runs in. The alert expressions select its series by it, so
   * that an instance of the same name in another namespace (with other counts and
   * thresholds) is not evaluated by these rules too.
   * @default - the chart's namespace, else the construct context RedisMonitoring.NAMESPACE_CONTEXT (set by
   * RedisHaChart, whose objects get their namespace from kustomize); without any, the rules
   * select the instance by name in every namespace (each alert still names its namespace)
   */
  readonly namespace?: string;
}

/**
 * Construct context key naming the namespace an instance runs in, for charts whose objects
 * get it later (kustomize): `chart.node.setContext(NAMESPACE_CONTEXT, 'redis-production')`
 * before adding children. RedisMonitoring reads it when neither its prop nor the chart names one.
 */
export const NAMESPACE_CONTEXT = 'redis-sentinel-ha:namespace';

/** Scrape interval of the PodMonitor. */
export const SCRAPE_INTERVAL = '15s';

/**
 * What Prometheus and Grafana need to watch one instance's redis_exporter sidecars
 * (metrics on): with prometheusOperator, a PodMonitor `<name>` (port `metrics` of every
 * Redis and Sentinel pod of the instance, with the target labels `ha_instance` and
 * `ha_component`) and a PrometheusRule `<name>` (the alerts); with grafanaDashboard, a
 * ConfigMap `<name>-grafana-dashboard` holding the dashboard JSON. Typed from the
 * Prometheus Operator's CRDs (lib/imports/monitoring.coreos.com.ts, `monitoring` in the
 * library's API). Made by `RedisSentinelHA` when metrics is on.
 */
export class RedisMonitoring extends Construct {
  /** The construct context key naming the instance's namespace (see NAMESPACE_CONTEXT). */
  public static readonly NAMESPACE_CONTEXT: string = NAMESPACE_CONTEXT;

  public readonly settings: RedisHaSettings;
  /** The namespace the rules select, if known. */
  public readonly namespace?: string;
  /** The PodMonitor, with prometheusOperator. */
  public readonly podMonitor?: PodMonitor;
  /** The PrometheusRule, with prometheusOperator. */
  public readonly prometheusRule?: PrometheusRule;
  /** The dashboard ConfigMap, with grafanaDashboard. */
  public readonly dashboardConfigMap?: k8s.KubeConfigMap;

  constructor(scope: Construct, id: string, props: RedisMonitoringProps = {}) {
    super(scope, id);
    const { namespace, ...partProps } = props;
    this.settings = settingsOf('', partProps);
    const s = this.settings;
    if (!s.metrics) {
      throw new ValidationError('metrics', false,
        'is false in the settings this RedisMonitoring was given: there are no exporters to watch; resolve the settings with metrics: true, or leave the part out');
    }
    if (!s.prometheusOperator && !s.grafanaDashboard) {
      throw new ValidationError('prometheusOperator', false,
        'and grafanaDashboard are both false in the settings this RedisMonitoring was given: it would make nothing; leave the part out');
    }
    claimPart(this, 'RedisMonitoring', s.name);
    const fromContext = this.node.tryGetContext(NAMESPACE_CONTEXT) as string | undefined;
    const ns = namespace ?? Chart.of(this).namespace ?? fromContext;
    this.namespace = ns === undefined ? undefined : requireDnsLabel('namespace', ns);
    const labels = (extra: { [key: string]: string }) => ({ ...extra, ...commonLabels(s.name, s.labels) });

    if (s.prometheusOperator) {
      const fromPodLabel = (podLabel: string, targetLabel: string) => ({
        sourceLabels: [`__meta_kubernetes_pod_label_${podLabel.replace(/[^a-zA-Z0-9_]/g, '_')}`],
        targetLabel,
        action: PodMonitorSpecPodMetricsEndpointsRelabelingsAction.REPLACE,
      });
      this.podMonitor = new PodMonitor(this, 'PodMonitor', {
        metadata: { name: s.name, labels: labels(s.monitorLabels) },
        spec: {
          // Every Redis and Sentinel pod of the instance, in the PodMonitor's namespace.
          selector: {
            matchLabels: { 'app.kubernetes.io/instance': s.name },
            matchExpressions: [{ key: 'app.kubernetes.io/name', operator: 'In', values: ['redis', 'redis-sentinel'] }],
          },
          podMetricsEndpoints: [{
            port: 'metrics',
            path: '/metrics',
            interval: SCRAPE_INTERVAL,
            relabelings: [
              fromPodLabel('app.kubernetes.io/instance', INSTANCE_TARGET_LABEL),
              fromPodLabel('app.kubernetes.io/component', COMPONENT_TARGET_LABEL),
            ],
          }],
        },
      });
      this.prometheusRule = new PrometheusRule(this, 'Rules', {
        metadata: { name: s.name, labels: labels(s.ruleLabels) },
        spec: {
          groups: alertRuleGroups(s, this.namespace).map((g) => ({
            name: g.name,
            rules: g.rules.map((r) => ({ ...r, expr: PrometheusRuleSpecGroupsRulesExpr.fromString(r.expr) })),
          })),
        },
      });
    }
    if (s.grafanaDashboard) {
      this.dashboardConfigMap = new k8s.KubeConfigMap(this, 'Dashboard', {
        metadata: { name: `${s.name}-grafana-dashboard`, labels: labels(s.dashboardLabels) },
        data: { [`redis-ha-${s.name}.json`]: `${JSON.stringify(grafanaDashboard(s), null, 2)}\n` },
      });
    }
  }
}
