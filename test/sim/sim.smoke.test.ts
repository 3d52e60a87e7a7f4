// Proves the pod simulator itself (not the product): networking, DNS, volumes,
// probes, lifecycle and faults, on a small hand-written fixture.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, onTestFailed, test } from 'vitest';
import { SimCluster, checkLivePrerequisites } from '../../harness/sim';

const prereq = checkLivePrerequisites();
if (prereq) console.log(`[sim smoke] skipped: ${prereq}`);
if (prereq && process.env.CI === 'true') {
  test('live simulator prerequisites (required when CI=true)', () => {
    throw new Error(prereq);
  });
}

const NS = 'simtest';
const FIXTURE = `
apiVersion: v1
kind: ConfigMap
metadata: {name: kv-scripts, namespace: ${NS}}
data:
  start.sh: |
    #!/bin/sh
    set -e
    echo "starting $POD_NAME at $POD_IP as $(id -u)"
    exec redis-server --port 6379 --dir /data --appendonly yes --protected-mode no
---
apiVersion: v1
kind: Service
metadata: {name: kv, namespace: ${NS}}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {app: kv}
  ports: [{port: 6379}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: kv, namespace: ${NS}}
spec:
  replicas: 2
  serviceName: kv
  selector: {matchLabels: {app: kv}}
  template:
    metadata: {labels: {app: kv}}
    spec:
      terminationGracePeriodSeconds: 10
      securityContext: {runAsUser: 999, runAsGroup: 999, fsGroup: 999}
      initContainers:
        - name: init
          image: redis:7.2
          command: [sh, -c, 'echo "init $(POD_NAME)" > /work/init.txt && cp /etc/redis/auth/password /work/pw']
          env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
          volumeMounts: [{name: work, mountPath: /work}, {name: auth, mountPath: /etc/redis/auth}]
      containers:
        - name: redis
          image: redis:7.2
          command: [/usr/local/etc/redis/start.sh]
          env:
            - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
            - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
            - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory}}}
            - {name: PASSWORD, valueFrom: {secretKeyRef: {name: kv-auth, key: password}}}
          resources: {limits: {memory: 64Mi}}
          volumeMounts:
            - {name: scripts, mountPath: /usr/local/etc/redis/start.sh, subPath: start.sh}
            - {name: data, mountPath: /data}
            - {name: work, mountPath: /work}
            - {name: auth, mountPath: /etc/redis/auth, readOnly: true}
          readinessProbe:
            exec: {command: [redis-cli, -p, '6379', ping]}
            periodSeconds: 1
            failureThreshold: 1
          lifecycle:
            preStop:
              exec: {command: [sh, -c, 'echo "$POD_NAME stopping" >> /data/prestop.log']}
        - name: web
          image: nginx:1.27.3
      volumes:
        - {name: scripts, configMap: {name: kv-scripts, defaultMode: 0755}}
        - {name: work, emptyDir: {}}
        - {name: auth, secret: {secretName: kv-auth, defaultMode: 0400}}
  volumeClaimTemplates:
    - metadata: {name: data}
      spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: Service
metadata: {name: cache, namespace: ${NS}}
spec:
  selector: {app: cache}
  ports: [{port: 7000}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cache, namespace: ${NS}}
spec:
  replicas: 2
  selector: {matchLabels: {app: cache}}
  template:
    metadata: {labels: {app: cache}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: redis
          image: redis:7.2-alpine
          args: ['--port', '7000', '--save', '', '--protected-mode', 'no']
          readinessProbe:
            exec: {command: [redis-cli, -p, '7000', ping]}
            periodSeconds: 1
`;

const LONG = 120_000;

