import { Duration, Size } from 'cdk8s';
import { ContainerResources, Cpu, k8s } from 'cdk8s-plus-28';
import { MemoryFloor, ResolvedResources, resolveResources } from './container-resources';
import { WorkloadImages } from './policy-exemptions';
import {
  DEFAULT_AUTH_SECRET, DEFAULT_CLUSTER_DOMAIN, DEFAULT_EXPORTER_IMAGE, DEFAULT_PROXY_IMAGE, DEFAULT_INSTANCE_NAME, DEFAULT_MASTER_NAME, DEFAULT_REDIS_IMAGE,
  MAX_INSTANCE_NAME_LENGTH, objectNames, RedisHaObjectNames, REDIS_PORT, RESERVED_LABEL_KEYS, SENTINEL_PORT,
} from './names';
import {
  deriveMaxmemoryBytes, deriveReplicationSizing, largestFittingMaxmemoryBytes, MAXMEMORY_POLICIES, MaxmemoryPolicy,
  renderRedisConf, renderSentinelConf,
} from '../pod/config-files';
import {
  durationMillis, requireAnnotations, requireBoolean, requireConfToken, requireDnsLabel, requireDnsSubdomain,
  requireIntegerInRange, requireKnownKeys, requireLabels, requireOneOf, requirePinnedImage, imageHasDigest, requireStringList,
  sizeInBytes, sizeToQuantity, ValidationError,
} from './validation';

/** How strictly pods of one tier are spread over a topology (nodes or zones). */
export enum SpreadConstraint {
  /** Spread where the scheduler can; never leave a pod pending for it. */
  PREFERRED = 'preferred',
  /** Never put two pods of a tier on one node (anti-affinity) or let zones differ by more than one pod (zone spread); a pod that cannot be placed so stays pending. */
  REQUIRED = 'required',
}

/**
 * The cert-manager issuer of the Certificate the constructs emit for TLS
 * (`spec.issuerRef` of a `cert-manager.io/v1` Certificate).
 */
export interface TlsIssuerRef {
  /** Name of the Issuer or ClusterIssuer. */
  readonly name: string;
  /**
   * `Issuer` (in the instance's namespace) or `ClusterIssuer`.
   * @default 'Issuer'
   */
  readonly kind?: string;
  /**
   * API group of the issuer (another one for external issuers).
   * @default 'cert-manager.io'
   */
  readonly group?: string;
}

/**
 * TLS for clients, replication and Sentinel, with the plaintext ports off. The
 * certificate comes from a `kubernetes.io/tls` Secret with the keys `tls.crt`, `tls.key`
 * and `ca.crt`: one that exists (`secretName`), or one that cert-manager writes for the
 * Certificate the constructs emit (`issuer`). The certificate must name every Redis
 * pod, the Services and their fully qualified forms (the emitted Certificate does), and
 * allow both server and client use (Redis and Sentinel present it to each other).
 */
export interface RedisTlsProps {
  /**
   * The `kubernetes.io/tls` Secret with `tls.crt`, `tls.key` and `ca.crt`. With `issuer`,
   * the Secret cert-manager writes.
   * @default - `<name>-tls` with issuer; required without
   */
  readonly secretName?: string;
  /**
   * Emit a cert-manager Certificate `<name>-tls` signed by this issuer, whose Secret is
   * mounted. The issuer must put the CA into the Secret's `ca.crt` (a CA or Vault issuer
   * does; an ACME issuer does not).
   * @default - no Certificate: `secretName` must exist
   */
  readonly issuer?: TlsIssuerRef;
  /**
   * Namespace the instance runs in, for the Certificate's fully qualified DNS names
   * (`<pod>.<service>.<namespace>.svc.<clusterDomain>`).
   * @default - the chart's namespace; with issuer, one of the two is required
   */
  readonly namespace?: string;
}

/** TLS as resolved: the Secret mounted and, when the constructs emit it, the Certificate. */
export interface ResolvedTls {
  /** The `kubernetes.io/tls` Secret mounted at /etc/redis-tls. */
  readonly secretName: string;
  /** The issuer of the emitted Certificate; undefined: the Secret exists. */
  readonly issuer?: TlsIssuerRef;
  /** Namespace for the Certificate's fully qualified names; undefined: the chart's. */
  readonly namespace?: string;
}

/**
 * Everything that describes one Redis Sentinel system (one instance). `RedisSentinelHA`
 * takes these props; so do `RedisMaster`, `RedisReplicaSet`, `SentinelQuorum` and
 * `RedisHaConfiguration` when used on their own, because each part must know the whole
 * system (the master's pods list the replicas, the Sentinels the Redis pods, ...).
 */
