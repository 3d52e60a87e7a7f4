/**
 * `redis-ha drill`: a failover rehearsal seen from an application. It writes continuously
 * through Sentinel discovery with the client settings the examples recommend (as the `app`
 * user; every write a unique key, SET then WAIT 1, so "confirmed" means a replica had it),
 * causes a failover or waits for one (someone deletes the master pod, a chaos tool acts),
 * puts the Sentinels' events on the same clock, and at the end reads every acknowledged
 * key back from the new master: the outage and the confirmed writes lost.
 *
 * The core (runDrill) works against a small DrillTarget, so the tests can drive it with
 * recorded or stand-in clients; drill-connection.ts makes one from the command line's
 * connection options.
 */
import { DrillOutcome, SentinelEvent } from './timeline';
import { WriteRecord } from './writes';

/**
 * The recommended client settings: CLIENT_SETTINGS of examples/typescript/sentinel-client.ts
 * (test/unit/examples.test.ts keeps them equal; lib/ cannot import the examples).
 */
export const CLIENT_SETTINGS = {
  connectTimeoutMs: 250,
  commandTimeoutMs: 1000,
  retryDelayMs: 50,
  sentinelRetryDelayMs: 100,
  retryForMs: 30_000,
} as const;

/** How long WAIT 1 may wait for a replica's acknowledgement (the benchmark's writer waits as long). */
export const WAIT_TIMEOUT_MS = 500;

/** What the drill sends commands through (an ioredis client). */
export interface CommandClient {
  call(command: string, ...args: string[]): Promise<unknown>;
}

/** What the drill needs of the system under test. */
export interface DrillTarget {
  /** The application's client of the master: Sentinel discovery, the examples' settings, user app. */
  readonly writer: CommandClient;
  /** The master's address ("host:port") as the Sentinels name it now; rejects while they do not agree. */
  masterAddress(): Promise<string>;
  /** Subscribes to every reachable Sentinel's events; `sentinels` are those subscribed to, `skipped` why others were not. */
  subscribe(onEvent: (e: SentinelEvent) => void): Promise<{ sentinels: string[]; skipped: string[]; close(): Promise<void> }>;
  /** The values of `keys` on the Redis server at `address` (as the application user). */
  read(address: string, keys: string[]): Promise<Array<string | null>>;
  /** Removes the drill's keys there (best effort). */
  remove(address: string, keys: string[]): Promise<void>;
}

export type DrillPhase = 'connecting' | 'writing' | 'causing a failover' | 'waiting for a failover' | 'switched, writing to the new master' | 'reading back' | 'done';

export interface DrillStatus {
  phase: DrillPhase;
  master: string;
  acknowledged: number;
  confirmed: number;
  failed: number;
  /** The latest Sentinel event, e.g. "+odown". */
  lastEvent?: string;
  /** ms since the drill began. */
  elapsedMs: number;
}

/** Where the drill reports while it runs (consoleProgress prints it). */
export interface DrillProgress {
  status(s: DrillStatus): void;
  /** A line worth keeping: a phase, a Sentinel event, a note. */
  line(text: string): void;
  close(): void;
}

export interface DrillCause {
  /** For the progress line: "safe manual failover", "SENTINEL FAILOVER". */
  readonly name: string;
  /** Causes the failover of `master` (resolves when the command is done; the drill watches for the switch itself). */
  run(master: string): Promise<unknown>;
}

export interface DrillOptions {
  readonly masterName: string;
  /** Causes the failover; undefined: wait for one caused by someone else. */
  readonly cause?: DrillCause;
  /** How long after the trigger a failover may take to happen. */
  readonly timeoutMs: number;
  /** Writing before the trigger. */
  readonly beforeMs: number;
  /** Writing after the first write the new master acknowledged. */
  readonly afterMs: number;
  /** At most this many writes per second (0: as fast as they are answered). */
  readonly rate: number;
  /** Keys are `<prefix>:<n>`. */
  readonly prefix: string;
  /** Each key expires after this many seconds, in case the drill cannot remove them. */
  readonly ttlSeconds: number;
  readonly progress: DrillProgress;
  /** Keep the keys after reading them back (default: remove them). */
  readonly keepKeys?: boolean;
}

