/**
 * `redis-ha migrate`: copies every key of a single Redis (the source, one database) into
 * the HA master (the target), with its TTL, resumable, never overwriting a key that is
 * newer on the target, verifying at the end; optionally following the source's changes
 * until the operator cuts over (README "Migrating from a single Redis").
 *
 * Written for the `app` user on the target: it has every data command but not @dangerous,
 * so no DUMP/RESTORE. Each type is copied with its own commands (GETRANGE/SET+APPEND,
 * LRANGE/RPUSH, SSCAN/SADD, ZSCAN/ZADD, HSCAN/HSET, XRANGE/XADD + XSETID, XGROUP CREATE,
 * XCLAIM FORCE), in chunks, so no single command carries a whole large key.
 *
 * How a key lands on the target, atomically with the record of it (so an interruption at
 * any moment, kill -9 included, leaves each key either copied and recorded, or neither):
 * - a key read in one chunk: WATCH key, the "newer" check, then MULTI, DEL, the write,
 *   PEXPIREAT, HSET state, EXEC;
 * - a larger key is written chunk by chunk into a temporary key of its own (expiring after
 *   an hour, so an interrupted one goes away by itself), then WATCH key, the check, MULTI,
 *   RENAME temp key, PEXPIREAT (or PERSIST), HSET state, EXEC.
 * An EXEC refused because the key changed after the WATCH runs the check again (a "newer"
 * verdict too is confirmed by an empty MULTI/EXEC). After a connection error or READONLY
 * the key is synced again from the start on the master the target factory gives then.
 * TTLs are absolute (PEXPIREAT in the target's clock, offset measured with TIME), counted
 * so that a copy never outlives its source.
 *
 * The state lives on the target, in one hash (STATE_PREFIX + source address): field = key
 * name, value = `<content digest>|<expire-at ms or 0>|<type>` of what the migration wrote.
 * Being written in the same transaction as the key, it can never disagree with the data.
 *
 * "Newer": a key on the target is newer when it exists there and is not what this migration
 * wrote (it is not in the state, or its content digest differs from the recorded one), or
 * when it was copied and is gone before the TTL it was copied with (deleted on the target).
 * Newer keys are left alone (and counted) unless `overwrite`.
 */
import { createHash, randomBytes } from 'crypto';
import Redis from 'ioredis';

/** Prefix of the migration's own keys on the target (state, temporary keys); never copied. */
export const STATE_PREFIX = 'redis-ha:migrate:';
const TEMP_TTL_MS = 3_600_000;
const EMPTY_STREAM_GROUP = 'redis-ha-migrate-empty-stream';
const KEY = Symbol('key');
type Arg = string | Buffer | number | typeof KEY;
type Cmd = Arg[];

export class MigrateError extends Error {}

export type KeyType = 'string' | 'list' | 'set' | 'zset' | 'hash' | 'stream';
export const KEY_TYPES: readonly KeyType[] = ['string', 'list', 'set', 'zset', 'hash', 'stream'];

/** A client of the current master of the target; called again after a connection error or READONLY. */
export type TargetFactory = () => Promise<Redis>;

export interface MigrateProgress {
  phase: 'copy' | 'follow' | 'rescan' | 'verify';
  /** Keys looked at in this phase, and the source's DBSIZE when it started. */
  done: number;
  total: number;
  counts: MigrateCounts;
}

export interface MigrateCounts {
  /** Written to the target by this run. */
  copied: number;
  /** Copied by an earlier run (found in the state) and not changed on the source since, as far as this phase checks. */
  already: number;
  /** Left alone on the target because it is newer there. */
  newer: number;
  /** Overwritten on the target although newer (only with `overwrite`). */
  overwritten: number;
  /** Gone from the source before or while it was copied (expired or deleted). */
  vanished: number;
  /** Deleted on the target because it was deleted on the source (follow mode). */
  deleted: number;
}

export interface MigrateOptions {
  /** State hash on the target (default: STATE_PREFIX + `state:` + sourceId). */
  stateKey?: string;
  /** Identifies the source in the default state key (e.g. `old:6379/0`). */
  sourceId?: string;
  overwrite?: boolean;
  /** Elements per chunk (list, set, zset, hash, stream entries); default 1000. */
  chunkElements?: number;
  /** Bytes per chunk of a string; default 1 MiB. */
  chunkBytes?: number;
  /** SCAN COUNT; default 500. */
  scanCount?: number;
  /** Keys copied at the same time (each with its own target connection); default 8. */
  parallel?: number;
  /** After the copy, keep copying the source's changes until `stop()` says so. */
  follow?: FollowOptions;
  onProgress?: (p: MigrateProgress) => void;
  log?: (line: string) => void;
}

