/**
 * The contract between the constructs and the scripts in lib/pod/scripts/: every path,
 * file name, port, name and timing a script uses reaches it from here, as an environment
 * variable of the container that runs it (or inside a file rendered from these values).
 * No script types a value again; values that depend on each other are derived here.
 *
 * Which container runs which script: the redis container runs redis-start.sh (command),
 * redis-probe.sh (probes) and redis-prestop.sh (preStop); the guard beside it runs
 * redis-guard.sh; the sentinel container runs sentinel-start.sh and sentinel-probe.sh;
 * the janitor beside it runs sentinel-janitor.sh. test/unit/script-contract.test.ts
 * checks that each container gets every variable its scripts read, and nothing else.
 */
import type { k8s } from 'cdk8s-plus-28';
import { secretKeys } from './acl';

/** Where volumes are mounted. */
export const MOUNTS = {
  /** The Redis pod's persistent volume: Redis data plus the scripts' records. */
  redisData: '/data',
  /** Writable (memory) directory where redis-start.sh writes the final redis.conf. */
  redisConfig: '/etc/redis',
  /** The rendered redis.conf (ConfigMap), read-only. */
  redisTemplate: '/etc/redis-template',
  /** The Sentinel's writable emptyDir: Sentinel rewrites its config file there. */
  sentinelData: '/data',
  /** The rendered sentinel.conf (ConfigMap), read-only. */
  sentinelTemplate: '/etc/sentinel-template',
  /** The scripts (ConfigMap). */
  scripts: '/opt/redis-ha',
  /**
   * The auth Secret, whole (one file per key, `<user>-password` and during a rotation
   * `<user>-password-previous`; see acl.ts). Never with items or subPath: kubelet then
   * updates the files in place when the Secret changes.
   */
  auth: '/etc/redis-auth',
  /** The TLS certificate, key and CA (a `kubernetes.io/tls` Secret), when the tls prop is set. */
  tls: '/etc/redis-tls',
  tmp: '/tmp',
} as const;

/**
 * Keys of the TLS Secret and the file names they are mounted as (those of a
 * `kubernetes.io/tls` Secret, and of the Secret cert-manager writes for a Certificate).
 */
export const TLS_FILES = {
  /** The server certificate (Redis and Sentinel also present it as client certificate to each other). */
  cert: 'tls.crt',
  key: 'tls.key',
  /** The CA certificate that every peer's and client's certificate is checked against. */
  ca: 'ca.crt',
} as const;

/** File names inside those mounts. */
export const FILES = {
  redisConf: 'redis.conf',
  sentinelConf: 'sentinel.conf',
  /** Beside redis.conf and sentinel.conf in their ConfigMaps: `<user> <ACL rules>` per line (lib/pod/acl.ts). */
  aclUsers: 'acl-users',
  /** The guard's record of this pod's data (role, keys, replication ID, offset). */
  state: 'redis-ha-state',
  /** This pod's last known role: "master" or "replica <host>". */
  role: 'redis-ha-role',
  /** This pod's IP at its last start (a master whose IP changed is not followed by Sentinel). */
  ip: 'redis-ha-ip',
  /**
   * What a guard or janitor accepts and uses of each user's passwords during a rotation
   * (lib/pod/scripts/auth-sync.sh; the rotation tool, lib/ops/rotation.ts, waits on it).
   */
  authStatus: 'redis-ha-auth-status',
  /** Created by an operator to let an empty pod start as master (see the README). */
  allowEmptyMaster: 'redis-ha-allow-empty-master',
} as const;

export const AUTH_MOUNT = MOUNTS.auth;
export const TLS_MOUNT = MOUNTS.tls;

/** Paths of the TLS files in every container that mounts the TLS Secret. */
export const TLS_PATHS = {
  cert: `${MOUNTS.tls}/${TLS_FILES.cert}`,
  key: `${MOUNTS.tls}/${TLS_FILES.key}`,
  ca: `${MOUNTS.tls}/${TLS_FILES.ca}`,
} as const;
export const SCRIPTS_MOUNT = MOUNTS.scripts;

/** Where the guard and the janitor write their rotation status (in the tmp emptyDir). */
export const AUTH_STATUS_FILE = `${MOUNTS.tmp}/${FILES.authStatus}`;
/**
 * How often the guard and the janitor bring the ACL passwords and their client
 * credentials in step with the auth Secret (auth-sync.sh).
 */
