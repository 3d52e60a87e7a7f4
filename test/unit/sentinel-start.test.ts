// The decisions of a Sentinel pod (lib/pod/scripts/sentinel-decide.sh): which epochs a
// starting Sentinel takes (decide_epochs, against stand-in previous configs), which master
// it monitors (decide_master) and when the janitor resets phantom peers (decide_reset), and
// sentinel-start.sh as a whole; against the shared stand-in redis-cli, getent (the other
// Sentinels' addresses) and redis-sentinel (prints the config it was given instead of running).
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { ROOT } from './helpers';
import { MASTER0, SLAVE0, SLAVE1, World, useWorlds } from './support/world';

const SCRIPTS = join(ROOT, 'lib/pod/scripts');
const MY_ID = '6e828d14bda6fe5402f445e1ecf699520d9449b4';
const OTHER_ID = '680835d23e2b942129cb0505f2789538c2200f0e';

/** A config as Redis 7.0's Sentinel rewrites it (the lines that matter here, in its order). */
function rewrittenConfig(e: { current: number; leader: number; config: number; master?: string }): string {
  const m = e.master ?? 'mymaster';
  return [
    'port 26379', 'dir "/data"', 'sentinel resolve-hostnames yes', 'sentinel announce-hostnames yes',
    `sentinel monitor ${m} redis-slave-0.redis-slave.ns.svc.cluster.local 6379 2`,
    `sentinel down-after-milliseconds ${m} 5000`,
    `sentinel auth-pass ${m} "secret"`,
    `sentinel myid ${MY_ID}`,
    `sentinel config-epoch ${m} ${e.config}`,
    `sentinel leader-epoch ${m} ${e.leader}`,
    `sentinel known-replica ${m} redis-master-0.redis-master.ns.svc.cluster.local 6379`,
    `sentinel known-sentinel ${m} 10.0.0.6 26379 ${OTHER_ID}`,
    `sentinel current-epoch ${e.current}`,
  ].join('\n') + '\n';
}

const made: string[] = [];
const newWorld = useWorlds();
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-start-'));
  made.push(dir);
  return dir;
}

describe('decide_epochs (what a starting Sentinel takes as its epochs)', () => {
  function decide(previous: string | null, discovered: number): { current: number; leader: number; reason: string } {
    const dir = tempDir();
    const file = join(dir, 'sentinel.conf');
    if (previous !== null) writeFileSync(file, previous);
    const r = spawnSync('sh', ['-c', `set -eu; . "${SCRIPTS}/sentinel-decide.sh"; decide_epochs "${file}" ${discovered}`], {
      encoding: 'utf8', env: { PATH: process.env.PATH ?? '', MASTER_NAME: 'mymaster' },
    });
    if (r.status !== 0) throw new Error(`sh exited ${r.status}: ${r.stderr}`);
    const [current, leader, ...reason] = r.stdout.trim().split(' ');
    return { current: Number(current), leader: Number(leader), reason: reason.join(' ') };
  }

  it('keeps the current and leader epoch it voted in, although the other Sentinels report an older config epoch', () => {
    // It voted in epoch 7 (a failover attempt that has not produced a new configuration yet).
    const d = decide(rewrittenConfig({ current: 7, leader: 7, config: 5 }), 5);
    expect(d).toMatchObject({ current: 7, leader: 7 });
    expect(d.reason).toBe('the previous run of this container recorded current-epoch 7, leader-epoch 7 and config-epoch 5; the other Sentinels report config-epoch 5');
  });

  it('moves its current epoch up to a newer epoch the other Sentinels report, keeping its own leader epoch', () => {
    expect(decide(rewrittenConfig({ current: 3, leader: 2, config: 3 }), 6)).toMatchObject({ current: 6, leader: 2 });
  });

  it('never starts with a current epoch below its leader epoch or its previous config epoch', () => {
    expect(decide(rewrittenConfig({ current: 8, leader: 9, config: 4 }), 0)).toMatchObject({ current: 9, leader: 9 });
    expect(decide(rewrittenConfig({ current: 2, leader: 1, config: 4 }), 3)).toMatchObject({ current: 4, leader: 1 });
  });

  it('on a first start (no previous config) takes the epoch the other Sentinels report, or 0, and no leader epoch', () => {
    expect(decide(null, 4)).toMatchObject({ current: 4, leader: 0, reason: 'no epochs recorded by a previous run of this container; the other Sentinels report config-epoch 4' });
    expect(decide(null, 0)).toMatchObject({ current: 0, leader: 0 });
    expect(decide('', 0)).toMatchObject({ current: 0, leader: 0 });
  });

  it('ignores the leader and config epochs of a master it no longer monitors (another name)', () => {
    expect(decide(rewrittenConfig({ current: 5, leader: 5, config: 5, master: 'oldmaster' }), 2)).toMatchObject({ current: 5, leader: 0 });
  });
});

