// The NetworkPolicies: on by default, selecting exactly the instance's pods, admitting
// 6379 and 26379 only from the instance's pods and labelled clients, egress only to those
// peers and DNS; the props that shape them are validated, and policies that would cut the
// instance apart are refused.
import { describe, expect, it } from 'vitest';
import { App, Chart, Testing } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { RedisHaSettings, RedisNetworkPolicies, RedisSentinelHA } from '../../lib';
import { networkPolicySpecs, policiesAllow, requireInstanceConnectivity } from '../../lib/constructs/redis-network-policies';
import { ManifestObject, objectKey } from '../../lib/internal';

const chart = () => new Chart(new App(), 'test');

/** Two instances in one chart, their policies and their pods' labels. */
function twoInstances(cacheProps = {}) {
  const c = chart();
  new RedisSentinelHA(c, 'redis');
  new RedisSentinelHA(c, 'cache', { name: 'cache', ...cacheProps });
  const objects = Testing.synth(c) as any[];
  const pods = objects.filter((o) => o.spec?.template).map((o) => ({ owner: objectKey(o), labels: o.spec.template.metadata.labels }));
  const policy = (name: string) => objects.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === name);
  return { objects, pods, policy };
}

const matches = (sel: any, labels: { [k: string]: string }) =>
  sel.matchExpressions === undefined && Object.entries(sel.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
const selected = (pods: Array<{ owner: string; labels: any }>, sel: any) => pods.filter((p) => matches(sel, p.labels)).map((p) => p.owner).sort();

describe('the NetworkPolicies of an instance', () => {
  const { objects, pods, policy } = twoInstances();

  it('are on by default: NetworkPolicy <name> (Redis pods), <name>-sentinel (Sentinel pods) and <name>-proxy (proxy pods), isolating ingress and egress', () => {
    expect(objects.filter((o) => o.kind === 'NetworkPolicy').map(objectKey).sort()).toEqual([
      'NetworkPolicy/cache', 'NetworkPolicy/cache-proxy', 'NetworkPolicy/cache-sentinel', 'NetworkPolicy/redis', 'NetworkPolicy/redis-proxy', 'NetworkPolicy/redis-sentinel',
    ]);
    for (const name of ['redis', 'redis-sentinel', 'redis-proxy']) expect(policy(name).spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(selected(pods, policy('redis-proxy').spec.podSelector)).toEqual(['Deployment/redis-proxy']);
  });

  it('the proxy pods: 6379 (write) and 6380 (read) from labelled clients only, 8404 (metrics) from the monitoring namespaces only; the same egress as the instance\'s pods', () => {
    const [clients, metrics, ...rest] = policy('redis-proxy').spec.ingress;
    expect(rest).toEqual([]);
    expect(clients).toEqual({ from: [{ podSelector: { matchLabels: { 'redis-client': 'true' } } }], ports: [{ protocol: 'TCP', port: 6379 }, { protocol: 'TCP', port: 6380 }] });
    expect(metrics).toEqual({ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }], ports: [{ protocol: 'TCP', port: 8404 }] });
    expect(policy('redis-proxy').spec.egress).toEqual(policy('redis').spec.egress);
  });

  it('select exactly the Redis pods (master and replicas) or the Sentinel pods of their own instance', () => {
    expect(selected(pods, policy('redis').spec.podSelector)).toEqual(['StatefulSet/redis-master', 'StatefulSet/redis-slave']);
    expect(selected(pods, policy('redis-sentinel').spec.podSelector)).toEqual(['Deployment/redis-sentinel']);
    expect(selected(pods, policy('cache').spec.podSelector)).toEqual(['StatefulSet/cache-master', 'StatefulSet/cache-slave']);
    expect(selected(pods, policy('cache-sentinel').spec.podSelector)).toEqual(['Deployment/cache-sentinel']);
  });

  it('admit 6379 (Redis) and 26379 (Sentinel) only, from the instance\'s Redis pods, its Sentinels and pods labelled redis-client=true', () => {
    for (const [name, port] of [['redis', 6379], ['redis-sentinel', 26379]] as const) {
      const ingress = policy(name).spec.ingress;
      expect(ingress).toHaveLength(1);
      expect(ingress[0].ports).toEqual([{ protocol: 'TCP', port }]);
      const [redisPeer, sentinelPeer, proxyPeer, clientPeer, ...rest] = ingress[0].from;
      expect(rest).toEqual([]);
      expect(selected(pods, redisPeer.podSelector)).toEqual(['StatefulSet/redis-master', 'StatefulSet/redis-slave']);
      expect(selected(pods, sentinelPeer.podSelector)).toEqual(['Deployment/redis-sentinel']);
      expect(selected(pods, proxyPeer.podSelector)).toEqual(['Deployment/redis-proxy']);
      for (const peer of [redisPeer, sentinelPeer, proxyPeer]) expect(peer.namespaceSelector).toBeUndefined();
      expect(clientPeer).toEqual({ podSelector: { matchLabels: { 'redis-client': 'true' } } });
      expect(selected(pods, clientPeer.podSelector)).toEqual([]);
    }
    expect(policy('cache').spec.ingress[0].from[3]).toEqual({ podSelector: { matchLabels: { 'cache-client': 'true' } } });
  });

  it('allow egress only to DNS (UDP and TCP 53 to kube-dns pods in any namespace), the Redis pods on 6379 and the Sentinels on 26379', () => {
    for (const name of ['redis', 'redis-sentinel']) {
      const [dns, toRedis, toSentinels, ...rest] = policy(name).spec.egress;
      expect(rest).toEqual([]);
      expect(dns).toEqual({
        ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }],
        to: [{ namespaceSelector: {}, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
      });
      expect(toRedis.ports).toEqual([{ protocol: 'TCP', port: 6379 }]);
      expect(toRedis.to).toHaveLength(1);
      expect(selected(pods, toRedis.to[0].podSelector)).toEqual(['StatefulSet/redis-master', 'StatefulSet/redis-slave']);
      expect(toSentinels.ports).toEqual([{ protocol: 'TCP', port: 26379 }]);
      expect(toSentinels.to).toHaveLength(1);
      expect(selected(pods, toSentinels.to[0].podSelector)).toEqual(['Deployment/redis-sentinel']);
    }
  });

  it('no peer of one instance\'s policies selects a pod of the other instance', () => {
    for (const o of objects.filter((x) => x.kind === 'NetworkPolicy')) {
      const instance = o.metadata.labels['app.kubernetes.io/instance'];
      const peers = [...o.spec.ingress.flatMap((r: any) => r.from), ...o.spec.egress.flatMap((r: any) => r.to)];
      for (const peer of peers) {
        if (peer.podSelector === undefined) continue; // the monitoring namespaces: no pod of either instance
        const owners = pods.filter((p) => matches(peer.podSelector, p.labels)).map((p) => p.labels['app.kubernetes.io/instance']);
        expect(owners.filter((i) => i !== instance), objectKey(o)).toEqual([]);
      }
    }
  });

  it('networkPolicies: false leaves them out', () => {
    const c = chart();
    const ha = new RedisSentinelHA(c, 'redis', { networkPolicies: false });
    expect(ha.networkPolicies).toBeUndefined();
    expect((Testing.synth(c) as ManifestObject[]).filter((o) => o.kind === 'NetworkPolicy')).toEqual([]);
  });

  it('clientLabels and clientNamespaceLabels set the client peers: same namespace, plus labelled pods in matching namespaces', () => {
    const s = RedisHaSettings.resolve({ clientLabels: { 'shop/redis': 'yes' }, clientNamespaceLabels: { team: 'shop' } });
    const { redis, sentinel } = networkPolicySpecs(s);
    for (const spec of [redis, sentinel]) {
      expect(spec.ingress![0].from!.slice(3)).toEqual([
        { podSelector: { matchLabels: { 'shop/redis': 'yes' } } },
        { namespaceSelector: { matchLabels: { team: 'shop' } }, podSelector: { matchLabels: { 'shop/redis': 'yes' } } },
      ]);
    }
  });
});

