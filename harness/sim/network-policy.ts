// NetworkPolicy enforcement, as a CNI plugin does it: every pod (and client pod) gets an
// nftables table in its own network namespace, generated from the NetworkPolicy objects
// of the manifests. A pod selected by a policy with ingress (egress) rules accepts
// (opens) only the connections some rule of those policies allows; peers are matched by
// the IPs of the pods whose labels (and namespace's labels) the peer selects, so the
// tables are regenerated whenever a pod or client pod gets or loses an IP. Loopback
// (exec, probes to the pod's own IP) and packets of established connections always pass.
// Cluster DNS is a hosts file here, so a DNS egress rule needs no packets.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabelSelector, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicyRule } from './manifests';
import { SimState } from './state';
import { run } from './util';

const TABLE = 'rsim_netpol';

// What policies see of a pod or client pod.
export interface PolicyEndpoint {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  ip: string;
  netns: string;
  ports: Record<string, number>; // named container ports
}

export function selectorMatches(sel: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!sel) return true;
  const okLabels = Object.entries(sel.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  return okLabels && (sel.matchExpressions ?? []).every((e) => {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    switch (e.operator) {
      case 'In': return has && (e.values ?? []).includes(labels[e.key]);
      case 'NotIn': return !has || !(e.values ?? []).includes(labels[e.key]);
      case 'Exists': return has;
      case 'DoesNotExist': return !has;
      default: return false;
    }
  });
}

// Labels of a namespace: its Namespace object's, plus the name label Kubernetes sets on every namespace.
function namespaceLabels(s: SimState, ns: string): Record<string, string> {
  return { ...(s.m.namespaceLabels.get(ns) ?? {}), 'kubernetes.io/metadata.name': ns };
}

// The source/destination addresses a peer stands for, in nft syntax.
function peerAddresses(s: SimState, policy: NetworkPolicy, peer: NetworkPolicyPeer, all: PolicyEndpoint[]): string[] {
  if (peer.ipBlock) {
    if (peer.ipBlock.except?.length) s.notice(`NetworkPolicy ${policy.name}: ipBlock.except is not simulated (the whole cidr is used)`);
    return [peer.ipBlock.cidr];
  }
  return all.filter((e) => {
    if (peer.namespaceSelector === undefined ? e.namespace !== policy.namespace : !selectorMatches(peer.namespaceSelector, namespaceLabels(s, e.namespace))) return false;
    return selectorMatches(peer.podSelector, e.labels);
  }).map((e) => e.ip);
}

// `meta l4proto tcp th dport { 6379 }` clauses of a rule's ports (one per protocol), or [''] for every port.
function portClauses(ports: NetworkPolicyPort[] | undefined, named: Record<string, number>): string[] {
  if (!ports?.length) return [''];
  const byProto = new Map<string, string[]>();
  for (const p of ports) {
    const proto = (p.protocol ?? 'TCP').toLowerCase();
    const list = byProto.get(proto) ?? [];
    byProto.set(proto, list);
    if (p.port === undefined) list.push('*');
    else {
      const n = typeof p.port === 'number' || /^\d+$/.test(p.port) ? Number(p.port) : named[p.port];
      if (n === undefined) continue; // a named port the pod does not have matches nothing
      list.push(p.endPort ? `${n}-${p.endPort}` : String(n));
    }
  }
  const out: string[] = [];
  for (const [proto, list] of byProto) {
    if (list.includes('*')) out.push(`meta l4proto ${proto}`);
    else if (list.length) out.push(`meta l4proto ${proto} th dport { ${list.join(', ')} }`);
  }
  return out;
}

