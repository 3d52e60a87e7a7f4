import { ChildProcess, spawn } from 'child_process';
import { buildSync } from 'esbuild';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import Redis from 'ioredis';
import { tmpdir } from 'os';
import { join } from 'path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect } from 'vitest';
import { Migration, MigrateOptions, MigrateProgress, STATE_PREFIX, migrate, printable } from '../../lib/ops/migrate';
import { REDIS_ACL } from '../../lib/pod/acl';
import { itWith } from '../prerequisites';

/**
 * The migration's core against two real redis-server processes (unix sockets): the source
 * as a plain single Redis, the target with the production ACL, logged in as `app` (no
 * @dangerous commands, so no RESTORE).
 */

const it = itWith('redis-server', 'apt-get install redis-server');
const dir = mkdtempSync(join(tmpdir(), 'redis-ha-migrate-'));
const APP_PASSWORD = 'app-secret';

/** Connection errors reach the awaiting command; no "Unhandled error event" lines. */
const withoutErrorEvents = (c: Redis): Redis => c.on('error', () => undefined);

class Server {
  proc?: ChildProcess;
  constructor(readonly name: string, private readonly extra: string[]) {}
  get socket(): string {
    return join(dir, `${this.name}.sock`);
  }
  async start(): Promise<void> {
    const conf = join(dir, `${this.name}.conf`);
    writeFileSync(conf, [`port 0`, `unixsocket ${this.socket}`, `save ""`, `appendonly no`, `dir ${dir}`, ...this.extra].join('\n') + '\n');
    this.proc = spawn('redis-server', [conf], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      const c = this.admin();
      try {
        await c.ping();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      } finally {
        c.disconnect();
      }
    }
    throw new Error(`${this.name} did not start`);
  }
  admin(): Redis {
    return withoutErrorEvents(new Redis({ path: this.socket, lazyConnect: false, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: true,
      ...(this.name === 'target' ? { username: 'admin', password: 'admin' } : {}) }));
  }
  stop(): void {
    this.proc?.kill('SIGKILL');
  }
}

const source = new Server('source', []);
const target = new Server('target', ['user default off', 'user admin on >admin ~* &* +@all', `user app on >${APP_PASSWORD} ${REDIS_ACL.app}`]);
let src: Redis;
let admin: Redis;
const opened: Redis[] = [];
const targetAsApp = async () => {
  const c = new Redis({ path: target.socket, username: 'app', password: APP_PASSWORD, enableReadyCheck: false, maxRetriesPerRequest: 1, retryStrategy: () => null });
  opened.push(c);
  return c;
};

beforeAll(async () => {
  await source.start();
  await target.start();
});
afterAll(() => {
  source.stop();
  target.stop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  src = source.admin();
  admin = target.admin();
  await src.flushall();
  await admin.flushall();
});
afterEach(() => {
  src.disconnect();
  admin.disconnect();
  for (const c of opened.splice(0)) c.disconnect();
});

const bin = (...bytes: number[]) => Buffer.from(bytes);
const BIN_KEY = bin(0xff, 0x00, 0xfe, 0x0a, 0x80);
const BIN_VALUE = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

