import { ChildProcess, spawn } from 'child_process';
import { existsSync, writeFileSync } from 'fs';
import Redis from 'ioredis';
import { join } from 'path';
import { afterAll, beforeAll, describe, expect, vi } from 'vitest';
import { main } from '../../lib/ops/cli';
import { itWith } from '../prerequisites';
import { HOST, LoopbackHa, PASSWORDS } from './support/loopback-ha';

/**
 * `redis-ha migrate` end to end on loopback: a single Redis with a password as the source, a
 * master, a replica and three Sentinels with the project's ACL as the target, the command
 * run as the operator would (main(argv)), logged in as `app`.
 */

const it = itWith('redis-server', 'apt-get install redis-server');

/** Runs the CLI in-process; its exit code and everything it printed. */
async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a) => { out.push(a.join(' ')); });
  const error = vi.spyOn(console, 'error').mockImplementation((...a) => { err.push(a.join(' ')); });
  try {
    const code = await main(argv);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

describe('redis-ha migrate (loopback source and HA target)', () => {
  const ha = new LoopbackHa({ replicas: 1, sentinels: 3 });
  const sourcePort = ha.redisPorts[0] + 50;
  let sourceProc: ChildProcess;
  let source: Redis;
  let appFile: string;
  let sourcePwFile: string;
  const conn = () => ['--sentinel', `${HOST}:${ha.sentinelPorts[0]}`, '--password-file', appFile, '--connect-timeout', '1s'];

  beforeAll(async () => {
    if (!existsSync('/usr/bin/redis-server')) return;
    await ha.start();
    sourceProc = spawn('redis-server', ['--bind', HOST, '--port', String(sourcePort), '--save', '', '--requirepass', 'old-secret'], { stdio: 'ignore' });
    source = new Redis({ host: HOST, port: sourcePort, password: 'old-secret', db: 2, retryStrategy: (n) => (n > 50 ? null : 100) }).on('error', () => undefined);
    await source.ping();
    appFile = ha.passwordFile('app');
    sourcePwFile = join(ha.dir, 'source.pw');
    writeFileSync(sourcePwFile, 'old-secret\n');
  }, 60_000);
  afterAll(() => {
    source?.disconnect();
    sourceProc?.kill('SIGKILL');
    ha.close();
  });

  const master = () => new Redis({ host: HOST, port: ha.masterPort(), username: 'app', password: PASSWORDS.app, enableReadyCheck: false });

  it('copies database 2 of the source into the master, then verifies; a second run copies nothing', async () => {
    await source.set('s', 'v', 'PX', 500_000);
    await source.rpush('l', '1', '2');
    await source.hset('h', 'f', 'v');
    await source.xadd('x', '1-1', 'a', 'b');
    const r = await run('migrate', '--from', `redis://${HOST}:${sourcePort}/2`, '--from-password-file', sourcePwFile, ...conn());
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(/copied 4, already copied before 0/);
    expect(r.out).toMatch(/verified: every source key is on the target/);
    const m = master();
    expect(await m.get('s')).toBe('v');
    expect(await m.pttl('s')).toBeGreaterThan(490_000);
    expect(await m.lrange('l', 0, -1)).toEqual(['1', '2']);
    m.disconnect();
    const again = await run('migrate', '--from', `redis://:old-secret@${HOST}:${sourcePort}/2`, ...conn());
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/copied 0, already copied before 4/);

    // --verify-only: a key added to the source since is missing, and the exit status says so.
    await source.sadd('late', 'x');
    const verify = await run('migrate', '--verify-only', '--from', `redis://${HOST}:${sourcePort}/2`, '--from-password-file', sourcePwFile, ...conn());
    expect(verify.code).toBe(1);
    expect(verify.out).toMatch(/MISMATCH: 1 source key\(s\) not on the target, e.g. late/);
    expect(verify.out).toMatch(/set\s+1\s+0\s+0\s+0\s+1/);
    await source.del('late');
  }, 60_000);

  it('follow mode copies changes until the stop file appears', async () => {
    const stop = join(ha.dir, 'stop-migrate');
    const running = run('migrate', '--from', `redis://${HOST}:${sourcePort}/2`, '--from-password-file', sourcePwFile, '--follow', '--stop-file', stop, ...conn());
    const m = master();
    const end = Date.now() + 20_000;
    let n = 0;
    while ((await m.get('live')) !== String(n) && Date.now() < end) {
      await source.set('live', String(++n));
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await m.get('live')).toBe(String(n));
    writeFileSync(stop, '');
    const r = await running;
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(/verified/);
    m.disconnect();
  }, 60_000);

  it('says in one line what is wrong: unreachable source, wrong source password, a replica as target', async () => {
    const unreachable = await run('migrate', '--from', `redis://${HOST}:1/0`, ...conn());
    expect(unreachable.code).toBe(1);
    expect(unreachable.err).toBe(`redis-ha: cannot reach source ${HOST}:1/0: connection refused`);

    const wrong = await run('migrate', '--from', `redis://:nope@${HOST}:${sourcePort}/2`, ...conn());
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/^redis-ha: source .* refused the credentials \(WRONGPASS/);
    expect(wrong.err.split('\n')).toHaveLength(1);

    const noPassword = await run('migrate', '--from', `redis://${HOST}:${sourcePort}/2`, ...conn());
    expect(noPassword.err).toMatch(/requires a password: give --from-password-file/);

    // The Sentinels' master address mapped to the replica: the target answers writes READONLY.
    const replica = ha.redisPorts.find((p) => p !== ha.masterPort())!;
    const readonly = await run('migrate', '--from', `redis://${HOST}:${sourcePort}/2`, '--from-password-file', sourcePwFile, ...conn(),
      '--map', `${HOST}:${ha.masterPort()}=${HOST}:${replica}`);
    expect(readonly.code).toBe(1);
    expect(readonly.err).toMatch(/^redis-ha: target .* is a replica \(READONLY\)/);
    expect(readonly.err.split('\n')).toHaveLength(1);

    const badTarget = await run('migrate', '--from', `redis://${HOST}:${sourcePort}/2`, '--from-password-file', sourcePwFile,
      '--sentinel', `${HOST}:1`, '--password-file', appFile, '--connect-timeout', '1s');
    expect(badTarget.code).toBe(1);
    expect(badTarget.err).toMatch(/^redis-ha: no Sentinel answered/);
  }, 60_000);
});
