/**
 * Password rotation without an outage: the operator's automation of the procedure in the
 * README ("Rotating passwords"). Pure logic against two small interfaces, the Secret
 * (read it, change keys in one update) and the pods (list them, run a command in one),
 * so the same steps run against a cluster (kubectl.ts) and the simulator (the live test).
 *
 * For each user rotated, one Secret update writes `<user>-password` = NEW and
 * `<user>-password-previous` = OLD. The sidecars beside every Redis server (guard) and
 * Sentinel (janitor) run auth_sync (lib/pod/scripts/auth-sync.sh) in their loop: the
 * server accepts both, and each client credential our components hold (masterauth,
 * Sentinel's auth-pass and sentinel-pass) moves to NEW once every peer accepts it. They
 * report what they accept and use in a status file (sha256 prefixes, never passwords).
 * The proxy tier's pods (HAProxy with its Lua decider, lib/pod/proxy/redis-proxy.lua) are
 * clients only: the decider logs in to every server as `proxy`, reads the password files at
 * each connection, falls back to `-previous` while a server refuses the current one, and
 * re-authenticates an open connection whose password is not the current one; it reports
 * the passwords its connections use in the same status file (with nothing accepted).
 * Once every pod reports NEW accepted (servers) and in use (servers and proxies), a second
 * update removes the -previous keys; the sidecars then drop OLD, and the tool checks that
 * OLD is refused and NEW works as that user on every server and Sentinel.
 *
 * The application password goes last: applications must move to NEW themselves while both
 * are accepted. With an app grace period the tool waits that long before dropping OLD;
 * without one it stops there, and `finish` (the same command with --finish) completes it
 * once the applications have moved.
 */
import { createHash, randomBytes } from 'crypto';
import { ACL_USERS, AclUser, PREVIOUS_SUFFIX, REDIS_ACL, SENTINEL_ACL, secretKey as userSecretKey } from '../pod/acl';
import { AUTH_STATUS_FILE } from '../pod/contract';

export { AUTH_STATUS_FILE };
export type AuthUser = AclUser;
/**
 * The users this tool rotates, in order: our own components' first, the applications' last.
 * Not `metrics`: redis_exporter reads its password once, when its container starts (from
 * the environment; its --redis.password-file is a JSON map, also read only at start), so
 * no rotation can move it to a new password without a restart. The servers' side of a
 * metrics rotation still works like every user's (auth_sync keeps current and -previous
 * accepted); the README's "Rotating the metrics password" has the steps, with the restart.
 * `proxy` is rotated when the Secret has its key and a proxy pod runs (or a rotation of it
 * is under way); see OPTIONAL_USERS and rotatePasswords.
 */
export const AUTH_USERS: readonly AuthUser[] = [...ACL_USERS.filter((u) => u !== 'app' && u !== 'metrics'), 'app'];

/**
 * Users whose key exists only when a prop is on: `proxy`, the proxy tier's (prop `proxy`,
 * on by default). Without its key the instance has no such user: the default rotation
 * leaves it out, and asking for it is an error.
 */
export const OPTIONAL_USERS: readonly AuthUser[] = ['proxy'];

/**
 * The users each kind of pod's server has (Redis has all; Sentinel has no replication
 * user; the proxy pods have no server).
 */
export const SERVER_USERS: Record<PodKind, readonly AuthUser[]> = {
  redis: AUTH_USERS.filter((u) => REDIS_ACL[u] !== undefined),
  sentinel: AUTH_USERS.filter((u) => SENTINEL_ACL[u] !== undefined),
  proxy: [],
};

/**
 * The users each kind of pod reports in its status file: a server's users; for a proxy
 * pod only `proxy`, whose password its decider uses as a client.
 */
export const REPORTED_USERS: Record<PodKind, readonly AuthUser[]> = {
  ...SERVER_USERS,
  proxy: ['proxy'],
};

/** Length of the sha256 prefixes in the status file (auth-sync.sh's short_hash). */
export const HASH_PREFIX_LENGTH = 16;

export const secretKey = (user: AuthUser): string => userSecretKey(user);
export const previousKey = (user: AuthUser): string => `${userSecretKey(user)}${PREVIOUS_SUFFIX}`;

/** sha256 of a password as the status file shows it (a prefix of the hex digest). */
export function hashPrefix(password: string): string {
  return createHash('sha256').update(password).digest('hex').slice(0, HASH_PREFIX_LENGTH);
}

/** A new password: 32 random bytes, hex (a plain token, as the start scripts require). */
export function newPassword(): string {
  return randomBytes(32).toString('hex');
}

