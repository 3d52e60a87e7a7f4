import { describe, expect, test } from 'vitest';
import { AUTH_SECRET, LiveCluster, longestGap, User, USERS } from '../../harness/live-cluster';
import { simRotationAccess } from '../../harness/sim-rotation';
import { waitFor } from '../../harness/sim/util';
import { AUTH_STATUS_FILE, AUTH_USERS, hashPrefix, parseStatus, RotationOptions, rotatePasswords, SERVER_USERS } from '../../lib/ops/rotation';
import { freshClusterPerTest, livePrerequisites } from './live-suite';

/**
 * Password rotation without an outage, live: the staging overlay in the simulator, the
 * client writing continuously, and `redis-ha rotate-passwords`' steps (lib/ops/rotation.ts)
 * driving the Secret through the simulator, whose kubelets apply each Secret update to
 * each pod at its own moment within KUBELET_SKEW_MS (the ..data swap of a real kubelet).
 * The proxy tier is on in staging: its pods' deciders log in to every server as `proxy`,
 * which is rotated too, and the proxy must still take writes afterwards.
 */
const missing = livePrerequisites('rotation');

/** Kubelets on different nodes apply a Secret update up to this far apart. */
const KUBELET_SKEW_MS = 8000;

/** The proxy's write Service (in the simulator a DNS name for the proxy pods' write port). */
const PROXY_WRITE = { host: 'redis-write', port: 6379 };

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

  /** SET through the proxy's write Service as the application, on a fresh connection: the reply, or the error. */
  async function writeViaProxy(key: string): Promise<string> {
    const r = await live.agent.call<{ reply?: string; error?: string }>('attempt', { ...PROXY_WRITE, args: ['SET', key, '1'], user: 'app' });
    return r.reply ?? `error: ${r.error}`;
  }

  /** Until a write through the proxy succeeds; on a timeout the message has the last answer. */
  async function waitWriteViaProxy(key: string, timeoutMs: number, what: string): Promise<void> {
    await waitFor(async () => {
      const reply = await writeViaProxy(key);
      if (reply !== 'OK') throw new Error(reply);
      return true;
    }, timeoutMs, what, 500);
  }

  /** What each proxy pod's decider reports for the proxy user (its status file). */
  async function proxyStatus(): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const p of live.sim.podsOf('redis-proxy').filter((x) => x.phase === 'Running')) {
      const r = await live.sim.exec(p.name, ['cat', AUTH_STATUS_FILE], { container: 'haproxy', timeoutMs: 5000 });
      out[p.name] = r.code === 0 ? parseStatus(r.stdout).proxy : `no status: ${r.stderr.trim()}`;
    }
    return out;
  }

  test('every password rotated under a continuous writer: no restart, no failed write, old refused and new working everywhere, the proxy on the new one, a failover afterwards', async () => {
    await live.waitHealthy();
    // The proxy takes writes before the rotation (it starts deciding once the servers are up).
    await waitWriteViaProxy('rotation:via-proxy:before', 60_000, 'a write through redis-write');
    expect(Object.keys(await proxyStatus()).length).toBeGreaterThanOrEqual(2);
    const old = secretPasswords();
    const podsBefore = live.sim.pods().map((p) => `${p.name} restarts=${p.restarts}`).sort();
    // Probe failures from now on (those of the cluster's start are not the rotation's).
    const eventsFrom = live.sim.events.length;
    const access = simRotationAccess(live.sim, live.namespace, AUTH_SECRET, { maxSkewMs: KUBELET_SKEW_MS });
    const progress: string[] = [];
    const opts: RotationOptions = { timeoutMs: 120_000, pollMs: 500, log: (l) => { progress.push(l); console.log(`[rotation] ${l}`); } };

    const log = await live.runWriter('rotation', async () => {
      // replication, sentinel, operations and proxy all the way; app up to both being accepted.
      expect(await rotatePasswords(access.secret, access.pods, opts)).toEqual({ rotated: ['replication', 'sentinel', 'operations', 'proxy'], pending: ['app'] });
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

    // The proxy pods moved to the new proxy password on every connection without a restart
    // (their deciders re-authenticated), and the proxy still takes writes.
    const onlyNew = { accepted: [], using: [hashPrefix(now.proxy)] };
    const proxies = await proxyStatus();
    expect(Object.keys(proxies).length).toBeGreaterThanOrEqual(2);
    expect(proxies).toEqual(Object.fromEntries(Object.keys(proxies).map((name) => [name, onlyNew])));
    expect(await writeViaProxy('rotation:via-proxy:after')).toBe('OK');

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
    // The proxy follows the failover on the new proxy password: writes through it again.
    await waitWriteViaProxy('rotation:via-proxy:after-failover', 30_000, 'a write through redis-write after the failover');
    await live.sim.restartContainer(master, 'redis');
    await live.waitHealthy(60_000);
    expect(await live.onlyMaster()).not.toBe(master);
    expect(progress.some((l) => /verified on \d+ pods/.test(l))).toBe(true);
  }, 420_000);
});
