// The ACL rules (lib/pod/acl.ts): the operations user may run exactly the commands the
// pod scripts send (read from the scripts), and what each user may do is checked against
// real servers of this machine's Redis (ACL DRYRUN over every command they know).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChildProcess, execFileSync, spawn } from 'child_process';
import Redis from 'ioredis';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'fs';
import { AddressInfo, createServer } from 'net';
import { tmpdir } from 'os';
import { join } from 'path';
import {
  ACL_USERS, METRICS_EXPORTER_FLAGS, METRICS_REDIS_COMMANDS, METRICS_SENTINEL_COMMANDS, OPERATIONS_CLI_SENTINEL_COMMANDS, OPERATIONS_REDIS_COMMANDS, OPERATIONS_SENTINEL_COMMANDS, PROXY_REDIS_COMMANDS, PROXY_SENTINEL_COMMANDS, REDIS_ACL, SENTINEL_ACL, redisAclUsersFile, sentinelAclUsersFile,
} from '../../lib/pod/acl';
import { synthBase, synthEnvironment } from '../../lib/internal';
import { itWith } from '../prerequisites';
import { find } from './helpers';
import { ENVIRONMENTS } from '../../main';
import { SCRIPTS_DIR, scriptSource, stripShell } from './support/shell-source';

/** Commands with subcommands, whose ACL name is `command|subcommand`. */
const CONTAINERS = new Set(['acl', 'client', 'config', 'sentinel', 'command', 'script', 'object', 'memory', 'xinfo', 'cluster', 'function', 'debug']);

/** ACL name of the command in WORDS (upper-case words as the scripts write them). */
function aclName(words: string[]): string {
  const cmd = words[0].toLowerCase();
  return CONTAINERS.has(cmd) && words[1] ? `${cmd}|${words[1].toLowerCase()}` : cmd;
}

/**
 * The commands the scripts send, by server: `redis_cmd HOST CMD ...` and `sentinel_cmd HOST
 * CMD ...`, and `printf '<commands>' ... | redis_cmd HOST` (commands on stdin).
 */
function commandsSent(): { redis: Map<string, string[]>; sentinel: Map<string, string[]> } {
  const sent = { redis: new Map<string, string[]>(), sentinel: new Map<string, string[]>() };
  const add = (server: 'redis' | 'sentinel', name: string, where: string) => sent[server].set(name, [...(sent[server].get(name) ?? []), where]);
  for (const script of readdirSync(SCRIPTS_DIR).filter((f) => f.endsWith('.sh'))) {
    const code = stripShell(scriptSource(script), false).replace(/\\\n\s*/g, ' ');
    for (const m of code.matchAll(/\b(redis_cmd|sentinel_cmd) ("[^"]*"|[^\s|;&)]+)((?: [A-Z][A-Z-]*)*)/g)) {
      const server = m[1] === 'redis_cmd' ? 'redis' : 'sentinel';
      const words = m[3].trim().split(' ').filter(Boolean);
      if (words.length) {
        add(server, aclName(words), `${script}: ${m[0]}`);
        continue;
      }
      // No command: the commands come on stdin from the printf just before.
      const before = code.slice(0, m.index);
      const printf = /printf '([^']*)'[^\n|]*\|\s*$/.exec(before);
      if (!printf) throw new Error(`${script}: ${m[0]} sends no command and reads none from a printf`);
      for (const line of printf[1].split('\\n').filter(Boolean)) add(server, aclName(line.split(' ')), `${script}: printf ${line}`);
    }
  }
  return sent;
}