export const AUTH_SYNC_SECONDS = 2;

/** Seconds any one redis-cli call may take before it is abandoned. */
export const CLI_TIMEOUT_SECONDS = 2;
/** How often a start script that waits (for a failover, for a master) decides again. */
export const START_RETRY_SECONDS = 1;

/**
 * How the guard checks a master: every 0.2s, each Sentinel and replica asked at once with
 * a 0.3s timeout; a failed check is repeated at once, and two failed checks in a row fence.
 * A partitioned master stops taking writes under a second after the split (worst case:
 * interval + two timeouts), well before down-after-milliseconds lets the other side promote
 * a replica, while one slow answer does not fence.
 */
export const GUARD_TIMINGS = { checkIntervalSeconds: 0.2, probeTimeoutSeconds: 0.3, failAfterChecks: 2 } as const;

/**
 * Sentinel's period of INFO to replicas while a failover runs: fixed at one second in
 * Sentinel (src/sentinel.c), whatever SENTINEL DEBUG info-period says. The janitor sets
 * the steady period (10s by default) to the same value, so the cadence does not restart
 * when a failover begins, and the preStop hook times its failover request from it.
 */
export const SENTINEL_INFO_PERIOD_MS = 1000;
/** Sentinel's timer tick comes every 50-100 ms (hz 10-19, drawn anew each tick). */
const SENTINEL_TICK_MAX_MS = 100;
/** Allowance for a request's own latency, and for the last step of the catch-up check. */
export const REQUEST_LATENCY_MS = 30;
/**
 * A failover request reaches Sentinel this long before its next INFO to the promoted
 * replica: two timer ticks (it sends SLAVEOF NO ONE at the third tick after the request,
 * and handles the master before it sends INFO to replicas) plus the request's latency.
 */
export const FAILOVER_LEAD_MS = 2 * SENTINEL_TICK_MAX_MS + REQUEST_LATENCY_MS;
/**
 * How long the preStop hook waits for a Sentinel to see the new replica-priority (at its
 * next INFO to that replica, one INFO period) before it hands over without timing.
 */
export const PRIORITY_SEEN_WAIT_MS = 2.5 * SENTINEL_INFO_PERIOD_MS;
/**
 * Sentinel's PING period (default 1000 ms). A master that stops answering is declared down
 * `down-after-milliseconds` after the first PING it leaves unanswered, and that PING goes
 * out up to one period after the fault, so the period adds 0 to 1 period to every crash
 * and partition failover: 400 ms takes ~0.3 s off the median (see the README's figures).
 *
 * It cannot go much lower. While the master is down, Sentinel only promotes a replica whose
 * last INFO reply is younger than 5 ping periods (src/sentinel.c, sentinelSelectSlave),
 * and it asks replicas for INFO once a second then (SENTINEL_INFO_PERIOD_MS, fixed). At
 * 100 ms that window is 500 ms, every replica is "too old", and each failover aborts with
 * -failover-abort-no-good-slave (tried: no failover within 60 s). 400 ms gives a 2 s window,
 * a full second of slack for a slow INFO reply on a busy node.
 *
 * ask-period stays at its default: at 100 ms all Sentinels reached ODOWN within the same
 * ~100 ms, each voted for itself, and the elections split again and again.
 */
export const SENTINEL_PING_PERIOD_MS = 400;
/** Slack the replica-freshness window (5 ping periods) must leave above one failover INFO period. */
export const REPLICA_FRESHNESS_SLACK_MS = 1000;
/** The Sentinel internal periods the janitor applies (SENTINEL DEBUG "param value ..."). */
export const SENTINEL_TIMINGS = `info-period ${SENTINEL_INFO_PERIOD_MS} ping-period ${SENTINEL_PING_PERIOD_MS}`;
/** How often the janitor checks that a Sentinel still has SENTINEL_TIMINGS (a restart loses them). */
export const SENTINEL_TIMINGS_CHECK_SECONDS = 1;
/** The janitor resets a Sentinel at most this often (it rediscovers its peers within seconds). */
export const JANITOR_RESET_HOLDOFF_SECONDS = 30;
/** How often a preStop hook waiting at the shutdown gate looks again. */
export const GATE_POLL_SECONDS = 0.25;
/**
 * A preStop hook that gives up after asking for a failover keeps writes paused this long:
 * past the end of the pod (a replica may already be master).
 */
export const PAUSE_UNTIL_SHUTDOWN_MS = 60_000;

