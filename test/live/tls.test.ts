import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { sleep, waitFor } from '../../harness/sim/util';
import { AUTH_SECRET, confirmedWrites, LiveCluster, longestPause, makeTestCertificates, MASTER_NAME, User, USERS, WriteRecord, writeOutage } from '../../harness/live-cluster';
import { simRotationAccess } from '../../harness/sim-rotation';
import { AUTH_USERS, rotatePasswords, SERVER_USERS } from '../../lib/ops/rotation';
import { clusterPerTest, livePrerequisites } from './live-suite';

/**
 * The staging overlay with the tls prop on (Secret `redis-tls` from a CA and a server
 * certificate that the harness makes with openssl): Redis and Sentinel refuse plaintext on
 * 6379 and 26379 and answer TLS checked against the CA; replication, Sentinel and the pod
 * scripts (probes, guard, janitor, start scripts) work over TLS, so a master crash fails
 * over and the crashed master rejoins; applications connect through Sentinel with TLS
 * (ioredis in the client agent, and the seed's Python example with redis-py), logged in as
 * the app user: TLS does not replace authentication (no credentials still gets NOAUTH).
 * Through the proxy tier (its own cluster): clients reach it over TLS, and it reaches the
 * servers over TLS.
 */

const missing = livePrerequisites('tls');

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** Files (PEM) on the host for a client pod, which sees the host's filesystem. */
function hostFiles(files: Record<string, string>): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'redis-ha-tls-client-'));
  dirs.push(dir);
  return Object.fromEntries(Object.entries(files).map(([name, content]) => {
    writeFileSync(join(dir, name), content);
    return [name, join(dir, name)];
  }));
}

/** Runs a shell script in a labelled client pod; its output once it exits. */
async function inClientPod(live: LiveCluster, name: string, script: string, args: string[] = []): Promise<{ out: string; code: number | null }> {
  const pod = await live.sim.startClientPod(name, ['sh', '-c', script, name, ...args]);
  let out = '';
  pod.proc.stdout?.on('data', (d) => { out += d; });
  pod.proc.stderr?.on('data', (d) => { out += d; });
  const code = await new Promise<number | null>((resolve) => pod.proc.on('exit', resolve));
  await live.sim.stopClientPod(name);
  return { out, code };
}

/**
 * Kills redis-master-0's Redis (not restarted) while the client writes (through Sentinel, or
 * the proxy after connectProxy), until the Sentinels name another master and a write after
 * that is acknowledged: the write log, the fault's time and the promoted pod.
 */
async function crashMasterWhileWriting(live: LiveCluster, prefix: string): Promise<{ log: WriteRecord[]; faultAt: number; promoted: string }> {
  let promoted = '';
  let faultAt = 0;
  const log = await live.runWriter(prefix, async () => {
    await sleep(1000);
    faultAt = Date.now();
    await live.sim.killContainer('redis-master-0', 'redis', { restart: false });
    promoted = await live.waitForSentinelMasterOtherThan('redis-master-0', 30_000);
    const since = Date.now();
    await waitFor(async () => (await live.agent.call<number>('writerLastAck')) > since,
      30_000, 'the client to have a write acknowledged by the new master', 100);
  });
  return { log, faultAt, promoted };
}