/** What the drill recorded (the figures come from it: timeline.ts drillFigures), and what it noticed on the way. */
export interface DrillRun extends DrillOutcome {
  /** The Sentinels subscribed to, and why others were not. */
  sentinels: string[];
  skippedSentinels: string[];
  /** What went wrong in causing the failover or reading back, if anything. */
  problems: string[];
}

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const duration = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${Math.round(ms / 1000)} s`);

/** The new master named by a `+switch-master` message (`<name> <old-ip> <old-port> <new-ip> <new-port>`), if it is about `masterName`. */
export function switchedTo(e: Pick<SentinelEvent, 'event' | 'detail'>, masterName: string): string | undefined {
  if (e.event !== '+switch-master') return undefined;
  const [name, , , host, port] = e.detail.split(' ');
  return name === masterName && host && port ? `${host}:${port}` : undefined;
}

/** The writer: SET `<prefix>:<n>` n EX ttl, then WAIT 1, one after another until stopped. */
class Writer {
  readonly log: WriteRecord[] = [];
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(private readonly client: CommandClient, private readonly o: Pick<DrillOptions, 'prefix' | 'ttlSeconds' | 'rate'>) {
    this.done = this.loop();
  }

  get acknowledged(): number { return this.log.filter((w) => w.ack !== null).length; }

  /** Time of the latest acknowledgement (0: none). */
  lastAck(): number {
    for (let i = this.log.length - 1; i >= 0; i--) if (this.log[i].ack !== null) return this.log[i].ack as number;
    return 0;
  }

  private async loop(): Promise<void> {
    for (let n = 0; !this.stopped; n++) {
      const w: WriteRecord = { n, start: now(), ack: null, confirmed: false, error: null, attempts: 1 };
      this.log.push(w);
      try {
        await this.client.call('SET', `${this.o.prefix}:${n}`, String(n), 'EX', String(this.o.ttlSeconds));
        w.ack = now();
        try {
          w.confirmed = Number(await this.client.call('WAIT', '1', String(WAIT_TIMEOUT_MS))) >= 1;
        } catch {
          w.confirmed = false;
        }
      } catch (err) {
        w.error = (err as Error).message ?? String(err);
      }
      w.end = now();
      // A failed write is tried again (as the next write) after the examples' retry delay.
      const pause = Math.max(w.error ? CLIENT_SETTINGS.retryDelayMs : 0, this.o.rate ? w.start + 1000 / this.o.rate - w.end : 0);
      if (pause > 0) await sleep(pause);
    }
  }

  async stop(): Promise<WriteRecord[]> {
    this.stopped = true;
    await this.done;
    return this.log;
  }
}

/** `read` tried up to three times, half a second apart (a server just promoted or reconfigured drops its clients). */
async function retried<T>(read: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (err) {
      if (attempt >= 3) throw err;
      await sleep(500);
    }
  }
}

/** Runs the drill (see the file's comment). Never throws for what happens to the system: that is in the result. */
export async function runDrill(target: DrillTarget, o: DrillOptions): Promise<DrillRun> {
  const began = now();
  const events: SentinelEvent[] = [];
  const problems: string[] = [];
  let phase: DrillPhase = 'connecting';
  let switched: { to: string; at: number } | undefined;
  let oldMaster = await target.masterAddress();
  let master = oldMaster;
  const setPhase = (p: DrillPhase, note = '') => {
    phase = p;
    o.progress.line(`${p}${note}`);
  };

  const subscription = await target.subscribe((e) => {
    events.push(e);
    if (e.event === '+switch-master' || e.event === '+odown' || e.event === '+sdown' || e.event.startsWith('-failover-abort') || e.event === '+try-failover' || e.event === '+elected-leader' || e.event === '+promoted-slave') {
      o.progress.line(`${e.sentinel}: ${e.event} ${e.detail}`);
    }
    const to = switchedTo(e, o.masterName);
    if (to && to !== oldMaster && !switched && phase !== 'writing') switched = { to, at: e.at };
  });
  o.progress.line(`master ${oldMaster}; Sentinel events from ${subscription.sentinels.join(', ') || 'no Sentinel'}`
    + `${subscription.skipped.length ? ` (not from: ${subscription.skipped.join('; ')})` : ''}`);

  const writer = new Writer(target.writer, o);
  let lastEvent: string | undefined;
  const ticker = setInterval(() => {
    lastEvent = events.length ? events[events.length - 1].event : undefined;
    const log = writer.log;
    o.progress.status({
      phase, master, acknowledged: writer.acknowledged, confirmed: log.filter((w) => w.confirmed).length,
      failed: log.filter((w) => w.error !== null).length, lastEvent, elapsedMs: now() - began,
    });
  }, 200);

  let triggerAt = 0;
  let writes: WriteRecord[] = [];
  let missing: number[] = [];
  try {
    setPhase('writing', ` (${o.beforeMs} ms before the ${o.cause ? 'failover' : 'wait'})`);
    await sleep(o.beforeMs);
    // The master may have moved in between (someone else's failover): the drill starts from the current one.
    oldMaster = await target.masterAddress().catch(() => oldMaster);
    master = oldMaster;
    triggerAt = now();
    let causeDone: Promise<void> = Promise.resolve();
    if (o.cause) {
      setPhase('causing a failover', `: ${o.cause.name} of ${oldMaster}`);
      causeDone = o.cause.run(oldMaster).then(() => undefined, (err: Error) => { problems.push(`${o.cause!.name}: ${err.message}`); });
    } else {
      setPhase('waiting for a failover', ` of ${oldMaster} (up to ${duration(o.timeoutMs)})`);
    }
    const deadline = triggerAt + o.timeoutMs;
    let causeFailed = false;
    void causeDone.then(() => { causeFailed = problems.length > 0; });
    while (!switched && now() < deadline && !causeFailed) {
      const current = await target.masterAddress().catch(() => undefined);
      if (current && current !== oldMaster && !switched) switched = { to: current, at: now() };
      if (!switched) await sleep(200);
    }
    if (switched) {
      master = switched.to;
      setPhase('switched, writing to the new master', `: ${oldMaster} -> ${switched.to}`);
      // Until the new master acknowledges a write (or the time is up), then a little longer.
      const from = switched.at;
      while (writer.lastAck() < from && now() < deadline + o.afterMs) await sleep(50);
      if (writer.lastAck() < from) problems.push(`no write was acknowledged after the switch to ${switched.to}`);
      await sleep(o.afterMs);
    } else if (!causeFailed) {
      problems.push(`no failover within ${duration(o.timeoutMs)}`);
    }
    await causeDone;
  } finally {
    writes = await writer.stop();
    clearInterval(ticker);
    await subscription.close();
  }

  // Every acknowledged write must be on the master now; the confirmed ones missing are lost.
  setPhase('reading back');
  const readFrom = switched?.to ?? oldMaster;
  const acked = writes.filter((w) => w.ack !== null);
  const keys = acked.map((w) => `${o.prefix}:${w.n}`);
  try {
    for (let i = 0; i < acked.length; i += 1000) {
      const values = await retried(() => target.read(readFrom, keys.slice(i, i + 1000)));
      values.forEach((v, j) => { if (v !== String(acked[i + j].n)) missing.push(acked[i + j].n); });
    }
  } catch (err) {
    problems.push(`reading the writes back from ${readFrom}: ${(err as Error).message}`);
    missing = [];
  }
  if (!o.keepKeys) {
    // Every key the drill tried: a write that failed on the client (a timeout) may have been applied.
    const all = writes.map((w) => `${o.prefix}:${w.n}`);
    try {
      for (let i = 0; i < all.length; i += 1000) await target.remove(readFrom, all.slice(i, i + 1000));
    } catch {
      // They expire after ttlSeconds anyway.
    }
  }
  setPhase('done');
  o.progress.close();
  return {
    writes, events, triggerAt, oldMaster, newMaster: switched?.to ?? null, detectedSwitchAt: switched?.at ?? null,
    missing, masterName: o.masterName, sentinels: subscription.sentinels, skippedSentinels: subscription.skipped, problems,
  };
}

/**
 * Progress on a terminal: one status line rewritten in place, Sentinel events and phases
 * above it. Elsewhere (a log, CI): those lines, and the status every `everyMs`.
 */
export function consoleProgress(out: NodeJS.WriteStream, everyMs = 5000): DrillProgress {
  const tty = Boolean(out.isTTY);
  let lastPrinted = 0;
  let current = '';
  const stamp = () => new Date().toISOString().slice(11, 23);
  const render = (s: DrillStatus) => `${(s.elapsedMs / 1000).toFixed(1)} s  ${s.phase}  master ${s.master}  `
    + `writes ok ${s.acknowledged} (confirmed ${s.confirmed}) failed ${s.failed}${s.lastEvent ? `  last event ${s.lastEvent}` : ''}`;
  return {
    status(s) {
      current = render(s);
      if (tty) out.write(`\r\x1b[K${current.slice(0, (out.columns ?? 120) - 1)}`);
      else if (s.elapsedMs - lastPrinted >= everyMs) {
        lastPrinted = s.elapsedMs;
        out.write(`${stamp()} ${current}\n`);
      }
    },
    line(text) {
      out.write(`${tty ? '\r\x1b[K' : ''}${stamp()} ${text}\n`);
      if (tty && current) out.write(current.slice(0, (out.columns ?? 120) - 1));
    },
    close() {
      if (tty) out.write('\r\x1b[K');
    },
  };
}
