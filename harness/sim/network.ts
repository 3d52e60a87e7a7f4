// Pod networking: a bridge inside a namespace of its own, one namespace per pod
// joined to it by a veth pair, addresses from a private /16 that exists only inside
// these namespaces (no routes, no NAT: nothing can reach the outside world).
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { pidAlive, run, runSync } from './util';

export const PREFIX = 'rsim';
const SUBNET = '10.213'; // 10.213.0.0/16
const PARTITION_TABLE = 'rsim_partition'; // nftables table in the bridge namespace

export interface PodNet {
  netns: string; // name under /run/netns
  ip: string;
  hostVeth: string; // bridge-side end, inside the bridge namespace
}

export class Network {
  readonly bridgeNs: string;
  private next = 10; // never reused within a run: a recreated pod gets a new IP
  private seq = 0;

  constructor(readonly runId: string) {
    this.bridgeNs = `${PREFIX}-${runId}-br`;
  }

  async start(): Promise<void> {
    await run('ip', ['netns', 'add', this.bridgeNs]);
    await run('ip', ['-n', this.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge']);
    await run('ip', ['-n', this.bridgeNs, 'link', 'set', 'br0', 'up']);
    await run('ip', ['-n', this.bridgeNs, 'link', 'set', 'lo', 'up']);
  }

  // iproute2 calls are serialized: concurrent first uses of /run/netns can race.
  private queue: Promise<unknown> = Promise.resolve();
  private current: { what: string; since: number } | undefined;
  private serial<T>(what: string, f: () => Promise<T>): Promise<T> {
    const r = this.queue.then(() => {
      this.current = { what, since: Date.now() };
      return f();
    }).finally(() => { this.current = undefined; });
    this.queue = r.catch(() => undefined);
    return r;
  }

  /** What the serialized network changes are busy with, for a pod that waits on them. */
  busy(): string {
    return this.current ? `${this.current.what} for ${Date.now() - this.current.since} ms` : 'idle';
  }

  addPod(): Promise<PodNet> {
    return this.serial('adding a pod', () => this.addPodNow());
  }

  // A failed step removes what the earlier ones made (the namespace, and with it both veth
  // ends), so the caller can try again with a fresh name and IP.
  private async addPodNow(): Promise<PodNet> {
    const n = this.next++;
    const ip = `${SUBNET}.${Math.floor(n / 250)}.${(n % 250) + 1}`;
    const netns = `${PREFIX}-${this.runId}-p${++this.seq}`;
    const hostVeth = `v${this.seq}`;
    const b = ['-n', this.bridgeNs];
    await run('ip', ['netns', 'add', netns]);
    try {
      await run('ip', [...b, 'link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
      await run('ip', [...b, 'link', 'set', hostVeth, 'master', 'br0', 'up']);
      await run('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
      await run('ip', ['-n', netns, 'addr', 'add', `${ip}/16`, 'dev', 'eth0']);
      await run('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
    } catch (e) {
      await run('ip', ['netns', 'del', netns]).catch(() => undefined);
      await run('ip', [...b, 'link', 'del', hostVeth]).catch(() => undefined);
      throw e;
    }
    return { netns, ip, hostVeth };
  }

  // Deleting the namespace also deletes both veth ends.
  removePod(p: PodNet): Promise<void> {
    killNetnsProcesses(p.netns);
    return this.serial(`removing ${p.netns}`, () => run('ip', ['netns', 'del', p.netns]).then(() => undefined, () => undefined));
  }

  // A partition takes the bridge-side link down: the pod keeps running and its
  // sockets stay open, but no packet crosses (like a node losing its network).
  async setLink(p: PodNet, up: boolean): Promise<void> {
    await this.serial(`setting ${p.hostVeth} ${up ? 'up' : 'down'}`, () => run('ip', ['-n', this.bridgeNs, 'link', 'set', p.hostVeth, up ? 'up' : 'down']));
  }

  // Partitions between groups of pods: the bridge drops every frame that enters from
  // a port of one group and leaves by a port of another (both directions, established
  // connections and ARP included, silently: no RST, no ICMP). Ports in no group, and
  // ports of the same group, are unaffected. Each call replaces the whole rule set
  // atomically (one nft transaction); no groups (or fewer than two) removes it.
  // `groups` holds bridge-side veth names (PodNet.hostVeth).
  setPartitions(groups: string[][], scriptFile: string): Promise<void> {
    const live = groups.filter((g) => g.length > 0);
    const q = (names: string[]): string => `{ ${names.map((n) => `"${n}"`).join(', ')} }`;
    const rules: string[] = [];
    for (const a of live) for (const b of live) if (a !== b) rules.push(`    iifname ${q(a)} oifname ${q(b)} drop`);
    // Declaring the table first makes the delete succeed when it does not exist yet.
    const script = [`table bridge ${PARTITION_TABLE}`, `delete table bridge ${PARTITION_TABLE}`];
    if (rules.length) {
      script.push(`table bridge ${PARTITION_TABLE} {`, '  chain split {', '    type filter hook forward priority 0; policy accept;', ...rules, '  }', '}');
    }
    return this.serial('setting partitions', async () => {
      writeFileSync(scriptFile, `${script.join('\n')}\n`);
      await run('ip', ['netns', 'exec', this.bridgeNs, 'nft', '-f', scriptFile]);
    });
  }

  stopSync(): void {
    removeRun(this.runId);
  }
}

function killNetnsProcesses(netns: string): void {
  for (const pid of runSync('ip', ['netns', 'pids', netns]).split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

// Removes every namespace, process and temp dir of one run (synchronous so it also
// works from signal and exit handlers).
export function removeRun(runId: string): void {
  const mine = listNetns().filter((n) => n.startsWith(`${PREFIX}-${runId}-`));
  for (const ns of mine) killNetnsProcesses(ns);
  for (const ns of mine) runSync('ip', ['netns', 'del', ns]);
  rmSync(`/tmp/${PREFIX}-${runId}`, { recursive: true, force: true });
}

function listNetns(): string[] {
  return existsSync('/run/netns') ? readdirSync('/run/netns') : [];
}

// A crashed earlier run leaves namespaces, processes and /tmp/rsim-<id> behind.
// A run id starts with its owner's pid ("<pid>r<hex>"), so only runs whose owner is
// dead are removed: parallel test files each own a live cluster.
export function newRunId(): string {
  return `${process.pid}r${Math.floor(Math.random() * 0xffff).toString(16)}`;
}

export const liveRuns = new Set<string>(); // runs of this process that are still up

export function cleanLeftovers(): void {
  const runs = new Set<string>();
  const re = new RegExp(`^${PREFIX}-([0-9]+r[0-9a-f]+)(-|$)`);
  for (const name of [...listNetns(), ...readdirSync('/tmp')]) {
    const m = re.exec(name);
    if (m) runs.add(m[1]);
  }
  for (const id of runs) {
    const owner = Number(id.split('r')[0]);
    if (liveRuns.has(id) || (owner !== process.pid && pidAlive(owner))) continue;
    removeRun(id);
  }
}
