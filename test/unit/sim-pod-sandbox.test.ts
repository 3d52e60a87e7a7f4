// The simulator's pod start when its network cannot be made at once (harness/sim/pods.ts):
// like a kubelet after FailedCreatePodSandBox it tries again, and while it waits the pod
// list says why. Without the retry a pod whose first `ip` command failed stayed Pending
// with no IP for good, and a live test only saw "timed out waiting for all pods ready".
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { PodNet } from '../../harness/sim/network';
import { createPod, terminate } from '../../harness/sim/pods';
import { describe as describePods } from '../../harness/sim/queries';
import { SimState } from '../../harness/sim/state';
import { waitFor } from '../../harness/sim/util';

// One Deployment whose only container the simulator cannot run (no process starts) and no
// NetworkPolicy (no nft call): what is left of a pod's start is its network and volumes.
const MANIFESTS = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: sandbox }
spec:
  replicas: 1
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
        - { name: web, image: "nginx:1.25" }
`;

/** A network whose first `failures` pod setups fail as a timed-out ip command does. */
function flakyNetwork(failures: number): { calls: () => number; removed: string[]; addPod: () => Promise<PodNet>; removePod: (p: PodNet) => Promise<void>; busy: () => string } {
  let calls = 0;
  const removed: string[] = [];
  return {
    calls: () => calls,
    removed,
    addPod: async () => {
      calls++;
      if (calls <= failures) throw new Error('ip -n rsim-br link add v1 type veth peer name eth0: Command failed: timed out');
      return { netns: `ns-${calls}`, ip: `10.213.0.${calls + 9}`, hostVeth: `v${calls}` };
    },
    removePod: async (p: PodNet) => { removed.push(p.netns); },
    busy: () => 'idle',
  };
}

const states: SimState[] = [];
afterEach(() => { for (const s of states.splice(0)) rmSync(s.dir, { recursive: true, force: true }); });

function state(net: ReturnType<typeof flakyNetwork>): SimState {
  const s = new SimState({ manifests: MANIFESTS, restartDelayMs: 50, log: () => undefined });
  (s as unknown as { net: unknown }).net = net;
  states.push(s);
  return s;
}

describe('a pod whose network setup fails', () => {
  it('is tried again until it works, then runs with the IP of the setup that worked', async () => {
    const net = flakyNetwork(3);
    const s = state(net);
    const p = createPod(s, s.m.workloads[0]);
    await p.boot;
    expect(net.calls()).toBe(4);
    expect(p.phase).toBe('Running');
    expect(p.ip).toBe('10.213.0.13');
    expect(p.waiting).toBeUndefined();
    const failures = s.events.filter((e) => e.includes(`pod ${p.name}: network setup failed `));
    expect(failures).toHaveLength(3);
    expect(failures[2]).toMatch(/failed 3x, retrying: .*timed out/);
  });

  it('says why it is Pending while it waits, in the line failure messages quote', async () => {
    const net = flakyNetwork(1_000);
    const s = state(net);
    const p = createPod(s, s.m.workloads[0]);
    await waitFor(() => net.calls() >= 2, 5000, 'a second setup');
    expect(p.phase).toBe('Pending');
    expect(describePods(s)).toMatch(new RegExp(`^${p.name}=Pending@- \\(network setup failed \\dx, retrying: .*timed out\\)$`));
    // Deleted while it waits: the retries stop and nothing is left to remove.
    await terminate(s, p, false);
    const after = net.calls();
    await new Promise((r) => setTimeout(r, 200));
    expect(net.calls()).toBe(after);
    expect(s.podMap.has(p.name)).toBe(false);
    expect(net.removed).toEqual([]);
  });
});

describe('waitFor', () => {
  it('describes the state at the timeout, not at the call, when given a function', async () => {
    let state = 'Pending';
    const waiting = waitFor(() => false, 150, () => `pod ready (${state})`, 20);
    state = 'Running, not ready';
    await expect(waiting).rejects.toThrow(/^timed out after 150 ms waiting for pod ready \(Running, not ready\)$/);
  });
});
