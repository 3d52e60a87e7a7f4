import { Construct } from 'constructs';
import { REDIS_MASTER_NAME } from './names';
import { RedisNode, RedisNodeProps } from './redis-node';

export interface RedisMasterProps extends RedisNodeProps {}

/**
 * StatefulSet `redis-master` (one pod) and its headless Service `redis-master`.
 * `redis-master-0` is the master on first boot; afterwards the Sentinels decide.
 */
export class RedisMaster extends RedisNode {
  constructor(scope: Construct, id: string, props: RedisMasterProps = {}) {
    super(scope, id, REDIS_MASTER_NAME, 'master', 1, props, 'master');
  }
}
