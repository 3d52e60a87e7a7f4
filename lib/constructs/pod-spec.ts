import { k8s } from 'cdk8s-plus-28';
import { AUTH_MOUNT, SCRIPTS_MOUNT } from '../pod/contract';
import { RedisHaSettings, SpreadConstraint } from './redis-ha-settings';

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

/**
 * The auth Secret, every key (no `items`): the `-previous` keys of a rotation appear
 * without a change to the pods, and kubelet updates the files in place (never mount it
 * with subPath, which freezes them).
 */
export function passwordVolume(secretName: string): k8s.Volume {
  return { name: 'auth', secret: { secretName, defaultMode: 0o440 } };
}

/**
 * Where and as whom a tier's pods run: ServiceAccount (never its token), pull secrets,
 * priority, node selector, tolerations, anti-affinity per node and spreading over zones.
 * `tierSelector` selects every pod of the tier of this instance only.
 */
export function podPlacement(s: RedisHaSettings, tierSelector: { [key: string]: string }, antiAffinity: SpreadConstraint): Omit<k8s.PodSpec, 'containers'> {
  const selector = { matchLabels: tierSelector };
  const sameNode = { topologyKey: 'kubernetes.io/hostname', labelSelector: selector };
  return {
    serviceAccountName: s.serviceAccountName,
    automountServiceAccountToken: false,
    ...(s.imagePullSecrets.length ? { imagePullSecrets: s.imagePullSecrets.map((name) => ({ name })) } : {}),
    ...(s.priorityClassName ? { priorityClassName: s.priorityClassName } : {}),
    ...(Object.keys(s.nodeSelector).length ? { nodeSelector: s.nodeSelector } : {}),
    ...(s.tolerations.length ? { tolerations: s.tolerations } : {}),
    affinity: {
      podAntiAffinity: antiAffinity === SpreadConstraint.REQUIRED
        ? { requiredDuringSchedulingIgnoredDuringExecution: [sameNode] }
        : { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: sameNode }] },
    },
    topologySpreadConstraints: [{
      maxSkew: 1,
      topologyKey: 'topology.kubernetes.io/zone',
      whenUnsatisfiable: s.zoneSpread === SpreadConstraint.REQUIRED ? 'DoNotSchedule' : 'ScheduleAnyway',
      labelSelector: selector,
    }],
  };
}

/**
 * Ephemeral storage of a container. What counts against it: the container's writable layer
 * (none: the root filesystem is read-only) and its log files, which the kubelet rotates at
 * 10Mi x 5 files by default (50Mi). Against the sum of a pod's limits also count its
 * emptyDirs without `medium: Memory` (tmp 16Mi; the Sentinel's data 16Mi), each capped by
 * its own sizeLimit. The limits leave room for all of that several times over, so only a
 * runaway writer is evicted; the requests cover the emptyDirs and some logs.
 */
export interface EphemeralStorage {
  readonly request: string;
  readonly limit: string;
}

/** Redis and Sentinel: logs plus a pod's emptyDirs (at most 32Mi). */
export const MAIN_EPHEMERAL_STORAGE: EphemeralStorage = { request: '64Mi', limit: '256Mi' };
/** The guard and the janitor: one log line per decision. */
export const HELPER_EPHEMERAL_STORAGE: EphemeralStorage = { request: '16Mi', limit: '128Mi' };

export function resourceRequirements(r: {
  cpuRequest: string; cpuLimit?: string; memoryRequest: string; memoryLimit: string;
}, ephemeral: EphemeralStorage): k8s.ResourceRequirements {
  return {
    requests: {
      'cpu': k8s.Quantity.fromString(r.cpuRequest),
      'memory': k8s.Quantity.fromString(r.memoryRequest),
      'ephemeral-storage': k8s.Quantity.fromString(ephemeral.request),
    },
    limits: {
      ...(r.cpuLimit ? { cpu: k8s.Quantity.fromString(r.cpuLimit) } : {}),
      'memory': k8s.Quantity.fromString(r.memoryLimit),
      'ephemeral-storage': k8s.Quantity.fromString(ephemeral.limit),
    },
  };
}
