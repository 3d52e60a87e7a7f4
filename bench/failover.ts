// Failover benchmark: `npm run bench:failover -- --env production --trials 5`.
// Runs the environment's rendered overlay in the pod simulator with a client writing
// continuously, then crashes the master N times and does N planned switchovers (graceful
// deletion of the master pod); `--kinds partition` cuts the master's network N times;
// `--kinds asymmetric` splits the network N times into {old master, one replica, one
// Sentinel, the client} / {other replica, two Sentinels} for 3 x downAfter, then heals;
// `--kinds crash-restart` crashes the master's Redis container and lets it restart at once,
// as the kubelet does (whether a failover follows is up to the design; `to` says).
// `--preload-mb N` first loads about N MB of 1 KB values into the master.
// `--via proxy` makes the client use only the proxy tier's Services (redis-write for
// writes, redis-read for reads) instead of Sentinel discovery.
// Prints per trial and as p50/max: the write outage, the WAIT-confirmed writes lost (and
// how far into the fault the last lost one was made), the acknowledged writes discarded,
// the full and partial resyncs the fault cost, and for switchovers the failed writes and
// longest pause. Writes the results as JSON (bench-results/failover-<env>.json).
// Reports, never asserts.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { checkLivePrerequisites } from '../harness/sim';
import { sleep, waitFor } from '../harness/sim/util';
import { cliAs, confirmedWrites, LiveCluster, longestGap, longestPause, resyncsBetween, Resyncs, ROOT, WriteRecord, writeOutage } from '../harness/live-cluster';

const KINDS = ['crash', 'crash-restart', 'switchover', 'partition', 'asymmetric'] as const;
type Kind = (typeof KINDS)[number];

interface Trial {
  kind: Kind;
  trial: number;
  from: string;
  to: string;
  /** Longest gap, from just before the fault on, between acknowledged writes that were kept. */
  outageMs: number;
  longestPauseMs: number;
  failedWrites: number;
  /** Failed writes by error message (its first 60 characters). */
  errors: Record<string, number>;
  /** Writes the server acknowledged (SET returned OK). */
  ackedWrites: number;
  confirmedWrites: number;
  lostConfirmedWrites: number;
  /** When the last lost WAIT-confirmed write was acknowledged, in ms after the fault (null: none lost). */
  lastLostConfirmedAtMs: number | null;
  /** Acknowledged writes (confirmed or not) missing from the master at the end. */
  discardedWrites: number;
  lastDiscardedAtMs: number | null;
  /** Resyncs the Redis nodes served from just before the fault until the cluster was healthy again. */
  resyncs: Resyncs;
  /** asymmetric: the two sides of the split. */
  groups?: string[][];
  timeline: string;
}

const program = new Command()
  .name('bench:failover')
  .option('--env <name>', 'environment overlay to run', 'production')
  .option('--trials <n>', 'crashes and planned switchovers, each', '5')
  .option('--kinds <list>', `which faults to run: ${KINDS.join(', ')} (comma-separated)`, 'crash,switchover')
  .option('--preload-mb <n>', 'before the trials, load about this many MB of 1 KB values into the master', '0')
  .option('--via <client>', 'how the client finds the master: sentinel (discovery) or proxy (the redis-write Service only)', 'sentinel')
  .option('--out <file>', 'JSON results file (default bench-results/failover-<env>[-proxy].json)');
program.parse(process.argv);
const opts = program.opts<{ env: string; trials: string; kinds: string; preloadMb: string; via: string; out?: string }>();
if (opts.via !== 'sentinel' && opts.via !== 'proxy') {
  console.error(`--via must be sentinel or proxy, got ${JSON.stringify(opts.via)}`);
  process.exit(2);
}
const trials = Number(opts.trials);
const kinds = opts.kinds.split(',').map((k) => k.trim());
for (const k of kinds) {
  if (!(KINDS as readonly string[]).includes(k)) {
    console.error(`--kinds: unknown fault ${JSON.stringify(k)}; known: ${KINDS.join(', ')}`);
    process.exit(2);
  }
}
const knownEnvs = existsSync(join(ROOT, 'dist', 'overlays')) ? readdirSync(join(ROOT, 'dist', 'overlays')).sort() : [];
if (!knownEnvs.includes(opts.env)) {
  console.error(`--env: no overlay ${JSON.stringify(opts.env)} in dist/overlays; known: ${knownEnvs.join(', ') || 'none (run npm run synth first)'}`);
  process.exit(2);
}
if (!Number.isInteger(trials) || trials < 1 || trials > 100) {
  console.error(`--trials must be an integer from 1 to 100, got ${JSON.stringify(opts.trials)}`);
  process.exit(2);
}
const preloadMb = Number(opts.preloadMb);
if (!Number.isInteger(preloadMb) || preloadMb < 0) {
  console.error(`--preload-mb must be a whole number of MB, got ${JSON.stringify(opts.preloadMb)}`);
  process.exit(2);
}

