import { Duration, Size } from 'cdk8s';
import { ContainerResources, Cpu, k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import {
  commonLabels, DEFAULT_AUTH_SECRET, DEFAULT_CLUSTER_DOMAIN, DEFAULT_MASTER_NAME, DEFAULT_REDIS_IMAGE,
  REDIS_PORT, REDIS_SCRIPTS_NAME, SENTINEL_CONFIG_NAME, SENTINEL_HEADLESS_NAME, SENTINEL_NAME,
  SENTINEL_PORT, selectorLabels,
} from './names';
import {
  AUTH_MOUNT, configMapVolume, execProbe, passwordVolume, preferSpreadOverNodes, SCRIPTS_MOUNT,
  resourceRequirements, restrictedContainerSecurity, restrictedPodSecurity, scriptCommand,
} from './pod-spec';
import { ResolvedResources, resolveResources } from './container-resources';
import { janitorContainerEnv, MOUNTS, SentinelPodContract, sentinelContainerEnv } from '../pod/contract';
import {
  durationMillis, requireConfToken, requireDnsSubdomain, requireIntegerInRange, requireLabels,
  requirePinnedImage, ValidationError,
} from './validation';

export interface SentinelQuorumProps {
  /**
   * Number of Sentinel pods. At least 3, so that one can fail and a majority remains.
   * @default 3
   */
  readonly replicas?: number;
  /**
   * Sentinels that must agree the master is down before a failover starts.
   * @default - a majority: floor(replicas / 2) + 1
   */
  readonly quorum?: number;
  /**
   * Name under which the master is monitored.
   * @default 'mymaster'
   */
  readonly masterName?: string;
  /**
   * Container image, pinned to a version tag or digest.
   * @default 'redis:7.2.7-bookworm'
   */
  readonly image?: string;
  /**
   * CPU and memory of the sentinel container.
   * @default - 50m CPU request, no CPU limit; memory 64Mi request, 128Mi limit
   */
  readonly resources?: ContainerResources;
  /**
   * Secret whose key `password` is the Redis password (Sentinel authenticates to Redis).
   * @default 'redis-auth'
   */
  readonly authSecretName?: string;
  /**
   * DNS domain of the cluster.
   * @default 'cluster.local'
   */
  readonly clusterDomain?: string;
  /**
   * Short DNS names (`pod.service`) of every Redis pod, asked for their role when no
   * Sentinel knows the master any more.
   * @default - redis-master-0.redis-master, redis-slave-0.redis-slave, redis-slave-1.redis-slave
   */
  readonly redisPodDnsNames?: string[];
  /**
   * How often the janitor sidecar checks for phantom Sentinels (plus up to the same again as jitter).
   * @default Duration.seconds(5)
   */
  readonly janitorInterval?: Duration;
  /**
   * Extra labels on every object and pod (never in selectors).
   * @default - none
   */
  readonly labels?: Record<string, string>;
  /**
   * Annotations on the pod template (the composite puts a configuration hash here).
   * @default - none
   */
  readonly podAnnotations?: Record<string, string>;
}

/** Validated Sentinel count (default 3) and quorum (default a majority). */
export function resolveSentinelCounts(sentinels?: number, quorum?: number): { sentinels: number; quorum: number } {
  const count = requireIntegerInRange('sentinels', sentinels ?? 3, 3, 15,
    'must be an integer from 3 to 15 (fewer than 3 Sentinels cannot keep a majority when one fails)');
  return {
    sentinels: count,
    quorum: requireIntegerInRange('quorum', quorum ?? Math.floor(count / 2) + 1, 1, count,
      `must be an integer from 1 to the number of sentinels (${count})`),
  };
}

/**
 * Sentinel internal periods (milliseconds) the janitor applies with SENTINEL DEBUG
 * (lib/pod/contract.ts derives them).
 */
export { SENTINEL_TIMINGS } from '../pod/contract';

const DEFAULT_SENTINEL_RESOURCES = {
  cpuRequest: Cpu.millis(50),
  memoryRequest: Size.mebibytes(64),
  memoryLimit: Size.mebibytes(128),
};

/**
 * Deployment `redis-sentinel`, its Service `redis-sentinel` (port 26379, what clients
 * use) and a headless Service listing every Sentinel pod (what the scripts use to ask
 * all of them). Each pod runs Sentinel plus a small janitor that removes phantom peers
 * left behind by replaced pods and keeps Sentinel's INFO period at one second
 * (SENTINEL_TIMINGS).
 */
export class SentinelQuorum extends Construct {
  public readonly replicas: number;
  public readonly quorum: number;
  public readonly masterName: string;
  public readonly image: string;
  public readonly resources: ResolvedResources;
  public readonly service: k8s.KubeService;
  public readonly headlessService: k8s.KubeService;
  public readonly deployment: k8s.KubeDeployment;

  constructor(scope: Construct, id: string, props: SentinelQuorumProps = {}) {
    super(scope, id);
    ({ sentinels: this.replicas, quorum: this.quorum } = resolveSentinelCounts(props.replicas, props.quorum));
    this.masterName = requireConfToken('masterName', props.masterName ?? DEFAULT_MASTER_NAME);
    this.image = requirePinnedImage('sentinelImage', props.image ?? DEFAULT_REDIS_IMAGE);
    this.resources = resolveResources('sentinelResources', props.resources, DEFAULT_SENTINEL_RESOURCES);
    const authSecretName = requireDnsSubdomain('authSecretName', props.authSecretName ?? DEFAULT_AUTH_SECRET);
    const clusterDomain = requireDnsSubdomain('clusterDomain', props.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN);
    const redisPods = props.redisPodDnsNames ?? ['redis-master-0.redis-master', 'redis-slave-0.redis-slave', 'redis-slave-1.redis-slave'];
    redisPods.forEach((n, i) => requireDnsSubdomain(`redisPodDnsNames[${i}]`, n));
    const janitorSeconds = Math.ceil(durationMillis('janitorInterval', props.janitorInterval ?? Duration.seconds(5)) / 1000);
    if (janitorSeconds < 1) throw new ValidationError('janitorInterval', props.janitorInterval, 'must be at least 1s');
    const labels = commonLabels(requireLabels('labels', props.labels ?? {}));
    const selector = selectorLabels('sentinel');
    const metadata = (name: string) => ({ name, labels: { ...labels, ...selector } });
    const port = { name: 'sentinel', port: SENTINEL_PORT, targetPort: k8s.IntOrString.fromString('sentinel') };

    this.service = new k8s.KubeService(this, 'Service', {
      metadata: metadata(SENTINEL_NAME),
      spec: { selector, ports: [port] },
    });
    this.headlessService = new k8s.KubeService(this, 'HeadlessService', {
      metadata: metadata(SENTINEL_HEADLESS_NAME),
      spec: { clusterIp: 'None', publishNotReadyAddresses: true, selector, ports: [port] },
    });

    const contract: SentinelPodContract = {
      sentinelService: SENTINEL_HEADLESS_NAME,
      redisPods,
      masterName: this.masterName,
      clusterDomain,
      redisPort: REDIS_PORT,
      sentinelPort: SENTINEL_PORT,
      sentinelCount: this.replicas,
      janitorIntervalSeconds: janitorSeconds,
    };
    const scriptsMount = { name: 'scripts', mountPath: SCRIPTS_MOUNT, readOnly: true };
    const tmpMount = { name: 'tmp', mountPath: MOUNTS.tmp };

    this.deployment = new k8s.KubeDeployment(this, 'Deployment', {
      metadata: metadata(SENTINEL_NAME),
      spec: {
        replicas: this.replicas,
        selector: { matchLabels: selector },
        // Bring the new Sentinel up before an old one goes: the quorum never shrinks.
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: k8s.IntOrString.fromNumber(1), maxUnavailable: k8s.IntOrString.fromNumber(0) } },
        template: {
          metadata: { labels: { ...labels, ...selector }, annotations: props.podAnnotations },
          spec: {
            securityContext: restrictedPodSecurity(),
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            affinity: preferSpreadOverNodes(selector),
            terminationGracePeriodSeconds: 10,
            containers: [
              {
                name: 'sentinel',
                image: this.image,
                command: scriptCommand('sentinel-start.sh'),
                ports: [{ name: 'sentinel', containerPort: SENTINEL_PORT }],
                env: sentinelContainerEnv(contract),
                resources: resourceRequirements(this.resources),
                securityContext: restrictedContainerSecurity(),
                livenessProbe: execProbe(scriptCommand('sentinel-probe.sh', 'liveness'),
                  { periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3, initialDelaySeconds: 10 }),
                readinessProbe: execProbe(scriptCommand('sentinel-probe.sh', 'readiness'),
                  { periodSeconds: 3, timeoutSeconds: 2, failureThreshold: 2 }),
                volumeMounts: [
                  { name: 'data', mountPath: MOUNTS.sentinelData },
                  { name: 'config-template', mountPath: MOUNTS.sentinelTemplate, readOnly: true },
                  scriptsMount,
                  { name: 'auth', mountPath: AUTH_MOUNT, readOnly: true },
                  tmpMount,
                ],
              },
              {
                name: 'janitor',
                image: this.image,
                command: scriptCommand('sentinel-janitor.sh'),
                env: janitorContainerEnv(contract),
                resources: resourceRequirements({ cpuRequest: '10m', memoryRequest: '16Mi', memoryLimit: '32Mi' }),
                securityContext: restrictedContainerSecurity(),
                volumeMounts: [scriptsMount, tmpMount],
              },
            ],
            volumes: [
              { name: 'data', emptyDir: { sizeLimit: k8s.Quantity.fromString('16Mi') } },
              { name: 'tmp', emptyDir: { sizeLimit: k8s.Quantity.fromString('16Mi') } },
              configMapVolume('config-template', SENTINEL_CONFIG_NAME, 0o444),
              configMapVolume('scripts', REDIS_SCRIPTS_NAME, 0o555),
              passwordVolume(authSecretName),
            ],
          },
        },
      },
    });
  }
}
