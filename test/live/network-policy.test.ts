import { describe, expect, test } from 'vitest';
import { sleep, waitFor } from '../../harness/sim/util';
import { confirmedWrites, LiveCluster } from '../../harness/live-cluster';
import { freshClusterPerTest, livePrerequisites } from './live-suite';

/**
 * The NetworkPolicies of the staging overlay, enforced by the simulator as a CNI would
 * (nftables in each pod's network namespace, harness/sim/network-policy.ts): a pod
 * without the client label reaches neither Redis nor Sentinel, a labelled one reaches
 * both, the instance's pods reach nothing else, and a failover works with them in force.
 */

const missing = livePrerequisites('network policy');

/** Bash in a client pod: tries a TCP connection to each host:port, prints "host:port open|refused|dropped". */
const PROBE = `for t in "$@"; do
  timeout 3 bash -c "exec 3<>/dev/tcp/\${t%:*}/\${t#*:}" 2>/dev/null; rc=$?
  if [ $rc = 0 ]; then echo "$t open"; elif [ $rc = 124 ]; then echo "$t dropped"; else echo "$t refused"; fi
done
echo done
sleep 600`;

/** Same check inside a pod's container (exec). */
async function connect(live: LiveCluster, pod: string, container: string, ip: string, port: number): Promise<string> {
  const r = await live.sim.exec(pod, ['bash', '-c', `timeout 3 bash -c 'exec 3<>/dev/tcp/${ip}/${port}' 2>/dev/null; echo $?`], { container, timeoutMs: 10_000 });
  const rc = r.stdout.trim();
  return rc === '0' ? 'open' : rc === '124' ? 'dropped' : `refused (${rc})`;
}

describe.skipIf(missing)('live network policies (staging overlay)', () => {
  let live: LiveCluster;
  freshClusterPerTest((started) => { live = started; });

  /** Starts a client pod running PROBE against `targets`; its lines once done. */
  async function probeFrom(name: string, labels: Record<string, string> | undefined, targets: string[]): Promise<Record<string, string>> {
    const pod = await live.sim.startClientPod(name, ['bash', '-c', PROBE, 'probe', ...targets], labels === undefined ? {} : { labels });
    let out = '';
    pod.proc.stdout?.on('data', (d) => { out += d; });
    await waitFor(() => /^done$/m.test(out), 30_000, `${name} to finish probing (output so far: ${out})`);
    await live.sim.stopClientPod(name);
    return Object.fromEntries(out.trim().split('\n').filter((l) => l !== 'done').map((l) => l.split(' ') as [string, string]));
  }

  test('an unlabelled pod reaches neither 6379 nor 26379; a pod with the client label reaches both; the pods reach only their peers', async () => {
    await live.waitHealthy();
    const ip = (pod: string) => live.sim.podIp(pod);
    const sentinel = live.sentinelPods()[0];
    const targets = [`${ip('redis-master-0')}:6379`, `${ip('redis-slave-0')}:6379`, `${ip('redis-slave-1')}:6379`, `${ip(sentinel)}:26379`];

    const stranger = await probeFrom('stranger', {}, targets);
    expect(stranger).toEqual(Object.fromEntries(targets.map((t) => [t, 'dropped'])));
    // Carrying some other label, or the label with another value, is not enough.
    const impostor = await probeFrom('impostor', { 'redis-client': 'false', app: 'redis' }, targets);
    expect(impostor).toEqual(Object.fromEntries(targets.map((t) => [t, 'dropped'])));
    // The harness's default for client pods is the client label (the agent carries it too).
    const client = await probeFrom('labelled', undefined, targets);
    expect(client).toEqual(Object.fromEntries(targets.map((t) => [t, 'open'])));
    const explicit = await probeFrom('labelled2', { 'redis-client': 'true' }, targets);
    expect(explicit).toEqual(Object.fromEntries(targets.map((t) => [t, 'open'])));

    // Egress: a Redis pod reaches a Sentinel and another Redis pod, but not a client pod,
    // and not a port the policies do not name (a refusal would mean the packet got through).
    const bystander = await live.sim.startClientPod('bystander', ['sleep', '600'], { labels: {} });
    const labelledBystander = await live.sim.startClientPod('labelled-bystander', ['sleep', '600']);
    expect(await connect(live, 'redis-master-0', 'redis', ip(sentinel), 26379)).toBe('open');
    expect(await connect(live, 'redis-slave-0', 'redis', ip('redis-master-0'), 6379)).toBe('open');
    expect(await connect(live, 'redis-master-0', 'redis', bystander.ip, 6379)).toBe('dropped');
    expect(await connect(live, 'redis-master-0', 'redis', labelledBystander.ip, 6379)).toBe('dropped');
    expect(await connect(live, sentinel, 'sentinel', ip('redis-master-0'), 6379)).toBe('open');
    expect(await connect(live, sentinel, 'sentinel', ip('redis-master-0'), 26379)).toBe('dropped');
    expect(await connect(live, sentinel, 'sentinel', bystander.ip, 26379)).toBe('dropped');

    // And the labelled application works through Sentinel.
    expect(await live.agent.call('write', { key: 'np', value: 'ok', wait: 2 })).toBe(2);
    expect(await live.agent.call('readReplica', { key: 'np' })).toBe('ok');
  }, 120_000);

  test('with the policies in force: a master crash fails over, and pods recreated with new IPs rejoin', async () => {
    await live.waitHealthy();
    let promoted = '';
    const log = await live.runWriter('np-crash', async () => {
      await sleep(1000);
      await live.sim.killContainer('redis-master-0', 'redis', { restart: false });
      promoted = await live.waitForSentinelMasterOtherThan('redis-master-0', 30_000);
      const since = Date.now();
      await waitFor(async () => (await live.agent.call<number>('writerLastAck')) > since, 30_000, 'a write acknowledged by the new master', 100);
    });
    expect(promoted).toMatch(/^redis-slave-[01]$/);
    expect(await live.onlyMaster()).toBe(promoted);
    const confirmed = confirmedWrites(log);
    expect(confirmed.length).toBeGreaterThan(0);
    expect(await live.agent.call<number[]>('missing', { prefix: 'np-crash', ns: confirmed })).toEqual([]);

    // The old master is force-deleted and comes back with a new IP, as is a Sentinel: the
    // policies follow the new addresses (the peers' rules are rewritten before it starts).
    const oldIp = live.sim.podIp('redis-master-0');
    await live.sim.deletePod('redis-master-0', { grace: false });
    await live.sim.deletePod(live.sentinelPods()[0], { grace: false });
    await live.sim.waitPodReady('redis-master-0', 90_000);
    expect(live.sim.podIp('redis-master-0')).not.toBe(oldIp);
    await live.waitHealthy(90_000);
    expect(await live.onlyMaster()).toBe(promoted);
  }, 240_000);
});