export interface FollowOptions {
  /** Polled about every 200 ms; true ends following (then a last rescan and the verification). */
  stop: () => boolean;
  /** Full rescan of the source (every key's digest compared with the state) this often; default 60 s. */
  rescanIntervalMs?: number;
  /** Set notify-keyspace-events on the source (default true); without, only rescans. */
  notifications?: boolean;
  /** The source's database number (for the notification channel); default 0. */
  db?: number;
}

export interface TypeVerification {
  source: number;
  /** On the target as copied (same type, in the state). */
  copied: number;
  /** On the target, but newer there (not written by the migration, or of another type). */
  newer: number;
  /** Copied, and gone from the target because their TTL ran out. */
  expired: number;
  /** On the source, not on the target. */
  missing: number;
}

export interface Verification {
  ok: boolean;
  types: Record<KeyType, TypeVerification>;
  /** Keys recorded as copied that the source no longer has. */
  copiedNotOnSource: number;
  /** Up to 10 missing key names (printable). */
  missingExamples: string[];
  summary: string;
}

export interface MigrateResult {
  counts: MigrateCounts;
  verification: Verification;
  /** What was not copied, one line each (e.g. notifications unavailable). */
  notes: string[];
}

const emptyCounts = (): MigrateCounts => ({ copied: 0, already: 0, newer: 0, overwritten: 0, vanished: 0, deleted: 0 });

/** A key name for messages: UTF-8 when it is printable, else hex. */
export function printable(key: Buffer): string {
  const s = key.toString('utf8');
  return /^[\x20-\x7e\u00a0-\uffff]*$/.test(s) && !s.includes('\ufffd') ? s : `0x${key.toString('hex')}`;
}

const sha1 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha1');
  for (const p of parts) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(p.length);
    h.update(len).update(p);
  }
  return h.digest();
};

/**
 * Digest of a key's content, the same whichever server it is read from: ordered parts
 * (strings, lists, stream entries) hashed in order, unordered ones (set members, hash fields,
 * sorted-set members with their scores) combined order-independently (XOR of element
 * hashes; SCAN may return an element twice, so each is counted once).
 */
class Digest {
  private readonly ordered = createHash('sha1');
  private readonly unordered = Buffer.alloc(20);
  private readonly seen = new Set<string>();
  constructor(type: string) {
    this.ordered.update(type);
  }
  add(...parts: Buffer[]): void {
    this.ordered.update(sha1(...parts));
  }
  addUnordered(...parts: Buffer[]): void {
    const h = sha1(...parts);
    const id = h.toString('base64');
    if (this.seen.has(id)) return;
    this.seen.add(id);
    for (let i = 0; i < 20; i++) this.unordered[i] ^= h[i];
  }
  hex(): string {
    return this.ordered.update(this.unordered).digest('hex').slice(0, 32);
  }
}

const buf = (v: unknown): Buffer => (Buffer.isBuffer(v) ? v : Buffer.from(String(v)));
const str = (v: unknown): string => (Buffer.isBuffer(v) ? v.toString() : String(v));

/** A score as one canonical string (servers format doubles differently: "1.1" or "1.1000000000000001"). */
const canonicalScore = (s: Buffer): Buffer => Buffer.from(String(Number(s.toString().replace(/^(-?)inf$/i, '$1Infinity'))));

/** Reply of XINFO STREAM/GROUPS as an object (flat field/value arrays). */
function pairs(reply: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < reply.length; i += 2) out[str(reply[i])] = reply[i + 1];
  return out;
}

/**
 * Reads a key of a known type in chunks: yields the commands that recreate it (KEY in place
 * of the key name), and feeds the digest. The same reader runs on the source (to copy) and on
 * the target (to check whether a key there is still what the migration wrote).
 */
