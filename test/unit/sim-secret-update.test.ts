// The simulator's Secret volumes and updates (harness/sim/secrets.ts), without starting
// any pod: the kubelet's layout (timestamped directory, ..data swapped with rename, keys as
// symlinks), readers in another process never seeing a partial file, and an update
// reaching every pod that mounts the Secret (each at its own moment), and later pods.
import { spawn } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PayloadFile, updateSecret, writeAtomically } from '../../harness/sim/secrets';
import { SimState } from '../../harness/sim/state';
import { Pod } from '../../harness/sim/types';
import { prepareVolumes } from '../../harness/sim/volumes';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });
const tempDir = (): string => { const d = mkdtempSync(join(tmpdir(), 'sim-secret-')); dirs.push(d); return d; };
const payload = (data: Record<string, string>, mode = 0o440): Map<string, PayloadFile> =>
  new Map(Object.entries(data).map(([k, v]) => [k, { content: v, mode }]));

describe('a Secret volume in the kubelet layout', () => {
  it('holds the keys as symlinks into ..data, which points at a timestamped directory', () => {
    const dir = tempDir();
    writeAtomically(dir, payload({ 'app-password': 'one', 'sentinel-password': 'two' }));
    const entries = readdirSync(dir).sort();
    expect(entries).toHaveLength(4);
    const [ts] = entries.filter((e) => /^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\./.test(e));
    expect(entries).toEqual(['..data', ts, 'app-password', 'sentinel-password'].sort());
    expect(readlinkSync(join(dir, '..data'))).toBe(ts);
    expect(readlinkSync(join(dir, 'app-password'))).toBe('..data/app-password');
    expect(readFileSync(join(dir, 'sentinel-password'), 'utf8')).toBe('two');
    expect(statSync(join(dir, 'app-password')).mode & 0o777).toBe(0o440);
  });

  it('an update swaps ..data, adds symlinks for new keys, drops those of removed keys and the old directory', () => {
    const dir = tempDir();
    writeAtomically(dir, payload({ 'app-password': 'old' }));
    const before = readlinkSync(join(dir, '..data'));
    writeAtomically(dir, payload({ 'app-password': 'new', 'app-password-previous': 'old' }));
    expect(readlinkSync(join(dir, '..data'))).not.toBe(before);
    expect(readdirSync(dir)).not.toContain(before);
    expect(readFileSync(join(dir, 'app-password'), 'utf8')).toBe('new');
    expect(readFileSync(join(dir, 'app-password-previous'), 'utf8')).toBe('old');
    writeAtomically(dir, payload({ 'app-password': 'new' }));
    expect(readdirSync(dir).filter((e) => !e.startsWith('..'))).toEqual(['app-password']);
    expect(readdirSync(dir).filter((e) => e.startsWith('..'))).toHaveLength(2);
  });

  it('writes nothing when the payload is unchanged', () => {
    const dir = tempDir();
    expect(writeAtomically(dir, payload({ k: 'v' }))).toBe(true);
    const ts = readlinkSync(join(dir, '..data'));
    expect(writeAtomically(dir, payload({ k: 'v' }))).toBe(false);
    expect(readlinkSync(join(dir, '..data'))).toBe(ts);
  });

  it('a script reading <key> while the Secret changes sees the old or the new file, never a partial one', async () => {
    const dir = tempDir();
    const big = (c: string): string => c.repeat(256 * 1024);
    const versions = [big('a'), big('b')];
    writeAtomically(dir, payload({ key: versions[0] }));
    // The reader runs in its own process, in parallel with the swaps below. A read may find
    // the file gone once: its path was resolved through ..data into the version just removed
    // (the kubelet removes the old version right after the switch too); read again, it is
    // there. What must never happen is a partial or mixed file.
    const reader = spawn('sh', ['-c', `n=0
      while [ $n -lt 200 ]; do
        if v="$(cat "$1/key" 2>/dev/null)" || v="$(cat "$1/key")"; then printf '%s %s %s\\n' "\${#v}" "$(printf '%s' "$v" | head -c1)" "$(printf '%s' "$v" | tail -c1)"; else echo missing; fi
        n=$((n + 1))
      done`, 'sh', dir]);
    let out = '';
    reader.stdout.on('data', (d) => { out += d; });
    const exited = new Promise<number | null>((r) => reader.once('exit', r));
    // Swap only once the reader runs (a loaded machine can take long to start it), and for
    // as long as it reads, so that it meets both versions.
    while (!out && reader.exitCode === null) await new Promise((r) => setTimeout(r, 5));
    let swaps = 0;
    const deadline = Date.now() + 50_000;
    while (reader.exitCode === null && Date.now() < deadline) {
      writeAtomically(dir, payload({ key: versions[++swaps % 2] }));
      await new Promise((r) => setImmediate(r));
    }
    expect(await exited).toBe(0);
    const reads = out.trim().split('\n');
    expect(reads).toHaveLength(200);
    expect(swaps).toBeGreaterThan(10);
    expect(reads.filter((r) => r !== `${256 * 1024} a a` && r !== `${256 * 1024} b b`)).toEqual([]);
    expect(new Set(reads).size).toBe(2);
  }, 60_000);
});

