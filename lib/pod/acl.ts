/**
 * Who may do what on the Redis servers and on the Sentinels: one ACL user per kind of
 * client, each with its own key in the auth Secret, and `default` switched off, so no
 * connection does anything before it authenticates.
 *
 * The rules are rendered into the ConfigMaps (file `acl-users` beside redis.conf and
 * sentinel.conf, one line `<user> <rules>` per user). The start scripts turn each line
 * into `user <user> on #<sha256 of <user>-password> [#<sha256 of <user>-password-previous>] <rules>`
 * (passwords never reach a ConfigMap, and servers only ever hold their hashes), after
 * `user default off`.
 *
 * Rule syntax is Redis' (https://redis.io/docs/management/security/acl/): `-@all` first
 * and then only what is needed, except for `app`, which is an application and may run
 * any data command. `+cmd|sub` allows one subcommand. Commands flagged no-auth (AUTH,
 * HELLO) are always allowed, whatever the rules say: they are how a client logs in.
 */

/** The users, in the order their lines are written. */
export const ACL_USERS = ['app', 'replication', 'sentinel', 'operations', 'metrics', 'proxy'] as const;
export type AclUser = typeof ACL_USERS[number];

/** The Secret key holding a user's password: `<user>-password`. */
export function secretKey(user: AclUser): string {
  return `${user}-password`;
}

/**
 * During a rotation, the Secret also holds `<key>-previous`, the password being replaced:
 * the servers accept both until it is removed.
 */
export const PREVIOUS_SUFFIX = '-previous';

/** Every key the Secret must hold. */
export const SECRET_KEYS: readonly string[] = ACL_USERS.map(secretKey);

/**
 * The users a system has: every user but `metrics` unless the exporter sidecar is on (so
 * an install without metrics needs no `metrics-password` key in its Secret), and but
 * `proxy` unless the proxy tier is on.
 */
export function aclUsers(metrics: boolean, proxy = false): readonly AclUser[] {
  return ACL_USERS.filter((user) => (metrics || user !== 'metrics') && (proxy || user !== 'proxy'));
}

/** The Secret keys a system needs (see aclUsers). */
export function secretKeys(metrics: boolean, proxy = false): readonly string[] {
  return aclUsers(metrics, proxy).map(secretKey);
}

/** What each user is for (used in the docs of `authSecretName`). */
export const USER_PURPOSE: Record<AclUser, string> = {
  app: 'applications, on Redis and on the Sentinels',
  replication: 'replicas connecting to the master (masteruser/masterauth)',
  sentinel: 'Sentinels connecting to Redis and to each other',
  operations: 'the pod scripts: start scripts, probes, guard, preStop hook and janitor',
  metrics: 'the redis_exporter sidecars (read-only: INFO and Sentinel\'s views)',
  proxy: 'the proxy tier\'s decider (ROLE on Redis; who the master is, by epoch, on the Sentinels)',
};

/**
 * The commands the pod scripts send to a Redis server as `operations` (redis_cmd in
 * lib/pod/scripts). test/unit/acl.test.ts reads the scripts and checks that they send
 * exactly these: a command added to a script must be added here, and one no script sends
 * any more must go.
 */
export const OPERATIONS_REDIS_COMMANDS = [
  'ping', // probes, the shutdown gate, the guard's replica checks
  'role', // start decisions, the gate
  'info', // guard records, readiness, start decisions, handover catch-up
  'config|get', 'config|set', // fencing (min-replicas-to-write), handover priority (replica-priority)
  'replicaof', // the guard demotes a replaced master; preStop follows the new master
  'client|kill', 'client|pause', 'client|unpause', // handover: writes paused, clients sent to the new master
  'acl|setuser', 'acl|deluser', 'acl|users', // the shutdown gate's announcements (users that cannot log in)
  'acl|getuser', // the guard's password rotation (ACL SETUSER #hash / !hash, CONFIG GET/SET masterauth)
] as const;

/** The commands the pod scripts send to a Sentinel as `operations` (sentinel_cmd). */
export const OPERATIONS_SENTINEL_COMMANDS = [
  'sentinel|master', 'sentinel|replicas', 'sentinel|sentinels', // views of the start scripts, gate and janitor
  'sentinel|get-master-addr-by-name', // readiness; the handover waits for the new master
  'sentinel|debug', // the janitor keeps the INFO period
  'sentinel|reset', // the janitor drops phantom Sentinels
  'sentinel|failover', // the preStop hook of a master hands over
  'shutdown', // the janitor restarts a Sentinel that started apart from the others (decide_rejoin)
  'acl|getuser', 'acl|setuser', // the janitor's password rotation: the users' passwords,
  'sentinel|set', 'sentinel|config', // auth-pass towards Redis, sentinel-pass towards the other Sentinels
] as const;