/** The Secret holding the passwords. */
export interface SecretAccess {
  /** Where it is, for messages ("redis-apps/redis-auth"). */
  readonly name: string;
  /** Its data (decoded), or undefined when the Secret does not exist. */
  read(): Promise<Record<string, string> | undefined>;
  /** One update of the Secret: a string sets the key, null removes it. */
  update(changes: Record<string, string | null>): Promise<void>;
}

/** A Redis server's pod, a Sentinel's, or a proxy pod (a client only: it has no server). */
export type PodKind = 'redis' | 'sentinel' | 'proxy';

export interface RotationPod {
  readonly name: string;
  readonly kind: PodKind;
  /**
   * The container that writes the status file: the guard (auth_sync), the janitor
   * (auth_sync) or a proxy pod's haproxy (the decider).
   */
  readonly container: string;
}

/** The Redis, Sentinel and proxy pods of the instance, and running a command in one of them. */
export interface PodAccess {
  /** Every running Redis, Sentinel and proxy pod of the instance. */
  pods(): Promise<RotationPod[]>;
  /** Runs argv in the pod's `container` with `stdin`; its stdout. Rejects when it cannot run or exits non-zero. */
  exec(pod: RotationPod, argv: string[], stdin?: string): Promise<string>;
}

/** What a pod reports for one user: the hashes its server accepts and those its components use as a client. */
export interface UserStatus {
  accepted: string[];
  using: string[];
}
export type PodStatus = Partial<Record<AuthUser, UserStatus>>;

/**
 * Parses the status file: one line per user, `<user> accepted <h>[,<h>]|- using <h>[,<h>]|-`
 * (`-` when no component of this pod uses that user as a client; a proxy pod, which has no
 * server, writes `accepted -`).
 */
export function parseStatus(text: string): PodStatus {
  const out: PodStatus = {};
  for (const line of text.split('\n')) {
    const m = /^(\S+) accepted (\S*) using (\S+)$/.exec(line.trim());
    if (!m || !(AUTH_USERS as readonly string[]).includes(m[1])) continue;
    const list = (s: string): string[] => (s === '-' || s === '' ? [] : s.split(','));
    out[m[1] as AuthUser] = { accepted: list(m[2]), using: list(m[3]) };
  }
  return out;
}

export interface RotationOptions {
  /**
   * Users to rotate (default: every user of AUTH_USERS, `proxy` only when the Secret has its
   * key and a proxy pod runs or its rotation is under way; the app user always goes last).
   */
  readonly users?: readonly AuthUser[];
  /** How long each wait for the pods may take before the rotation stops with an error. */
  readonly timeoutMs: number;
  /**
   * After every server accepts the new app password: how long applications get to move to
   * it before the old one is dropped. Undefined: stop there (both stay accepted) and let
   * `finish` complete it later.
   */
  readonly appGraceMs?: number;
  /** Complete a rotation whose new passwords are already written (the -previous keys exist). */
  readonly finish?: boolean;
  readonly log: (line: string) => void;
  /** Between two looks at the pods (default 1000 ms). */
  readonly pollMs?: number;
  readonly generate?: () => string;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

export interface RotationResult {
  /** Users whose rotation completed (old password refused everywhere, new one works). */
  readonly rotated: AuthUser[];
  /** Users left with both passwords accepted (app without a grace period): run finish later. */
  readonly pending: AuthUser[];
}

export class RotationError extends Error {
  override readonly name = 'RotationError';
}

const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** "5m", "90s", "1h30m", "250ms" or a number of seconds -> milliseconds. */
export function parseDuration(text: string): number {
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let rest = text;
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)/.exec(rest);
    if (!m) throw new RotationError(`invalid duration '${text}' (examples: 90s, 5m, 1h30m)`);
    total += Number(m[1]) * unit[m[2]];
    rest = rest.slice(m[0].length);
  }
  return total;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
}

/** The users in rotation order, checked. */
export function parseUsers(text: string): AuthUser[] {
  const names = text.split(',').map((u) => u.trim()).filter(Boolean);
  const unknown = names.filter((u) => !(AUTH_USERS as readonly string[]).includes(u));
  if (unknown.length) throw new RotationError(`unknown user ${unknown.join(', ')} (the users are ${AUTH_USERS.join(', ')})`);
  if (!names.length) throw new RotationError(`no users given (the users are ${AUTH_USERS.join(', ')})`);
  return AUTH_USERS.filter((u) => names.includes(u));
}