describe('sentinel-start.sh (a restarted Sentinel container keeps ID and epochs)', () => {
  /**
   * Runs the start script with a previous config (or none) in its data directory; the other
   * Sentinels (10.0.0.6 and 10.0.0.7) name redis-slave-1 master with config epoch `peerEpoch`.
   * Returns the config redis-sentinel would have been started with, and the log.
   */
  function start(previous: string | null, peerEpoch: number) {
    const world = newWorld()
      .sentinel('10.0.0.5', {})
      .sentinel('10.0.0.6', { master: { host: SLAVE1, epoch: peerEpoch } })
      .sentinel('10.0.0.7', { master: { host: SLAVE1, epoch: peerEpoch } });
    const env = world.sentinelEnv('10.0.0.5');
    if (previous !== null) writeFileSync(env.SENTINEL_CONFIG, previous);
    writeFileSync(env.SENTINEL_TEMPLATE, 'port 26379\ndir /data\nsentinel monitor mymaster redis-master-0.redis-master 6379 2\nsentinel down-after-milliseconds mymaster 5000\n');
    const r = world.script('sentinel-start.sh', env, [], 20_000);
    if (r.status !== 0) throw new Error(`sentinel-start.sh exited ${r.status}: ${r.stderr}`);
    const lines = r.stdout.trim().split('\n');
    return { config: r.stdout, lines, log: r.stderr, value: (prefix: string) => lines.filter((l) => l.startsWith(`${prefix} `)).map((l) => l.slice(prefix.length + 1)) };
  }

  it('after a restart, starts with the ID, current epoch and leader epoch of its previous run', () => {
    const s = start(rewrittenConfig({ current: 7, leader: 7, config: 5 }), 5);
    expect(s.value('sentinel myid')).toEqual([MY_ID]);
    expect(s.value('sentinel current-epoch')).toEqual(['7']);
    expect(s.value('sentinel leader-epoch mymaster')).toEqual(['7']);
    // The master and its config epoch come from the other Sentinels, as before.
    expect(s.value('sentinel monitor mymaster')).toEqual(['redis-slave-1.redis-slave.ns.svc.cluster.local 6379 2']);
    expect(s.value('sentinel config-epoch mymaster')).toEqual(['5']);
    expect(s.log).toMatch(/sentinel-start: starting with current-epoch 7 and leader-epoch 7 because the previous run of this container recorded current-epoch 7, leader-epoch 7 and config-epoch 5; the other Sentinels report config-epoch 5/);
    // The epochs follow the monitor line: Sentinel only accepts a per-master option for a master it already knows.
    const monitorAt = s.lines.findIndex((l) => l.startsWith('sentinel monitor '));
    expect(s.lines.findIndex((l) => l.startsWith('sentinel leader-epoch '))).toBeGreaterThan(monitorAt);
  });

  it('on a first start, takes the epoch the other Sentinels report and writes no leader epoch', () => {
    const s = start(null, 4);
    expect(s.value('sentinel current-epoch')).toEqual(['4']);
    expect(s.value('sentinel config-epoch mymaster')).toEqual(['4']);
    expect(s.lines.some((l) => l.startsWith('sentinel leader-epoch') || l.startsWith('sentinel myid'))).toBe(false);
    expect(s.log).toMatch(/starting with current-epoch 4 and leader-epoch 0 because no epochs recorded/);
  });
});