/** Keys of every type, each once without and once with a TTL, binary ones, and large ones. */
async function fill(c: Redis): Promise<void> {
  for (const ttl of [0, 600_000]) {
    const p = c.pipeline();
    const k = (name: string) => `${name}${ttl ? ':ttl' : ''}`;
    p.set(k('str'), 'hello');
    p.set(k('empty'), '');
    p.rpush(k('list'), 'a', 'b', 'a', '');
    p.sadd(k('set'), 'x', 'y', '1');
    p.sadd(k('intset'), 1, 2, 3);
    p.zadd(k('zset'), 1.1, 'one', -2.5, 'two', 'inf', 'top', 0.1 + 0.2, 'sum');
    p.hset(k('hash'), 'f1', 'v1', 'f2', '');
    p.xadd(k('stream'), '1-1', 'a', '1');
    p.xadd(k('stream'), '2-0', 'b', '2', 'c', '3');
    p.xadd(k('stream'), '5-3', 'd', '4');
    if (ttl) for (const name of ['str', 'empty', 'list', 'set', 'intset', 'zset', 'hash', 'stream']) p.pexpire(k(name), ttl + name.length * 1000);
    await p.exec();
  }
  // A stream with consumer groups, a consumer without pending entries, pending entries, deleted entries.
  for (let i = 1; i <= 20; i++) await c.xadd('events', `${i}-0`, 'n', String(i));
  await c.xgroup('CREATE', 'events', 'workers', '0');
  await c.xgroup('CREATE', 'events', 'late', '10-0');
  await c.call('XGROUP', 'CREATECONSUMER', 'events', 'workers', 'idle-one');
  await c.xreadgroup('GROUP', 'workers', 'alice', 'COUNT', 5, 'STREAMS', 'events', '>');
  await c.xreadgroup('GROUP', 'workers', 'bob', 'COUNT', 3, 'STREAMS', 'events', '>');
  await c.xack('events', 'workers', '2-0');
  await c.xdel('events', '20-0', '19-0');
  // An empty stream with a last ID and a group (all entries deleted).
  await c.xadd('drained', '7-7', 'x', '1');
  await c.xdel('drained', '7-7');
  await c.xgroup('CREATE', 'drained', 'g', '$');
  // Binary key and values.
  await c.set(BIN_KEY, BIN_VALUE);
  await c.hset(Buffer.from('bin:hash'), BIN_VALUE, BIN_KEY);
  await c.sadd(Buffer.from('bin:set'), BIN_VALUE, bin(0), bin(0xff));
  await c.rpush(Buffer.from('bin:list'), BIN_VALUE, bin(0));
  await c.zadd(Buffer.from('bin:zset'), 3, BIN_VALUE);
  await c.xadd(Buffer.from('bin:stream'), '1-0', BIN_VALUE, BIN_KEY);
  // Large keys: more elements than a chunk, and a 3 MiB string (three 1 MiB chunks).
  const big = Array.from({ length: 2500 }, (_, i) => `member-${i}`);
  await c.rpush('big:list', ...big);
  await c.sadd('big:set', ...big);
  await c.zadd('big:zset', ...big.flatMap((m, i) => [i / 7, m]));
  await c.hset('big:hash', ...big.flatMap((m, i) => [m, `value-${i}`]));
  for (let i = 0; i < 2500; i += 500) {
    const p = c.pipeline();
    for (let j = i; j < i + 500; j++) p.xadd('big:stream', `${j + 1}-0`, 'i', String(j));
    await p.exec();
  }
  await c.pexpire('big:hash', 900_000);
  await c.set('big:string', Buffer.alloc(3 * 1024 * 1024 + 17, 'q'));
  await c.setrange('big:string', 1024 * 1024, 'edge');
  // Many small keys.
  const p = c.pipeline();
  for (let i = 0; i < 300; i++) p.set(`small:${i}`, String(i));
  await p.exec();
}

/** Everything about a key, read with plain commands (independently of the migration's reader). */
async function describeKey(c: Redis, key: Buffer): Promise<unknown> {
  const type = await c.type(key);
  const enc = (v: unknown): unknown => (Buffer.isBuffer(v) ? v.toString('base64') : Array.isArray(v) ? v.map(enc) : v);
  const b = (args: (string | Buffer | number)[]) => (c as any).callBuffer(...args).then((v: unknown) => JSON.stringify(enc(v)));
  switch (type) {
    case 'string': return [type, await b(['GET', key])];
    case 'list': return [type, await b(['LRANGE', key, 0, -1])];
    case 'set': return [type, ((await (c as any).smembersBuffer(key)) as Buffer[]).map((m) => m.toString('base64')).sort()];
    case 'zset': return [type, await b(['ZRANGE', key, 0, -1, 'WITHSCORES'])];
    case 'hash': {
      const all = (await (c as any).hgetallBuffer(key)) as Record<string, Buffer>;
      return [type, Object.keys(all).length, ((await (c as any).callBuffer('HGETALL', key)) as Buffer[]).map((x) => x.toString('base64')).reduce<string[]>((acc, x, i, arr) => (i % 2 ? acc : [...acc, `${x}=${arr[i + 1]}`]), []).sort()];
    }
    case 'stream': {
      const info = await b(['XINFO', 'STREAM', key]);
      const groups = (await c.xinfo('GROUPS', key)) as unknown[][];
      const detail = [];
      for (const g of groups) {
        const name = g[1] as string;
        const consumers = ((await c.xinfo('CONSUMERS', key, name)) as unknown[][]).map((x) => [x[1], x[3]]);
        detail.push([g, consumers, await c.xpending(key, name, '-', '+', 1000)]);
      }
      // XINFO STREAM without the recorded first/last entry duplicates is enough: it has length, IDs, counters, groups.
      return [type, info, JSON.stringify(detail), await b(['XRANGE', key, '-', '+'])];
    }
    default: return [type];
  }
}