/** The old and new password of each user being rotated. */
interface Pair { user: AuthUser; old: string; new: string }

const list = (users: readonly AuthUser[]): string => users.join(', ');

/** Rotates the passwords of `opts.users` (see the header for the steps). */
export async function rotatePasswords(secret: SecretAccess, pods: PodAccess, opts: RotationOptions): Promise<RotationResult> {
  const data = await secret.read();
  if (!data) throw new RotationError(`Secret ${secret.name} not found (check --namespace and --secret)`);
  // An optional user without its key is not part of this instance: left out unless asked for.
  let users = AUTH_USERS.filter((u) => (opts.users ?? AUTH_USERS).includes(u)
    && (opts.users !== undefined || !OPTIONAL_USERS.includes(u) || secretKey(u) in data));
  // A key left in the Secret after the proxy tier was turned off: no server has the user and
  // no proxy pod runs, so nobody would report it (unless a rotation of it is under way).
  if (opts.users === undefined && users.includes('proxy') && data[previousKey('proxy')] === undefined
    && !(await pods.pods()).some((p) => p.kind === 'proxy')) {
    opts.log(`proxy: not rotated: no proxy pod runs (the proxy tier looks off, though Secret ${secret.name} has ${secretKey('proxy')}); name it in --users to rotate it anyway`);
    users = users.filter((u) => u !== 'proxy');
  }
  const missing = users.filter((u) => !data[secretKey(u)]);
  if (missing.length && 'password' in data && !AUTH_USERS.some((u) => data[secretKey(u)])) {
    const required = AUTH_USERS.filter((u) => !OPTIONAL_USERS.includes(u)).map(secretKey).join(', ');
    throw new RotationError(`Secret ${secret.name} is in the pre-ACL layout (one 'password' key): add the keys ${required} (and ${secretKey('proxy')} with the proxy tier) first (see the README's upgrade notes)`);
  }
  if (missing.includes('proxy') && !(secretKey('proxy') in data)) {
    throw new RotationError(`Secret ${secret.name} has no key ${secretKey('proxy')}: the proxy tier is off for this instance (the key exists only with the proxy prop on), so there is no proxy user to rotate; leave proxy out of --users`);
  }
  if (missing.length) throw new RotationError(`Secret ${secret.name} has no key ${missing.map(secretKey).join(', ')}`);
  const started = users.filter((u) => data[previousKey(u)] !== undefined);
  if (opts.finish) {
    const notStarted = users.filter((u) => !started.includes(u));
    if (opts.users && notStarted.length) throw new RotationError(`nothing to finish for ${list(notStarted)}: Secret ${secret.name} has no ${notStarted.map(previousKey).join(', ')}`);
    if (!started.length) throw new RotationError(`nothing to finish: Secret ${secret.name} has no -previous key`);
  } else if (started.length) {
    throw new RotationError(`a rotation of ${list(started)} is already under way (Secret ${secret.name} has ${started.map(previousKey).join(', ')}): complete it with --finish`);
  }
  const r = new Rotation(secret, pods, opts);
  const todo = opts.finish ? started : users;
  const rotated: AuthUser[] = [];
  const pending: AuthUser[] = [];
  // Our own components' users first, then the application's, which needs the applications to move.
  const internal = todo.filter((u) => u !== 'app');
  if (internal.length) {
    const pairs = opts.finish ? r.pairsFromSecret(data, internal) : await r.start(internal);
    await r.waitNewInUse(pairs);
    await r.dropPrevious(pairs);
    rotated.push(...internal);
  }
  if (todo.includes('app')) {
    const current = opts.finish ? data : await secret.read() ?? data;
    const [pair] = opts.finish ? r.pairsFromSecret(current, ['app']) : await r.start(['app']);
    await r.waitNewInUse([pair]);
    // --finish says the applications have moved: no grace unless one is given.
    const graceMs = opts.appGraceMs ?? (opts.finish ? 0 : undefined);
    if (graceMs === undefined) {
      opts.log(`app: every server and Sentinel accepts both the old and the new password; move the applications to the new one (key ${secretKey('app')} of Secret ${secret.name}), then run this command again with --finish`);
      pending.push('app');
    } else {
      if (graceMs > 0) {
        opts.log(`app: both passwords accepted; applications have ${formatDuration(graceMs)} to move to the new one before the old one is refused`);
        await (opts.sleep ?? defaultSleep)(graceMs);
      }
      await r.dropPrevious([pair]);
      rotated.push('app');
    }
  }
  opts.log(rotated.length ? `done: ${list(rotated)} rotated${pending.length ? `; ${list(pending)} waits for --finish` : ''}` : `${list(pending)} waits for --finish`);
  return { rotated, pending };
}

