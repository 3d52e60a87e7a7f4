/**
 * What a client saw of a failover, as figures and as a picture: the write log (one record
 * per write, each a SET followed by WAIT 1) and the Sentinel events around it. Pure
 * computation (the write figures are writes.ts's, which the failover benchmark and the
 * live tests use too), rendered with vega-lite.
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { longestGap, WriteRecord } from './writes';

export { confirmedWrites, longestGap, longestPause, writeOutage } from './writes';
export type { WriteRecord } from './writes';

/** One message a Sentinel published on its event channels (`+sdown`, `+switch-master`, ...). */
export interface SentinelEvent {
  at: number;
  /** Which Sentinel published it (the address the drill subscribed to). */
  sentinel: string;
  /** The channel: the event's name, e.g. `+odown`. */
  event: string;
  /** The message, e.g. `master mymaster 10.0.0.7 6379 #quorum 2/2`. */
  detail: string;
}

/** The milestones of a Sentinel failover, in order (the events the benchmark times too). */
export const FAILOVER_EVENTS = ['+sdown', '+odown', '+try-failover', '+elected-leader', '+selected-slave', '+promoted-slave', '+switch-master'] as const;

/** The Sentinel channels the drill puts on its timeline (besides these, only `-failover-abort-*`). */
export const TIMELINE_EVENTS: readonly string[] = [
  ...FAILOVER_EVENTS, '-sdown', '-odown', '+failover-state-select-slave', '+failover-state-reconf-slaves',
  '+failover-end', '+failover-end-for-timeout', '+convert-to-slave', '+tilt', '-tilt',
];

/** Whether a Sentinel event belongs on the timeline of master `masterName`. */
export function timelineEvent(e: Pick<SentinelEvent, 'event' | 'detail'>, masterName: string): boolean {
  if (!TIMELINE_EVENTS.includes(e.event) && !e.event.startsWith('-failover-abort')) return false;
  // The tilt mode is Sentinel-wide; every other event names the master it is about.
  return e.event.endsWith('tilt') || e.detail.split(' ').includes(masterName);
}

export interface Span { from: number; to: number; ms: number }

export interface DrillFigures {
  /** First write's start and last write's end: the span the drill covers. */
  startedAt: number;
  endedAt: number;
  /** When the drill caused the failover, or began waiting for one. */
  triggerAt: number;
  oldMaster: string;
  /** The master after the switch (null: no failover seen). */
  newMaster: string | null;
  /** The first `+switch-master` any Sentinel published, else when the drill saw the address change. */
  switchAt: number | null;
  writes: number;
  acknowledged: number;
  confirmed: number;
  failed: number;
  /** Failed writes by error (errorKind), most frequent first. */
  errors: Array<{ error: string; count: number }>;
  /** From the first write that failed on or after the trigger to the first write acknowledged after the switch (null: no write failed). */
  outage: Span | null;
  /** The longest gap between consecutive acknowledged writes. */
  longestGap: Span;
  /** WAIT-confirmed writes missing from the new master: lost. */
  lostConfirmed: number[];
  /** Acknowledged writes without a replica's confirmation missing from the new master. */
  discardedUnconfirmed: number[];
  /** Each failover milestone: the first time any Sentinel published it, in ms after the trigger. */
  milestones: Array<{ event: string; afterTriggerMs: number }>;
}

export interface DrillOutcome {
  writes: WriteRecord[];
  events: SentinelEvent[];
  triggerAt: number;
  oldMaster: string;
  newMaster: string | null;
  /** When the drill itself saw the Sentinels name another master (null: never). */
  detectedSwitchAt: number | null;
  /** n of the acknowledged writes the new master did not hold when read back (the old one, without a failover). */
  missing: readonly number[];
  masterName: string;
}

/** An error message's first sentence, at most 80 characters: what failed writes are counted by. */
export function errorKind(message: string): string {
  return message.split('. ')[0].slice(0, 80);
}

const span = (from: number, to: number): Span => ({ from, to, ms: Math.round(to - from) });