async function* readKey(client: Redis, key: Buffer, type: KeyType, digest: Digest, opts: Required<Pick<MigrateOptions, 'chunkElements' | 'chunkBytes'>>): AsyncGenerator<Cmd[]> {
  const n = opts.chunkElements;
  const call = (...args: (string | Buffer | number)[]) => (client as any).callBuffer(...args) as Promise<any>;
  switch (type) {
    case 'string': {
      const len = Number(await call('STRLEN', key));
      if (len === 0) {
        digest.add(Buffer.alloc(0));
        yield [['SET', KEY, '']];
        return;
      }
      for (let off = 0; off < len; off += opts.chunkBytes) {
        const part: Buffer = await call('GETRANGE', key, off, Math.min(len, off + opts.chunkBytes) - 1);
        if (part.length === 0) break;
        digest.add(part);
        yield [[off === 0 ? 'SET' : 'APPEND', KEY, part]];
      }
      return;
    }
    case 'list': {
      for (let i = 0; ; i += n) {
        const items: Buffer[] = await call('LRANGE', key, i, i + n - 1);
        if (!items.length) return;
        for (const it of items) digest.add(it);
        yield [['RPUSH', KEY, ...items]];
        if (items.length < n) return;
      }
    }
    case 'set':
    case 'hash':
    case 'zset': {
      const scan = type === 'set' ? 'SSCAN' : type === 'hash' ? 'HSCAN' : 'ZSCAN';
      const width = type === 'set' ? 1 : 2;
      let cursor = '0';
      do {
        const [next, items]: [Buffer, Buffer[]] = await call(scan, key, cursor, 'COUNT', n);
        cursor = next.toString();
        if (!items.length) continue;
        const args: Buffer[] = [];
        for (let i = 0; i < items.length; i += width) {
          if (type === 'set') {
            digest.addUnordered(items[i]);
            args.push(items[i]);
          } else if (type === 'hash') {
            digest.addUnordered(items[i], items[i + 1]);
            args.push(items[i], items[i + 1]);
          } else {
            digest.addUnordered(items[i], canonicalScore(items[i + 1]));
            args.push(items[i + 1], items[i]);
          }
        }
        yield [[type === 'set' ? 'SADD' : type === 'hash' ? 'HSET' : 'ZADD', KEY, ...args]];
      } while (cursor !== '0');
      return;
    }
    case 'stream': {
      const info = pairs(await call('XINFO', 'STREAM', key));
      const lastId = str(info['last-generated-id']);
      let start = '-';
      let first = true;
      for (;;) {
        const entries: [Buffer, Buffer[]][] = await call('XRANGE', key, start, '+', 'COUNT', n);
        if (!entries.length) break;
        const cmds: Cmd[] = entries.map(([id, fields]) => {
          digest.add(id, ...fields);
          return ['XADD', KEY, id, ...fields];
        });
        first = false;
        yield cmds;
        if (entries.length < n) break;
        start = `(${str(entries[entries.length - 1][0])}`;
      }
      const tail: Cmd[] = [];
      // An empty stream (all entries deleted, or made by XGROUP CREATE MKSTREAM): made the
      // same way, with a group of the migration's that goes again; XSETID then sets the last ID.
      if (first) tail.push(['XGROUP', 'CREATE', KEY, EMPTY_STREAM_GROUP, '0', 'MKSTREAM'], ['XGROUP', 'DESTROY', KEY, EMPTY_STREAM_GROUP]);
      const setid: Cmd = ['XSETID', KEY, lastId];
      if (info['entries-added'] !== undefined) {
        setid.push('ENTRIESADDED', str(info['entries-added']), 'MAXDELETEDID', str(info['max-deleted-entry-id']));
      }
      tail.push(setid);
      digest.add(Buffer.from(`last ${lastId}`));
      const groups: unknown[][] = await call('XINFO', 'GROUPS', key);
      for (const g of groups) {
        const gi = pairs(g);
        const name = buf(gi.name);
        const lastDelivered = str(gi['last-delivered-id']);
        const create: Cmd = ['XGROUP', 'CREATE', KEY, name, lastDelivered];
        if (gi['entries-read'] !== undefined && gi['entries-read'] !== null) create.push('ENTRIESREAD', str(gi['entries-read']));
        tail.push(create);
        digest.add(Buffer.from('group'), name, Buffer.from(lastDelivered));
        // Consumers (those without pending entries too), then the pending entries list, each
        // entry claimed by its consumer with its idle time and delivery count.
        const consumers: unknown[][] = await call('XINFO', 'CONSUMERS', key, name);
        for (const c of consumers) tail.push(['XGROUP', 'CREATECONSUMER', KEY, name, buf(pairs(c).name)]);
        let from = '-';
        for (;;) {
          const pending: [Buffer, Buffer, number, number][] = await call('XPENDING', key, name, from, '+', n);
          if (!pending.length) break;
          for (const [id, consumer, idle, count] of pending) {
            digest.add(Buffer.from('pending'), id, consumer);
            tail.push(['XCLAIM', KEY, name, consumer, 0, id, 'IDLE', Number(idle), 'RETRYCOUNT', Number(count), 'FORCE', 'JUSTID']);
          }
          if (pending.length < n) break;
          from = `(${str(pending[pending.length - 1][0])}`;
        }
      }
      yield tail;
      return;
    }
  }
}

