// Behaviour of the shell functions in lib/pod/scripts/common.sh that decide something on
// their own (which replica Sentinel is about to promote, when to ask for a failover, when
// the janitor re-applies Sentinel's timings, whether a Redis pod may go down now), and of
// the preStop hook as a whole. They run under the machine's POSIX sh against the shared
// stand-in redis-cli (test/unit/support/world.ts), which serves the described servers and
// records what it was asked.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'fs';
import { MASTER0, SentinelReplica, SLAVE0, SLAVE1, World, sentinelReplicasReply, useWorlds } from './support/world';

const newWorld = useWorlds();

/** Runs code after sourcing common.sh, in a Redis pod's redis container of an empty world. */
function sh(script: string, opts: { stdin?: string } = {}) {
  const world = newWorld();
  return world.functions(['common.sh'], script, world.redisEnv('redis-master-0'), opts.stdin ?? '');
}

type Replica = SentinelReplica;
const sentinelReplicas = sentinelReplicasReply;

const forecast = (replicas: Replica[]) => sh('promotion_forecast', { stdin: sentinelReplicas(replicas) }).stdout.trim();

describe('promotion_forecast (which replica Sentinel promotes next)', () => {
  const a = { name: 'redis-slave-0', runid: 'b1'.repeat(20) };
  const b = { name: 'redis-slave-1', runid: 'a2'.repeat(20) };

  it('prefers the lower replica-priority over a higher offset', () => {
    expect(forecast([{ ...a, priority: 10, offset: 100, age: 300 }, { ...b, priority: 100, offset: 900, age: 700 }]))
      .toBe('300 10 redis-slave-0');
  });

  it('with equal priority prefers the higher replication offset', () => {
    expect(forecast([{ ...a, offset: 5000, age: 610 }, { ...b, offset: 4999, age: 650 }])).toBe('610 100 redis-slave-0');
    expect(forecast([{ ...a, offset: 4999, age: 610 }, { ...b, offset: 5000, age: 650 }])).toBe('650 100 redis-slave-1');
  });

  it('with equal offsets prefers the lower run ID, compared without case as Sentinel does', () => {
    expect(forecast([{ ...a, offset: 7, age: 1 }, { ...b, offset: 7, age: 2 }])).toBe('2 100 redis-slave-1');
    expect(forecast([{ ...a, runid: 'A'.repeat(40), offset: 7, age: 1 }, { ...b, runid: 'b'.repeat(40), offset: 7, age: 2 }]))
      .toBe('1 100 redis-slave-0');
  });

  it('leaves out replicas Sentinel would not promote: down, disconnected or priority 0', () => {
    const best = { ...a, offset: 10, age: 600 };
    for (const excluded of [{ flags: 's_down,slave' }, { flags: 'slave,disconnected' }, { priority: 0 }]) {
      expect(forecast([best, { ...b, offset: 99, age: 950, ...excluded }]), JSON.stringify(excluded)).toBe('600 100 redis-slave-0');
    }
  });

  it('prints nothing when no replica can be promoted', () => {
    expect(forecast([{ ...a, offset: 1, age: 1, priority: 0 }])).toBe('');
    expect(forecast([])).toBe('');
  });
});