class Rotation {
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;

  constructor(private readonly secret: SecretAccess, private readonly pods: PodAccess, private readonly opts: RotationOptions) {
    this.sleep = opts.sleep ?? defaultSleep;
    this.now = opts.now ?? Date.now;
  }

  pairsFromSecret(data: Record<string, string>, users: AuthUser[]): Pair[] {
    return users.map((user) => {
      const old = data[previousKey(user)];
      if (old === undefined) throw new RotationError(`Secret ${this.secret.name} has no key ${previousKey(user)} any more`);
      return { user, old, new: data[secretKey(user)] };
    });
  }

  /** Step 1: NEW and OLD (as -previous) of these users in one Secret update. */
  async start(users: AuthUser[]): Promise<Pair[]> {
    const data = await this.secret.read();
    if (!data) throw new RotationError(`Secret ${this.secret.name} disappeared`);
    const pairs = users.map((user) => ({ user, old: data[secretKey(user)], new: (this.opts.generate ?? newPassword)() }));
    const changes: Record<string, string> = {};
    for (const p of pairs) {
      changes[secretKey(p.user)] = p.new;
      changes[previousKey(p.user)] = p.old;
    }
    await this.secret.update(changes);
    this.opts.log(`${list(users)}: new passwords written to Secret ${this.secret.name}, the old ones kept as ${users.length > 1 ? '-previous keys' : previousKey(users[0])} (${pairs.map((p) => `${p.user} ${hashPrefix(p.old)} -> ${hashPrefix(p.new)}`).join(', ')})`);
    return pairs;
  }

  /**
   * Step 2: every server accepts NEW and no component uses anything else. A proxy pod must
   * also use something: until its decider has a live connection, the empty list would pass
   * for "nothing old", and a decider still on OLD could lose every server at the drop.
   */
  async waitNewInUse(pairs: Pair[]): Promise<void> {
    await this.waitAll(`${list(pairs.map((p) => p.user))}: new passwords accepted and in use`, pairs,
      (s, p, kind) => kind === 'proxy'
        ? s.using.length > 0 && s.using.every((h) => h === hashPrefix(p.new))
        : s.accepted.includes(hashPrefix(p.new)) && s.using.every((h) => h === hashPrefix(p.new)));
  }

  /** Steps 3 and 4: remove the -previous keys, wait until OLD is gone everywhere, check OLD refused and NEW working. */
  async dropPrevious(pairs: Pair[]): Promise<void> {
    const changes: Record<string, null> = {};
    for (const p of pairs) changes[previousKey(p.user)] = null;
    await this.secret.update(changes);
    this.opts.log(`${list(pairs.map((p) => p.user))}: ${Object.keys(changes).join(', ')} removed from Secret ${this.secret.name}`);
    // A proxy pod accepts nothing: for it this is "OLD no longer in use".
    await this.waitAll(`${list(pairs.map((p) => p.user))}: old passwords no longer accepted`, pairs,
      (s, p) => !s.accepted.includes(hashPrefix(p.old)) && !s.using.includes(hashPrefix(p.old)));
    await this.verify(pairs);
  }

  /**
   * Polls every pod's status until `ok` holds for every user of `pairs` the pod reports
   * (REPORTED_USERS), on every pod; a pod that does not get there within the timeout stops
   * the rotation with what it reports.
   */
  private async waitAll(what: string, pairs: Pair[], ok: (s: UserStatus, p: Pair, kind: PodKind) => boolean): Promise<void> {
    const t0 = this.now();
    const deadline = t0 + this.opts.timeoutMs;
    const done = new Set<string>();
    const proxy = pairs.some((p) => p.user === 'proxy');
    this.opts.log(`waiting for every Redis${proxy ? ', Sentinel and proxy' : ' and Sentinel'} pod: ${what} (timeout ${formatDuration(this.opts.timeoutMs)})`);
    let noProxyLogged = false;
    for (;;) {
      // The proxy pods only for the proxy user: they use no other.
      const pods = (await this.serverPods()).filter((p) => proxy || p.kind !== 'proxy');
      if (proxy && !noProxyLogged && !pods.some((p) => p.kind === 'proxy')) {
        // Nothing uses the proxy user then: the servers' side is the whole rotation.
        this.opts.log('  no running proxy pod: only the servers are waited for (a proxy pod that starts later reads the new password)');
        noProxyLogged = true;
      }
      const waiting: string[] = [];
      await Promise.all(pods.map(async (pod) => {
        const problem = await this.podProblem(pod, pairs, ok);
        if (problem) waiting.push(`${pod.name}: ${problem}`);
        else if (!done.has(pod.name)) {
          done.add(pod.name);
          this.opts.log(`  ${pod.name}: ok after ${formatDuration(this.now() - t0)}`);
        }
      }));
      if (!waiting.length) return;
      if (this.now() >= deadline) {
        throw new RotationError(`timed out after ${formatDuration(this.opts.timeoutMs)} waiting for ${what}; ${waiting.sort().join('; ')}`);
      }
      await this.sleep(this.opts.pollMs ?? 1000);
    }
  }

