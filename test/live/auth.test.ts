import { describe, expect, test } from 'vitest';
import { sleep } from '../../harness/sim/util';
import { confirmedWrites, LiveCluster, MASTER_NAME } from '../../harness/live-cluster';
import { clusterPerTest, livePrerequisites } from './live-suite';

/**
 * Authentication and authorisation of the staging overlay, on real servers: nobody gets in
 * without credentials or with a wrong password, the application user cannot administer
 * Redis or the Sentinels (nor forge Sentinel hellos), the replication and Sentinel users
 * cannot use the data, and an application with its credentials works through Sentinel,
 * across a failover.
 */

const missing = livePrerequisites('auth');

interface Attempt { reply?: unknown; error?: string }

describe.skipIf(missing)('live authentication and ACL users (staging overlay)', () => {
  let live: LiveCluster;
  // With the exporter sidecars on, so the `metrics` user (made only then) is checked too.
  clusterPerTest(() => LiveCluster.start('staging', { metrics: true }), (started) => { live = started; });

  /** One command on a fresh connection as USER (null: without logging in), its reply or error. */
  const attempt = (host: string, port: number, user: string | null, args: string[], password?: string) =>
    live.agent.call<Attempt>('attempt', { host, port, user, args, password });
  const error = async (host: string, port: number, user: string | null, args: string[], password?: string) => {
    const r = await attempt(host, port, user, args, password);
    return r.error ?? `no error: ${JSON.stringify(r.reply)}`;
  };

  test('refused: no credentials, a wrong password, the app user administering Redis or Sentinel, the service users reading data', async () => {
    await live.waitHealthy();
    expect(await live.agent.call('write', { key: 'precious', value: 'kept', wait: 2 })).toBe(2);
    const master = live.fqdn(await live.onlyMaster());
    const replica = live.fqdn('redis-slave-0');
    const sentinels = live.sentinelPods().map((p) => live.sim.podIp(p));
    const sentinel = sentinels[0];
    const refusals: string[] = [];
    /** Expects ERROR (a regular expression) from the command; records what it got otherwise. */
    const expectRefused = async (what: string, re: RegExp, host: string, port: number, user: string | null, args: string[], password?: string) => {
      const got = await error(host, port, user, args, password);
      if (!re.test(got)) refusals.push(`${what}: ${args.join(' ')} as ${user ?? '(none)'} on ${host}:${port} got '${got}'`);
    };

    // No credentials: every Redis node and every Sentinel wants a login, even for PING.
    for (const host of [master, replica]) {
      await expectRefused('no credentials', /^NOAUTH/, host, 6379, null, ['GET', 'precious']);
      await expectRefused('no credentials', /^NOAUTH/, host, 6379, null, ['PING']);
    }
    for (const host of sentinels) {
      await expectRefused('no credentials', /^NOAUTH/, host, 26379, null, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME]);
      await expectRefused('no credentials', /^NOAUTH/, host, 26379, null, ['SENTINEL', 'FAILOVER', MASTER_NAME]);
    }
    // A wrong password, for each user; the default user (the pre-ACL single password) is off.
    for (const user of ['app', 'replication', 'sentinel', 'operations', 'metrics', 'default']) {
      await expectRefused('wrong password', /^WRONGPASS/, master, 6379, null, ['AUTH', user, 'not-the-password']);
    }
    await expectRefused('default user off', /^WRONGPASS/, master, 6379, null, ['AUTH', 'default', live.appPassword]);
    for (const user of ['app', 'sentinel', 'operations', 'metrics']) {
      await expectRefused('wrong password', /^WRONGPASS/, sentinel, 26379, null, ['AUTH', user, 'not-the-password']);
    }
    // Another user's password is a wrong password too; the replication user does not exist on a Sentinel.
    await expectRefused('password of another user', /^WRONGPASS/, master, 6379, null, ['AUTH', 'operations', live.appPassword]);
    await expectRefused('no replication user on Sentinel', /^WRONGPASS/, sentinel, 26379, null, ['AUTH', 'replication', live.passwords.replication]);

    // The application user: data yes, administration no.
    for (const args of [['CONFIG', 'SET', 'min-replicas-to-write', '0'], ['REPLICAOF', 'NO', 'ONE'], ['SLAVEOF', '10.0.0.1', '6379'],
      ['SHUTDOWN', 'NOSAVE'], ['FLUSHALL'], ['FLUSHDB'], ['CLIENT', 'PAUSE', '60000'], ['CLIENT', 'KILL', 'TYPE', 'normal'],
      ['PUBLISH', '__sentinel__:hello', `10.0.0.1,26379,${'f'.repeat(40)},99,${MASTER_NAME},10.0.0.1,6379,99`],
      ['SPUBLISH', '__sentinel__:hello', 'x'], ['KEYS', '*'], ['INFO'], ['ACL', 'SETUSER', 'intruder', 'on', '>x', '+@all'],
      ['PSYNC', '?', '-1'], ['MONITOR'], ['FAILOVER'], ['CONFIG', 'GET', 'masterauth']]) {
      await expectRefused('app administering Redis', /^NOPERM/, master, 6379, 'app', args);
    }
    for (const args of [['PUBLISH', '__sentinel__:hello', 'x'], ['SENTINEL', 'SET', MASTER_NAME, 'quorum', '1'],
      ['SENTINEL', 'REMOVE', MASTER_NAME], ['SENTINEL', 'FAILOVER', MASTER_NAME], ['SENTINEL', 'MONITOR', 'evil', '10.0.0.1', '6379', '1'],
      ['SENTINEL', 'RESET', '*'], ['SENTINEL', 'CONFIG', 'SET', 'announce-ip', '10.0.0.1'], ['SENTINEL', 'DEBUG', 'ping-period', '1'],
      ['SENTINEL', 'FLUSHCONFIG'], ['SENTINEL', 'IS-MASTER-DOWN-BY-ADDR', '10.0.0.1', '6379', '99', 'f'.repeat(40)], ['ACL', 'LIST'], ['SHUTDOWN']]) {
      await expectRefused('app administering Sentinel', /^NOPERM/, sentinel, 26379, 'app', args);
    }
    // The replication and Sentinel users have no business with the data; operations neither.
    for (const user of ['replication', 'sentinel', 'operations']) {
      await expectRefused('service user reading data', /^NOPERM/, master, 6379, user, ['GET', 'precious']);
      await expectRefused('service user writing data', /^NOPERM/, master, 6379, user, ['SET', 'precious', 'gone']);
    }
    // (operations may run SENTINEL SET and SENTINEL CONFIG: the janitor's password rotation
    // sets auth-pass and sentinel-pass with them, lib/pod/acl.ts; it still may not drop or
    // re-point the monitored master.)
    await expectRefused('service user changing Sentinel', /^NOPERM/, sentinel, 26379, 'sentinel', ['SENTINEL', 'SET', MASTER_NAME, 'quorum', '1']);
    for (const user of ['sentinel', 'operations']) {
      await expectRefused('service user changing Sentinel', /^NOPERM/, sentinel, 26379, user, ['SENTINEL', 'REMOVE', MASTER_NAME]);
      await expectRefused('service user changing Sentinel', /^NOPERM/, sentinel, 26379, user, ['SENTINEL', 'MONITOR', 'elsewhere', '10.0.0.1', '6379', '2']);
    }
    await expectRefused('replication user changing Redis', /^NOPERM/, master, 6379, 'replication', ['CONFIG', 'SET', 'min-replicas-to-write', '0']);
    // The exporter's user reads INFO and Sentinel's views, nothing else: no data, no
    // configuration (CONFIG GET would show masterauth), no SLOWLOG GET (arguments are data).
    for (const args of [['GET', 'precious'], ['SET', 'precious', 'gone'], ['CONFIG', 'GET', 'masterauth'], ['SLOWLOG', 'GET', '1'],
      ['CLIENT', 'LIST'], ['REPLICAOF', 'NO', 'ONE'], ['KEYS', '*'], ['SUBSCRIBE', 'x']]) {
      await expectRefused('metrics user beyond reading', /^NOPERM/, master, 6379, 'metrics', args);
    }
    for (const args of [['SENTINEL', 'SET', MASTER_NAME, 'quorum', '1'], ['SENTINEL', 'FAILOVER', MASTER_NAME], ['SENTINEL', 'RESET', '*'],
      ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME], ['ACL', 'LIST'], ['SUBSCRIBE', '+switch-master']]) {
      await expectRefused('metrics user beyond reading', /^NOPERM/, sentinel, 26379, 'metrics', args);
    }
    expect(refusals).toEqual([]);
    expect(String((await attempt(master, 6379, 'metrics', ['INFO', 'replication'])).reply)).toMatch(/role:master/);
    expect((await attempt(sentinel, 26379, 'metrics', ['SENTINEL', 'CKQUORUM', MASTER_NAME])).reply).toMatch(/^OK /);

    // What the application may do, it can: write and read data, publish on its own channels.
    expect((await attempt(master, 6379, 'app', ['SET', 'mine', 'yes'])).reply).toBe('OK');
    expect((await attempt(master, 6379, 'app', ['PUBLISH', 'orders', 'x'])).reply).toBe(0);
    expect((await attempt(master, 6379, 'app', ['PUBLISH', '__keyspace@0__:mine', 'x'])).reply).toBe(0);
    expect((await attempt(sentinel, 26379, 'app', ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME])).reply).toEqual([master, '6379']);

    // Nothing of the above changed anything.
    await live.waitHealthy(30_000);
    expect(live.fqdn(await live.onlyMaster())).toBe(master);
    expect(await live.agent.call('readMaster', { key: 'precious' })).toBe('kept');
    expect((await attempt(master, 6379, 'operations', ['CONFIG', 'GET', 'min-replicas-to-write'])).reply).toEqual(['min-replicas-to-write', '1']);
    for (const ip of sentinels) {
      const m = (await live.view()).sentinels[ip].master!;
      expect(m.quorum, `sentinel ${ip}`).toBe('2');
      expect(m.ip).toBe(master);
    }
    for (const pod of live.sim.pods()) expect(pod.restarts, pod.name).toBe(0);
  }, 120_000);

  test('the app user works through Sentinel discovery, and after a master crash is served by the new master', async () => {
    await live.waitHealthy();
    expect(await live.agent.call('write', { key: 'before', value: '1', wait: 2 })).toBe(2);
    expect(await live.agent.call('readReplica', { key: 'before' })).toBe('1');
    let promoted = '';
    const log = await live.runWriter('auth-crash', async () => {
      await sleep(1000);
      await live.sim.killContainer('redis-master-0', 'redis', { restart: false });
      promoted = await live.waitForSentinelMasterOtherThan('redis-master-0', 30_000);
      const since = Date.now();
      while ((await live.agent.call<number>('writerLastAck')) <= since) await sleep(100);
    });
    expect(promoted).toMatch(/^redis-slave-[01]$/);
    // Every Sentinel tells the application (as app) the new master.
    for (const ip of live.sentinelPods().map((p) => live.sim.podIp(p))) {
      expect((await attempt(ip, 26379, 'app', ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME])).reply, `sentinel ${ip}`)
        .toEqual([live.fqdn(promoted), '6379']);
    }
    const confirmed = confirmedWrites(log);
    expect(confirmed.length).toBeGreaterThan(0);
    expect(await live.agent.call<number[]>('missing', { prefix: 'auth-crash', ns: confirmed })).toEqual([]);
    expect(await live.agent.call('write', { key: 'after', value: '2', wait: 1 })).toBeGreaterThanOrEqual(1);
    expect(await live.agent.call('readReplica', { key: 'after' })).toBe('2');
    // The old master comes back as a replica (it logs in to the new master as replication).
    await live.sim.restartContainer('redis-master-0', 'redis');
    await live.waitHealthy(60_000);
    expect(await live.onlyMaster()).toBe(promoted);
  }, 150_000);
});