const bind = (cmd: Cmd, key: Buffer): (string | Buffer | number)[] => cmd.map((a) => (a === KEY ? key : a));

interface StateEntry { digest: string; expireAt: number; type: string }
const parseState = (v: Buffer | null): StateEntry | undefined => {
  if (!v) return undefined;
  const [digest, expireAt, type] = v.toString().split('|');
  return { digest, expireAt: Number(expireAt), type };
};

/** No client of the master could be made (none named, or it answers READONLY): worth waiting for. */
class TargetUnavailable extends Error {}

/** One try with the slot's client (callers retry the whole key). */
const once = async <T>(slot: TargetSlot, fn: (c: Redis) => Promise<T>): Promise<T> => fn(await slot.get());

/** Connection errors and READONLY (the master changed): worth a new target client and another try. */
function retriable(err: unknown): boolean {
  if (err instanceof TargetUnavailable) return true;
  const m = String((err as Error)?.message ?? err);
  return /READONLY|LOADING|ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|Connection is closed|connect|MASTERDOWN|NOREPLICAS|TRYAGAIN|Stream isn't writeable/i.test(m);
}

type Outcome = 'copied' | 'already' | 'unchanged' | 'newer' | 'overwritten' | 'vanished' | 'deleted';

/** One worker's target connection (WATCH is per connection). */
class TargetSlot {
  client?: Redis;
  /**
   * The target's clock minus ours (ms, from TIME, to within half a round trip), so that a
   * TTL is set as an absolute PEXPIREAT: the time the write takes to arrive does not add
   * to it. Undefined when TIME is refused: then PEXPIRE with what remains.
   */
  clockOffset?: number;
  constructor(private readonly factory: TargetFactory, readonly temp: Buffer) {}
  async get(): Promise<Redis> {
    if (!this.client) {
      try {
        const client = await this.factory();
        this.clockOffset = undefined;
        try {
          // The target's clock read at an instant between `before` and `after`: the offset is
          // at least serverTime - after. That lower bound, from the quickest of three reads,
          // so that a copied key never outlives its source (it may expire earlier by as
          // much as the two round trips, that of TIME and that of the source's PTTL).
          let best = Infinity;
          for (let i = 0; i < 3; i++) {
            const before = Date.now();
            const [s, us] = (await client.time()) as unknown as [string | number, string | number];
            const after = Date.now();
            if (after - before < best) {
              best = after - before;
              this.clockOffset = Number(s) * 1000 + Number(us) / 1000 - after;
            }
          }
        } catch {
          // no TIME for this user
        }
        this.client = client;
      } catch (err) {
        throw new TargetUnavailable(`target: ${(err as Error).message}`);
      }
    }
    return this.client;
  }
  drop(): void {
    this.client?.disconnect();
    this.client = undefined;
  }
}

export class Migration {
  readonly counts = emptyCounts();
  readonly notes: string[] = [];
  private readonly o: Required<Pick<MigrateOptions, 'chunkElements' | 'chunkBytes' | 'scanCount' | 'parallel' | 'overwrite'>>;
  readonly stateKey: string;
  private readonly slots: TargetSlot[];
  private readonly log: (line: string) => void;

  constructor(private readonly source: Redis, target: TargetFactory, private readonly opts: MigrateOptions = {}) {
    this.o = {
      chunkElements: opts.chunkElements ?? 1000,
      chunkBytes: opts.chunkBytes ?? 1 << 20,
      scanCount: opts.scanCount ?? 500,
      parallel: Math.max(1, opts.parallel ?? 8),
      overwrite: opts.overwrite ?? false,
    };
    this.stateKey = opts.stateKey ?? `${STATE_PREFIX}state:${opts.sourceId ?? 'source'}`;
    const run = `${process.pid}-${randomBytes(4).toString('hex')}`;
    this.slots = Array.from({ length: this.o.parallel }, (_, i) => new TargetSlot(target, Buffer.from(`${STATE_PREFIX}tmp:${run}:${i}`)));
    this.log = opts.log ?? (() => undefined);
  }

  close(): void {
    for (const s of this.slots) s.drop();
  }