async function allKeys(c: Redis): Promise<Buffer[]> {
  const keys: Buffer[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await c.scanBuffer(cursor, 'COUNT', 1000);
    cursor = String(next);
    keys.push(...batch.filter((k) => !k.toString().startsWith(STATE_PREFIX)));
  } while (cursor !== '0');
  return keys;
}

/** Every source key is on the target with the same content and (to the tolerance) the same TTL. */
async function expectSameKeys(): Promise<number> {
  const keys = await allKeys(src);
  for (const k of keys) {
    const [a, b] = await Promise.all([describeKey(src, k), describeKey(admin, k)]);
    // Idle times of pending entries differ by the time the copy took.
    const norm = (v: unknown) => JSON.stringify(v).replace(/\\?"idle\\?",\d+/g, '').replace(/\[\\"(\d+-\d+)\\",\\"(\w+)\\",\d+,(\d+)\]/g, '[$1,$2,$3]');
    const [na, nb] = [norm(a), norm(b)];
    // (Short messages: a diff of a 3 MiB value would not help anyone.)
    if (na !== nb) {
      const at = [...na].findIndex((ch, i) => nb[i] !== ch);
      expect(nb.slice(Math.max(0, at - 100), at + 200), `key ${printable(k)} differs at ${at}`).toBe(na.slice(Math.max(0, at - 100), at + 200));
    }
    const [ts, tt] = await Promise.all([src.pttl(k), admin.pttl(k)]);
    if (ts < 0) expect(tt, `no TTL on ${k}`).toBe(ts);
    else {
      expect(tt, `TTL of ${k}`).toBeLessThanOrEqual(ts + 50);
      expect(tt, `TTL of ${k}`).toBeGreaterThan(ts - 2000);
    }
  }
  return keys.length;
}

const quiet: MigrateOptions = { sourceId: 'test' };

