/**
 * The rotation tool's access (lib/ops/rotation.ts) to a simulated cluster instead of
 * kubectl: the Secret through SimCluster.updateSecret, so every pod's kubelet applies each
 * update at its own moment within `maxSkewMs`, and exec into the pods' sidecars (the
 * guard, the janitor) and the proxy pods' haproxy container.
 */
import { PodAccess, RotationPod, SecretAccess } from '../lib/ops/rotation';
import { SimCluster } from './sim';

export interface SimRotationAccess {
  secret: SecretAccess;
  pods: PodAccess;
}

export function simRotationAccess(sim: SimCluster, namespace: string, secretName: string, opts: { maxSkewMs: number; instance?: string }): SimRotationAccess {
  const instance = opts.instance ?? 'redis';
  const kinds: Record<string, Omit<RotationPod, 'name'>> = {
    [`${instance}-master`]: { kind: 'redis', container: 'guard' },
    [`${instance}-slave`]: { kind: 'redis', container: 'guard' },
    [`${instance}-sentinel`]: { kind: 'sentinel', container: 'janitor' },
    [`${instance}-proxy`]: { kind: 'proxy', container: 'haproxy' },
  };
  return {
    secret: {
      name: `${namespace}/${secretName}`,
      read: async () => sim.secret(namespace, secretName),
      update: async (changes) => {
        const data = sim.secret(namespace, secretName);
        if (!data) throw new Error(`Secret ${namespace}/${secretName} not found`);
        for (const [k, v] of Object.entries(changes)) {
          if (v === null) delete data[k];
          else data[k] = v;
        }
        sim.updateSecret(namespace, secretName, data, { maxSkewMs: opts.maxSkewMs });
      },
    },
    pods: {
      pods: async () => sim.pods()
        .filter((p) => p.phase === 'Running' && kinds[p.controller.split('/')[1]])
        .map((p) => ({ name: p.name, ...kinds[p.controller.split('/')[1]] }))
        .sort((a, b) => a.name.localeCompare(b.name)),
      exec: async (pod, argv, stdin) => {
        const r = await sim.exec(pod.name, argv, { container: pod.container, stdin, timeoutMs: 15_000 });
        if (r.code !== 0) throw new Error((r.stderr.trim() || `exit code ${r.code}`).split('\n').pop());
        return r.stdout;
      },
    },
  };
}
