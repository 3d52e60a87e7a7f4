import { buildSync } from 'esbuild';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { afterAll, describe, expect, test } from 'vitest';
import { LiveCluster, ROOT } from '../../harness/live-cluster';
import { waitFor } from '../../harness/sim/util';
import { freshClusterPerTest, livePrerequisites } from './live-suite';

/**
 * `redis-ha migrate` against the running system: a separate single Redis (a plain
 * redis-server with a password, in a client pod of its own namespace) holds keys of every
 * type with and without TTLs; the real command (the CLI bundled with esbuild) runs in a
 * client pod, finds the master through the Sentinel Service and logs in as `app`. It is
 * killed in the middle of the copy, run again (it resumes), then run with --follow while
 * the old Redis changes, and stopped with --stop-file.
 */

const missing = livePrerequisites('migrate');

describe.skipIf(missing)('live migrate from a single Redis (staging overlay)', () => {
  let live: LiveCluster;
  freshClusterPerTest((started) => { live = started; });
  const temp = mkdtempSync(join(tmpdir(), 'redis-ha-migrate-live-'));
  afterAll(() => rmSync(temp, { recursive: true, force: true }));

  interface Run { out: string; code: Promise<number | null>; name: string }
  async function start(name: string, argv: string[], env: Record<string, string> = {}): Promise<Run> {
    const pod = await live.sim.startClientPod(name, argv, { env });
    const run: Run = { out: '', name, code: new Promise((resolve) => pod.proc.on('exit', resolve)) };
    pod.proc.stdout?.on('data', (d) => { run.out += d; });
    pod.proc.stderr?.on('data', (d) => { run.out += d; });
    return run;
  }
  async function finish(run: Run): Promise<{ code: number | null; out: string }> {
    const code = await run.code;
    await live.sim.stopClientPod(run.name);
    return { code, out: run.out };
  }

  test('copies every key with its TTL, resumes after kill -9, follows changes until stopped, verifies', async () => {
    await live.waitHealthy();
    const cli = join(temp, 'redis-ha.js');
    buildSync({
      // cli.ts runs main() itself when it is the program (require.main === module, in the bundle too).
      entryPoints: [join(ROOT, 'lib/ops/cli.ts')],
      bundle: true, platform: 'node', target: 'node20', outfile: cli, logLevel: 'error',
    });
    const helper = join(temp, 'helper.js');
    buildSync({ entryPoints: [join(ROOT, 'test/live/support/migrate-helper.ts')], bundle: true, platform: 'node', target: 'node20', outfile: helper, logLevel: 'error' });
    const oldPassword = 'old-single-redis-password';
    writeFileSync(join(temp, 'old.pw'), `${oldPassword}\n`);
    writeFileSync(join(temp, 'app.pw'), `${live.appPassword}\n`);

    // The old Redis: its own namespace, no labels (no policy of the instance selects it).
    const old = await live.sim.startClientPod('old-redis', ['redis-server', '--bind', '0.0.0.0', '--port', '6379', '--save', '',
      '--appendonly', 'no', '--requirepass', oldPassword, '--dir', temp], { namespace: 'legacy', labels: {} });
    const helperEnv = { SOURCE_PASSWORD: oldPassword, APP_PASSWORD: live.appPassword };
    const filled = await finish(await start('filler', [process.execPath, helper, 'fill', old.ip], helperEnv));
    expect(filled.code, filled.out).toBe(0);
    const total = JSON.parse(filled.out.trim().split('\n').pop()!).keys as number;
    expect(total).toBeGreaterThan(20_000);

    const migrate = (...extra: string[]) => [process.execPath, cli, 'migrate', '--from', `redis://${old.ip}:6379/0`,
      '--from-password-file', join(temp, 'old.pw'), '--sentinel', 'redis-sentinel:26379', '--password-file', join(temp, 'app.pw'), ...extra];
    const stateKey = `redis-ha:migrate:state:${old.ip}:6379/0`;
    const master = live.fqdn(await live.onlyMaster());
    const onMaster = (...args: string[]) => live.agent.call('call', { host: master, port: 6379, user: 'app', args });

    // 1. Killed (SIGKILL) once a few thousand keys are across.
    const first = await start('migrate-1', migrate('--parallel', '1'));
    await waitFor(async () => Number(await onMaster('HLEN', stateKey)) >= 3000 || undefined, 120_000, 'a few thousand keys copied');
    await live.sim.stopClientPod('migrate-1');
    const before = Number(await onMaster('HLEN', stateKey));
    console.log(`migrate killed with ${before} of ${total} keys copied; its output:\n${first.out}`);
    expect(before).toBeLessThan(total);

    // 2. Run again: continues, copies each key once, verifies.
    const second = await finish(await start('migrate-2', migrate()));
    console.log(second.out);
    expect(second.code, second.out).toBe(0);
    const counts = /copied (\d+), already copied before (\d+), kept because newer on the target (\d+)/.exec(second.out)!;
    expect(Number(counts[2])).toBeGreaterThanOrEqual(before);
    expect(Number(counts[1]) + Number(counts[2])).toBe(total);
    expect(Number(counts[3])).toBe(0);
    expect(second.out).toMatch(/verified: every source key is on the target/);
    expect(second.out).toMatch(new RegExp(`total\\s+${total}\\s+${total}\\s+0\\s+0\\s+0`));

    const compared = await finish(await start('compare-1', [process.execPath, helper, 'compare', old.ip], helperEnv));
    const result = JSON.parse(compared.out.trim().split('\n').pop()!);
    expect(result.differences).toEqual([]);
    expect(result.keys).toBe(total);

    // 3. Cut-over: --follow copies the old Redis' changes until the stop file appears.
    const stopFile = join(temp, 'stop');
    const follow = await start('migrate-follow', migrate('--follow', '--stop-file', stopFile, '--rescan-interval', '20s'));
    await waitFor(() => /following the source/.test(follow.out) || undefined, 120_000, `the copy done and following:\n${follow.out}`);
    const mutated = await finish(await start('mutate', [process.execPath, helper, 'mutate', old.ip], helperEnv));
    expect(mutated.code, mutated.out).toBe(0);
    await waitFor(async () => (await onMaster('GET', 'follow:new')) === 'v' && Number(await onMaster('EXISTS', 'str')) === 0 || undefined, 60_000, 'the changes on the master');
    writeFileSync(stopFile, '');
    const followed = await finish(follow);
    console.log(followed.out);
    expect(followed.code, followed.out).toBe(0);
    expect(followed.out).toMatch(/verified/);
    expect(followed.out).not.toMatch(/refused on the source/); // keyspace notifications were on
    const after = JSON.parse((await finish(await start('compare-2', [process.execPath, helper, 'compare', old.ip], helperEnv))).out.trim().split('\n').pop()!);
    expect(after.differences).toEqual([]);
    expect(after.keys).toBe(total);
    expect(after.strOnTarget).toBe(0);
  }, 600_000);
});
