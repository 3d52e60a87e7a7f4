// Cluster DNS as hosts files (one per pod, each with its own hostname, the rest
// shared). Kubernetes rules: Service names -> endpoint IPs; pod records
// <hostname>.<subdomain> of headless Services; endpoints are ready, non-terminating
// pods, or every pod with an IP when publishNotReadyAddresses is set.
import { closeSync, existsSync, fstatSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SimState } from './state';
import { Pod } from './types';

const sameLabels = (sel: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.keys(sel).length > 0 && Object.entries(sel).every(([k, v]) => labels[k] === v);

// Writes a file bound into sandboxes without replacing its inode, and without a
// moment where it is empty (a resolver reading then would see no names): overwrite
// from offset 0 and pad to the old length with a comment instead of truncating.
export function writeInPlace(path: string, content: string): void {
  const fd = openSync(path, existsSync(path) ? 'r+' : 'w');
  try {
    const old = fstatSync(fd).size;
    let text = content;
    if (text.length < old) text += old - text.length >= 2 ? '#' + ' '.repeat(old - text.length - 2) + '\n' : '\n'.repeat(old - text.length);
    writeSync(fd, text, 0);
  } finally {
    closeSync(fd);
  }
}

// Rewrites every pod's and client pod's hosts file from the pods and Services now.
export function publish(s: SimState): void {
  if (s.stopped) return;
  for (const p of s.podMap.values()) if (p.ip && existsSync(p.dir)) writeInPlace(join(p.dir, 'hosts'), hostsFor(s, p.hostname, p.ip, p));
  for (const c of s.clients.values()) writeInPlace(join(c.dir, 'hosts'), hostsFor(s, c.name, c.net.ip));
}

export function hostsFor(s: SimState, hostname: string, ip: string, self?: Pod): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
  const own = self?.subdomain ? `${hostname}.${self.subdomain}.${self.namespace}.svc.cluster.local ` : '';
  lines.push(`${ip}\t${own}${hostname}`);
  for (const svc of s.m.services) {
    const eps = [...s.podMap.values()].filter((p) =>
      p.ip && p.namespace === svc.namespace && sameLabels(svc.selector, p.labels) && (svc.publishNotReadyAddresses || s.podReady(p)));
    const names = (n: string): string => `${n} ${n}.${svc.namespace} ${n}.${svc.namespace}.svc ${n}.${svc.namespace}.svc.cluster.local`;
    for (const p of eps) lines.push(`${p.ip}\t${names(svc.name)}`);
    if (svc.headless) for (const p of eps) if (p.subdomain === svc.name) lines.push(`${p.ip}\t${names(`${p.hostname}.${svc.name}`)}`);
  }
  return lines.join('\n') + '\n';
}

export function resolvConf(ns: string): string {
  // Names missing from /etc/hosts fail fast: nothing listens on the pod's loopback.
  return `nameserver 127.0.0.1\nsearch ${ns}.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:1 attempts:1\n`;
}