// The accept rules for one direction of one pod, or undefined when no policy isolates it.
function directionRules(s: SimState, self: PolicyEndpoint, all: PolicyEndpoint[], dir: 'ingress' | 'egress'): string[] | undefined {
  const selecting = s.m.networkPolicies.filter((p) => p.namespace === self.namespace && p[dir] !== undefined && selectorMatches(p.podSelector, self.labels));
  if (selecting.length === 0) return undefined;
  const addr = dir === 'ingress' ? 'ip saddr' : 'ip daddr';
  const rules: string[] = [];
  for (const policy of selecting) {
    for (const rule of policy[dir] as NetworkPolicyRule[]) {
      // Named ports are the destination pod's: our own for ingress; for egress they are
      // resolved per destination, which the simulator does not do (numeric ports only).
      const ports = portClauses(rule.ports, dir === 'ingress' ? self.ports : {});
      const peers = rule.peers?.length ? [...new Set(rule.peers.flatMap((p) => peerAddresses(s, policy, p, all)))] : undefined;
      if (peers !== undefined && peers.length === 0) continue; // selects no pod now
      const from = peers === undefined ? '' : `${addr} { ${peers.join(', ')} } `;
      for (const p of ports) rules.push(`    ${from}${p} accept`.replace(/ +accept$/, ' accept'));
    }
  }
  return rules;
}

// The nft script (one atomic transaction) that replaces a pod's table.
export function policyScript(s: SimState, self: PolicyEndpoint, all: PolicyEndpoint[]): string {
  const lines = [`table inet ${TABLE}`, `delete table inet ${TABLE}`];
  const ingress = directionRules(s, self, all, 'ingress');
  const egress = directionRules(s, self, all, 'egress');
  if (!ingress && !egress) return `${lines.join('\n')}\n`;
  lines.push(`table inet ${TABLE} {`);
  const chain = (name: string, hook: string, iface: string, rules: string[] | undefined): void => {
    if (!rules) return;
    lines.push(`  chain ${name} {`, `    type filter hook ${hook} priority 0; policy drop;`,
      `    ${iface} lo accept`, '    ct state established,related accept', ...rules, '  }');
  };
  chain('ingress', 'input', 'iif', ingress);
  chain('egress', 'output', 'oif', egress);
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

function endpoints(s: SimState): PolicyEndpoint[] {
  const out: PolicyEndpoint[] = [];
  for (const p of s.podMap.values()) {
    if (!p.net) continue;
    const ports: Record<string, number> = {};
    for (const c of p.spec.containers) for (const port of c.ports ?? []) if (port.name) ports[port.name] = port.containerPort;
    out.push({ name: p.name, namespace: p.namespace, labels: p.labels, ip: p.net.ip, netns: p.net.netns, ports });
  }
  for (const c of s.clients.values()) out.push({ name: c.name, namespace: c.namespace, labels: c.labels, ip: c.net.ip, netns: c.net.netns, ports: {} });
  return out;
}

// Per network namespace: the script last applied, so unchanged pods are left alone.
const applied = new WeakMap<SimState, Map<string, string>>();
const queues = new WeakMap<SimState, Promise<unknown>>();

// Regenerates every pod's table from the pods now; `extra` are endpoints not registered
// yet (a client pod being started). Serialized per cluster; resolves once in force.
export function applyNetworkPolicies(s: SimState, extra: PolicyEndpoint[] = []): Promise<void> {
  if (s.m.networkPolicies.length === 0) return Promise.resolve();
  const next = (queues.get(s) ?? Promise.resolve()).then(() => applyNow(s, extra));
  queues.set(s, next.catch(() => undefined));
  return next;
}

async function applyNow(s: SimState, extra: PolicyEndpoint[]): Promise<void> {
  if (s.stopped) return;
  const all = [...endpoints(s), ...extra.filter((x) => !s.podMap.has(x.name) && !s.clients.has(x.name))];
  const done = applied.get(s) ?? new Map<string, string>();
  applied.set(s, done);
  const dir = join(s.dir, 'netpol');
  mkdirSync(dir, { recursive: true });
  await Promise.all(all.map(async (e) => {
    const script = policyScript(s, e, all);
    if (done.get(e.netns) === script) return;
    const file = join(dir, `${e.netns}.nft`);
    writeFileSync(file, script);
    try {
      await run('ip', ['netns', 'exec', e.netns, 'nft', '-f', file]);
      done.set(e.netns, script);
    } catch (err) {
      // The pod went away meanwhile (its namespace is deleted before it leaves the pod
      // list); anything else is a simulator bug worth seeing.
      if (existsSync(`/run/netns/${e.netns}`)) {
        s.notice(`NetworkPolicy rules for ${e.name} not applied: ${String(err)}`);
      }
    }
  }));
  for (const ns of [...done.keys()]) if (!all.some((e) => e.netns === ns)) done.delete(ns);
}