describe.skipIf(missing)('live TLS (staging overlay with the tls prop)', () => {
  let live: LiveCluster;
  // Without the proxy tier (it has its own block below): these checks are timing-bound, and
  // on the two shared cores its pods' load made the rotation's writes meet NOREPLICAS once.
  clusterPerTest(() => LiveCluster.start('staging', { tls: true, proxy: false }), (started) => { live = started; });

  test('plaintext is refused on 6379 and 26379; TLS checked against the CA works; another CA is refused; over TLS, no credentials get NOAUTH and the app user NOPERM for CONFIG SET', async () => {
    await live.waitHealthy();
    expect(live.tls).toBeDefined();
    const { ca } = hostFiles({ ca: live.tls!['ca.crt'] });
    const { other } = hostFiles({ other: makeTestCertificates(['elsewhere'])['ca.crt'] });
    // Each line: "<mode> <host>:<port> <reply on one line>". Every attempt logs in as the
    // app user (Redis and Sentinel both want credentials), except "tls-noauth": TLS with
    // the CA but no credentials, which must still get NOAUTH (TLS does not replace auth).
    const script = `
ca="$1"; other="$2"; pw="$3"; ops="$4"
try() {
  mode="$1"; host="$2"; port="$3"; shift 3
  reply="$(REDISCLI_AUTH="$pw" timeout 5 redis-cli "$@" --no-auth-warning --user app -h "$host" -p "$port" PING 2>&1 | tr '\\n' ' ')"
  echo "$mode $host:$port $reply"
}
for t in redis-master-0.redis-master:6379 redis-slave-1.redis-slave.redis-staging.svc.cluster.local:6379 redis-sentinel:26379; do
  h="\${t%:*}"; p="\${t#*:}"
  try plain "$h" "$p"
  try tls "$h" "$p" --tls --cacert "$ca"
  try other-ca "$h" "$p" --tls --cacert "$other"
  echo "tls-noauth $t $(timeout 5 redis-cli --tls --cacert "$ca" -h "$h" -p "$p" PING 2>&1 | tr '\\n' ' ')"
done
REDISCLI_AUTH="$ops" timeout 5 redis-cli --tls --cacert "$ca" --no-auth-warning --user operations -h redis-master-0.redis-master CONFIG GET port | tr '\\n' ' '; echo
echo "app-config-set $(REDISCLI_AUTH="$pw" timeout 5 redis-cli --tls --cacert "$ca" --no-auth-warning --user app -h redis-master-0.redis-master CONFIG SET min-replicas-to-write 0 2>&1 | tr '\\n' ' ')"
echo "tls-wrongpass $(REDISCLI_AUTH=not-the-password timeout 5 redis-cli --tls --cacert "$ca" --no-auth-warning --user app -h redis-sentinel -p 26379 PING 2>&1 | tr '\\n' ' ')"
`;
    const { out } = await inClientPod(live, 'tls-check', script, [ca, other, live.appPassword, live.passwords.operations]);
    const lines = out.trim().split('\n');
    const reply = (mode: string, target: string) => lines.find((l) => l.startsWith(`${mode} ${target} `))?.slice(mode.length + target.length + 2).trim() ?? '(no line)';
    for (const target of ['redis-master-0.redis-master:6379', 'redis-slave-1.redis-slave.redis-staging.svc.cluster.local:6379', 'redis-sentinel:26379']) {
      expect(reply('plain', target), `${target}\n${out}`).not.toMatch(/PONG/);
      expect(reply('tls', target), `${target}\n${out}`).toBe('PONG');
      expect(reply('other-ca', target), `${target}\n${out}`).toMatch(/certificate verify failed|SSL/i);
      expect(reply('tls-noauth', target), `${target}\n${out}`).toBe('NOAUTH Authentication required.');
    }
    expect(lines.find((l) => l.startsWith('port '))?.trim()).toBe('port 0');
    // The ACL rules and passwords hold over TLS as over plaintext.
    expect(lines.find((l) => l.startsWith('app-config-set '))).toMatch(/NOPERM/);
    expect(lines.find((l) => l.startsWith('tls-wrongpass '))).toMatch(/WRONGPASS|NOAUTH/);
    console.log(`plaintext answers: ${lines.filter((l) => l.startsWith('plain ')).join(' | ')}`);
  }, 120_000);

  test('master crash over TLS: Sentinel names a replica, writes continue through Sentinel, no WAIT-confirmed write lost, the old master rejoins', async () => {
    await live.waitHealthy();
    expect(await live.onlyMaster()).toBe('redis-master-0');
    const { log, faultAt, promoted } = await crashMasterWhileWriting(live, 'tls-crash');
    expect(promoted).toMatch(/^redis-slave-[01]$/);
    expect(await live.onlyMaster()).toBe(promoted);
    console.log(`master crash over TLS: write outage ${writeOutage(log, faultAt).toFixed(0)} ms (downAfter ${live.downAfterMs} ms)`);
    const acked = log.filter((w) => w.ack !== null);
    expect(acked.filter((w) => (w.ack as number) > faultAt).length).toBeGreaterThan(0);
    const confirmed = confirmedWrites(log);
    expect(confirmed.length).toBeGreaterThan(0);
    expect(await live.agent.call<number[]>('missing', { prefix: 'tls-crash', ns: confirmed })).toEqual([]);
    // The crashed master's start script asks the Sentinels and the peers over TLS, and
    // comes back as a replica of the new master; its link is TLS (there is no other port).
    await live.sim.restartContainer('redis-master-0', 'redis');
    await live.waitHealthy(60_000);
    expect(await live.onlyMaster()).toBe(promoted);
    // Nothing spoke plaintext to a TLS port (a server logs "wrong version number" then) or
    // met a certificate it could not verify. (A connection cut mid-handshake, such as a
    // probe's redis-cli hitting its timeout during the crash, is logged too, and is fine.)
    for (const pod of live.sim.pods().map((p) => p.name)) {
      const c = pod.startsWith('redis-sentinel') ? 'sentinel' : 'redis';
      expect(live.sim.logs(pod, c, 100_000), `${pod} ${c}`).not.toMatch(/wrong version number|unknown ca|certificate verify failed/);
    }
  }, 180_000);

  test('partitioned master over TLS: the guard reaches its peers while healthy and fences once cut off; the old master follows the new one after healing', async () => {
    await live.waitHealthy();
    const fences = () => live.sim.logs('redis-master-0', 'guard', 100_000).split('\n').filter((l) => / fencing: /.test(l));
    // Healthy for a few guard rounds: every check over TLS answered, so no fence.
    await sleep(2000);
    expect(fences()).toEqual([]);
    let isolatedWrites = '';
    const log = await live.runWriter('tls-partition', async () => {
      await sleep(1000);
      await live.sim.partition('redis-master-0');
      // An application on the master's side of the partition keeps writing to it (over TLS).
      const sideWriter = live.sim.exec('redis-master-0', ['sh', '-c',
        'n=0; end=$(( $(date +%s) + 12 )); ' +
        `while [ "$(date +%s)" -lt "$end" ]; do r="$(${live.cliAs('app', 1)} SET "iso:$n" "$n" 2>&1 | head -c 40)"; ` +
        'echo "$(date +%s%N) $n $r"; n=$((n+1)); sleep 0.05; done'], { timeoutMs: 30_000 });
      await live.waitForSentinelMasterOtherThan('redis-master-0', 30_000);
      const since = Date.now();
      await waitFor(async () => (await live.agent.call<number>('writerLastAck')) > since,
        30_000, 'the client to have a write acknowledged by the new master', 100);
      isolatedWrites = (await sideWriter).stdout;
      await live.sim.heal('redis-master-0');
    });
    const lines = isolatedWrites.trim().split('\n').map((l) => l.split(' '));
    expect(lines.filter((l) => /NOREPLICAS/.test(l.slice(2).join(' '))).length, isolatedWrites.slice(-2000)).toBeGreaterThan(0);
    console.log(`guard of the partitioned master over TLS:\n  ${fences().join('\n  ')}`);
    expect(fences().length).toBeGreaterThan(0);
    const promoted = await live.sentinelMaster();
    await waitFor(async () => {
      const n = (await live.view()).nodes[live.fqdn('redis-master-0')];
      return n.role === 'slave' && n.roleReply?.[1] === live.fqdn(promoted!) && /master_link_status:up/.test(n.info ?? '');
    }, 30_000, 'the old master to follow the new one');
    expect(await live.agent.call<number[]>('missing', { prefix: 'tls-partition', ns: confirmedWrites(log) })).toEqual([]);
    await live.waitHealthy(30_000);
  }, 120_000);

  test('over TLS the janitor sets Sentinel\'s INFO period, and a graceful deletion of the master hands over (preStop): no failed write', async () => {
    await live.waitHealthy();
    for (const pod of live.sentinelPods()) {
      await waitFor(async () => {
        const r = await live.sim.exec(pod, ['sh', '-c', `${live.cliAs('operations')} -p 26379 SENTINEL DEBUG | paste -sd" "`], { container: 'sentinel' });
        return /INFO-PERIOD 1000 /.test(r.stdout);
      }, 10_000, `${pod} to run with INFO-PERIOD 1000`);
    }
    let promoted = '';
    const log = await live.runWriter('tls-planned', async () => {
      await sleep(1000);
      const deleting = live.sim.deletePod('redis-master-0', { grace: true, recreate: true });
      promoted = await live.waitForSentinelMasterOtherThan('redis-master-0', 30_000);
      await deleting;
      await live.sim.waitPodReady('redis-master-0', 60_000);
      await sleep(500);
    }, { retries: 40 });
    const handoverLog = live.sim.logs('redis-master-0', 'redis', 400, { previous: true });
    const failed = log.filter((w) => w.error !== null);
    console.log(`planned switchover over TLS: ${failed.length} failed writes, longest write pause ${longestPause(log).toFixed(0)} ms`);
    expect(handoverLog).toMatch(/handed over to redis-slave-[01]/);
    expect(failed.map((w) => w.error)).toEqual([]);
    expect(promoted).toMatch(/^redis-slave-[01]$/);
    await live.waitHealthy(30_000);
    expect(await live.onlyMaster()).toBe(promoted);
  }, 120_000);

  test("the seed's Python example over TLS: redis-py Sentinel with the app user, ssl=True and the CA, hostnames checked", async () => {
    await live.waitHealthy();
    const { ca } = hostFiles({ ca: live.tls!['ca.crt'] });
    const script = [
      'import time',
      'from redis.sentinel import Sentinel',
      `password = ${JSON.stringify(live.appPassword)}`,
      `tls = dict(ssl=True, ssl_ca_certs=${JSON.stringify(ca)}, ssl_check_hostname=True)`,
      "sentinel = Sentinel([('redis-sentinel', 26379)], sentinel_kwargs=dict(socket_timeout=0.5, username='app', password=password, **tls))",
      `master = sentinel.master_for('${MASTER_NAME}', socket_timeout=0.5, username='app', password=password, **tls)`,
      `slave = sentinel.slave_for('${MASTER_NAME}', socket_timeout=0.5, username='app', password=password, **tls)`,
      "master.set('key', 'value')",
      'value = None',
      'for _ in range(50):',
      "    value = slave.get('key')",
      '    if value is not None: break',
      '    time.sleep(0.1)',
      `print('master', sentinel.discover_master('${MASTER_NAME}'))`,
      "print('read', value.decode())",
      // Without TLS the same client (credentials and all) gets no answer from Sentinel.
      'try:',
      `    Sentinel([('redis-sentinel', 26379)], sentinel_kwargs=dict(socket_timeout=0.5, username='app', password=password)).discover_master('${MASTER_NAME}')`,
      "    print('plaintext answered')",
      'except Exception as e:',
      "    print('plaintext refused', type(e).__name__)",
    ].join('\n');
    const py = await live.sim.startClientPod('python-app', ['/usr/bin/python3', '-c', script]);
    let out = '';
    py.proc.stdout?.on('data', (d) => { out += d; });
    py.proc.stderr?.on('data', (d) => { out += d; });
    const code = await new Promise<number | null>((resolve) => py.proc.on('exit', resolve));
    expect(out).toMatch(/read value/);
    expect(out).toContain(`master ('${live.fqdn('redis-master-0')}', 6379)`);
    expect(out).toMatch(/plaintext refused MasterNotFoundError/);
    expect(code).toBe(0);
  }, 90_000);

  test('password rotation over TLS: the sidecars (auth-sync) and the rotation tool\'s checks speak TLS; no restart, no failed write, old passwords refused and new ones taken', async () => {
    await live.waitHealthy();
    const secretPasswords = (): Record<User, string> => {
      const data = live.sim.secret(live.namespace, AUTH_SECRET)!;
      return Object.fromEntries(USERS.map((u) => [u, data[`${u}-password`]])) as Record<User, string>;
    };
    /** AUTH USER PASSWORD on every server that has USER, from the client pod over TLS: each answer. */
    const answers = async (user: User, password: string): Promise<string[]> => {
      const servers = [
        ...live.redisPods().filter(() => SERVER_USERS.redis.includes(user)).map((p) => ({ host: live.fqdn(p), port: 6379 })),
        ...live.sentinelPods().filter(() => SERVER_USERS.sentinel.includes(user)).map((p) => ({ host: live.sim.podIp(p), port: 26379 })),
      ];
      const out: string[] = [];
      for (const sv of servers) {
        const r = await live.agent.call<{ reply?: string; error?: string }>('attempt', { ...sv, args: ['AUTH', user, password], user: null });
        out.push(r.reply ?? (r.error ?? '').split(' ')[0]);
      }
      return out;
    };
    const old = secretPasswords();
    const podsBefore = live.sim.pods().map((p) => `${p.name} restarts=${p.restarts}`).sort();
    const eventsFrom = live.sim.events.length;
    const access = simRotationAccess(live.sim, live.namespace, AUTH_SECRET, { maxSkewMs: 3000 });
    const opts = { timeoutMs: 120_000, pollMs: 500, log: (l: string) => console.log(`[rotation over TLS] ${l}`) };
    const log = await live.runWriter('tls-rotation', async () => {
      expect(await rotatePasswords(access.secret, access.pods, opts)).toEqual({ rotated: ['replication', 'sentinel', 'operations'], pending: ['app'] });
      await live.agent.call('setPassword', { user: 'operations', password: secretPasswords().operations });
      await live.agent.call('setPassword', { user: 'app', password: secretPasswords().app });
      expect(await rotatePasswords(access.secret, access.pods, { ...opts, finish: true })).toEqual({ rotated: ['app'], pending: [] });
    });
    // A refused write comes with what could explain it: when it happened, the guards'
    // fences (NOREPLICAS), and every replication link and password change on the Redis pods.
    const failed = log.filter((w) => w.error !== null);
    const why = failed.length === 0 ? '' : [
      `refused from ${new Date(failed[0].start).toISOString()} to ${new Date(failed[failed.length - 1].start).toISOString()}`,
      ...live.redisPods().flatMap((p) => ['guard', 'redis'].flatMap((c) => live.sim.logs(p, c, 100_000).split('\n')
        .filter((l) => /fenc|check failed|demoting|masterauth|ACL|replica|MASTER <-> REPLICA|Connection with|Lost|timeout/i.test(l))
        .map((l) => `${p}/${c}: ${l}`))),
    ].join('\n');
    expect(failed.map((w) => `${w.n}: ${w.error}`), why).toEqual([]);
    expect(live.sim.pods().map((p) => `${p.name} restarts=${p.restarts}`).sort()).toEqual(podsBefore);
    expect(live.sim.events.slice(eventsFrom).filter((e) => /(liveness|readiness|startup) probe failed/.test(e))).toEqual([]);
    const now = secretPasswords();
    // Every user the tool rotates (not metrics: the exporter takes a new password only when it restarts).
    // (proxy: the tier is off in this cluster, so the tool leaves that user out.)
    for (const user of AUTH_USERS.filter((u) => u !== 'proxy')) {
      expect(now[user], user).not.toBe(old[user]);
      const withOld = await answers(user, old[user]);
      expect(withOld.length, user).toBeGreaterThan(0);
      expect(withOld.every((a) => a === 'WRONGPASS'), `${user} old: ${withOld.join(' ')}`).toBe(true);
      expect((await answers(user, now[user])).every((a) => a === 'OK'), `${user} new`).toBe(true);
    }
    await live.waitHealthy(30_000);
  }, 300_000);
});