describe('decide_master (which master a starting Sentinel monitors)', () => {
  const decide = (world: World) => world.functions(['common.sh', 'sentinel-decide.sh'], 'decide_master', world.sentinelEnv('10.0.0.5')).stdout.trim();

  it('the one the other Sentinels name, newest config epoch first, never asking itself', () => {
    const world = newWorld()
      .sentinel('10.0.0.5', { master: { host: MASTER0, epoch: 9 } })
      .sentinel('10.0.0.6', { master: { host: MASTER0, epoch: 3 } })
      .sentinel('10.0.0.7', { master: { host: SLAVE1, epoch: 4 } })
      .redis(MASTER0, { role: 'master', keys: 5 });
    expect(decide(world)).toBe(`monitor ${SLAVE1} 4 the other Sentinels name it master (epoch 4)`);
    expect(world.calls('10.0.0.5')).toEqual([]);
  });

  it('when no Sentinel knows it, the Redis pod that reports role master with the largest offset', () => {
    const world = newWorld()
      .sentinel('10.0.0.6', {})
      .redis(MASTER0, { role: 'master', offset: 100 })
      .redis(SLAVE0, { role: 'master', offset: 900 })
      .redis(SLAVE1, { role: 'slave', masterHost: MASTER0 });
    expect(decide(world)).toBe(`monitor ${SLAVE0} 0 no Sentinel knows the master and it reports role master`);
  });

  it('when no pod reports master (it is down too), the master every reachable replica follows', () => {
    const world = newWorld()
      .redis(SLAVE0, { role: 'slave', masterHost: MASTER0 })
      .redis(SLAVE1, { role: 'slave', masterHost: MASTER0 });
    expect(decide(world)).toMatch(new RegExp(`^monitor ${MASTER0.replace(/\./g, '\\.')} 0 no Sentinel knows the master, no Redis pod reports role master, and every reachable replica follows it`));
  });

  it('waits when the replicas disagree or nothing answers (a guess could elect a stale master)', () => {
    const world = newWorld()
      .redis(SLAVE0, { role: 'slave', masterHost: MASTER0 })
      .redis(SLAVE1, { role: 'slave', masterHost: SLAVE0 });
    expect(decide(world)).toBe('wait - - no Sentinel and no Redis pod names a master yet');
    expect(decide(newWorld())).toBe('wait - - no Sentinel and no Redis pod names a master yet');
  });
});

describe('decide_reset (when the janitor resets phantom Sentinels)', () => {
  const decide = (world: World, sinceLastReset = 1000) =>
    world.functions(['common.sh', 'sentinel-decide.sh'], `decide_reset ${sinceLastReset}`, world.sentinelEnv('10.0.0.5', { container: 'janitor' })).stdout.trim();
  const phantoms = (flags = 'master', peers = ['sentinel', 'sentinel', 's_down,sentinel']) =>
    newWorld().sentinel('10.0.0.5', { master: { host: MASTER0, epoch: 2, flags, otherSentinels: peers.length }, peers });

  it('resets when it knows more Sentinels than exist, one is down, and the master is up with no failover', () => {
    expect(decide(phantoms())).toBe('reset this Sentinel knows 3 other Sentinels (1 down) but only 2 exist');
  });

  it('holds, saying why, while the master is down or a failover runs', () => {
    expect(decide(phantoms('s_down,master'))).toBe("hold phantom Sentinels present but master flags are 's_down,master'; not resetting now");
    expect(decide(phantoms('master,failover_in_progress'))).toMatch(/^hold .*'master,failover_in_progress'/);
  });

  it('does nothing without phantoms: no more peers than exist, or none of them down (a new pod joining)', () => {
    expect(decide(phantoms('master', ['sentinel', 's_down,sentinel']))).toBe('none this Sentinel knows 2 other Sentinels, no more than the 2 that exist');
    expect(decide(phantoms('master', ['sentinel', 'sentinel', 'sentinel']))).toMatch(/^none .*more than the 2 that exist, but none is down$/);
  });

  it('does nothing within the hold-off after its last reset', () => {
    expect(decide(phantoms(), 5)).toBe('none phantom Sentinels present, but this Sentinel was reset 5s ago (less than 30s)');
    expect(decide(phantoms(), 30)).toMatch(/^reset /);
  });

  it('does nothing when the local Sentinel does not answer or does not know the master', () => {
    expect(decide(newWorld())).toBe('none the local Sentinel does not answer or does not know the master');
    expect(decide(newWorld().sentinel('10.0.0.5', {}))).toMatch(/^none the local Sentinel/);
  });
});