/** What the Redis pods' containers need to know; the constructs resolve it. */
export interface RedisPodContract {
  /** Headless Service of this pod's StatefulSet (its pods' DNS names are `<pod>.<service>`). */
  readonly governingService: string;
  /** DNS name (`pod.service`) of the pod that is master on a first boot. */
  readonly bootstrapMaster: string;
  /** DNS names (`pod.service`) of every Redis pod of the system. */
  readonly redisPods: readonly string[];
  /** Headless Service listing every Sentinel pod. */
  readonly sentinelService: string;
  readonly masterName: string;
  readonly clusterDomain: string;
  readonly redisPort: number;
  readonly sentinelPort: number;
  readonly sentinelCount: number;
  readonly sentinelQuorum: number;
  readonly failoverWaitSeconds: number;
  readonly handoverTimeoutSeconds: number;
  readonly shutdownGateTimeoutSeconds: number;
  /** Whether Redis and Sentinel speak TLS only (the tls prop): the scripts' redis-cli then does too. */
  readonly tls?: boolean;
  /** Name of the auth Secret (named in the start script's refusal when a key is missing). */
  readonly authSecretName: string;
  /** Whether the exporter sidecar is on: the Secret then also holds `metrics-password`. */
  readonly metrics?: boolean;
  /** Whether the proxy tier is on: the Secret then also holds `proxy-password`. */
  readonly proxy?: boolean;
}

/** What the Sentinel pods' containers need to know. */
export interface SentinelPodContract {
  readonly sentinelService: string;
  readonly redisPods: readonly string[];
  readonly masterName: string;
  readonly clusterDomain: string;
  readonly redisPort: number;
  readonly sentinelPort: number;
  readonly sentinelCount: number;
  readonly janitorIntervalSeconds: number;
  /** Whether Redis and Sentinel speak TLS only (the tls prop). */
  readonly tls?: boolean;
  readonly authSecretName: string;
  /** Whether the exporter sidecar is on (see RedisPodContract.metrics). */
  readonly metrics?: boolean;
  /** Whether the proxy tier is on (see RedisPodContract.proxy). */
  readonly proxy?: boolean;
}

type Env = Record<string, string | number>;

function field(name: string, fieldPath: string): k8s.EnvVar {
  return { name, valueFrom: { fieldRef: { fieldPath } } };
}

function plain(values: Env): k8s.EnvVar[] {
  return Object.entries(values).map(([name, value]) => ({ name, value: String(value) }));
}

const path = (dir: string, file: string) => `${dir}/${file}`;

/**
 * TLS_CA_FILE, only with TLS on: common.sh's tls_flags turns it into redis-cli's
 * `--tls --cacert`, for every redis-cli call of every script. Its absence means plaintext.
 */
function tlsEnv(tls: boolean | undefined): Env {
  return tls ? { TLS_CA_FILE: TLS_PATHS.ca } : {};
}

function redisShared(c: RedisPodContract): Env {
  return {
    CLUSTER_DOMAIN: c.clusterDomain,
    GOVERNING_SERVICE: c.governingService,
    MASTER_NAME: c.masterName,
    REDIS_PORT: c.redisPort,
    SENTINEL_PORT: c.sentinelPort,
    SENTINEL_SERVICE: c.sentinelService,
    AUTH_DIR: MOUNTS.auth,
    STATE_FILE: path(MOUNTS.redisData, FILES.state),
    ROLE_FILE: path(MOUNTS.redisData, FILES.role),
    REDIS_NODES: c.redisPods.join(' '),
    SENTINEL_QUORUM: c.sentinelQuorum,
    CLI_TIMEOUT: CLI_TIMEOUT_SECONDS,
    ...tlsEnv(c.tls),
  };
}

