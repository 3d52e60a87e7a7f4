// The proxy's Lua decider (lib/pod/proxy/redis-proxy.lua) in Debian's HAProxy against a
// real redis-server: its connections are kept open and authenticated once, follow a
// rotated password (falling back to the previous one while the server refuses the new),
// are replaced when the server drops them, and the status file `redis-ha rotate-passwords`
// waits on names the password in use by the same sha256 prefix the rotation tool computes.
// (Which server the decider opens is proven live, test/live/proxy.test.ts: it needs the
// Sentinels to name pods by their DNS names.)
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { ChildProcess, spawn } from 'child_process';
import Redis from 'ioredis';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { AddressInfo, createServer } from 'net';
import { tmpdir } from 'os';
import { join } from 'path';
import { synthEnvironment } from '../../lib/internal';
import { hashPrefix } from '../../lib/ops/rotation';
import { PROXY_BACKENDS, proxyLua } from '../../lib/pod/proxy-config';
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

describe('the decider\'s connections (HAProxy 2.6 + redis-server)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'proxy-decider-'));
  const auth = join(dir, 'auth');
  const statusFile = join(dir, 'status');
  let redisPort = 0;
  let redisProc: ChildProcess | undefined;
  let haproxy: ChildProcess | undefined;
  let admin: Redis | undefined;
  let log = '';
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
  const status = () => (existsSync(statusFile) ? readFileSync(statusFile, 'utf8') : '');
  const proxyClients = async () => String(await admin!.client('LIST')).split('\n').filter((l) => / user=proxy /.test(l));
  const commandCalls = async (cmd: string) => Number(/calls=(\d+)/.exec(String(await admin!.info('commandstats')).split('\n').find((l) => l.startsWith(`cmdstat_${cmd}:`)) ?? '')?.[1] ?? 0);

  beforeAll(async () => {
    if (!available) return;
    mkdirSync(auth);
    redisPort = await freePort();
    const sentinelPort = await freePort(); // nothing listens: the Sentinels' side stays closed
    redisProc = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    admin = new Redis({ port: redisPort, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 100 });
    await until('redis-server', async () => { await admin!.connect().catch(() => admin!.ping()); return (await admin!.ping()) === 'PONG' ? true : undefined; });
    await admin.call('ACL', 'SETUSER', 'proxy', 'on', `>${PW1}`, '+role');
    setPasswords(PW1);

    const staging = ENVIRONMENTS.find((e) => e.name === 'staging')!;
    const container = find(synthEnvironment(staging), 'Deployment', 'redis-proxy').spec.template.spec.containers[0];
    const env: Record<string, string> = Object.fromEntries(container.env.filter((e: any) => e.value !== undefined).map((e: any) => [e.name, String(e.value)]));
    Object.assign(env, {
      POD_NAMESPACE: 'redis-staging', REDIS_PORT: String(redisPort), SENTINEL_PORT: String(sentinelPort), AUTH_DIR: auth, AUTH_STATUS_FILE: statusFile,
      PATH: process.env.PATH ?? '',
    });
    writeFileSync(join(dir, 'redis-proxy.lua'), proxyLua());
    writeFileSync(join(dir, 'haproxy.cfg'), [
      'global', `  lua-load ${join(dir, 'redis-proxy.lua')}`,
      'defaults', '  mode tcp', '  timeout connect 1s', '  timeout client 10s', '  timeout server 10s',
      // HAProxy starts only with a listener.
      'frontend write', `  bind 127.0.0.1:${await freePort()}`, `  default_backend ${PROXY_BACKENDS.write}`,
      `backend ${PROXY_BACKENDS.write}`, `  server redis-master-0 127.0.0.1:${redisPort} disabled`,
      `backend ${PROXY_BACKENDS.read}`, `  server redis-master-0 127.0.0.1:${redisPort} disabled`,
      `backend ${PROXY_BACKENDS.sentinels}`, `  server seed 127.0.0.1:${sentinelPort}`, '',
    ].join('\n'));
    haproxy = spawn('haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    haproxy.stdout!.on('data', (d) => { log += d; });
    haproxy.stderr!.on('data', (d) => { log += d; });
  }, 30_000);

  afterAll(() => {
    haproxy?.kill('SIGKILL');
    admin?.disconnect();
    redisProc?.kill('SIGKILL');
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
    await admin!.call('ACL', 'SETUSER', 'proxy', `>${PW2}`);
    setPasswords(PW2, PW1);
    await until('the status naming the new password', () => (status() === `proxy accepted - using ${hashPrefix(PW2)}\n` ? true : undefined));
    expect(await proxyClients()).toHaveLength(1);

    // The next rotation reaches this pod's files before the server's: PW3 is refused, PW2
    // (now previous) is still accepted.
    await admin!.call('ACL', 'SETUSER', 'proxy', 'resetpass', `>${PW2}`);
    setPasswords(PW3, PW2);
    const roles = await commandCalls('role');
    await until('ROLE still answered', async () => ((await commandCalls('role')) >= roles + 5 ? true : undefined));
    expect(status()).toBe(`proxy accepted - using ${hashPrefix(PW2)}\n`);

    await admin!.call('ACL', 'SETUSER', 'proxy', `>${PW3}`);
    await until('the status naming the newest password', () => (status() === `proxy accepted - using ${hashPrefix(PW3)}\n` ? true : undefined));
    // The old password gone from the server: nothing changes for the proxy.
    await admin!.call('ACL', 'SETUSER', 'proxy', 'resetpass', `>${PW3}`);
    setPasswords(PW3);
    const kept = idOf((await proxyClients())[0]);
    const later = await commandCalls('role');
    await until('more ROLE questions', async () => ((await commandCalls('role')) >= later + 5 ? true : undefined));
    expect(idOf((await proxyClients())[0])).toBe(kept);
    expect(status()).toBe(`proxy accepted - using ${hashPrefix(PW3)}\n`);
  }, 60_000);

  itWithBoth('without an answer from a majority of the Sentinels it keeps writes closed, and says why', async () => {
    await until('the log line', () => (/writes closed: only 0 of 3 Sentinels answered \(need 2\)/.test(log) ? true : undefined));
    expect(log).not.toMatch(/redis_write: open/);
  });
});
