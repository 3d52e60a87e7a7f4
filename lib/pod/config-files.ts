/**
 * Pure rendering of redis.conf and sentinel.conf: props in, text out. The start scripts
 * in lib/pod/scripts/ add only what cannot be known at synth time (the ACL users with the
 * hashes of the passwords in the Secret, the replication and Sentinel credentials, this
 * pod's DNS name, the current master).
 */

import { ValidationError } from '../constructs/validation';
import { MOUNTS } from './contract';

/** What Redis does when it reaches `maxmemory` (`maxmemory-policy`). */
export enum MaxmemoryPolicy {
  /** Refuse writes that need more memory; nothing is dropped. */
  NOEVICTION = 'noeviction',
  ALLKEYS_LRU = 'allkeys-lru',
  ALLKEYS_LFU = 'allkeys-lfu',
  ALLKEYS_RANDOM = 'allkeys-random',
  VOLATILE_LRU = 'volatile-lru',
  VOLATILE_LFU = 'volatile-lfu',
  VOLATILE_RANDOM = 'volatile-random',
  VOLATILE_TTL = 'volatile-ttl',
}

export const MAXMEMORY_POLICIES: readonly MaxmemoryPolicy[] = Object.values(MaxmemoryPolicy);

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

/**
 * Replication memory sized from `maxmemory`, and the headroom above `maxmemory` it needs.
 *
 * - `repl-backlog-size` is maxmemory/16 (at least Redis' own 1MiB default). The backlog is
 *   what a replica that reconnects can catch up on with a partial resync: after a short
 *   outage of its own, or after a failover, when it follows the promoted replica (whose
 *   backlog carries the old master's replication ID). Redis' 1MiB default is a second or
 *   less of steady writes, so any real outage ends in a full sync. The write rate is not
 *   known at synth time; maxmemory is the best proxy for how busy the node is, and 1/16 of
 *   it (96MiB for staging's 2Gi limit, 384MiB for 8Gi) covers minutes at a moderate rate.
 *   Redis 7 grows the backlog as writes arrive (it does not allocate it up front).
 * - The replica output buffer hard limit is twice the backlog, maxmemory/8. While a full
 *   sync runs (fork, transfer, the replica loading the snapshot) the master buffers every
 *   write for that replica; a limit below those writes disconnects the replica mid-sync
 *   and the sync starts over, forever. Redis' default (256MiB hard, 64MiB for 60s soft) is
 *   independent of the dataset, while a sync takes longer the more data there is. The
 *   limit must also stay above the backlog: since Redis 7 the replicas and the backlog
 *   share one buffer, so a replica the backlog could still serve is not cut off.
 * - No soft limit (`0 0`): a soft limit cuts a replica whose buffer stays above it for its
 *   window, which is exactly what a full sync of a large dataset does (the buffer grows for
 *   the whole transfer and load). The hard limit alone bounds the memory.
 *
 * Headroom budget (container limit minus maxmemory, 25% of the limit by default, which is
 * maxmemory/3): backlog (1/16) + replica output buffer (1/8) + a copy-on-write allowance
 * for the fork of a full sync or AOF rewrite (1/8, that is an eighth of the dataset's pages
 * written while the fork lives) = 5/16 of maxmemory, which leaves ~2% for allocator
 * overhead at the default. Since Redis 7 the backlog is counted inside maxmemory and only
 * the replica buffer beyond it is not, so budgeting the backlog again is deliberate slack
 * for fragmentation. A maxmemory above 16/21 (~76%) of the limit cannot fit this budget.
 */
export const REPL_BACKLOG_FRACTION = 1 / 16;
export const REPLICA_OUTPUT_BUFFER_FRACTION = 1 / 8;
export const COPY_ON_WRITE_FRACTION = 1 / 8;
/** Redis' default `repl-backlog-size`, the floor of the derived one. */
export const MIN_REPL_BACKLOG_BYTES = 1024 * 1024;

export interface ReplicationSizing {
  readonly replBacklogBytes: number;
  /** Hard limit of `client-output-buffer-limit replica`. */
  readonly replicaOutputBufferLimitBytes: number;
  /** Least copy-on-write room the headroom must leave for a fork. */
  readonly copyOnWriteAllowanceBytes: number;
  /** Memory the container needs above maxmemory: the three above together. */
  readonly requiredHeadroomBytes: number;
}