describe.skipIf(prereq)('pod simulator (live)', () => {
  let c: SimCluster;
  const sh = async (pod: string, script: string): Promise<string> => {
    const r = await c.exec(pod, ['sh', '-c', script], { timeoutMs: 20_000 });
    if (r.code !== 0) throw new Error(`exec in ${pod} failed (${r.code}): ${r.stderr}${r.stdout}`);
    return r.stdout.trim();
  };

  beforeAll(async () => {
    c = await SimCluster.start({ manifests: FIXTURE, secrets: { 'kv-auth': { password: 's3cret' } }, restartDelayMs: 300 });
    await c.waitReady(60_000).catch((e) => {
      console.log(c.events.join('\n'));
      throw e;
    });
  }, LONG);

  // On failure, show what the cluster did (pod events, probe failures, exits).
  beforeEach(() => onTestFailed(() => console.log(`${c.describe()}\n${c.events.slice(-80).join('\n')}`)));

  afterAll(async () => {
    if (!c) return;
    const runId = c.runId;
    await c.stop();
    // Nothing may survive stop(): no namespace, no process, no temp dir.
    expect(execFileSync('ip', ['netns', 'list']).toString()).not.toContain(runId);
    const ps = execFileSync('ps', ['-eo', 'args']).toString().split('\n').filter((l) => l.includes(runId));
    expect(ps).toEqual([]);
    expect(existsSync(c.dir)).toBe(false);
    expect(execFileSync('ip', ['-o', 'link']).toString()).not.toMatch(/rsim/); // links only ever lived inside our namespaces
  }, LONG);

  test('pods have distinct IPs and resolve each other by FQDN and Service name', async () => {
    const pods = c.pods();
    expect(pods.map((p) => p.name).sort()).toEqual(expect.arrayContaining(['kv-0', 'kv-1']));
    expect(pods).toHaveLength(4);
    expect(new Set(pods.map((p) => p.ip)).size).toBe(4);
    expect(pods.every((p) => p.ready && p.phase === 'Running')).toBe(true);
    // A container whose image the simulator has no binary for (not Redis, redis_exporter or
    // HAProxy) is left out and reported once.
    expect(c.events.filter((e) => e.includes('skipping container kv/web'))).toHaveLength(1);

    expect(await sh('kv-0', `getent hosts kv-1.kv.${NS}.svc.cluster.local | cut -d' ' -f1`)).toBe(c.podIp('kv-1'));
    expect(await sh('kv-0', 'getent hosts kv-1.kv | cut -d" " -f1')).toBe(c.podIp('kv-1'));
    expect(await sh('kv-1', 'redis-cli -h kv-0.kv -p 6379 ping')).toBe('PONG');
    expect(await sh('kv-0', 'hostname')).toBe('kv-0');
    const cacheIps = (await sh('kv-0', 'getent ahostsv4 cache | cut -d" " -f1 | sort -u')).split('\n');
    expect(cacheIps.sort()).toEqual(c.podsOf('cache').map((p) => p.ip).sort());
    expect(await sh('kv-0', 'redis-cli -h cache -p 7000 ping')).toBe('PONG');
    expect(await sh('kv-0', 'redis-cli -h kv -p 6379 ping')).toBe('PONG');
  }, LONG);

  test('env, user, init containers, configMap/secret volumes and the official image layout', async () => {
    expect(await sh('kv-0', 'echo "$POD_NAME $POD_IP $MEM $PASSWORD $HOSTNAME"')).toBe(`kv-0 ${c.podIp('kv-0')} ${64 * 1024 * 1024} s3cret kv-0`);
    expect(await sh('kv-0', 'id -u; id -G')).toMatch(/^999\n.*999/);
    expect(await sh('kv-0', 'cat /work/init.txt /work/pw; echo; cat /etc/redis/auth/password')).toBe('init kv-0\ns3cret\ns3cret');
    expect(await sh('kv-0', 'test -x /usr/local/etc/redis/start.sh && command -v redis-server')).toBe('/usr/local/bin/redis-server');
    // Volumes mounted read-only, and the sandbox cannot write the host's /usr.
    expect((await c.exec('kv-0', ['sh', '-c', 'touch /etc/redis/auth/x || touch /usr/x'])).code).not.toBe(0);
    expect(c.logs('kv-0', 'redis', 100)).toContain('starting kv-0 at');
    // Deployment pods run the image entrypoint's default (redis-server + args).
    expect(await sh(c.podsOf('cache')[0].name, 'redis-cli -p 7000 config get port | tail -1')).toBe('7000');
  }, LONG);

  test('PVC data survives pod deletion, the pod gets a new IP, emptyDir is wiped, preStop ran', async () => {
    await sh('kv-1', 'redis-cli set survivor yes && echo kept > /data/marker && echo gone > /work/scratch');
    const oldIp = c.podIp('kv-1');
    await c.deletePod('kv-1');
    await c.waitPodReady('kv-1', 60_000);
    expect(c.podIp('kv-1')).not.toBe(oldIp);
    expect(await sh('kv-1', 'cat /data/marker; cat /data/prestop.log; test -e /work/scratch || echo no-scratch')).toBe('kept\nkv-1 stopping\nno-scratch');
    expect(await sh('kv-1', 'redis-cli get survivor')).toBe('yes');
    // The other pod follows the new IP by name.
    await c.waitFor(async () => (await sh('kv-0', 'getent hosts kv-1.kv | cut -d" " -f1')) === c.podIp('kv-1'), 10_000, 'kv-0 sees new kv-1 IP');
  }, LONG);

  test('forced delete with held recreation, then recreatePod', async () => {
    await c.deletePod('kv-1', { grace: false, recreate: false });
    expect(c.pods().find((p) => p.name === 'kv-1')).toBeUndefined();
    expect(await sh('kv-0', 'getent hosts kv-1.kv || echo none')).toBe('none');
    c.recreatePod('kv-1');
    await c.waitPodReady('kv-1', 60_000);
    expect(await sh('kv-1', 'cat /data/marker')).toBe('kept');
  }, LONG);

  test('partition makes a pod unreachable; heal restores it', async () => {
    await c.partition('kv-1');
    const r = await c.exec('kv-0', ['sh', '-c', 'timeout 3 redis-cli -h kv-1.kv ping'], { timeoutMs: 10_000 });
    expect(r.stdout).not.toContain('PONG');
    expect(c.pods().find((p) => p.name === 'kv-1')!.ready).toBe(true); // the process lives on
    await c.heal('kv-1');
    await c.waitFor(async () => (await c.exec('kv-0', ['sh', '-c', 'timeout 3 redis-cli -h kv-1.kv ping'])).stdout.includes('PONG'), 15_000, 'kv-1 reachable after heal');
  }, LONG);

  test('killContainer holds the restart until restartContainer', async () => {
    const ip = c.podIp('kv-0');
    const before = c.pods().find((p) => p.name === 'kv-0')!.restarts;
    await c.killContainer('kv-0', 'redis', { restart: false });
    expect(c.pods().find((p) => p.name === 'kv-0')!.ready).toBe(false);
    const r = await c.exec('kv-1', ['sh', '-c', 'redis-cli -h kv-0.kv ping'], { timeoutMs: 10_000 });
    expect(r.stdout).not.toContain('PONG');
    await expect(c.exec('kv-0', ['true'])).rejects.toThrow(/not running/);
    await c.restartContainer('kv-0', 'redis');
    await c.waitPodReady('kv-0', 30_000);
    const after = c.pods().find((p) => p.name === 'kv-0')!;
    expect(after.restarts).toBe(before + 1);
    expect(after.ip).toBe(ip);
    // A crash without a hold restarts by itself after the back-off.
    await c.killContainer('kv-0');
    await c.waitPodReady('kv-0', 30_000);
  }, LONG);

  test('client pods reach Services by name (node + ioredis over IPC, python redis)', async () => {
    const agent = `
      const Redis = require('ioredis');
      const r = new Redis({ host: 'cache', port: 7000, lazyConnect: true, maxRetriesPerRequest: 1 });
      process.on('message', async (m) => {
        try { await r.set(m.key, m.value); process.send({ ok: await r.get(m.key), host: require('os').hostname() }); }
        catch (e) { process.send({ error: String(e) }); }
      });
      process.send({ hello: true });`;
    const node = await c.startClientPod('agent', [process.execPath, '-e', agent], { ipc: true, cwd: join(__dirname, '..', '..') });
    const messages: unknown[] = [];
    node.proc.on('message', (m) => messages.push(m));
    await c.waitFor(() => messages.length > 0, 15_000, 'agent hello');
    node.proc.send({ key: 'k1', value: 'v1' });
    await c.waitFor(() => messages.length > 1, 15_000, 'agent reply');
    expect(messages[1]).toEqual({ ok: 'v1', host: 'agent' });

    const py = await c.startClientPod('py', ['/usr/bin/python3', '-c', "import redis; print(redis.Redis(host='kv-0.kv', port=6379).ping())"]);
    let out = '';
    py.proc.stdout!.on('data', (d) => (out += d));
    await new Promise((r) => py.proc.once('exit', r));
    expect(out.trim()).toBe('True');
    await c.stopClientPod('agent');
  }, LONG);

  test('Deployment pods are replaced with fresh names and rolled one by one', async () => {
    const [victim] = c.podsOf('cache');
    await c.deletePod(victim.name);
    await c.waitReady(60_000);
    const names = c.podsOf('cache').map((p) => p.name);
    expect(names).toHaveLength(2);
    expect(names).not.toContain(victim.name);
    await c.rolloutDeployment('cache');
    await c.waitReady(60_000);
    const rolled = c.podsOf('cache').map((p) => p.name);
    expect(rolled).toHaveLength(2);
    expect(rolled.some((n) => names.includes(n))).toBe(false);
    expect(await sh('kv-0', 'redis-cli -h cache -p 7000 ping')).toBe('PONG');
  }, LONG);
  // PING from one pod to another over a fresh connection, bounded: true when PONG came back.
  const pings = async (from: string, to: string): Promise<boolean> => {
    const r = await c.exec(from, ['sh', '-c', `timeout 2 redis-cli -h ${c.podIp(to)} -p ${to.startsWith('cache') ? 7000 : 6379} ping`], { timeoutMs: 10_000 });
    return r.stdout.includes('PONG');
  };

  test('partitionGroups drops traffic between groups (established connections too, silently), not within; healPartitions restores it', async () => {
    const [cacheA, cacheB] = c.podsOf('cache').map((p) => p.name);
    // A client pod holding one connection open to kv-1, pinging it every 200 ms.
    const watcher = await c.startClientPod('watcher', ['redis-cli', '-h', c.podIp('kv-1'), '-p', '6379', '-r', '-1', '-i', '0.2', 'ping']);
    let out = '';
    watcher.proc.stdout!.on('data', (d) => (out += d));
    watcher.proc.stderr!.on('data', (d) => (out += d));
    const pongs = (): number => out.split('\n').filter((l) => l.trim() === 'PONG').length;
    await c.waitFor(() => pongs() >= 3, 10_000, 'watcher pings kv-1');
    const clientId = async (): Promise<string> => /id=(\d+) addr=[\d.]+:\d+/.exec((await sh('kv-1', 'redis-cli client list')).split('\n').find((l) => l.includes(`addr=${watcher.ip}:`)) ?? '')?.[1] ?? '';
    const idBefore = await clientId();
    expect(idBefore).not.toBe('');

    await c.partitionGroups([['kv-0', cacheA, 'watcher'], ['kv-1']]);
    expect(c.partitionedGroups()).toEqual([['kv-0', cacheA, 'watcher'], ['kv-1']]);
    await new Promise((r) => setTimeout(r, 500)); // a reply already on its way
    const frozenAt = pongs();
    await Promise.all([
      expect(pings('kv-0', 'kv-1')).resolves.toBe(false),
      expect(pings('kv-1', 'kv-0')).resolves.toBe(false),
      expect(pings('kv-1', cacheA)).resolves.toBe(false),
      expect(pings(cacheA, 'kv-1')).resolves.toBe(false),
    ]);
    // Within a group, and with a pod in no group, nothing changes.
    expect(await pings('kv-0', cacheA)).toBe(true);
    expect(await pings(cacheA, 'kv-0')).toBe(true);
    expect(await pings('kv-1', cacheB)).toBe(true);
    expect(await pings(cacheB, 'kv-0')).toBe(true);
    // The established connection hangs: no reply, and no reset or error either.
    expect(pongs()).toBe(frozenAt);
    expect(out).not.toMatch(/error|reset|refused/i);
    expect(watcher.proc.exitCode).toBeNull();

    // A listed pod recreated during the split (new IP, new veth) is split too.
    await c.deletePod('kv-1', { grace: false, recreate: true });
    await c.waitPodReady('kv-1', 60_000);
    expect(await pings('kv-0', 'kv-1')).toBe(false);
    expect(await pings('kv-1', cacheB)).toBe(true);

    await c.healPartitions();
    expect(c.partitionedGroups()).toEqual([]);
    expect(await pings('kv-0', 'kv-1')).toBe(true);
    expect(await pings('kv-1', cacheA)).toBe(true);
    expect(execFileSync('ip', ['netns', 'exec', `rsim-${c.runId}-br`, 'nft', 'list', 'ruleset']).toString().trim()).toBe('');
    await c.stopClientPod('watcher');
    await expect(c.partitionGroups([['kv-0'], ['nope']])).rejects.toThrow(/no pod or client pod named nope/);
  }, LONG);

  test('existing connections resume after healPartitions (same connection, no reset)', async () => {
    const watcher = await c.startClientPod('watcher2', ['redis-cli', '-h', c.podIp('kv-0'), '-p', '6379', '-r', '-1', '-i', '0.2', 'ping']);
    let out = '';
    watcher.proc.stdout!.on('data', (d) => (out += d));
    watcher.proc.stderr!.on('data', (d) => (out += d));
    const pongs = (): number => out.split('\n').filter((l) => l.trim() === 'PONG').length;
    await c.waitFor(() => pongs() >= 3, 10_000, 'watcher2 pings kv-0');
    await c.partitionGroups([['watcher2'], ['kv-0']]);
    await new Promise((r) => setTimeout(r, 500));
    const frozenAt = pongs();
    await new Promise((r) => setTimeout(r, 2000));
    expect(pongs()).toBe(frozenAt);
    await c.healPartitions();
    // TCP retransmits the held request on the same connection.
    await c.waitFor(() => pongs() >= frozenAt + 3, 20_000, 'PONGs again after heal');
    expect(out).not.toMatch(/error|reset|refused/i);
    await c.stopClientPod('watcher2');
  }, LONG);

  test('wipeVolumes empties a deleted pod\'s PVCs; deletePod(..., wipeVolumes) does it in one step', async () => {
    await sh('kv-1', 'redis-cli set wiped-key 1 >/dev/null && echo x > /data/wipe-marker');
    expect(() => c.wipeVolumes('kv-1')).toThrow(/exists/);
    expect(() => c.wipeVolumes('cache-x')).toThrow(/not a StatefulSet pod/);
    await c.deletePod('kv-1', { grace: true, recreate: false });
    c.wipeVolumes('kv-1');
    c.recreatePod('kv-1');
    await c.waitPodReady('kv-1', 60_000);
    expect(await sh('kv-1', 'ls -A /data | grep -v "^appendonlydir$" | grep -v prestop || true')).toBe('');
    expect(await sh('kv-1', 'redis-cli exists wiped-key')).toBe('0');
    // The PVC stays writable by the pod's group (fsGroup applied again).
    expect(await sh('kv-1', 'echo y > /data/after && cat /data/after')).toBe('y');

    // Force delete and recreate at once with an empty volume.
    await sh('kv-0', 'echo x > /data/wipe-marker');
    await c.deletePod('kv-0', { grace: false, recreate: true, wipeVolumes: true });
    await c.waitPodReady('kv-0', 60_000);
    expect(await sh('kv-0', 'test -e /data/wipe-marker && echo kept || echo gone')).toBe('gone');
  }, LONG);

  test('stopAllPods, wipe one volume, startAllPods: everything comes back, only that volume is empty', async () => {
    await sh('kv-0', 'echo a > /data/stop-marker');
    await sh('kv-1', 'echo b > /data/stop-marker');
    const stopped = await c.stopAllPods({ grace: false });
    expect(stopped.sort()).toEqual(expect.arrayContaining(['kv-0', 'kv-1']));
    expect(stopped).toHaveLength(4);
    await new Promise((r) => setTimeout(r, 500));
    expect(c.pods()).toEqual([]); // nothing recreated while held
    c.wipeVolumes('kv-0');
    c.startAllPods();
    await c.waitReady(60_000);
    expect(c.pods()).toHaveLength(4);
    expect(await sh('kv-0', 'test -e /data/stop-marker && echo kept || echo gone')).toBe('gone');
    expect(await sh('kv-1', 'cat /data/stop-marker')).toBe('b');
  }, LONG);
});