async function trial(live: LiveCluster, kind: Kind, n: number): Promise<Trial> {
  await live.waitHealthy(90_000);
  const from = await live.onlyMaster();
  const prefix = `${kind}-${n}`;
  let groups: string[][] | undefined;
  if (kind === 'asymmetric') {
    // The old master keeps one replica, one Sentinel and the client; the other replica and
    // the two other Sentinels (a majority) are on the far side.
    const replicas = live.redisPods().filter((p) => p !== from).sort();
    const sentinels = live.sentinelPods().sort();
    groups = [[from, replicas[0], sentinels[0], 'app'], [replicas[1], ...sentinels.slice(1)]];
  }
  const countersBefore = await live.syncCounters();
  await live.agent.call('startWriter', { prefix, retries: kind === 'switchover' ? 40 : 0 });
  // A real fault comes at a random moment of Sentinel's one-second timers; without the
  // random part, the fault would keep the same phase relative to the health check above.
  await sleep(1000 + Math.random() * 2000);
  const faultAt = Date.now();
  let log: WriteRecord[];
  let to = '?';
  try {
    if (kind === 'crash') {
      await live.sim.killContainer(from, 'redis', { restart: false });
    } else if (kind === 'crash-restart') {
      // Restarted after the simulator's back-off (1 s), like the kubelet's first restart.
      await live.sim.killContainer(from, 'redis', { restart: true });
      // Failover or not, the outage ends with the first write acknowledged after the crash.
      // The killed process may still answer for a few ms after killContainer returns (the
      // sandbox's inner processes die a moment after bwrap); nothing else can answer before
      // the 1 s back-off is over, so only a write acknowledged 500 ms on counts.
      const resumedAfter = Date.now() + 500;
      await waitFor(async () => (await live.agent.call<number>('writerLastAck')) > resumedAfter, 180_000, 'a write acknowledged after the crash');
    } else if (kind === 'partition') {
      // The master's network is cut, its process lives on (a node failure looks the same to Sentinel).
      await live.sim.partition(from);
    } else if (kind === 'asymmetric') {
      await live.sim.partitionGroups(groups!);
      // Long enough for the majority to fail over (downAfter + election + promotion) and
      // for the minority side to go on as long as it will.
      await sleep(3 * live.downAfterMs);
      await live.sim.healPartitions();
    } else {
      void live.sim.deletePod(from, { grace: true, recreate: true });
    }
    // After an asymmetric split, the Sentinels may agree on the old master (no failover);
    // after a crash-restart, `to` is read once the cluster is healthy again.
    if (kind !== 'crash-restart') {
      to = await live.waitForSentinelMasterOtherThan(from, kind === 'asymmetric' ? 20_000 : 60_000)
        .catch((err) => { if (kind === 'asymmetric') return from; throw err; });
    }
    // After a split, the old master must be demoted and resynchronised before the client is surely on the kept side.
    if (kind === 'asymmetric') await live.waitHealthy(90_000);
    const switchedAt = Date.now();
    await waitFor(async () => (await live.agent.call<number>('writerLastAck')) > switchedAt, 30_000, 'the client to write to the new master');
    await sleep(1000);
  } finally {
    log = await live.agent.call<WriteRecord[]>('stopWriter', {}, 60_000);
  }
  // Every Sentinel should name the new master by now (the last one learns it from a hello
  // message within about two seconds); say so when one does not.
  const views = Object.entries((await live.view()).sentinels).map(([ip, v]) => `${ip}: ${v.address?.[0] ?? '?'} epoch ${v.master?.['config-epoch'] ?? '?'}`);
  if (new Set(views.map((v) => v.split(' ')[1])).size !== 1) console.log(`    Sentinels disagree after the trial: ${views.join('; ')}`);
  const timeline = `${sentinelTimeline(live, faultAt)} | longest pause ${pauseWindow(log, faultAt)}`;
  const confirmed = confirmedWrites(log);
  const acked = log.filter((w) => w.ack !== null);
  // Every acknowledged write the master no longer holds (the confirmed ones among them are "lost").
  const discarded = new Set(await live.agent.call<number[]>('missing', { prefix, ns: acked.map((w) => w.n) }, 120_000));
  const lost = confirmed.filter((w) => discarded.has(w));
  const ackOf = new Map(acked.map((w) => [w.n, w.ack as number]));
  // (reduce, not Math.max(...): a split can discard a few hundred thousand writes)
  const lastAt = (ns: number[]) => (ns.length ? Math.round(ns.reduce((m, i) => Math.max(m, ackOf.get(i)!), -Infinity) - faultAt) : null);
  if (kind === 'crash') await live.sim.restartContainer(from, 'redis');
  else if (kind === 'partition') await live.sim.heal(from);
  else if (kind === 'switchover') {
    await live.sim.waitPodReady(from, 60_000);
    // The handover's own account, from the deleted pod's log.
    const handover = live.sim.logs(from, 'redis', 400, { previous: true }).split('\n').filter((l) => l.includes('redis-prestop'));
    for (const line of handover) console.log(`    ${line}`);
  }
  // The resyncs of this fault include the old master's return as a replica.
  await live.waitHealthy(preloadMb ? 300_000 : 90_000);
  const resyncs = resyncsBetween(countersBefore, await live.syncCounters());
  if (kind === 'crash-restart') to = await live.onlyMaster();
  return {
    kind, trial: n, from, to,
    outageMs: Math.round(writeOutage(log.filter((w) => !discarded.has(w.n)), faultAt)),
    longestPauseMs: Math.round(longestPause(log)),
    failedWrites: log.filter((w) => w.error !== null).length,
    errors: log.reduce<Record<string, number>>((m, w) => {
      if (w.error !== null) m[w.error.slice(0, 60)] = (m[w.error.slice(0, 60)] ?? 0) + 1;
      return m;
    }, {}),
    ackedWrites: acked.length,
    confirmedWrites: confirmed.length,
    lostConfirmedWrites: lost.length,
    lastLostConfirmedAtMs: lastAt(lost),
    discardedWrites: discarded.size,
    lastDiscardedAtMs: lastAt([...discarded]),
    resyncs,
    groups,
    timeline,
  };
}

