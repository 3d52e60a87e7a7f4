import { buildSync } from 'esbuild';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { confirmedWrites, LiveCluster, ROOT } from '../../harness/live-cluster';
import { waitFor } from '../../harness/sim/util';
import type { ClusterStatus } from '../../lib/ops/status';
import { livePrerequisites, REPORT_HEADING } from './live-suite';

/**
 * The operator's command line, live: `redis-ha status` and `redis-ha failover` against the
 * staging overlay in the simulator, run as an operator would run them, in client pods (the
 * CLI as a separate process, with its own network namespace and the cluster's DNS).
 *
 * The CLI is lib/ops/cli.ts bundled with esbuild (ioredis included) into a temporary
 * file when the suite starts, like the TypeScript example in examples.test.ts: it is always
 * the current source and needs no `npm run build:lib` first. The packaged bin
 * (out/ops/cli.js, built by jsii from the same source) is checked by test/package.
 *
 * One cluster for the whole file (the tests run in order: the failover and the breakage
 * come last), to keep the live time short.
 */
const missing = livePrerequisites('cli');

interface Run { code: number | null; out: string; err: string }

describe.skipIf(missing)('live redis-ha status and failover (staging overlay)', () => {
  let live: LiveCluster;
  const temp = mkdtempSync(join(tmpdir(), 'redis-ha-cli-'));
  const cli = join(temp, 'redis-ha.js');
  const forwarder = join(temp, 'forwarder.js');
  let passwordFile: string;
  let pods = 0;

  beforeAll(async () => {
    buildSync({
      entryPoints: [join(ROOT, 'lib/ops/cli.ts')],
      bundle: true, platform: 'node', target: 'node20', outfile: cli, logLevel: 'error',
    });
    // What `kubectl port-forward` is: listen here, connect there. argv: JSON [[listenPort, host, port], ...].
    writeFileSync(forwarder, `const net = require('net');
const routes = JSON.parse(process.argv[2]);
let up = 0;
for (const [listen, host, port] of routes) {
  net.createServer((c) => {
    const u = net.connect(port, host);
    c.pipe(u).pipe(c);
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
  }).listen(listen, '0.0.0.0', () => { if (++up === routes.length) console.log('ready'); });
}
`);
    live = await LiveCluster.start('staging');
    passwordFile = join(temp, 'operations-password');
    writeFileSync(passwordFile, `${live.passwords.operations}\n`, { mode: 0o600 });
  });
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail' && live) console.log(`\n${REPORT_HEADING}\n${await live.report()}`);
  });
  afterAll(async () => {
    await live?.stop();
    rmSync(temp, { recursive: true, force: true });
  });

  /** Runs the CLI in a new client pod (labelled as a client unless `labels` says otherwise). */
  async function run(args: string[], labels?: Record<string, string>): Promise<Run> {
    const pod = await live.sim.startClientPod(`redis-ha-${++pods}`, [process.execPath, cli, ...args], { cwd: temp, ...(labels ? { labels } : {}) });
    let out = '';
    let err = '';
    pod.proc.stdout?.on('data', (d) => { out += d; });
    pod.proc.stderr?.on('data', (d) => { err += d; });
    const code = await new Promise<number | null>((resolve) => pod.proc.on('exit', resolve));
    await live.sim.stopClientPod(pod.name);
    return { code, out, err };
  }

  const creds = () => ['--password-file', passwordFile];

  /** The one-line error of a run: exit 1, nothing on stdout, one line on stderr, no stack trace. */
  function oneLine(r: Run): string {
    expect(r.code, r.err).toBe(1);
    expect(r.out).toBe('');
    expect(r.err.trimEnd().split('\n'), r.err).toHaveLength(1);
    expect(r.err).not.toMatch(/\n\s+at |Error:/);
    return r.err.trim();
  }

  test('status of a healthy cluster: exit 0, the master the Sentinels name, two replicas in sync, three Sentinels with CKQUORUM OK', async () => {
    await live.waitHealthy();
    const r = await run(['status', '--json', '--sentinels', '3', ...creds()]);
    expect(r.code, r.err + r.out).toBe(0);
    const s = JSON.parse(r.out) as ClusterStatus;
    const master = `${live.fqdn((await live.sentinelMaster())!)}:6379`;
    expect(s).toMatchObject({ masterName: 'mymaster', master, masterVotes: 3, sentinelCount: 3, healthy: true, problems: [], exitCode: 0 });
    expect(s.nodes.map((n) => n.role)).toEqual(['master', 'replica', 'replica']);
    expect(s.nodes.map((n) => n.address).sort()).toEqual(live.redisPods().map((p) => `${live.fqdn(p)}:6379`).sort());
    for (const n of s.nodes.slice(1)) expect(n).toMatchObject({ link: 'up', masterAddress: master });
    expect(s.sentinels.map((x) => x.address.split(':')[0]).sort()).toEqual(live.sentinelPods().map((p) => live.sim.podIp(p)).sort());
    for (const x of s.sentinels) expect(x).toMatchObject({ reachable: true, master, flags: 'master', knownSentinels: 3, knownReplicas: 2, ckquorumOk: true });
    console.log(`status (table):\n${(await run(['status', ...creds()])).out}`);
  }, 90_000);

  test('through port-forwards: an unlabelled pod (the NetworkPolicies refuse it) reaches everything through a forwarder with --map', async () => {
    // The forwarder, in a client pod the policies admit, listens on its IP: one port for the
    // Sentinel Service (kubectl port-forward svc/redis-sentinel), one per Sentinel pod and one
    // per Redis pod (kubectl port-forward pod/...).
    const sentinelIps = live.sentinelPods().map((p) => live.sim.podIp(p));
    const redisNames = live.redisPods().map((p) => live.fqdn(p));
    const routes: [number, string, number][] = [
      [40000, 'redis-sentinel', 26379],
      ...sentinelIps.map((ip, i): [number, string, number] => [40001 + i, ip, 26379]),
      ...redisNames.map((n, i): [number, string, number] => [40100 + i, n, 6379]),
    ];
    const fwd = await live.sim.startClientPod('port-forward', [process.execPath, forwarder, JSON.stringify(routes)], { cwd: temp });
    try {
      await new Promise<void>((resolve, reject) => {
        fwd.proc.stdout?.on('data', (d) => { if (String(d).includes('ready')) resolve(); });
        fwd.proc.on('exit', () => reject(new Error('the forwarder exited')));
      });
      const map = [
        ...sentinelIps.flatMap((ip, i) => ['--map', `${ip}:26379=${fwd.ip}:${40001 + i}`]),
        ...redisNames.flatMap((n, i) => ['--map', `${n}:6379=${fwd.ip}:${40100 + i}`]),
      ];
      // Without the map, the unlabelled pod reaches nothing (the policies drop it): the proof that the map carries it all.
      const refused = await run(['status', '--sentinel', `${fwd.ip}:40000`, '--connect-timeout', '1s', ...creds()], {});
      expect(refused.code).not.toBe(0);
      const r = await run(['status', '--sentinel', `${fwd.ip}:40000`, ...map, ...creds()], {});
      console.log(`status through the forwarder:\n${r.out}${r.err}`);
      expect(r.code, r.err + r.out).toBe(0);
      expect(r.out).toContain(`master mymaster: ${live.fqdn((await live.sentinelMaster())!)}:6379 (named by 3 of 3 Sentinels)`);
      expect(r.out.trim().split('\n').pop()).toBe('healthy');
    } finally {
      await live.sim.stopClientPod('port-forward');
    }
  }, 90_000);

  test('errors are one line: unreachable Sentinel, wrong master name, wrong password', async () => {
    const master = live.fqdn(await live.onlyMaster());
    expect(oneLine(await run(['status', '--sentinel', `${master}:26379`, '--connect-timeout', '1s', ...creds()])))
      .toMatch(new RegExp(`^redis-ha: no Sentinel answered \\(tried ${master}:26379\\): cannot reach Sentinel ${master}:26379: .*; give reachable Sentinels with --sentinel HOST:PORT, or --map FROM=TO`));
    expect(oneLine(await run(['status', '--master-name', 'cache', ...creds()])))
      .toBe("redis-ha: the Sentinels monitor no master named 'cache' (check --master-name; the chart's default is mymaster)");
    const wrong = join(temp, 'wrong-password');
    writeFileSync(wrong, 'not-the-password\n');
    expect(oneLine(await run(['failover', '--password-file', wrong])))
      .toMatch(new RegExp(`^redis-ha: Sentinel redis-sentinel:26379 refused user 'operations' with the password from --password-file ${wrong} \\(WRONGPASS`));
  }, 90_000);

  test('failover --to a replica under a writer confirming each write with WAIT: no confirmed write lost; the new master printed is that replica and the one the Sentinels name', async () => {
    await live.waitHealthy();
    const old = await live.onlyMaster();
    // --to the replica the default would not pick (the default takes the first by name among equals).
    const to = live.fqdn(live.redisPods().filter((p) => p !== old).sort().pop()!);
    let r: Run | undefined;
    const log = await live.runWriter('cli-failover', async () => {
      await waitFor(async () => (await live.agent.call<number>('writerLastAck')) > 0, 10_000, 'the writer to start');
      await new Promise((res) => setTimeout(res, 1000));
      r = await run(['failover', '--to', `${to}:6379`, ...creds()]);
      // The writer carries on on the new master.
      const after = Date.now();
      await waitFor(async () => (await live.agent.call<number>('writerLastAck')) > after, 30_000, 'writes on the new master', 100);
    }, { retries: 50 });
    console.log(`failover: ${r!.out}${r!.err}`);
    expect(r!.code, r!.err).toBe(0);
    const m = /^new master: (\S+):6379 \(was (\S+):6379; writes paused (\d+) ms; named by (\d) of 3 Sentinels\)$/.exec(r!.out.trim());
    expect(m, r!.out).not.toBeNull();
    expect(m![2]).toBe(live.fqdn(old));
    expect(m![1]).toBe(to);
    expect(m![1]).toBe(live.fqdn((await live.sentinelMaster())!));
    expect(await live.onlyMaster()).toBe(m![1].split('.')[0]);
    const confirmed = confirmedWrites(log);
    expect(confirmed.length).toBeGreaterThan(50);
    const lost = await live.agent.call<number[]>('missing', { prefix: 'cli-failover', ns: confirmed });
    expect(lost, `WAIT 1-confirmed writes lost: ${lost.slice(0, 20).join(', ')}`).toEqual([]);
    const failed = log.filter((w) => w.ack === null);
    console.log(`failover under the writer: ${log.length} writes, ${confirmed.length} confirmed, ${failed.length} never acknowledged, paused ${m![3]} ms`);
    await live.waitHealthy(60_000);
  }, 180_000);

  test('status after a replica and a Sentinel stop: non-zero, and it says what', async () => {
    const master = await live.onlyMaster();
    const replica = live.redisPods().find((p) => p !== master)!;
    const sentinel = live.sentinelPods()[0];
    const sentinelIp = live.sim.podIp(sentinel);
    await live.sim.killContainer(replica, 'redis', { restart: false });
    await live.sim.killContainer(sentinel, 'sentinel', { restart: false });
    const r = await run(['status', '--json', '--sentinels', '3', '--connect-timeout', '1s', ...creds()]);
    const s = JSON.parse(r.out) as ClusterStatus;
    console.log(`status with ${replica} and ${sentinel} stopped: exit ${r.code}; ${s.problems.map((p) => `${p.severity}: ${p.message}`).join('; ')}`);
    expect(r.code).toBe(3);
    const messages = s.problems.map((p) => p.message);
    expect(messages.some((p) => p.startsWith(`Redis ${live.fqdn(replica)}:6379 does not answer`)), messages.join('\n')).toBe(true);
    expect(messages.some((p) => p.startsWith(`Sentinel ${sentinelIp}:26379 does not answer`)), messages.join('\n')).toBe(true);
    expect(s.master).toBe(`${live.fqdn(master)}:6379`);
  }, 90_000);
});

