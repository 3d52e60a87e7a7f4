import { buildSync } from 'esbuild';
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { afterAll, describe, expect, test } from 'vitest';
import { LiveCluster, ROOT } from '../../harness/live-cluster';
import { freshClusterPerTest, livePrerequisites } from './live-suite';

/**
 * The client examples (examples/python, examples/typescript) run as applications would, in
 * client pods, with only the app user's credentials: both write and read through Sentinel
 * while the master crashes, and no write fails for good.
 */

const missing = livePrerequisites('examples');

interface Summary { writes: number; retried: number; failed: number; longest_wait_ms: number; replica_reads: number }

describe.skipIf(missing)('live client examples through a failover (staging overlay)', () => {
  let live: LiveCluster;
  freshClusterPerTest((started) => { live = started; });
  const temp = mkdtempSync(join(tmpdir(), 'redis-ha-examples-'));
  afterAll(() => rmSync(temp, { recursive: true, force: true }));

  /** Runs an example in a client pod; resolves with its JSON summary and everything it printed. */
  async function run(name: string, argv: string[]): Promise<{ summary: Summary | undefined; out: string; code: number | null }> {
    const pod = await live.sim.startClientPod(name, argv, { env: { REDIS_PASSWORD: live.appPassword } });
    let out = '';
    pod.proc.stdout?.on('data', (d) => { out += d; });
    pod.proc.stderr?.on('data', (d) => { out += d; });
    const code = await new Promise<number | null>((resolve) => pod.proc.on('exit', resolve));
    const line = out.split('\n').find((l) => l.startsWith('{"writes"'));
    return { summary: line ? JSON.parse(line) : undefined, out, code };
  }

  test('the Python and TypeScript examples keep writing through a master crash', async () => {
    await live.waitHealthy();
    // The TypeScript example as an application ships it: compiled, ioredis bundled in.
    const bundle = join(temp, 'sentinel-client.js');
    buildSync({ entryPoints: [join(ROOT, 'examples/typescript/sentinel-client.ts')], bundle: true, platform: 'node', target: 'node20', outfile: bundle, logLevel: 'error' });

    const seconds = '30';
    const runs = Promise.all([
      run('python-example', ['/usr/bin/python3', join(ROOT, 'examples/python/sentinel_client.py'), '--seconds', seconds]),
      run('typescript-example', ['/usr/bin/node', bundle, '--seconds', seconds]),
    ]);
    await new Promise((r) => setTimeout(r, 6_000));
    const old = await live.onlyMaster();
    await live.sim.killContainer(old, 'redis', { restart: false });
    const promoted = await live.waitForSentinelMasterOtherThan(old, 60_000);
    const [python, typescript] = await runs;

    for (const [name, r] of [['python', python], ['typescript', typescript]] as const) {
      expect(r.summary, `${name} printed its summary:\n${r.out}`).toBeDefined();
      const s = r.summary!;
      console.log(`${name} example through the failover to ${promoted}: ${JSON.stringify(s)}`);
      expect(s.failed, `${name}: no write failed for good\n${r.out}`).toBe(0);
      expect(r.code).toBe(0);
      // It was writing when the master went away and carried on afterwards.
      expect(s.retried, `${name}: some writes waited for the failover`).toBeGreaterThan(0);
      expect(s.longest_wait_ms, `${name}: the longest write spans the failover`).toBeGreaterThan(live.downAfterMs - 1000);
      expect(s.writes).toBeGreaterThan(50);
      expect(s.replica_reads, `${name}: reads went to a replica`).toBeGreaterThan(0);
      // The last write is on the new master (read as the application).
      const prefix = name === 'python' ? 'example:python' : 'example:ts';
      const host = live.fqdn(promoted);
      expect(await live.agent.call('call', { host, port: 6379, user: 'app', args: ['GET', `${prefix}:${s.writes - 1}`] })).toBe(String(s.writes - 1));
    }
  }, 240_000);
});
