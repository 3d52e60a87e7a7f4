/**
 * The rotation's access to a real cluster, through kubectl (whatever kubeconfig and
 * context it uses, or --context). Passwords never appear on a command line: the Secret
 * patch and the passwords tried with redis-cli go over stdin.
 */
import { spawn } from 'child_process';
import { PodAccess, PodKind, RotationError, RotationPod, SecretAccess } from './rotation';

export interface KubectlTarget {
  /** Namespace of the instance (default: the context's). */
  readonly namespace?: string;
  readonly context?: string;
  /** The kubectl binary (default `kubectl` on the PATH). */
  readonly kubectl?: string;
}

/**
 * The pods of each kind: their `app.kubernetes.io/name` label (selectorLabels in
 * lib/constructs/names.ts) and the container that writes the status file (auth_sync's
 * sidecar, or the proxy's haproxy, whose decider writes it).
 */
const KINDS: Record<string, { kind: PodKind; container: string }> = {
  redis: { kind: 'redis', container: 'guard' },
  'redis-sentinel': { kind: 'sentinel', container: 'janitor' },
  'redis-proxy': { kind: 'proxy', container: 'haproxy' },
};

function kubectl(t: KubectlTarget, args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const full = [...(t.context ? ['--context', t.context] : []), ...(t.namespace ? ['--namespace', t.namespace] : []), ...args];
  return new Promise((resolve, reject) => {
    const p = spawn(t.kubectl ?? 'kubectl', full, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.once('error', (e) => reject(new RotationError(`cannot run kubectl: ${e.message}`)));
    p.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    p.stdin.end(stdin ?? '');
  });
}

const oneLine = (s: string): string => s.trim().split('\n').filter(Boolean).pop() ?? '';

/** The Secret through `kubectl get secret` and one `kubectl patch` (a JSON merge patch, on the version read). */
export function kubectlSecret(t: KubectlTarget, name: string): SecretAccess {
  let resourceVersion: string | undefined;
  const where = `${t.namespace ? `${t.namespace}/` : ''}${name}`;
  return {
    name: where,
    async read() {
      const r = await kubectl(t, ['get', 'secret', name, '-o', 'json']);
      if (r.code !== 0) {
        if (/NotFound|not found/.test(r.stderr)) return undefined;
        throw new RotationError(`kubectl get secret ${where}: ${oneLine(r.stderr)}`);
      }
      const obj = JSON.parse(r.stdout);
      resourceVersion = obj.metadata?.resourceVersion;
      return Object.fromEntries(Object.entries<string>(obj.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
    },
    async update(changes) {
      const data = Object.fromEntries(Object.entries(changes).map(([k, v]) => [k, v === null ? null : Buffer.from(v, 'utf8').toString('base64')]));
      // With the resourceVersion of the last read: a concurrent change of the Secret makes it fail instead of being overwritten.
      const patch = JSON.stringify({ metadata: resourceVersion ? { resourceVersion } : undefined, data });
      const r = await kubectl(t, ['patch', 'secret', name, '--type', 'merge', '--patch-file', '/dev/stdin', '-o', 'jsonpath={.metadata.resourceVersion}'], patch);
      if (r.code !== 0) throw new RotationError(`kubectl patch secret ${where}: ${oneLine(r.stderr)}`);
      resourceVersion = r.stdout.trim() || undefined;
    },
  };
}

/** The running Redis, Sentinel and proxy pods of `instance` (by label), and `kubectl exec` into the containers of KINDS. */
export function kubectlPods(t: KubectlTarget, instance: string): PodAccess {
  return {
    async pods() {
      const selector = `app.kubernetes.io/instance=${instance},app.kubernetes.io/name in (${Object.keys(KINDS).join(',')})`;
      const r = await kubectl(t, ['get', 'pods', '-l', selector, '-o', 'json']);
      if (r.code !== 0) throw new RotationError(`kubectl get pods: ${oneLine(r.stderr)}`);
      const items: any[] = JSON.parse(r.stdout).items ?? [];
      return items
        .filter((p) => p.status?.phase === 'Running' && !p.metadata.deletionTimestamp)
        .map((p): RotationPod => ({ name: p.metadata.name, ...KINDS[p.metadata.labels['app.kubernetes.io/name']] }))
        .sort((a, b) => a.name.localeCompare(b.name));
    },
    async exec(pod, argv, stdin) {
      const r = await kubectl(t, ['exec', ...(stdin !== undefined ? ['-i'] : []), pod.name, '-c', pod.container, '--', ...argv], stdin);
      if (r.code !== 0) throw new Error(oneLine(r.stderr) || `exit code ${r.code}`);
      return r.stdout;
    },
  };
}
