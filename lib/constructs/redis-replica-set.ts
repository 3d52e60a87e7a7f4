import { Construct } from 'constructs';
import { REDIS_REPLICA_NAME } from './names';
import { RedisNode, RedisNodeProps } from './redis-node';
import { requireIntegerInRange } from './validation';

export interface RedisReplicaSetProps extends RedisNodeProps {
  /**
   * Number of replica pods. They serve reads and are the candidates for promotion.
   * @default 2
   */
  readonly replicas?: number;
}

/** StatefulSet `redis-slave` and its headless Service `redis-slave`. */
export class RedisReplicaSet extends RedisNode {
  constructor(scope: Construct, id: string, props: RedisReplicaSetProps = {}) {
    const replicas = requireIntegerInRange('replicas', props.replicas ?? 2, 1, 100,
      'must be an integer from 1 to 100 (with no replica there is nothing to fail over to)');
    super(scope, id, REDIS_REPLICA_NAME, 'replica', replicas, props, 'replicas');
  }
}