describe('migrate: the copy', () => {
  it('copies every type, with and without TTLs, binary data and large keys in chunks, as the app user', async () => {
    await fill(src);
    const total = await src.dbsize();
    // Every command the target receives, and the largest one's size.
    const commands = new Set<string>();
    let largest = 0;
    const recording = async () => {
      const c = await targetAsApp();
      const send = c.sendCommand.bind(c);
      c.sendCommand = (cmd: any) => {
        commands.add(String(cmd.name).toLowerCase());
        largest = Math.max(largest, cmd.args.reduce((s: number, a: unknown) => s + (Buffer.isBuffer(a) ? a.length : String(a).length), 0));
        return send(cmd);
      };
      return c;
    };
    const result = await migrate(src, recording, { ...quiet });
    expect(result.verification.ok, result.verification.summary).toBe(true);
    expect(result.counts.copied).toBe(total);
    expect(result.counts.newer + result.counts.vanished).toBe(0);
    expect(await expectSameKeys()).toBe(total);
    expect(result.verification.types.stream.copied).toBe(6);
    // No RESTORE (the app user may not), and no command near the size of the 3 MiB string.
    expect([...commands].sort()).toEqual(expect.arrayContaining(['append', 'rename', 'xclaim', 'xsetid']));
    expect(commands.has('restore')).toBe(false);
    expect(largest).toBeLessThan(1.1 * 1024 * 1024);
    // The temporary keys of the large ones are gone.
    expect((await admin.keys(`${STATE_PREFIX}tmp:*`)).length).toBe(0);
    // A second run copies nothing again.
    const again = await migrate(src, targetAsApp, { ...quiet });
    expect(again.counts.copied).toBe(0);
    expect(again.counts.already).toBe(total);
    expect(again.verification.ok).toBe(true);
  }, 120_000);

  it('keys that expire before they are written are not copied and do not count as missing', async () => {
    await src.set('soon', 'x', 'PX', 1);
    await src.set('stays', 'y');
    await new Promise((r) => setTimeout(r, 20));
    const result = await migrate(src, targetAsApp, { ...quiet });
    expect(await admin.exists('soon')).toBe(0);
    expect(await admin.get('stays')).toBe('y');
    expect(result.verification.ok).toBe(true);
  });

  it('newer keys on the target are kept and counted; --overwrite replaces them', async () => {
    await src.mset('a', 'from-source', 'b', 'from-source', 'c', 'from-source');
    await admin.set('a', 'written-on-target');
    let result = await migrate(src, targetAsApp, { ...quiet });
    expect(result.counts).toMatchObject({ copied: 2, newer: 1 });
    expect(await admin.get('a')).toBe('written-on-target');
    expect(result.verification.types.string).toMatchObject({ source: 3, copied: 2, newer: 1, missing: 0 });
    expect(result.verification.ok).toBe(true);

    // Changed on both sides after the copy: in a rescan the target's change wins.
    await admin.set('b', 'changed-on-target');
    await src.set('b', 'changed-on-source');
    await src.set('c', 'changed-on-source');
    const m = new Migration(src, targetAsApp, quiet);
    await m.pass('check', 'rescan');
    m.close();
    expect(m.counts).toMatchObject({ copied: 1, newer: 2 });
    expect(await admin.get('b')).toBe('changed-on-target');
    expect(await admin.get('c')).toBe('changed-on-source');
    // Deleted on the target after the copy counts as newer too: not copied again.
    await admin.del('c');
    await src.set('c', 'again');
    const m2 = new Migration(src, targetAsApp, quiet);
    await m2.pass('check', 'rescan');
    m2.close();
    expect(await admin.exists('c')).toBe(0);

    result = await migrate(src, targetAsApp, { ...quiet, overwrite: true, follow: { stop: () => true, notifications: false } });
    expect(await admin.get('a')).toBe('from-source');
    expect(await admin.get('b')).toBe('changed-on-source');
    expect(await admin.get('c')).toBe('again');
    expect(result.counts.overwritten).toBe(3);
    expect(result.verification.types.string).toMatchObject({ source: 3, copied: 3, newer: 0 });
  }, 60_000);

  it('the verification fails on a source key that is not on the target', async () => {
    await src.mset('a', '1', 'b', '2');
    await src.rpush('l', 'x');
    expect((await migrate(src, targetAsApp, quiet)).verification.ok).toBe(true);
    await src.rpush('added-later', 'x');
    const m = new Migration(src, targetAsApp, quiet);
    const v = await m.verify();
    m.close();
    expect(v.ok).toBe(false);
    expect(v.types.list).toMatchObject({ source: 2, copied: 1, missing: 1 });
    expect(v.missingExamples).toEqual(['added-later']);
    expect(v.summary).toMatch(/MISMATCH: 1 source key\(s\) not on the target, e.g. added-later/);
  });
});

