// How a Redis pod starts (decide_start), and when its guard fences or demotes a master
// (fence_verdict, decide_demote and the counts they read), from lib/pod/scripts/redis-decide.sh.
// The functions run under the machine's POSIX sh against the shared stand-in redis-cli
// (test/unit/support/world.ts): each Redis pod and each Sentinel answers as described, and
// one that is not described does not answer.
import { describe, expect, it } from 'vitest';
import { spawn } from 'child_process';
import { mkdirSync, readFileSync, utimesSync, writeFileSync } from 'fs';
import { join } from 'path';
import { SCRIPTS_DIR } from './support/shell-source';
import { MASTER0, RedisServer, SLAVE0, SLAVE1, World, fqdn, useWorlds } from './support/world';

type Node = RedisServer & { role: 'master' | 'slave'; keys: number };
interface SentinelAnswer { epoch: number; host: string; flags?: string }

interface Scenario {
  me: string; // short pod name, e.g. redis-master-0
  nodes?: Record<string, Node>; // fqdn -> answers INFO; absent = unreachable
  sentinels?: SentinelAnswer[]; // each answers SENTINEL MASTER; [] = none reachable
  // own /data: no data files, or data files with the guard's record (writtenAfter: the AOF
  // was written after the record, as when the pod died right after its first writes)
  volume?: 'empty' | { keys?: number; replid?: string; writtenAfter?: boolean };
  roleRecord?: string;
  allowEmpty?: boolean;
  waited?: number;
  previousIp?: string;
}

const newWorld = useWorlds();

function decide(w: Scenario): string {
  const world = newWorld();
  for (const [host, n] of Object.entries(w.nodes ?? {})) world.redis(host, n);
  (w.sentinels ?? []).forEach((s, i) => world.sentinel(`10.0.0.${i + 5}`, { master: s }));
  const env = world.redisEnv(w.me);
  const data = env.DATA_DIR;
  mkdirSync(data, { recursive: true });
  if (w.volume !== 'empty') {
    mkdirSync(join(data, 'appendonlydir'));
    writeFileSync(join(data, 'appendonlydir', 'appendonly.aof.1.base.rdb'), 'REDIS0010...');
    const v = w.volume ?? {};
    if (v.keys !== undefined) writeFileSync(env.STATE_FILE, `role master\nkeys ${v.keys}\nreplid ${v.replid ?? 'a'.repeat(40)}\noffset 90\n`);
    if (v.writtenAfter) {
      const incr = join(data, 'appendonlydir', 'appendonly.aof.1.incr.aof');
      writeFileSync(incr, '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n');
      const t = Date.now() / 1000;
      utimesSync(env.STATE_FILE, t - 10, t - 10);
      utimesSync(incr, t, t);
    }
  }
  if (w.roleRecord) writeFileSync(env.ROLE_FILE, `${w.roleRecord}\n`);
  if (w.allowEmpty) writeFileSync(env.ALLOW_EMPTY_FILE, '');
  return world.functions(['common.sh', 'redis-decide.sh'], `ME="${fqdn(w.me)}"; decide_start ${w.waited ?? 0} "${w.previousIp ?? ''}"`, env)
    .stdout.trim();
}

const master0 = { me: 'redis-master-0' };
const slave0 = { me: 'redis-slave-0' };
const replicaWithData = (keys = 500): Node => ({ role: 'slave', keys, masterHost: MASTER0 });
const emptyReplica: Node = { role: 'slave', keys: 0, masterHost: MASTER0 };

