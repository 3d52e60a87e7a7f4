import { createHash } from 'crypto';
import { ApiObject, Duration, JsonPatch, Size } from 'cdk8s';
import { ContainerResources, k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import {
  commonLabels, DEFAULT_AUTH_SECRET, DEFAULT_CLUSTER_DOMAIN, DEFAULT_MASTER_NAME, DEFAULT_REDIS_IMAGE,
  REDIS_CONFIG_NAME, REDIS_MASTER_NAME, REDIS_POD_LABELS, REDIS_PORT, REDIS_REPLICA_NAME, REDIS_SCRIPTS_NAME, SENTINEL_CONFIG_NAME,
  SENTINEL_NAME, SENTINEL_PORT, selectorLabels,
} from './names';
import { RedisMaster } from './redis-master';
import { DEFAULT_REDIS_RESOURCES } from './redis-node';
import { resolveResources } from './container-resources';
import { RedisReplicaSet } from './redis-replica-set';
import {
  deriveMaxmemoryBytes, deriveReplicationSizing, largestFittingMaxmemoryBytes, MAXMEMORY_POLICIES, MaxmemoryPolicy,
  renderRedisConf, renderSentinelConf,
} from '../pod/config-files';
import { FILES } from '../pod/contract';
import { loadScripts } from '../pod/scripts';
import { resolveSentinelCounts, SentinelQuorum } from './sentinel-quorum';
import {
  durationMillis, requireConfToken, requireDnsLabel, requireDnsSubdomain, requireIntegerInRange, requireLabels,
  requirePinnedImage, sizeInBytes, sizeToQuantity, ValidationError,
} from './validation';

/** Smallest Redis memory limit accepted: room for Redis itself, its data, forks and buffers. */
export const MIN_REDIS_MEMORY_LIMIT_MIB = 64;

export interface RedisSentinelHAProps {
  /**
   * Namespace of every object.
   * @default - none: the objects are namespace-neutral (the kustomize overlay sets it)
   */
  readonly namespace?: string;
  /**
   * Image of Redis and Sentinel, pinned to a version tag or digest.
   * @default 'redis:7.2.7-bookworm'
   */
  readonly image?: string;
  /**
   * Number of replica pods (`redis-slave`).
   * @default 2
   */
  readonly replicas?: number;
  /**
   * Number of Sentinel pods.
   * @default 3
   */
  readonly sentinels?: number;
  /**
   * Sentinels that must agree the master is down.
   * @default - a majority of the Sentinels
   */
  readonly quorum?: number;
  /**
   * Name under which the Sentinels monitor the master; clients ask for it.
   * @default 'mymaster'
   */
  readonly masterName?: string;
  /**
   * How long the master must be unreachable before a Sentinel considers it down.
   * @default Duration.seconds(5)
   */
  readonly downAfter?: Duration;
  /**
   * Sentinel's failover timeout: a failover that has not promoted a replica by then is
   * abandoned, and no Sentinel tries again for twice this long, so a long timeout turns
   * one failed attempt into minutes without a master.
   * @default Duration.seconds(10)
   */
  readonly failoverTimeout?: Duration;
  /**
   * Replicas reconfigured to a new master at the same time after a failover.
   * @default 1
   */
  readonly parallelSyncs?: number;
  /**
   * CPU and memory of each Redis container.
   * @default - 250m CPU request, no CPU limit; memory 256Mi request, 2Gi limit
   */
  readonly redisResources?: ContainerResources;
  /**
   * CPU and memory of each Sentinel container.
   * @default - 50m CPU request, no CPU limit; memory 64Mi request, 128Mi limit
   */
  readonly sentinelResources?: ContainerResources;
  /**
   * Size of each Redis pod's /data volume.
   * @default Size.gibibytes(8)
   */
  readonly storageSize?: Size;
  /**
   * StorageClass of the /data volumes.
   * @default - the cluster's default StorageClass
   */
  readonly storageClassName?: string;
  /**
   * Append-only file persistence (fsync every second).
   * @default true
   */
  readonly appendOnly?: boolean;
  /**
   * Redis `maxmemory`. The rest of the memory limit must hold the replication backlog
   * (maxmemory/16), the replica output buffer (maxmemory/8) and fork copy-on-write
   * (maxmemory/8), so it can be at most about 76% of the limit.
   * @default - 75% of the Redis memory limit, rounded down to whole MiB
   */
  readonly maxmemory?: Size;
  /**
   * What Redis does at `maxmemory`.
   * @default 'noeviction' (refuse writes rather than silently drop keys)
   */
  readonly maxmemoryPolicy?: MaxmemoryPolicy;
  /**
   * A master accepts writes only while at least this many replicas are connected.
   * @default 1
   */
  readonly minReplicasToWrite?: number;
  /**
   * Largest replica lag that still counts a replica as connected for minReplicasToWrite.
   * @default - downAfter rounded up to whole seconds, so an isolated master stops taking
   * writes about when the Sentinels start replacing it
   */
  readonly minReplicasMaxLag?: Duration;
  /**
   * How long a Redis pod that is going down on purpose waits, still serving, until every
   * other Redis pod is up and in sync and none is going down itself (so that a change
   * rolling both StatefulSets never has two Redis pods down at once); then it goes down
   * anyway. It should cover a restart and resync of one Redis pod.
   * @default Duration.minutes(2)
   */
  readonly shutdownGateTimeout?: Duration;
  /**
   * Secret (created outside this project, never in Git) whose key `password` is the Redis password.
   * @default 'redis-auth'
   */
  readonly authSecretName?: string;
  /**
   * DNS domain of the cluster.
   * @default 'cluster.local'
   */
  readonly clusterDomain?: string;
  /**
   * Extra labels on every object and pod (never in selectors).
   * @default - none
   */
  readonly labels?: Record<string, string>;
}

/**
 * The whole Redis Sentinel system of the architecture seed: master, replicas,
 * Sentinels, their configuration and scripts, and disruption budgets, wired together
 * from one set of props.
 */
export class RedisSentinelHA extends Construct {
  public readonly master: RedisMaster;
  public readonly replicaSet: RedisReplicaSet;
  public readonly sentinels: SentinelQuorum;
  public readonly redisConf: string;
  public readonly sentinelConf: string;
  public readonly maxmemoryBytes: number;
  /** `repl-backlog-size`: maxmemory/16, at least 1MiB. */
  public readonly replBacklogBytes: number;
  /** Hard limit of `client-output-buffer-limit replica`: twice the backlog, maxmemory/8. */
  public readonly replicaOutputBufferLimitBytes: number;
  /** Copy-on-write room for a fork that the headroom above maxmemory must leave at least: maxmemory/8. */
  public readonly copyOnWriteAllowanceBytes: number;
  /** Redis memory limit minus maxmemory: what holds the backlog, replica buffers and fork copy-on-write. */
  public readonly memoryHeadroomBytes: number;
  public readonly downAfterMillis: number;
  public readonly failoverTimeoutMillis: number;

  constructor(scope: Construct, id: string, props: RedisSentinelHAProps = {}) {
    super(scope, id);
    const namespace = props.namespace === undefined ? undefined : requireDnsLabel('namespace', props.namespace);
    const image = requirePinnedImage('image', props.image ?? DEFAULT_REDIS_IMAGE);
    const masterName = requireConfToken('masterName', props.masterName ?? DEFAULT_MASTER_NAME);
    const authSecretName = requireDnsSubdomain('authSecretName', props.authSecretName ?? DEFAULT_AUTH_SECRET);
    const clusterDomain = requireDnsSubdomain('clusterDomain', props.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN);
    const labels = requireLabels('labels', props.labels ?? {});
    const replicas = requireIntegerInRange('replicas', props.replicas ?? 2, 1, 100,
      'must be an integer from 1 to 100 (with no replica there is nothing to fail over to)');

    this.downAfterMillis = durationMillis('downAfter', props.downAfter ?? Duration.seconds(5));
    if (this.downAfterMillis < 1000) {
      throw new ValidationError('downAfter', Duration.millis(this.downAfterMillis), 'must be at least 1s (Sentinel would fail over on ordinary network jitter)');
    }
    this.failoverTimeoutMillis = durationMillis('failoverTimeout', props.failoverTimeout ?? Duration.seconds(10));
    if (this.failoverTimeoutMillis <= this.downAfterMillis) {
      throw new ValidationError('failoverTimeout', Duration.millis(this.failoverTimeoutMillis),
        `must be longer than downAfter (${this.downAfterMillis}ms)`);
    }
    const parallelSyncs = requireIntegerInRange('parallelSyncs', props.parallelSyncs ?? 1, 1, replicas,
      `must be an integer from 1 to the number of replicas (${replicas})`);
    const minReplicasToWrite = requireIntegerInRange('minReplicasToWrite', props.minReplicasToWrite ?? 1, 0, replicas,
      `must be an integer from 0 to the number of replicas (${replicas}); 0 disables the check`);
    // Redis takes whole seconds here, so the default rounds downAfter (1500ms -> 2s) up.
    const defaultMaxLag = Duration.seconds(Math.max(1, Math.ceil(this.downAfterMillis / 1000)));
    const maxLagMillis = durationMillis('minReplicasMaxLag', props.minReplicasMaxLag ?? defaultMaxLag);
    if (maxLagMillis < 1000 || maxLagMillis % 1000 !== 0) {
      throw new ValidationError('minReplicasMaxLag', Duration.millis(maxLagMillis), 'must be a whole number of seconds, at least 1s');
    }
    const maxmemoryPolicy = props.maxmemoryPolicy ?? 'noeviction';
    if (!MAXMEMORY_POLICIES.includes(maxmemoryPolicy)) {
      throw new ValidationError('maxmemoryPolicy', maxmemoryPolicy, `must be one of ${MAXMEMORY_POLICIES.join(', ')}`);
    }
    if (props.appendOnly !== undefined && typeof props.appendOnly !== 'boolean') {
      throw new ValidationError('appendOnly', props.appendOnly, 'must be true or false');
    }

    const { sentinels: sentinelCount, quorum } = resolveSentinelCounts(props.sentinels, props.quorum);
    const commonRedisProps = {
      image, masterName, authSecretName, clusterDomain, labels,
      resources: props.redisResources,
      storageSize: props.storageSize,
      storageClassName: props.storageClassName,
      failoverWait: Duration.millis(this.downAfterMillis * 2 + this.failoverTimeoutMillis),
      sentinelQuorum: quorum,
      sentinelCount,
      shutdownGateTimeout: props.shutdownGateTimeout,
      // Every Redis pod of both StatefulSets: the start script, the guard and the shutdown
      // gate all look at every one of them.
      redisPodDnsNames: [
        `${REDIS_MASTER_NAME}-0.${REDIS_MASTER_NAME}`,
        ...Array.from({ length: replicas }, (_, i) => `${REDIS_REPLICA_NAME}-${i}.${REDIS_REPLICA_NAME}`),
      ],
    };
    // Validate the Redis props under the names this construct's users see, before the
    // StatefulSets (which would name their own fields) get them.
    const redisResources = resolveResources('redisResources', props.redisResources, DEFAULT_REDIS_RESOURCES);
    if (props.storageSize !== undefined) sizeInBytes('storageSize', props.storageSize);
    if (props.shutdownGateTimeout !== undefined) durationMillis('shutdownGateTimeout', props.shutdownGateTimeout);
    if (props.storageClassName !== undefined) requireDnsSubdomain('storageClassName', props.storageClassName);

    const limitBytes = redisResources.memoryLimitBytes;
    if (limitBytes < MIN_REDIS_MEMORY_LIMIT_MIB * 1024 * 1024) {
      throw new ValidationError('redisResources.memory.limit', props.redisResources?.memory?.limit ?? DEFAULT_REDIS_RESOURCES.memoryLimit,
        `must be at least ${MIN_REDIS_MEMORY_LIMIT_MIB}Mi (Redis needs room for data, forks and buffers; far below that the derived maxmemory reaches 0, which Redis reads as "no limit"); raise the limit`);
    }
    if (props.maxmemory !== undefined) {
      const bytes = sizeInBytes('maxmemory', props.maxmemory);
      if (bytes >= limitBytes) {
        throw new ValidationError('maxmemory', props.maxmemory,
          `must be below the Redis memory limit (${redisResources.memoryLimit}) to leave headroom for forks and buffers; omit it to use 75% of the limit`);
      }
      this.maxmemoryBytes = bytes;
    } else {
      this.maxmemoryBytes = deriveMaxmemoryBytes(limitBytes);
    }
    const replication = deriveReplicationSizing(this.maxmemoryBytes);
    this.replBacklogBytes = replication.replBacklogBytes;
    this.replicaOutputBufferLimitBytes = replication.replicaOutputBufferLimitBytes;
    this.copyOnWriteAllowanceBytes = replication.copyOnWriteAllowanceBytes;
    this.memoryHeadroomBytes = limitBytes - this.maxmemoryBytes;
    // The derived maxmemory (75%) always fits; only a maxmemory set by hand can leave too little.
    if (this.memoryHeadroomBytes < replication.requiredHeadroomBytes) {
      const q = (bytes: number) => sizeToQuantity(Size.kibibytes(bytes / 1024));
      throw new ValidationError('maxmemory', props.maxmemory,
        `must leave at least ${q(replication.requiredHeadroomBytes)} of the Redis memory limit (${redisResources.memoryLimit}) free for `
        + `the replication backlog (${q(replication.replBacklogBytes)}), the replica output buffer (${q(replication.replicaOutputBufferLimitBytes)}) `
        + `and fork copy-on-write (${q(replication.copyOnWriteAllowanceBytes)}), all derived from maxmemory; `
        + `lower maxmemory to at most ${q(largestFittingMaxmemoryBytes(limitBytes))}, raise the limit, or omit maxmemory to use 75% of the limit`);
    }

    this.redisConf = renderRedisConf({
      port: REDIS_PORT,
      maxmemoryBytes: this.maxmemoryBytes,
      replBacklogBytes: this.replBacklogBytes,
      replicaOutputBufferLimitBytes: this.replicaOutputBufferLimitBytes,
      maxmemoryPolicy,
      appendOnly: props.appendOnly ?? true,
      minReplicasToWrite,
      minReplicasMaxLagSeconds: maxLagMillis / 1000,
    });
    this.sentinelConf = renderSentinelConf({
      port: SENTINEL_PORT,
      masterName,
      bootstrapMasterHost: `${REDIS_MASTER_NAME}-0.${REDIS_MASTER_NAME}`,
      redisPort: REDIS_PORT,
      quorum,
      downAfterMillis: this.downAfterMillis,
      failoverTimeoutMillis: this.failoverTimeoutMillis,
      parallelSyncs,
    });
    const scripts = loadScripts();
    const objectLabels = commonLabels(labels);

    new k8s.KubeConfigMap(this, 'RedisConfig', {
      metadata: { name: REDIS_CONFIG_NAME, labels: objectLabels },
      data: { [FILES.redisConf]: this.redisConf },
    });
    new k8s.KubeConfigMap(this, 'SentinelConfig', {
      metadata: { name: SENTINEL_CONFIG_NAME, labels: objectLabels },
      data: { [FILES.sentinelConf]: this.sentinelConf },
    });
    new k8s.KubeConfigMap(this, 'Scripts', {
      metadata: { name: REDIS_SCRIPTS_NAME, labels: objectLabels },
      data: scripts,
    });

    // Each tier's pods carry the hash of what they use, so a change to one tier's
    // configuration or scripts rolls only that tier.
    const redisPodAnnotations = { [CONFIG_HASH_ANNOTATION]: configHash('redis', this.redisConf, scripts) };
    this.master = new RedisMaster(this, 'Master', { ...commonRedisProps, podAnnotations: redisPodAnnotations });
    this.replicaSet = new RedisReplicaSet(this, 'Replicas', { ...commonRedisProps, replicas, podAnnotations: redisPodAnnotations });
    this.sentinels = new SentinelQuorum(this, 'Sentinels', {
      replicas: sentinelCount,
      quorum,
      masterName,
      image,
      resources: props.sentinelResources,
      authSecretName,
      clusterDomain,
      labels,
      redisPodDnsNames: commonRedisProps.redisPodDnsNames,
      podAnnotations: { [CONFIG_HASH_ANNOTATION]: configHash('sentinel', this.sentinelConf, scripts) },
    });

    // At most one Redis pod and one Sentinel pod down for voluntary disruptions (drains).
    disruptionBudget(this, 'RedisBudget', 'redis', REDIS_POD_LABELS, objectLabels);
    disruptionBudget(this, 'SentinelBudget', SENTINEL_NAME, selectorLabels('sentinel'), objectLabels);

    if (namespace !== undefined) placeInNamespace(this, namespace);
  }
}

/** Pod-template annotation whose change rolls the pods when their configuration changes. */
export const CONFIG_HASH_ANNOTATION = 'redis-sentinel-ha/config-hash';

/**
 * The scripts a tier's pods run: common.sh and every script named for the tier
 * (`redis-*.sh` or `sentinel-*.sh`), so a new script joins its tier's hash by its name.
 */
export function tierScripts(tier: 'redis' | 'sentinel', scripts: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(scripts).filter(([name]) => name === 'common.sh' || name.startsWith(`${tier}-`)));
}

/** Hash of a tier's configuration file and the scripts its pods run. */
export function configHash(tier: 'redis' | 'sentinel', conf: string, scripts: Record<string, string>): string {
  const used = Object.entries(tierScripts(tier, scripts)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const text = conf + used.map(([name, content]) => `${name}\n${content}`).join('\n');
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

function disruptionBudget(scope: Construct, id: string, name: string, matchLabels: Record<string, string>, labels: Record<string, string>) {
  return new k8s.KubePodDisruptionBudget(scope, id, {
    metadata: { name, labels },
    spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels } },
  });
}

/** Set metadata.namespace on every API object below scope (cdk8s has no per-construct namespace). */
function placeInNamespace(scope: Construct, namespace: string) {
  for (const child of scope.node.findAll()) {
    if (child instanceof ApiObject) child.addJsonPatch(JsonPatch.add('/metadata/namespace', namespace));
  }
}

