import { describe, expect, test } from 'vitest';
import { sleep, waitFor } from '../../harness/sim/util';
import { cliAs, confirmedWrites, LiveCluster, longestPause, MASTER_NAME, resyncsBetween, WriteRecord, writeOutage } from '../../harness/live-cluster';
import { freshClusterPerTest, livePrerequisites } from './live-suite';
import { FILES, MOUNTS } from '../../lib/pod/contract';

/**
 * The live failover suite: the staging overlay, rendered by kustomize, runs as real
 * redis-server and redis-sentinel processes in the pod simulator (harness/sim), and each
 * scenario injects a fault and checks what an application would see.
 *
 * Time budgets: each test's timeout is at least 3x what it took in a run of the whole live
 * suite on 2 busy cores, and at least 90 s (the comment beside it says what it took), so a
 * slow machine does not fail a test by time; a failed test prints the cluster's state first.
 */

const missing = livePrerequisites('failover');

describe.skipIf(missing)('live failover (staging overlay)', () => {
  let live: LiveCluster;

  // How often the guard fenced a master: reported for every scenario, so that fences
  // where none should happen (a blip, Sentinels alone lost) are counted (see README).
  freshClusterPerTest((started) => { live = started; }, (cluster, testName) => {
    const fences = cluster.redisPods().flatMap((p) => cluster.sim.logs(p, 'guard', 100_000).split('\n')
      .filter((l) => / fencing: /.test(l)).map((l) => `${p}: ${l}`));
    console.log(`guard fences in "${testName}": ${fences.length}${fences.length ? `\n  ${fences.join('\n  ')}` : ''}`);
  });

  const runWriter: LiveCluster['runWriter'] = (prefix, body, opts) => live.runWriter(prefix, body, opts);

  /**
   * With the client writing: `fault` takes redis-master-0 out, then waits until the
   * Sentinels name another master and the client has written to it.
   */
  async function faultAndWaitForFailover(prefix: string, fault: () => Promise<void>, timeoutMs = 30_000):
  Promise<{ log: WriteRecord[]; faultAt: number; promoted: string }> {
    let faultAt = 0;
    let promoted = '';
    const log = await runWriter(prefix, async () => {
      await sleep(1000);
      faultAt = Date.now();
      await fault();
      promoted = await live.waitForSentinelMasterOtherThan('redis-master-0', timeoutMs);
      await waitWriterPastFault(Date.now());
    });
    return { log, faultAt, promoted };
  }

  function crashMasterAndWaitForFailover() {
    return faultAndWaitForFailover('crash-redis-master-0', () => live.sim.killContainer('redis-master-0', 'redis', { restart: false }));
  }

  async function expectNoConfirmedWriteLost(prefix: string, log: WriteRecord[]) {
    const confirmed = confirmedWrites(log);
    expect(confirmed.length).toBeGreaterThan(0);
    const lost = await live.agent.call<number[]>('missing', { prefix, ns: confirmed });
    expect(lost, `WAIT 1-confirmed writes lost: ${lost.slice(0, 20).join(', ')}`).toEqual([]);
  }

  /** Crashes redis-master-0 and expects a replica to take over, with no WAIT-confirmed write lost. */
  async function expectMasterCrashFailsOver() {
    const { log, promoted } = await crashMasterAndWaitForFailover();
    expect(promoted).toMatch(/^redis-slave-[01]$/);
    expect(await live.onlyMaster()).toBe(promoted);
    await expectNoConfirmedWriteLost('crash-redis-master-0', log);
  }

  /**
   * After redis-master-0 crashed and `promoted` took over: no WAIT-confirmed write was
   * lost, and once redis-master-0 restarts the cluster is healthy with `promoted` as master.
   */
  async function expectCrashedMasterRejoins(prefix: string, log: WriteRecord[], promoted: string) {
    expect(promoted).toMatch(/^redis-slave-[01]$/);
    await expectNoConfirmedWriteLost(prefix, log);
    await live.sim.restartContainer('redis-master-0', 'redis');
    await live.waitHealthy(60_000);
    expect(await live.onlyMaster()).toBe(promoted);
  }

  /** Waits until the running writer has a write acknowledged after `since` (by the new master). */
  async function waitWriterPastFault(since: number) {
    await waitFor(async () => (await live.agent.call<number>('writerLastAck')) > since,
      30_000, `the client to have a write acknowledged after ${new Date(since).toISOString()}`, 100);
  }

  test('cold start: redis-master-0 is the only master, replicas in sync, Sentinels agree, clients write and read through Sentinel', async () => {
    await live.waitHealthy();
    expect(await live.onlyMaster()).toBe('redis-master-0');
    expect(await live.sentinelMaster()).toBe('redis-master-0');
    const view = await live.view();
    for (const [ip, s] of Object.entries(view.sentinels)) {
      expect(s.ckquorum, `sentinel ${ip}`).toMatch(/^OK 3 usable Sentinels/);
    }
    // The janitor applies Sentinel's INFO period (SENTINEL DEBUG is runtime-only).
    for (const pod of live.sentinelPods()) {
      await waitFor(async () => {
        const r = await live.sim.exec(pod, ['sh', '-c', `${cliAs('operations')} -p 26379 SENTINEL DEBUG | paste -sd" "`], { container: 'sentinel' });
        return /INFO-PERIOD 1000 /.test(r.stdout);
      }, 10_000, `${pod} to run with INFO-PERIOD 1000`);
    }
    expect(await live.agent.call('write', { key: 'cold', value: 'start', wait: 2 })).toBe(2);
    expect(await live.agent.call('replicaRole')).toBe('slave');
    expect(await live.agent.call('readReplica', { key: 'cold' })).toBe('start');
  }, 90_000); // took 7-10 s in two runs of the whole live suite

  test('master crash: a replica is promoted, the other follows it, the client resumes, no WAIT-confirmed write is lost', async () => {
    await live.waitHealthy();
    const { log, faultAt, promoted: named } = await crashMasterAndWaitForFailover();
    expect(named).toMatch(/^redis-slave-[01]$/);
    const promoted = await live.onlyMaster();
    expect(promoted).toBe(named);
    expect(promoted).toMatch(/^redis-slave-[01]$/);
    const other = promoted === 'redis-slave-0' ? 'redis-slave-1' : 'redis-slave-0';
    await waitFor(async () => {
      const n = (await live.view()).nodes[live.fqdn(other)];
      return n.role === 'slave' && n.roleReply?.[1] === live.fqdn(promoted) && /master_link_status:up/.test(n.info ?? '');
    }, 20_000, `${other} to replicate ${promoted}`);
    const outageMs = writeOutage(log, faultAt);
    console.log(`master crash: write outage ${outageMs.toFixed(0)} ms (downAfter ${live.downAfterMs} ms)`);
    await expectNoConfirmedWriteLost('crash-redis-master-0', log);
  }, 90_000); // took 12-17 s in two runs of the whole live suite

  test('the crashed master comes back with a new IP as a replica of the new master and never accepts a write as master', async () => {
    await live.waitHealthy();
    const oldIp = live.sim.podIp('redis-master-0');
    let promoted = '';
    await runWriter('rejoin', async () => {
      await sleep(500);
      await live.sim.deletePod('redis-master-0', { grace: false, recreate: false });
      promoted = await live.waitForSentinelMasterOtherThan('redis-master-0', 30_000);
      await waitWriterPastFault(Date.now());
    });
    // Watch the old master from the moment its pod is recreated until it has rejoined.
    const watching = live.agent.call<{ roles: Record<string, number>; writesAccepted: number; firstReachable: number | null }>(
      'watchNode', { host: live.fqdn('redis-master-0'), durationMs: 20_000 }, 40_000);
    await sleep(300);
    live.sim.recreatePod('redis-master-0');
    await live.sim.waitPodReady('redis-master-0', 30_000);
    expect(live.sim.podIp('redis-master-0')).not.toBe(oldIp);
    const watched = await watching;
    expect(watched.firstReachable, 'the recreated pod was never reachable').not.toBeNull();
    expect(watched.roles.master ?? 0, `roles seen: ${JSON.stringify(watched.roles)}`).toBe(0);
    expect(watched.writesAccepted).toBe(0);
    expect(watched.roles.slave).toBeGreaterThan(0);
    await live.waitHealthy(30_000);
    expect(await live.onlyMaster()).toBe(promoted);
  }, 120_000); // took 32-34 s in two runs of the whole live suite

  test('master pod force-deleted and recreated at once with a new IP: it does not come back as master, no WAIT-confirmed write is lost', async () => {
    await live.waitHealthy();
    const oldIp = live.sim.podIp('redis-master-0');
    // Sentinel keeps the IP it resolved; the pod must not serve as master at the new one.
    const { log, promoted } = await faultAndWaitForFailover('recreated',
      () => live.sim.deletePod('redis-master-0', { grace: false, recreate: true }), 40_000);
    expect(live.sim.podIp('redis-master-0')).not.toBe(oldIp);
    expect(promoted).toMatch(/^redis-slave-[01]$/);
    await live.waitHealthy(40_000);
    expect(await live.onlyMaster()).toBe(promoted);
    expect(live.sim.logs('redis-master-0', 'redis', 400)).toMatch(/IP changed .* waiting for their failover/);
    await expectNoConfirmedWriteLost('recreated', log);
  }, 90_000); // took 14 s in two runs of the whole live suite

  test('graceful deletion of the master hands over first: no failed write and a short pause', async () => {
    await live.waitHealthy();
    let promoted = '';
    const log = await runWriter('planned', async () => {
      await sleep(1000);
      const deleting = live.sim.deletePod('redis-master-0', { grace: true, recreate: true });
      promoted = await live.waitForSentinelMasterOtherThan('redis-master-0', 30_000);
      await deleting;
      await live.sim.waitPodReady('redis-master-0', 60_000);
      await sleep(500);
    }, { retries: 40 });
    const handoverLog = live.sim.logs('redis-master-0', 'redis', 400, { previous: true });
    console.log(`old master's log during the handover:\n${handoverLog}`);
    const failed = log.filter((w) => w.error !== null);
    const pause = longestPause(log);
    console.log(`planned switchover: ${failed.length} failed writes, longest write pause ${pause.toFixed(0)} ms`);
    expect(failed.map((w) => w.error)).toEqual([]);
    expect(pause).toBeLessThan(live.downAfterMs);
    expect(handoverLog).toMatch(/handed over to redis-slave-[01]/);
    // When the handover was timed to a Sentinel's INFO, it forecast which replica that
    // Sentinel would promote; the forecast must match what Sentinel did.
    const forecast = /would promote (\S+):6379/.exec(handoverLog)?.[1];
    if (forecast) expect(forecast).toBe(live.fqdn(promoted));
    else console.log('the handover did not line up with a Sentinel INFO (allowed, slower)');
    await expectNoConfirmedWriteLost('planned', log);
    await live.waitHealthy(30_000);
    expect(await live.onlyMaster()).toMatch(/^redis-slave-[01]$/);
  }, 90_000); // took 13-15 s in two runs of the whole live suite

  test('rolling restart of every Redis pod (both StatefulSets, the master among the replicas): no failed write, no lost write', async () => {
    await live.waitHealthy();
    // Move the master into redis-slave first, so the redis-slave rollout restarts it too.
    await live.sim.deletePod('redis-master-0', { grace: true, recreate: true });
    await live.sim.waitPodReady('redis-master-0', 60_000);
    await live.waitHealthy(60_000);
    expect(await live.onlyMaster()).toMatch(/^redis-slave-[01]$/);
    const log = await runWriter('rolling', async () => {
      await sleep(500);
      await live.sim.rolloutStatefulSet('redis-slave');
      await live.sim.rolloutStatefulSet('redis-master');
      await sleep(500);
    }, { retries: 40 });
    const failed = log.filter((w) => w.error !== null);
    const pause = longestPause(log);
    console.log(`rolling restart: ${log.length} writes, ${failed.length} failed, longest write pause ${pause.toFixed(0)} ms`);
    expect(failed.map((w) => w.error)).toEqual([]);
    expect(pause).toBeLessThan(live.downAfterMs);
    await expectNoConfirmedWriteLost('rolling', log);
    await live.waitHealthy(60_000);
  }, 180_000); // took 37-51 s in two runs of the whole live suite

  test('partitioned master: the majority promotes a replica, the old master is demoted after healing, no WAIT-confirmed write is lost', async () => {
    await live.waitHealthy();
    let isolatedWrites = '';
    const log = await runWriter('partition', async () => {
      await sleep(1000);
      await live.sim.partition('redis-master-0');
      const partitionedAt = Date.now();
      // An application on the master's side of the partition keeps writing to it.
      const sideWriter = live.sim.exec('redis-master-0', ['sh', '-c',
        'n=0; end=$(( $(date +%s) + 12 )); ' +
        `while [ "$(date +%s)" -lt "$end" ]; do r="$(${cliAs('app', 1)} SET "iso:$n" "$n" 2>&1 | head -c 40)"; ` +
        'echo "$(date +%s%N) $n $r"; n=$((n+1)); sleep 0.05; done'], { timeoutMs: 30_000 });
      await live.waitForSentinelMasterOtherThan('redis-master-0', 30_000);
      await waitWriterPastFault(Date.now());
      isolatedWrites = (await sideWriter).stdout;
      expect(Date.now() - partitionedAt).toBeGreaterThan(live.downAfterMs);
      await live.sim.heal('redis-master-0');
    });
    const promoted = await live.sentinelMaster();
    await waitFor(async () => {
      const n = (await live.view()).nodes[live.fqdn('redis-master-0')];
      return n.role === 'slave' && n.roleReply?.[1] === live.fqdn(promoted!) && /master_link_status:up/.test(n.info ?? '');
    }, 30_000, 'the old master to follow the new one');
    await expectNoConfirmedWriteLost('partition', log);
    const lines = isolatedWrites.trim().split('\n').map((l) => l.split(' '));
    const accepted = lines.filter((l) => l[2] === 'OK');
    const refused = lines.filter((l) => /NOREPLICAS/.test(l.slice(2).join(' ')));
    console.log(`partition: the isolated master accepted ${accepted.length} of ${lines.length} writes from its own side ` +
      `(refused ${refused.length} with NOREPLICAS); none was WAIT-confirmed and all are discarded when it rejoins`);
    // min-replicas-to-write stops the isolated master: it refuses writes before the partition ends.
    expect(refused.length).toBeGreaterThan(0);
    const lastAccepted = Math.max(...accepted.map((l) => Number(l[0]) / 1e6));
    const firstRefused = Math.min(...refused.map((l) => Number(l[0]) / 1e6));
    expect(lastAccepted).toBeLessThan(firstRefused);
    await live.waitHealthy(30_000);
  }, 90_000); // took 18-19 s in two runs of the whole live suite

  test('frozen master (every process stopped past downAfter, like a stalled node): after the failover it resumes, accepts no write and follows the new master', async () => {
    await live.waitHealthy();
    let promoted = '';
    let watched: { roles: Record<string, number>; writesAccepted: number; errors: Record<string, number> } | undefined;
    const log = await runWriter('frozen', async () => {
      await sleep(1000);
      await live.sim.freezePod('redis-master-0');
      try {
        promoted = await live.waitForSentinelMasterOtherThan('redis-master-0', 30_000);
        await waitWriterPastFault(Date.now());
      } finally {
        // Watch the old master from the moment it resumes: its clients may still write to it.
        const watching = live.agent.call<typeof watched>('watchNode', { host: live.fqdn('redis-master-0'), durationMs: 10_000 }, 30_000);
        await sleep(200);
        await live.sim.thawPod('redis-master-0');
        watched = await watching;
      }
    });
    console.log(`old master after it resumed: ${JSON.stringify(watched)}`);
    expect(promoted).toMatch(/^redis-slave-[01]$/);
    expect(watched!.writesAccepted).toBe(0);
    expect(watched!.roles.slave).toBeGreaterThan(0);
    await expectNoConfirmedWriteLost('frozen', log);
    await live.waitHealthy(60_000);
    expect(await live.onlyMaster()).toBe(promoted);
  }, 90_000); // took 26-29 s in two runs of the whole live suite

  test('replica crash and restart: it resynchronises and serves reads again', async () => {
    await live.waitHealthy();
    await live.sim.killContainer('redis-slave-1', 'redis', { restart: false });
    for (let i = 0; i < 50; i++) await live.agent.call('write', { key: `during:${i}`, value: String(i) });
    await live.sim.restartContainer('redis-slave-1', 'redis');
    await live.sim.waitPodReady('redis-slave-1', 30_000);
    await live.waitHealthy(30_000);
    for (const i of [0, 25, 49]) {
      expect(await live.agent.call('call', { host: live.fqdn('redis-slave-1'), port: 6379, user: 'app', args: ['GET', `during:${i}`] })).toBe(String(i));
    }
    expect(await live.agent.call('call', { host: live.fqdn('redis-slave-1'), port: 6379, args: ['ROLE'] })).toEqual(
      expect.arrayContaining(['slave', live.fqdn('redis-master-0')]));
  }, 90_000); // took 7-8 s in two runs of the whole live suite

  test('Sentinel pods replaced by several rollouts: phantom Sentinels are cleaned up and a master crash still fails over', async () => {
    await live.waitHealthy();
    for (let round = 1; round <= 3; round++) await live.sim.rolloutDeployment('redis-sentinel', 120_000);
    const rolledAt = Date.now();
    await live.waitHealthy(90_000);
    console.log(`sentinel rollouts: phantom Sentinels gone ${((Date.now() - rolledAt) / 1000).toFixed(1)} s after the third rollout`);
    await expectMasterCrashFailsOver();
  }, 240_000); // took 44-76 s in two runs of the whole live suite

  test('the Sentinel leading a failover restarts right after its election: the failover still completes without waiting out 2 x failover-timeout', async () => {
    await live.waitHealthy();
    let leader: string | undefined;
    // The restarted leader comes back knowing no replica unless its start script lists them;
    // if it wins the next vote without one it aborts, and no Sentinel retries for 20s.
    const { log, faultAt, promoted } = await faultAndWaitForFailover('leader-restart', async () => {
      await live.sim.killContainer('redis-master-0', 'redis', { restart: false });
      leader = await waitFor(() => live.sentinelPods().find((p) => /\+elected-leader/.test(live.sim.logs(p, 'sentinel', 40))),
        30_000, 'a Sentinel to be elected leader', 10);
      await live.sim.killContainer(leader as string, 'sentinel', { restart: 1000 });
    }, 20_000);
    console.log(`leader ${leader} restarted; ${promoted} promoted and written to ${Date.now() - faultAt} ms after the crash`);
    await expectCrashedMasterRejoins('leader-restart', log, promoted);
  }, 90_000); // took 20-21 s in two runs of the whole live suite

  test('every Sentinel pod replaced while the master is down: the new Sentinels take the master the replicas follow and fail over', async () => {
    await live.waitHealthy();
    // No Sentinel survives to tell the new ones the master, and no Redis pod reports role master.
    const { log, promoted } = await faultAndWaitForFailover('sentinels-replaced', async () => {
      await live.sim.killContainer('redis-master-0', 'redis', { restart: false });
      await Promise.all(live.sentinelPods().map((p) => live.sim.deletePod(p, { grace: false, recreate: true })));
    }, 60_000);
    await expectCrashedMasterRejoins('sentinels-replaced', log, promoted);
  }, 150_000); // took 14 s in two runs of the whole live suite

  test('one Sentinel down: failover still works', async () => {
    await live.waitHealthy();
    const [down] = live.sentinelPods();
    await live.sim.killContainer(down, 'sentinel', { restart: false });
    await expectMasterCrashFailsOver();
  }, 90_000); // took 12 s in two runs of the whole live suite

  test('two Sentinels down: no failover happens and no second master appears', async () => {
    await live.waitHealthy();
    const [a, b, survivor] = live.sentinelPods();
    await live.sim.killContainer(a, 'sentinel', { restart: false });
    await live.sim.killContainer(b, 'sentinel', { restart: false });
    await live.sim.killContainer('redis-master-0', 'redis', { restart: false });
    // Well past down-after plus the time a failover takes when it can happen.
    const deadline = Date.now() + live.downAfterMs * 3;
    while (Date.now() < deadline) {
      const view = await live.view();
      const masters = Object.entries(view.nodes).filter(([, n]) => n.role === 'master').map(([h]) => h);
      expect(masters, 'no node may become master without a Sentinel majority').toEqual([]);
      const s = view.sentinels[live.sim.podIp(survivor)];
      expect(s.master?.ip).toBe(live.fqdn('redis-master-0'));
      await sleep(500);
    }
  }, 90_000); // took 19-20 s in two runs of the whole live suite

  test('a Sentinel apart from the others (monitoring a replica at the same config epoch, as after a restart of every pod) is restarted by its janitor and rejoins', async () => {
    await live.waitHealthy();
    const [apart, ...others] = live.sentinelPods();
    const replica = live.fqdn('redis-slave-0');
    // The split as a Sentinel that chose while the real master was still starting leaves
    // it: its own config (users, credentials, epoch 0) monitoring redis-slave-0 instead,
    // run in its pod's network in place of its Sentinel.
    await live.sim.killContainer(apart, 'sentinel', { restart: false });
    const startedAt = Date.now();
    const rogue = live.sim.exec(apart, ['sh', '-c', `sed -e 's/^sentinel monitor ${MASTER_NAME} [^ ]* /sentinel monitor ${MASTER_NAME} ${replica} /' `
      + `-e '/^sentinel known-/d' -e '/^sentinel myid/d' ${MOUNTS.sentinelData}/${FILES.sentinelConf} > /tmp/apart.conf && exec redis-sentinel /tmp/apart.conf`],
    { container: 'janitor', timeoutMs: 120_000 });
    const ended = await rogue;
    expect(ended.stdout, 'the apart Sentinel monitored the replica').toMatch(new RegExp(`\\+monitor master ${MASTER_NAME} ${replica.replace(/\./g, '\\.')}`));
    expect(ended.stdout, 'and was shut down').toMatch(/User requested shutdown/);
    const janitor = live.scriptLines(apart, 'janitor', { max: 100 });
    expect(janitor.filter((l) => /restarting the Sentinel to rejoin the others/.test(l)), janitor.join('\n')).toHaveLength(1);
    expect(janitor.join('\n')).toMatch(new RegExp(`monitors ${replica.replace(/\./g, '\\.')} .* but 2 other Sentinels name ${live.fqdn('redis-master-0').replace(/\./g, '\\.')} at the same config epoch 0`));
    console.log(`apart Sentinel shut down by its janitor ${Date.now() - startedAt} ms after it started`);
    // Its container restarts (held here only to make room for the stand-in): its start
    // takes the others' view, and nobody else was restarted.
    await live.sim.restartContainer(apart, 'sentinel');
    await live.waitHealthy(60_000);
    expect(await live.onlyMaster()).toBe('redis-master-0');
    for (const p of others) expect(live.scriptLines(p, 'janitor', { max: 100 }).filter((l) => /restarting the Sentinel/.test(l)), p).toEqual([]);
  }, 150_000);

  test('every pod restarted at once: data survives, exactly one master comes back, clients reconnect', async () => {
    await live.waitHealthy();
    // Start from a promoted replica, the harder case: the bootstrap master must not win.
    await live.agent.call('call', { host: live.sim.podIp(live.sentinelPods()[0]), port: 26379, args: ['SENTINEL', 'FAILOVER', 'mymaster'] });
    const master = await live.waitForSentinelMasterOtherThan('redis-master-0', 30_000);
    await live.waitHealthy(30_000);
    for (let i = 0; i < 200; i++) await live.agent.call('write', { key: `before:${i}`, value: String(i) });
    await live.agent.call('write', { key: 'before:last', value: 'x', wait: 2 });
    // Let every guard record its node's current role on the volume (what the start
    // scripts read): the promoted one "master", the others "replica <it>". A fixed sleep
    // was not always enough on a busy machine.
    await waitFor(async () => {
      for (const pod of live.redisPods()) {
        const r = await live.sim.exec(pod, ['cat', `${MOUNTS.redisData}/${FILES.role}`], { container: 'redis' });
        const recorded = r.stdout.trim();
        if (pod === master ? recorded !== 'master' : !recorded.startsWith(`replica ${master}.`)) return undefined;
      }
      return true;
    }, 60_000, 'every Redis pod recorded its current role', 250);
    const pods = live.sim.pods().map((p) => p.name);
    await Promise.all(pods.map((p) => live.sim.deletePod(p, { grace: false, recreate: true })));
    try {
      await live.sim.waitReady(120_000);
      await live.waitHealthy(90_000);
    } finally {
      // How each pod decided to start: a wrong choice here is what leaves the Sentinels split.
      const starts = [...live.redisPods().map((p) => [p, 'redis'] as const), ...live.sentinelPods().map((p) => [p, 'sentinel'] as const)]
        .flatMap(([p, c]) => live.scriptLines(p, c, { max: 4 }).filter((l) => / (redis|sentinel)-start: /.test(l)).map((l) => `${p}: ${l}`));
      console.log(`start decisions after the restart (master before it: ${master}):\n  ${starts.join('\n  ')}`);
    }
    // The Sentinels start again at epoch 0 monitoring the node the pods recorded as master.
    // Only a failover after the restart (the Sentinels' epoch moved: that node was not back
    // within downAfter on a busy machine) may name another one, and the data must survive
    // either way.
    const now = await live.onlyMaster();
    if (now !== master) {
      const view = await live.agent.call<string[]>('call', { host: live.sim.podIp(live.sentinelPods()[0]), port: 26379, args: ['SENTINEL', 'MASTER', 'mymaster'] });
      const epoch = Number(view[view.indexOf('config-epoch') + 1]);
      expect(epoch, `${now} is master instead of ${master} without a failover after the restart`).toBeGreaterThan(0);
    }
    for (const i of [0, 100, 199]) expect(await live.agent.call('readMaster', { key: `before:${i}` })).toBe(String(i));
    expect(await live.agent.call('readMaster', { key: 'before:last' })).toBe('x');
    expect(await live.agent.call('write', { key: 'after', value: 'restart', wait: 2 })).toBe(2);
  }, 180_000); // took 20-30 s in runs of the whole live suite; room for a failover after the restart

  // --- Data decides, not names: empty volumes, fencing, crashes of big datasets ---

  /** Writes `count` keys `<prefix>:<i>` and confirms the last one on every replica. */
  async function writeKeys(prefix: string, count: number) {
    for (let i = 0; i < count; i++) await live.agent.call('write', { key: `${prefix}:${i}`, value: String(i) });
    expect(await live.agent.call('write', { key: `${prefix}:last`, value: 'x', wait: 2 })).toBe(2);
  }

  async function expectKeysKept(prefix: string, count: number) {
    for (const i of [0, Math.floor(count / 2), count - 1]) expect(await live.agent.call('readMaster', { key: `${prefix}:${i}` })).toBe(String(i));
    expect(await live.agent.call('readMaster', { key: `${prefix}:last` })).toBe('x');
  }

  test('master pod force-deleted and recreated at once with an empty volume: it waits, a replica with the data is promoted, nothing is erased', async () => {
    await live.waitHealthy();
    await writeKeys('kept', 300);
    const { log, promoted } = await faultAndWaitForFailover('empty-master',
      () => live.sim.deletePod('redis-master-0', { grace: false, recreate: true, wipeVolumes: true }));
    expect(promoted).toMatch(/^redis-slave-[01]$/);
    await expectNoConfirmedWriteLost('empty-master', log);
    await live.waitHealthy(60_000);
    expect(await live.onlyMaster()).toBe(promoted);
    await expectKeysKept('kept', 300);
    expect(live.sim.logs('redis-master-0', 'redis', 200)).toMatch(/not starting yet: the Sentinels still name this pod master .* volume is empty and .* holds data/);
  }, 90_000); // took 13 s in two runs of the whole live suite

  test('every pod stops, redis-master-0 loses its volume, everything starts again: a replica with the data becomes master', async () => {
    await live.waitHealthy();
    await writeKeys('cold', 300);
    // Let the guards record every node's data and role on its volume.
    await sleep(2000);
    await live.sim.stopAllPods({ grace: false });
    live.sim.wipeVolumes('redis-master-0');
    live.sim.startAllPods();
    await live.sim.waitReady(180_000);
    await live.waitHealthy(120_000);
    expect(await live.onlyMaster()).toMatch(/^redis-slave-[01]$/);
    await expectKeysKept('cold', 300);
    expect(live.sim.logs('redis-master-0', 'redis', 200)).toMatch(/not starting yet: .*volume is empty and .* holds data/);
  }, 90_000); // took 18-20 s in two runs of the whole live suite

  test('a replica pod recreated with an empty volume resynchronises from the master; nothing confirmed is lost', async () => {
    await live.waitHealthy();
    await writeKeys('replica-empty', 200);
    const log = await runWriter('replica-empty', async () => {
      await sleep(1000);
      await live.sim.deletePod('redis-slave-1', { grace: false, recreate: true, wipeVolumes: true });
      await live.sim.waitPodReady('redis-slave-1', 60_000);
      await sleep(1000);
    });
    await expectNoConfirmedWriteLost('replica-empty', log);
    await live.waitHealthy(60_000);
    expect(await live.onlyMaster()).toBe('redis-master-0');
    await expectKeysKept('replica-empty', 200);
  }, 90_000); // took 9-10 s in two runs of the whole live suite

  test('asymmetric partition {master, one replica, one Sentinel, client} / {other replica, two Sentinels}: the old master fences itself within 2 s; only writes of that window can be lost', async () => {
    await live.waitHealthy();
    const [nearSentinel, ...farSentinels] = live.sentinelPods();
    let splitAt = 0;
    let promoted = '';
    let duringSplit: number | string = 0;
    const log = await runWriter('asym', async () => {
      await sleep(1000);
      // Confirmed by every replica (WAIT 2) just before the split: must survive it.
      expect(await live.agent.call('write', { key: 'asym-all:before', value: 'x', wait: 2 })).toBe(2);
      splitAt = Date.now();
      await live.sim.partitionGroups([['redis-master-0', 'redis-slave-0', nearSentinel, 'app'], ['redis-slave-1', ...farSentinels]]);
      // Past the fencing window (WAIT blocks the client's connection, so not earlier: the
      // writer's window must stay open): no write can be confirmed by every replica.
      await sleep(2500);
      duringSplit = await live.agent.call('write', { key: 'asym-all:during', value: 'y', wait: 2 }).catch((err) => String(err.message));
      await sleep(live.downAfterMs * 3 - 2500);
      await live.sim.healPartitions();
      promoted = await live.waitForSentinelMasterOtherThan('redis-master-0', 30_000);
      await waitWriterPastFault(Date.now());
    });
    expect(promoted).toBe('redis-slave-1');
    await live.waitHealthy(60_000);
    const fenceLine = live.sim.logs('redis-master-0', 'guard', 500).split('\n').find((l) => / fencing: /.test(l)) ?? '';
    // The old master fenced itself, for the reason the rule gives: it kept one Sentinel and one replica.
    expect(fenceLine).toMatch(/ fencing: 1 of 3 Sentinels back this master \(need 2\), 1 of 2 replicas healthy/);
    // The first failed check of that run was logged before it, with what it saw.
    const guardLines = live.sim.logs('redis-master-0', 'guard', 500).split('\n');
    const before = guardLines.slice(0, guardLines.indexOf(fenceLine)).reverse();
    expect(before.find((l) => / check failed: | fencing: | unfencing: /.test(l)), guardLines.join('\n'))
      .toMatch(/ check failed: \d of 3 Sentinels back this master \(need 2\), \d of 2 replicas healthy, for 1 of 2 checks in a row$/);
    const confirmed = confirmedWrites(log);
    const lost = new Set(await live.agent.call<number[]>('missing', { prefix: 'asym', ns: confirmed }));
    const lostWrites = log.filter((w) => lost.has(w.n));
    const lastLostAfterSplit = lostWrites.length ? Math.max(...lostWrites.map((w) => w.start - splitAt)) : 0;
    console.log(`asymmetric partition: ${lost.size} of ${confirmed.length} WAIT 1-confirmed writes lost, the last one made ` +
      `${lastLostAfterSplit} ms into the partition; ${fenceLine}`);
    // The bound the README states: only writes of the fencing window (under 2 s) can be lost.
    expect(lastLostAfterSplit).toBeLessThan(2000);
    expect(await live.agent.call('readMaster', { key: 'asym-all:before' })).toBe('x');
    expect(duringSplit, 'a write during the split confirmed by every replica').not.toBe(2);
  }, 120_000); // took 37 s in two runs of the whole live suite

  test('two Sentinels down while every replica is connected: the master keeps taking writes (not fenced)', async () => {
    await live.waitHealthy();
    const [a, b] = live.sentinelPods();
    const log = await runWriter('two-sentinels-down', async () => {
      await sleep(500);
      await live.sim.killContainer(a, 'sentinel', { restart: false });
      await live.sim.killContainer(b, 'sentinel', { restart: false });
      await sleep(live.downAfterMs * 2);
    });
    expect(log.filter((w) => w.error).map((w) => w.error)).toEqual([]);
    const last = log.filter((w) => w.ack !== null).at(-1)!;
    expect(last.start).toBeGreaterThan(Date.now() - 2000);
    expect(live.sim.logs('redis-master-0', 'guard', 500)).not.toMatch(/ fencing: /);
  }, 90_000); // took 15-16 s in two runs of the whole live suite

  test('master crash with half a gigabyte of data: a replica takes over at failover speed, the other resumes with a partial resync', async () => {
    await live.waitHealthy();
    // ~600 MB: 600k values of 1 KB, loaded inside the master pod.
    const load = await live.sim.exec('redis-master-0', ['sh', '-c',
      'timeout 300 redis-benchmark --user app -a "$(cat /etc/redis-auth/app-password)" -t set -n 600000 -r 100000000 -d 1000 -P 64 -c 4 -q >/dev/null 2>&1; ' +
      `${cliAs('operations', 5)} INFO memory | grep "^used_memory:"`],
    { container: 'redis', timeoutMs: 320_000 });
    const used = Number(/used_memory:(\d+)/.exec(load.stdout)?.[1]);
    expect(used, load.stdout + load.stderr).toBeGreaterThan(500 * 1024 * 1024);
    await live.waitHealthy(240_000);
    const before = await live.syncCounters();
    const { log, faultAt, promoted } = await faultAndWaitForFailover('big-crash',
      () => live.sim.killContainer('redis-master-0', 'redis', { restart: true }), 60_000);
    expect(promoted).toMatch(/^redis-slave-[01]$/);
    await expectNoConfirmedWriteLost('big-crash', log);
    const outage = writeOutage(log, faultAt);
    const other = promoted === 'redis-slave-0' ? 'redis-slave-1' : 'redis-slave-0';
    await waitFor(async () => {
      const n = (await live.view()).nodes[live.fqdn(other)];
      return n.roleReply?.[1] === live.fqdn(promoted) && /master_link_status:up/.test(n.info ?? '');
    }, 60_000, `${other} to follow ${promoted}`);
    const resyncs = resyncsBetween(before, await live.syncCounters());
    console.log(`crash with ${Math.round(used / 1048576)} MB: write outage ${outage} ms (downAfter ${live.downAfterMs} ms); resyncs served: ` +
      `${resyncs.partialOk} partial, ${resyncs.full} full`);
    expect(resyncs.partialOk, 'the surviving replica resumes with a partial resync').toBeGreaterThanOrEqual(1);
    expect(live.sim.logs('redis-master-0', 'redis', 300)).toMatch(/not starting yet: the Sentinels name this pod master and it restarted/);
    await live.waitHealthy(240_000);
    expect(await live.onlyMaster()).toBe(promoted);
  }, 600_000); // took 58-80 s in two runs of the whole live suite

  test("the seed's Python example writes and reads through Sentinel from a client pod", async () => {
    await live.waitHealthy();
    const script = [
      'import time',
      'from redis.sentinel import Sentinel',
      `password = ${JSON.stringify(live.appPassword)}`,
      "sentinel = Sentinel([('redis-sentinel', 26379)], sentinel_kwargs={'username': 'app', 'password': password})",
      "master = sentinel.master_for('mymaster', socket_timeout=0.5, username='app', password=password)",
      "slave = sentinel.slave_for('mymaster', socket_timeout=0.5, username='app', password=password)",
      "master.set('key', 'value')",
      'value = None',
      'for _ in range(50):',
      "    value = slave.get('key')",
      '    if value is not None: break',
      '    time.sleep(0.1)',
      "print('master', sentinel.discover_master('mymaster'))",
      "print('read', value.decode())",
    ].join('\n');
    const py = await live.sim.startClientPod('python-app', ['/usr/bin/python3', '-c', script]);
    let out = '';
    py.proc.stdout?.on('data', (d) => { out += d; });
    py.proc.stderr?.on('data', (d) => { out += d; });
    const code = await new Promise<number | null>((resolve) => py.proc.on('exit', resolve));
    expect(out).toMatch(/read value/);
    expect(out).toContain(`master ('${live.fqdn('redis-master-0')}', 6379)`);
    expect(code).toBe(0);
  }, 90_000); // took 5 s in two runs of the whole live suite
});
