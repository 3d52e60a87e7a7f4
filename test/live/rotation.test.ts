import { describe, expect, test } from 'vitest';
import { AUTH_SECRET, LiveCluster, longestGap, User, USERS } from '../../harness/live-cluster';
import { simRotationAccess } from '../../harness/sim-rotation';
import { waitFor } from '../../harness/sim/util';
import { AUTH_USERS, RotationOptions, rotatePasswords, SERVER_USERS } from '../../lib/ops/rotation';
import { freshClusterPerTest, livePrerequisites } from './live-suite';

/**
 * Password rotation without an outage, live: the staging overlay in the simulator, the
 * client writing continuously, and `redis-ha rotate-passwords`' steps (lib/ops/rotation.ts)
 * driving the Secret through the simulator, whose kubelets apply each Secret update to
 * each pod at its own moment within KUBELET_SKEW_MS (the ..data swap of a real kubelet).
 */
const missing = livePrerequisites('rotation');

/** Kubelets on different nodes apply a Secret update up to this far apart. */
const KUBELET_SKEW_MS = 8000;

describe.skipIf(missing)('live password rotation (staging overlay)', () => {
  let live: LiveCluster;
  freshClusterPerTest((started) => { live = started; });

  /** Each user's password as the Secret holds it now. */
  const secretPasswords = (): Record<User, string> => {
    const data = live.sim.secret(live.namespace, AUTH_SECRET)!;
    return Object.fromEntries(USERS.map((u) => [u, data[`${u}-password`]])) as Record<User, string>;
  };

  /** What each Redis server and Sentinel answers to AUTH USER PASSWORD, asked from the client pod. */
  async function answers(user: User, password: string): Promise<Record<string, string>> {
    const servers = [
      ...live.redisPods().filter(() => SERVER_USERS.redis.includes(user)).map((p) => ({ name: p, host: live.fqdn(p), port: 6379 })),
      ...live.sentinelPods().filter(() => SERVER_USERS.sentinel.includes(user)).map((p) => ({ name: p, host: live.sim.podIp(p), port: 26379 })),
    ];
    const out: Record<string, string> = {};
    for (const s of servers) {
      const r = await live.agent.call<{ reply?: string; error?: string }>('attempt', { host: s.host, port: s.port, args: ['AUTH', user, password], user: null });
      out[s.name] = r.reply ?? (r.error ?? '').split(' ')[0];
    }
    return out;
  }

  test('every password rotated under a continuous writer: no restart, no failed write, old refused and new working everywhere, a failover afterwards', async () => {
    await live.waitHealthy();
    const old = secretPasswords();
    const podsBefore = live.sim.pods().map((p) => `${p.name} restarts=${p.restarts}`).sort();
    // Probe failures from now on (those of the cluster's start are not the rotation's).
    const eventsFrom = live.sim.events.length;
    const access = simRotationAccess(live.sim, live.namespace, AUTH_SECRET, { maxSkewMs: KUBELET_SKEW_MS });
    const progress: string[] = [];
    const opts: RotationOptions = { timeoutMs: 120_000, pollMs: 500, log: (l) => { progress.push(l); console.log(`[rotation] ${l}`); } };

    const log = await live.runWriter('rotation', async () => {
      // replication, sentinel and operations all the way; app up to both being accepted.
      expect(await rotatePasswords(access.secret, access.pods, opts)).toEqual({ rotated: ['replication', 'sentinel', 'operations'], pending: ['app'] });
      await live.agent.call('setPassword', { user: 'operations', password: secretPasswords().operations });
      // While the servers take both app passwords, the application moves to the new one.
      for (const password of [old.app, secretPasswords().app]) {
        expect(Object.values(await answers('app', password)).filter((a) => a !== 'OK')).toEqual([]);
      }
      await live.agent.call('setPassword', { user: 'app', password: secretPasswords().app });
      expect(await rotatePasswords(access.secret, access.pods, { ...opts, finish: true })).toEqual({ rotated: ['app'], pending: [] });
    });

    // The writer never saw an error: no write failed, none was even retried.
    const failed = log.filter((w) => w.error !== null || w.attempts > 1);
    const gap = longestGap(log);
    console.log(`rotation: ${log.length} writes, ${failed.length} failed or retried, longest pause between acknowledged writes ${(gap.to - gap.from).toFixed(0)} ms`);
    expect(log.length).toBeGreaterThan(100);
    expect(failed.map((w) => `${w.n}: ${w.error ?? w.firstError}`)).toEqual([]);
    // Nothing restarted and no pod was replaced; no probe failed (liveness asks without a password; readiness logs in).
    expect(live.sim.pods().map((p) => `${p.name} restarts=${p.restarts}`).sort()).toEqual(podsBefore);
    expect(live.sim.events.slice(eventsFrom).filter((e) => /(liveness|readiness|startup) probe failed/.test(e))).toEqual([]);

    const now = secretPasswords();
    expect(live.sim.secret(live.namespace, AUTH_SECRET)).toEqual(Object.fromEntries(USERS.map((u) => [`${u}-password`, now[u]])));
    // Every user the tool rotates (not metrics: the exporter takes a new password only when it restarts).
    for (const user of AUTH_USERS) {
      expect(now[user], user).not.toBe(old[user]);
      // From outside the pods, over the network: every server and Sentinel refuses the old password and takes the new one.
      const withOld = await answers(user, old[user]);
      const withNew = await answers(user, now[user]);
      expect(Object.values(withOld).length, user).toBeGreaterThan(0);
      expect(withOld, `${user} with the old password`).toEqual(Object.fromEntries(Object.keys(withOld).map((n) => [n, 'WRONGPASS'])));
      expect(withNew, `${user} with the new password`).toEqual(Object.fromEntries(Object.keys(withNew).map((n) => [n, 'OK'])));
    }
    await live.waitHealthy(30_000);

    // A failover afterwards, on the new passwords only: Sentinels (auth-pass, sentinel-pass)
    // agree and promote, the other replica follows (masterauth), the application (new app
    // password, through the Sentinels) writes to the new master.
    const master = await live.onlyMaster();
    let faultAt = 0;
    const after = await live.runWriter('after-rotation', async () => {
      await waitFor(async () => (await live.agent.call<number>('writerLastAck')) > 0, 10_000, 'the writer to start');
      faultAt = Date.now();
      await live.sim.killContainer(master, 'redis', { restart: false });
      const promoted = await live.waitForSentinelMasterOtherThan(master, 30_000);
      expect(promoted).not.toBe(master);
      await waitFor(async () => (await live.agent.call<number>('writerLastAck')) > faultAt, 30_000, `writes acknowledged by ${promoted}`, 100);
    }, { retries: 50 });
    expect(after.filter((w) => w.ack !== null && w.ack > faultAt).length).toBeGreaterThan(0);
    await live.sim.restartContainer(master, 'redis');
    await live.waitHealthy(60_000);
    expect(await live.onlyMaster()).not.toBe(master);
    expect(progress.some((l) => /verified on \d+ pods/.test(l))).toBe(true);
  }, 420_000);
});
