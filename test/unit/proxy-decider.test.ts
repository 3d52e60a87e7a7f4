// The proxy's Lua decider (lib/pod/proxy/redis-proxy.lua) in Debian's HAProxy, with the
// frontends of the rendered haproxy.cfg, against a real redis-server and a scripted
// Sentinel (a small RESP server the test controls, as the decider sees a Sentinel: MYID,
// MASTER, GET-MASTER-ADDR-BY-NAME, SENTINELS):
// - the write server opens only when the Sentinels name the pod and it says ROLE master, and
//   closes (sessions shut) when they name another; an older epoch never wins back;
// - a client that connects while no server is open is held and goes on to the server the
//   decider opens; one that gives up while held has its commands dropped; one held past the
//   hold is refused;
// - its connections are kept open and authenticated once, follow a rotated password
//   (falling back to the previous one while the server refuses the new), are replaced when
//   the server drops them, and the status file `redis-ha rotate-passwords` waits on names
//   the password in use by the sha256 prefix the rotation tool computes.
// The decider against real Sentinels, failovers and partitions: test/live/proxy.test.ts.
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { ChildProcess, spawn } from 'child_process';
import Redis from 'ioredis';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { AddressInfo, createServer, Server, Socket, connect } from 'net';
import { tmpdir } from 'os';
import { join } from 'path';
import { synthEnvironment } from '../../lib/internal';
import { hashPrefix } from '../../lib/ops/rotation';
import { PROXY_BACKENDS, proxyLua } from '../../lib/pod/proxy-config';
import { PROXY_TIMINGS } from '../../lib/pod/contract';
import { ENVIRONMENTS } from '../../main';
import { itWith, onPath } from '../prerequisites';
import { find } from './helpers';

const available = onPath('haproxy') && onPath('redis-server');
const itWithBoth = onPath('haproxy') ? itWith('redis-server', 'apt-get install redis-server') : itWith('haproxy', 'apt-get install haproxy');
/** The id of a CLIENT LIST line. */
const idOf = (line: string) => /(?:^| )id=(\d+) /.exec(line)?.[1];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (${String(last)})` : ''}`);
    await sleep(100);
  }
}

/** RESP encoding of a reply: strings as bulk strings, arrays nested, null as a null array. */
function resp(v: unknown): string {
  if (v === null) return '*-1\r\n';
  if (Array.isArray(v)) return `*${v.length}\r\n${v.map(resp).join('')}`;
  const str = String(v);
  return `$${Buffer.byteLength(str)}\r\n${str}\r\n`;
}

/** The commands (arrays of words) complete in `buf`, and what is left of it. */
function parseCommands(buf: string): { commands: string[][]; rest: string } {
  const commands: string[][] = [];
  let at = 0;
  for (;;) {
    const head = /^\*(\d+)\r\n/.exec(buf.slice(at));
    if (!head) break;
    let p = at + head[0].length;
    const words: string[] = [];
    let complete = true;
    for (let i = 0; i < Number(head[1]); i++) {
      const len = /^\$(\d+)\r\n/.exec(buf.slice(p));
      if (!len || buf.length < p + len[0].length + Number(len[1]) + 2) { complete = false; break; }
      p += len[0].length;
      words.push(buf.slice(p, p + Number(len[1])));
      p += Number(len[1]) + 2;
    }
    if (!complete) break;
    commands.push(words);
    at = p;
  }
  return { commands, rest: buf.slice(at) };
}