export interface RedisHaProps {
  /**
   * Name of the instance: the prefix of every object name (`<name>-master`,
   * `<name>-slave`, `<name>-sentinel`, ...) and the `app.kubernetes.io/instance` label
   * that every selector includes, so that several instances share a namespace.
   * A DNS label starting with a letter, at most 45 characters.
   * @default 'redis' (the architecture's names: redis-master, redis-slave, redis-sentinel)
   */
  readonly name?: string;
  /**
   * Image of Redis and Sentinel, pinned to a version tag or digest; Redis 7.0 or newer.
   * Given with a digest (`redis:7.2.7-bookworm@sha256:<64 hex digits>`) it pins the
   * image's content, and the workloads no longer carry checkov's CKV_K8S_43 exemption.
   * @default 'redis:7.2.7-bookworm'
   */
  readonly image?: string;
  /**
   * Number of replica pods (`<name>-slave`).
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
   * CPU and memory of each Redis container. The memory limit must be at least 64Mi.
   * @default - 250m CPU request, no CPU limit; memory 256Mi request, 2Gi limit
   */
  readonly redisResources?: ContainerResources;
  /**
   * CPU and memory of each Sentinel container. The memory limit must be at least 32Mi.
   * @default - 50m CPU request, no CPU limit; memory 64Mi request, 128Mi limit
   */
  readonly sentinelResources?: ContainerResources;
  /**
   * Size of each Redis pod's /data volume. A StatefulSet cannot change it later: see
   * the README on resizing storage.
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
   * Redis `maxmemory`, at least 8Mi. The rest of the memory limit must hold the
   * replication backlog (maxmemory/16), the replica output buffer (maxmemory/8) and fork
   * copy-on-write (maxmemory/8), so it can be at most about 76% of the limit.
   * @default - 75% of the Redis memory limit, rounded down to whole MiB
   */
  readonly maxmemory?: Size;
  /**
   * What Redis does at `maxmemory`.
   * @default MaxmemoryPolicy.NOEVICTION (refuse writes rather than silently drop keys)
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
   * How long the preStop hook of a master waits for the handover to a replica.
   * @default Duration.seconds(20)
   */
  readonly handoverTimeout?: Duration;
  /**
   * How often the janitor beside each Sentinel checks for phantom Sentinels (plus up to
   * the same again as jitter).
   * @default Duration.seconds(5)
   */
  readonly janitorInterval?: Duration;
  /**
   * Secret (created outside this project, never in Git) with one password per ACL user:
   * `app-password` (applications, on Redis and on the Sentinels), `replication-password`
   * (replicas to the master), `sentinel-password` (Sentinels to Redis and to each other)
   * and `operations-password` (the pod scripts). During a rotation it also holds
   * `<key>-previous`, the password being replaced. Plain tokens (no quote, backslash or
   * newline), e.g. `openssl rand -hex 32`. A pod whose Secret lacks a key does not start and
   * logs which key is missing.
   * @default 'redis-auth'
   */
  readonly authSecretName?: string;
  /**
   * DNS domain of the cluster.
   * @default 'cluster.local'
   */
  readonly clusterDomain?: string;
  /**
   * Extra labels on every object and pod (never in selectors). The `app.kubernetes.io/`
   * keys this library sets (name, instance, component, part-of, managed-by) are refused.
   * @default - none
   */
  readonly labels?: { [key: string]: string };
  /**
   * Node labels every Redis and Sentinel pod requires (`nodeSelector`).
   * @default - none: any node
   */
  readonly nodeSelector?: { [key: string]: string };
  /**
   * Taints that Redis and Sentinel pods tolerate.
   * @default - none
   */
  readonly tolerations?: k8s.Toleration[];
  /**
   * Spreading of each tier's pods (Redis, Sentinel) over zones
   * (`topology.kubernetes.io/zone`, at most one pod difference): PREFERRED is
   * `whenUnsatisfiable: ScheduleAnyway`, REQUIRED is `DoNotSchedule` (pods stay pending
   * on nodes without a zone label).
   * @default SpreadConstraint.PREFERRED
   */
  readonly zoneSpread?: SpreadConstraint;
  /**
   * Anti-affinity of the Redis pods (master and replicas) per node: REQUIRED never puts
   * two on one node, so it needs at least replicas + 1 schedulable nodes.
   * @default SpreadConstraint.PREFERRED
   */
  readonly redisAntiAffinity?: SpreadConstraint;
  /**
   * Anti-affinity of the Sentinel pods per node. REQUIRED needs sentinels + 1 nodes for
   * a rollout, because a rollout starts a new Sentinel before it stops an old one.
   * @default SpreadConstraint.PREFERRED
   */
  readonly sentinelAntiAffinity?: SpreadConstraint;
  /**
   * PriorityClass of the Redis and Sentinel pods.
   * @default - none: the cluster's default priority
   */
  readonly priorityClassName?: string;
  /**
   * An existing ServiceAccount the pods run as. The pods never mount its token.
   * @default - a ServiceAccount `<name>` is created, with automountServiceAccountToken false
   */
  readonly serviceAccountName?: string;
  /**
   * Secrets for pulling the image from a private registry.
   * @default - none
   */
  readonly imagePullSecrets?: string[];
  /**
   * Extra annotations on the Redis and Sentinel pods.
   * @default - none
   */
  readonly podAnnotations?: { [key: string]: string };
  /**
   * Extra annotations on every Service.
   * @default - none
   */
  readonly serviceAnnotations?: { [key: string]: string };
  /**
   * NetworkPolicies `<name>` (Redis pods) and `<name>-sentinel` (Sentinel pods): Redis
   * port 6379 and Sentinel port 26379 accept connections only from the instance's own
   * Redis and Sentinel pods and from pods carrying `clientLabels`; the pods may connect
   * only to each other and to the cluster DNS (UDP and TCP 53 to pods labelled
   * `k8s-app: kube-dns` in any namespace). They take effect only where the cluster's
   * network plugin enforces NetworkPolicies.
   * @default true
   */
  readonly networkPolicies?: boolean;
  /**
   * Labels an application pod must carry to reach Redis (6379) and Sentinel (26379) when
   * networkPolicies is on. Not empty, and none of the `app.kubernetes.io/` keys this
   * library selects its own pods by.
   * @default - { '<name>-client': 'true' }, e.g. `redis-client: "true"` for the default instance
   */
  readonly clientLabels?: { [key: string]: string };
  /**
   * Also admit pods carrying `clientLabels` in other namespaces: the labels those
   * namespaces carry (e.g. `{ 'kubernetes.io/metadata.name': 'shop' }`); an empty object
   * means every namespace.
   * @default - only client pods in the instance's own namespace
   */
  readonly clientNamespaceLabels?: { [key: string]: string };
  /**
   * TLS only: Redis and Sentinel accept TLS on 6379 and 26379 and no plaintext, and
   * replication and Sentinel's own connections use TLS. See RedisTlsProps.
   * @default - no TLS
   */
  readonly tls?: RedisTlsProps;
  /**
   * A redis_exporter sidecar (container `metrics`, port 9121 named `metrics`, path
   * /metrics) on every Redis and Sentinel pod, logged in as the read-only ACL user
   * `metrics` (Secret key `metrics-password`). With networkPolicies on, the port accepts
   * connections only from namespaces carrying `monitoringNamespaceLabels`.
   * @default false (the production profile of main.ts turns it on)
   */
  readonly metrics?: boolean;
  /**
   * The exporter's image, pinned to a version tag or digest.
   * @default 'oliver006/redis_exporter:v1.45.0' (the version the tests run)
   */
  readonly metricsImage?: string;
  /**
   * Labels of the namespaces whose pods may scrape the metrics port (Prometheus' namespace),
   * when metrics and networkPolicies are on. Not empty (that would admit every namespace).
   * @default { 'kubernetes.io/metadata.name': 'monitoring' }
   */
  readonly monitoringNamespaceLabels?: { [key: string]: string };
  /**
   * With metrics on: a Prometheus Operator PodMonitor `<name>` (every exporter, port
   * `metrics`, every 15s) and PrometheusRule `<name>` (the alerts of the README's
   * "Monitoring"). Needs the monitoring.coreos.com CRDs in the cluster: turn it off where
   * they are not installed (the sidecars still serve /metrics for any other scraper).
   * @default - the value of metrics
   */
  readonly prometheusOperator?: boolean;
  /**
   * Labels on the PodMonitor, for the Prometheus resource's `podMonitorSelector`.
   * @default { release: 'prometheus' } (kube-prometheus-stack installed as release `prometheus`)
   */
  readonly monitorLabels?: { [key: string]: string };
  /**
   * Labels on the PrometheusRule, for the Prometheus resource's `ruleSelector`.
   * @default { release: 'prometheus' } (kube-prometheus-stack installed as release `prometheus`)
   */
  readonly ruleLabels?: { [key: string]: string };
  /**
   * With metrics on: a ConfigMap `<name>-grafana-dashboard` holding a Grafana dashboard
   * (master over time, failovers, replication lag, memory, commands and rejected writes,
   * Sentinel agreement), labelled for Grafana's dashboard sidecar.
   * @default - the value of metrics
   */
  readonly grafanaDashboard?: boolean;
  /**
   * Labels on the dashboard ConfigMap, what Grafana's dashboard sidecar looks for.
   * @default { grafana_dashboard: '1' } (the sidecar's default label, kube-prometheus-stack and the Grafana chart)
   */
  readonly dashboardLabels?: { [key: string]: string };
  /**
   * The proxy tier, for clients that do not speak Sentinel: HAProxy pods behind the
   * Services `<name>-write` (always the master the Sentinels name, which itself says ROLE
   * master; writes and reads) and `<name>-read` (the in-sync replicas), both on port 6379.
   * Its decider logs in as the ACL user `proxy` (Secret key `proxy-password`).
   * @default true
   */
  readonly proxy?: boolean;
  /**
   * Number of proxy pods; at least 2, so one can go (a drain, a rollout) while the other serves.
   * @default 2
   */
  readonly proxyReplicas?: number;
  /**
   * HAProxy's image, pinned to a version tag or digest; 2.6 or newer, built with Lua and
   * the Prometheus exporter (the official images are).
   * @default 'haproxy:2.6.12' (the version the tests run)
   */
  readonly proxyImage?: string;
}

