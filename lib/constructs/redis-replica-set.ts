import { Construct } from 'constructs';
import { RedisHaPartProps } from './redis-ha-configuration';
import { RedisNode } from './redis-node';

export interface RedisReplicaSetProps extends RedisHaPartProps {}

/**
 * StatefulSet `<name>-slave` (`replicas` pods: they serve reads and are the candidates
 * for promotion) and its headless Service `<name>-slave`. On its own it also creates
 * the configuration it mounts (`RedisHaConfiguration`).
 */
export class RedisReplicaSet extends RedisNode {
  constructor(scope: Construct, id: string, props: RedisReplicaSetProps = {}) {
    super(scope, id, 'replica', props);
  }
}
