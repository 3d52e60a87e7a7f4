import { k8s } from 'cdk8s-plus-28';
import { AUTH_MOUNT, SCRIPTS_MOUNT } from '../pod/contract';

/**
 * Small named helpers for the raw pod-spec pieces that every Redis and Sentinel pod
 * shares. The constructs use the generated `k8s` types directly (not cdk8s-plus
 * workloads) so that selectors carry only our stable labels, never construct-path hashes.
 */

/** uid/gid of the `redis` user in the official Redis images. */
export const REDIS_UID = 999;

export { AUTH_MOUNT, SCRIPTS_MOUNT };

export function restrictedPodSecurity(): k8s.PodSecurityContext {
  return {
    runAsUser: REDIS_UID,
    runAsGroup: REDIS_UID,
    fsGroup: REDIS_UID,
    runAsNonRoot: true,
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

export function restrictedContainerSecurity(): k8s.SecurityContext {
  return {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
  };
}

export function fieldEnv(name: string, fieldPath: string): k8s.EnvVar {
  return { name, valueFrom: { fieldRef: { fieldPath } } };
}

export function plainEnv(values: Record<string, string | number>): k8s.EnvVar[] {
  return Object.entries(values).map(([name, value]) => ({ name, value: String(value) }));
}

export function execProbe(command: string[], timing: {
  periodSeconds: number; timeoutSeconds: number; failureThreshold: number; initialDelaySeconds?: number;
}): k8s.Probe {
  return { exec: { command }, successThreshold: 1, ...timing };
}

export function scriptCommand(script: string, ...args: string[]): string[] {
  return ['sh', `${SCRIPTS_MOUNT}/${script}`, ...args];
}

export function configMapVolume(name: string, configMapName: string, defaultMode: number): k8s.Volume {
  return { name, configMap: { name: configMapName, defaultMode } };
}

export function passwordVolume(secretName: string): k8s.Volume {
  return {
    name: 'auth',
    secret: { secretName, defaultMode: 0o440, items: [{ key: 'password', path: 'password' }] },
  };
}

/** Spread pods of one tier over nodes where the scheduler can; never block scheduling. */
export function preferSpreadOverNodes(matchLabels: Record<string, string>): k8s.Affinity {
  return {
    podAntiAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [{
        weight: 100,
        podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels } },
      }],
    },
  };
}

export function resourceRequirements(r: {
  cpuRequest: string; cpuLimit?: string; memoryRequest: string; memoryLimit: string;
}): k8s.ResourceRequirements {
  return {
    requests: { cpu: k8s.Quantity.fromString(r.cpuRequest), memory: k8s.Quantity.fromString(r.memoryRequest) },
    limits: {
      ...(r.cpuLimit ? { cpu: k8s.Quantity.fromString(r.cpuLimit) } : {}),
      memory: k8s.Quantity.fromString(r.memoryLimit),
    },
  };
}
