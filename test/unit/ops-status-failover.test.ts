// `redis-ha status` and `redis-ha failover` (lib/ops/status.ts, failover.ts, cli.ts) against
// a real Redis + Sentinel system on loopback with the project's ACL rules, run through the
// CLI's main() as `operations`: every command they send must be one that user may run
// (a NOPERM would end the command with exit status 1). The failover runs under a writer
// that confirms each write with WAIT: no confirmed write may be missing on the new master.
import Redis from 'ioredis';
import { afterAll, beforeAll, describe, expect, vi } from 'vitest';
import { main } from '../../lib/ops/cli';
import { CliError, HaConnection, connectionOptions } from '../../lib/ops/connect';
import { FailoverResult, safeFailover } from '../../lib/ops/failover';
import { ClusterStatus } from '../../lib/ops/status';
import { itWith, onPath } from '../prerequisites';
import { HOST, LoopbackHa, PASSWORDS } from './support/loopback-ha';

const itWithRedis = itWith('redis-sentinel', 'apt-get install redis-server redis-sentinel');

/** Runs the CLI in-process; its exit status and what it printed. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const log = vi.spyOn(console, 'log').mockImplementation((...a) => { out += `${a.join(' ')}\n`; });
  const error = vi.spyOn(console, 'error').mockImplementation((...a) => { err += `${a.join(' ')}\n`; });
  try {
    const code = await main(args);
    return { code, out, err };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

/**
 * A writer on the master at `port` as app: SET <prefix>:<i>, then WAIT 1; the writes a
 * replica confirmed. It ends at the first error (a handover closes client connections).
 */
