// A restarted Sentinel keeps its epochs: decide_epochs (lib/pod/scripts/sentinel-decide.sh)
// against stand-in previous configs, and sentinel-start.sh as a whole against a stand-in
// redis-cli (the other Sentinels), getent (their addresses) and redis-sentinel (prints
// the config it was given instead of running).
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { ROOT } from './helpers';

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
    const dir = tempDir();
    const data = join(dir, 'data');
    const bin = join(dir, 'bin');
    for (const d of [data, bin]) spawnSync('mkdir', ['-p', d]);
    if (previous !== null) writeFileSync(join(data, 'sentinel.conf'), previous);
    writeFileSync(join(dir, 'password'), 'secret\n');
    writeFileSync(join(dir, 'template.conf'), 'port 26379\ndir /data\nsentinel monitor mymaster redis-master-0.redis-master 6379 2\nsentinel down-after-milliseconds mymaster 5000\n');
    const master = 'redis-slave-1.redis-slave.ns.svc.cluster.local';
    writeFileSync(join(bin, 'getent'), '#!/bin/sh\nfor ip in 10.0.0.5 10.0.0.6 10.0.0.7; do echo "$ip STREAM $2"; done\n');
    writeFileSync(join(bin, 'redis-cli'), `#!/bin/sh
host=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h) host="$2"; shift 2 ;;
    -p) shift 2 ;;
    --raw|--no-auth-warning) shift ;;
    *) break ;;
  esac
done
case "$host $*" in
  "10.0.0.6 SENTINEL MASTER mymaster"|"10.0.0.7 SENTINEL MASTER mymaster")
    printf 'name\\nmymaster\\nip\\n${master}\\nport\\n6379\\nflags\\nmaster\\nconfig-epoch\\n${peerEpoch}\\n' ;;
  *) exit 1 ;;
esac
`);
    writeFileSync(join(bin, 'redis-sentinel'), '#!/bin/sh\ncat "$1"\n');
    for (const f of ['getent', 'redis-cli', 'redis-sentinel']) chmodSync(join(bin, f), 0o755);
    const r = spawnSync('sh', [join(SCRIPTS, 'sentinel-start.sh')], {
      encoding: 'utf8', timeout: 20_000,
      env: {
        PATH: `${bin}:${process.env.PATH}`, POD_IP: '10.0.0.5', POD_NAMESPACE: 'ns', CLUSTER_DOMAIN: 'cluster.local',
        MASTER_NAME: 'mymaster', REDIS_PORT: '6379', SENTINEL_PORT: '26379', SENTINEL_SERVICE: 'redis-sentinel-headless',
        SENTINEL_DATA: data, SENTINEL_TEMPLATE: join(dir, 'template.conf'), AUTH_FILE: join(dir, 'password'),
        REDIS_NODES: 'redis-master-0.redis-master redis-slave-0.redis-slave redis-slave-1.redis-slave',
      },
    });
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
