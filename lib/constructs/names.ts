/**
 * Names, labels and ports. Object names are part of the user's contract (clients and
 * runbooks refer to them), so they carry no hash suffix: each is the instance name plus a
 * fixed suffix, and the default instance name `redis` gives the names of docs/architecture.md.
 */
export const DEFAULT_INSTANCE_NAME = 'redis';

/**
 * Longest instance name: `<name>-sentinel-headless` must stay a 63-character DNS label,
 * and a StatefulSet name (`<name>-master`) at most 52 characters (its pods' revision label
 * appends a hash).
 */
export const MAX_INSTANCE_NAME_LENGTH = 63 - '-sentinel-headless'.length;

export const REDIS_PORT = 6379;
export const SENTINEL_PORT = 26379;
/** The redis_exporter sidecar's port, named `metrics` (metrics prop). */
export const METRICS_PORT = 9121;

/**
 * redis_exporter, pinned: the version of Debian's prometheus-redis-exporter (1.45.0) that
 * the simulator runs in its place and against which the `metrics` ACL user was derived
 * (lib/pod/acl.ts, METRICS_*_COMMANDS). The image is `scratch` plus the binary, entrypoint
 * `/redis_exporter`.
 */
export const DEFAULT_EXPORTER_IMAGE = 'oliver006/redis_exporter:v1.45.0';

/**
 * HAProxy of the proxy tier, pinned: the version of Debian's haproxy (2.6.12, built with
 * Lua 5.3 and the Prometheus exporter service) that the simulator runs in its place. The
 * official image has both too; its binary is /usr/local/sbin/haproxy.
 */
export const DEFAULT_PROXY_IMAGE = 'haproxy:2.6.12';
/** The proxy pods' ports: writes (to the master), reads (over the replicas), metrics (HAProxy's Prometheus exporter, /metrics, and /healthz). */
export const PROXY_WRITE_PORT = 6379;
export const PROXY_READ_PORT = 6380;
export const PROXY_METRICS_PORT = 8404;

export const DEFAULT_REDIS_IMAGE = 'redis:7.2.7-bookworm';
export const DEFAULT_MASTER_NAME = 'mymaster';
export const DEFAULT_AUTH_SECRET = 'redis-auth';
export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

/** Names of the Kubernetes objects of one instance. */
export interface RedisHaObjectNames {
  /** StatefulSet and headless Service of the initial master: `<name>-master`. */
  readonly master: string;
  /** StatefulSet and headless Service of the replicas: `<name>-slave` (the architecture's name). */
  readonly replica: string;
  /** Sentinel Deployment and client Service: `<name>-sentinel`. */
  readonly sentinel: string;
  /** Headless Service listing every Sentinel pod, what the scripts ask: `<name>-sentinel-headless`. */
  readonly sentinelHeadless: string;
  /** ConfigMap with redis.conf: `<name>-config`. */
  readonly redisConfig: string;
  /** ConfigMap with sentinel.conf: `<name>-sentinel-config`. */
  readonly sentinelConfig: string;
  /** ConfigMap with the pod scripts: `<name>-scripts`. */
  readonly scripts: string;
  /** PodDisruptionBudget of the Redis pods (master and replicas): `<name>`. */
  readonly redisBudget: string;
  /** PodDisruptionBudget of the Sentinel pods: `<name>-sentinel`. */
  readonly sentinelBudget: string;
  /** ServiceAccount created for the pods: `<name>`. */
  readonly serviceAccount: string;
  /** NetworkPolicy of the Redis pods (master and replicas): `<name>`. */
  readonly redisNetworkPolicy: string;
  /** NetworkPolicy of the Sentinel pods: `<name>-sentinel`. */
  readonly sentinelNetworkPolicy: string;
  /** cert-manager Certificate (tls.issuer), and the default name of its Secret: `<name>-tls`. */
  readonly tlsCertificate: string;
  /** Default TLS Secret of a Certificate: `<name>-tls`. */
  readonly tlsSecret: string;
  /** The proxy tier's Deployment, ConfigMap, PodDisruptionBudget and NetworkPolicy: `<name>-proxy`. */
  readonly proxy: string;
  /** Service of the proxy that always forwards to the current master (writes and reads): `<name>-write`. */
  readonly proxyWrite: string;
  /** Service of the proxy that spreads over the in-sync replicas (reads): `<name>-read`. */
  readonly proxyRead: string;
}

export function objectNames(name: string): RedisHaObjectNames {
  return {
    master: `${name}-master`,
    replica: `${name}-slave`,
    sentinel: `${name}-sentinel`,
    sentinelHeadless: `${name}-sentinel-headless`,
    redisConfig: `${name}-config`,
    sentinelConfig: `${name}-sentinel-config`,
    scripts: `${name}-scripts`,
    redisBudget: name,
    sentinelBudget: `${name}-sentinel`,
    serviceAccount: name,
    redisNetworkPolicy: name,
    sentinelNetworkPolicy: `${name}-sentinel`,
    tlsCertificate: `${name}-tls`,
    tlsSecret: `${name}-tls`,
    proxy: `${name}-proxy`,
    proxyWrite: `${name}-write`,
    proxyRead: `${name}-read`,
  };
}

const NAME_LABEL = 'app.kubernetes.io/name';
const INSTANCE_LABEL = 'app.kubernetes.io/instance';
const COMPONENT_LABEL = 'app.kubernetes.io/component';
const PART_OF_LABEL = 'app.kubernetes.io/part-of';
const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';

/** Label keys this library sets itself; user labels may not override them. */
export const RESERVED_LABEL_KEYS: readonly string[] = [NAME_LABEL, INSTANCE_LABEL, COMPONENT_LABEL, PART_OF_LABEL, MANAGED_BY_LABEL];

export type Component = 'master' | 'replica' | 'sentinel' | 'proxy';

/**
 * Labels that select one component's pods of one instance. Kept minimal and stable:
 * StatefulSet and Deployment selectors cannot change later.
 */
export function selectorLabels(instance: string, component: Component): { [key: string]: string } {
  return {
    [NAME_LABEL]: component === 'sentinel' ? 'redis-sentinel' : component === 'proxy' ? 'redis-proxy' : 'redis',
    [INSTANCE_LABEL]: instance,
    [COMPONENT_LABEL]: component,
  };
}

/** Labels that select every Redis pod (master and replicas) of one instance: disruption budget, spreading. */
export function redisTierSelector(instance: string): { [key: string]: string } {
  return { [NAME_LABEL]: 'redis', [INSTANCE_LABEL]: instance };
}

/** Labels on every object and pod of an instance: the user's extra labels and ours. */
export function commonLabels(instance: string, extra: { [key: string]: string } = {}): { [key: string]: string } {
  return { [PART_OF_LABEL]: 'redis-sentinel-ha', [MANAGED_BY_LABEL]: 'cdk8s', ...extra, [INSTANCE_LABEL]: instance };
}