describe.skipIf(missing)('live redis-ha status with TLS (staging overlay, tls prop on)', () => {
  let live: LiveCluster;
  const temp = mkdtempSync(join(tmpdir(), 'redis-ha-cli-tls-'));
  const cli = join(temp, 'redis-ha.js');
  beforeAll(async () => {
    buildSync({ entryPoints: [join(ROOT, 'lib/ops/cli.ts')], bundle: true, platform: 'node', target: 'node20', outfile: cli, logLevel: 'error' });
    live = await LiveCluster.start('staging', { tls: true });
  });
  afterAll(async () => {
    await live?.stop();
    rmSync(temp, { recursive: true, force: true });
  });

  async function run(args: string[]): Promise<Run> {
    const pod = await live.sim.startClientPod(`redis-ha-tls-${Math.random().toString(36).slice(2, 8)}`, [process.execPath, cli, ...args], { cwd: temp });
    let out = '';
    let err = '';
    pod.proc.stdout?.on('data', (d) => { out += d; });
    pod.proc.stderr?.on('data', (d) => { err += d; });
    const code = await new Promise<number | null>((resolve) => pod.proc.on('exit', resolve));
    await live.sim.stopClientPod(pod.name);
    return { code, out, err };
  }

  test('--tls --cacert: healthy, every Sentinel and Redis server checked against the CA; without --tls, one line', async () => {
    await live.waitHealthy();
    const pw = join(temp, 'operations-password');
    writeFileSync(pw, live.passwords.operations);
    const ca = join(temp, 'ca.crt');
    writeFileSync(ca, live.tls!['ca.crt']);
    const r = await run(['status', '--json', '--cacert', ca, '--password-file', pw]);
    expect(r.code, r.err + r.out).toBe(0);
    const s = JSON.parse(r.out) as ClusterStatus;
    expect(s).toMatchObject({ healthy: true, sentinelCount: 3, masterVotes: 3 });
    expect(s.nodes).toHaveLength(3);
    const plain = await run(['status', '--password-file', pw, '--connect-timeout', '1s']);
    console.log(`status without --tls against TLS servers: ${plain.err.trim()}`);
    expect(plain.code).toBe(1);
    expect(plain.err.trimEnd().split('\n')).toHaveLength(1);
    expect(plain.err).toMatch(/^redis-ha: /);
  }, 120_000);
});