  /** Runs `fn` with a target client, again with a new one after a retriable error (up to ~30 s). */
  private async withTarget<T>(slot: TargetSlot, fn: (t: Redis) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(await slot.get());
      } catch (err) {
        if (!retriable(err) || attempt >= 15) throw err instanceof TargetUnavailable ? new MigrateError(err.message) : err;
        this.log(`target: ${(err as Error).message.split('\n')[0]}; reconnecting to the master (attempt ${attempt + 1})`);
        slot.drop();
        await sleep(Math.min(2000, 200 * attempt));
      }
    }
  }

  private async sourceCall(...args: (string | Buffer | number)[]): Promise<any> {
    return (this.source as any).callBuffer(...args);
  }

  /**
   * Brings one key in line. `bulk`: a key in the state counts as done (resume). `check`:
   * the source's digest is compared with the state, and a changed key copied again, a
   * deleted one deleted on the target (in both cases only when the target's copy is not newer).
   */
  async syncKey(slot: TargetSlot, key: Buffer, mode: 'bulk' | 'check', known?: StateEntry | null): Promise<Outcome> {
    const state = known === undefined
      ? parseState(await (await slot.get() as any).hgetBuffer(this.stateKey, key))
      : known ?? undefined;
    if (mode === 'bulk' && state) return 'already';
    const [[, typeB], [, pttl]] = (await this.source.pipeline().type(key).pttl(key).exec()) as [unknown, any][];
    const type = str(typeB);
    if (type === 'none') return state ? this.deleteOnTarget(slot, key, state) : 'vanished';
    if (!KEY_TYPES.includes(type as KeyType)) {
      this.note(`keys of type ${type} are not copied (e.g. ${printable(key)})`);
      return 'vanished';
    }
    if (mode === 'check' && state && state.type === type) {
      const d = new Digest(type);
      for await (const _ of readKey(this.source, key, type as KeyType, d, this.o)) void _;
      const expireAt = Number(pttl) > 0 ? Date.now() + Number(pttl) : 0;
      if (d.hex() === state.digest && Math.abs(expireAt - state.expireAt) < 1000) return 'unchanged';
    }
    return this.copyKey(slot, key, type as KeyType, state, mode);
  }

  private async copyKey(slot: TargetSlot, key: Buffer, type: KeyType, known: StateEntry | undefined, mode: 'bulk' | 'check'): Promise<Outcome> {
    const digest = new Digest(type);
    const reader = readKey(this.source, key, type, digest, this.o);
    let first: Cmd[] | undefined;
    let temp = false;
    for await (const chunk of reader) {
      if (!first) {
        first = chunk;
        continue;
      }
      const t = slot.temp;
      if (!temp) {
        temp = true;
        await once(slot, async (c) => {
          const p = c.pipeline().del(t);
          for (const cmd of first!) p.call(...(bind(cmd, t) as [string, ...any[]]));
          await execAll(p.pexpire(t, TEMP_TTL_MS));
        });
      }
      await once(slot, async (c) => {
        const p = c.pipeline();
        for (const cmd of chunk) p.call(...(bind(cmd, t) as [string, ...any[]]));
        await execAll(p.pexpire(t, TEMP_TTL_MS));
      });
    }
    // Still there, and how long it has to live (read last, so a TTL set meanwhile counts).
    // The source counted the TTL from an instant after `asked`: counting from `asked` can
    // only make the copy expire a little earlier, never later.
    const readAt = Date.now();
    const pttl = Number(await this.sourceCall('PTTL', key));
    if (pttl === -2 || !first) {
      if (temp) await once(slot, (c) => c.del(slot.temp));
      return known ? this.deleteOnTarget(slot, key, known) : 'vanished';
    }
    const entry = `${digest.hex()}|${pttl > 0 ? Math.round(readAt + pttl) : 0}|${type}`;
    const outcome = await once(slot, async (c) => {
      for (let attempt = 0; attempt < 5; attempt++) {
        // WATCH, then the state as it is now (another run, or an EXEC that landed before a
        // connection broke, may have copied the key since it was read) and the key's type,
        // in one round trip.
        const [watched, stateReply, typeReply] = (await (c.pipeline().watch(key) as any).hgetBuffer(this.stateKey, key).type(key).exec()) as [Error | null, any][];
        const failed = [watched, stateReply, typeReply].find(([err]) => err);
        if (failed) throw failed[0];
        const state = parseState(stateReply[1]);
        if (mode === 'bulk' && state && !known) {
          await c.unwatch();
          return 'already' as const;
        }
        const newer = await this.isNewer(c, key, state, str(typeReply[1]));
        if (newer && !this.o.overwrite) {
          // What was read under WATCH is only consistent if nothing changed the key before
          // now: an empty transaction tells (EXEC refused: look again).
          if ((await c.multi().exec()) === null) continue;
          return 'newer' as const;
        }
        const remaining = pttl > 0 ? pttl - (Date.now() - readAt) : 0;
        if (pttl > 0 && remaining <= 0) {
          await c.unwatch();
          return 'vanished' as const;
        }
        const m = c.multi();
        if (temp) m.rename(slot.temp, key);
        else {
          m.del(key);
          for (const cmd of first!) m.call(...(bind(cmd, key) as [string, ...any[]]));
        }
        if (remaining > 0 && slot.clockOffset !== undefined) m.pexpireat(key, Math.floor(readAt + pttl + slot.clockOffset));
        else if (remaining > 0) m.pexpire(key, Math.floor(remaining));
        else if (temp) m.persist(key); // RENAME keeps the temporary key's TTL
        m.hset(this.stateKey, key, entry);
        const res = await m.exec();
        if (res === null) continue; // the key changed after WATCH: look again
        const refused = res.find(([err]) => err);
        if (refused) throw refused[0];
        return newer ? 'overwritten' as const : 'copied' as const;
      }
      return 'newer' as const; // changed on the target again and again while we tried
    });
    if (outcome !== 'copied' && outcome !== 'overwritten' && temp) await once(slot, (c) => c.del(slot.temp));
    return outcome;
  }

  /** Under WATCH: is the target's key newer than what the migration wrote (see the file's comment)? */
  private async isNewer(c: Redis, key: Buffer, state: StateEntry | undefined, knownType?: string): Promise<boolean> {
    const type = knownType ?? str(await c.type(key));
    if (!state) return type !== 'none';
    if (type === 'none') return !(state.expireAt > 0 && state.expireAt <= Date.now() + 1000);
    if (type !== state.type) return true;
    const d = new Digest(type);
    for await (const _ of readKey(c, key, type as KeyType, d, this.o)) void _;
    return d.hex() !== state.digest;
  }

  private async deleteOnTarget(slot: TargetSlot, key: Buffer, state: StateEntry): Promise<Outcome> {
    return once(slot, async (c) => {
      for (let attempt = 0; attempt < 5; attempt++) {
        await c.watch(key);
        const newer = await this.isNewer(c, key, state);
        const keep = newer && !this.o.overwrite;
        const m = c.multi();
        if (!keep) m.del(key);
        m.hdel(this.stateKey, key);
        const res = await m.exec();
        if (res === null) continue;
        return keep ? 'newer' as const : 'deleted' as const;
      }
      return 'newer' as const;
    });
  }

  private note(line: string): void {
    if (!this.notes.includes(line)) {
      this.notes.push(line);
      this.log(line);
    }
  }

  private count(outcome: Outcome): void {
    if (outcome !== 'unchanged') this.counts[outcome]++;
  }

  /** Processes keys with the workers; states prefetched in one HMGET when `bulk`. */
  private async processBatch(keys: Buffer[], mode: 'bulk' | 'check', onKey: () => void): Promise<void> {
    keys = keys.filter((k) => !k.subarray(0, STATE_PREFIX.length).equals(Buffer.from(STATE_PREFIX)));
    if (!keys.length) return;
    const states: (Buffer | null)[] = await this.withTarget(this.slots[0], (t) => (t as any).hmgetBuffer(this.stateKey, ...keys));
    let next = 0;
    await Promise.all(this.slots.map(async (slot) => {
      while (next < keys.length) {
        const i = next++;
        // A key is synced whole or again from the start: after a connection error (a failover)
        // the temporary key is written anew, and the state read again (the EXEC may have landed).
        let known: StateEntry | null | undefined = parseState(states[i]) ?? null;
        for (let attempt = 1; ; attempt++) {
          try {
            this.count(await this.syncKey(slot, keys[i], mode, known));
            break;
          } catch (err) {
            if (!retriable(err) || attempt >= 15) throw err instanceof TargetUnavailable ? new MigrateError(err.message) : err;
            this.log(`target: ${(err as Error).message.split('\n')[0]}; again with the current master (attempt ${attempt + 1})`);
            slot.drop();
            known = undefined;
            await sleep(Math.min(2000, 200 * attempt));
          }
        }
        onKey();
      }
    }));
  }

  /** Every key of the source once (SCAN), `bulk` or `check`; in `check` also the state's keys the source lost. */
  async pass(mode: 'bulk' | 'check', phase: MigrateProgress['phase'], isStopped: () => boolean = () => false): Promise<void> {
    const total = Number(await this.sourceCall('DBSIZE'));
    let done = 0;
    const progress = () => this.opts.onProgress?.({ phase, done, total, counts: { ...this.counts } });
    progress();
    let cursor = '0';
    do {
      const [next, keys]: [Buffer, Buffer[]] = await this.sourceCall('SCAN', cursor, 'COUNT', this.o.scanCount);
      cursor = next.toString();
      await this.processBatch(keys, mode, () => { done++; progress(); });
      if (isStopped()) return;
    } while (cursor !== '0');
    if (mode === 'check') {
      // Keys copied earlier that the source no longer has: deleted there while nobody listened.
      let sc = '0';
      do {
        const [next, items]: [Buffer, Buffer[]] = await this.withTarget(this.slots[0], (t) => (t as any).hscanBuffer(this.stateKey, sc, 'COUNT', this.o.scanCount));
        sc = next.toString();
        const fields = items.filter((_, i) => i % 2 === 0);
        if (!fields.length) continue;
        const p = this.source.pipeline();
        for (const f of fields) p.exists(f);
        const exists = (await p.exec())!.map(([, v]) => Number(v));
        const gone = fields.filter((_, i) => exists[i] === 0);
        if (gone.length) await this.processBatch(gone, 'check', () => undefined);
      } while (sc !== '0');
    }
    progress();
  }

  /** Processes keys named by keyspace notifications (deduplicated). */
  async syncKeys(keys: Buffer[]): Promise<void> {
    if (keys.length) await this.processBatch(keys, 'check', () => undefined);
  }

  /** Compares the source's keys with the target's (see Verification). */
  async verify(): Promise<Verification> {
    const types = Object.fromEntries(KEY_TYPES.map((t) => [t, { source: 0, copied: 0, newer: 0, expired: 0, missing: 0 }])) as Record<KeyType, TypeVerification>;
    const missingExamples: string[] = [];
    const onSource = new Set<string>();
    let recordedOnSource = 0;
    let cursor = '0';
    do {
      const [next, all]: [Buffer, Buffer[]] = await this.sourceCall('SCAN', cursor, 'COUNT', this.o.scanCount);
      cursor = next.toString();
      const keys = all.filter((k) => !k.subarray(0, STATE_PREFIX.length).equals(Buffer.from(STATE_PREFIX)) && !onSource.has(k.toString('base64')));
      if (!keys.length) continue;
      for (const k of keys) onSource.add(k.toString('base64'));
      const sp = this.source.pipeline();
      for (const k of keys) sp.type(k);
      const sourceTypes = (await sp.exec())!.map(([, v]) => str(v));
      const [targetTypes, states] = await this.withTarget(this.slots[0], async (t) => {
        const tp = t.pipeline();
        for (const k of keys) tp.type(k);
        const tt = (await tp.exec())!.map(([, v]) => str(v));
        return [tt, await (t as any).hmgetBuffer(this.stateKey, ...keys) as (Buffer | null)[]] as const;
      });
      keys.forEach((k, i) => {
        const st = sourceTypes[i] as KeyType;
        if (!types[st]) return; // gone meanwhile, or a type not copied
        const v = types[st];
        v.source++;
        const state = parseState(states[i]);
        if (state) recordedOnSource++;
        const tt = targetTypes[i];
        if (tt === 'none') {
          if (state && state.expireAt > 0 && state.expireAt <= Date.now() + 1000) v.expired++;
          else {
            v.missing++;
            if (missingExamples.length < 10) missingExamples.push(printable(k));
          }
        } else if (state && tt === state.type) v.copied++;
        else v.newer++;
      });
    } while (cursor !== '0');
    const stateSize = Number(await this.withTarget(this.slots[0], (t) => t.hlen(this.stateKey)));
    const copiedNotOnSource = Math.max(0, stateSize - recordedOnSource);
    const missing = KEY_TYPES.reduce((s, t) => s + types[t].missing, 0);
    const ok = missing === 0;
    const rows = KEY_TYPES.map((t) => `  ${t.padEnd(7)} ${String(types[t].source).padStart(9)} ${String(types[t].copied).padStart(9)} ${String(types[t].newer).padStart(9)} ${String(types[t].expired).padStart(9)} ${String(types[t].missing).padStart(9)}`);
    const total = (f: keyof TypeVerification) => KEY_TYPES.reduce((s, t) => s + types[t][f], 0);
    const summary = [
      `  ${'type'.padEnd(7)} ${'source'.padStart(9)} ${'copied'.padStart(9)} ${'newer'.padStart(9)} ${'expired'.padStart(9)} ${'missing'.padStart(9)}`,
      ...rows,
      `  ${'total'.padEnd(7)} ${String(total('source')).padStart(9)} ${String(total('copied')).padStart(9)} ${String(total('newer')).padStart(9)} ${String(total('expired')).padStart(9)} ${String(total('missing')).padStart(9)}`,
      ok ? 'verified: every source key is on the target (copied, or newer there and kept)'
        : `MISMATCH: ${missing} source key(s) not on the target, e.g. ${missingExamples.join(', ')}`,
      ...(copiedNotOnSource > 0 ? [`${copiedNotOnSource} key(s) copied earlier are no longer on the source (deleted there; --follow deletes them on the target)`] : []),
    ].join('\n');
    return { ok, types, copiedNotOnSource, missingExamples, summary };
  }
}

