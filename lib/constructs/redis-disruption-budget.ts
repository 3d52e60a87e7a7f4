import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { commonLabels, redisTierSelector } from './names';
import { RedisHaPartProps, claimPart, settingsOf } from './redis-ha-configuration';
import { RedisHaSettings } from './redis-ha-settings';

export interface RedisDisruptionBudgetProps extends RedisHaPartProps {}

/**
 * PodDisruptionBudget `<name>`: at most one Redis pod of the instance (master and
 * replicas together) down for voluntary disruptions such as node drains.
 */
export class RedisDisruptionBudget extends Construct {
  public readonly settings: RedisHaSettings;
  public readonly budget: k8s.KubePodDisruptionBudget;

  constructor(scope: Construct, id: string, props: RedisDisruptionBudgetProps = {}) {
    super(scope, id);
    this.settings = settingsOf('', props);
    const s = this.settings;
    claimPart(this, 'RedisDisruptionBudget', s.name);
    this.budget = new k8s.KubePodDisruptionBudget(this, 'Budget', {
      metadata: { name: s.names.redisBudget, labels: commonLabels(s.name, s.labels) },
      spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: redisTierSelector(s.name) } },
    });
  }
}