describe('migrate: resume after kill -9', () => {
  const runner = join(dir, 'runner.js');
  beforeAll(() => {
    // The core in a process of its own, which the test kills mid-copy.
    writeFileSync(join(dir, 'runner.ts'), `
      import Redis from 'ioredis';
      import { migrate } from ${JSON.stringify(join(__dirname, '../../lib/ops/migrate'))};
      const [src, tgt] = process.argv.slice(2);
      const source = new Redis({ path: src });
      migrate(source, async () => new Redis({ path: tgt, username: 'app', password: ${JSON.stringify(APP_PASSWORD)}, enableReadyCheck: false }),
        { sourceId: 'test', parallel: 2, chunkElements: 50, onProgress: (p) => { if (p.phase === 'copy') console.log('done', p.done, JSON.stringify(p.counts)); } })
        .then((r) => { console.log('RESULT', JSON.stringify({ counts: r.counts, ok: r.verification.ok })); process.exit(0); });
    `);
    buildSync({ entryPoints: [join(dir, 'runner.ts')], nodePaths: [join(__dirname, '../../node_modules')], bundle: true, platform: 'node', target: 'node20', outfile: runner, logLevel: 'error' });
  });

  it('a copy killed in the middle continues where it was and ends with everything, each key once', async () => {
    // Lists would show a key appended twice; big lists make sure the kill lands inside a chunked copy too.
    const p = src.pipeline();
    for (let i = 0; i < 3000; i++) p.rpush(`list:${i}`, 'a', 'b', String(i));
    for (let i = 0; i < 20; i++) p.rpush(`big:${i}`, ...Array.from({ length: 2000 }, (_, j) => String(j)));
    await p.exec();
    const total = await src.dbsize();

    const child = spawn(process.execPath, [runner, source.socket, target.socket], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    await new Promise<void>((resolve) => {
      child.stdout!.on('data', (d) => {
        out += d;
        const m = /done (\d+)/g;
        let last = 0;
        for (let x; (x = m.exec(out));) last = Number(x[1]);
        if (last >= 1000) {
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    await new Promise((r) => child.once('exit', r));
    const before = Number((await admin.hlen(`${STATE_PREFIX}state:test`)));
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(total);

    const second = spawn(process.execPath, [runner, source.socket, target.socket], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out2 = '';
    second.stdout!.on('data', (d) => { out2 += d; });
    await new Promise((r) => second.once('exit', r));
    const result = JSON.parse(/RESULT (.*)/.exec(out2)![1]);
    expect(result.ok).toBe(true);
    expect(result.counts.already).toBe(before);
    expect(result.counts.copied).toBe(total - before);
    for (let i = 0; i < 3000; i += 97) expect(await admin.lrange(`list:${i}`, 0, -1)).toEqual(['a', 'b', String(i)]);
    for (let i = 0; i < 20; i++) expect(await admin.llen(`big:${i}`)).toBe(2000);
    // Everything, nothing twice: the same keys, same contents.
    expect(await expectSameKeys()).toBe(total);
  }, 120_000);
});

describe('migrate: follow mode', () => {
  for (const notifications of [true, false]) {
    it(`copies the source's changes until stopped (${notifications ? 'keyspace notifications' : 'rescans only'})`, async () => {
      await src.mset('keep', '1', 'change', 'old', 'remove', 'x');
      await src.rpush('list', 'a');
      let stop = false;
      let following = false;
      const run = migrate(src, targetAsApp, {
        ...quiet,
        follow: { stop: () => stop, notifications, rescanIntervalMs: notifications ? 3_600_000 : 300 },
        onProgress: (p: MigrateProgress) => { if (p.phase === 'follow') following = true; },
      });
      await waitUntil(() => following);
      await src.set('change', 'new');
      await src.del('remove');
      await src.rpush('list', 'b');
      await src.set('added', 'y', 'PX', 600_000);
      await src.hset('h', Buffer.from([0xff]), Buffer.from([0]));
      await waitUntil(async () => (await admin.get('change')) === 'new' && (await admin.exists('remove')) === 0
        && (await admin.llen('list')) === 2 && (await admin.exists('added', 'h')) === 2);
      expect(await admin.pttl('added')).toBeGreaterThan(590_000);
      stop = true;
      const result = await run;
      expect(result.verification.ok, result.verification.summary).toBe(true);
      expect(result.counts.deleted).toBe(1);
      if (notifications) expect(await src.config('GET', 'notify-keyspace-events')).toEqual(['notify-keyspace-events', '']);
      expect(await expectSameKeys()).toBe(5);
    }, 60_000);
  }
});

async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
