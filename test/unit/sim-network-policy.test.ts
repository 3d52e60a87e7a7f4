// The simulator's NetworkPolicy enforcement, as rules: the nftables script each pod's
// network namespace gets from the staging environment's NetworkPolicies (the live test
// test/live/network-policy.test.ts proves the packets follow them).
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { findEnvironments } from '../../main';
import { synthEnvironment } from '../../lib/internal';
import { PolicyEndpoint, policyScript } from '../../harness/sim/network-policy';
import { SimState } from '../../harness/sim/state';

const [staging] = findEnvironments(['staging']);
const manifests = synthEnvironment(staging).map((o) => `---\n${stringify(o)}`).join('');
const s = new SimState({ manifests });
const ns = 'default'; // synthEnvironment's objects carry no namespace (the overlay's kustomization sets it)
const labelsOf = (workload: string) => s.m.workloads.find((w) => w.name === workload)!.labels;
const endpoint = (name: string, ip: string, labels: Record<string, string>, namespace = ns): PolicyEndpoint =>
  ({ name, namespace, labels, ip, netns: `n-${name}`, ports: { redis: 6379, sentinel: 26379 } });

const master = endpoint('redis-master-0', '10.213.0.11', labelsOf('redis-master'));
const replica = endpoint('redis-slave-0', '10.213.0.12', labelsOf('redis-slave'));
const sentinel = endpoint('redis-sentinel-a', '10.213.0.13', labelsOf('redis-sentinel'));
const client = endpoint('app', '10.213.0.14', { 'redis-client': 'true' });
const stranger = endpoint('stranger', '10.213.0.15', {});
const elsewhere = endpoint('elsewhere', '10.213.0.16', { 'redis-client': 'true' }, 'shop');
const all = [master, replica, sentinel, client, stranger, elsewhere];

describe('the simulator turns the NetworkPolicies into nftables rules per pod', () => {
  it('reads the policies of the staging environment', () => {
    expect(s.m.networkPolicies.map((p) => `${p.namespace}/${p.name}`).sort()).toEqual([`${ns}/redis`, `${ns}/redis-proxy`, `${ns}/redis-sentinel`]);
  });

  it('a Redis pod: drops by default, admits 6379 from the Redis pods, the Sentinels and the labelled client of its namespace, opens only 6379 and 26379 to them', () => {
    const script = policyScript(s, master, all);
    expect(script).toBe([
      'table inet rsim_netpol',
      'delete table inet rsim_netpol',
      'table inet rsim_netpol {',
      '  chain ingress {',
      '    type filter hook input priority 0; policy drop;',
      '    iif lo accept',
      '    ct state established,related accept',
      '    ip saddr { 10.213.0.11, 10.213.0.12, 10.213.0.13, 10.213.0.14 } meta l4proto tcp th dport { 6379 } accept',
      '  }',
      '  chain egress {',
      '    type filter hook output priority 0; policy drop;',
      '    oif lo accept',
      '    ct state established,related accept',
      '    ip daddr { 10.213.0.11, 10.213.0.12 } meta l4proto tcp th dport { 6379 } accept',
      '    ip daddr { 10.213.0.13 } meta l4proto tcp th dport { 26379 } accept',
      '  }',
      '}',
      '',
    ].join('\n'));
  });

  it('a Sentinel pod admits 26379 from the same peers', () => {
    expect(policyScript(s, sentinel, all))
      .toContain('    ip saddr { 10.213.0.11, 10.213.0.12, 10.213.0.13, 10.213.0.14 } meta l4proto tcp th dport { 26379 } accept\n');
  });

  it('client pods are selected by no policy: their table is only removed', () => {
    expect(policyScript(s, client, all)).toBe('table inet rsim_netpol\ndelete table inet rsim_netpol\n');
  });

  it('a new IP is in the peers\' rules as soon as the pod is: the script follows the pods given', () => {
    const recreated = { ...master, ip: '10.213.0.99', netns: 'n-new' };
    const script = policyScript(s, replica, [recreated, replica, sentinel, client]);
    expect(script).toContain('ip saddr { 10.213.0.99, 10.213.0.12, 10.213.0.13, 10.213.0.14 }');
    expect(script).not.toContain('10.213.0.11');
  });
});
