// Secret volumes as the kubelet writes them, and Secret updates while pods run.
//
// The kubelet's atomic writer (pkg/volume/util/atomic_writer.go) never writes a mounted
// Secret's files in place: each version goes into a fresh timestamped directory
// ("..2026_11_30_03_50_00.123456"), a symlink "..data" points at the current one and is
// replaced with rename(2) (atomic), and each key is a symlink "<key> -> ..data/<key>".
// New keys get their symlink just after the swap, removed keys lose it just after, and
// the old directory is deleted last. A reader opening "<dir>/<key>" therefore sees the
// old file or the new one, never a partial one.
//
// An update reaches each pod when its node's kubelet next syncs the pod (up to a minute
// or two apart on different nodes): updateSecret() applies it to every pod that mounts
// the Secret at its own random moment within maxSkewMs; pods created after the update
// start with the new data.
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Obj } from './manifests';
import { SimState } from './state';
import { Pod } from './types';

/** One file of a volume's payload: its path inside the volume, content and mode. */
export interface PayloadFile {
  content: string;
  mode: number;
}

const DATA = '..data';
const DATA_TMP = '..data_tmp';

function timestampDirPrefix(): string {
  const d = new Date();
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `..${d.getUTCFullYear()}_${p(d.getUTCMonth() + 1)}_${p(d.getUTCDate())}_${p(d.getUTCHours())}_${p(d.getUTCMinutes())}_${p(d.getUTCSeconds())}.`;
}

/** The payload the volume holds now (read through ..data), or undefined before the first write. */
function currentPayload(dir: string): Map<string, PayloadFile> | undefined {
  const data = join(dir, DATA);
  if (!existsSync(data)) return undefined;
  const out = new Map<string, PayloadFile>();
  const walk = (rel: string): void => {
    for (const e of readdirSync(join(data, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else out.set(r, { content: readFileSync(join(data, r), 'utf8'), mode: statSync(join(data, r)).mode & 0o7777 });
    }
  };
  walk('');
  return out;
}

function samePayload(a: Map<string, PayloadFile>, b: Map<string, PayloadFile>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w || w.content !== v.content || w.mode !== v.mode) return false;
  }
  return true;
}

/**
 * Writes `payload` into the volume directory `dir` the kubelet's way (see the header).
 * `group`: fsGroup ownership (files group-readable). Returns false when the volume
 * already holds exactly this payload (the kubelet then writes nothing).
 */