/** Environment of the redis container: redis-start.sh, redis-probe.sh, redis-prestop.sh. */
export function redisContainerEnv(c: RedisPodContract): k8s.EnvVar[] {
  return [
    field('POD_NAME', 'metadata.name'),
    field('POD_NAMESPACE', 'metadata.namespace'),
    field('POD_IP', 'status.podIP'),
    ...plain({
      ...redisShared(c),
      DATA_DIR: MOUNTS.redisData,
      BOOTSTRAP_MASTER: c.bootstrapMaster,
      FAILOVER_WAIT_SECONDS: c.failoverWaitSeconds,
      ALLOW_EMPTY_FILE: path(MOUNTS.redisData, FILES.allowEmptyMaster),
      IP_FILE: path(MOUNTS.redisData, FILES.ip),
      REDIS_TEMPLATE: path(MOUNTS.redisTemplate, FILES.redisConf),
      REDIS_CONFIG: path(MOUNTS.redisConfig, FILES.redisConf),
      ACL_USERS_FILE: path(MOUNTS.redisTemplate, FILES.aclUsers),
      AUTH_SOURCE: c.authSecretName,
      AUTH_KEYS: secretKeys(c.metrics ?? false, c.proxy ?? false).join(' '),
      START_RETRY_SECONDS,
      HANDOVER_TIMEOUT_SECONDS: c.handoverTimeoutSeconds,
      // Writes pause for the handover and a little longer, so that the pause outlasts
      // the hook's own deadline and a late failover still finds writes paused.
      HANDOVER_PAUSE_MS: c.handoverTimeoutSeconds * 1000 + 2000,
      PAUSE_UNTIL_SHUTDOWN_MS,
      GATE_TIMEOUT_SECONDS: c.shutdownGateTimeoutSeconds,
      GATE_POLL_SECONDS,
      SENTINEL_INFO_PERIOD_MS,
      FAILOVER_LEAD_MS,
      REQUEST_LATENCY_MS,
      PRIORITY_SEEN_WAIT_MS,
    }),
  ];
}

/** Environment of the guard container beside Redis: redis-guard.sh. */
export function guardContainerEnv(c: RedisPodContract): k8s.EnvVar[] {
  return [
    field('POD_NAME', 'metadata.name'),
    field('POD_NAMESPACE', 'metadata.namespace'),
    ...plain({
      ...redisShared(c),
      REDIS_TEMPLATE: path(MOUNTS.redisTemplate, FILES.redisConf),
      ACL_USERS_FILE: path(MOUNTS.redisTemplate, FILES.aclUsers),
      AUTH_STATUS_FILE,
      AUTH_SYNC_SECONDS,
      SENTINEL_COUNT: c.sentinelCount,
      FENCE_CHECK_INTERVAL: GUARD_TIMINGS.checkIntervalSeconds,
      FENCE_PROBE_TIMEOUT: GUARD_TIMINGS.probeTimeoutSeconds,
      FENCE_AFTER_ROUNDS: GUARD_TIMINGS.failAfterChecks,
      // A preStop hook that died mid-handover leaves a replica at priority 1; the guard
      // puts it back once that has lasted longer than any handover.
      PRIORITY_RESTORE_AFTER_SECONDS: c.handoverTimeoutSeconds * 2,
    }),
  ];
}

/** What both containers of a Sentinel pod need (the sentinel container and its janitor). */
function sentinelShared(c: SentinelPodContract): Env {
  return {
    CLUSTER_DOMAIN: c.clusterDomain,
    MASTER_NAME: c.masterName,
    REDIS_PORT: c.redisPort,
    SENTINEL_PORT: c.sentinelPort,
    SENTINEL_SERVICE: c.sentinelService,
    REDIS_NODES: c.redisPods.join(' '),
    AUTH_DIR: MOUNTS.auth,
    ACL_USERS_FILE: path(MOUNTS.sentinelTemplate, FILES.aclUsers),
    SENTINEL_CONFIG: path(MOUNTS.sentinelData, FILES.sentinelConf),
    CLI_TIMEOUT: CLI_TIMEOUT_SECONDS,
    ...tlsEnv(c.tls),
  };
}

/** Environment of the sentinel container: sentinel-start.sh, sentinel-probe.sh. */
export function sentinelContainerEnv(c: SentinelPodContract): k8s.EnvVar[] {
  return [
    field('POD_NAMESPACE', 'metadata.namespace'),
    field('POD_IP', 'status.podIP'),
    ...plain({
      ...sentinelShared(c),
      AUTH_SOURCE: c.authSecretName,
      AUTH_KEYS: secretKeys(c.metrics ?? false, c.proxy ?? false).join(' '),
      SENTINEL_TEMPLATE: path(MOUNTS.sentinelTemplate, FILES.sentinelConf),
      START_RETRY_SECONDS,
    }),
  ];
}

