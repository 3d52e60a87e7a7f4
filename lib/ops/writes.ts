/**
 * The write log of a client writing through a failover (one record per write, each a SET
 * followed by WAIT 1) and the figures read from it. Shared by `redis-ha drill`
 * (timeline.ts), the failover benchmark and the live tests (harness/live-cluster.ts
 * re-exports them); no plotting here, so the harness does not load vega.
 */

/** One write: `<prefix>:<n>` = n, then WAIT 1. Times are epoch milliseconds. */
export interface WriteRecord {
  n: number;
  start: number;
  /** When the server acknowledged the SET (null: it failed). */
  ack: number | null;
  /** WAIT 1 answered 1 or more: a replica had it. */
  confirmed: boolean;
  error: string | null;
  attempts: number;
  /** The error the first attempt met, when the write was retried. */
  firstError?: string;
  /** When the write was over (acknowledged and WAIT answered, or failed). */
  end?: number;
}

/**
 * Write outage around a fault at `faultAt`: the longest gap between consecutive
 * acknowledged writes from just before the fault on. The writer acknowledges writes
 * every few milliseconds while a master is up, so that gap runs from the last write the
 * old master acknowledged to the first one the new master acknowledged.
 */
export function writeOutage(log: WriteRecord[], faultAt: number): number {
  return longestPause(log.filter((w) => w.ack !== null && (w.ack as number) >= faultAt - 1000));
}

/** Longest gap between consecutive acknowledged writes: the ack before it and the ack after. */
export function longestGap(log: WriteRecord[]): { from: number; to: number } {
  const acks = log.filter((w) => w.ack !== null).map((w) => w.ack as number).sort((a, b) => a - b);
  let gap = { from: 0, to: 0 };
  for (let i = 1; i < acks.length; i++) if (acks[i] - acks[i - 1] > gap.to - gap.from) gap = { from: acks[i - 1], to: acks[i] };
  return gap;
}

/** Longest gap between consecutive acknowledged writes, in ms. */
export function longestPause(log: WriteRecord[]): number {
  const gap = longestGap(log);
  return gap.to - gap.from;
}

export function confirmedWrites(log: WriteRecord[]): number[] {
  return log.filter((w) => w.confirmed).map((w) => w.n);
}
