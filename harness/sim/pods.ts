// Pods: creation (sandbox directory, network namespace, volumes, init containers in
// order, then the main containers), kubelet-style termination, and what a test does to
// whole pods: delete (graceful or forced, recreated now, later or when released), stop
// and start them all.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prepareContainer, startContainer, stopContainer } from './containers';
import { publish, resolvConf } from './dns';
import { startDnsServer } from './dns-server';
import { isHaproxyImage } from './manifests';
import { ContainerSpec, Workload, imageRunnable } from './manifests';
import { applyPartitions } from './network-faults';
import { applyNetworkPolicies } from './network-policy';
import { logs } from './queries';
import { SimState, randomName } from './state';
import { Container, Pod } from './types';
import { sleep, waitFor } from './util';
import { prepareVolumes, wipeVolumes } from './volumes';

export function createPod(s: SimState, wl: Workload, name?: string): Pod {
  const rev = s.revisions.get(wl) ?? '';
  const podName = name ?? `${wl.name}-${rev}-${randomName(5)}`;
  const spec = wl.spec;
  const uid = ++s.uidSeq;
  const sc = spec.securityContext ?? {};
  const p: Pod = {
    name: podName,
    uid,
    namespace: wl.namespace,
    wl,
    revision: rev,
    labels: wl.labels,
    spec,
    hostname: spec.hostname ?? podName,
    subdomain: wl.kind === 'StatefulSet' ? wl.serviceName : spec.subdomain,
    dir: join(s.dir, 'pods', `${podName}.${uid}`),
    ip: '',
    phase: 'Pending',
    terminating: false,
    partitioned: false,
    containers: [],
    initContainers: [],
    volumes: new Map(),
    uidGid: { fsGroup: sc.fsGroup, groups: [...(sc.fsGroup !== undefined ? [sc.fsGroup] : []), ...(sc.supplementalGroups ?? [])] },
  };
  const mk = (cs: ContainerSpec, init: boolean): Container | undefined => {
    if (!imageRunnable(cs.image)) {
      s.notice(`skipping container ${wl.name}/${cs.name}: image ${cs.image} cannot run in the simulator`);
      return undefined;
    }
    const logFile = join(s.dir, 'logs', `${podName}.${uid}.${cs.name}.log`);
    const prior = s.lastLogs.get(`${podName}/${cs.name}`);
    if (prior && prior !== logFile) s.previousLogs.set(`${podName}/${cs.name}`, prior);
    s.lastLogs.set(`${podName}/${cs.name}`, logFile);
    return { pod: p, spec: cs, init, argv: [], logFile, tmpDir: join(p.dir, 'tmp', cs.name), running: false, ready: false, startedAt: 0, gen: 0, restarts: 0, held: false };
  };
  p.initContainers = (spec.initContainers ?? []).map((c) => mk(c, true)).filter((c): c is Container => !!c);
  p.containers = spec.containers.map((c) => mk(c, false)).filter((c): c is Container => !!c);
  s.podMap.set(podName, p);
  s.event(`create pod ${podName} (${wl.kind}/${wl.name})`);
  p.boot = bootPod(s, p).catch((e) => {
    // Shown even without a log callback: a pod that cannot start stalls every wait.
    if (!p.terminating) s.notice(`pod ${podName} failed to start: ${String(e)}`);
  });
  return p;
}

async function bootPod(s: SimState, p: Pod): Promise<void> {
  mkdirSync(p.dir, { recursive: true });
  // Like a kubelet's FailedCreatePodSandBox: a network that cannot be set up now (an ip
  // command failed or timed out, as it can while the kernel tears down many namespaces on
  // a busy machine) is tried again, and the pod says why it waits.
  for (let attempt = 1; !p.net; attempt++) {
    p.waiting = attempt === 1 ? 'creating its network' : p.waiting;
    try {
      p.net = await s.net.addPod();
    } catch (e) {
      if (p.terminating) return;
      p.waiting = `network setup failed ${attempt}x, retrying: ${String(e).slice(0, 300)}`;
      // The first failure is shown even without a log callback (as a start failure was).
      if (attempt === 1) s.notice(`pod ${p.name}: ${p.waiting}`);
      else s.event(`pod ${p.name}: ${p.waiting}`);
      await sleep(Math.min(s.restartDelayMs * attempt, 5000));
      if (p.terminating) return;
    }
  }
  p.waiting = undefined;
  p.ip = p.net.ip;
  if (p.terminating) return; // terminate() removes the network once this boot is over
  // Split before anything runs, if the pod is named in a partition in force.
  if (s.partitionSpec.some((g) => g.includes(p.name))) await applyPartitions(s);
  // The NetworkPolicies know the new IP (this pod's rules, and its IP in every peer's) before anything runs.
  await applyNetworkPolicies(s);
  writeFileSync(join(p.dir, 'resolv.conf'), resolvConf(p.namespace));
  // HAProxy resolves the Redis pods' names at run time with its own DNS client.
  if (p.containers.some((c) => isHaproxyImage(c.spec.image))) p.dnsServer = startDnsServer(p.net.netns, join(p.dir, 'hosts'));
  prepareVolumes(s, p);
  publish(s);
  s.event(`pod ${p.name} has IP ${p.ip}`);
  for (const c of [...p.initContainers, ...p.containers]) prepareContainer(s, c);
  // Init containers run to completion in order; a failed one is retried.
  for (const c of p.initContainers) {
    for (;;) {
      if (p.terminating) return;
      p.waiting = `init container ${c.spec.name} running`;
      startContainer(s, c);
      const code = await c.exited;
      if (code === 0) break;
      if (p.terminating) return;
      c.restarts++;
      s.event(`init container ${p.name}/${c.spec.name} exited ${code}; retrying\n${logs(s, p.name, c.spec.name, 10)}`);
      await sleep(s.restartDelayMs);
    }
  }
  p.waiting = undefined;
  if (p.terminating) return;
  p.phase = 'Running';
  for (const c of p.containers) startContainer(s, c);
  publish(s);
}

