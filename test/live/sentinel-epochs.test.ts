import { describe, expect, test } from 'vitest';
import { LiveCluster, MASTER_NAME } from '../../harness/live-cluster';
import { freshClusterPerTest, livePrerequisites } from './live-suite';

/**
 * Live: a Sentinel whose container restarts (same pod, same emptyDir) keeps its ID,
 * current epoch and leader epoch, so it never votes twice in one epoch.
 *
 * Time budgets: each test's timeout is at least 3x what it took in a run of the whole live
 * suite on 2 busy cores, and at least 90 s (the comment beside it says what it took), so a
 * slow machine does not fail a test by time; a failed test prints the cluster's state first.
 */

const missing = livePrerequisites('Sentinel epoch');

interface SentinelState { myid: string; current: number; leader: number; config: number }

describe.skipIf(missing)('live Sentinel epochs (staging overlay)', () => {
  let live: LiveCluster;

  freshClusterPerTest((started) => { live = started; });

  /**
   * What the Sentinel holds, from the config it rewrites whenever its epochs change (a
   * vote, a new epoch, a failover: before it answers). (SENTINEL FLUSHCONFIG is not among
   * the commands the operations user may run.)
   */
  async function sentinelState(pod: string): Promise<SentinelState> {
    const r = await live.sim.exec(pod, ['sh', '-c', 'cat "$SENTINEL_CONFIG"'],
      { container: 'sentinel', timeoutMs: 10_000 });
    if (r.code !== 0) throw new Error(`reading ${pod}'s config failed (${r.code}): ${r.stderr}`);
    const value = (re: RegExp) => re.exec(r.stdout)?.[1] ?? '';
    return {
      myid: value(/^sentinel myid (\S+)$/m),
      current: Number(value(/^sentinel current-epoch (\d+)$/m) || 0),
      leader: Number(value(new RegExp(`^sentinel leader-epoch ${MASTER_NAME} (\\d+)$`, 'm')) || 0),
      config: Number(value(new RegExp(`^sentinel config-epoch ${MASTER_NAME} (\\d+)$`, 'm')) || 0),
    };
  }

  test('a restarted Sentinel container keeps its ID, current and leader epochs, and does not vote again in an epoch it voted in', async () => {
    await live.waitHealthy();
    // A real election first: the master crashes and the Sentinels vote a leader.
    await live.sim.killContainer('redis-master-0', 'redis', { restart: false });
    await live.waitForSentinelMasterOtherThan('redis-master-0', 30_000);
    await live.sim.restartContainer('redis-master-0', 'redis');
    await live.waitHealthy(60_000);

    const pods = live.sentinelPods();
    const states = Object.fromEntries(await Promise.all(pods.map(async (p) => [p, await sentinelState(p)] as const)));
    const failoverEpoch = Math.max(...Object.values(states).map((s) => s.config));
    expect(failoverEpoch).toBeGreaterThan(0);
    // A Sentinel that voted in the failover's election (the quorum did).
    const voter = pods.find((p) => states[p].leader === failoverEpoch);
    expect(voter, JSON.stringify(states)).toBeDefined();
    const before = states[voter!];

    // Then a vote request for a later epoch, as a candidate Sentinel sends it; the voter
    // grants it and records the vote (leader-epoch) and the epoch.
    const ip = live.sim.podIp(voter!);
    const masterHost = (await live.view()).sentinels[ip].master!.ip;
    const epoch = before.current + 2;
    const requestVote = (runid: string) => live.agent.call<[number, string, number]>('call', {
      host: ip, port: 26379, user: 'sentinel', args: ['SENTINEL', 'IS-MASTER-DOWN-BY-ADDR', masterHost, '6379', String(epoch), runid],
    });
    const first = 'a'.repeat(40);
    const second = 'b'.repeat(40);
    expect(await requestVote(first)).toEqual([0, first, epoch]);
    const voted = await sentinelState(voter!);
    expect(voted).toMatchObject({ myid: before.myid, current: epoch, leader: epoch });

    await live.sim.restartContainer(voter!, 'sentinel');
    await live.sim.waitPodReady(voter!, 60_000);
    const after = await sentinelState(voter!);
    console.log(`${voter}: before the restart ${JSON.stringify(voted)}, after ${JSON.stringify(after)}`);
    expect(after.myid).toBe(before.myid);
    expect(after.current).toBeGreaterThanOrEqual(voted.current);
    expect(after.leader).toBeGreaterThanOrEqual(voted.leader);
    expect(live.sim.logs(voter!, 'sentinel', 400)).toMatch(new RegExp(`starting with current-epoch ${after.current} and leader-epoch ${after.leader} because`));

    // Another candidate asking in the same epoch gets no vote.
    const again = await requestVote(second);
    expect(again[1]).not.toBe(second);
    expect(again[2]).toBe(epoch);
    await live.waitHealthy(30_000);
  }, 90_000); // took 15 s in two runs of the whole live suite
});