export function writeAtomically(dir: string, payload: Map<string, PayloadFile>, group?: number): boolean {
  mkdirSync(dir, { recursive: true });
  const before = currentPayload(dir);
  const final = new Map([...payload].map(([k, v]) => [k, { ...v, mode: group !== undefined ? v.mode | 0o440 : v.mode }]));
  if (before && samePayload(before, final)) return false;
  const oldTs = existsSync(join(dir, DATA)) ? readlinkSync(join(dir, DATA)) : undefined;
  // 1. the new version, complete, in a directory nobody reads yet
  const ts = mkdtempSync(join(dir, timestampDirPrefix()));
  chmodSync(ts, 0o755);
  if (group !== undefined) chownSync(ts, 0, group);
  for (const [path, f] of final) {
    const file = join(ts, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, f.content);
    if (group !== undefined) chownSync(file, 0, group);
    chmodSync(file, f.mode);
  }
  // 2. the switch: one rename of a symlink
  rmSync(join(dir, DATA_TMP), { force: true });
  symlinkSync(ts.slice(dir.length + 1), join(dir, DATA_TMP));
  renameSync(join(dir, DATA_TMP), join(dir, DATA));
  // 3. a user-visible symlink for each new top-level name, 4. none for names gone
  const top = new Set([...final.keys()].map((p) => p.split('/')[0]));
  for (const name of top) {
    if (!existsSync(join(dir, name)) && !isSymlink(join(dir, name))) symlinkSync(`${DATA}/${name}`, join(dir, name));
  }
  for (const e of readdirSync(dir)) {
    if (!e.startsWith('..') && !top.has(e)) unlinkSync(join(dir, e));
  }
  // 5. the old version
  if (oldTs) rmSync(join(dir, oldTs), { recursive: true, force: true });
  return true;
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * What a Secret volume (`source` = the volume's `secret` field) holds for `data`: every
 * key, or only `items`. Throws naming the key when an item's key is missing, unless the
 * volume is `optional` (then, as in Kubernetes, a missing key is left out).
 */
export function secretPayload(source: Obj, data: Record<string, string>): Map<string, PayloadFile> {
  const items: { key: string; path: string; mode?: number }[] = source.items ?? Object.keys(data).map((k) => ({ key: k, path: k }));
  const out = new Map<string, PayloadFile>();
  for (const it of items) {
    if (!(it.key in data)) {
      if (source.optional) continue;
      throw new Error(`key ${it.key} missing in secret ${source.secretName}`);
    }
    out.set(it.path, { content: data[it.key], mode: it.mode ?? source.defaultMode ?? 0o644 });
  }
  return out;
}

/** The fsGroup-style group a pod's volumes are owned by (see prepareVolumes). */
export type VolumeGroup = number | undefined;

/** Writes (or rewrites) one Secret volume of pod `p` from the Secret's current data. */
export function syncSecretVolume(s: SimState, p: Pod, volume: Obj, dir: string, group: VolumeGroup): boolean {
  const data = s.secretData(p.namespace, volume.secret.secretName);
  if (!data) {
    if (volume.secret.optional) return writeAtomically(dir, new Map(), group);
    throw new Error(`secret ${volume.secret.secretName} not found for pod ${p.name}`);
  }
  return writeAtomically(dir, secretPayload(volume.secret, data), group);
}

export interface SecretRollout {
  /** Each pod mounting the Secret, and when (ms after the update) its kubelet applies it. */
  schedule: { pod: string; volume: string; afterMs: number }[];
  /** Resolves once every scheduled pod has the new files (or is gone, or the cluster stopped). */
  settled: Promise<void>;
}

/**
 * Replaces the data of Secret `namespace/name` (as `kubectl apply` of the whole Secret
 * would) and lets each pod's kubelet pick it up at a random moment within maxSkewMs.
 * Pods created from now on mount the new data.
 */
export function updateSecret(s: SimState, namespace: string, name: string, data: Record<string, string>, opts: { maxSkewMs?: number } = {}): SecretRollout {
  s.secretUpdates.set(`${namespace}/${name}`, { ...data });
  s.event(`secret ${namespace}/${name} updated (keys: ${Object.keys(data).sort().join(', ')}); kubelets apply it within ${opts.maxSkewMs ?? 0} ms`);
  const schedule: SecretRollout['schedule'] = [];
  const done: Promise<void>[] = [];
  for (const p of s.podMap.values()) {
    if (p.namespace !== namespace) continue;
    for (const v of p.spec.volumes ?? []) {
      if (v.secret?.secretName !== name) continue;
      const afterMs = Math.floor(Math.random() * (opts.maxSkewMs ?? 0));
      schedule.push({ pod: p.name, volume: v.name, afterMs });
      done.push(new Promise<void>((resolve) => {
        const sync = (): void => {
          s.secretSyncs.delete(pending);
          resolve();
          const vol = p.volumes.get(v.name);
          if (s.stopped || s.podMap.get(p.name) !== p || !vol) return; // gone: a new pod mounts the new data
          try {
            if (syncSecretVolume(s, p, v, vol.dir, p.volumeGroup)) s.event(`kubelet: secret ${name} updated in pod ${p.name} (volume ${v.name}), ${afterMs} ms after the update`);
          } catch (e) {
            // The kubelet keeps the old files and retries at its next sync.
            s.event(`kubelet: cannot update secret ${name} in pod ${p.name}: ${(e as Error).message}`);
          }
        };
        const pending = { timer: setTimeout(sync, afterMs), resolve };
        s.secretSyncs.add(pending);
      }));
    }
  }
  return { schedule, settled: Promise.all(done).then(() => undefined) };
}
