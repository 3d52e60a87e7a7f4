import { ApiObjectMetadata, Duration, Size } from 'cdk8s';
import { ContainerResources, Cpu, k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import {
  commonLabels, DEFAULT_AUTH_SECRET, DEFAULT_CLUSTER_DOMAIN, DEFAULT_MASTER_NAME, DEFAULT_REDIS_IMAGE,
  REDIS_CONFIG_NAME, REDIS_MASTER_NAME, REDIS_POD_LABELS, REDIS_PORT, REDIS_SCRIPTS_NAME,
  SENTINEL_HEADLESS_NAME, SENTINEL_PORT, selectorLabels,
} from './names';
import {
  AUTH_MOUNT, configMapVolume, execProbe, passwordVolume, preferSpreadOverNodes, SCRIPTS_MOUNT,
  resourceRequirements, restrictedContainerSecurity, restrictedPodSecurity, scriptCommand,
} from './pod-spec';
import { ResolvedResources, resolveResources } from './container-resources';
import { guardContainerEnv, MOUNTS, RedisPodContract, redisContainerEnv } from '../pod/contract';
import {
  durationMillis, requireConfToken, requireIntegerInRange, requireDnsSubdomain, requireLabels, requirePinnedImage,
  sizeInBytes, sizeToQuantity, ValidationError,
} from './validation';

/** Props shared by the master and the replica StatefulSets. */
export interface RedisNodeProps {
  /**
   * Container image, pinned to a version tag or digest.
   * @default 'redis:7.2.7-bookworm'
   */
  readonly image?: string;
  /**
   * CPU and memory of the redis container.
   * @default - 250m CPU request and no CPU limit; memory 256Mi request, 2Gi limit
   */
  readonly resources?: ContainerResources;
  /**
   * Size of each pod's /data volume.
   * @default Size.gibibytes(8)
   */
  readonly storageSize?: Size;
  /**
   * StorageClass of the /data volumes.
   * @default - the cluster's default StorageClass
   */
  readonly storageClassName?: string;
  /**
   * Name under which the Sentinels monitor the master.
   * @default 'mymaster'
   */
  readonly masterName?: string;
  /**
   * Secret (created outside this project) whose key `password` is the Redis password.
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
  /**
   * Annotations on the pod template; the composite puts a hash of the configuration here
   * so that a configuration change rolls the pods.
   * @default - none
   */
  readonly podAnnotations?: Record<string, string>;
  /**
   * How long a restarting pod that the Sentinels still list as a down master waits for
   * their failover before it starts as master anyway.
   * @default Duration.seconds(30)
   */
  readonly failoverWait?: Duration;
  /**
   * Sentinels that must agree before the guard demotes a master they no longer name
   * (the composite passes the Sentinel quorum).
   * @default 2
   */
  readonly sentinelQuorum?: number;
  /**
   * Number of Sentinel pods: a master that fewer than a majority of them back (and that
   * misses a replica) fences itself.
   * @default 3
   */
  readonly sentinelCount?: number;
  /**
   * DNS names (relative to the namespace) of every Redis pod of the system, master and
   * replicas, this StatefulSet's included: the start script asks each of them what data it
   * holds, the guard counts the replicas a master should have, and the shutdown gate waits
   * for all of them. The composite passes the pods of both StatefulSets.
   * @default - this StatefulSet's own pods
   */
  readonly redisPodDnsNames?: string[];
  /**
   * How long the preStop hook of a master waits for the handover to a replica.
   * @default Duration.seconds(20)
   */
  readonly handoverTimeout?: Duration;
  /**
   * How long a Redis pod that is going down on purpose (rollout, drain, delete) waits, in
   * its preStop hook and still serving, until every other Redis pod is up and in sync and
   * none is going down itself; after that it goes down anyway, so that a drain never hangs
   * on a broken peer. It should cover a restart and resync of one Redis pod.
   * @default Duration.minutes(2)
   */
  readonly shutdownGateTimeout?: Duration;
}

const GUARD_RESOURCES = { cpuRequest: '20m', memoryRequest: '16Mi', memoryLimit: '64Mi' };

export const DEFAULT_REDIS_RESOURCES = {
  cpuRequest: Cpu.millis(250),
  memoryRequest: Size.mebibytes(256),
  memoryLimit: Size.gibibytes(2),
};

/**
 * A StatefulSet of Redis servers with its headless Service and per-pod /data volumes.
 * The StatefulSet name is the pods' initial role only: which pod is master at any time
 * is decided by the Sentinels and by redis-start.sh.
 */
export abstract class RedisNode extends Construct {
  public readonly name: string;
  public readonly replicas: number;
  public readonly image: string;
  public readonly resources: ResolvedResources;
  public readonly storageSize: Size;
  public readonly masterName: string;
  public readonly authSecretName: string;
  public readonly clusterDomain: string;
  public readonly service: k8s.KubeService;
  public readonly statefulSet: k8s.KubeStatefulSet;

  protected constructor(scope: Construct, id: string, name: string, component: 'master' | 'replica',
    replicas: number, props: RedisNodeProps, field: string) {
    super(scope, id);
    this.name = name;
    this.replicas = replicas;
    this.image = requirePinnedImage(`${field}.image`, props.image ?? DEFAULT_REDIS_IMAGE);
    this.resources = resolveResources(`${field}.resources`, props.resources, DEFAULT_REDIS_RESOURCES);
    this.storageSize = props.storageSize ?? Size.gibibytes(8);
    sizeInBytes(`${field}.storageSize`, this.storageSize);
    if (props.storageClassName !== undefined) requireDnsSubdomain(`${field}.storageClassName`, props.storageClassName);
    this.masterName = requireConfToken(`${field}.masterName`, props.masterName ?? DEFAULT_MASTER_NAME);
    this.authSecretName = requireDnsSubdomain(`${field}.authSecretName`, props.authSecretName ?? DEFAULT_AUTH_SECRET);
    this.clusterDomain = requireDnsSubdomain(`${field}.clusterDomain`, props.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN);
    const labels = commonLabels(requireLabels(`${field}.labels`, props.labels ?? {}));
    const failoverWaitSeconds = Math.ceil(durationMillis(`${field}.failoverWait`, props.failoverWait ?? Duration.seconds(30)) / 1000);
    const handoverSeconds = Math.ceil(durationMillis(`${field}.handoverTimeout`, props.handoverTimeout ?? Duration.seconds(20)) / 1000);
    if (handoverSeconds < 1) {
      throw new ValidationError(`${field}.handoverTimeout`, props.handoverTimeout, 'must be at least 1s (Duration.seconds(20) is a good value)');
    }
    const gateSeconds = Math.ceil(durationMillis(`${field}.shutdownGateTimeout`, props.shutdownGateTimeout ?? Duration.minutes(2)) / 1000);
    const redisPods = props.redisPodDnsNames ?? Array.from({ length: replicas }, (_, i) => `${name}-${i}.${name}`);
    redisPods.forEach((n, i) => requireDnsSubdomain(`${field}.redisPodDnsNames[${i}]`, n));
    if (!redisPods.includes(`${name}-0.${name}`)) {
      throw new ValidationError(`${field}.redisPodDnsNames`, redisPods, `must list this StatefulSet's pods too (${name}-0.${name}, ...)`);
    }

    const sentinelCount = requireIntegerInRange(`${field}.sentinelCount`, props.sentinelCount ?? 3, 1, 15);
    const sentinelQuorum = requireIntegerInRange(`${field}.sentinelQuorum`, props.sentinelQuorum ?? 2, 1, 15);
    const selector = selectorLabels(component);
    const metadata = (objectName: string): ApiObjectMetadata => ({ name: objectName, labels: { ...labels, ...selector } });

    this.service = new k8s.KubeService(this, 'Service', {
      metadata: metadata(name),
      spec: {
        clusterIp: 'None',
        // Replicas must find a master by its DNS name before it is ready, and the start
        // script must reach pods that are not ready yet: publish every pod's record.
        publishNotReadyAddresses: true,
        selector,
        ports: [{ name: 'redis', port: REDIS_PORT, targetPort: k8s.IntOrString.fromString('redis') }],
      },
    });

    const contract: RedisPodContract = {
      governingService: name,
      bootstrapMaster: `${REDIS_MASTER_NAME}-0.${REDIS_MASTER_NAME}`,
      redisPods,
      sentinelService: SENTINEL_HEADLESS_NAME,
      masterName: this.masterName,
      clusterDomain: this.clusterDomain,
      redisPort: REDIS_PORT,
      sentinelPort: SENTINEL_PORT,
      sentinelCount,
      sentinelQuorum,
      failoverWaitSeconds,
      handoverTimeoutSeconds: handoverSeconds,
      shutdownGateTimeoutSeconds: gateSeconds,
    };
    const probeTiming = { periodSeconds: 5, timeoutSeconds: 4, failureThreshold: 3 };
    this.statefulSet = new k8s.KubeStatefulSet(this, 'StatefulSet', {
      metadata: metadata(name),
      spec: {
        serviceName: name,
        replicas,
        // Pod order carries no meaning here: who is master is decided at start.
        podManagementPolicy: 'Parallel',
        selector: { matchLabels: selector },
        updateStrategy: { type: 'RollingUpdate' },
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
        template: {
          metadata: { labels: { ...labels, ...selector, ...REDIS_POD_LABELS }, annotations: props.podAnnotations },
          spec: {
            securityContext: restrictedPodSecurity(),
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            affinity: preferSpreadOverNodes(REDIS_POD_LABELS),
            // preStop waits at its shutdown gate (up to shutdownGateTimeout), hands over (up
            // to handoverTimeout), then Redis needs time to exit cleanly.
            terminationGracePeriodSeconds: gateSeconds + handoverSeconds + 15,
            containers: [{
              name: 'redis',
              image: this.image,
              command: scriptCommand('redis-start.sh'),
              ports: [{ name: 'redis', containerPort: REDIS_PORT }],
              env: redisContainerEnv(contract),
              resources: resourceRequirements(this.resources),
              securityContext: restrictedContainerSecurity(),
              startupProbe: execProbe(scriptCommand('redis-probe.sh', 'liveness'),
                { periodSeconds: 2, timeoutSeconds: 4, failureThreshold: 150 }),
              livenessProbe: execProbe(scriptCommand('redis-probe.sh', 'liveness'),
                { periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 }),
              readinessProbe: execProbe(scriptCommand('redis-probe.sh', 'readiness'), probeTiming),
              lifecycle: { preStop: { exec: { command: scriptCommand('redis-prestop.sh') } } },
              volumeMounts: [
                { name: 'data', mountPath: MOUNTS.redisData },
                { name: 'config', mountPath: MOUNTS.redisConfig },
                { name: 'config-template', mountPath: MOUNTS.redisTemplate, readOnly: true },
                { name: 'scripts', mountPath: SCRIPTS_MOUNT, readOnly: true },
                { name: 'auth', mountPath: AUTH_MOUNT, readOnly: true },
                { name: 'tmp', mountPath: MOUNTS.tmp },
              ],
            }, {
              // The guard: records this pod's data for the start script, fences a master
              // cut off from the Sentinels and a replica, demotes a replaced master.
              name: 'guard',
              image: this.image,
              command: scriptCommand('redis-guard.sh'),
              env: guardContainerEnv(contract),
              resources: resourceRequirements(GUARD_RESOURCES),
              securityContext: restrictedContainerSecurity(),
              volumeMounts: [
                { name: 'data', mountPath: MOUNTS.redisData },
                { name: 'config-template', mountPath: MOUNTS.redisTemplate, readOnly: true },
                { name: 'scripts', mountPath: SCRIPTS_MOUNT, readOnly: true },
                { name: 'auth', mountPath: AUTH_MOUNT, readOnly: true },
              ],
            }],
            volumes: [
              { name: 'config', emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString('1Mi') } },
              { name: 'tmp', emptyDir: { sizeLimit: k8s.Quantity.fromString('16Mi') } },
              configMapVolume('config-template', REDIS_CONFIG_NAME, 0o444),
              configMapVolume('scripts', REDIS_SCRIPTS_NAME, 0o555),
              passwordVolume(this.authSecretName),
            ],
          },
        },
        volumeClaimTemplates: [{
          metadata: { name: 'data', labels: { ...labels, ...selector } },
          spec: {
            accessModes: ['ReadWriteOnce'],
            storageClassName: props.storageClassName,
            resources: { requests: { storage: k8s.Quantity.fromString(sizeToQuantity(this.storageSize)) } },
          },
        }],
      },
    });
  }

  /** Stable DNS names of this StatefulSet's pods, relative to the namespace. */
  public podDnsNames(): string[] {
    return Array.from({ length: this.replicas }, (_, i) => `${this.name}-${i}.${this.name}`);
  }
}