describe('evaluated as a network plugin would', () => {
  const s = RedisHaSettings.resolve({});
  const { redis, sentinel } = networkPolicySpecs(s);
  const pod = (labels: { [k: string]: string }, own = true) => ({ what: 'x', labels, own });
  const master = pod({ 'app.kubernetes.io/name': 'redis', 'app.kubernetes.io/instance': 'redis', 'app.kubernetes.io/component': 'master' });
  const sentinelPod = pod({ 'app.kubernetes.io/name': 'redis-sentinel', 'app.kubernetes.io/instance': 'redis', 'app.kubernetes.io/component': 'sentinel' });
  const otherInstance = pod({ 'app.kubernetes.io/name': 'redis', 'app.kubernetes.io/instance': 'cache', 'app.kubernetes.io/component': 'master' });

  it('an unlabelled pod, a pod of another instance and a labelled pod of another namespace reach neither port; a labelled pod reaches both', () => {
    for (const from of [pod({}), pod({ 'redis-client': 'false' }), otherInstance, pod({ 'redis-client': 'true' }, false)]) {
      expect(policiesAllow([redis, sentinel], from, master, 6379)).toBe(false);
      expect(policiesAllow([redis, sentinel], from, sentinelPod, 26379)).toBe(false);
    }
    expect(policiesAllow([redis, sentinel], pod({ 'redis-client': 'true' }), master, 6379)).toBe(true);
    expect(policiesAllow([redis, sentinel], pod({ 'redis-client': 'true' }), sentinelPod, 26379)).toBe(true);
  });

  it('the proxy: a labelled client reaches its write and read ports, an unlabelled pod neither; it reaches Redis and Sentinel, nothing else', () => {
    const { proxy } = networkPolicySpecs(s);
    const all = [redis, sentinel, proxy!];
    const proxyPod = pod({ 'app.kubernetes.io/name': 'redis-proxy', 'app.kubernetes.io/instance': 'redis', 'app.kubernetes.io/component': 'proxy' });
    for (const port of [6379, 6380]) {
      expect(policiesAllow(all, pod({ 'redis-client': 'true' }), proxyPod, port)).toBe(true);
      expect(policiesAllow(all, pod({}), proxyPod, port)).toBe(false);
    }
    expect(policiesAllow(all, proxyPod, master, 6379)).toBe(true);
    expect(policiesAllow(all, proxyPod, sentinelPod, 26379)).toBe(true);
    expect(policiesAllow(all, proxyPod, master, 26379)).toBe(false);
    // (policiesAllow does not evaluate namespace labels: the metrics rule is checked as written in the test above.)
  });

  it('the instance\'s pods reach no other port and no client pod', () => {
    expect(policiesAllow([redis, sentinel], sentinelPod, master, 26379)).toBe(false);
    expect(policiesAllow([redis, sentinel], master, sentinelPod, 6379)).toBe(false);
    expect(policiesAllow([redis, sentinel], master, pod({ 'redis-client': 'true' }), 8080)).toBe(false);
  });
});

