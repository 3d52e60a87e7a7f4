import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import {
  commonLabels, METRICS_PORT, PROXY_METRICS_PORT, PROXY_READ_PORT, PROXY_WRITE_PORT, redisTierSelector, REDIS_PORT, SENTINEL_PORT, selectorLabels,
} from './names';
import { RedisHaPartProps, claimPart, settingsOf } from './redis-ha-configuration';
import { RedisHaSettings } from './redis-ha-settings';
import { ValidationError } from './validation';

export interface RedisNetworkPoliciesProps extends RedisHaPartProps {}

/** Labels of the cluster DNS pods (kube-dns and CoreDNS both carry it on kubeadm, kind, k3s, GKE, EKS and AKS). */
export const DNS_POD_LABELS: { readonly [key: string]: string } = { 'k8s-app': 'kube-dns' };

/**
 * NetworkPolicy `<name>` (the Redis pods, master and replicas) and `<name>-sentinel` (the
 * Sentinel pods). Ingress: Redis 6379 and Sentinel 26379 only from the instance's Redis
 * and Sentinel pods and from pods carrying `clientLabels` (in the instance's namespace,
 * and in namespaces matching `clientNamespaceLabels` when given). Egress: only to those
 * peers (Redis 6379, Sentinel 26379) and to the cluster DNS (UDP and TCP 53 to pods
 * labelled `k8s-app: kube-dns` in any namespace). With `metrics` on, the exporter's port
 * 9121 (`metrics`) of both accepts any pod of the namespaces matching
 * `monitoringNamespaceLabels` (Prometheus), and nothing else. With the proxy tier on,
 * NetworkPolicy `<name>-proxy` (the proxy pods): its ports 6379 (write) and 6380 (read) accept
 * the same client pods, its metrics port 8404 the monitoring namespaces; it may connect only
 * to the Redis pods (6379), the Sentinels (26379) and the cluster DNS; and the Redis and
 * Sentinel policies admit the proxy pods as they admit clients. Made by `RedisSentinelHA`
 * unless `networkPolicies` is false.
 */
export class RedisNetworkPolicies extends Construct {
  public readonly settings: RedisHaSettings;
  public readonly redisPolicy: k8s.KubeNetworkPolicy;
  public readonly sentinelPolicy: k8s.KubeNetworkPolicy;
  /** The proxy pods' policy, when the proxy tier is on. */
  public readonly proxyPolicy?: k8s.KubeNetworkPolicy;

  constructor(scope: Construct, id: string, props: RedisNetworkPoliciesProps = {}) {
    super(scope, id);
    this.settings = settingsOf('', props);
    const s = this.settings;
    if (!s.networkPolicies) {
      throw new ValidationError('networkPolicies', false,
        'is false in the settings this RedisNetworkPolicies was given; leave the part out, or resolve the settings with networkPolicies: true');
    }
    claimPart(this, 'RedisNetworkPolicies', s.name);
    const specs = networkPolicySpecs(s);
    const metadata = (name: string) => ({ name, labels: commonLabels(s.name, s.labels) });
    this.redisPolicy = new k8s.KubeNetworkPolicy(this, 'Redis', { metadata: metadata(s.names.redisNetworkPolicy), spec: specs.redis });
    this.sentinelPolicy = new k8s.KubeNetworkPolicy(this, 'Sentinel', { metadata: metadata(s.names.sentinelNetworkPolicy), spec: specs.sentinel });
    if (specs.proxy) this.proxyPolicy = new k8s.KubeNetworkPolicy(this, 'Proxy', { metadata: metadata(s.names.proxy), spec: specs.proxy });
  }
}

/** The policies' specs, checked: they never cut the instance's pods off from each other. */
export function networkPolicySpecs(s: RedisHaSettings): { redis: k8s.NetworkPolicySpec; sentinel: k8s.NetworkPolicySpec; proxy?: k8s.NetworkPolicySpec } {
  const redisTier = redisTierSelector(s.name);
  const sentinels = selectorLabels(s.name, 'sentinel');
  const clientPeers: k8s.NetworkPolicyPeer[] = [{ podSelector: { matchLabels: { ...s.clientLabels } } }];
  if (s.clientNamespaceLabels !== undefined) {
    clientPeers.push({ namespaceSelector: { matchLabels: { ...s.clientNamespaceLabels } }, podSelector: { matchLabels: { ...s.clientLabels } } });
  }
  const tcp = (port: number): k8s.NetworkPolicyPort => ({ protocol: 'TCP', port: k8s.IntOrString.fromNumber(port) });
  const members: k8s.NetworkPolicyPeer[] = [{ podSelector: { matchLabels: redisTier } }, { podSelector: { matchLabels: sentinels } }];
  // The proxy pods reach Redis and Sentinel like a client (and are no member: nothing connects to them but clients).
  const proxies: k8s.NetworkPolicyPeer[] = s.proxy ? [{ podSelector: { matchLabels: selectorLabels(s.name, 'proxy') } }] : [];
  const monitoring = (port: number): k8s.NetworkPolicyIngressRule =>
    ({ from: [{ namespaceSelector: { matchLabels: { ...s.monitoringNamespaceLabels } } }], ports: [tcp(port)] });
  const egress: k8s.NetworkPolicyEgressRule[] = [
    {
      to: [{ namespaceSelector: {}, podSelector: { matchLabels: { ...DNS_POD_LABELS } } }],
      ports: [{ protocol: 'UDP', port: k8s.IntOrString.fromNumber(53) }, tcp(53)],
    },
    { to: [{ podSelector: { matchLabels: redisTier } }], ports: [tcp(REDIS_PORT)] },
    { to: [{ podSelector: { matchLabels: sentinels } }], ports: [tcp(SENTINEL_PORT)] },
  ];
  const spec = (selector: { [key: string]: string }, port: number): k8s.NetworkPolicySpec => ({
    podSelector: { matchLabels: selector },
    policyTypes: ['Ingress', 'Egress'],
    ingress: [
      { from: [...members, ...proxies, ...clientPeers], ports: [tcp(port)] },
      // The exporter sidecar: scraped from the monitoring namespaces only (every pod there).
      ...(s.metrics ? [monitoring(METRICS_PORT)] : []),
    ],
    egress,
  });
  const proxy: k8s.NetworkPolicySpec | undefined = s.proxy ? {
    podSelector: { matchLabels: selectorLabels(s.name, 'proxy') },
    policyTypes: ['Ingress', 'Egress'],
    ingress: [
      { from: [...clientPeers], ports: [tcp(PROXY_WRITE_PORT), tcp(PROXY_READ_PORT)] },
      // HAProxy's Prometheus exporter: from the monitoring namespaces only, like the redis exporter's.
      monitoring(PROXY_METRICS_PORT),
    ],
    egress,
  } : undefined;
  const specs = { redis: spec(redisTier, REDIS_PORT), sentinel: spec(sentinels, SENTINEL_PORT), ...(proxy ? { proxy } : {}) };
  requireInstanceConnectivity(s, [specs.redis, specs.sentinel, ...(proxy ? [proxy] : [])]);
  return specs;
}