/** The drill's figures, from what it recorded. */
export function drillFigures(o: DrillOutcome): DrillFigures {
  const acked = o.writes.filter((w) => w.ack !== null);
  const failedWrites = o.writes.filter((w) => w.error !== null);
  const relevant = o.events.filter((e) => timelineEvent(e, o.masterName));
  const switchEvent = relevant.filter((e) => e.event === '+switch-master').reduce<number | null>((m, e) => (m === null ? e.at : Math.min(m, e.at)), null);
  const switchAt = o.newMaster === null ? null : switchEvent ?? o.detectedSwitchAt;
  const firstFailed = failedWrites.filter((w) => w.start >= o.triggerAt).reduce<WriteRecord | undefined>((m, w) => (!m || w.start < m.start ? w : m), undefined);
  let outage: Span | null = null;
  if (firstFailed) {
    // Writes are sequential, so the one acknowledged first after both the failure and the switch ends it.
    const after = Math.max(firstFailed.start, switchAt ?? firstFailed.start);
    const resumed = acked.filter((w) => (w.ack as number) >= after).reduce<number | null>((m, w) => (m === null ? w.ack : Math.min(m, w.ack as number)), null);
    outage = resumed === null ? span(firstFailed.start, o.writes.reduce((m, w) => Math.max(m, w.end ?? w.ack ?? w.start), 0)) : span(firstFailed.start, resumed);
  }
  const gap = longestGap(o.writes);
  const missing = new Set(o.missing);
  const errors = new Map<string, number>();
  for (const w of failedWrites) {
    const error = errorKind(w.error as string);
    errors.set(error, (errors.get(error) ?? 0) + 1);
  }
  const milestones: DrillFigures['milestones'] = [];
  for (const event of FAILOVER_EVENTS) {
    const times = relevant.filter((e) => e.event === event && (event !== '+sdown' || e.detail.startsWith('master '))).map((e) => e.at);
    if (times.length) milestones.push({ event, afterTriggerMs: Math.round(Math.min(...times) - o.triggerAt) });
  }
  return {
    startedAt: o.writes.length ? Math.min(...o.writes.map((w) => w.start)) : o.triggerAt,
    endedAt: o.writes.reduce((m, w) => Math.max(m, w.end ?? w.ack ?? w.start), o.triggerAt),
    triggerAt: o.triggerAt,
    oldMaster: o.oldMaster,
    newMaster: o.newMaster,
    switchAt,
    writes: o.writes.length,
    acknowledged: acked.length,
    confirmed: o.writes.filter((w) => w.confirmed).length,
    failed: failedWrites.length,
    errors: [...errors].map(([error, count]) => ({ error, count })).sort((a, b) => b.count - a.count),
    outage,
    longestGap: span(gap.from, gap.to),
    lostConfirmed: o.writes.filter((w) => w.confirmed && missing.has(w.n)).map((w) => w.n),
    discardedUnconfirmed: o.writes.filter((w) => w.ack !== null && !w.confirmed && missing.has(w.n)).map((w) => w.n),
    milestones,
  };
}

/** The drill's summary as printed at the end: one fact a line. */
export function summaryLines(f: DrillFigures): string[] {
  const at = (t: number | null) => (t === null ? '' : ` (${((t - f.triggerAt) / 1000).toFixed(2)} s after the trigger)`);
  const lines = [
    `master: ${f.oldMaster} -> ${f.newMaster ?? `${f.oldMaster} (no failover)`}${at(f.switchAt)}`,
    f.outage
      ? `outage: ${f.outage.ms} ms (first failed write to first write acknowledged after the switch)`
      : 'outage: none (no write failed)',
    `longest gap between acknowledged writes: ${f.longestGap.ms} ms`,
    `writes: ${f.writes}, acknowledged ${f.acknowledged} (${f.confirmed} confirmed by a replica), failed ${f.failed}`,
  ];
  if (f.errors.length) lines.push(`write errors: ${f.errors.slice(0, 4).map((e) => `${e.count} x ${e.error}`).join('; ')}`);
  lines.push(`confirmed writes lost: ${f.lostConfirmed.length} of ${f.confirmed}`);
  if (f.discardedUnconfirmed.length) lines.push(`acknowledged writes without a replica's confirmation discarded: ${f.discardedUnconfirmed.length}`);
  if (f.milestones.length) lines.push(`sentinel events (first, ms after the trigger): ${f.milestones.map((m) => `${m.event} ${m.afterTriggerMs}`).join(', ')}`);
  return lines;
}

/** A bin width (ms) giving at most about 300 bars over `durationMs`. */
export function binWidthMs(durationMs: number): number {
  for (const w of [50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000]) if (durationMs / w <= 300) return w;
  return 30_000;
}

/** The outcomes of a write on the timeline, in the order of its legend. */
export const WRITE_OUTCOMES = ['acknowledged', 'acknowledged, then lost', 'failed'] as const;
export interface WriteBin { t: number; status: typeof WRITE_OUTCOMES[number]; writes: number }

/**
 * Writes per bin of `binMs`, by outcome, t in seconds after `origin` (the bin's start):
 * acknowledged writes at their acknowledgement (those in `missing` as lost), failed ones
 * when they failed.
 */