/** Backlog, replica buffer limit and copy-on-write allowance for a maxmemory, each rounded down to whole MiB. */
export function deriveReplicationSizing(maxmemoryBytes: number): ReplicationSizing {
  const mib = (bytes: number) => Math.floor(bytes / (1024 * 1024)) * 1024 * 1024;
  const replBacklogBytes = Math.max(MIN_REPL_BACKLOG_BYTES, mib(maxmemoryBytes * REPL_BACKLOG_FRACTION));
  const replicaOutputBufferLimitBytes = 2 * replBacklogBytes;
  const copyOnWriteAllowanceBytes = mib(maxmemoryBytes * COPY_ON_WRITE_FRACTION);
  return {
    replBacklogBytes,
    replicaOutputBufferLimitBytes,
    copyOnWriteAllowanceBytes,
    requiredHeadroomBytes: replBacklogBytes + replicaOutputBufferLimitBytes + copyOnWriteAllowanceBytes,
  };
}

/** Largest maxmemory, in whole MiB, whose replication sizing still fits below this memory limit. */
export function largestFittingMaxmemoryBytes(memoryLimitBytes: number): number {
  const mib = 1024 * 1024;
  const fraction = 1 + REPL_BACKLOG_FRACTION + REPLICA_OUTPUT_BUFFER_FRACTION + COPY_ON_WRITE_FRACTION;
  // Rounding the three parts down to whole MiB saves less than 4MiB, so nothing above this
  // fits; the backlog's 1MiB floor can make less fit. Step down to the first that does.
  let bytes = Math.floor((memoryLimitBytes + 4 * mib) / fraction / mib) * mib;
  while (bytes > 0 && bytes + deriveReplicationSizing(bytes).requiredHeadroomBytes > memoryLimitBytes) bytes -= mib;
  return bytes;
}

/**
 * Seconds without traffic after which master and replica drop their link. Redis' default,
 * written out because it was chosen: a replica loading a large snapshot pings the master
 * with newlines, and the master pings replicas every 10s, so 60s is not reached by a long
 * full sync, while a dead link is found by Sentinel (downAfter) long before.
 */
export const REPL_TIMEOUT_SECONDS = 60;

export interface RedisConfInput {
  readonly port: number;
  readonly maxmemoryBytes: number;
  readonly replBacklogBytes: number;
  readonly replicaOutputBufferLimitBytes: number;
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
  for (const field of ['replBacklogBytes', 'replicaOutputBufferLimitBytes'] as const) {
    if (!Number.isInteger(input[field]) || input[field] <= 0) {
      throw new ValidationError(field, input[field], 'must be a positive whole number of bytes (Redis reads 0 as "no limit")');
    }
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
    '# redis.conf rendered by redis-sentinel-ha. At start, redis-start.sh appends the ACL',
    '# users (the rules in acl-users, the password hashes from the mounted Secret, default',
    '# off), masteruser/masterauth, replica-announce-ip (this pod\'s DNS name) and, for a',
    '# replica, the replicaof line for the master the Sentinels named.',
    'bind * -::*',
    `port ${input.port}`,
    '# Authentication is always on (the default user is switched off at start), so',
    '# protected mode would only refuse legitimate pod-network clients.',
    'protected-mode no',
    `dir ${MOUNTS.redisData}`,
    'tcp-keepalive 60',
    ...persistence,
    '',
    '# Memory: maxmemory sits below the container limit so Redis evicts or refuses writes',
    '# before the kernel OOM-kills it.',
    `maxmemory ${input.maxmemoryBytes}`,
    `maxmemory-policy ${input.maxmemoryPolicy}`,
    '',
    '# Replication',
    '# The backlog lets a replica that reconnects (after its own short outage, or to a newly',
    '# promoted master) resume with a partial resync instead of a full one: maxmemory/16.',
    `repl-backlog-size ${input.replBacklogBytes}`,
    '# During a full sync the master buffers every write for the replica; a limit below',
    '# that disconnects it mid-sync and the sync restarts forever. Hard limit maxmemory/8,',
    '# no soft limit (a time window would cut a long sync of a large dataset).',
    `client-output-buffer-limit replica ${input.replicaOutputBufferLimitBytes} 0 0`,
    `repl-timeout ${REPL_TIMEOUT_SECONDS}`,
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
    '# monitor line and appends the ACL users (acl-users, default off) and the credentials',
    '# it uses towards Redis and the other Sentinels (auth-user/auth-pass, sentinel-user/',
    '# sentinel-pass) from the mounted Secret.',
    `port ${input.port}`,
    `dir ${MOUNTS.sentinelData}`,
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