describe('the operations user may run exactly what the scripts send', () => {
  const sent = commandsSent();

  it('the scripts are read (the extraction is not vacuous)', () => {
    expect([...sent.redis.keys()]).toEqual(expect.arrayContaining(['ping', 'info', 'config|set', 'replicaof', 'client|unpause', 'acl|setuser']));
    expect([...sent.sentinel.keys()]).toEqual(expect.arrayContaining(['sentinel|master', 'sentinel|failover', 'sentinel|debug']));
    // CLIENT UNPAUSE is sent only on stdin (the handover's last three commands, one connection).
    expect(sent.redis.get('client|unpause')!.some((w) => w.includes('printf'))).toBe(true);
  });

  it('on Redis: every command a script sends is granted, and nothing else', () => {
    expect([...sent.redis.keys()].sort()).toEqual([...OPERATIONS_REDIS_COMMANDS].sort());
    expect(REDIS_ACL.operations).toBe(`-@all ${OPERATIONS_REDIS_COMMANDS.map((c) => `+${c}`).join(' ')}`);
  });

  it('on the Sentinels: every command a script sends is granted, and nothing else', () => {
    expect([...sent.sentinel.keys()].sort()).toEqual([...OPERATIONS_SENTINEL_COMMANDS].sort());
    // and what the operator's command line adds (lib/ops: redis-ha status, failover)
    expect(SENTINEL_ACL.operations).toBe(`-@all ${[...OPERATIONS_SENTINEL_COMMANDS, ...OPERATIONS_CLI_SENTINEL_COMMANDS].map((c) => `+${c}`).join(' ')}`);
  });
});

describe('the rules reach the pods', () => {
  const users = (file: string) => file.trim().split('\n').map((l) => l.split(' ')[0]);
  const keys = (objects: ReturnType<typeof synthBase>, kind: string, name: string, container: string) =>
    find(objects, kind, name).spec.template.spec.containers.find((c: { name: string }) => c.name === container)
      .env.find((e: { name: string }) => e.name === 'AUTH_KEYS').value;

  it('the ConfigMaps carry acl-users beside redis.conf and sentinel.conf, one line per user; no metrics user without the exporter', () => {
    const objects = synthBase();
    expect(find(objects, 'ConfigMap', 'redis-config').data['acl-users']).toBe(redisAclUsersFile(false, true));
    expect(find(objects, 'ConfigMap', 'redis-sentinel-config').data['acl-users']).toBe(sentinelAclUsersFile(false, true));
    expect(users(redisAclUsersFile(false, true))).toEqual(ACL_USERS.filter((u) => u !== 'metrics'));
    expect(users(sentinelAclUsersFile(false, true))).toEqual(['app', 'sentinel', 'operations', 'proxy']);
    // So a Secret without metrics-password is complete: the start scripts ask only for these.
    expect(keys(objects, 'StatefulSet', 'redis-master', 'redis')).toBe('app-password replication-password sentinel-password operations-password proxy-password');
    expect(keys(objects, 'Deployment', 'redis-sentinel', 'sentinel')).toBe('app-password replication-password sentinel-password operations-password proxy-password');
  });

  it('without the proxy tier there is no proxy user and no proxy-password key', () => {
    const objects = synthEnvironment({ ...ENVIRONMENTS.find((e) => e.name === 'staging')!, redis: { ...ENVIRONMENTS.find((e) => e.name === 'staging')!.redis, proxy: false } });
    expect(users(find(objects, 'ConfigMap', 'redis-config').data['acl-users'])).toEqual(['app', 'replication', 'sentinel', 'operations']);
    expect(users(find(objects, 'ConfigMap', 'redis-sentinel-config').data['acl-users'])).toEqual(['app', 'sentinel', 'operations']);
    expect(keys(objects, 'StatefulSet', 'redis-master', 'redis')).toBe('app-password replication-password sentinel-password operations-password');
    expect(objects.filter((o) => /proxy|redis-write|redis-read/.test(o.metadata?.name ?? ''))).toEqual([]);
  });

  it('with metrics on (production) the metrics user and its Secret key are added', () => {
    const objects = synthEnvironment(ENVIRONMENTS.find((e) => e.name === 'production')!);
    expect(find(objects, 'ConfigMap', 'redis-config').data['acl-users']).toBe(redisAclUsersFile(true, true));
    expect(find(objects, 'ConfigMap', 'redis-sentinel-config').data['acl-users']).toBe(sentinelAclUsersFile(true, true));
    expect(users(redisAclUsersFile(true, true))).toEqual([...ACL_USERS]);
    expect(users(sentinelAclUsersFile(true, true))).toEqual(['app', 'sentinel', 'operations', 'metrics', 'proxy']);
    expect(keys(objects, 'StatefulSet', 'redis-slave', 'redis')).toContain('metrics-password');
    expect(keys(objects, 'Deployment', 'redis-sentinel', 'sentinel')).toContain('metrics-password');
  });
});