/** Environment of the janitor container beside Sentinel: sentinel-janitor.sh. */
export function janitorContainerEnv(c: SentinelPodContract): k8s.EnvVar[] {
  return [
    field('POD_NAMESPACE', 'metadata.namespace'),
    // decide_rejoin asks every other Sentinel, not this pod's own.
    field('POD_IP', 'status.podIP'),
    ...plain({
      // SENTINEL_CONFIG (shared): Sentinel keeps the auth-pass it uses only in its config
      // file, which the janitor reads (read-only here).
      ...sentinelShared(c),
      SENTINEL_REPLICAS: c.sentinelCount,
      JANITOR_INTERVAL_SECONDS: c.janitorIntervalSeconds,
      JANITOR_RESET_HOLDOFF_SECONDS,
      SENTINEL_TIMINGS,
      SENTINEL_TIMINGS_CHECK_SECONDS,
      AUTH_STATUS_FILE,
      AUTH_SYNC_SECONDS,
    }),
  ];
}

/** What the proxy pods' HAProxy (its config and Lua decider) needs to know. */
export interface ProxyPodContract {
  readonly masterName: string;
  readonly clusterDomain: string;
  readonly redisPort: number;
  readonly sentinelPort: number;
  readonly sentinelCount: number;
  /** Whether Redis and Sentinel speak TLS only: the decider's connections then do too. */
  readonly tls?: boolean;
  /** The Redis pods' DNS names relative to the namespace (`<pod>.<service>`). */
  readonly redisPods: readonly string[];
  /** The Sentinel Service (the decider's first Sentinel). */
  readonly sentinelService: string;
}

/**
 * How long the proxy container waits at start for every Redis pod's name and the Sentinel
 * Service's to resolve before it starts HAProxy anyway (whose resolvers then fill in a
 * missing address from the cluster DNS). Long enough for a first install's StatefulSets.
 */
export const PROXY_START_WAIT_SECONDS = 120;

/**
 * How long the proxy holds a client that connects while no server is open (a failover under
 * way) before it refuses it: the client's command runs on the new master the moment the
 * decider opens it. Short enough that a client without a command timeout learns within
 * seconds that the proxy cannot reach a master.
 */
export const PROXY_HOLD_MS = 2000;

/**
 * The decider's timings: each Sentinel address and each Redis pod is asked every
 * pollIntervalMs by its own poller, on a connection kept open, each answer within
 * checkTimeoutMs (an answer counts for 2 x pollIntervalMs + checkTimeoutMs); a verdict
 * changes as soon as an answer changes it. A Sentinel IP learned from a peer and not
 * reached for sentinelForgetMs is dropped.
 */
export const PROXY_TIMINGS = { pollIntervalMs: 100, checkTimeoutMs: 500, sentinelForgetMs: 60_000, holdMs: PROXY_HOLD_MS } as const;

/** The ACL user the proxy's decider logs in as. */
export const PROXY_USER = 'proxy';

/** Environment of the haproxy container: haproxy.cfg (${POD_NAMESPACE}) and redis-proxy.lua. */
export function proxyContainerEnv(c: ProxyPodContract, backends: { write: string; read: string; sentinels: string }): k8s.EnvVar[] {
  return [
    field('POD_NAMESPACE', 'metadata.namespace'),
    ...plain({
      CLUSTER_DOMAIN: c.clusterDomain,
      MASTER_NAME: c.masterName,
      REDIS_PORT: c.redisPort,
      SENTINEL_PORT: c.sentinelPort,
      SENTINEL_COUNT: c.sentinelCount,
      AUTH_DIR: MOUNTS.auth,
      AUTH_STATUS_FILE,
      PROXY_USER,
      POLL_INTERVAL_MS: PROXY_TIMINGS.pollIntervalMs,
      CHECK_TIMEOUT_MS: PROXY_TIMINGS.checkTimeoutMs,
      SENTINEL_FORGET_MS: PROXY_TIMINGS.sentinelForgetMs,
      HOLD_MS: PROXY_TIMINGS.holdMs,
      // Kubernetes expands $(POD_NAMESPACE) (defined above) in the value.
      PROXY_HOSTS: [...c.redisPods, c.sentinelService].map((p) => `${p}.$(POD_NAMESPACE).svc.${c.clusterDomain}`).join(' '),
      START_WAIT_SECONDS: PROXY_START_WAIT_SECONDS,
      WRITE_BACKEND: backends.write,
      READ_BACKEND: backends.read,
      SENTINEL_BACKEND: backends.sentinels,
      ...(c.tls ? { TLS: 1 } : {}),
    }),
  ];
}