const EVENTS = ['+sdown master', '+odown', '+try-failover', '+elected-leader', '+selected-slave', '+promoted-slave', '+switch-master'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * When each Sentinel logged the failover's milestones, in ms after the fault
 * ("+sdown master 5083/5101/5140 | +odown 5102 | ..."), so a slow trial shows which
 * step took the time. Sentinel's log lines carry local wall-clock time in milliseconds.
 */
function sentinelTimeline(live: LiveCluster, faultAt: number): string {
  const seen = new Map<string, number[]>();
  for (const pod of live.sentinelPods()) {
    for (const line of live.sim.logs(pod, 'sentinel', 400).split('\n')) {
      const m = /(\d{2}) (\w{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2})\.(\d{3}) [#*] (\+[a-z-]+(?: master)?)/.exec(line);
      if (!m) continue;
      const event = EVENTS.find((e) => m[8].startsWith(e));
      if (!event) continue;
      const at = new Date(Number(m[3]), MONTHS.indexOf(m[2]), Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]), Number(m[7])).getTime() - faultAt;
      if (at < 0 || at > 60_000) continue;
      seen.set(event, [...(seen.get(event) ?? []), at]);
    }
  }
  return EVENTS.filter((e) => seen.has(e)).map((e) => `${e} ${seen.get(e)!.sort((a, b) => a - b).join('/')}`).join(' | ');
}

/** "<from>-<to>" ms after the fault: where the longest gap between acknowledged writes lies. */
function pauseWindow(log: WriteRecord[], faultAt: number): string {
  const gap = longestGap(log);
  return `${Math.round(gap.from - faultAt)}-${Math.round(gap.to - faultAt)}`;
}