async function execAll(p: ReturnType<Redis['pipeline']>): Promise<void> {
  const res = await p.exec();
  const failed = res?.find(([err]) => err);
  if (failed) throw failed[0];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Keyspace notifications on the source: turns them on (adding K and A to what is set) and
 * subscribes on a connection of its own; `undefined` with the reason when not allowed.
 */
export async function watchSource(source: Redis, db: number, onKey: (key: Buffer) => void): Promise<{ stop: () => Promise<void> } | string> {
  let previous: string;
  try {
    const [, flags] = (await source.config('GET', 'notify-keyspace-events')) as string[];
    previous = flags ?? '';
    const wanted = new Set([...previous.replace('A', 'g$lshzxet'), 'K', 'g', '$', 'l', 's', 'h', 'z', 'x', 'e', 't']);
    await source.config('SET', 'notify-keyspace-events', [...wanted].join(''));
  } catch (err) {
    return `CONFIG SET notify-keyspace-events refused on the source (${(err as Error).message.split('\n')[0]})`;
  }
  const sub = source.duplicate();
  const prefix = Buffer.from(`__keyspace@${db}__:`);
  sub.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer) => onKey(channel.subarray(prefix.length)));
  await sub.psubscribe(`__keyspace@${db}__:*`);
  return {
    stop: async () => {
      sub.disconnect();
      await source.config('SET', 'notify-keyspace-events', previous).catch(() => undefined);
    },
  };
}

