// What a test or a failure report reads from the cluster: pod summaries, IPs, container
// logs (current and previous instance), and a one-line description.
import { existsSync, readFileSync } from 'node:fs';
import { SimState } from './state';
import { PodInfo } from './types';

export function pods(s: SimState): PodInfo[] {
  return [...s.podMap.values()].map((p) => ({
    name: p.name,
    ip: p.ip,
    ready: s.podReady(p),
    phase: p.phase,
    controller: `${p.wl.kind}/${p.wl.name}`,
    ns: p.namespace,
    netns: p.net?.netns ?? '',
    restarts: p.containers.reduce((n, c) => n + c.restarts, 0),
    partitioned: p.partitioned,
    revision: p.revision,
  }));
}

export function podIp(s: SimState, name: string): string {
  const p = s.podMap.get(name) ?? s.clients.get(name);
  const ip = p ? ('ip' in p ? p.ip : p.net.ip) : '';
  if (!ip) throw new Error(`pod ${name} has no IP`);
  return ip;
}

// Pods of one controller ("redis-sentinel" or "Deployment/redis-sentinel"), by name.
export function podsOf(s: SimState, workload: string): PodInfo[] {
  const n = workload.includes('/') ? workload : undefined;
  return pods(s)
    .filter((p) => (n ? p.controller === n : p.controller.endsWith(`/${workload}`)))
    .sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
}

// previous: the log of the pod's instance before the current one (deleted and recreated).
export function logs(s: SimState, pod: string, container?: string, lines = 50, opts: { previous?: boolean } = {}): string {
  const p = s.podMap.get(pod);
  const cname = container ?? p?.containers[0]?.spec.name ?? [...s.lastLogs.keys()].find((k) => k.startsWith(`${pod}/`))?.split('/')[1];
  const file = (opts.previous ? s.previousLogs : s.lastLogs).get(`${pod}/${cname}`);
  if (!file || !existsSync(file)) return '';
  return readFileSync(file, 'utf8').split('\n').slice(-lines - 1).join('\n');
}

// One line per pod, for failure messages.
export function describe(s: SimState): string {
  return pods(s).map((p) => {
    let waiting = s.podMap.get(p.name)?.waiting;
    if (waiting === 'creating its network') waiting += `; network changes: ${s.net.busy()}`;
    return `${p.name}=${p.phase}${p.ready ? '/ready' : ''}@${p.ip || '-'}${waiting ? ` (${waiting})` : ''}`;
  }).join(', ');
}