describe('decide_start: a record of no keys older than the data files', () => {
  // CI: the master, killed right after its first writes, had a record of 0 keys beside an
  // AOF holding them; it took its volume for empty and followed the bootstrap pod, a replica.
  it('is not taken for an empty volume: the master follows its role record', () => {
    const stale = decide({ me: 'redis-slave-1', volume: { keys: 0, writtenAfter: true }, roleRecord: 'master', sentinels: [],
      nodes: { [MASTER0]: { role: 'slave', keys: 200, masterHost: SLAVE1 }, [SLAVE0]: { role: 'slave', keys: 200, masterHost: SLAVE1 } } });
    expect(stale).toBe('master - no Sentinel knows the master and this pod\'s data volume says it was master');
    // A fresh record of 0 keys is believed: the pod is empty.
    const fresh = decide({ me: 'redis-slave-1', volume: { keys: 0 }, roleRecord: 'master', sentinels: [],
      nodes: { [MASTER0]: { role: 'slave', keys: 200, masterHost: SLAVE1 }, [SLAVE0]: { role: 'slave', keys: 200, masterHost: SLAVE1 } } });
    expect(fresh).toMatch(/^replica \S*redis-master-0\S* no Sentinel knows the master and this pod's volume is empty/);
  });
});

describe('decide_start: a pod whose volume is empty', () => {
  it('waits, instead of starting as master, when the Sentinels still name it but a replica holds data', () => {
    const v = decide({ ...master0, volume: 'empty', sentinels: [{ epoch: 0, host: MASTER0 }, { epoch: 0, host: MASTER0 }],
      nodes: { [SLAVE0]: replicaWithData(), [SLAVE1]: replicaWithData() } });
    expect(v).toMatch(/^wait - the Sentinels still name this pod master \(epoch 0\), this pod's volume is empty and .*redis-slave-0.* holds data/);
  });

  it('waits on a cold start of everything when no Sentinel knows a master and a replica holds data (even a loading one)', () => {
    const v = decide({ ...master0, volume: 'empty', sentinels: [],
      nodes: { [SLAVE0]: emptyReplica, [SLAVE1]: { ...emptyReplica, loading: true } } });
    expect(v).toMatch(/^wait - no Sentinel knows the master, this pod's volume is empty and \S*redis-slave-1\S* holds data/);
  });

  it('waits when a Redis pod that may hold data does not answer', () => {
    const v = decide({ ...master0, volume: 'empty', sentinels: [], nodes: { [SLAVE0]: emptyReplica } });
    expect(v).toMatch(/^wait - .*redis-slave-1\S* does not answer \(it may hold data\)/);
  });

  it('starts the bootstrap pod as master on a true first boot: every other pod answers and none holds data', () => {
    const v = decide({ ...master0, volume: 'empty', sentinels: [], nodes: { [SLAVE0]: emptyReplica, [SLAVE1]: emptyReplica } });
    expect(v).toBe('master - no Sentinel knows the master, and no Redis pod holds data (first boot)');
  });

  it('follows the master the Sentinels name (it has nothing to lose)', () => {
    const v = decide({ ...slave0, volume: 'empty', sentinels: [{ epoch: 4, host: SLAVE1 }], nodes: { [SLAVE1]: { role: 'master', keys: 9 } } });
    expect(v).toBe(`replica ${SLAVE1} the Sentinels name it master (epoch 4)`);
  });

  it('a non-bootstrap pod follows the bootstrap master when no Sentinel knows one', () => {
    const v = decide({ ...slave0, volume: 'empty', sentinels: [], nodes: {} });
    expect(v).toMatch(new RegExp(`^replica ${MASTER0.replace(/\./g, '\\.')} no Sentinel knows the master`));
  });

  it('starts as master when an operator allowed it (a deliberate reset), whatever the others hold', () => {
    const v = decide({ ...master0, volume: 'empty', allowEmpty: true, sentinels: [], nodes: { [SLAVE0]: replicaWithData() } });
    expect(v).toMatch(/^master - an operator allowed this pod to start as an empty master/);
  });

  it('a volume with data files but a record of zero keys counts as empty', () => {
    const v = decide({ ...master0, volume: { keys: 0 }, sentinels: [{ epoch: 2, host: MASTER0 }], nodes: { [SLAVE0]: replicaWithData(), [SLAVE1]: replicaWithData() } });
    expect(v).toMatch(/^wait - the Sentinels still name this pod master/);
  });
});

describe('decide_start: a pod with data', () => {
  it('follows the newest epoch when the Sentinels disagree (a stale record says master)', () => {
    const v = decide({ ...master0, volume: { keys: 100 }, roleRecord: 'master',
      sentinels: [{ epoch: 3, host: MASTER0 }, { epoch: 4, host: SLAVE1 }, { epoch: 3, host: MASTER0 }],
      nodes: { [SLAVE1]: { role: 'master', keys: 100 } } });
    expect(v).toBe(`replica ${SLAVE1} the Sentinels name it master (epoch 4)`);
  });

  it('a restarted master that the Sentinels still name waits for their failover while a replica with data can take over', () => {
    const world = { ...master0, volume: { keys: 100 }, sentinels: [{ epoch: 1, host: MASTER0 }], nodes: { [SLAVE0]: replicaWithData(), [SLAVE1]: replicaWithData() } };
    expect(decide(world)).toMatch(/^wait - the Sentinels name this pod master and it restarted, and \S*redis-slave-0\S* \S*redis-slave-1\S* can take over/);
    expect(decide({ ...world, waited: 20 })).toMatch(/^master - .*no failover happened within 20s/);
  });

  it('a restarted master comes back at once when no replica with data answers', () => {
    const v = decide({ ...master0, volume: { keys: 100 }, sentinels: [{ epoch: 1, host: MASTER0 }], nodes: {} });
    expect(v).toBe('master - the Sentinels name this pod master (epoch 1) and no replica with data answers');
  });

  it('waits when the Sentinels see it down or its IP changed', () => {
    expect(decide({ ...master0, volume: { keys: 5 }, sentinels: [{ epoch: 1, host: MASTER0, flags: 's_down,master' }], nodes: {} }))
      .toMatch(/^wait - the Sentinels name this pod master but see it down \(s_down,master\)/);
    expect(decide({ ...master0, volume: { keys: 5 }, previousIp: '10.1.0.2', sentinels: [{ epoch: 1, host: MASTER0 }], nodes: {} }))
      .toMatch(/^wait - .*its IP changed \(10\.1\.0\.2 -> 10\.1\.0\.9\)/);
  });

  it('follows its own record when no Sentinel answers', () => {
    expect(decide({ ...slave0, volume: { keys: 5 }, roleRecord: `replica ${SLAVE1}`, sentinels: [], nodes: {} }))
      .toMatch(new RegExp(`^replica ${SLAVE1.replace(/\./g, '\\.')} no Sentinel knows the master and this pod's data volume says it followed`));
    expect(decide({ ...master0, volume: { keys: 5 }, roleRecord: 'master', sentinels: [], nodes: {} }))
      .toMatch(/^master - no Sentinel knows the master and this pod's data volume says it was master/);
  });

  it('never follows an empty master from another replication history (its full resync would erase this data)', () => {
    const empty = { role: 'master' as const, keys: 0, replid: 'f'.repeat(40), replid2: '0'.repeat(40) };
    expect(decide({ ...slave0, volume: { keys: 50, replid: 'a'.repeat(40) }, sentinels: [{ epoch: 5, host: MASTER0 }], nodes: { [MASTER0]: empty } }))
      .toMatch(/^wait - the Sentinels name \S+ \(epoch 5\), but it is an empty master from another replication history/);
    // The same empty master continuing this pod's history (the data was deleted on purpose) is followed.
    expect(decide({ ...slave0, volume: { keys: 50, replid: 'a'.repeat(40) }, sentinels: [{ epoch: 5, host: MASTER0 }], nodes: { [MASTER0]: { ...empty, replid2: 'a'.repeat(40) } } }))
      .toBe(`replica ${MASTER0} the Sentinels name it master (epoch 5)`);
  });
});

describe('the guard\'s fencing rule', () => {
  function run(script: string, stdin = '') {
    const world = newWorld();
    return world.functions(['common.sh', 'redis-decide.sh'], script, world.redisEnv('redis-master-0', { container: 'guard' }), stdin).stdout.trim();
  }
  const verdict = (fenced: number, backing: number, healthy: number, expected: number, rounds: number) =>
    run(`fence_verdict ${fenced} ${backing} ${healthy} ${expected} ${rounds}`);

  it('fences a master that lost the Sentinel majority and a replica, after two checks in a row', () => {
    expect(verdict(0, 1, 1, 2, 1)).toBe('keep 1 of 3 Sentinels back this master (need 2), 1 of 2 replicas healthy, for 1 of 2 checks in a row');
    expect(verdict(0, 1, 1, 2, 2)).toBe('fence 1 of 3 Sentinels back this master (need 2), 1 of 2 replicas healthy, for 2 checks in a row');
  });

  it('keeps writing with two of three Sentinels gone while every replica is attached (no failover can be under way)', () => {
    expect(verdict(0, 1, 2, 2, 9)).toBe('keep 1 of 3 Sentinels back this master (need 2), 2 of 2 replicas healthy; not fenced');
  });

  it('keeps writing with a replica gone while the Sentinel majority backs it', () => {
    expect(verdict(0, 2, 1, 2, 9)).toMatch(/^keep 2 of 3 Sentinels back this master \(need 2\), 1 of 2 replicas healthy; not fenced$/);
  });

  it('lifts the fence once the majority backs it again or every replica is back', () => {
    expect(verdict(1, 2, 0, 2, 0)).toMatch(/^unfence 2 of 3 Sentinels/);
    expect(verdict(1, 0, 2, 2, 0)).toMatch(/^unfence 0 of 3 Sentinels back this master \(need 2\), 2 of 2 replicas healthy/);
    expect(verdict(1, 1, 1, 2, 5)).toMatch(/^keep .*; staying fenced$/);
  });

  const me = MASTER0;
  const probes = (...lines: string[]) => lines.join('\n') + '\n';

  it('counts as backing the Sentinels that name this master up, or name another one they see down (a fresh promotion)', () => {
    expect(run(`sentinels_backing ${me}`, probes(`sentinel 10.0.0.5 3 ${SLAVE0} 6379 s_down,o_down,master`,
      `sentinel 10.0.0.6 3 ${SLAVE0} 6379 master,failover_in_progress`, `sentinel 10.0.0.7 3 ${SLAVE0} 6379 master`))).toBe('2');
    expect(run(`sentinels_backing ${me}`, probes(`sentinel 10.0.0.5 4 ${me} 6379 master,disconnected`))).toBe('1');
    // A planned switchover: the leader already names this master (epoch 5); the others still
    // name the old one, up, under epoch 4: stale, not backing a competitor.
    expect(run(`sentinels_backing ${me}`, probes(`sentinel 10.0.0.5 5 ${me} 6379 master`,
      `sentinel 10.0.0.6 4 ${SLAVE0} 6379 master`, `sentinel 10.0.0.7 4 ${SLAVE0} 6379 master`))).toBe('3');
    // The other way round (this is the old master): nobody backs it.
    expect(run(`sentinels_backing ${SLAVE0}`, probes(`sentinel 10.0.0.5 5 ${me} 6379 master`,
      `sentinel 10.0.0.6 4 ${SLAVE0} 6379 s_down,master`))).toBe('0');
    expect(run(`sentinels_backing ${me}`, probes(`sentinel 10.0.0.5 3 ${me} 6379 master`, `sentinel 10.0.0.6 3 ${me} 6379 s_down,master`,
      `sentinel 10.0.0.7 4 ${SLAVE0} 6379 master`, 'sentinel 10.0.0.8 -', `replica ${SLAVE0} ok`))).toBe('1');
    expect(run('replicas_healthy', probes(`sentinel 10.0.0.5 3 ${me} 6379 master`, `replica ${SLAVE0} ok`, `replica ${SLAVE1} ok`))).toBe('2');
  });

  it('reports the replacing master only when every answering Sentinel (at least a quorum) agrees and none is failing over', () => {
    expect(run(`superseded_by ${me}`, probes(`sentinel 10.0.0.5 4 ${SLAVE0} 6379 master`, `sentinel 10.0.0.6 4 ${SLAVE0} 6379 master`, 'sentinel 10.0.0.7 -')))
      .toBe(`4 ${SLAVE0} 6379`);
    expect(run(`superseded_by ${me}`, probes(`sentinel 10.0.0.5 4 ${SLAVE0} 6379 master`, `sentinel 10.0.0.6 3 ${me} 6379 master`))).toBe('');
    expect(run(`superseded_by ${me}`, probes(`sentinel 10.0.0.5 4 ${SLAVE0} 6379 master`, 'sentinel 10.0.0.6 -', 'sentinel 10.0.0.7 -'))).toBe('');
    expect(run(`superseded_by ${me}`, probes(`sentinel 10.0.0.5 4 ${SLAVE0} 6379 master,failover_in_progress`, `sentinel 10.0.0.6 4 ${SLAVE0} 6379 master`))).toBe('');
    expect(run(`superseded_by ${me}`, probes(`sentinel 10.0.0.5 3 ${me} 6379 master`, `sentinel 10.0.0.6 3 ${me} 6379 master`))).toBe('');
  });
});

describe('the guard\'s demotion rule (decide_demote)', () => {
  const probes = (...lines: string[]) => lines.join('\n') + '\n';
  function demote(world: World, stdin: string) {
    return world.functions(['common.sh', 'redis-decide.sh'], `decide_demote ${MASTER0}`,
      world.redisEnv('redis-master-0', { container: 'guard' }), stdin).stdout.trim();
  }

  it('demotes a master once a quorum of Sentinels agrees on another master that answers as master', () => {
    const world = newWorld().redis(SLAVE0, { role: 'master', keys: 5 });
    expect(demote(world, probes(`sentinel 10.0.0.5 4 ${SLAVE0} 6379 master`, `sentinel 10.0.0.6 4 ${SLAVE0} 6379 master`, 'sentinel 10.0.0.7 -')))
      .toBe(`demote ${SLAVE0} 6379 the Sentinels name ${SLAVE0} (epoch 4), which answers as master`);
    expect(world.calls(SLAVE0)).toEqual(['ROLE']);
  });

  it('stays master while the named master does not answer as master yet (its promotion is not done)', () => {
    const world = newWorld().redis(SLAVE0, { role: 'slave', masterHost: MASTER0 });
    expect(demote(world, probes(`sentinel 10.0.0.5 4 ${SLAVE0} 6379 master`, `sentinel 10.0.0.6 4 ${SLAVE0} 6379 master`)))
      .toBe(`stay - - the Sentinels name ${SLAVE0} (epoch 4), but it answers as slave, not as master`);
    world.down(SLAVE0);
    expect(demote(world, probes(`sentinel 10.0.0.5 4 ${SLAVE0} 6379 master`, `sentinel 10.0.0.6 4 ${SLAVE0} 6379 master`)))
      .toMatch(/^stay - - .*but it answers as nothing, not as master$/);
  });

  it('stays master, asking no Redis server, while the Sentinels disagree, fail over, or too few answer', () => {
    const world = newWorld().redis(SLAVE0, { role: 'master', keys: 5 });
    for (const lines of [
      [`sentinel 10.0.0.5 4 ${SLAVE0} 6379 master`, `sentinel 10.0.0.6 3 ${MASTER0} 6379 master`],
      [`sentinel 10.0.0.5 4 ${SLAVE0} 6379 master,failover_in_progress`, `sentinel 10.0.0.6 4 ${SLAVE0} 6379 master`],
      [`sentinel 10.0.0.5 4 ${SLAVE0} 6379 master`, 'sentinel 10.0.0.6 -', 'sentinel 10.0.0.7 -'],
    ]) expect(demote(world, probes(...lines)), lines.join(' / ')).toBe('stay - - no quorum of Sentinels agrees on another master');
    expect(world.calls()).toEqual([]);
  });
});

describe('the Sentinel view that wins (newest_sentinel_view over sentinel_views)', () => {
  function view(world: World, exclude = '') {
    return world.functions(['common.sh'], `sentinel_views "${exclude}" | newest_sentinel_view`, world.redisEnv('redis-slave-0')).stdout.trim();
  }

  it('takes the newest config epoch, whatever order the Sentinels answer in, and says which Sentinel and how many agree', () => {
    const world = newWorld()
      .sentinel('10.0.0.5', { master: { host: MASTER0, epoch: 3 } })
      .sentinel('10.0.0.6', { master: { host: SLAVE1, epoch: 4 } })
      .sentinel('10.0.0.7', { master: { host: MASTER0, epoch: 3, flags: 's_down,master' } });
    expect(view(world)).toBe(`4 ${SLAVE1} 6379 master Sentinel 10.0.0.6 has the newest config epoch of the 3 that know the master (1 name ${SLAVE1})`);
  });

  it('at the same newest epoch, takes the master most Sentinels name, whichever Sentinel answers first', () => {
    // After every pod restarted, one Sentinel chose while the master was still starting.
    for (const order of [[MASTER0, SLAVE1, SLAVE1], [SLAVE1, MASTER0, SLAVE1], [SLAVE1, SLAVE1, MASTER0]]) {
      const world = newWorld();
      order.forEach((host, i) => world.sentinel(`10.0.0.${5 + i}`, { master: { host, epoch: 0, flags: host === MASTER0 ? 's_down,master' : 'master' } }));
      expect(view(world), order.join(' ')).toMatch(new RegExp(`^0 ${SLAVE1.replace(/\./g, '\\.')} 6379 master Sentinel 10\\.0\\.0\\.\\d has the newest config epoch of the 3 that know the master \\(2 name ${SLAVE1.replace(/\./g, '\\.')}\\); at that epoch 2 masters are named, this one by most Sentinels \\(then by name\\)$`));
    }
    // The majority wins over host name order too (a plain reverse sort would take redis-slave-1).
    const majority = newWorld()
      .sentinel('10.0.0.5', { master: { host: MASTER0, epoch: 0 } })
      .sentinel('10.0.0.6', { master: { host: SLAVE1, epoch: 0 } })
      .sentinel('10.0.0.7', { master: { host: MASTER0, epoch: 0 } });
    expect(view(majority).split(' ').slice(0, 2)).toEqual(['0', MASTER0]);
    // A newer epoch still beats a majority at an older one; a tie goes to the same host whatever the order.
    const newer = newWorld()
      .sentinel('10.0.0.5', { master: { host: SLAVE1, epoch: 1 } })
      .sentinel('10.0.0.6', { master: { host: MASTER0, epoch: 2 } })
      .sentinel('10.0.0.7', { master: { host: SLAVE1, epoch: 1 } });
    expect(view(newer).split(' ').slice(0, 2)).toEqual(['2', MASTER0]);
    const tie = (a: string, b: string) => view(newWorld().sentinel('10.0.0.5', { master: { host: a, epoch: 0 } })
      .sentinel('10.0.0.6', { master: { host: b, epoch: 0 } })).split(' ')[1];
    expect(tie(SLAVE1, MASTER0)).toBe(tie(MASTER0, SLAVE1));
  });

  it('leaves out a Sentinel that does not know the master, one that does not answer, and the excluded address', () => {
    const world = newWorld()
      .sentinel('10.0.0.5', {})
      .sentinel('10.0.0.6', { master: { host: SLAVE1, epoch: 4 } })
      .sentinel('10.0.0.7', { master: { host: MASTER0, epoch: 2 } });
    expect(view(world, '10.0.0.6')).toMatch(new RegExp(`^2 ${MASTER0.replace(/\./g, '\\.')} 6379 master Sentinel 10\\.0\\.0\\.7 .* of the 1 that know`));
    expect(world.calls('10.0.0.6')).toEqual([]);
    world.down('10.0.0.7');
    expect(view(world, '10.0.0.6')).toBe('');
  });
});

describe('the guard puts back a replica-priority an interrupted handover left (decide_priority_restore)', () => {
  const decide = (priority: number, configured: number, changedFor: number) => {
    const world = newWorld();
    // The contract's default handover timeout in these worlds is 3s: restore after 6s.
    return world.functions(['common.sh', 'redis-decide.sh'], `decide_priority_restore ${priority} ${configured} ${changedFor}`,
      world.redisEnv('redis-slave-0', { container: 'guard' })).stdout.trim();
  };

  it('restores it once it has been changed for longer than any handover, and not before', () => {
    expect(decide(1, 100, 7)).toBe('restore it was 1 for over 6s, longer than any handover');
    expect(decide(1, 100, 6)).toBe('keep replica-priority is 1 for 6s, within the 6s a handover may take');
    expect(decide(100, 100, 999)).toBe('keep replica-priority is 100 as configured');
  });
});

describe('redis-guard.sh acts on the decisions', () => {
  /** Runs the guard of redis-master-0 until `done` holds for the calls it made (or 20 s pass); returns its log. */
  async function guard(world: World, done: (calls: string[], log: string) => boolean): Promise<string> {
    const env = world.redisEnv('redis-master-0', { container: 'guard' });
    writeFileSync(env.REDIS_TEMPLATE, 'port 6379\nmin-replicas-to-write 1\nmin-replicas-max-lag 10\n');
    const child = spawn('sh', [join(SCRIPTS_DIR, 'redis-guard.sh')], { env });
    let log = '';
    child.stderr.on('data', (d) => { log += d; });
    const deadline = Date.now() + 20_000;
    while (!done(world.calls(MASTER0), log) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGTERM');
    await new Promise((r) => child.on('close', r));
    return log;
  }

  it('makes a master the Sentinels replaced the replica of the new master, and drops its clients', async () => {
    const world = newWorld()
      .redis(MASTER0, { role: 'master', keys: 3, replicas: [SLAVE1] })
      .redis(SLAVE0, { role: 'master', keys: 3 })
      .redis(SLAVE1, { role: 'slave', masterHost: MASTER0 })
      .sentinel('10.0.0.5', { master: { host: SLAVE0, epoch: 4 } })
      .sentinel('10.0.0.6', { master: { host: SLAVE0, epoch: 4 } });
    const log = await guard(world, (calls) => calls.includes('CLIENT KILL TYPE normal'));
    const calls = world.calls(MASTER0);
    expect(calls).toContain(`REPLICAOF ${SLAVE0} 6379`);
    expect(calls.indexOf('CLIENT KILL TYPE normal')).toBeGreaterThan(calls.indexOf(`REPLICAOF ${SLAVE0} 6379`));
    expect(log).toContain(`demoting: this server is a master but the Sentinels name ${SLAVE0} (epoch 4), which answers as master; becoming its replica`);
    expect(calls.some((c) => c.startsWith('CONFIG SET'))).toBe(false);
  });

  it('fences a master that no Sentinel backs and whose replicas do not answer, and records its role', async () => {
    const world = newWorld().redis(MASTER0, { role: 'master', keys: 3, replicas: [SLAVE0, SLAVE1] });
    // The guard acts, then logs: wait for both, or the kill can come between them.
    const log = await guard(world, (calls, out) => calls.some((c) => c.startsWith('CONFIG SET min-replicas-to-write')) && /fencing: /.test(out));
    expect(world.calls(MASTER0)).toContain('CONFIG SET min-replicas-to-write 3');
    expect(log).toMatch(/fencing: 0 of 3 Sentinels back this master \(need 2\), 0 of 2 replicas healthy, for 2 checks in a row; refusing writes \(min-replicas-to-write 3\)/);
    const env = world.redisEnv('redis-master-0', { container: 'guard' });
    expect(readFileSync(env.ROLE_FILE, 'utf8')).toBe('master\n');
    expect(readFileSync(env.STATE_FILE, 'utf8')).toMatch(/^role master\nmaster -\nkeys 3\n/);
  });
});
