/**
 * Pure rendering of redis.conf and sentinel.conf: props in, text out. The start scripts
 * in lib/scripts/ add only what cannot be known at synth time (the password from the
 * Secret, this pod's DNS name, the current master).
 */

import { ValidationError } from './validation';

export type MaxmemoryPolicy =
  | 'noeviction'
  | 'allkeys-lru' | 'allkeys-lfu' | 'allkeys-random'
  | 'volatile-lru' | 'volatile-lfu' | 'volatile-random' | 'volatile-ttl';

export const MAXMEMORY_POLICIES: readonly MaxmemoryPolicy[] = [
  'noeviction', 'allkeys-lru', 'allkeys-lfu', 'allkeys-random',
  'volatile-lru', 'volatile-lfu', 'volatile-random', 'volatile-ttl',
];

/**
 * Share of the container memory limit left outside `maxmemory`: fork copy-on-write during
 * AOF rewrite and full syncs, replication and client output buffers, allocator overhead.
 */
export const MAXMEMORY_HEADROOM = 0.25;

/**
 * `maxmemory` for a memory limit: the limit minus headroom, rounded down to whole MiB.
 * Throws rather than return 0, which Redis reads as "no limit".
 */
export function deriveMaxmemoryBytes(memoryLimitBytes: number, headroom = MAXMEMORY_HEADROOM): number {
  const mib = 1024 * 1024;
  const bytes = Math.floor((memoryLimitBytes * (1 - headroom)) / mib) * mib;
  if (!(bytes > 0)) {
    throw new ValidationError('memoryLimitBytes', memoryLimitBytes,
      `must leave at least 1MiB for maxmemory after ${100 * headroom}% headroom (Redis reads a maxmemory of 0 as "no limit"); raise the memory limit`);
  }
  return bytes;
}

export interface RedisConfInput {
  readonly port: number;
  readonly maxmemoryBytes: number;
  readonly maxmemoryPolicy: MaxmemoryPolicy;
  readonly appendOnly: boolean;
  readonly minReplicasToWrite: number;
  readonly minReplicasMaxLagSeconds: number;
}

export function renderRedisConf(input: RedisConfInput): string {
  if (!Number.isInteger(input.maxmemoryBytes) || input.maxmemoryBytes <= 0) {
    throw new ValidationError('maxmemoryBytes', input.maxmemoryBytes,
      'must be a positive whole number of bytes (Redis reads a maxmemory of 0 as "no limit")');
  }
  const persistence = input.appendOnly
    ? [
      '# Durability: every write goes to the append-only file, fsynced once a second.',
      'appendonly yes',
      'appendfsync everysec',
      '# No RDB snapshots on a timer: the AOF is the durable copy, and each fork costs memory.',
      'save ""',
    ]
    : [
      '# AOF disabled by configuration: only periodic RDB snapshots survive a restart.',
      'appendonly no',
      'save 3600 1 300 100 60 10000',
    ];
  return [
    '# redis.conf rendered by redis-sentinel-ha. At start, redis-start.sh appends the',
    '# password (from the mounted Secret), replica-announce-ip (this pod\'s DNS name) and,',
    '# for a replica, the replicaof line for the master the Sentinels named.',
    'bind * -::*',
    `port ${input.port}`,
    '# Authentication is always on (requirepass is appended at start), so protected mode',
    '# would only refuse legitimate pod-network clients.',
    'protected-mode no',
    'dir /data',
    'tcp-keepalive 60',
    ...persistence,
    '',
    '# Memory: maxmemory sits below the container limit so Redis evicts or refuses writes',
    '# before the kernel OOM-kills it.',
    `maxmemory ${input.maxmemoryBytes}`,
    `maxmemory-policy ${input.maxmemoryPolicy}`,
    '',
    '# Replication',
    'replica-read-only yes',
    'replica-serve-stale-data yes',
    'repl-diskless-sync yes',
    '# Start a full sync at once instead of waiting 5s for more replicas: after a failover,',
    '# min-replicas-to-write refuses writes until a replica is in sync.',
    'repl-diskless-sync-delay 0',
    '# A master cut off from its replicas stops taking writes after this lag, which bounds',
    '# what an isolated old master can accept before Sentinel replaces it.',
    `min-replicas-to-write ${input.minReplicasToWrite}`,
    `min-replicas-max-lag ${input.minReplicasMaxLagSeconds}`,
    '',
  ].join('\n');
}

export interface SentinelConfInput {
  readonly port: number;
  readonly masterName: string;
  /** Host written into the monitor line; sentinel-start.sh replaces it with the master it discovers. */
  readonly bootstrapMasterHost: string;
  readonly redisPort: number;
  readonly quorum: number;
  readonly downAfterMillis: number;
  readonly failoverTimeoutMillis: number;
  readonly parallelSyncs: number;
}

export function renderSentinelConf(input: SentinelConfInput): string {
  const m = input.masterName;
  return [
    '# sentinel.conf rendered by redis-sentinel-ha. sentinel-start.sh copies it to a',
    '# writable emptyDir (Sentinel rewrites its config), puts the current master into the',
    '# monitor line and appends auth-pass from the mounted Secret.',
    `port ${input.port}`,
    'dir /data',
    '# Redis pods are followed by their stable DNS names, not by IPs that change.',
    'sentinel resolve-hostnames yes',
    'sentinel announce-hostnames yes',
    `sentinel monitor ${m} ${input.bootstrapMasterHost} ${input.redisPort} ${input.quorum}`,
    `sentinel down-after-milliseconds ${m} ${input.downAfterMillis}`,
    `sentinel failover-timeout ${m} ${input.failoverTimeoutMillis}`,
    `sentinel parallel-syncs ${m} ${input.parallelSyncs}`,
    '',
  ].join('\n');
}
