// Network faults and stalls: one pod's link down (partition/heal), a split of the pods
// into groups that exchange no packet (partitionGroups), and every process of a pod
// stopped (freeze/thaw).
import { join } from 'node:path';
import { SimState } from './state';
import { run } from './util';

// Takes the pod's (or client pod's) link down (up: false) or up again.
export async function setLink(s: SimState, name: string, up: boolean): Promise<void> {
  const target = s.podMap.get(name) ?? s.clients.get(name);
  const net = target?.net;
  if (!target || !net) throw new Error(`no pod ${name} with a network`);
  await s.net.setLink(net, up);
  target.partitioned = !up;
  s.event(`${up ? 'heal' : 'partition'} ${name}`);
}

// A network split: members (pod or client-pod names) of different groups exchange no
// packet in either direction, established connections included; packets are dropped
// silently (no RST, no ICMP), as in a real split. Members of one group, and pods in no
// group, are unaffected. Replaces any earlier partitionGroups(). A pod listed by name
// and (re)created while the split is in force is split too (a StatefulSet pod keeps
// its name; a replaced Deployment pod gets a new name and is not).
export async function partitionGroups(s: SimState, groups: string[][]): Promise<void> {
  const names = groups.flat();
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new Error(`partitionGroups: ${dup} is listed twice`);
  const unknown = names.filter((n) => !knownPodName(s, n));
  if (unknown.length) throw new Error(`partitionGroups: no pod or client pod named ${unknown.join(', ')}`);
  s.partitionSpec = groups.map((g) => [...g]);
  await applyPartitions(s);
  s.event(`partition groups ${groups.map((g) => `{${g.join(', ')}}`).join(' / ')}`);
}

// Removes the split of partitionGroups(): every packet flows again.
export async function healPartitions(s: SimState): Promise<void> {
  s.partitionSpec = [];
  await applyPartitions(s);
  s.event('partition groups healed');
}

function knownPodName(s: SimState, n: string): boolean {
  return s.podMap.has(n) || s.clients.has(n) || s.holds.has(n)
    || s.statefulSetOf(n) !== undefined;
}

// Rewrites the bridge's drop rules from the names in force and the current veths.
// `extra`: veths of client pods not registered yet.
export async function applyPartitions(s: SimState, extra: Record<string, string> = {}): Promise<void> {
  if (s.stopped) return;
  const veth = (n: string): string | undefined => (s.podMap.get(n)?.net ?? s.clients.get(n)?.net)?.hostVeth ?? extra[n];
  const groups = s.partitionSpec.map((g) => g.map(veth).filter((v): v is string => !!v));
  await s.net.setPartitions(groups, join(s.dir, 'partition.nft'));
}

// Every process of the pod stopped (SIGSTOP), as a stalled node or a long VM pause
// does: its sockets stay open and nothing answers. SIGCONT resumes them.
export async function signalPod(s: SimState, name: string, signal: NodeJS.Signals): Promise<void> {
  const p = s.podMap.get(name);
  if (!p?.net) throw new Error(`no running pod ${name}`);
  const pids = (await run('ip', ['netns', 'pids', p.net.netns])).split('\n').map(Number).filter((n) => n > 0);
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // exited meanwhile
    }
  }
  s.event(`${signal === 'SIGSTOP' ? 'froze' : 'thawed'} pod ${name} (${pids.length} processes)`);
}