  /** The pods, which must include a server (an empty list means a wrong namespace or instance). */
  private async serverPods(): Promise<RotationPod[]> {
    const pods = await this.pods.pods();
    if (!pods.some((p) => p.kind !== 'proxy')) throw new RotationError('no running Redis or Sentinel pod found (check --namespace and --instance)');
    return pods;
  }

  /** Why `pod` is not there yet, or undefined when it is. */
  private async podProblem(pod: RotationPod, pairs: Pair[], ok: (s: UserStatus, p: Pair, kind: PodKind) => boolean): Promise<string | undefined> {
    let text: string;
    try {
      text = await this.pods.exec(pod, ['cat', AUTH_STATUS_FILE]);
    } catch (e) {
      return `no status (${firstLine(e)})`;
    }
    const status = parseStatus(text);
    const wrong: string[] = [];
    for (const p of pairs) {
      if (!REPORTED_USERS[pod.kind].includes(p.user)) continue;
      const s = status[p.user];
      if (!s) wrong.push(`${p.user} not reported`);
      else if (!ok(s, p, pod.kind)) {
        // A proxy pod has no server: what it accepts is always empty, and would only confuse.
        const accepts = pod.kind === 'proxy' ? '' : `accepts [${s.accepted.join(',')}] `;
        wrong.push(`${p.user} ${accepts}uses [${s.using.join(',') || '-'}] (old ${hashPrefix(p.old)}, new ${hashPrefix(p.new)})`);
      }
    }
    return wrong.length ? wrong.join(', ') : undefined;
  }

  /** OLD is refused and NEW accepted as each user, by every Redis server and Sentinel (not the proxy pods: they have no server). */
  private async verify(pairs: Pair[]): Promise<void> {
    const pods = (await this.serverPods()).filter((p) => p.kind !== 'proxy');
    const failures: string[] = [];
    await Promise.all(pods.map(async (pod) => {
      for (const p of pairs) {
        if (!SERVER_USERS[pod.kind].includes(p.user)) continue;
        const withNew = await this.tryAuth(pod, p.user, p.new);
        const withOld = await this.tryAuth(pod, p.user, p.old);
        if (withNew !== 'OK') failures.push(`${pod.name} refuses the new ${p.user} password (${withNew})`);
        if (!/WRONGPASS/.test(withOld)) failures.push(`${pod.name} still answers the old ${p.user} password with '${withOld}'`);
      }
    }));
    if (failures.length) throw new RotationError(`verification failed: ${failures.sort().join('; ')}`);
    this.opts.log(`${list(pairs.map((p) => p.user))}: verified on ${pods.length} pods: the old passwords are refused, the new ones work`);
  }

  /**
   * AUTH as `user` with `password` against the pod's own server (Redis from the guard,
   * Sentinel from the janitor): its answer, "OK" when it takes them. The password reaches
   * redis-cli over stdin, never as an argument. With the tls prop the sidecar has
   * TLS_CA_FILE (the servers speak TLS only): redis-cli then uses TLS with that CA.
   */
  private async tryAuth(pod: RotationPod, user: AuthUser, password: string): Promise<string> {
    const port = pod.kind === 'redis' ? '$REDIS_PORT' : '$SENTINEL_PORT';
    const script = `IFS= read -r pw; printf 'AUTH %s %s\\n' "$1" "$pw" | timeout 5 redis-cli \${TLS_CA_FILE:+--tls --cacert "$TLS_CA_FILE"} --raw -h 127.0.0.1 -p "${port}" 2>&1`;
    try {
      return (await this.pods.exec(pod, ['sh', '-c', script, 'sh', user], `${password}\n`)).trim().split('\n')[0];
    } catch (e) {
      return `cannot run redis-cli: ${firstLine(e)}`;
    }
  }
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).trim().split('\n')[0];
}
