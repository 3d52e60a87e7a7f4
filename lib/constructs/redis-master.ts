import { Construct } from 'constructs';
import { RedisHaPartProps } from './redis-ha-configuration';
import { RedisNode } from './redis-node';

export interface RedisMasterProps extends RedisHaPartProps {}

/**
 * StatefulSet `<name>-master` (one pod) and its headless Service `<name>-master`.
 * `<name>-master-0` is the master on first boot; afterwards the Sentinels decide.
 * On its own it also creates the configuration it mounts (`RedisHaConfiguration`).
 */
export class RedisMaster extends RedisNode {
  constructor(scope: Construct, id: string, props: RedisMasterProps = {}) {
    super(scope, id, 'master', props);
  }
}
