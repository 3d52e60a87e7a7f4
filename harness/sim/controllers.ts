// The controllers: StatefulSets (ordinal pods with stable names, OrderedReady or
// Parallel) and Deployments (a ReplicaSet that replaces a deleted pod at once), held
// recreations, and rolling updates of both.
import { Workload } from './manifests';
import { createPod, deletePod, terminate } from './pods';
import { SimState, randomName } from './state';
import { waitFor } from './util';

export async function reconcile(s: SimState): Promise<void> {
  if (s.reconciling || s.stopped) return;
  s.reconciling = true;
  try {
    const now = Date.now();
    for (const [name, h] of s.holds) if (h.until <= now) s.holds.delete(name);
    for (const wl of s.m.workloads) {
      if (wl.kind === 'StatefulSet') reconcileStatefulSet(s, wl);
      else if (!s.rolling.has(wl)) reconcileDeployment(s, wl);
    }
  } finally {
    s.reconciling = false;
  }
}

// Ordinal pods with stable names; OrderedReady creates one at a time and waits for
// it to be ready; a pod is recreated only once its predecessor is fully gone.
function reconcileStatefulSet(s: SimState, wl: Workload): void {
  for (let i = 0; i < wl.replicas; i++) {
    const name = `${wl.name}-${i}`;
    const p = s.podMap.get(name);
    if (!p) {
      if (s.holds.has(name)) continue;
      createPod(s, wl, name);
      if (!wl.parallel) return;
    } else if (!wl.parallel && (p.terminating || !s.podReady(p))) return;
  }
}

// A ReplicaSet replaces a deleted pod as soon as it starts terminating.
function reconcileDeployment(s: SimState, wl: Workload): void {
  const active = [...s.podMap.values()].filter((p) => p.wl === wl && !p.terminating).length;
  const held = [...s.holds.values()].filter((h) => h.wl === wl).length;
  for (let n = active; n < wl.replicas - held; n++) createPod(s, wl);
}

// Every workload has its replicas (less those held back) and all of them are ready.
export function allReady(s: SimState): boolean {
  for (const wl of s.m.workloads) {
    const pods = [...s.podMap.values()].filter((p) => p.wl === wl);
    const held = [...s.holds.values()].filter((h) => h.wl === wl).length;
    if (pods.some((p) => p.terminating || !s.podReady(p))) return false;
    if (pods.length !== wl.replicas - held) return false;
  }
  return true;
}

// RollingUpdate of a Deployment to a new pod-template-hash: surge new pods, wait
// until they are ready, then delete old pods gracefully, one batch at a time.
export async function rolloutDeployment(s: SimState, name: string, timeoutMs = 300_000): Promise<void> {
  const wl = s.workload('Deployment', name);
  const deadline = Date.now() + timeoutMs;
  s.rolling.add(wl);
  const terminations: Promise<void>[] = [];
  try {
    s.revisions.set(wl, randomName(9));
    const rev = s.revisions.get(wl);
    const surge = wl.maxSurge || (wl.maxUnavailable ? 0 : 1);
    const step = Math.max(surge, wl.maxUnavailable, 1);
    for (;;) {
      const old = [...s.podMap.values()].filter((p) => p.wl === wl && p.revision !== rev && !p.terminating);
      if (!old.length) break;
      const batch = old.slice(0, step);
      if (surge === 0) terminations.push(...batch.map((p) => terminate(s, p, true)));
      const fresh = batch.map(() => createPod(s, wl));
      await waitFor(() => fresh.every((p) => s.podReady(p)), deadline - Date.now(), `rollout of ${name}: ${fresh.map((p) => p.name).join(', ')} ready`);
      if (surge > 0) terminations.push(...batch.map((p) => terminate(s, p, true)));
    }
    await Promise.all(terminations);
  } finally {
    s.rolling.delete(wl);
  }
  s.event(`rollout of Deployment/${name} complete`);
}

// RollingUpdate of a StatefulSet to a new revision, as its controller does it: delete
// the pods from the highest ordinal down, each recreated (same name, new IP, the new
// revision) and Ready before the next.
export async function rolloutStatefulSet(s: SimState, name: string, timeoutMs = 300_000): Promise<void> {
  const wl = s.workload('StatefulSet', name);
  const deadline = Date.now() + timeoutMs;
  const rev = randomName(9);
  s.revisions.set(wl, rev);
  s.event(`rollout of StatefulSet/${name} to revision ${rev}`);
  for (let i = wl.replicas - 1; i >= 0; i--) {
    const pod = `${name}-${i}`;
    const before = s.podMap.get(pod)?.uid;
    await deletePod(s, pod, { grace: true });
    await waitFor(() => { const p = s.podMap.get(pod); return p && p.uid !== before && s.podReady(p); }, deadline - Date.now(), `${pod} recreated and ready`);
  }
  s.event(`rollout of StatefulSet/${name} complete`);
}