// Kubelet-style termination; resolves once the pod is gone (namespace deleted).
export async function terminate(s: SimState, p: Pod, graceful: boolean): Promise<void> {
  if (p.terminating) {
    await waitFor(() => !s.podMap.has(p.name) || s.podMap.get(p.name) !== p, 600_000, `pod ${p.name} gone`);
    return;
  }
  p.terminating = true;
  p.phase = 'Terminating';
  publish(s);
  void s.reconcile(); // a Deployment replaces the pod right away
  const graceMs = graceful ? (p.spec.terminationGracePeriodSeconds ?? 30) * 1000 : 0;
  s.event(`delete pod ${p.name} (${graceful ? `grace ${graceMs / 1000}s` : 'force'})`);
  await Promise.all([...p.initContainers, ...p.containers].map((c) => stopContainer(s, c, graceMs, graceful)));
  await p.boot;
  await Promise.all([...p.initContainers, ...p.containers].map((c) => stopContainer(s, c, 0, false)));
  p.dnsServer?.kill('SIGKILL');
  if (p.net) await s.net.removePod(p.net);
  void applyNetworkPolicies(s).catch(() => undefined);
  // emptyDirs and the pod's config/secret copies go with the pod; PVCs stay.
  rmSync(p.dir, { recursive: true, force: true });
  s.podMap.delete(p.name);
  publish(s);
  s.event(`pod ${p.name} deleted`);
  void s.reconcile();
}

// Like `kubectl delete pod`: graceful = preStop, SIGTERM, SIGKILL after the grace
// period; grace: false = SIGKILL now. The controller then recreates the pod (new IP)
// immediately, after `recreate` ms, or (recreate: false) when recreatePod() is called.
// wipeVolumes: the pod's PVCs are emptied once it is gone and before it is recreated
// (a lost or re-provisioned disk), see wipeVolumes().
export async function deletePod(s: SimState, name: string, opts: { grace?: boolean; recreate?: boolean | number; wipeVolumes?: boolean } = {}): Promise<void> {
  const p = s.podMap.get(name);
  if (!p) throw new Error(`no pod ${name}`);
  const r = opts.recreate ?? true;
  const until = r === false ? Infinity : r === true ? 0 : Date.now() + r;
  // With a wipe, recreation waits for it whatever `recreate` says.
  if (r !== true || opts.wipeVolumes) s.holds.set(name, { wl: p.wl, until: opts.wipeVolumes ? Infinity : until });
  await terminate(s, p, opts.grace ?? true);
  if (!opts.wipeVolumes) return;
  try {
    wipeVolumes(s, name);
  } finally {
    if (r === true) recreatePod(s, name);
    else if (r !== false) s.holds.set(name, { wl: p.wl, until });
  }
}

export function recreatePod(s: SimState, name: string): void {
  s.holds.delete(name);
  void s.reconcile();
}

// A cluster-wide stop: every pod deleted (gracefully unless grace: false), none
// recreated until startAllPods(). Returns the names of the pods deleted.
export async function stopAllPods(s: SimState, opts: { grace?: boolean } = {}): Promise<string[]> {
  const names = [...s.podMap.values()].filter((p) => !p.terminating).map((p) => p.name);
  await Promise.all(names.map((n) => deletePod(s, n, { grace: opts.grace ?? true, recreate: false })));
  s.event(`stopped all pods (${names.length})`);
  return names;
}

// Releases every held recreation (pods deleted with recreate: false or a delay, or by
// stopAllPods): the controllers create them again (StatefulSet pods under their names).
export function startAllPods(s: SimState): void {
  s.event(`starting all held pods (${[...s.holds.keys()].join(', ') || 'none'})`);
  s.holds.clear();
  void s.reconcile();
}
