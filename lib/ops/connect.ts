/**
 * The connection layer every operator command shares (`redis-ha status`, `failover`,
 * `drill`, `migrate`): which Sentinels to ask, as whom, over TLS or not, and the address
 * map that makes the tool work through `kubectl port-forward`.
 *
 * - Sentinels: `--sentinel HOST:PORT` (repeatable; default the instance's Sentinel Service,
 *   `redis-sentinel:26379`). Each Sentinel given is asked for the other Sentinels it knows
 *   (SENTINEL SENTINELS), so one address of the Service is enough to find them all.
 * - Credentials come only from files (`--password-file`, or the file an environment
 *   variable names), never from the command line, where `ps` and shell history show them.
 * - `--map FROM=TO` rewrites every address the tool would connect to, those the Sentinels
 *   report included (pod DNS names of Redis, pod IPs of the other Sentinels): with a
 *   `kubectl port-forward` per pod, each pod's address maps to its local port.
 * - Every problem the operator can fix ends as a CliError: one line, printed by the CLI as
 *   `redis-ha: <message>`, exit status 1, no stack trace.
 */
import { readFileSync } from 'fs';
import Redis from 'ioredis';
import { isIP } from 'net';

/** A problem the operator can fix: the CLI prints its message alone, on one line, and exits 1. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

export interface Address {
  readonly host: string;
  readonly port: number;
}

/** `host:port` (IPv6 in brackets). */
export function formatAddress(a: Address): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** The key an address is compared by: host lower-case without a trailing dot. */
function addressKey(a: Address): string {
  return formatAddress({ host: a.host.toLowerCase().replace(/\.$/, ''), port: a.port });
}

/** `host:port` or `[v6]:port` -> Address; undefined when it is not one. */
function parseHostPort(text: string): Address | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9_.-]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1] ?? m[2], port };
}

/** Parses `host:port` given with `flag`, or throws a CliError naming the flag, the value and the form. */
export function parseAddress(text: string, flag: string): Address {
  const a = parseHostPort(text);
  if (!a) throw new CliError(`${flag} '${text}' is not HOST:PORT (for example ${flag} redis-sentinel:26379)`);
  return a;
}

/** "5s", "500ms", "1m", "1h30m" or a number of seconds -> milliseconds; undefined when invalid. */
export function parseDurationMs(text: string): number | undefined {
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let rest = text;
  if (!rest) return undefined;
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)/.exec(rest);
    if (!m) return undefined;
    total += Number(m[1]) * unit[m[2]];
    rest = rest.slice(m[0].length);
  }
  return total;
}

/** A duration given with `flag`, or a CliError. */
export function durationOption(text: string, flag: string): number {
  const ms = parseDurationMs(text);
  if (ms === undefined || ms <= 0) throw new CliError(`${flag} '${text}' is not a duration (examples: 500ms, 2s, 1m)`);
  return ms;
}

/** The instance's defaults (the Sentinel Service of the chart's instance `redis`). */
export const DEFAULT_SENTINEL = 'redis-sentinel:26379';
export const DEFAULT_MASTER_NAME = 'mymaster';
export const DEFAULT_CONNECT_TIMEOUT = '2s';
/** Environment variables that name the password files when the flags are not given. */
export const PASSWORD_FILE_ENV = 'REDIS_HA_PASSWORD_FILE';
export const SENTINEL_PASSWORD_FILE_ENV = 'REDIS_HA_SENTINEL_PASSWORD_FILE';

/** util.parseArgs option specs of the connection options; every command spreads them into its own. */
export const CONNECTION_OPTIONS = {
  sentinel: { type: 'string', multiple: true },
  'master-name': { type: 'string' },
  user: { type: 'string' },
  'password-file': { type: 'string' },
  'sentinel-user': { type: 'string' },
  'sentinel-password-file': { type: 'string' },
  tls: { type: 'boolean' },
  cacert: { type: 'string' },
  map: { type: 'string', multiple: true },
  'connect-timeout': { type: 'string' },
} as const;