/**
 * What the operator's command line (`redis-ha status`, `failover`; lib/ops) sends to a
 * Sentinel as `operations` beyond what the scripts send: CKQUORUM (read-only: whether the
 * quorum and a majority for failover authorisation are reachable). Everything else those
 * commands send, on Redis and on the Sentinels, is in the scripts' lists already
 * (test/unit/ops-status-failover.test.ts runs them against servers with these rules).
 */
export const OPERATIONS_CLI_SENTINEL_COMMANDS = ['sentinel|ckquorum'] as const;

const allow = (commands: readonly string[]) => commands.map((c) => `+${c}`).join(' ');

/**
 * What redis_exporter (1.45, the version of the `metrics` sidecar; found with ACL LOG
 * against Debian's prometheus-redis-exporter 1.45 started with the sidecar's flags) sends
 * to a Redis server: CLIENT SETNAME on connect, INFO ALL (every redis_* metric of the
 * server), SLOWLOG LEN and LATENCY LATEST. Deliberately not: CONFIG GET (the sidecar runs
 * with `--config-command=-`: `CONFIG GET *` would hand the exporter masterauth, the
 * replication password, in plaintext; maxmemory comes from INFO as redis_memory_max_bytes),
 * SLOWLOG GET (its entries carry command arguments, i.e. keys and values; only
 * redis_slowlog_last_id and redis_last_slow_execution_duration_seconds are lost) and CLIENT
 * LIST (only with --export-client-list, which the sidecar does not set). Read-only: no key,
 * no channel, nothing that changes state. METRICS_EXPORTER_FLAGS are the flags the sidecar
 * passes besides address, user and password; test/unit/acl.test.ts runs the real exporter
 * with them against servers holding these rules and checks ACL LOG stays empty.
 */
export const METRICS_EXPORTER_FLAGS = ['--config-command=-'] as const;

/** The commands of METRICS_EXPORTER_FLAGS' exporter on a Redis server (see above). */
export const METRICS_REDIS_COMMANDS = ['client|setname', 'info', 'slowlog|len', 'latency|latest'] as const;

/**
 * What redis_exporter sends to a Sentinel: CLIENT SETNAME, INFO, and the read-only views
 * SENTINEL MASTERS, SENTINELS, SLAVES and CKQUORUM (redis_sentinel_* metrics).
 */
export const METRICS_SENTINEL_COMMANDS = [
  'client|setname', 'info', 'sentinel|masters', 'sentinel|sentinels', 'sentinel|slaves', 'sentinel|ckquorum',
] as const;

/**
 * What the proxy's decider (lib/pod/proxy/redis-proxy.lua) sends to a Redis server: ROLE,
 * whether the node says master (the second guard beside the Sentinels' answer) or is a
 * replica in sync (the read backend). AUTH comes first, which every user may send.
 */
export const PROXY_REDIS_COMMANDS = ['role'] as const;

/**
 * What the decider sends to a Sentinel: MYID (one Sentinel reached at two addresses counts
 * once), MASTER (the config epoch), GET-MASTER-ADDR-BY-NAME (the master clients are told
 * about) and SENTINELS (the peers, to ask every Sentinel). Read-only.
 */
export const PROXY_SENTINEL_COMMANDS = [
  'sentinel|myid', 'sentinel|master', 'sentinel|get-master-addr-by-name', 'sentinel|sentinels',
] as const;