/** Every key of RedisHaProps, for refusing unknown (misspelled) keys at run time. */
const PROP_KEYS: { [K in keyof Required<RedisHaProps>]: true } = {
  name: true, image: true, replicas: true, sentinels: true, quorum: true, masterName: true, downAfter: true,
  failoverTimeout: true, parallelSyncs: true, redisResources: true, sentinelResources: true, storageSize: true,
  storageClassName: true, appendOnly: true, maxmemory: true, maxmemoryPolicy: true, minReplicasToWrite: true,
  minReplicasMaxLag: true, shutdownGateTimeout: true, handoverTimeout: true, janitorInterval: true,
  authSecretName: true, clusterDomain: true, labels: true, nodeSelector: true, tolerations: true, zoneSpread: true,
  redisAntiAffinity: true, sentinelAntiAffinity: true, priorityClassName: true, serviceAccountName: true,
  imagePullSecrets: true, podAnnotations: true, serviceAnnotations: true, networkPolicies: true, clientLabels: true,
  clientNamespaceLabels: true, tls: true, metrics: true, metricsImage: true, monitoringNamespaceLabels: true,
  prometheusOperator: true, monitorLabels: true, ruleLabels: true, grafanaDashboard: true, dashboardLabels: true,
  proxy: true, proxyReplicas: true, proxyImage: true,
};
export const REDIS_HA_PROP_KEYS: readonly string[] = Object.keys(PROP_KEYS);