/** The usage text of the connection options, for each command's help (`user` is that command's default). */
export function connectionUsage(user: string): string {
  return `connection options:
      --sentinel HOST:PORT        a Sentinel to ask, repeatable (default: ${DEFAULT_SENTINEL}); the others
                                  are found through it
      --master-name NAME          the master the Sentinels monitor (default: ${DEFAULT_MASTER_NAME})
      --user NAME                 the ACL user on Redis (default: ${user})
      --password-file FILE        file holding that user's password (default: the file \$${PASSWORD_FILE_ENV} names)
      --sentinel-user NAME        the ACL user on the Sentinels (default: --user)
      --sentinel-password-file FILE  its password (default: \$${SENTINEL_PASSWORD_FILE_ENV}, else --password-file)
      --tls                       connect with TLS
      --cacert FILE               CA certificate (PEM) to check the servers against (implies --tls)
      --map FROM=TO               connect to TO whenever the tool would connect to FROM, both HOST:PORT,
                                  repeatable; covers the addresses the Sentinels report (port-forward)
      --connect-timeout DUR       per connection attempt (default: ${DEFAULT_CONNECT_TIMEOUT})`;
}

/** What connectionOptions() needs from the command: its default user. */
export interface ConnectionDefaults {
  /** The ACL user the command logs in as unless --user says otherwise (status/failover: operations; drill/migrate: app). */
  readonly user: string;
  readonly sentinel?: string;
  readonly masterName?: string;
  /** The environment (default process.env), for the password-file variables. */
  readonly env?: Record<string, string | undefined>;
}

export interface MapEntry {
  readonly from: Address;
  readonly to: Address;
}

export interface ConnectionOptions {
  /** The Sentinels given (seeds: the others are found through them). */
  readonly sentinels: Address[];
  readonly masterName: string;
  readonly user: string;
  readonly password: string;
  /** Where the password came from ("file /x (--password-file)"), for error messages. */
  readonly passwordSource: string;
  readonly sentinelUser: string;
  readonly sentinelPassword: string;
  readonly sentinelPasswordSource: string;
  readonly tls: boolean;
  /** The CA certificate (PEM), when --cacert was given. */
  readonly ca?: string;
  readonly map: MapEntry[];
  readonly connectTimeoutMs: number;
  /** How long one command may take before the tool gives up on that server. */
  readonly commandTimeoutMs: number;
}

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : typeof v === 'string' ? [v] : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Reads a password file: its content without the trailing newline; a CliError naming the flag and file otherwise. */
function readPassword(file: string, how: string, user: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message;
    throw new CliError(`${how} '${file}': cannot read it (${why}); it must hold the password of user '${user}'`);
  }
  const password = text.replace(/\r?\n$/, '');
  if (!password) throw new CliError(`${how} '${file}' is empty; it must hold the password of user '${user}'`);
  if (/[\r\n]/.test(password)) throw new CliError(`${how} '${file}' has more than one line; it must hold only the password of user '${user}'`);
  return password;
}

/**
 * The connection options of a command, checked: a bad value is a CliError naming the flag,
 * the value and the fix. `values` are util.parseArgs' values (with CONNECTION_OPTIONS).
 */
