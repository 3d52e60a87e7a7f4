import { ChildProcess, spawn } from 'child_process';
import { buildSync } from 'esbuild';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import Redis from 'ioredis';
import { tmpdir } from 'os';
import { join } from 'path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect } from 'vitest';
import { Migration, MigrateOptions, MigrateProgress, STATE_PREFIX, migrate } from '../../lib/ops/migrate';
import { REDIS_ACL } from '../../lib/pod/acl';
import { itWith } from '../prerequisites';
import { compareKeys, fill } from './support/migrate-data';

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

/** Every source key is on the target with the same content and TTL; the number of keys. */
async function expectSameKeys(): Promise<number> {
  const { keys, differences } = await compareKeys(src, admin);
  expect(differences).toEqual([]);
  return keys;
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
    expect(result.verification.types.stream.copied).toBe(7);
    // No RESTORE (the app user may not), and no command near the size of the 3 MiB string.
    expect([...commands].sort()).toEqual(expect.arrayContaining(['append', 'rename', 'xclaim', 'xsetid', 'pexpireat', 'time']));
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

  it("two runs at the same time copy each key once and take none of the other run's keys for newer ones", async () => {
    const p = src.pipeline();
    for (let i = 0; i < 2000; i++) p.rpush(`l:${i}`, 'a', String(i));
    await p.exec();
    const [a, b] = await Promise.all([migrate(src, targetAsApp, quiet), migrate(src, targetAsApp, quiet)]);
    expect(a.counts.newer + b.counts.newer).toBe(0);
    expect(a.counts.copied + b.counts.copied).toBe(2000);
    expect(a.verification.ok && b.verification.ok).toBe(true);
    for (let i = 0; i < 2000; i += 111) expect(await admin.lrange(`l:${i}`, 0, -1)).toEqual(['a', String(i)]);
  }, 60_000);

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
