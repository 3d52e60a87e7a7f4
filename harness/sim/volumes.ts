// A pod's volumes as host directories: emptyDir, ConfigMap copies, Secrets in the kubelet's
// layout (secrets.ts), and PersistentVolumeClaims (a claim template's PVC is "<claim>-<pod>"
// and outlives the pod), with fsGroup ownership; and wiping a StatefulSet pod's PVCs (a lost disk).
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Obj } from './manifests';
import { syncSecretVolume } from './secrets';
import { SimState } from './state';
import { Pod } from './types';

export function prepareVolumes(s: SimState, p: Pod): void {
  const { fsGroup } = p.uidGid;
  const runAs = p.spec.securityContext?.runAsUser ?? p.spec.containers.find((c) => c.securityContext?.runAsUser !== undefined)?.securityContext?.runAsUser;
  // Without fsGroup a non-root pod could not write its PVC on most clusters; the
  // simulator still makes volumes usable, but says so once.
  const group: number | undefined = fsGroup ?? (runAs ? p.spec.securityContext?.runAsGroup ?? runAs : undefined);
  p.volumeGroup = group;
  if (fsGroup === undefined && runAs) s.notice(`${p.wl.name}: runAsUser ${runAs} without fsGroup; volumes made group-owned by ${group} anyway (a real cluster may need fsGroup)`);
  const claims = new Set(p.wl.claimTemplates);
  // Claim templates become volumes of the same name (as the StatefulSet controller does).
  const vols: Obj[] = [...(p.spec.volumes ?? [])];
  for (const n of p.wl.claimTemplates) if (!vols.some((v) => v.name === n)) vols.push({ name: n, persistentVolumeClaim: { claimName: n } });
  for (const v of vols) {
    const dir = join(p.dir, 'volumes', v.name);
    if (v.emptyDir) {
      mkdirSync(dir, { recursive: true });
      chmodSync(dir, 0o777);
      p.volumes.set(v.name, { dir, readOnly: false });
    } else if (v.secret) {
      // The kubelet's layout (..data symlink swapped on update): see secrets.ts.
      syncSecretVolume(s, p, v, dir, group);
      p.volumes.set(v.name, { dir, readOnly: true });
      continue;
    } else if (v.configMap) {
      const data = s.m.configMaps.get(`${p.namespace}/${v.configMap.name}`);
      const src: Obj = v.configMap;
      if (!data && !src.optional) throw new Error(`configmap ${src.name} not found for pod ${p.name}`);
      mkdirSync(dir, { recursive: true });
      const items: { key: string; path: string; mode?: number }[] = data ? src.items ?? Object.keys(data).map((k) => ({ key: k, path: k })) : [];
      for (const it of items) {
        if (!data || !(it.key in data)) throw new Error(`key ${it.key} missing in ${src.name}`);
        const f = join(dir, it.path);
        mkdirSync(dirname(f), { recursive: true });
        writeFileSync(f, data[it.key]);
        let mode = it.mode ?? src.defaultMode ?? 0o644;
        if (group !== undefined) { chownSync(f, 0, group); mode |= 0o440; }
        chmodSync(f, mode);
      }
      p.volumes.set(v.name, { dir, readOnly: true });
      continue;
    } else if (v.persistentVolumeClaim) {
      const claim: string = v.persistentVolumeClaim.claimName;
      // A claim template's PVC is "<claim>-<pod>" and outlives the pod.
      const pvc = join(s.dir, 'pvc', claims.has(claim) ? `${claim}-${p.name}` : claim);
      mkdirSync(pvc, { recursive: true });
      p.volumes.set(v.name, { dir: pvc, readOnly: v.persistentVolumeClaim.readOnly === true });
    } else {
      s.notice(`${p.wl.name}: volume ${v.name} of type ${Object.keys(v).filter((k) => k !== 'name').join(',')} is not simulated (empty directory instead)`);
      mkdirSync(dir, { recursive: true });
      p.volumes.set(v.name, { dir, readOnly: false });
    }
    if (group !== undefined) chownTree(p.volumes.get(v.name)!.dir, group);
  }
}

// fsGroup semantics: group-owned, group-writable, setgid directories.
function chownTree(dir: string, gid: number): void {
  const walk = (f: string): void => {
    const st = statSync(f);
    chownSync(f, st.uid, gid);
    chmodSync(f, (st.mode & 0o7777) | (st.isDirectory() ? 0o2070 : 0o060));
    if (st.isDirectory()) for (const e of readdirSync(f)) walk(join(f, e));
  };
  walk(dir);
}

// Empties every PVC directory of a StatefulSet pod (its claim-template volumes), as a
// lost or re-provisioned disk: the recreated pod starts on empty volumes. The pod must
// not exist: delete it with recreate: false first (or use deletePod's wipeVolumes).
export function wipeVolumes(s: SimState, pod: string): void {
  const p = s.podMap.get(pod);
  if (p) throw new Error(`wipeVolumes(${pod}): the pod exists (${p.phase}); delete it with recreate: false first`);
  const wl = s.statefulSetOf(pod);
  if (!wl?.claimTemplates.length) throw new Error(`wipeVolumes(${pod}): not a StatefulSet pod with volume claim templates`);
  const wiped: string[] = [];
  for (const claim of wl.claimTemplates) {
    const dir = join(s.dir, 'pvc', `${claim}-${pod}`);
    if (!existsSync(dir)) continue;
    for (const e of readdirSync(dir)) rmSync(join(dir, e), { recursive: true, force: true });
    wiped.push(`${claim}-${pod}`);
  }
  s.event(`wiped volumes of ${pod}: ${wiped.join(', ') || 'none existed yet'}`);
}