describe('updateSecret', () => {
  const MANIFESTS = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: redis:7.2}]
      volumes:
        - {name: auth, secret: {secretName: redis-auth, defaultMode: 0400}}
        - {name: one, secret: {secretName: redis-auth, items: [{key: app-password, path: app}]}}
        - {name: other, secret: {secretName: unrelated}}
`;
  /** A pod of the fixture's Deployment with its volumes written, as bootPod does (no process runs). */
  function podOf(s: SimState, name: string, namespace = 'shop'): Pod {
    const wl = s.m.workloads[0];
    const p = { name, namespace, wl, spec: wl.spec, dir: join(s.dir, name), uidGid: { groups: [] }, volumes: new Map() } as unknown as Pod;
    prepareVolumes(s, p);
    s.podMap.set(name, p);
    return p;
  }
  const read = (p: Pod, volume: string, file: string): string => readFileSync(join(p.volumes.get(volume)!.dir, file), 'utf8');

  function cluster(): SimState {
    const s = new SimState({ manifests: MANIFESTS, secrets: { 'redis-auth': { 'app-password': 'old' }, unrelated: { x: 'y' } }, log: () => undefined });
    (s as { dir: string }).dir = tempDir();
    return s;
  }

  it('reaches every volume of every pod that mounts the Secret, each at its own moment within the skew, and only those', async () => {
    const s = cluster();
    const pods = ['web-a', 'web-b', 'web-c'].map((n) => podOf(s, n));
    const rollout = updateSecret(s, 'shop', 'redis-auth', { 'app-password': 'new', 'app-password-previous': 'old' }, { maxSkewMs: 300 });
    expect(rollout.schedule.map((x) => `${x.pod}/${x.volume}`).sort()).toEqual(
      ['web-a/auth', 'web-a/one', 'web-b/auth', 'web-b/one', 'web-c/auth', 'web-c/one']);
    for (const x of rollout.schedule) expect(x.afterMs).toBeGreaterThanOrEqual(0);
    for (const x of rollout.schedule) expect(x.afterMs).toBeLessThan(300);
    await rollout.settled;
    for (const p of pods) {
      expect(read(p, 'auth', 'app-password')).toBe('new');
      expect(read(p, 'auth', 'app-password-previous')).toBe('old');
      expect(readdirSync(p.volumes.get('one')!.dir).filter((e) => !e.startsWith('..'))).toEqual(['app']);
      expect(read(p, 'one', 'app')).toBe('new');
      expect(read(p, 'other', 'x')).toBe('y');
      expect(lstatSync(join(p.volumes.get('auth')!.dir, 'app-password')).isSymbolicLink()).toBe(true);
    }
    expect(s.events.filter((e) => e.includes('kubelet: secret redis-auth updated in pod'))).toHaveLength(6);
  });

  it('a pod keeps the old files until its own moment comes', async () => {
    const s = cluster();
    const p = podOf(s, 'web-a');
    const rollout = updateSecret(s, 'shop', 'redis-auth', { 'app-password': 'new' }, { maxSkewMs: 60_000 });
    // Nothing has fired yet (the timers run on the event loop, which this test has not yielded to).
    expect(read(p, 'auth', 'app-password')).toBe('old');
    for (const pending of s.secretSyncs) { clearTimeout(pending.timer); pending.resolve(); }
    await rollout.settled;
  });

  it('pods created after the update start with the new data; other namespaces are untouched', async () => {
    const s = cluster();
    const elsewhere = podOf(s, 'web-x', 'other');
    await updateSecret(s, 'shop', 'redis-auth', { 'app-password': 'new' }).settled;
    expect(read(podOf(s, 'web-later'), 'auth', 'app-password')).toBe('new');
    expect(read(elsewhere, 'auth', 'app-password')).toBe('old');
  });

  it('an update that lacks a key a volume lists leaves that volume as it was', async () => {
    const s = cluster();
    const p = podOf(s, 'web-a');
    await updateSecret(s, 'shop', 'redis-auth', { 'sentinel-password': 'x' }).settled;
    expect(read(p, 'one', 'app')).toBe('old');
    expect(read(p, 'auth', 'sentinel-password')).toBe('x');
    expect(s.events.some((e) => e.includes('cannot update secret redis-auth in pod web-a: key app-password missing'))).toBe(true);
  });
});
