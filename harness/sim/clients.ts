// Client pods: a program from the host in a pod-like network namespace, seeing the
// cluster DNS, as an application pod would.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostsFor, resolvConf, writeInPlace } from './dns';
import { applyPartitions } from './network-faults';
import { applyNetworkPolicies } from './network-policy';
import { SimState } from './state';
import { Client, ClientPod } from './types';

// A program from the host (e.g. `node agent.js`, `/usr/bin/python3 x.py`) in a new
// pod-like network namespace: host filesystem, but the cluster DNS as /etc/hosts.
// ipc: true adds a Node IPC channel (child.send / process.on('message')).
// labels: the pod's labels, which NetworkPolicies select it by (default: the cluster's
// clientLabels option; {} starts an unlabelled pod). The policies are in force before
// the program starts.
export async function startClientPod(s: SimState, name: string, argv: string[],
  opts: ClientPodOptions = {}): Promise<ClientPod> {
  if (s.clients.has(name) || s.podMap.has(name)) throw new Error(`pod ${name} exists`);
  const net = await s.net.addPod();
  const dir = join(s.dir, 'clients', name);
  if (s.partitionSpec.some((g) => g.includes(name))) await applyPartitions(s, { [name]: net.hostVeth });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'resolv.conf'), resolvConf(opts.namespace ?? s.defaultNamespace()));
  writeInPlace(join(dir, 'hosts'), hostsFor(s, name, net.ip));
  const namespace = opts.namespace ?? s.defaultNamespace();
  const labels = { ...(opts.labels ?? s.opts.clientLabels ?? {}) };
  await applyNetworkPolicies(s, [{ name, namespace, labels, ip: net.ip, netns: net.netns, ports: {} }]);
  const args = [
    `--net=/run/netns/${net.netns}`, '--', 'bwrap', '--dev-bind', '/', '/',
    '--ro-bind', join(dir, 'hosts'), '/etc/hosts', '--ro-bind', join(dir, 'resolv.conf'), '/etc/resolv.conf',
    '--unshare-uts', '--hostname', name, '--die-with-parent', '--', ...argv,
  ];
  const proc = spawn('nsenter', args, {
    cwd: opts.cwd ?? process.cwd(),
    env: { ...process.env, ...opts.env, HOSTNAME: name },
    stdio: opts.ipc ? ['pipe', 'pipe', 'pipe', 'ipc'] : ['pipe', 'pipe', 'pipe'],
  });
  const client: Client = { name, namespace, labels, net, dir, proc, partitioned: false };
  s.clients.set(name, client);
  s.event(`client pod ${name} started at ${net.ip} (labels ${JSON.stringify(labels)}): ${argv.join(' ')}`);
  return { name, ip: net.ip, labels, proc };
}

export async function stopClientPod(s: SimState, name: string): Promise<void> {
  const cl = s.clients.get(name);
  if (!cl) return;
  s.clients.delete(name);
  if (cl.proc.exitCode === null && cl.proc.signalCode === null) {
    const exited = new Promise((r) => cl.proc.once('exit', r));
    cl.proc.kill('SIGKILL');
    await exited;
  }
  await s.net.removePod(cl.net);
  await applyNetworkPolicies(s);
}

export interface ClientPodOptions {
  env?: Record<string, string>;
  cwd?: string;
  ipc?: boolean;
  namespace?: string;
  labels?: Record<string, string>;
}