describe('decide_rejoin (when the janitor restarts a Sentinel that started apart from the others)', () => {
  const decide = (world: World) =>
    world.functions(['common.sh', 'sentinel-decide.sh'], 'decide_rejoin', world.sentinelEnv('10.0.0.5', { container: 'janitor' })).stdout.trim();
  /** The local Sentinel (10.0.0.5) monitors `mine`; the two others name `a` and `b`. */
  const split = (mine: { host: string; epoch?: number; flags?: string; roleReported?: string }, a: [string, number], b: [string, number]) =>
    newWorld()
      .sentinel('10.0.0.5', { master: { epoch: 0, flags: 's_down,master', roleReported: 'slave', ...mine } })
      .sentinel('10.0.0.6', { master: { host: a[0], epoch: a[1] } })
      .sentinel('10.0.0.7', { master: { host: b[0], epoch: b[1] } });

  it('is apart when both others name another master at its epoch and its own master is down or a replica', () => {
    expect(decide(split({ host: MASTER0 }, [SLAVE1, 0], [SLAVE1, 0])))
      .toBe(`apart this Sentinel monitors ${MASTER0} (s_down,master, reports role 'slave'), but 2 other Sentinels name ${SLAVE1} at the same config epoch 0`);
    // Reported as a replica before Sentinel flags it down (that takes downAfter + 2 INFO periods).
    expect(decide(split({ host: MASTER0, flags: 'master' }, [SLAVE1, 3], [SLAVE1, 3]).sentinel('10.0.0.5', { master: { host: MASTER0, epoch: 3, roleReported: 'slave' } })))
      .toMatch(/^apart .*reports role 'slave'.* epoch 3$/);
  });

  it('is not apart when it is on the majority side, or no majority agrees on one other master', () => {
    expect(decide(split({ host: SLAVE1, flags: 'master', roleReported: 'master' }, [SLAVE1, 0], [MASTER0, 0]))).toMatch(/^none no majority of Sentinels \(2 of 3 besides this one\)/);
    expect(decide(split({ host: MASTER0 }, [SLAVE1, 0], [SLAVE0, 0]))).toMatch(/^none no majority/);
    expect(decide(split({ host: MASTER0 }, [SLAVE1, 0], [MASTER0, 0]))).toMatch(/^none no majority/);
    // One other Sentinel down: the one left is no majority of three on its own.
    expect(decide(split({ host: MASTER0 }, [SLAVE1, 0], [SLAVE1, 0]).down('10.0.0.7'))).toMatch(/^none no majority/);
  });

  it('leaves a newer epoch to the hello messages, a failover to finish, and two masters to the guard', () => {
    expect(decide(split({ host: MASTER0 }, [SLAVE1, 1], [SLAVE1, 1]))).toBe('none 2 other Sentinels report a newer config epoch than 0; their hello messages bring this one along');
    expect(decide(split({ host: MASTER0, flags: 'master,failover_in_progress' }, [SLAVE1, 0], [SLAVE1, 0]))).toMatch(/^none a failover is in progress/);
    expect(decide(split({ host: MASTER0, flags: 'master', roleReported: 'master' }, [SLAVE1, 0], [SLAVE1, 0])))
      .toMatch(/^none 2 other Sentinels name .* but .* answers as a master here; the guard settles two masters$/);
  });

  it('does nothing when the local Sentinel does not answer or does not know the master', () => {
    expect(decide(newWorld().sentinel('10.0.0.6', { master: { host: SLAVE1, epoch: 0 } }))).toBe('none the local Sentinel does not answer or does not know the master');
  });
});