/**
 * The whole migration: the copy (resuming from the state), with `follow` the changes until
 * stopped and a last rescan, then the verification.
 */
export async function migrate(source: Redis, target: TargetFactory, opts: MigrateOptions = {}): Promise<MigrateResult> {
  const m = new Migration(source, target, opts);
  const log = opts.log ?? (() => undefined);
  try {
    let watcher: { stop: () => Promise<void> } | undefined;
    const dirty = new Map<string, Buffer>();
    const follow = opts.follow;
    if (follow) {
      if (follow.notifications !== false) {
        const w = await watchSource(source, follow.db ?? 0, (k) => dirty.set(k.toString('base64'), k));
        if (typeof w === 'string') m.notes.push(`${w}: changes are found by rescans only (every ${Math.round((follow.rescanIntervalMs ?? 60_000) / 1000)} s)`);
        else watcher = w;
      } else {
        m.notes.push('keyspace notifications not used: changes are found by rescans only');
      }
      for (const n of m.notes) log(n);
    }
    await m.pass('bulk', 'copy', follow ? follow.stop : undefined);
    if (follow) {
      const interval = follow.rescanIntervalMs ?? 60_000;
      let lastRescan = Date.now();
      log(watcher ? 'following the source\'s changes (keyspace notifications, and a rescan every '
        + `${Math.round(interval / 1000)} s) until stopped` : 'following the source by rescans until stopped');
      while (!follow.stop()) {
        const keys = [...dirty.values()];
        dirty.clear();
        await m.syncKeys(keys);
        opts.onProgress?.({ phase: 'follow', done: keys.length, total: keys.length, counts: { ...m.counts } });
        if (Date.now() - lastRescan >= interval) {
          await m.pass('check', 'rescan', follow.stop);
          lastRescan = Date.now();
        }
        await sleep(200);
      }
      log('stopping: the last changes, then a full rescan');
      await m.syncKeys([...dirty.values()]);
      dirty.clear();
      await watcher?.stop();
      await m.pass('check', 'rescan');
    }
    opts.onProgress?.({ phase: 'verify', done: 0, total: 0, counts: { ...m.counts } });
    const verification = await m.verify();
    return { counts: m.counts, verification, notes: m.notes };
  } finally {
    m.close();
  }
}
