// The live pod simulator: runs the pods of rendered Kubernetes YAML as sandboxed
// processes in network namespaces. Used by the live tests (test/live, test/sim) and the
// failover benchmark (bench/failover.ts). Typical use from a vitest file:
//
//   const reason = checkLivePrerequisites();            // null when it can run here
//   const c = await SimCluster.start({ manifests: yaml, secrets: { 'redis-auth': { 'app-password': 'x', ... } } });
//   await c.waitReady(120_000);
//   await c.deletePod('redis-master-0');                 // preStop, SIGTERM, grace, new IP
//   const r = await c.exec('redis-slave-0', ['redis-cli', 'info', 'replication']);
//   await c.partitionGroups([['redis-master-0', 'app'], ['redis-slave-1']]); // silent split
//   await c.healPartitions();
//   await c.deletePod('redis-master-0', { grace: false, wipeVolumes: true }); // lost disk
//   await c.stopAllPods(); c.wipeVolumes('redis-master-0'); c.startAllPods();
//   c.updateSecret('ns', 'redis-auth', data, { maxSkewMs: 5000 }); // kubelets apply it, skewed
//   await c.stop();                                      // always, e.g. in afterAll
//
// Files: manifests.ts (YAML -> workloads), network.ts (namespaces, bridge, veths),
// network-policy.ts (NetworkPolicies as nftables rules in each pod's namespace),
// sandbox.ts (bwrap command line), secrets.ts (Secret volumes and their updates),
// cluster.ts (the API, composing the kubelet and controller behaviour of the other files:
// see its header).
export { SimCluster } from './cluster';
export type { SimOptions, PodInfo, ExecResult, ClientPod, Phase } from './types';
export type { SecretRollout } from './secrets';
export { checkLivePrerequisites } from './prereq';
export { parseManifests, parseQuantity } from './manifests';
