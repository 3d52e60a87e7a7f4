import { DOMParser } from '@xmldom/xmldom';
import { buildSync } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { basename, join } from 'path';
import { afterAll, describe, expect, test } from 'vitest';
import { LiveCluster, ROOT } from '../../harness/live-cluster';
import { freshClusterPerTest, livePrerequisites } from './live-suite';

/**
 * `redis-ha drill` as an operator runs it, from a client pod (the cluster's DNS names and
 * NetworkPolicies, as an application pod sees them): once causing the failover itself,
 * once waiting while the test crashes the master. Each reports the failover, no confirmed
 * write lost, a plausible outage, and writes a timeline SVG that parses.
 */

const missing = livePrerequisites('drill');
/** The write-safe manual failover (lib/ops/failover.ts), as `redis-ha failover` does it. */
const DRILL_CAUSE = 'failover';

interface Report {
  oldMaster: string;
  newMaster: string | null;
  acknowledged: number;
  confirmed: number;
  failed: number;
  outage: { ms: number } | null;
  longestGap: { ms: number };
  lostConfirmed: number[];
  milestones: Array<{ event: string; afterTriggerMs: number }>;
  sentinels: string[];
  problems: string[];
  svg: string;
}

describe.skipIf(missing)('redis-ha drill against the simulator (staging overlay)', () => {
  let live: LiveCluster;
  freshClusterPerTest((started) => { live = started; });
  // Under the repository (build/ is ignored), so the bundle's packages resolve from its node_modules.
  mkdirSync(join(ROOT, 'build'), { recursive: true });
  const temp = mkdtempSync(join(ROOT, 'build', 'live-drill-'));
  afterAll(() => rmSync(temp, { recursive: true, force: true }));
  const cli = join(temp, 'cli.js');
  buildSync({ entryPoints: [join(ROOT, 'lib/ops/cli.ts')], bundle: true, packages: 'external', platform: 'node', target: 'node20', outfile: cli, logLevel: 'error' });

  /** Runs `redis-ha drill ARGS --json` in a client pod; `whileRunning` gets its progress output so far. */
  async function drill(name: string, args: string[], whileRunning?: (progress: () => string) => Promise<void>) {
    const appPw = join(temp, `${name}-app.pw`);
    const opsPw = join(temp, `${name}-ops.pw`);
    writeFileSync(appPw, `${live.passwords.app}\n`, { mode: 0o600 });
    writeFileSync(opsPw, `${live.passwords.operations}\n`, { mode: 0o600 });
    const svg = join(temp, `${name}.svg`);
    const argv = [process.execPath, cli, 'drill', '--sentinel', 'redis-sentinel:26379', '--password-file', appPw, '--ops-password-file', opsPw,
      '--svg', svg, '--json', '--timeout', '60s', ...args];
    const pod = await live.sim.startClientPod(name, argv, { cwd: temp });
    let stdout = '';
    let stderr = '';
    pod.proc.stdout?.on('data', (d) => { stdout += d; });
    pod.proc.stderr?.on('data', (d) => { stderr += d; });
    const exited = new Promise<number | null>((resolve) => pod.proc.on('exit', resolve));
    if (whileRunning) await whileRunning(() => stderr);
    const code = await exited;
    const line = stdout.trim().split('\n').pop() ?? '';
    let report: Report | undefined;
    try {
      report = JSON.parse(line);
    } catch {
      report = undefined;
    }
    expect(report, `the drill printed its JSON report:\n${stdout}\n${stderr}`).toBeDefined();
    console.log(`drill ${name} (exit ${code}):\n${stderr}\n${JSON.stringify({ ...report, lostConfirmed: report!.lostConfirmed.length })}`);
    return { code, report: report!, svg, stderr };
  }

  function expectTimeline(svgFile: string, failover: boolean) {
    expect(existsSync(svgFile)).toBe(true);
    // To look at the pictures afterwards: DRILL_SVG_DIR=dir.
    if (process.env.DRILL_SVG_DIR) copyFileSync(svgFile, join(process.env.DRILL_SVG_DIR, basename(svgFile)));
    const errors: string[] = [];
    const doc = new DOMParser({ onError: (level: string, msg: string) => { if (level !== 'warning') errors.push(msg); } })
      .parseFromString(readFileSync(svgFile, 'utf8'), 'image/svg+xml');
    expect(errors).toEqual([]);
    const groups = Array.from(doc.getElementsByTagName('g')).map((g) => g.getAttribute('class') ?? '');
    for (const layer of ['writes_marks', 'events_marks', 'markers_marks']) expect(groups.some((c) => c.includes(layer)), layer).toBe(true);
    const text = Array.from(doc.getElementsByTagName('text')).map((t) => t.textContent).join(' ');
    if (failover) {
      expect(text).toMatch(/Failover drill: \S+ -> \S+/);
      expect(text).not.toContain('-> no failover');
    }
  }

  const pod = (address: string | null) => address?.split(':')[0].split('.')[0];

  test(`causing the failover (--cause ${DRILL_CAUSE}): a new master, no confirmed write lost`, async () => {
    await live.waitHealthy();
    const before = await live.onlyMaster();
    const { code, report, svg } = await drill('drill-cause', ['--cause', DRILL_CAUSE, '--before', '3s', '--after', '2s']);
    expect(report.problems).toEqual([]);
    expect(code).toBe(0);
    expect(pod(report.oldMaster)).toBe(before);
    expect(pod(report.newMaster)).not.toBe(before);
    await live.waitHealthy(90_000);
    expect(pod(report.newMaster)).toBe(await live.onlyMaster());
    expect(report.lostConfirmed).toEqual([]);
    expect(report.confirmed).toBeGreaterThan(100);
    // A planned failover: the writes pause, far less than a crash's downAfter.
    expect(report.longestGap.ms).toBeLessThan(live.downAfterMs);
    expect(report.sentinels).toHaveLength(3);
    expect(report.milestones.map((m) => m.event)).toContain('+switch-master');
    expectTimeline(svg, true);
  }, 240_000);

  test('waiting (--wait) while the master crashes: the failover found, no confirmed write lost, the outage about downAfter', async () => {
    await live.waitHealthy();
    const before = await live.onlyMaster();
    const { code, report, svg } = await drill('drill-wait', ['--wait', '--before', '2s', '--after', '2s'], async (progress) => {
      const end = Date.now() + 60_000;
      while (!/waiting for a failover/.test(progress()) && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
      await new Promise((r) => setTimeout(r, 1500));
      await live.sim.killContainer(before, 'redis', { restart: false });
    });
    expect(report.problems).toEqual([]);
    expect(code).toBe(0);
    expect(pod(report.oldMaster)).toBe(before);
    expect(pod(report.newMaster)).not.toBe(before);
    expect(report.lostConfirmed).toEqual([]);
    expect(report.failed).toBeGreaterThan(0);
    // Sentinel needs downAfter to call the master down, then about a second more (README, Benchmarks).
    expect(report.outage!.ms).toBeGreaterThan(live.downAfterMs - 1000);
    expect(report.outage!.ms).toBeLessThan(live.downAfterMs + 5000);
    const events = report.milestones.map((m) => m.event);
    for (const e of ['+sdown', '+odown', '+switch-master']) expect(events).toContain(e);
    expectTimeline(svg, true);
  }, 240_000);
});