/** Rules on the Redis servers. */
export const REDIS_ACL: Record<AclUser, string> = {
  // Every key, every data command; not @admin (CONFIG, REPLICAOF, SHUTDOWN, DEBUG,
  // MONITOR, CLIENT KILL/PAUSE, ACL, ROLE, SYNC/PSYNC...) and not @dangerous (FLUSHALL,
  // FLUSHDB, KEYS, INFO, ...). It may subscribe to any channel, with any pattern, but
  // PUBLISH and SPUBLISH (a selector, the part in parentheses, which alone grants them) only
  // to channels not starting with "__s", so that no application can forge
  // `__sentinel__:hello` on the servers the Sentinels subscribe to (a hello with a higher
  // epoch would point every Sentinel at a server of its choosing). Not the channel
  // patterns alone (`&[^_]* ...` for every command): Redis matches a PSUBSCRIBE pattern
  // literally against them, so `PSUBSCRIBE __keyspace@0__:*` would be refused.
  app: '~* &* +@all -@admin -@dangerous -publish -spublish (+publish +spublish &[^_]* &_[^_]* &__[^s]*)',
  // A replica connecting to its master: PING, REPLCONF, then PSYNC (SYNC before Redis 2.8).
  replication: '-@all +psync +sync +replconf +ping',
  // Exactly the list of Redis' Sentinel documentation ("Redis access control list
  // authentication"): monitoring (PING, INFO, ROLE, hello PUBLISH/SUBSCRIBE on every
  // channel), failover (MULTI/EXEC around SLAVEOF, CONFIG REWRITE, CLIENT KILL) and
  // SCRIPT KILL for a busy master.
  sentinel: 'allchannels -@all +multi +slaveof +ping +exec +subscribe +config|rewrite +role +publish +info +client|setname +client|kill +script|kill',
  // The scripts: see OPERATIONS_REDIS_COMMANDS. No keys, no channels.
  operations: `-@all ${allow(OPERATIONS_REDIS_COMMANDS)}`,
  // The exporter: see METRICS_REDIS_COMMANDS. No keys, no channels.
  metrics: `-@all ${allow(METRICS_REDIS_COMMANDS)}`,
  // The proxy's decider: see PROXY_REDIS_COMMANDS. No keys, no channels.
  proxy: `-@all ${allow(PROXY_REDIS_COMMANDS)}`,
};

/** Rules on the Sentinels (no `replication` user: replicas never connect to a Sentinel). */
export const SENTINEL_ACL: Partial<Record<AclUser, string>> = {
  // Discovery only: where the master and replicas are (ioredis: get-master-addr-by-name,
  // sentinels, slaves; redis-py: masters, master, slaves/replicas; Jedis and Lettuce the
  // same), and the Pub/Sub events (+switch-master) that announce a failover. Nothing that
  // changes Sentinel (SET, REMOVE, MONITOR, FAILOVER, RESET, CONFIG, DEBUG, FLUSHCONFIG)
  // and no PUBLISH, which on a Sentinel injects hello messages.
  app: '-@all +auth +hello +ping +sentinel|get-master-addr-by-name +sentinel|master +sentinel|masters +sentinel|replicas '
    + '+sentinel|slaves +sentinel|sentinels +subscribe +unsubscribe +psubscribe +punsubscribe +client|setname +client|getname &*',
  // What another Sentinel sends (Redis 7.0 src/sentinel.c): CLIENT SETNAME when it links,
  // PING every second, PUBLISH __sentinel__:hello every 2s (Sentinel's own PUBLISH, which
  // takes hellos only), and SENTINEL IS-MASTER-DOWN-BY-ADDR to agree a master is down and to
  // vote for a failover leader.
  sentinel: '-@all +client|setname +ping +publish +sentinel|is-master-down-by-addr &__sentinel__:hello',
  // The scripts: see OPERATIONS_SENTINEL_COMMANDS.
  operations: `-@all ${allow([...OPERATIONS_SENTINEL_COMMANDS, ...OPERATIONS_CLI_SENTINEL_COMMANDS])}`,
  // The exporter: see METRICS_SENTINEL_COMMANDS.
  metrics: `-@all ${allow(METRICS_SENTINEL_COMMANDS)}`,
  // The proxy's decider: see PROXY_SENTINEL_COMMANDS.
  proxy: `-@all ${allow(PROXY_SENTINEL_COMMANDS)}`,
};

/**
 * The `acl-users` file for a server kind: `<user> <rules>` per line. The start script of
 * that server requires the Secret key of every user listed.
 */
export function renderAclUsers(rules: Partial<Record<AclUser, string>>, metrics: boolean, proxy = false): string {
  return aclUsers(metrics, proxy).filter((user) => rules[user] !== undefined).map((user) => `${user} ${rules[user]}\n`).join('');
}

/** The Redis servers' `acl-users` file, with or without the `metrics` and `proxy` users. */
export const redisAclUsersFile = (metrics: boolean, proxy = false) => renderAclUsers(REDIS_ACL, metrics, proxy);
/** The Sentinels' `acl-users` file, with or without the `metrics` and `proxy` users. */
export const sentinelAclUsersFile = (metrics: boolean, proxy = false) => renderAclUsers(SENTINEL_ACL, metrics, proxy);