export function writeBins(writes: WriteRecord[], origin: number, binMs: number, missing: ReadonlySet<number> = new Set()): WriteBin[] {
  const counts = new Map<string, WriteBin>();
  for (const w of writes) {
    const status: WriteBin['status'] = w.ack === null ? 'failed' : missing.has(w.n) ? 'acknowledged, then lost' : 'acknowledged';
    const at = w.ack ?? w.end ?? w.start;
    const bin = Math.floor((at - origin) / binMs);
    const key = `${status}:${bin}`;
    const row = counts.get(key) ?? { t: (bin * binMs) / 1000, status, writes: 0 };
    row.writes++;
    counts.set(key, row);
  }
  return [...counts.values()].sort((a, b) => a.t - b.t || a.status.localeCompare(b.status));
}

const seconds = (t: number, origin: number) => Math.round(t - origin) / 1000;

/** The vega-lite specification of the drill's timeline (exported for the tests). */
export function timelineSpec(o: DrillOutcome, f: DrillFigures): vl.TopLevelSpec {
  const origin = f.startedAt;
  const binMs = binWidthMs(f.endedAt - origin);
  const domain = [0, seconds(f.endedAt, origin)];
  const x = { field: 't', type: 'quantitative' as const, title: `seconds since the drill began (trigger at ${seconds(f.triggerAt, origin)} s)`, scale: { domain } };
  const events = o.events.filter((e) => timelineEvent(e, o.masterName))
    .map((e) => ({ t: seconds(e.at, origin), sentinel: e.sentinel, event: e.event, detail: e.detail }));
  const marks: Array<{ t: number; label: string }> = [{ t: seconds(f.triggerAt, origin), label: 'trigger' }];
  // The title names both masters; the label stays short.
  if (f.switchAt !== null) marks.push({ t: seconds(f.switchAt, origin), label: 'switch' });
  const outage = f.outage ? [{ t: seconds(f.outage.from, origin), t2: seconds(f.outage.to, origin), label: `outage ${f.outage.ms} ms` }] : [];
  const markers = {
    name: 'markers',
    data: { values: marks },
    mark: { type: 'rule', strokeDash: [4, 3], strokeWidth: 1.5 },
    encoding: { x, color: { value: '#333' } },
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `Failover drill: ${f.oldMaster} -> ${f.newMaster ?? 'no failover'}`,
    config: { font: 'sans-serif', legend: { labelLimit: 400 } },
    vconcat: [
      {
        width: 760,
        height: 220,
        title: `writes per ${binMs} ms (acknowledged ${f.acknowledged}, failed ${f.failed}, confirmed lost ${f.lostConfirmed.length})`,
        layer: [
          ...(outage.length ? [{
            name: 'outage',
            data: { values: outage },
            mark: { type: 'rect', color: '#f4cccc', opacity: 0.6 },
            encoding: { x, x2: { field: 't2' } },
          }, {
            name: 'outage_label',
            data: { values: outage },
            mark: { type: 'text', align: 'left', baseline: 'top', dx: 3, dy: 3, y: 0, color: '#a00' },
            encoding: { x, text: { field: 'label' } },
          }] : []),
          {
            name: 'writes',
            data: { values: writeBins(o.writes, origin, binMs, new Set(o.missing)) },
            mark: { type: 'bar', width: { band: 1 } },
            encoding: {
              x: { ...x, bin: { binned: true, step: binMs / 1000 } },
              x2: { field: 'end' },
              y: { field: 'writes', type: 'quantitative', stack: true, title: 'writes' },
              color: { field: 'status', type: 'nominal', title: 'outcome', scale: { domain: [...WRITE_OUTCOMES], range: ['#4c78a8', '#f58518', '#e45756'] } },
            },
            transform: [{ calculate: `datum.t + ${binMs / 1000}`, as: 'end' }],
          },
          markers,
          {
            name: 'marker_labels',
            data: { values: marks },
            mark: { type: 'text', align: 'left', baseline: 'bottom', angle: 0, dx: 3, y: 12 },
            encoding: { x, text: { field: 'label' } },
          },
        ],
      },
      {
        width: 760,
        height: { step: 28 },
        title: 'Sentinel events',
        layer: [
          markers,
          {
            name: 'events',
            data: { values: events },
            mark: { type: 'point', filled: true, size: 70 },
            encoding: {
              x,
              y: { field: 'sentinel', type: 'nominal', title: null },
              color: { field: 'event', type: 'nominal', title: 'Sentinel event', scale: { scheme: 'tableau20' } },
              shape: { field: 'event', type: 'nominal' },
              tooltip: [{ field: 'event' }, { field: 'detail' }, { field: 't' }],
            },
          },
        ],
      },
    ],
    resolve: { scale: { color: 'independent', shape: 'independent' } },
  } as vl.TopLevelSpec;
}

/** The timeline as SVG, rendered by vega (no browser: renderer 'none'). */
export async function timelineSvg(o: DrillOutcome, f: DrillFigures): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(timelineSpec(o, f)).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
