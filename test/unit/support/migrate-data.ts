// Keys of every type for the migration's tests (unit: test/unit/migrate*.test.ts; live:
// test/live/migrate.test.ts, bundled into a helper run in a client pod), and an
// independent comparison of a source with a target: plain commands, not the migration's reader.
import Redis from 'ioredis';
import { STATE_PREFIX } from '../../../lib/ops/migrate';

export const bin = (...bytes: number[]) => Buffer.from(bytes);
export const BIN_KEY = bin(0xff, 0x00, 0xfe, 0x0a, 0x80);
export const BIN_VALUE = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

/** Keys of every type, each once without and once with a TTL, binary ones, and large ones. */
export async function fill(c: Redis): Promise<void> {
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
  // A stream that never had an entry (last ID 0-0), made with its group.
  await c.xgroup('CREATE', 'fresh', 'g', '$', 'MKSTREAM');
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
export async function describeKey(c: Redis, key: Buffer): Promise<unknown> {
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

export async function allKeys(c: Redis): Promise<Buffer[]> {
  const keys: Buffer[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await c.scanBuffer(cursor, 'COUNT', 1000);
    cursor = String(next);
    keys.push(...batch.filter((k) => !k.toString().startsWith(STATE_PREFIX)));
  } while (cursor !== '0');
  return keys;
}

/** A key name for messages. */
const show = (k: Buffer) => (/^[\x20-\x7e]*$/.test(k.toString()) ? k.toString() : `0x${k.toString('hex')}`);

/**
 * Every source key on the target with the same content and (within the tolerance) the same
 * TTL: the differences, one line each (empty: the same), and how many keys the source has.
 */
export async function compareKeys(src: Redis, tgt: Redis, ttlToleranceMs = 100): Promise<{ keys: number; differences: string[] }> {
  const keys = await allKeys(src);
  const differences: string[] = [];
  // Idle times of pending entries differ by the time the copy took.
  const norm = (v: unknown) => JSON.stringify(v).replace(/\\?"idle\\?",\d+/g, '').replace(/\[\\"(\d+-\d+)\\",\\"(\w+)\\",\d+,(\d+)\]/g, '[$1,$2,$3]');
  for (const k of keys) {
    const [a, b] = await Promise.all([describeKey(src, k), describeKey(tgt, k)]);
    const [na, nb] = [norm(a), norm(b)];
    if (na !== nb) {
      const at = [...na].findIndex((ch, i) => nb[i] !== ch);
      differences.push(`${show(k)}: differs at ${at}: source ${na.slice(Math.max(0, at - 40), at + 80)} target ${nb.slice(Math.max(0, at - 40), at + 80)}`);
      continue;
    }
    // When each expires, from PTTLs read one after the other, each bracketed by our clock:
    // the instant lies in [asked + ttl, answered + ttl]. The target's copy must not expire
    // later than the source's (beyond 10 ms), nor more than the tolerance earlier.
    const a0 = Date.now();
    const ts = await src.pttl(k);
    const a1 = Date.now();
    const tt = await tgt.pttl(k);
    const b1 = Date.now();
    const later = a1 + tt - (a1 + ts); // at least: target read started at or after a1
    const earlier = a0 + ts - (b1 + tt);
    if (ts < 0 ? tt !== ts : later > 10 || earlier > ttlToleranceMs) differences.push(`${show(k)}: TTL ${ts} on the source, ${tt} on the target (read ${a1 - a0} and ${b1 - a1} ms)`);
  }
  return { keys: keys.length, differences };
}