export function connectionOptions(values: Values, defaults: ConnectionDefaults): ConnectionOptions {
  const env = defaults.env ?? process.env;
  const sentinelArgs = strings(values.sentinel);
  const sentinels = (sentinelArgs.length ? sentinelArgs : [defaults.sentinel ?? DEFAULT_SENTINEL]).map((s) => parseAddress(s, '--sentinel'));
  const masterName = str(values['master-name']) ?? defaults.masterName ?? DEFAULT_MASTER_NAME;
  if (!/^[A-Za-z0-9._-]+$/.test(masterName)) throw new CliError(`--master-name '${masterName}' is not a Sentinel master name (letters, digits, '.', '_', '-')`);

  const userName = (flag: string, v: string | undefined, fallback: string): string => {
    const u = v ?? fallback;
    if (!/^[^\s"']+$/.test(u)) throw new CliError(`${flag} '${u}' is not an ACL user name (no spaces or quotes)`);
    return u;
  };
  const user = userName('--user', str(values.user), defaults.user);
  const sentinelUser = userName('--sentinel-user', str(values['sentinel-user']), user);

  const passwordFile = str(values['password-file']);
  let password: string;
  let passwordSource: string;
  if (passwordFile !== undefined) {
    password = readPassword(passwordFile, '--password-file', user);
    passwordSource = `--password-file ${passwordFile}`;
  } else if (env[PASSWORD_FILE_ENV]) {
    password = readPassword(env[PASSWORD_FILE_ENV]!, `$${PASSWORD_FILE_ENV}`, user);
    passwordSource = `$${PASSWORD_FILE_ENV} ${env[PASSWORD_FILE_ENV]}`;
  } else {
    throw new CliError(`no password for user '${user}': give --password-file FILE (or set $${PASSWORD_FILE_ENV} to the file), `
      + `e.g. kubectl get secret redis-auth -o jsonpath='{.data.${user}-password}' | base64 -d > FILE`);
  }

  const sentinelFile = str(values['sentinel-password-file']);
  let sentinelPassword: string;
  let sentinelPasswordSource: string;
  if (sentinelFile !== undefined) {
    sentinelPassword = readPassword(sentinelFile, '--sentinel-password-file', sentinelUser);
    sentinelPasswordSource = `--sentinel-password-file ${sentinelFile}`;
  } else if (env[SENTINEL_PASSWORD_FILE_ENV]) {
    sentinelPassword = readPassword(env[SENTINEL_PASSWORD_FILE_ENV]!, `$${SENTINEL_PASSWORD_FILE_ENV}`, sentinelUser);
    sentinelPasswordSource = `$${SENTINEL_PASSWORD_FILE_ENV} ${env[SENTINEL_PASSWORD_FILE_ENV]}`;
  } else if (sentinelUser === user) {
    sentinelPassword = password;
    sentinelPasswordSource = passwordSource;
  } else {
    throw new CliError(`no password for Sentinel user '${sentinelUser}': give --sentinel-password-file FILE (--password-file is user '${user}'s)`);
  }

  const cacert = str(values.cacert);
  let ca: string | undefined;
  if (cacert !== undefined) {
    try {
      ca = readFileSync(cacert, 'utf8');
    } catch (e) {
      throw new CliError(`--cacert '${cacert}': cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give the CA certificate (PEM) the servers' certificates are signed by`);
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new CliError(`--cacert '${cacert}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }

  const map = strings(values.map).map((m): MapEntry => {
    const [from, to, ...rest] = m.split('=');
    const a = from !== undefined ? parseHostPort(from) : undefined;
    const b = to !== undefined ? parseHostPort(to) : undefined;
    if (rest.length || !a || !b) {
      throw new CliError(`--map '${m}' is not FROM=TO with both HOST:PORT (for example --map redis-master-0.redis-master.redis.svc.cluster.local:6379=127.0.0.1:6380)`);
    }
    return { from: a, to: b };
  });
  const seen = new Map<string, string>();
  for (const e of map) {
    const k = addressKey(e.from);
    const before = seen.get(k);
    if (before !== undefined && before !== addressKey(e.to)) throw new CliError(`--map maps ${formatAddress(e.from)} twice (to ${before} and ${formatAddress(e.to)}); give one`);
    seen.set(k, addressKey(e.to));
  }

  const timeoutText = str(values['connect-timeout']) ?? DEFAULT_CONNECT_TIMEOUT;
  const connectTimeoutMs = durationOption(timeoutText, '--connect-timeout');
  return {
    sentinels, masterName, user, password, passwordSource, sentinelUser, sentinelPassword, sentinelPasswordSource,
    tls: values.tls === true || ca !== undefined, ca, map, connectTimeoutMs,
    commandTimeoutMs: Math.max(5000, connectTimeoutMs),
  };
}

/** The words of a command as the ACL names it: `sentinel|ckquorum`, `client|pause`, `info`. */
function commandName(args: readonly (string | number)[]): string {
  const [name, sub] = args.map((a) => String(a).toLowerCase());
  return ['sentinel', 'client', 'config', 'acl'].includes(name) && sub ? `${name}|${sub}` : name;
}

/** Why a connection failed, in a few words. */
function reason(err: unknown, timeoutMs: number): string {
  const e = err as NodeJS.ErrnoException & { message?: string };
  const code = e?.code ?? '';
  const text = e?.message ?? String(err);
  if (code === 'ECONNREFUSED' || /ECONNREFUSED/.test(text)) return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || /ENOTFOUND|EAI_AGAIN/.test(text)) return 'name not found';
  if (code === 'ETIMEDOUT' || /ETIMEDOUT|timed out/i.test(text)) return `no answer within ${timeoutMs} ms`;
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'host unreachable';
  if (code === 'ECONNRESET' || /ECONNRESET|socket hang up/.test(text)) return 'connection reset (TLS on one side only? see --tls)';
  if (/certificate|self.signed|SSL|TLS|wrong version number/i.test(text)) return `TLS: ${text.split('\n')[0]}`;
  return text.split('\n')[0];
}

type Kind = 'sentinel' | 'redis';

/**
 * The connections of one command run. Clients are made on demand and kept per address;
 * close() ends them all.
 */
export class HaConnection {
  private readonly clients = new Map<string, Promise<Redis>>();
  private readonly mapping = new Map<string, Address>();

  constructor(readonly opts: ConnectionOptions) {
    for (const e of opts.map) this.mapping.set(addressKey(e.from), e.to);
  }

  /** Where the tool really connects for `addr` (after --map). */
  target(addr: Address): Address {
    return this.mapping.get(addressKey(addr)) ?? addr;
  }

  /** `addr` for messages: "host:port", plus "(via 127.0.0.1:6380)" when mapped. */
  describe(addr: Address): string {
    const t = this.target(addr);
    return addressKey(t) === addressKey(addr) ? formatAddress(addr) : `${formatAddress(addr)} (via ${formatAddress(t)})`;
  }

  /** An authenticated client of the Sentinel at `addr` (as --sentinel-user); a CliError when it cannot connect or log in. */
  sentinel(addr: Address): Promise<Redis> {
    return this.client('sentinel', addr);
  }

  /** An authenticated client of the Redis server at `addr` (as --user); a CliError when it cannot connect or log in. */
  redis(addr: Address): Promise<Redis> {
    return this.client('redis', addr);
  }

  /** Runs one command on the Sentinel at `addr`; NOPERM and errors become CliErrors naming the command. */
  async sentinelCommand<T = unknown>(addr: Address, ...args: (string | number)[]): Promise<T> {
    return this.run<T>('sentinel', addr, args);
  }

  /** Runs one command on the Redis server at `addr` (see sentinelCommand). */
  async redisCommand<T = unknown>(addr: Address, ...args: (string | number)[]): Promise<T> {
    return this.run<T>('redis', addr, args);
  }

  private async run<T>(kind: Kind, addr: Address, args: (string | number)[]): Promise<T> {
    const client = await this.client(kind, addr);
    try {
      return (await client.call(String(args[0]), ...args.slice(1).map(String))) as T;
    } catch (err) {
      const text = (err as Error).message ?? String(err);
      const user = kind === 'sentinel' ? this.opts.sentinelUser : this.opts.user;
      const what = `${args.slice(0, commandName(args).includes('|') ? 2 : 1).join(' ').toUpperCase()}`;
      if (/^NOPERM/.test(text)) {
        throw new CliError(`user '${user}' may not run ${what} on ${kind === 'sentinel' ? 'Sentinel' : 'Redis'} ${this.describe(addr)} (NOPERM): `
          + `give a user that may (--${kind === 'sentinel' ? 'sentinel-' : ''}user), or see the ACL rules in the README's Security section`);
      }
      if (/Command timed out/i.test(text)) throw new CliError(`${kind === 'sentinel' ? 'Sentinel' : 'Redis'} ${this.describe(addr)} did not answer ${what} within ${this.opts.commandTimeoutMs} ms`);
      if (/Connection is closed|ECONNRESET|Stream isn't writeable|enableOfflineQueue/i.test(text)) {
        this.forget(kind, addr);
        throw new CliError(`lost the connection to ${kind === 'sentinel' ? 'Sentinel' : 'Redis'} ${this.describe(addr)} during ${what}`);
      }
      throw new CliError(`${kind === 'sentinel' ? 'Sentinel' : 'Redis'} ${this.describe(addr)} answered ${what} with: ${text.split('\n')[0]}`);
    }
  }

  private key(kind: Kind, addr: Address): string {
    return `${kind} ${addressKey(addr)}`;
  }

  /** Drops a client (it is made again on the next use), e.g. after its connection broke. */
  forget(kind: Kind, addr: Address): void {
    const k = this.key(kind, addr);
    const c = this.clients.get(k);
    this.clients.delete(k);
    c?.then((r) => r.disconnect(), () => undefined);
  }

  private client(kind: Kind, addr: Address): Promise<Redis> {
    const k = this.key(kind, addr);
    let c = this.clients.get(k);
    if (!c) {
      c = this.open(kind, addr);
      // A failed attempt is not kept: the next use tries again.
      c.catch(() => { if (this.clients.get(k) === c) this.clients.delete(k); });
      this.clients.set(k, c);
    }
    return c;
  }

  /** TLS server name: the name the tool was given or told, or (for a Sentinel known by IP) the Service name it was given. */
  private servername(kind: Kind, addr: Address): string | undefined {
    if (!isIP(addr.host)) return addr.host.replace(/\.$/, '');
    if (kind === 'sentinel') return this.opts.sentinels.map((s) => s.host).find((h) => !isIP(h));
    return undefined;
  }

  private async open(kind: Kind, addr: Address): Promise<Redis> {
    const to = this.target(addr);
    const label = `${kind === 'sentinel' ? 'Sentinel' : 'Redis'} ${this.describe(addr)}`;
    let lastError: unknown;
    const client = new Redis({
      host: to.host,
      port: to.port,
      lazyConnect: true,
      enableReadyCheck: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      reconnectOnError: () => false,
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
      connectTimeout: this.opts.connectTimeoutMs,
      commandTimeout: this.opts.commandTimeoutMs,
      ...(this.opts.tls ? { tls: { ca: this.opts.ca, servername: this.servername(kind, addr) } } : {}),
    });
    client.on('error', (err) => { lastError = err; });
    try {
      await client.connect();
    } catch (err) {
      client.disconnect();
      const why = reason(lastError ?? err, this.opts.connectTimeoutMs);
      throw new CliError(`cannot reach ${label}: ${why}`);
    }
    const user = kind === 'sentinel' ? this.opts.sentinelUser : this.opts.user;
    const password = kind === 'sentinel' ? this.opts.sentinelPassword : this.opts.password;
    const source = kind === 'sentinel' ? this.opts.sentinelPasswordSource : this.opts.passwordSource;
    try {
      await client.call('AUTH', user, password);
    } catch (err) {
      client.disconnect();
      const text = (err as Error).message ?? String(err);
      if (/^WRONGPASS|invalid username-password/i.test(text)) {
        throw new CliError(`${label} refused user '${user}' with the password from ${source} (WRONGPASS: wrong password, or no such user)`);
      }
      if (/Command timed out/i.test(text)) throw new CliError(`${label} accepted the connection but did not answer AUTH within ${this.opts.commandTimeoutMs} ms`);
      throw new CliError(`${label} refused AUTH as user '${user}': ${reason(lastError ?? err, this.opts.connectTimeoutMs)}`);
    }
    return client;
  }

  /**
   * Every Sentinel: the other Sentinels each given one knows (SENTINEL SENTINELS), and the
   * given ones themselves when none knows another (a lone Sentinel, or a seed that does not
   * answer). A seed that is a Service name stands for one of the Sentinels it lists, so it
   * is not counted beside them. Also returns why each seed that failed did.
   */
  async discoverSentinels(): Promise<{ sentinels: Address[]; errors: Map<string, string> }> {
    const found = new Map<string, Address>();
    const errors = new Map<string, string>();
    const ask = async (addr: Address): Promise<Address[] | undefined> => {
      try {
        const peers = await this.sentinelCommand<string[][]>(addr, 'SENTINEL', 'SENTINELS', this.opts.masterName);
        return peers.map(flat).map((p) => ({ host: p.ip, port: Number(p.port) }));
      } catch (err) {
        if (err instanceof CliError && /No such master/i.test(err.message)) throw await this.unknownMasterError([addr]);
        errors.set(addressKey(addr), (err as Error).message);
        return undefined;
      }
    };
    const answered: Address[] = [];
    for (const [seed, peers] of await Promise.all(this.opts.sentinels.map(async (s) => [s, await ask(s)] as const))) {
      if (!peers) continue;
      answered.push(seed);
      for (const p of peers) found.set(addressKey(p), p);
    }
    if (!found.size) return { sentinels: answered.length ? answered : [...this.opts.sentinels], errors };
    // A second round through one Sentinel found (the first that answers): it lists the seed
    // under the seed's own address. When none answers, the seeds that did stand for themselves.
    let confirmed = false;
    for (const a of [...found.values()]) {
      if (this.opts.sentinels.some((s) => addressKey(s) === addressKey(a))) continue;
      const peers = await ask(a);
      if (!peers) continue;
      for (const p of peers) found.set(addressKey(p), p);
      confirmed = true;
      break;
    }
    if (!confirmed) for (const s of answered) found.set(addressKey(s), s);
    return { sentinels: [...found.values()], errors };
  }

  /** The CliError for a master name the Sentinels do not monitor (with the names they do, if this user may list them). */
  async unknownMasterError(sentinels: Address[]): Promise<CliError> {
    for (const s of sentinels) {
      try {
        const masters = await this.sentinelCommand<string[][]>(s, 'SENTINEL', 'MASTERS');
        const names = masters.map(flat).map((m) => m.name);
        return new CliError(`the Sentinels monitor no master named '${this.opts.masterName}'; they monitor: ${names.join(', ') || 'nothing'} (--master-name)`);
      } catch {
        // not allowed to list, or gone: say less
      }
    }
    return new CliError(`the Sentinels monitor no master named '${this.opts.masterName}' (check --master-name; the chart's default is ${DEFAULT_MASTER_NAME})`);
  }


  /**
   * The master's address as the Sentinels name it (GET-MASTER-ADDR-BY-NAME): every Sentinel
   * is asked, and a majority of all of them must name the same address. A CliError says
   * which Sentinels could not be asked and what the others said.
   */
  async masterAddress(): Promise<Address> {
    const { sentinels, errors } = await this.discoverSentinels();
    const answers = await Promise.all(sentinels.map(async (s) => {
      try {
        const reply = await this.sentinelCommand<[string, string] | null>(s, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.opts.masterName);
        return { sentinel: s, address: reply ? { host: reply[0], port: Number(reply[1]) } : null };
      } catch (err) {
        return { sentinel: s, error: (err as Error).message };
      }
    }));
    const answered = answers.filter((a) => a.error === undefined);
    const failed = [...answers.filter((a) => a.error !== undefined).map((a) => a.error!), ...errors.values()];
    const failedText = [...new Set(failed)].join('; ');
    if (!answered.length) {
      const tried = [...new Set([...this.opts.sentinels, ...sentinels].map((s) => this.describe(s)))].join(', ');
      throw new CliError(`no Sentinel answered (tried ${tried}): ${failedText}; give reachable Sentinels with --sentinel HOST:PORT, or --map FROM=TO for addresses only reachable through a port-forward`);
    }
    if (answered.every((a) => a.address === null)) throw await this.unknownMasterError(answered.map((a) => a.sentinel));
    const votes = new Map<string, { address: Address; count: number }>();
    for (const a of answered) {
      if (!a.address) continue;
      const k = addressKey(a.address);
      votes.set(k, { address: a.address, count: (votes.get(k)?.count ?? 0) + 1 });
    }
    const majority = Math.floor(sentinels.length / 2) + 1;
    const best = [...votes.values()].sort((x, y) => y.count - x.count)[0];
    if (best && best.count >= majority) return best.address;
    const said = [...votes.values()].map((v) => `${v.count} name ${formatAddress(v.address)}`).join(', ');
    throw new CliError(`no majority of the ${sentinels.length} Sentinels names one master (${said}${failed.length ? `; ${failed.length} did not answer: ${failedText}` : ''}); `
      + 'if some Sentinels are only reachable through a port-forward, map them with --map');
  }

  /** Ends every connection. */
  async close(): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map((c) => c.then((r) => { r.disconnect(); }, () => undefined)));
  }
}

/** A Sentinel reply of alternating field names and values -> an object. */
export function flat(reply: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  const a = reply as string[];
  for (let i = 0; i + 1 < a.length; i += 2) out[String(a[i])] = String(a[i + 1]);
  return out;
}