describe.skipIf(missing)('live TLS through the proxy tier (staging overlay with the tls prop)', () => {
  let live: LiveCluster;
  clusterPerTest(() => LiveCluster.start('staging', { tls: true }), (started) => { live = started; });

  test('through the proxy over TLS: clients check the proxy\'s certificate against the CA, the proxy checks the servers\'; writes follow a master crash, no WAIT-confirmed write lost', async () => {
    await live.waitHealthy();
    // The client agent speaks TLS with the CA to every port: the proxy's Services included.
    await live.agent.call('connectProxy', { write: { host: 'redis-write', port: 6379 }, read: { host: 'redis-read', port: 6380 } }, 120_000);
    expect(await live.agent.call('write', { key: 'tls-proxy-first', value: 'v', wait: 1 })).toBeGreaterThanOrEqual(1);
    expect((await live.agent.call<{ value: string }>('readVia', { key: 'tls-proxy-first' })).value).toBe('v');
    const { log, faultAt, promoted } = await crashMasterWhileWriting(live, 'tls-proxy');
    console.log(`master crash through the proxy over TLS: write outage ${writeOutage(log, faultAt).toFixed(0)} ms (downAfter ${live.downAfterMs} ms)`);
    expect(promoted).toMatch(/^redis-slave-[01]$/);
    const confirmed = confirmedWrites(log);
    expect(log.filter((w) => w.ack !== null && (w.ack as number) > faultAt).length).toBeGreaterThan(0);
    expect(await live.agent.call<number[]>('missing', { prefix: 'tls-proxy', ns: confirmed })).toEqual([]);
    // Each decider opened the promoted node over TLS; nothing met a certificate it could not verify.
    for (const pod of live.sim.podsOf('redis-proxy').map((p) => p.name)) {
      const lines = live.sim.logs(pod, 'haproxy', 100_000);
      expect(lines, pod).toMatch(new RegExp(`redis_write: open ${promoted} because`));
      expect(lines, pod).not.toMatch(/certificate verify failed|SSL handshake failure|unknown ca/i);
    }
    await live.sim.restartContainer('redis-master-0', 'redis');
    await live.waitHealthy(60_000);
  }, 180_000);
});