/** Smallest Redis memory limit accepted: room for Redis itself, its data, forks and buffers. */
export const MIN_REDIS_MEMORY_LIMIT_MIB = 64;
/**
 * Smallest Sentinel memory limit accepted. Sentinel itself needs a few MiB, but the
 * container also runs sentinel-start.sh and, every few seconds, the probes (a shell and
 * redis-cli each, charged to the container); below 32Mi a probe or a restart can be
 * OOM-killed, which restarts the Sentinel and costs the quorum a member.
 */
export const MIN_SENTINEL_MEMORY_LIMIT_MIB = 32;
/**
 * Smallest `maxmemory` accepted. An empty Redis 7 already uses about 1MiB (its own
 * structures, client buffers, the AOF buffer), so below 8MiB a master with `noeviction`
 * refuses writes almost at once.
 */
export const MIN_MAXMEMORY_MIB = 8;

/** Annotation on the pod templates whose change rolls the pods when their configuration changes. */
export const CONFIG_HASH_ANNOTATION = 'redis-sentinel-ha/config-hash';

const DEFAULT_REDIS_RESOURCES = {
  cpuRequest: Cpu.millis(250),
  memoryRequest: Size.mebibytes(256),
  memoryLimit: Size.gibibytes(2),
};

const DEFAULT_SENTINEL_RESOURCES = {
  cpuRequest: Cpu.millis(50),
  memoryRequest: Size.mebibytes(64),
  memoryLimit: Size.mebibytes(128),
};

const REDIS_MEMORY_FLOOR: MemoryFloor = {
  bytes: MIN_REDIS_MEMORY_LIMIT_MIB * 1024 * 1024,
  reason: 'Redis needs room for data, forks and buffers; far below that the derived maxmemory reaches 0, which Redis reads as "no limit"',
};
const SENTINEL_MEMORY_FLOOR: MemoryFloor = {
  bytes: MIN_SENTINEL_MEMORY_LIMIT_MIB * 1024 * 1024,
  reason: 'Sentinel, its start script and the probes\' shell and redis-cli all run inside this limit',
};

const TOLERATION_KEYS = ['key', 'operator', 'value', 'effect', 'tolerationSeconds'];

/**
 * The props of one instance, validated and resolved once: every default applied, every
 * derived value computed, redis.conf and sentinel.conf rendered. The constructs read it
 * and validate nothing again. Make one with `RedisHaSettings.resolve(props)`.
 */
export class RedisHaSettings {
  /**
   * Validate the props and resolve them. Throws a ValidationError naming the field, the
   * value received and the fix for the first wrong prop.
   */
  public static resolve(props: RedisHaProps = {}): RedisHaSettings {
    return new RedisHaSettings(props);
  }