describe('refused', () => {
  it('an empty clientLabels (it would admit every pod of the namespace)', () => {
    expect(() => RedisHaSettings.resolve({ clientLabels: {} }))
      .toThrow(/^clientLabels must name at least one label \(an empty selector admits every pod of the namespace\); give e\.g\. \{ "redis-client": "true" \}, or set networkPolicies: false, got \{\}$/);
  });

  it('a clientLabels key the instance\'s own pods are selected by (it would collide with the pod selectors)', () => {
    expect(() => RedisHaSettings.resolve({ clientLabels: { 'app.kubernetes.io/component': 'sentinel' } }))
      .toThrow(/^clientLabels key is one of the labels the instance's own Redis and Sentinel pods are selected by .* use a key of your own, e\.g\. \{ "redis-client": "true" \}, got "app\.kubernetes\.io\/component"$/);
  });

  it('malformed labels and a non-boolean networkPolicies', () => {
    expect(() => RedisHaSettings.resolve({ clientLabels: { 'redis-client': 'not ok!' } })).toThrow(/^clientLabels\["redis-client"\] must be a Kubernetes label value/);
    expect(() => RedisHaSettings.resolve({ clientNamespaceLabels: { 'bad key!': 'x' } })).toThrow(/^clientNamespaceLabels/);
    expect(() => RedisHaSettings.resolve({ networkPolicies: 'yes' as any })).toThrow(/^networkPolicies /);
  });

  it('RedisNetworkPolicies made from settings with networkPolicies: false', () => {
    const settings = RedisHaSettings.resolve({ networkPolicies: false });
    expect(() => new RedisNetworkPolicies(chart(), 'np', { settings }))
      .toThrow(/^networkPolicies is false in the settings this RedisNetworkPolicies was given; leave the part out/);
  });

  it('policies that would cut Sentinel off from Redis, or the Redis pods from each other, naming the path and the fix', () => {
    const s = RedisHaSettings.resolve({});
    const { redis, sentinel } = networkPolicySpecs(s);
    const withoutPeer = (spec: k8s.NetworkPolicySpec, index: number): k8s.NetworkPolicySpec => ({
      ...spec, ingress: [{ ...spec.ingress![0], from: spec.ingress![0].from!.filter((_, i) => i !== index) }],
    });
    expect(() => requireInstanceConnectivity(s, [withoutPeer(redis, 0), sentinel]))
      .toThrow(/^networkPolicies would block a replica from reaching the master on port 6379 .*; give clientLabels a key of your own, or set networkPolicies: false and write the policies yourself, got true$/);
    expect(() => requireInstanceConnectivity(s, [withoutPeer(redis, 1), sentinel]))
      .toThrow(/would block a Sentinel from reaching the master on port 6379/);
    expect(() => requireInstanceConnectivity(s, [redis, { ...sentinel, egress: [] }]))
      .toThrow(/would block a Sentinel from reaching the master on port 6379/);
    expect(() => requireInstanceConnectivity(s, [redis, withoutPeer(sentinel, 0)]))
      .toThrow(/would block the master from reaching a Sentinel on port 26379/);
    expect(() => requireInstanceConnectivity(s, [redis, sentinel])).not.toThrow();
  });
});

describe('the metrics port (metrics prop)', () => {
  const policiesOf = (props = {}) => {
    const c = chart();
    new RedisSentinelHA(c, 'redis', props);
    const objects = Testing.synth(c) as any[];
    return (name: string) => objects.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === name);
  };

  it('without metrics: no rule for 9121, so nothing reaches it', () => {
    const policy = policiesOf();
    for (const name of ['redis', 'redis-sentinel']) {
      expect(policy(name).spec.ingress).toHaveLength(1);
      expect(JSON.stringify(policy(name).spec.ingress)).not.toContain('9121');
    }
  });

  it('with metrics: 9121 only from every pod of the namespaces labelled kubernetes.io/metadata.name=monitoring, on Redis and Sentinel pods', () => {
    const policy = policiesOf({ metrics: true });
    for (const name of ['redis', 'redis-sentinel']) {
      const [main, metrics, ...rest] = policy(name).spec.ingress;
      expect(rest).toEqual([]);
      expect(main.ports).toEqual([{ protocol: 'TCP', port: name === 'redis' ? 6379 : 26379 }]);
      expect(metrics).toEqual({
        from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
        ports: [{ protocol: 'TCP', port: 9121 }],
      });
      // Egress is unchanged: the exporter only talks to the server beside it (loopback).
      expect(JSON.stringify(policy(name).spec.egress)).not.toContain('9121');
    }
  });

  it('monitoringNamespaceLabels chooses the namespaces; an empty selector (every namespace) is refused', () => {
    const policy = policiesOf({ metrics: true, monitoringNamespaceLabels: { 'team': 'observability', 'prometheus': 'scrape' } });
    expect(policy('redis').spec.ingress[1].from).toEqual([{ namespaceSelector: { matchLabels: { team: 'observability', prometheus: 'scrape' } } }]);
    expect(() => RedisHaSettings.resolve({ metrics: true, monitoringNamespaceLabels: {} })).toThrow(/monitoringNamespaceLabels.*must name at least one label/);
    expect(() => RedisHaSettings.resolve({ monitoringNamespaceLabels: { 'bad key!': 'x' } })).toThrow(/monitoringNamespaceLabels/);
  });
});