describe('ensure_sentinel_timings (the janitor keeps SENTINEL DEBUG values applied)', () => {
  /** A Sentinel at 10.0.0.5 with these SENTINEL DEBUG periods (or one that refuses SENTINEL DEBUG). */
  function fakeSentinel(initial: Record<string, number>, refuse = false) {
    const world = newWorld().sentinel('10.0.0.5', { debug: Object.fromEntries(Object.entries(initial).map(([k, v]) => [k.toUpperCase(), v])) });
    if (refuse) world.replies('10.0.0.5', 26379, { 'debug-refused': "ERR Unknown sentinel subcommand 'debug'\n" });
    const run = (timings: string) => world.functions(['common.sh'], 'ensure_sentinel_timings 10.0.0.5',
      world.sentinelEnv('10.0.0.9', { container: 'janitor', extra: { SENTINEL_TIMINGS: timings } }));
    return { run, calls: () => world.calls('10.0.0.5'), values: () => world.file('10.0.0.5', 'SENTINEL_DEBUG') };
  }

  it('sets the values a restarted Sentinel lost, then leaves a correct Sentinel alone', () => {
    const s = fakeSentinel({ 'info-period': 10000, 'ping-period': 1000 });
    const first = s.run('info-period 1000');
    expect(s.values()).toContain('INFO-PERIOD\n1000\n');
    expect(s.values()).toContain('PING-PERIOD\n1000\n');
    expect(first.stderr).toMatch(/set Sentinel timings on 10\.0\.0\.5: info-period 1000/);
    expect(s.calls().filter((c) => /DEBUG info-period 1000/.test(c))).toHaveLength(1);

    const second = s.run('info-period 1000');
    expect(second.stderr).toBe('');
    expect(s.calls()).toHaveLength(3); // get, set, get: no second set
  });

  it('does not mistake a value that only starts with the wanted one (10000 for 1000)', () => {
    const s = fakeSentinel({ 'info-period': 10000 });
    s.run('info-period 1000');
    expect(s.values()).toContain('INFO-PERIOD\n1000\n');
  });

  it('reports a Sentinel without SENTINEL DEBUG (Redis before 7.0) and carries on', () => {
    const s = fakeSentinel({ 'info-period': 10000 }, true);
    const r = s.run('info-period 1000');
    expect(r.stderr).toMatch(/refused 'SENTINEL DEBUG info-period 1000': 'ERR Unknown sentinel subcommand/);
  });

  it('does nothing without SENTINEL_TIMINGS', () => {
    const s = fakeSentinel({ 'info-period': 10000 });
    s.run('');
    expect(s.calls()).toEqual([]);
  });
});


describe('failover_schedule (when to pause writes and ask for the failover)', () => {
  const schedule = (now: number, sampledAt: number, age: number, catchup: number) =>
    sh(`failover_schedule ${now} ${sampledAt} ${age} ${catchup}`).stdout.trim().split(' ').map(Number);

  it("asks two timer ticks (and the request's latency) before the Sentinel's next INFO is due, pausing writes the catch-up time earlier", () => {
    // Last INFO 100 ms before the sample: the next one is due 900 ms after it.
    const [pauseAt, requestAt, due] = schedule(10_000, 10_000, 100, 60);
    expect(due).toBe(10_900);
    expect(requestAt).toBe(due - 230);
    expect(pauseAt).toBe(requestAt - 60);
  });

  it('moves to the INFO after when there is no longer time to pause and catch up before this one', () => {
    const [pauseAt, requestAt, due] = schedule(10_000, 9_900, 700, 60);
    expect(due).toBe(11_200);
    expect([pauseAt, requestAt]).toEqual([10_910, 10_970]);
  });

  it('counts the age from the moment before the Sentinel was asked, so the plan is never later than the INFO', () => {
    // The same reply read later (a slow answer) moves nothing: only the sample time counts.
    expect(schedule(10_000, 10_000, 100, 60)).toEqual(schedule(10_050, 10_000, 100, 60));
  });
});

// ---------------------------------------------------------------- preStop and its gate

const MASTER = MASTER0;

describe('shutdown_gate_verdict (may this Redis pod go down now?)', () => {
  let world: World;
  const replicasSeen = (flags1 = 'slave', runid1 = 'r1'): SentinelReplica[] => [
    { name: `${SLAVE0}:6379`, runid: 'r0', offset: 100, age: 300 }, { name: `${SLAVE1}:6379`, runid: runid1, offset: 100, age: 300, flags: flags1 }];
  const sentinel = (replicas = replicasSeen(), flags = 'master') => world.sentinel('10.0.0.5', { master: { host: MASTER, epoch: 3, flags }, replicas });

  /** redis-master-0 is master with both replicas in sync; `self` is the pod asking. */
  function healthy(self: string) {
    world = newWorld()
      .redis(MASTER, { role: 'master', replicas: [SLAVE0, SLAVE1] })
      .redis(SLAVE0, { role: 'slave', runId: 'r0' })
      .redis(SLAVE1, { role: 'slave', runId: 'r1' });
    sentinel();
    const verdict = (mine = '') => world.functions(['common.sh'], `shutdown_gate_verdict "${mine}"`,
      world.redisEnv(self, { contract: { sentinelQuorum: 1 } })).stdout.trim();
    return { verdict, world };
  }
  const announce = (host: string, marker: string) => world.replies(host, 6379, { 'acl-users': `${marker}\n` });

  it('goes when every other pod is up and in sync, exactly one is master and none announced a shutdown', () => {
    expect(healthy('redis-slave-1').verdict()).toBe('go every other Redis pod is up and in sync, the Sentinels see them so, and none is going down');
    expect(healthy('redis-master-0').verdict()).toMatch(/^go /);
  });

  it('waits while another pod does not answer, or answers LOADING', () => {
    const { verdict } = healthy('redis-master-0');
    world.down(SLAVE1);
    expect(verdict()).toBe('wait redis-slave-1 is not up (PING answered nothing)');
    world.redis(SLAVE1, { role: 'slave', runId: 'r1', ping: 'LOADING Redis is loading the dataset in memory' });
    expect(verdict()).toBe('wait redis-slave-1 is not up (PING answered LOADING Redis is loading the dataset in memory)');
  });

  it('waits while a replica is not in sync: link down, or a full sync in progress', () => {
    const { verdict } = healthy('redis-master-0');
    world.redis(SLAVE0, { role: 'slave', runId: 'r0', link: 'down' });
    expect(verdict()).toBe('wait redis-slave-0 is a replica that is not in sync (link down, sync in progress 0)');
    world.redis(SLAVE0, { role: 'slave', runId: 'r0', link: 'down', syncing: true });
    expect(verdict()).toBe('wait redis-slave-0 is a replica that is not in sync (link down, sync in progress 1)');
  });

  it('waits unless exactly one Redis pod answers as master', () => {
    const { verdict } = healthy('redis-slave-0');
    world.redis(MASTER, { role: 'slave', masterHost: SLAVE1 });
    expect(verdict()).toBe('wait 0 Redis pods answer as master, not one');
    world.redis(MASTER, { role: 'master', replicas: [SLAVE0] }).redis(SLAVE1, { role: 'master', runId: 'r1' });
    expect(verdict()).toBe('wait 2 Redis pods answer as master, not one');
  });

  it('waits until enough Sentinels answer, name the same master, run no failover and see every other pod as a healthy replica', () => {
    const { verdict } = healthy('redis-master-0');
    sentinel(replicasSeen('s_down,slave'));
    expect(verdict()).toBe('wait Sentinel 10.0.0.5 does not see redis-slave-1 as a healthy replica yet (s_down,slave/ok)');
    sentinel(replicasSeen().slice(0, 1));
    expect(verdict()).toBe('wait Sentinel 10.0.0.5 does not see redis-slave-1 as a healthy replica yet (unknown)');
    // redis-slave-1 restarted (new run ID); this Sentinel still holds the link to its previous process.
    world.redis(SLAVE1, { role: 'slave', runId: 'r1-new' });
    sentinel();
    expect(verdict()).toBe('wait Sentinel 10.0.0.5 does not see redis-slave-1 as a healthy replica yet (no INFO from its current process)');
    world.redis(SLAVE1, { role: 'slave', runId: 'r1' });
    sentinel(replicasSeen(), 'master,failover_in_progress');
    expect(verdict()).toBe('wait Sentinel 10.0.0.5 names redis-master-0 master (flags master,failover_in_progress) while redis-master-0 answers as master');
    world.down('10.0.0.5');
    expect(verdict()).toBe('wait only 0 Sentinels answer, fewer than the quorum of 1');
  });

  it('waits, without announcing, while another pod announced its shutdown', () => {
    const { verdict } = healthy('redis-master-0');
    announce(SLAVE1, 'redis-ha-leaving:0:1000:redis-slave-1');
    expect(verdict()).toBe('wait redis-slave-1 is going down (redis-ha-leaving:0:1000:redis-slave-1)');
  });

  it('of two announcements, a replica goes before a master, then the earlier one, then the lower pod name', () => {
    const { verdict } = healthy('redis-master-0');
    announce(SLAVE1, 'redis-ha-leaving:0:2000:redis-slave-1');
    // This pod is master (rank 1) and announced earlier: the replica still goes first.
    expect(verdict('redis-ha-leaving:1:1000:redis-master-0')).toBe('withdraw redis-slave-1 announced its shutdown first (redis-ha-leaving:0:2000:redis-slave-1)');

    const other = healthy('redis-slave-0');
    announce(SLAVE1, 'redis-ha-leaving:0:2000:redis-slave-1');
    expect(other.verdict('redis-ha-leaving:0:1999:redis-slave-0')).toBe('wait redis-slave-1 announced its shutdown after this pod (redis-ha-leaving:0:2000:redis-slave-1) and will withdraw');
    expect(other.verdict('redis-ha-leaving:0:2001:redis-slave-0')).toMatch(/^withdraw redis-slave-1 announced its shutdown first/);
    // Same rank and time: the pod name decides, the same way on both sides.
    expect(other.verdict('redis-ha-leaving:0:2000:redis-slave-0')).toMatch(/^wait redis-slave-1 announced its shutdown after this pod/);
    const third = healthy('redis-slave-1');
    announce(SLAVE0, 'redis-ha-leaving:0:2000:redis-slave-0');
    expect(third.verdict('redis-ha-leaving:0:2000:redis-slave-1')).toMatch(/^withdraw redis-slave-0 announced its shutdown first/);
  });

  it('compares announcement times as numbers, not as text', () => {
    const { verdict } = healthy('redis-slave-0');
    announce(SLAVE1, 'redis-ha-leaving:0:999:redis-slave-1');
    expect(verdict('redis-ha-leaving:0:1000:redis-slave-0')).toMatch(/^withdraw /);
  });
});

describe('redis-prestop.sh (shutdown gate, then the master hands over)', () => {
  let world: World;
  const hookEnv = (pod: string, contract: { handoverTimeoutSeconds?: number; shutdownGateTimeoutSeconds?: number } = {}) =>
    world.redisEnv(pod, { contract: { sentinelQuorum: 1, ...contract } });
  const runHook = (pod: string, contract: { handoverTimeoutSeconds?: number; shutdownGateTimeoutSeconds?: number } = {}) => {
    const r = world.script('redis-prestop.sh', hookEnv(pod, contract));
    return { status: r.status, log: r.stderr, calls: world.calls() };
  };
  const on = (host: string, calls: string[]) => calls.filter((c) => c.startsWith(`${host} `)).map((c) => c.slice(host.length + 1));

  /**
   * redis-master-0 is master with two caught-up replicas; redis-slave-1 restarted last.
   * One Sentinel names it master; it ranks redis-slave-0 first (higher offset) until it
   * sees redis-slave-1's replica-priority 1. SENTINEL FAILOVER answers `failoverReply`,
   * after which GET-MASTER-ADDR-BY-NAME names `newMaster`.
   */
  function handoverWorld(failoverReply: string, newMaster: string) {
    world = newWorld()
      .redis(MASTER, { role: 'master', replicas: [SLAVE0, SLAVE1] })
      .redis(SLAVE0, { role: 'slave', runId: 'aaa', uptime: 86400 })
      .redis(SLAVE1, { role: 'slave', runId: 'bbb', uptime: 42 })
      .sentinel('10.0.0.5', { master: { host: MASTER, epoch: 3 } })
      .replies('10.0.0.5', 26379, {
        'SENTINEL_REPLICAS_mymaster.sh': `p="$(sed -n 2p "$world/hosts/${SLAVE1}:6379/CONFIG_GET_replica-priority")"
printf 'name\\n%s\\nrunid\\naaa\\nflags\\nslave\\ninfo-refresh\\n300\\nmaster-link-status\\nok\\nslave-priority\\n100\\nslave-repl-offset\\n200\\n' '${SLAVE0}:6379'
printf 'name\\n%s\\nrunid\\nbbb\\nflags\\nslave\\ninfo-refresh\\n100\\nmaster-link-status\\nok\\nslave-priority\\n%s\\nslave-repl-offset\\n100\\n' '${SLAVE1}:6379' "$p"
`,
        'SENTINEL_FAILOVER_mymaster.sh': `echo '${failoverReply}'; touch "$world/failover"\n`,
        'SENTINEL_GET-MASTER-ADDR-BY-NAME_mymaster.sh': `if [ -e "$world/failover" ]; then printf '${newMaster}\\n6379\\n'; else printf '${MASTER}\\n6379\\n'; fi\n`,
      });
  }
  it('the master passes the gate, promotes the replica that restarted last through its replica-priority, pauses, hands over, then restores the priority', () => {
    handoverWorld('OK', SLAVE1);
    const r = runHook('redis-master-0');
    expect(r.status).toBe(0);
    expect(r.log).toMatch(/gate: going down after \d+s: every other Redis pod is up and in sync/);
    const local = on(MASTER, r.calls);
    const order = ['ACL SETUSER redis-ha-leaving:1:', 'CLIENT PAUSE', 'REPLICAOF', 'CLIENT KILL TYPE normal', 'CLIENT UNPAUSE']
      .map((c) => local.findIndex((x) => x.startsWith(c)));
    expect(order.every((i) => i >= 0), local.join('\n')).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(local).toContain(`REPLICAOF ${SLAVE1} 6379`);
    expect(on(SLAVE1, r.calls).filter((c) => c.startsWith('CONFIG SET'))).toEqual(['CONFIG SET replica-priority 1', 'CONFIG SET replica-priority 100']);
    expect(on(SLAVE0, r.calls).filter((c) => c.startsWith('CONFIG SET'))).toEqual([]);
    const failoverAt = r.calls.findIndex((c) => c.endsWith('SENTINEL FAILOVER mymaster'));
    expect(failoverAt).toBeGreaterThan(r.calls.findIndex((c) => c.includes('CLIENT PAUSE')));
    expect(r.calls.findIndex((c) => c === `${SLAVE1} CONFIG SET replica-priority 1`)).toBeLessThan(failoverAt);
    expect(readFileSync(hookEnv('redis-master-0').ROLE_FILE, 'utf8')).toBe(`replica ${SLAVE1}\n`);
    expect(r.log).toMatch(new RegExp(`handing over to ${SLAVE1.replace(/\./g, '\\.')} \\(the replica that restarted last, 42 s ago\\)`));
    expect(r.log).toMatch(/would promote redis-slave-1\.redis-slave\.ns\.svc\.cluster\.local:6379 and last had INFO from it 100 ms ago/);
    expect(r.log).toMatch(/handed over to redis-slave-1/);
  });

  it('times the request only from a Sentinel that has seen the new priority, not one that picks the target by its offset for now', () => {
    handoverWorld('OK', SLAVE1);
    // This Sentinel never sees the priority, but ranks redis-slave-1 first by offset.
    world.replies('10.0.0.5', 26379, {
      'SENTINEL_REPLICAS_mymaster.sh': `printf 'name\\n%s\\nrunid\\nbbb\\nflags\\nslave\\ninfo-refresh\\n100\\nmaster-link-status\\nok\\nslave-priority\\n100\\nslave-repl-offset\\n900\\n' '${SLAVE1}:6379'
printf 'name\\n%s\\nrunid\\naaa\\nflags\\nslave\\ninfo-refresh\\n300\\nmaster-link-status\\nok\\nslave-priority\\n100\\nslave-repl-offset\\n200\\n' '${SLAVE0}:6379'
`,
    });
    const r = runHook('redis-master-0', { handoverTimeoutSeconds: 5 });
    expect(r.log).not.toMatch(/would promote/);
    expect(r.log).toMatch(/no Sentinel saw the replica-priority of redis-slave-1\S* within 2500 ms; handing over through 10\.0\.0\.5 without timing/);
    expect(r.log).toMatch(/handed over to redis-slave-1/);
  });

  it('unpauses and restores the priority when the Sentinel refuses the failover (nothing was promoted)', () => {
    handoverWorld('NOGOODSLAVE No suitable replica to promote', SLAVE1);
    const r = runHook('redis-master-0');
    expect(r.status).toBe(0);
    expect(on(MASTER, r.calls)).toContain('CLIENT UNPAUSE');
    expect(on(MASTER, r.calls).some((c) => c.startsWith('REPLICAOF'))).toBe(false);
    expect(world.file(SLAVE1, 'CONFIG_GET_replica-priority')).toBe('replica-priority\n100\n');
    expect(r.log).toMatch(/refused the failover/);
  });

  it('keeps writes paused when a requested failover names no new master in time (a replica may be master already)', () => {
    handoverWorld('OK', MASTER);
    const r = runHook('redis-master-0', { handoverTimeoutSeconds: 2 });
    expect(r.status).toBe(0);
    expect(on(MASTER, r.calls)).not.toContain('CLIENT UNPAUSE');
    expect(on(MASTER, r.calls)).toContain('CLIENT PAUSE 60000 WRITE');
    expect(r.log).toMatch(/writes stay paused until shutdown/);
  });

  it('a replica passes the gate and goes down without handing anything over', () => {
    handoverWorld('OK', SLAVE1);
    const r = runHook('redis-slave-0');
    expect(r.status).toBe(0);
    expect(r.log).toMatch(/gate: going down after \d+s: every other Redis pod is up and in sync/);
    expect(r.log).toMatch(/this pod is a replica; nothing to hand over/);
    expect(world.file(SLAVE0, 'acl-users')).toMatch(/^redis-ha-leaving:0:\d+:redis-slave-0\n$/);
    expect(r.calls.some((c) => c.includes('SENTINEL FAILOVER') || c.includes('CLIENT PAUSE'))).toBe(false);
  });

  it('the master waits, still serving and without its announcement, while a replica goes down, and goes down anyway at the limit', () => {
    handoverWorld('OK', SLAVE1);
    world.replies(SLAVE0, 6379, { 'acl-users': 'redis-ha-leaving:0:1000:redis-slave-0\n' });
    const r = runHook('redis-master-0', { shutdownGateTimeoutSeconds: 1 });
    expect(r.status).toBe(0);
    expect(r.log).toMatch(/gate: wait: redis-slave-0 is going down \(redis-ha-leaving:0:1000:redis-slave-0\)/);
    expect(r.log).toMatch(/gate: going down after waiting the limit of 1s, although redis-slave-0 is going down/);
    // It announces only when it goes (another pod then sees it going down), and then hands over.
    expect(on(MASTER, r.calls).filter((c) => c.startsWith('ACL SETUSER'))).toHaveLength(1);
    expect(r.log).toMatch(/handed over to redis-slave-1/);
  });

  it('two replicas deleted at the same moment: exactly one passes the gate, the other waits (here until its limit)', async () => {
    for (let round = 0; round < 3; round++) {
      handoverWorld('OK', SLAVE1);
      const run = (pod: string) => world.scriptAsync('redis-prestop.sh', hookEnv(pod, { shutdownGateTimeoutSeconds: 4 }));
      const logs = await Promise.all([run('redis-slave-0'), run('redis-slave-1')]);
      if (process.env.SHOW_GATE_LOGS) console.log(logs.join('\n----\n'));
      const passed = logs.filter((l) => /gate: going down after \d+s: every other/.test(l));
      expect(passed, logs.join('\n----\n')).toHaveLength(1);
      const other = logs.find((l) => !/gate: going down after \d+s: every other/.test(l))!;
      expect(other).toMatch(/gate: going down after waiting the limit of 4s, although redis-slave-\d is going down/);
    }
  });

  it('goes down at once, without the gate, when its own server does not answer', () => {
    handoverWorld('OK', SLAVE1);
    world.redis(SLAVE0, { role: 'slave', ping: '' });
    const r = runHook('redis-slave-0');
    expect(r.log).toMatch(/gate: this server does not answer; going down without waiting/);
  });
});