  /** Instance name: object-name prefix and `app.kubernetes.io/instance` label. */
  public readonly name: string;
  /** Names of every object of the instance. */
  public readonly names: RedisHaObjectNames;
  public readonly image: string;
  /** Whether `image` carries a `@sha256:` digest (pinned content, not only a tag). */
  public readonly imageHasDigest: boolean;
  public readonly replicas: number;
  public readonly sentinels: number;
  public readonly quorum: number;
  /** Name under which the Sentinels monitor the master. */
  public readonly masterName: string;
  public readonly downAfterMillis: number;
  public readonly failoverTimeoutMillis: number;
  public readonly parallelSyncs: number;
  public readonly redisResources: ResolvedResources;
  public readonly sentinelResources: ResolvedResources;
  /** Size of each /data volume as a Kubernetes quantity. */
  public readonly storageSize: string;
  public readonly storageClassName?: string;
  public readonly appendOnly: boolean;
  public readonly maxmemoryPolicy: MaxmemoryPolicy;
  public readonly maxmemoryBytes: number;
  /** `repl-backlog-size`: maxmemory/16, at least 1MiB. */
  public readonly replBacklogBytes: number;
  /** Hard limit of `client-output-buffer-limit replica`: twice the backlog, maxmemory/8. */
  public readonly replicaOutputBufferLimitBytes: number;
  /** Copy-on-write room for a fork that the headroom above maxmemory must leave at least: maxmemory/8. */
  public readonly copyOnWriteAllowanceBytes: number;
  /** Redis memory limit minus maxmemory: what holds the backlog, replica buffers and fork copy-on-write. */
  public readonly memoryHeadroomBytes: number;
  public readonly minReplicasToWrite: number;
  public readonly minReplicasMaxLagSeconds: number;
  /**
   * How long a restarting pod that the Sentinels still list as a down master waits for
   * their failover before it starts as master anyway: 2 x downAfter + failoverTimeout.
   */
  public readonly failoverWaitSeconds: number;
  public readonly shutdownGateSeconds: number;
  public readonly handoverSeconds: number;
  public readonly janitorSeconds: number;
  public readonly authSecretName: string;
  public readonly clusterDomain: string;
  /** The user's extra labels. */
  public readonly labels: { [key: string]: string };
  public readonly nodeSelector: { [key: string]: string };
  public readonly tolerations: k8s.Toleration[];
  public readonly zoneSpread: SpreadConstraint;
  public readonly redisAntiAffinity: SpreadConstraint;
  public readonly sentinelAntiAffinity: SpreadConstraint;
  public readonly priorityClassName?: string;
  /** ServiceAccount the pods run as. */
  public readonly serviceAccountName: string;
  /** Whether the instance creates its ServiceAccount (no serviceAccountName given). */
  public readonly createServiceAccount: boolean;
  public readonly imagePullSecrets: string[];
  /** The user's extra pod annotations. */
  public readonly podAnnotations: { [key: string]: string };
  public readonly serviceAnnotations: { [key: string]: string };
  /** Whether the instance has NetworkPolicies. */
  public readonly networkPolicies: boolean;
  /** Labels of the application pods admitted to Redis and Sentinel by the NetworkPolicies. */
  public readonly clientLabels: { [key: string]: string };
  /** Labels of the other namespaces whose client pods are admitted; undefined: only the instance's namespace. */
  public readonly clientNamespaceLabels?: { [key: string]: string };
  /** TLS (the Secret, and the Certificate's issuer if one is emitted); undefined: no TLS. */
  public readonly tls?: ResolvedTls;
  /** Whether every Redis and Sentinel pod has the redis_exporter sidecar. */
  public readonly metrics: boolean;
  /** The exporter's image. */
  public readonly metricsImage: string;
  /** The exemptions' view of the images: all pinned by digest (the exporter's too when on), sidecar present. */
  public get workloadImages(): WorkloadImages {
    return { allDigests: this.imageHasDigest && (!this.metrics || imageHasDigest(this.metricsImage)), metrics: this.metrics };
  }
  /** Labels of the namespaces admitted to the metrics port. */
  public readonly monitoringNamespaceLabels: { [key: string]: string };
  /** Whether the PodMonitor and PrometheusRule are emitted (metrics on, prometheusOperator not false). */
  public readonly prometheusOperator: boolean;
  /** Labels of the PodMonitor (the Prometheus resource's podMonitorSelector). */
  public readonly monitorLabels: { [key: string]: string };
  /** Labels of the PrometheusRule (the Prometheus resource's ruleSelector). */
  public readonly ruleLabels: { [key: string]: string };
  /** Whether the Grafana dashboard ConfigMap is emitted (metrics on, grafanaDashboard not false). */
  public readonly grafanaDashboard: boolean;
  /** Labels of the dashboard ConfigMap (Grafana's dashboard sidecar). */
  public readonly dashboardLabels: { [key: string]: string };
  /** Whether the instance has the proxy tier (`<name>-write`, `<name>-read`). */
  public readonly proxy: boolean;
  public readonly proxyReplicas: number;
  /** HAProxy's image. */
  public readonly proxyImage: string;
  /** Whether the proxy image carries a `@sha256:` digest. */
  public readonly proxyImageHasDigest: boolean;
  /** DNS names (`pod.service`, relative to the namespace) of every Redis pod, master first. */
  public readonly redisPodDnsNames: string[];
  /** Host in sentinel.conf's monitor line and the first master: `<name>-master-0.<name>-master`. */
  public readonly bootstrapMasterHost: string;
  /** The rendered redis.conf. */
  public readonly redisConf: string;
  /** The rendered sentinel.conf. */
  public readonly sentinelConf: string;