/** A loopback port nothing listens on now (the kernel's pick), for a process started next. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/**
 * A throwaway server of this machine's Redis on loopback with the rendered users (and a
 * default user that may do anything, to ask ACL DRYRUN): which commands a user may run.
 */
class Server {
  private proc?: ChildProcess;
  private readonly dir = mkdtempSync(join(tmpdir(), 'acl-'));
  /** A port the kernel picked (a random one may be taken), set by start(). */
  port = 0;
  constructor(private readonly kind: 'redis' | 'sentinel') {}

  async start(rules: Partial<Record<string, string>>): Promise<void> {
    this.port = await freePort();
    const users = Object.entries(rules).map(([user, r]) => `user ${user} on nopass ${r}`);
    const conf = this.kind === 'redis'
      ? ['bind 127.0.0.1', `port ${this.port}`, 'save ""', `dir ${this.dir}`]
      : ['bind 127.0.0.1', `port ${this.port}`, `dir ${this.dir}`, 'sentinel monitor mymaster 127.0.0.1 1 1'];
    writeFileSync(join(this.dir, 'server.conf'), [...conf, 'user default on nopass ~* &* +@all', ...users, ''].join('\n'));
    this.proc = spawn(this.kind === 'redis' ? 'redis-server' : 'redis-sentinel', [join(this.dir, 'server.conf')], { stdio: 'ignore' });
    // Up to 20 s: the unit suite runs many files at once on two cores.
    for (let i = 0; i < 400; i++) {
      if (this.cli('PING') === 'PONG') return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${this.kind} on port ${this.port} did not start`);
  }

  cli(...args: string[]): string {
    try {
      return execFileSync('redis-cli', ['--raw', '-p', String(this.port), ...args], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '';
    }
  }

  /** Whether USER may run each command (with enough dummy arguments to pass its arity). */
  async allowedAll(user: string, commands: string[][]): Promise<boolean[]> {
    const client = new Redis({ port: this.port, host: '127.0.0.1', lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0 });
    await client.connect();
    try {
      return await Promise.all(commands.map(async (words) => {
        for (let extra = 0; extra <= 14; extra++) {
          const reply = await client.call('ACL', 'DRYRUN', user, ...words, ...Array(extra).fill('x')).catch((e: Error) => e.message);
          if (reply === 'OK') return true;
          if (/no permissions/.test(String(reply))) return false;
        }
        throw new Error(`ACL DRYRUN ${user} ${words.join(' ')}: no verdict`);
      }));
    } finally {
      client.disconnect();
    }
  }

  async allowed(user: string, words: string[]): Promise<boolean> {
    return (await this.allowedAll(user, [words]))[0];
  }

  private known?: string[];

  /**
   * Every command this server knows, as its ACL name: `name`, or `name|sub` for each
   * subcommand of a command that has subcommands (COMMAND INFO lists them).
   */
  commands(): string[] {
    if (!this.known) {
      const names = this.cli('COMMAND', 'LIST').split('\n').filter((n) => n && !n.includes('|'));
      this.known = names.flatMap((n) => {
        const subs = this.cli('COMMAND', 'INFO', n).split('\n').filter((l) => l.startsWith(`${n}|`));
        return subs.length ? [...new Set(subs)] : [n];
      });
    }
    return this.known;
  }

  /** Every command and subcommand this server knows that USER may run. */
  async allowedCommands(user: string): Promise<string[]> {
    const all = this.commands();
    const verdicts = await this.allowedAll(user, all.map((n) => n.split('|')));
    return all.filter((_, i) => verdicts[i]).sort();
  }

  stop(): void {
    this.proc?.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const itWithRedis = itWith('redis-server', 'apt-get install redis-server');
const itWithExporter = itWith('prometheus-redis-exporter', 'apt-get install prometheus-redis-exporter');
/** Allowed to every user whatever the rules (flagged no-auth: how a client logs in, or out). */
const LOGIN = ['auth', 'hello', 'quit', 'reset'];
/** The same on a Sentinel, which has no QUIT or RESET command. */
const SENTINEL_LOGIN = ['auth', 'hello'];

describe('what each user may do, asked of real servers (ACL DRYRUN over every command)', () => {
  const redis = new Server('redis');
  const sentinel = new Server('sentinel');
  beforeAll(async () => {
    if (!execFileSyncOk('redis-server')) return;
    await redis.start(REDIS_ACL);
    await sentinel.start(SENTINEL_ACL);
  }, 60_000);
  afterAll(() => {
    redis.stop();
    sentinel.stop();
  });

  itWithRedis('operations: on Redis and on the Sentinels, exactly the commands the scripts send', async () => {
    expect(await redis.allowedCommands('operations')).toEqual([...LOGIN, ...OPERATIONS_REDIS_COMMANDS].sort());
    expect(await sentinel.allowedCommands('operations')).toEqual([...SENTINEL_LOGIN, ...OPERATIONS_SENTINEL_COMMANDS, ...OPERATIONS_CLI_SENTINEL_COMMANDS].sort());
  }, 60_000);

  itWithRedis('replication: only the replication handshake on Redis', async () => {
    expect(await redis.allowedCommands('replication')).toEqual([...LOGIN, 'ping', 'psync', 'replconf', 'sync'].sort());
  }, 60_000);

  itWithRedis('sentinel: on Redis what Sentinel sends; on a Sentinel what a peer sends', async () => {
    expect(await redis.allowedCommands('sentinel')).toEqual([...LOGIN, 'client|kill', 'client|setname', 'config|rewrite', 'exec', 'info', 'multi',
      'ping', 'publish', 'role', 'script|kill', 'slaveof', 'subscribe'].sort());
    // PUBLISH only on the hello channel (the dummy channel of allowedCommands is refused).
    expect(await sentinel.allowedCommands('sentinel')).toEqual([...SENTINEL_LOGIN, 'client|setname', 'ping', 'sentinel|is-master-down-by-addr'].sort());
    expect(await sentinel.allowed('sentinel', ['PUBLISH', '__sentinel__:hello', 'x'])).toBe(true);
  }, 60_000);

  itWithRedis('metrics: INFO and read-only views, on Redis and on the Sentinels; no key, no CONFIG, no SLOWLOG GET', async () => {
    expect(await redis.allowedCommands('metrics')).toEqual([...LOGIN, ...METRICS_REDIS_COMMANDS].sort());
    expect(await sentinel.allowedCommands('metrics')).toEqual([...SENTINEL_LOGIN, ...METRICS_SENTINEL_COMMANDS].sort());
    for (const words of [['GET', 'k'], ['CONFIG', 'GET', '*'], ['SLOWLOG', 'GET', '1'], ['CLIENT', 'LIST'], ['SUBSCRIBE', 'x']]) {
      expect(await redis.allowed('metrics', words), words.join(' ')).toBe(false);
    }
    for (const words of [['SENTINEL', 'SET', 'mymaster', 'quorum', '1'], ['SENTINEL', 'RESET', '*'], ['SENTINEL', 'FAILOVER', 'mymaster']]) {
      expect(await sentinel.allowed('metrics', words), words.join(' ')).toBe(false);
    }
  }, 60_000);

  itWithRedis('proxy: ROLE on Redis; MYID, MASTER, GET-MASTER-ADDR-BY-NAME and SENTINELS on the Sentinels; no key, nothing that changes state', async () => {
    expect(await redis.allowedCommands('proxy')).toEqual([...LOGIN, ...PROXY_REDIS_COMMANDS].sort());
    expect(await sentinel.allowedCommands('proxy')).toEqual([...SENTINEL_LOGIN, ...PROXY_SENTINEL_COMMANDS].sort());
    for (const words of [['GET', 'k'], ['SET', 'k', 'v'], ['INFO'], ['CONFIG', 'GET', '*'], ['REPLICAOF', 'NO', 'ONE'], ['CLIENT', 'KILL', 'TYPE', 'normal']]) {
      expect(await redis.allowed('proxy', words), words.join(' ')).toBe(false);
    }
    for (const words of [['SENTINEL', 'SET', 'mymaster', 'quorum', '1'], ['SENTINEL', 'FAILOVER', 'mymaster'], ['SENTINEL', 'RESET', '*'], ['PUBLISH', '__sentinel__:hello', 'x']]) {
      expect(await sentinel.allowed('proxy', words), words.join(' ')).toBe(false);
    }
  }, 60_000);

  itWithExporter('metrics: the real redis_exporter (Debian 1.45, the sidecar\'s flags) scrapes Redis and a Sentinel as metrics with nothing refused', async () => {
    for (const [server, serverPort, probe] of [[redis, redis.port, 'redis_connected_clients'], [sentinel, sentinel.port, 'redis_sentinel_masters']] as const) {
      server.cli('ACL', 'LOG', 'RESET');
      const listen = await freePort();
      const exporter = spawn('prometheus-redis-exporter', [...METRICS_EXPORTER_FLAGS, `--redis.addr=redis://127.0.0.1:${serverPort}`,
        '--redis.user=metrics', '--redis.password=any', `--web.listen-address=127.0.0.1:${listen}`], { stdio: 'ignore' });
      try {
        let text = '';
        for (let i = 0; i < 100 && !text.includes('redis_up'); i++) {
          await new Promise((r) => setTimeout(r, 100));
          text = await fetch(`http://127.0.0.1:${listen}/metrics`).then((r) => r.text()).catch(() => '');
        }
        expect(text).toMatch(/^redis_up 1$/m);
        expect(text).toContain(probe);
        // Everything it sent was granted but SLOWLOG GET, refused on purpose (its entries
        // carry keys and values): ACL LOG records every refusal (identical ones once).
        const refused = server.cli('ACL', 'LOG').split('\n').filter((_, i, a) => a[i - 1] === 'object');
        expect(refused).toEqual(server === redis ? ['slowlog|get'] : []);
      } finally {
        exporter.kill('SIGKILL');
      }
    }
  }, 60_000);

  itWithRedis('app on a Sentinel: discovery and events only, nothing that changes it', async () => {
    expect(await sentinel.allowedCommands('app')).toEqual([...SENTINEL_LOGIN, 'client|getname', 'client|setname', 'ping', 'psubscribe', 'punsubscribe',
      'sentinel|get-master-addr-by-name', 'sentinel|master', 'sentinel|masters', 'sentinel|replicas', 'sentinel|sentinels', 'sentinel|slaves',
      'subscribe', 'unsubscribe'].sort());
  }, 60_000);

  itWithRedis('app on Redis: data commands, but no administration, replication, pause or Sentinel channel', async () => {
    const may = (...words: string[]) => redis.allowed('app', words);
    for (const words of [['SET', 'k', 'v'], ['GET', 'k'], ['WAIT', '1', '0'], ['PUBLISH', 'orders', 'x'], ['PUBLISH', '_private', 'x'],
      ['PUBLISH', '__keyspace@0__:k', 'x'], ['SPUBLISH', 'orders', 'x'], ['SUBSCRIBE', '__keyspace@0__:k'], ['PSUBSCRIBE', '__keyspace@0__:*'],
      ['PSUBSCRIBE', '*'], ['SUBSCRIBE', '__sentinel__:hello'], ['EVAL', 'return 1', '0'], ['MULTI'], ['CLIENT', 'SETNAME', 'x'],
    ]) expect(await may(...words), words.join(' ')).toBe(true);
    for (const words of [['CONFIG', 'SET', 'min-replicas-to-write', '0'], ['REPLICAOF', 'NO', 'ONE'], ['SLAVEOF', 'NO', 'ONE'], ['SHUTDOWN'],
      ['FLUSHALL'], ['FLUSHDB'], ['KEYS', '*'], ['INFO'], ['ROLE'], ['CLIENT', 'PAUSE', '1000'], ['CLIENT', 'KILL', 'TYPE', 'normal'],
      ['PUBLISH', '__sentinel__:hello', 'x'], ['SPUBLISH', '__sentinel__:hello', 'x'], ['PUBLISH', '__s', 'x'], ['PSYNC', '?', '-1'], ['SYNC'], ['DEBUG', 'SLEEP', '0'],
      ['MONITOR'], ['ACL', 'SETUSER', 'x'], ['MODULE', 'LIST'], ['CONFIG', 'GET', '*'], ['FAILOVER']]) expect(await may(...words), words.join(' ')).toBe(false);
  }, 60_000);
});

function execFileSyncOk(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
