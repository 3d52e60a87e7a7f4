// Failover benchmark: `npm run bench:failover -- --env production --trials 5`.
// Runs the environment's rendered overlay in the pod simulator with a client writing
// continuously, then crashes the master N times and does N planned switchovers (graceful
// deletion of the master pod); `--kinds partition` cuts the master's network N times.
// Prints per trial and as p50/max: the write outage, the WAIT-confirmed writes lost, and
// for switchovers the failed writes and longest pause.
// Writes the results as JSON (bench-results/failover-<env>.json). Reports, never asserts.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { checkLivePrerequisites } from '../test/sim';
import { sleep, waitFor } from '../test/sim/util';
import { confirmedWrites, LiveCluster, longestGap, longestPause, ROOT, WriteRecord, writeOutage } from '../test/live/harness';

interface Trial {
  kind: 'crash' | 'switchover' | 'partition';
  trial: number;
  from: string;
  to: string;
  outageMs: number;
  longestPauseMs: number;
  failedWrites: number;
  confirmedWrites: number;
  lostConfirmedWrites: number;
  timeline: string;
}

const program = new Command()
  .name('bench:failover')
  .option('--env <name>', 'environment overlay to run', 'production')
  .option('--trials <n>', 'crashes and planned switchovers, each', '5')
  .option('--kinds <list>', 'which faults to run: crash, switchover, partition (comma-separated)', 'crash,switchover')
  .option('--out <file>', 'JSON results file (default bench-results/failover-<env>.json)');
program.parse(process.argv);
const opts = program.opts<{ env: string; trials: string; kinds: string; out?: string }>();
const trials = Number(opts.trials);
const kinds = opts.kinds.split(',').map((k) => k.trim());
for (const k of kinds) {
  if (k !== 'crash' && k !== 'switchover' && k !== 'partition') {
    console.error(`--kinds: unknown fault ${JSON.stringify(k)}; known: crash, switchover, partition`);
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

async function trial(live: LiveCluster, kind: Trial['kind'], n: number): Promise<Trial> {
  await live.waitHealthy(90_000);
  const from = await live.onlyMaster();
  const prefix = `${kind}-${n}`;
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
    } else if (kind === 'partition') {
      // The master's network is cut, its process lives on (a node failure looks the same to Sentinel).
      await live.sim.partition(from);
    } else {
      void live.sim.deletePod(from, { grace: true, recreate: true });
    }
    to = await live.waitForSentinelMasterOtherThan(from, 60_000);
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
  const lost = await live.agent.call<number[]>('missing', { prefix, ns: confirmed });
  if (kind === 'crash') await live.sim.restartContainer(from, 'redis');
  else if (kind === 'partition') await live.sim.heal(from);
  else {
    await live.sim.waitPodReady(from, 60_000);
    // The handover's own account, from the deleted pod's log.
    const handover = live.sim.logs(from, 'redis', 400, { previous: true }).split('\n').filter((l) => l.includes('redis-prestop'));
    for (const line of handover) console.log(`    ${line}`);
  }
  return {
    kind, trial: n, from, to,
    outageMs: Math.round(writeOutage(log, faultAt)),
    longestPauseMs: Math.round(longestPause(log)),
    failedWrites: log.filter((w) => w.error !== null).length,
    confirmedWrites: confirmed.length,
    lostConfirmedWrites: lost.length,
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
    for (const kind of kinds as Trial['kind'][]) {
      for (let n = 1; n <= trials; n++) {
        const t = await trial(live, kind, n);
        results.push(t);
        console.log(`${kind} ${n}: ${t.from} -> ${t.to}  outage ${t.outageMs} ms  longest pause ${t.longestPauseMs} ms  ` +
          `failed writes ${t.failedWrites}  lost confirmed ${t.lostConfirmedWrites}/${t.confirmedWrites}`);
        console.log(`    sentinel events (ms after the fault): ${t.timeline}`);
      }
    }
  } catch (err) {
    console.error(`bench:failover: ${(err as Error).message}\n${await live.report(400)}`);
    process.exitCode = 1;
  } finally {
    await live.stop();
  }
  const summary: Record<string, unknown> = { env: opts.env, downAfterMs: live.downAfterMs, trials };
  console.log(`\nenvironment ${opts.env}, downAfter ${live.downAfterMs} ms, ${trials} trials each`);
  for (const kind of ['crash', 'partition', 'switchover'] as const) {
    const rows = results.filter((r) => r.kind === kind);
    if (!rows.length) continue;
    const metric = kind === 'switchover' ? rows.map((r) => r.longestPauseMs) : rows.map((r) => r.outageMs);
    const stats = {
      p50: percentile(metric, 50),
      max: Math.max(...metric),
      failedWrites: rows.reduce((a, r) => a + r.failedWrites, 0),
      lostConfirmedWrites: rows.reduce((a, r) => a + r.lostConfirmedWrites, 0),
    };
    summary[kind] = stats;
    const label = kind === 'switchover' ? 'longest write pause' : 'write outage';
    const relative = kind !== 'switchover' ? ` (p50 = downAfter + ${stats.p50 - live.downAfterMs} ms, max = downAfter + ${stats.max - live.downAfterMs} ms)` : '';
    console.log(`${kind.padEnd(10)} ${label}: p50 ${stats.p50} ms, max ${stats.max} ms${relative}; ` +
      `failed writes ${stats.failedWrites}; lost confirmed writes ${stats.lostConfirmedWrites}`);
  }
  const out = opts.out ?? join(ROOT, 'bench-results', `failover-${opts.env}.json`);
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ summary, results }, null, 2)}\n`);
  console.log(`results written to ${out}`);
}

void main();
