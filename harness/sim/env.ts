// A container's environment as the kubelet builds it: envFrom, env values with $(VAR)
// expansion, and valueFrom (downward API fieldRef and resourceFieldRef, Secret and
// ConfigMap keys).
import { cpus, totalmem } from 'node:os';
import { ContainerSpec, Obj, parseQuantity } from './manifests';
import { SimState } from './state';
import { Container, Pod } from './types';

// Kubernetes $(VAR) expansion in env values, command and args ($$ escapes).
export function expand(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name) => (m === '$$' ? '$' : name in env ? env[name] : m));
}

export function containerEnv(s: SimState, c: Container): Record<string, string> {
  const p = c.pod;
  const spec = c.spec;
  const env: Record<string, string> = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOSTNAME: p.hostname,
    HOME: '/root',
  };
  for (const ef of spec.envFrom ?? []) {
    const data = ef.configMapRef ? s.m.configMaps.get(`${p.namespace}/${ef.configMapRef.name}`) : ef.secretRef ? s.secretData(p.namespace, ef.secretRef.name) : undefined;
    for (const [k, v] of Object.entries(data ?? {})) env[(ef.prefix ?? '') + k] = v;
  }
  for (const e of spec.env ?? []) {
    const vf = e.valueFrom;
    if (!vf) env[e.name] = expand(String(e.value ?? ''), env);
    else if (vf.fieldRef) env[e.name] = fieldRef(s, p, vf.fieldRef.fieldPath);
    else if (vf.resourceFieldRef) env[e.name] = resourceRef(p, spec, vf.resourceFieldRef);
    else if (vf.secretKeyRef || vf.configMapKeyRef) {
      const ref = vf.secretKeyRef ?? vf.configMapKeyRef;
      const data = vf.secretKeyRef ? s.secretData(p.namespace, ref.name) : s.m.configMaps.get(`${p.namespace}/${ref.name}`);
      if (data && ref.key in data) env[e.name] = data[ref.key];
      else if (!ref.optional) throw new Error(`env ${e.name}: ${ref.name}/${ref.key} not found`);
    }
  }
  return env;
}

function fieldRef(s: SimState, p: Pod, path: string): string {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (m) return m[1] === 'labels' ? p.labels[m[2]] ?? '' : '';
  const v: Record<string, string> = {
    'metadata.name': p.name,
    'metadata.namespace': p.namespace,
    'metadata.uid': `sim-${s.runId}-${p.uid}`,
    'status.podIP': p.ip,
    'status.podIPs': p.ip,
    'status.hostIP': p.ip,
    'spec.nodeName': s.opts.nodeName ?? 'sim-node',
    'spec.serviceAccountName': 'default',
  };
  if (!(path in v)) throw new Error(`fieldRef ${path} not simulated`);
  return v[path];
}

function resourceRef(p: Pod, self: ContainerSpec, r: Obj): string {
  const cs = r.containerName ? p.spec.containers.find((c) => c.name === r.containerName) ?? self : self;
  const [kind, res] = String(r.resource).split('.');
  const q = cs.resources?.[kind as 'limits' | 'requests']?.[res];
  const node = res === 'cpu' ? cpus().length : res === 'memory' ? totalmem() : 0;
  const value = q !== undefined ? parseQuantity(q) : kind === 'limits' ? node : 0;
  return String(Math.ceil(value / parseQuantity(r.divisor ?? 1)));
}