async function waitWriter(port: number, prefix: string): Promise<{ confirmed: number[]; stop: () => Promise<void> }> {
  const writer = new Redis({ host: HOST, port, username: 'app', password: PASSWORDS.app, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
  writer.on('error', () => undefined);
  await writer.connect();
  const confirmed: number[] = [];
  let stopped = false;
  const writing = (async () => {
    for (let i = 0; !stopped; i++) {
      try {
        await writer.set(`${prefix}:${i}`, String(i));
        if (Number(await writer.call('WAIT', '1', '1000')) >= 1) confirmed.push(i);
      } catch {
        return;
      }
    }
  })();
  await new Promise((r) => setTimeout(r, 300));
  return {
    confirmed,
    stop: async () => {
      stopped = true;
      await writing;
      writer.disconnect();
    },
  };
}

describe('redis-ha status and failover on loopback', () => {
  const ha = new LoopbackHa({ replicas: 2, sentinels: 3 });
  let conn: string[];
  beforeAll(async () => {
    if (!onPath('redis-sentinel')) return;
    await ha.start();
    conn = ['--sentinel', `${HOST}:${ha.sentinelPorts[0]}`, '--password-file', ha.passwordFile('operations')];
  }, 60_000);
  afterAll(() => ha.close());

  const status = async (extra: string[] = []) => {
    const r = await cli(['status', ...conn, '--json', ...extra]);
    expect(r.err, 'nothing on stderr').toBe('');
    return { code: r.code, status: JSON.parse(r.out) as ClusterStatus };
  };

  itWithRedis('status of a healthy system: exit 0, the master, both replicas in sync, three Sentinels agreeing with CKQUORUM OK', async () => {
    const { code, status: s } = await status(['--sentinels', '3']);
    expect(s.problems).toEqual([]);
    expect(code).toBe(0);
    const master = `${HOST}:${ha.redisPorts[0]}`;
    expect(s).toMatchObject({ masterName: 'mymaster', master, masterVotes: 3, sentinelCount: 3, expectedSentinels: 3, healthy: true });
    expect(s.nodes.map((n) => [n.address, n.role])).toEqual([[master, 'master'], ...ha.redisPorts.slice(1).map((p) => [`${HOST}:${p}`, 'replica'])]);
    for (const r of s.nodes.slice(1)) expect(r).toMatchObject({ link: 'up', masterAddress: master, lagBytes: 0 });
    expect(s.sentinels.map((x) => [x.address, x.master, x.knownSentinels, x.knownReplicas, x.ckquorumOk]))
      .toEqual(ha.sentinelPorts.map((p) => [`${HOST}:${p}`, master, 3, 2, true]));
    // The table says the same.
    const table = await cli(['status', ...conn]);
    expect(table.code).toBe(0);
    expect(table.out).toMatch(new RegExp(`^master mymaster: ${master} \\(named by 3 of 3 Sentinels\\)`));
    expect(table.out.trim().split('\n').pop()).toBe('healthy');
  });

  itWithRedis('phantoms: a Sentinel that knows more Sentinels than --sentinels says exist', async () => {
    const { code, status: s } = await status(['--sentinels', '2']);
    expect(code).toBe(3);
    expect(s.problems.map((p) => p.message)).toContain(`Sentinel ${HOST}:${ha.sentinelPorts[0]} knows 3 Sentinels, 2 expected: phantom Sentinels (SENTINEL RESET mymaster on it clears them; the janitor does it)`);
  });

  itWithRedis('errors are one line with exit status 1: wrong master name, wrong password, unreachable Sentinel, bad flag', async () => {
    const one = (r: { code: number; err: string; out: string }) => {
      expect(r.code).toBe(1);
      expect(r.out).toBe('');
      expect(r.err.trimEnd().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(/^redis-ha: /);
      expect(r.err).not.toMatch(/\n\s+at /);
      return r.err.trim();
    };
    expect(one(await cli(['status', ...conn, '--master-name', 'other']))).toBe("redis-ha: the Sentinels monitor no master named 'other' (check --master-name; the chart's default is mymaster)");
    expect(one(await cli(['failover', ...conn, '--password-file', ha.passwordFile('operations', 'wrong')])))
      .toMatch(/^redis-ha: .*refused user 'operations' with the password from --password-file .* \(WRONGPASS/);
    expect(one(await cli(['status', '--sentinel', `${HOST}:1`, '--password-file', ha.passwordFile('operations')])))
      .toMatch(/^redis-ha: no Sentinel answered \(tried 127.0.0.1:1\): cannot reach Sentinel 127.0.0.1:1: connection refused; give reachable Sentinels with --sentinel/);
    expect(one(await cli(['status', ...conn, '--sentinels', 'three']))).toBe("redis-ha: --sentinels 'three' is not a number of Sentinels (for example --sentinels 3)");
    expect(one(await cli(['failover', ...conn, '--to', 'nowhere']))).toBe("redis-ha: --to 'nowhere' is not HOST:PORT (for example --to redis-sentinel:26379)");
  });

  itWithRedis('failover under a writer confirming with WAIT: no confirmed write lost, the new master printed is the one the Sentinels name', async () => {
    const oldPort = ha.redisPorts[0];
    const { confirmed, stop } = await waitWriter(oldPort, 'w');
    const r = await cli(['failover', ...conn, '--timeout', '15s']);
    await stop();
    expect(r.code, r.err).toBe(0);
    console.log(`failover on loopback: ${r.out.trim()}; ${confirmed.length} writes confirmed with WAIT\n${r.err}`);
    const m = /^new master: (\S+) \(was 127\.0\.0\.1:(\d+); writes paused (\d+) ms; named by (\d) of 3 Sentinels\)$/.exec(r.out.trim());
    expect(m, r.out).not.toBeNull();
    expect(Number(m![2])).toBe(oldPort);
    const newPort = Number(m![1].split(':')[1]);
    expect(ha.redisPorts.slice(1)).toContain(newPort);
    expect(Number(m![4])).toBeGreaterThanOrEqual(2);
    // Progress went to stderr, one line per step.
    expect(r.err).toMatch(/promoting/);
    expect(r.err).toMatch(/asking Sentinel/);
    expect(ha.cli(newPort, 'ROLE').split('\n')[0]).toBe('master');
    expect(ha.cli(oldPort, 'ROLE').split('\n')[0]).toBe('slave');
    expect(confirmed.length).toBeGreaterThan(10);
    const reader = new Redis({ host: HOST, port: newPort, username: 'app', password: PASSWORDS.app, enableReadyCheck: false, lazyConnect: true });
    await reader.connect();
    const values = await reader.mget(...confirmed.map((i) => `w:${i}`));
    reader.disconnect();
    expect(confirmed.filter((i, k) => values[k] !== String(i))).toEqual([]);

    // Status agrees once the Sentinels have caught up.
    await ha.waitHealthy();
    const after = await status();
    expect(after.status.master).toBe(`${HOST}:${newPort}`);
    expect(after.code, JSON.stringify(after.status.problems)).toBe(0);
  }, 60_000);

  itWithRedis('two failovers at once (two operators): no confirmed write lost, both end on the same master or the second refuses', async () => {
    await ha.waitHealthy();
    const oldPort = ha.masterPort();
    const { confirmed, stop } = await waitWriter(oldPort, 'c');
    const conns = [0, 1].map(() => new HaConnection(connectionOptions(
      { sentinel: [`${HOST}:${ha.sentinelPorts[0]}`], 'password-file': ha.passwordFile('operations') }, { user: 'operations', env: {} })));
    const results = await Promise.allSettled(conns.map((c) => safeFailover(c, { timeoutMs: 15_000 })));
    for (const c of conns) await c.close();
    await stop();
    const done = results.filter((r): r is PromiseFulfilledResult<FailoverResult> => r.status === 'fulfilled').map((r) => r.value.newMaster);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
    console.log(`two failovers at once: ${done.length} done (${done.join(', ')}), refused: ${refused.map((e) => e.message).join('; ') || 'none'}`);
    expect(done.length).toBeGreaterThanOrEqual(1);
    expect(new Set(done).size).toBe(1);
    for (const e of refused) {
      expect(e).toBeInstanceOf(CliError);
      expect(e.message).toMatch(/already under way|no longer the master/);
    }
    const newPort = Number(done[0].split(':')[1]);
    expect(newPort).not.toBe(oldPort);
    expect(confirmed.length).toBeGreaterThan(10);
    const reader = new Redis({ host: HOST, port: newPort, username: 'app', password: PASSWORDS.app, enableReadyCheck: false, lazyConnect: true });
    await reader.connect();
    const values = await reader.mget(...confirmed.map((i) => `c:${i}`));
    reader.disconnect();
    expect(confirmed.filter((i, k) => values[k] !== String(i))).toEqual([]);
    await ha.waitHealthy();
  }, 60_000);

  itWithRedis('status after a replica and a Sentinel stop: non-zero, says what', async () => {
    const master = ha.masterPort();
    const replica = ha.redisPorts.find((p) => p !== master)!;
    await ha.stop(replica);
    const lastSentinel = ha.sentinelPorts[2];
    await ha.stop(lastSentinel);
    const { code, status: s } = await status(['--sentinels', '3']);
    expect(code).toBe(3);
    const messages = s.problems.map((p) => p.message);
    expect(messages.some((p) => p.startsWith(`Redis ${HOST}:${replica} does not answer: cannot reach Redis ${HOST}:${replica}: connection refused`)), messages.join('\n')).toBe(true);
    expect(messages.some((p) => p.startsWith(`Sentinel ${HOST}:${lastSentinel} does not answer`)), messages.join('\n')).toBe(true);
  });
});