/** A pod as the policies see it: its labels (and its namespace's, which only matter for namespaceSelector peers). */
interface PolicyPod { readonly what: string; readonly labels: { [key: string]: string }; readonly own: boolean }

function matches(selector: k8s.LabelSelector | undefined, labels: { [key: string]: string }): boolean {
  if (selector?.matchExpressions?.length) return false; // never generated here; counted as no match
  return Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
}

function peerMatches(peer: k8s.NetworkPolicyPeer, pod: PolicyPod): boolean {
  if (peer.ipBlock) return false;
  // A peer without namespaceSelector means the policy's own namespace.
  if (peer.namespaceSelector === undefined && !pod.own) return false;
  return matches(peer.podSelector, pod.labels);
}

function portMatches(ports: k8s.NetworkPolicyPort[] | undefined, port: number): boolean {
  return ports === undefined || ports.length === 0
    || ports.some((p) => (p.protocol ?? 'TCP') === 'TCP' && (p.port === undefined || p.port.value === port));
}

/** Whether `policies` (all in the instance's namespace) let `from` open a TCP connection to `to` on `port`. */
export function policiesAllow(policies: readonly k8s.NetworkPolicySpec[], from: PolicyPod, to: PolicyPod, port: number): boolean {
  const side = (type: 'Ingress' | 'Egress', pod: PolicyPod, peer: PolicyPod): boolean => {
    const selecting = policies.filter((p) => pod.own && matches(p.podSelector, pod.labels)
      && (p.policyTypes ?? ['Ingress']).includes(type));
    if (selecting.length === 0) return true;
    return selecting.some((p) => (type === 'Ingress' ? p.ingress : p.egress)?.some((rule) => {
      const peers = type === 'Ingress' ? (rule as k8s.NetworkPolicyIngressRule).from : (rule as k8s.NetworkPolicyEgressRule).to;
      return portMatches(rule.ports, port) && (peers === undefined || peers.length === 0 || peers.some((x) => peerMatches(x, peer)));
    }));
  };
  return side('Egress', from, to) && side('Ingress', to, from);
}

/**
 * Refuses policies that would cut Sentinel off from Redis or the Redis pods from each
 * other (or from the Sentinels, whom the start scripts ask for the master), or shut out
 * a labelled client: evaluated as a network plugin would, on the pods' real labels.
 */
export function requireInstanceConnectivity(s: RedisHaSettings, policies: readonly k8s.NetworkPolicySpec[]): void {
  const pod = (what: string, component: 'master' | 'replica' | 'sentinel' | 'proxy'): PolicyPod =>
    ({ what, labels: { ...commonLabels(s.name, s.labels), ...selectorLabels(s.name, component) }, own: true });
  const master = pod('the master', 'master');
  const replica = pod('a replica', 'replica');
  const sentinel = pod('a Sentinel', 'sentinel');
  const client: PolicyPod = { what: 'a labelled client pod', labels: { ...s.clientLabels }, own: true };
  const paths: Array<[PolicyPod, PolicyPod, number]> = [
    [replica, master, REDIS_PORT], [master, replica, REDIS_PORT], [replica, replica, REDIS_PORT],
    [sentinel, master, REDIS_PORT], [sentinel, replica, REDIS_PORT],
    [sentinel, sentinel, SENTINEL_PORT], [master, sentinel, SENTINEL_PORT], [replica, sentinel, SENTINEL_PORT],
    [client, master, REDIS_PORT], [client, replica, REDIS_PORT], [client, sentinel, SENTINEL_PORT],
  ];
  if (s.proxy) {
    const proxy = pod('a proxy pod', 'proxy');
    paths.push([proxy, master, REDIS_PORT], [proxy, replica, REDIS_PORT], [proxy, sentinel, SENTINEL_PORT],
      [client, proxy, PROXY_WRITE_PORT], [client, proxy, PROXY_READ_PORT]);
  }
  for (const [from, to, port] of paths) {
    if (!policiesAllow(policies, from, to, port)) {
      throw new ValidationError('networkPolicies', true,
        `would block ${from.what} from reaching ${to.what} on port ${port} (clientLabels ${JSON.stringify(s.clientLabels)}); `
        + 'give clientLabels a key of your own, or set networkPolicies: false and write the policies yourself');
    }
  }
}