// NetworkPolicy enforcement on its own fixture: namespace selectors (a Namespace object's
// labels and the kubernetes.io/metadata.name label), pod selectors, ports, and an egress
// rule list that allows nothing.
const NP_FIXTURE = `
apiVersion: v1
kind: Namespace
metadata: {name: blue, labels: {team: blue}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ${NS}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: redis
          image: redis:7.2-alpine
          args: ['--port', '6379', '--save', '', '--protected-mode', 'no']
          ports: [{name: redis, containerPort: 6379}]
          readinessProbe: {tcpSocket: {port: redis}, periodSeconds: 1}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: ${NS}}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress, Egress]
  ingress:
    - from:
        - podSelector: {matchLabels: {role: ok}}
        - namespaceSelector: {matchLabels: {team: blue}}
          podSelector: {matchExpressions: [{key: role, operator: In, values: [ok, fine]}]}
      ports: [{port: redis}]
  egress: []
`;

describe.skipIf(prereq)('pod simulator: NetworkPolicy enforcement (live)', () => {
  let c: SimCluster;
  beforeAll(async () => {
    c = await SimCluster.start({ manifests: NP_FIXTURE });
    await c.waitReady(60_000);
  }, LONG);
  afterAll(async () => { await c?.stop(); });

  // Connects from a new client pod; "open", "dropped" (no answer) or "refused".
  async function reach(name: string, opts: { labels?: Record<string, string>; namespace?: string }, port = 6379): Promise<string> {
    const ip = c.podsOf('web')[0].ip;
    const pod = await c.startClientPod(name, ['bash', '-c',
      `timeout 2 bash -c 'exec 3<>/dev/tcp/${ip}/${port}' 2>/dev/null; rc=$?; [ $rc = 0 ] && echo open || { [ $rc = 124 ] && echo dropped || echo refused; }`], opts);
    let out = '';
    pod.proc.stdout!.on('data', (d) => (out += d));
    await new Promise((r) => pod.proc.once('exit', r));
    await c.stopClientPod(name);
    return out.trim();
  }

  test('ingress: only the selected peers, on the named port; egress: nothing', async () => {
    expect(await reach('ok', { labels: { role: 'ok' } })).toBe('open');
    expect(await reach('unlabelled', { labels: {} })).toBe('dropped');
    expect(await reach('ok-other-port', { labels: { role: 'ok' } }, 7000)).toBe('dropped');
    expect(await reach('blue-fine', { labels: { role: 'fine' }, namespace: 'blue' })).toBe('open');
    expect(await reach('blue-unlabelled', { labels: {}, namespace: 'blue' })).toBe('dropped');
    expect(await reach('green-ok', { labels: { role: 'ok' }, namespace: 'green' })).toBe('dropped');
    // The pod's own probes and execs use loopback, which is never filtered.
    const web = c.podsOf('web')[0].name;
    expect((await c.exec(web, ['redis-cli', 'ping'])).stdout.trim()).toBe('PONG');
    const r = await c.exec(web, ['bash', '-c', `timeout 2 redis-cli -h ${c.podsOf('web')[0].ip} ping`]);
    expect(r.stdout.trim()).toBe('PONG');
    // Egress: the empty rule list allows nothing, not even a labelled client's port.
    const listener = await c.startClientPod('listener', ['sleep', '30'], { labels: { role: 'ok' } });
    const out = await c.exec(web, ['bash', '-c', `timeout 2 bash -c 'exec 3<>/dev/tcp/${listener.ip}/9' 2>/dev/null; echo $?`]);
    expect(out.stdout.trim()).toBe('124');
    await c.stopClientPod('listener');
  }, LONG);
});