/** A Sentinel as the decider sees one, naming `host` at `epoch` (the test changes them). */
class ScriptedSentinel {
  host = 'nowhere.example';
  epoch = 0;
  /** The proxy user's passwords it accepts. */
  passwords = new Set<string>();
  private server?: Server;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((sock: Socket) => {
      let buf = '';
      sock.on('error', () => {});
      sock.on('data', (d) => {
        const { commands, rest } = parseCommands(buf + d.toString('latin1'));
        buf = rest;
        sock.write(commands.map((c) => this.answer(c)).join(''));
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as AddressInfo).port;
  }

  private answer(words: string[]): string {
    const cmd = words.map((w) => w.toUpperCase());
    if (cmd[0] === 'AUTH') return words[1] === 'proxy' && this.passwords.has(words[2]) ? '+OK\r\n' : '-WRONGPASS invalid username-password pair or user is disabled.\r\n';
    if (cmd[0] !== 'SENTINEL') return '-ERR unknown command\r\n';
    switch (cmd[1]) {
      case 'MYID': return resp('0123456789012345678901234567890123456789');
      case 'MASTER': return resp(['name', 'mymaster', 'ip', this.host, 'port', '6379', 'config-epoch', String(this.epoch)]);
      case 'GET-MASTER-ADDR-BY-NAME': return resp([this.host, '6379']);
      case 'SENTINELS': return resp([]);
      default: return '-ERR unknown subcommand\r\n';
    }
  }

  stop(): void {
    this.server?.close();
  }
}

/** A raw client of a frontend: what it receives, and whether the proxy closed it. */
function rawClient(port: number): { sock: Socket; received: () => string; closed: () => boolean } {
  const sock = connect(port, '127.0.0.1');
  let got = '';
  let isClosed = false;
  sock.on('data', (d) => { got += d; });
  sock.on('close', () => { isClosed = true; });
  sock.on('error', () => {});
  return { sock, received: () => got, closed: () => isClosed };
}

describe('the decider in HAProxy 2.6 against redis-server and a scripted Sentinel', () => {
  const dir = mkdtempSync(join(tmpdir(), 'proxy-decider-'));
  const auth = join(dir, 'auth');
  const statusFile = join(dir, 'status');
  let redisPort = 0;
  let redisProc: ChildProcess | undefined;
  let haproxy: ChildProcess | undefined;
  let admin: Redis | undefined;
  let log = '';
  let writePort = 0;
  const sentinel = new ScriptedSentinel();
  const PW1 = 'first-password';
  // 64 characters: its padding takes a second SHA-256 block.
  const PW2 = 'b'.repeat(64);
  const PW3 = 'third-password-0123456789abcdef0123456789abcdef0123456';

  const setPasswords = (current: string, previous?: string) => {
    // As the kubelet does, previous first is not guaranteed: write both, current last.
    if (previous === undefined) rmSync(join(auth, 'proxy-password-previous'), { force: true });
    else writeFileSync(join(auth, 'proxy-password-previous'), `${previous}\n`);
    writeFileSync(join(auth, 'proxy-password'), `${current}\n`);
  };
  /** The passwords the servers (redis-server and the scripted Sentinel) accept for the proxy user. */
  const accept = async (...passwords: string[]) => {
    await admin!.call('ACL', 'SETUSER', 'proxy', 'resetpass', ...passwords.map((p) => `>${p}`));
    sentinel.passwords = new Set(passwords);
  };
  const status = () => (existsSync(statusFile) ? readFileSync(statusFile, 'utf8') : '');
  const proxyClients = async () => String(await admin!.client('LIST')).split('\n').filter((l) => / user=proxy /.test(l));
  const commandCalls = async (cmd: string) => Number(/calls=(\d+)/.exec(String(await admin!.info('commandstats')).split('\n').find((l) => l.startsWith(`cmdstat_${cmd}:`)) ?? '')?.[1] ?? 0);

  beforeAll(async () => {
    if (!available) return;
    mkdirSync(auth);
    redisPort = await freePort();
    await sentinel.start();
    redisProc = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    admin = new Redis({ port: redisPort, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 100 });
    admin.on('error', () => {});
    await until('redis-server', async () => { await admin!.connect().catch(() => admin!.ping()); return (await admin!.ping()) === 'PONG' ? true : undefined; });
    await admin.call('ACL', 'SETUSER', 'proxy', 'on', '+role');
    await accept(PW1);
    setPasswords(PW1);

    const staging = ENVIRONMENTS.find((e) => e.name === 'staging')!;
    const objects = synthEnvironment(staging);
    const container = find(objects, 'Deployment', 'redis-proxy').spec.template.spec.containers[0];
    // The rendered frontends (the hold and the refusal), on loopback ports.
    const rendered: string = find(objects, 'ConfigMap', 'redis-proxy').data['haproxy.cfg'];
    writePort = await freePort();
    const frontend = (name: string, port: number) => rendered.slice(rendered.indexOf(`frontend ${name}\n`)).split('\n\n')[0]
      .replace(/bind :\d+/, `bind 127.0.0.1:${port}`);
    const env: Record<string, string> = Object.fromEntries(container.env.filter((e: any) => e.value !== undefined).map((e: any) => [e.name, String(e.value)]));
    Object.assign(env, {
      // One Sentinel (the scripted one) is a majority of one.
      SENTINEL_COUNT: '1', POD_NAMESPACE: 'redis-staging', REDIS_PORT: String(redisPort), SENTINEL_PORT: String(sentinel.port), AUTH_DIR: auth, AUTH_STATUS_FILE: statusFile,
      PATH: process.env.PATH ?? '',
    });
    writeFileSync(join(dir, 'redis-proxy.lua'), proxyLua());
    writeFileSync(join(dir, 'haproxy.cfg'), [
      'global', `  lua-load ${join(dir, 'redis-proxy.lua')}`,
      'defaults', '  mode tcp', '  timeout connect 1s', '  timeout client 10s', '  timeout server 10s',
      frontend('write', writePort), '', frontend('read', await freePort()), '',
      `backend ${PROXY_BACKENDS.write}`, `  server redis-master-0 127.0.0.1:${redisPort} disabled`,
      `backend ${PROXY_BACKENDS.read}`, `  server redis-master-0 127.0.0.1:${redisPort} disabled`,
      `backend ${PROXY_BACKENDS.sentinels}`, `  server seed 127.0.0.1:${sentinel.port}`, '',
    ].join('\n'));
    haproxy = spawn('haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    haproxy.stdout!.on('data', (d) => { log += d; });
    haproxy.stderr!.on('data', (d) => { log += d; });
  }, 30_000);

  afterAll(() => {
    haproxy?.kill('SIGKILL');
    admin?.disconnect();
    redisProc?.kill('SIGKILL');
    sentinel.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  itWithBoth('asks ROLE on one connection, authenticated once, and reports the password it uses by its sha256 prefix', async () => {
    await until(`the status file (HAProxy log: ${log})`, () => (status() === `proxy accepted - using ${hashPrefix(PW1)}\n` ? true : undefined));
    const [first] = await proxyClients();
    expect(first).toBeDefined();
    const id = idOf(first);
    const roles = await commandCalls('role');
    const auths = await commandCalls('auth');
    await until('more ROLE questions', async () => ((await commandCalls('role')) >= roles + 10 ? true : undefined));
    const clients = await proxyClients();
    expect(clients, 'one connection, the same one').toHaveLength(1);
    expect(idOf(clients[0])).toBe(id);
    expect(await commandCalls('auth'), 'no AUTH since').toBe(auths);
  }, 30_000);

  itWithBoth('a connection the server drops is replaced', async () => {
    const before = idOf((await proxyClients())[0]);
    await admin!.client('KILL', 'USER', 'proxy');
    const after = await until('a new connection', async () => {
      const c = await proxyClients();
      return c.length === 1 && idOf(c[0]) !== before ? c[0] : undefined;
    });
    expect(after).toMatch(/ cmd=(role|auth) /);
  }, 30_000);

  itWithBoth('a rotated password: moves to the new one; while the server refuses it, stays on the previous; then moves', async () => {
    // The server accepts both (auth-sync.sh during a rotation), the files change: the new one.
    await accept(PW1, PW2);
    setPasswords(PW2, PW1);
    await until('the status naming the new password', () => (status() === `proxy accepted - using ${hashPrefix(PW2)}\n` ? true : undefined));
    expect(await proxyClients()).toHaveLength(1);

    // The next rotation reaches this pod's files before the server's: PW3 is refused, PW2
    // (now previous) is still accepted.
    await accept(PW2);
    setPasswords(PW3, PW2);
    const roles = await commandCalls('role');
    await until('ROLE still answered', async () => ((await commandCalls('role')) >= roles + 5 ? true : undefined));
    expect(status()).toBe(`proxy accepted - using ${hashPrefix(PW2)}\n`);

    await accept(PW2, PW3);
    await until('the status naming the newest password', () => (status() === `proxy accepted - using ${hashPrefix(PW3)}\n` ? true : undefined));
    // The old password gone from the server: nothing changes for the proxy.
    await accept(PW3);
    setPasswords(PW3);
    const kept = idOf((await proxyClients())[0]);
    const later = await commandCalls('role');
    await until('more ROLE questions', async () => ((await commandCalls('role')) >= later + 5 ? true : undefined));
    expect(idOf((await proxyClients())[0])).toBe(kept);
    expect(status()).toBe(`proxy accepted - using ${hashPrefix(PW3)}\n`);
  }, 60_000);

  itWithBoth('writes open only on the pod the Sentinels name that says ROLE master; a held client goes on to it; another name closes it and shuts its sessions', async () => {
    await until(`writes closed (HAProxy log: ${log})`, () => (/writes closed: the Sentinels name nowhere\.example \(epoch 0\), which is no server of this proxy/.test(log) ? true : undefined));
    // Connects while no server is open: held, not refused; its SET runs once the pod is named.
    const held = rawClient(writePort);
    held.sock.write('SET held 1\r\n');
    await sleep(300);
    expect(held.closed()).toBe(false);
    expect(held.received()).toBe('');
    sentinel.host = 'redis-master-0.redis-master.redis-staging.svc.cluster.local';
    sentinel.epoch = 1;
    await until('the held SET answered', () => (held.received() === '+OK\r\n' ? true : undefined));
    expect(log).toMatch(/redis_write: open redis-master-0 because 1 of 1 Sentinels answered, epoch 1 names redis-master-0 and it says ROLE master/);
    expect(await admin!.get('held')).toBe('1');

    // A newer configuration names another node: closed, and the open session is shut.
    sentinel.host = 'redis-slave-0.redis-slave.redis-staging.svc.cluster.local';
    sentinel.epoch = 2;
    await until('the session shut', () => (held.closed() ? true : undefined));
    expect(log).toMatch(/redis_write: closed redis-master-0 and shut its sessions because the Sentinels name redis-slave-0\.redis-slave\.redis-staging\.svc\.cluster\.local \(epoch 2\), which is no server of this proxy/);
    // An older epoch naming the pod again does not win back.
    sentinel.host = 'redis-master-0.redis-master.redis-staging.svc.cluster.local';
    sentinel.epoch = 1;
    const probe = rawClient(writePort);
    probe.sock.write('PING\r\n');
    await until('the probe refused after the hold', () => (probe.closed() ? true : undefined), PROXY_TIMINGS.holdMs + 10_000);
    expect(probe.received(), 'no server answered').toBe('');
  }, 60_000);

  itWithBoth('a client that gives up while held has its commands dropped', async () => {
    sentinel.host = 'nowhere.example';
    sentinel.epoch = 3;
    await until('writes closed', () => (/epoch 3\), which is no server of this proxy/.test(log) ? true : undefined));
    const quitter = rawClient(writePort);
    quitter.sock.write('SET gave-up 1\r\n');
    await sleep(200);
    quitter.sock.end();
    await until('the quitter closed', () => (quitter.closed() ? true : undefined));
    sentinel.host = 'redis-master-0.redis-master.redis-staging.svc.cluster.local';
    sentinel.epoch = 4;
    const after = rawClient(writePort);
    after.sock.write('SET after 1\r\n');
    await until('the next client answered', () => (after.received() === '+OK\r\n' ? true : undefined));
    after.sock.destroy();
    expect(await admin!.get('gave-up')).toBeNull();
    expect(await admin!.get('after')).toBe('1');
  }, 60_000);
});