  private constructor(props: RedisHaProps) {
    if (typeof props === 'object' && props !== null && 'namespace' in props) {
      throw new ValidationError('namespace', (props as { namespace: unknown }).namespace,
        'is not a prop: the objects take their namespace from the chart, new Chart(app, id, { namespace })');
    }
    requireKnownKeys('', props, REDIS_HA_PROP_KEYS);
    this.name = props.name ?? DEFAULT_INSTANCE_NAME;
    requireDnsLabel('name', this.name, MAX_INSTANCE_NAME_LENGTH);
    // Service names must start with a letter (RFC 1035).
    if (!/^[a-z]/.test(this.name)) throw new ValidationError('name', this.name, 'must start with a letter (Service names cannot start with a digit)');
    this.names = objectNames(this.name);
    this.image = requirePinnedImage('image', props.image ?? DEFAULT_REDIS_IMAGE);
    this.imageHasDigest = imageHasDigest(this.image);
    this.masterName = requireConfToken('masterName', props.masterName ?? DEFAULT_MASTER_NAME);
    this.authSecretName = requireDnsSubdomain('authSecretName', props.authSecretName ?? DEFAULT_AUTH_SECRET);
    this.clusterDomain = requireDnsSubdomain('clusterDomain', props.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN);
    this.labels = { ...requireLabels('labels', props.labels ?? {}, RESERVED_LABEL_KEYS) };
    this.replicas = requireIntegerInRange('replicas', props.replicas ?? 2, 1, 100,
      'must be an integer from 1 to 100 (with no replica there is nothing to fail over to)');
    this.sentinels = requireIntegerInRange('sentinels', props.sentinels ?? 3, 3, 15,
      'must be an integer from 3 to 15 (fewer than 3 Sentinels cannot keep a majority when one fails)');
    this.quorum = requireIntegerInRange('quorum', props.quorum ?? Math.floor(this.sentinels / 2) + 1, 1, this.sentinels,
      `must be an integer from 1 to the number of sentinels (${this.sentinels})`);

    this.downAfterMillis = durationMillis('downAfter', props.downAfter ?? Duration.seconds(5));
    if (this.downAfterMillis < 1000) {
      throw new ValidationError('downAfter', Duration.millis(this.downAfterMillis), 'must be at least 1s (Sentinel would fail over on ordinary network jitter)');
    }
    this.failoverTimeoutMillis = durationMillis('failoverTimeout', props.failoverTimeout ?? Duration.seconds(10));
    if (this.failoverTimeoutMillis <= this.downAfterMillis) {
      throw new ValidationError('failoverTimeout', Duration.millis(this.failoverTimeoutMillis),
        `must be longer than downAfter (${this.downAfterMillis}ms)`);
    }
    this.parallelSyncs = requireIntegerInRange('parallelSyncs', props.parallelSyncs ?? 1, 1, this.replicas,
      `must be an integer from 1 to the number of replicas (${this.replicas})`);
    this.minReplicasToWrite = requireIntegerInRange('minReplicasToWrite', props.minReplicasToWrite ?? 1, 0, this.replicas,
      `must be an integer from 0 to the number of replicas (${this.replicas}); 0 disables the check`);
    // Redis takes whole seconds here, so the default rounds downAfter (1500ms -> 2s) up.
    const defaultMaxLag = Duration.seconds(Math.max(1, Math.ceil(this.downAfterMillis / 1000)));
    const maxLagMillis = durationMillis('minReplicasMaxLag', props.minReplicasMaxLag ?? defaultMaxLag);
    if (maxLagMillis < 1000 || maxLagMillis % 1000 !== 0) {
      throw new ValidationError('minReplicasMaxLag', Duration.millis(maxLagMillis), 'must be a whole number of seconds, at least 1s');
    }
    this.minReplicasMaxLagSeconds = maxLagMillis / 1000;
    this.failoverWaitSeconds = Math.ceil((this.downAfterMillis * 2 + this.failoverTimeoutMillis) / 1000);
    this.shutdownGateSeconds = Math.ceil(durationMillis('shutdownGateTimeout', props.shutdownGateTimeout ?? Duration.minutes(2)) / 1000);
    this.handoverSeconds = Math.ceil(durationMillis('handoverTimeout', props.handoverTimeout ?? Duration.seconds(20)) / 1000);
    if (this.handoverSeconds < 1) {
      throw new ValidationError('handoverTimeout', props.handoverTimeout, 'must be at least 1s (Duration.seconds(20) is a good value)');
    }
    this.janitorSeconds = Math.ceil(durationMillis('janitorInterval', props.janitorInterval ?? Duration.seconds(5)) / 1000);
    if (this.janitorSeconds < 1) throw new ValidationError('janitorInterval', props.janitorInterval, 'must be at least 1s');

    this.maxmemoryPolicy = requireOneOf('maxmemoryPolicy', props.maxmemoryPolicy ?? MaxmemoryPolicy.NOEVICTION, MAXMEMORY_POLICIES);
    this.appendOnly = requireBoolean('appendOnly', props.appendOnly ?? true);

    this.redisResources = resolveResources('redisResources', props.redisResources, DEFAULT_REDIS_RESOURCES, REDIS_MEMORY_FLOOR);
    this.sentinelResources = resolveResources('sentinelResources', props.sentinelResources, DEFAULT_SENTINEL_RESOURCES, SENTINEL_MEMORY_FLOOR);
    const storageSize = props.storageSize ?? Size.gibibytes(8);
    sizeInBytes('storageSize', storageSize);
    this.storageSize = sizeToQuantity(storageSize);
    this.storageClassName = props.storageClassName === undefined ? undefined : requireDnsSubdomain('storageClassName', props.storageClassName);

    const limitBytes = this.redisResources.memoryLimitBytes;
    if (props.maxmemory !== undefined) {
      const bytes = sizeInBytes('maxmemory', props.maxmemory);
      if (bytes < MIN_MAXMEMORY_MIB * 1024 * 1024) {
        throw new ValidationError('maxmemory', props.maxmemory,
          `must be at least ${MIN_MAXMEMORY_MIB}Mi (an empty Redis already uses about 1Mi, so below that it refuses writes almost at once); raise it, or omit it to use 75% of the memory limit`);
      }
      if (bytes >= limitBytes) {
        throw new ValidationError('maxmemory', props.maxmemory,
          `must be below the Redis memory limit (${this.redisResources.memoryLimit}) to leave headroom for forks and buffers; omit it to use 75% of the limit`);
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
        `must leave at least ${q(replication.requiredHeadroomBytes)} of the Redis memory limit (${this.redisResources.memoryLimit}) free for `
        + `the replication backlog (${q(replication.replBacklogBytes)}), the replica output buffer (${q(replication.replicaOutputBufferLimitBytes)}) `
        + `and fork copy-on-write (${q(replication.copyOnWriteAllowanceBytes)}), all derived from maxmemory; `
        + `lower maxmemory to at most ${q(largestFittingMaxmemoryBytes(limitBytes))}, raise the limit, or omit maxmemory to use 75% of the limit`);
    }

    this.nodeSelector = { ...requireLabels('nodeSelector', props.nodeSelector ?? {}) };
    this.tolerations = requireTolerations(props.tolerations ?? []);
    this.zoneSpread = requireOneOf('zoneSpread', props.zoneSpread ?? SpreadConstraint.PREFERRED, Object.values(SpreadConstraint));
    this.redisAntiAffinity = requireOneOf('redisAntiAffinity', props.redisAntiAffinity ?? SpreadConstraint.PREFERRED, Object.values(SpreadConstraint));
    this.sentinelAntiAffinity = requireOneOf('sentinelAntiAffinity', props.sentinelAntiAffinity ?? SpreadConstraint.PREFERRED, Object.values(SpreadConstraint));
    this.priorityClassName = props.priorityClassName === undefined ? undefined : requireDnsSubdomain('priorityClassName', props.priorityClassName);
    this.createServiceAccount = props.serviceAccountName === undefined;
    this.serviceAccountName = props.serviceAccountName === undefined ? this.names.serviceAccount : requireDnsSubdomain('serviceAccountName', props.serviceAccountName);
    this.imagePullSecrets = [...requireStringList('imagePullSecrets', props.imagePullSecrets ?? [], requireDnsSubdomain)];
    this.podAnnotations = { ...requireAnnotations('podAnnotations', props.podAnnotations ?? {}, [CONFIG_HASH_ANNOTATION]) };
    this.serviceAnnotations = { ...requireAnnotations('serviceAnnotations', props.serviceAnnotations ?? {}) };
    this.networkPolicies = requireBoolean('networkPolicies', props.networkPolicies ?? true);
    this.clientLabels = { ...requireClientLabels(props.clientLabels ?? { [`${this.name}-client`]: 'true' }) };
    this.clientNamespaceLabels = props.clientNamespaceLabels === undefined ? undefined
      : { ...requireLabels('clientNamespaceLabels', props.clientNamespaceLabels) };

    this.bootstrapMasterHost = `${this.names.master}-0.${this.names.master}`;
    this.redisPodDnsNames = [
      this.bootstrapMasterHost,
      ...Array.from({ length: this.replicas }, (_, i) => `${this.names.replica}-${i}.${this.names.replica}`),
    ];
    this.tls = requireTls(props.tls, this.names.tlsSecret);
    this.metrics = requireBoolean('metrics', props.metrics ?? false);
    this.metricsImage = requirePinnedImage('metricsImage', props.metricsImage ?? DEFAULT_EXPORTER_IMAGE, DEFAULT_EXPORTER_IMAGE, false);
    const monitoring = props.monitoringNamespaceLabels ?? { 'kubernetes.io/metadata.name': 'monitoring' };
    if (typeof monitoring === 'object' && monitoring !== null && Object.keys(monitoring).length === 0) {
      throw new ValidationError('monitoringNamespaceLabels', monitoring,
        'must name at least one label (an empty selector admits every namespace); give e.g. { "kubernetes.io/metadata.name": "monitoring" }');
    }
    this.monitoringNamespaceLabels = { ...requireLabels('monitoringNamespaceLabels', monitoring) };
    this.prometheusOperator = requireMetricsPart('prometheusOperator', props.prometheusOperator, this.metrics);
    this.grafanaDashboard = requireMetricsPart('grafanaDashboard', props.grafanaDashboard, this.metrics);
    this.monitorLabels = { ...requireLabels('monitorLabels', props.monitorLabels ?? { release: 'prometheus' }, RESERVED_LABEL_KEYS) };
    this.ruleLabels = { ...requireLabels('ruleLabels', props.ruleLabels ?? { release: 'prometheus' }, RESERVED_LABEL_KEYS) };
    this.dashboardLabels = { ...requireLabels('dashboardLabels', props.dashboardLabels ?? { grafana_dashboard: '1' }, RESERVED_LABEL_KEYS) };
    this.proxy = requireBoolean('proxy', props.proxy ?? true);
    this.proxyReplicas = requireIntegerInRange('proxyReplicas', props.proxyReplicas ?? 2, 2, 20,
      'must be an integer from 2 to 20 (with one proxy pod, a drain or rollout cuts every client off)');
    this.proxyImage = requirePinnedImage('proxyImage', props.proxyImage ?? DEFAULT_PROXY_IMAGE, DEFAULT_PROXY_IMAGE, false);
    this.proxyImageHasDigest = imageHasDigest(this.proxyImage);
    this.redisConf = renderRedisConf({
      port: REDIS_PORT,
      tls: this.tls !== undefined,
      maxmemoryBytes: this.maxmemoryBytes,
      replBacklogBytes: this.replBacklogBytes,
      replicaOutputBufferLimitBytes: this.replicaOutputBufferLimitBytes,
      maxmemoryPolicy: this.maxmemoryPolicy,
      appendOnly: this.appendOnly,
      minReplicasToWrite: this.minReplicasToWrite,
      minReplicasMaxLagSeconds: this.minReplicasMaxLagSeconds,
    });
    this.sentinelConf = renderSentinelConf({
      port: SENTINEL_PORT,
      tls: this.tls !== undefined,
      masterName: this.masterName,
      bootstrapMasterHost: this.bootstrapMasterHost,
      redisPort: REDIS_PORT,
      quorum: this.quorum,
      downAfterMillis: this.downAfterMillis,
      failoverTimeoutMillis: this.failoverTimeoutMillis,
      parallelSyncs: this.parallelSyncs,
    });
  }