/** About `mb` MB of 1 KB values written into the master by redis-benchmark inside its pod, then a healthy cluster. */
async function preload(live: LiveCluster, mb: number): Promise<void> {
  await live.waitHealthy(90_000);
  const master = await live.onlyMaster();
  const timeoutS = 60 + mb;
  const load = await live.sim.exec(master, ['sh', '-c',
    `timeout ${timeoutS} redis-benchmark --user app -a "$(cat /etc/redis-auth/app-password)" -t set -n ${mb * 1000} -r 100000000 -d 1000 -P 64 -c 4 -q >/dev/null 2>&1; ` +
    `${cliAs('operations', 5)} INFO memory | grep "^used_memory:"`],
  { container: 'redis', timeoutMs: (timeoutS + 20) * 1000 });
  const used = Number(/used_memory:(\d+)/.exec(load.stdout)?.[1]);
  console.log(`preloaded ${master}: used_memory ${Math.round(used / 1048576)} MB`);
  await live.waitHealthy(300_000);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function main() {
  const missing = checkLivePrerequisites();
  if (missing) {
    console.error(`bench:failover cannot run: ${missing}`);
    process.exit(1);
  }
  const live = await LiveCluster.start(opts.env);
  const results: Trial[] = [];
  try {
    // The proxy's Services as an application in the cluster reaches them (the simulator has
    // no Service port mapping: the read Service's port is the proxy pods' read port).
    if (opts.via === 'proxy') await live.agent.call('connectProxy', { write: { host: 'redis-write', port: 6379 }, read: { host: 'redis-read', port: 6380 } }, 120_000);
    if (preloadMb) await preload(live, preloadMb);
    for (const kind of kinds as Kind[]) {
      for (let n = 1; n <= trials; n++) {
        const t = await trial(live, kind, n);
        results.push(t);
        if (t.groups) console.log(`    split: ${t.groups.map((g) => `{${g.join(', ')}}`).join(' / ')}`);
        console.log(`${kind} ${n}: ${t.from} -> ${t.to}  outage ${t.outageMs} ms  longest pause ${t.longestPauseMs} ms  ` +
          `failed writes ${t.failedWrites}  lost confirmed ${t.lostConfirmedWrites}/${t.confirmedWrites}` +
          `${t.lastLostConfirmedAtMs !== null ? ` (last made ${t.lastLostConfirmedAtMs} ms after the fault)` : ''}  ` +
          `acked then discarded ${t.discardedWrites}/${t.ackedWrites}  ` +
          `resyncs: full ${t.resyncs.full}, partial ${t.resyncs.partialOk}, partial refused ${t.resyncs.partialErr}`);
        console.log(`    sentinel events (ms after the fault): ${t.timeline}`);
        if (t.failedWrites) console.log(`    write errors: ${Object.entries(t.errors).map(([e, k]) => `${k} x ${JSON.stringify(e)}`).join(', ')}`);
      }
    }
  } catch (err) {
    console.error(`bench:failover: ${(err as Error).message}\n${await live.report(400)}`);
    process.exitCode = 1;
  } finally {
    await live.stop();
  }
  const summary: Record<string, unknown> = { env: opts.env, via: opts.via, downAfterMs: live.downAfterMs, trials, preloadMb };
  console.log(`\nenvironment ${opts.env}, client via ${opts.via}, downAfter ${live.downAfterMs} ms, ${trials} trials each${preloadMb ? `, ${preloadMb} MB preloaded` : ''}`);
  for (const kind of KINDS) {
    const rows = results.filter((r) => r.kind === kind);
    if (!rows.length) continue;
    const metric = kind === 'switchover' ? rows.map((r) => r.longestPauseMs) : rows.map((r) => r.outageMs);
    const sum = (f: (r: Trial) => number) => rows.reduce((a, r) => a + f(r), 0);
    const lastLost = rows.map((r) => r.lastLostConfirmedAtMs).filter((v): v is number => v !== null);
    const stats = {
      p50: percentile(metric, 50),
      max: Math.max(...metric),
      failedWrites: sum((r) => r.failedWrites),
      confirmedWrites: sum((r) => r.confirmedWrites),
      lostConfirmedWrites: sum((r) => r.lostConfirmedWrites),
      lastLostConfirmedAtMsMax: lastLost.length ? Math.max(...lastLost) : null,
      ackedWrites: sum((r) => r.ackedWrites),
      discardedWrites: sum((r) => r.discardedWrites),
      resyncs: { full: sum((r) => r.resyncs.full), partialOk: sum((r) => r.resyncs.partialOk), partialErr: sum((r) => r.resyncs.partialErr) },
      resyncsPerFailover: `${rows.map((r) => `${r.resyncs.full}F/${r.resyncs.partialOk}P`).join(' ')}`,
      failovers: rows.filter((r) => r.to !== r.from).length,
    };
    summary[kind] = stats;
    const label = kind === 'switchover' ? 'longest write pause' : 'write outage';
    const vsDownAfter = (ms: number) => `downAfter ${ms < live.downAfterMs ? '-' : '+'} ${Math.abs(ms - live.downAfterMs)} ms`;
    const relative = kind !== 'switchover' ? ` (p50 = ${vsDownAfter(stats.p50)}, max = ${vsDownAfter(stats.max)})` : '';
    console.log(`${kind.padEnd(10)} ${label}: p50 ${stats.p50} ms, max ${stats.max} ms${relative}; ` +
      `failed writes ${stats.failedWrites}; lost confirmed writes ${stats.lostConfirmedWrites}/${stats.confirmedWrites}` +
      `${stats.lastLostConfirmedAtMsMax !== null ? ` (last made ${stats.lastLostConfirmedAtMsMax} ms after the fault)` : ''}; ` +
      `acked then discarded ${stats.discardedWrites}/${stats.ackedWrites}; failovers ${stats.failovers}/${rows.length}`);
    console.log(`${''.padEnd(10)} resyncs per failover (full F / partial P): ${stats.resyncsPerFailover}; ` +
      `total full ${stats.resyncs.full}, partial ${stats.resyncs.partialOk}, partial refused ${stats.resyncs.partialErr}`);
  }
  const out = opts.out ?? join(ROOT, 'bench-results', `failover-${opts.env}${opts.via === 'proxy' ? '-proxy' : ''}.json`);
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ summary, results }, null, 2)}\n`);
  console.log(`results written to ${out}`);
}

void main();