  /**
   * Every DNS name a client may reach Redis or Sentinel by, which the TLS certificate
   * must carry: each Redis pod (`<pod>.<service>`) and each Service, each also with
   * `.<namespace>`, `.<namespace>.svc` and `.<namespace>.svc.<clusterDomain>` (the
   * Sentinels name the master by the last). Sentinel pods have no names of their own:
   * clients check a Sentinel's certificate against the Service name `<name>-sentinel`.
   */
  public tlsDnsNames(namespace: string): string[] {
    requireDnsLabel('namespace', namespace);
    const relative = [
      ...this.redisPodDnsNames,
      this.names.master, this.names.replica, this.names.sentinel, this.names.sentinelHeadless,
      ...(this.proxy ? [this.names.proxyWrite, this.names.proxyRead] : []),
    ];
    return relative.flatMap((n) => [n, `${n}.${namespace}`, `${n}.${namespace}.svc`, `${n}.${namespace}.svc.${this.clusterDomain}`]);
  }
}

/** A part that reads the exporters (prometheusOperator, grafanaDashboard): on with metrics unless turned off, refused without it. */
function requireMetricsPart(field: string, value: boolean | undefined, metrics: boolean): boolean {
  if (value === undefined) return metrics;
  requireBoolean(field, value);
  if (value && !metrics) {
    throw new ValidationError(field, value, 'needs metrics: true (it reads the redis_exporter sidecars); turn metrics on, or leave it out');
  }
  return value;
}

const TLS_KEYS = ['secretName', 'issuer', 'namespace'];
const TLS_ISSUER_KEYS = ['name', 'kind', 'group'];
export const TLS_ISSUER_KINDS = ['Issuer', 'ClusterIssuer'];

/** The tls prop: an existing Secret, or a Certificate from an issuer (writing `<name>-tls` unless secretName is given). */
function requireTls(tls: RedisTlsProps | undefined, defaultSecret: string): ResolvedTls | undefined {
  if (tls === undefined) return undefined;
  requireKnownKeys('tls', tls, TLS_KEYS);
  if (tls.secretName === undefined && tls.issuer === undefined) {
    throw new ValidationError('tls', tls,
      'must name the certificate: tls: { secretName: "redis-tls" } for an existing kubernetes.io/tls Secret (keys tls.crt, tls.key, ca.crt), '
      + 'or tls: { issuer: { name: "my-ca", kind: "ClusterIssuer" } } for a cert-manager Certificate');
  }
  const secretName = requireDnsSubdomain('tls.secretName', tls.secretName ?? defaultSecret);
  const namespace = tls.namespace === undefined ? undefined : requireDnsLabel('tls.namespace', tls.namespace);
  if (tls.issuer === undefined) {
    if (namespace !== undefined) {
      throw new ValidationError('tls.namespace', namespace,
        'is only used for the DNS names of the Certificate emitted with tls.issuer; without an issuer, leave it out (the Secret\'s certificate is made elsewhere)');
    }
    return { secretName };
  }
  requireKnownKeys('tls.issuer', tls.issuer, TLS_ISSUER_KEYS);
  const issuer: TlsIssuerRef = {
    name: requireDnsSubdomain('tls.issuer.name', tls.issuer.name),
    kind: requireOneOf('tls.issuer.kind', tls.issuer.kind ?? 'Issuer', TLS_ISSUER_KINDS),
    group: requireDnsSubdomain('tls.issuer.group', tls.issuer.group ?? 'cert-manager.io'),
  };
  return { secretName, issuer, ...(namespace !== undefined ? { namespace } : {}) };
}

/**
 * The labels that admit application pods. An empty set would select every pod of the
 * namespace, and a key the library selects its own pods by would make the client rule
 * overlap the Redis and Sentinel rules (a pod matching it could pass for a member of the
 * instance), so both are refused.
 */
function requireClientLabels(labels: { [key: string]: string }): { [key: string]: string } {
  if (typeof labels === 'object' && labels !== null && !Array.isArray(labels) && Object.keys(labels).length === 0) {
    throw new ValidationError('clientLabels', labels,
      'must name at least one label (an empty selector admits every pod of the namespace); give e.g. { "redis-client": "true" }, or set networkPolicies: false');
  }
  for (const key of Object.keys(labels ?? {})) {
    if (RESERVED_LABEL_KEYS.includes(key)) {
      throw new ValidationError('clientLabels key', key,
        `is one of the labels the instance's own Redis and Sentinel pods are selected by (${RESERVED_LABEL_KEYS.join(', ')}), so the client rule `
        + 'would collide with the pod selectors of the NetworkPolicies; use a key of your own, e.g. { "redis-client": "true" }');
    }
  }
  return requireLabels('clientLabels', labels);
}

function requireTolerations(tolerations: k8s.Toleration[]): k8s.Toleration[] {
  if (!Array.isArray(tolerations)) throw new ValidationError('tolerations', tolerations, 'must be a list of tolerations');
  return tolerations.map((t, i) => {
    const field = `tolerations[${i}]`;
    requireKnownKeys(field, t, TOLERATION_KEYS);
    const operator = requireOneOf(`${field}.operator`, t.operator ?? 'Equal', ['Equal', 'Exists']);
    if (t.effect !== undefined) requireOneOf(`${field}.effect`, t.effect, ['NoSchedule', 'PreferNoSchedule', 'NoExecute']);
    if (t.key !== undefined) requireLabels(`${field}.key`, { [t.key]: '' });
    if (t.key === undefined && operator !== 'Exists') {
      throw new ValidationError(`${field}.operator`, t.operator, 'must be "Exists" when no key is given (it then tolerates every taint)');
    }
    if (operator === 'Exists' && t.value !== undefined) {
      throw new ValidationError(`${field}.value`, t.value, 'must be empty with operator "Exists"');
    }
    if (t.tolerationSeconds !== undefined) {
      if (t.effect !== 'NoExecute') throw new ValidationError(`${field}.tolerationSeconds`, t.tolerationSeconds, 'is only allowed with effect "NoExecute"');
      requireIntegerInRange(`${field}.tolerationSeconds`, t.tolerationSeconds, 0, Number.MAX_SAFE_INTEGER);
    }
    return { ...t };
  });
}
