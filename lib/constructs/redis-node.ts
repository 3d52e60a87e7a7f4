import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { commonLabels, Component, redisTierSelector, REDIS_PORT, SENTINEL_PORT, selectorLabels } from './names';
import {
  AUTH_MOUNT, configMapVolume, execProbe, fieldEnv, passwordVolume, plainEnv, podPlacement, SCRIPTS_MOUNT,
  resourceRequirements, restrictedContainerSecurity, restrictedPodSecurity, scriptCommand,
} from './pod-spec';
import { RedisHaConfiguration, RedisHaPartProps, settingsOf } from './redis-ha-configuration';
import { CONFIG_HASH_ANNOTATION, RedisHaSettings } from './redis-ha-settings';

const DATA_MOUNT = '/data';

/**
 * How the guard checks a master: every 0.2s, each Sentinel and replica asked at once with
 * a 0.3s timeout; a failed check is repeated at once, and two failed checks in a row fence.
 * A partitioned master stops taking writes under a second after the split (worst case:
 * interval + two timeouts), well before down-after-milliseconds lets the other side promote
 * a replica, while one slow answer does not fence.
 */
const GUARD_TIMINGS = { FENCE_CHECK_INTERVAL: '0.2', FENCE_PROBE_TIMEOUT: '0.3', FENCE_AFTER_ROUNDS: 2 };
const GUARD_RESOURCES = { cpuRequest: '20m', memoryRequest: '16Mi', memoryLimit: '64Mi' };

/**
 * A StatefulSet whose volume claim templates carry `apiVersion` and `kind`: the API
 * server stores them, so without them server-side apply shows a difference forever. The
 * generated `k8s` types drop both (even when added by a JSON patch), hence the subclass.
 */
class StatefulSetWithTypedClaims extends k8s.KubeStatefulSet {
  public toJson(): any {
    const json = super.toJson();
    const claims: object[] = json.spec?.volumeClaimTemplates ?? [];
    return { ...json, spec: { ...json.spec, volumeClaimTemplates: claims.map((c) => ({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', ...c })) } };
  }
}

/**
 * A StatefulSet of Redis servers with its headless Service and per-pod /data volumes.
 * The StatefulSet name is the pods' initial role only: which pod is master at any time
 * is decided by the Sentinels and by redis-start.sh.
 */
export abstract class RedisNode extends Construct {
  /** Name of the StatefulSet and its headless Service. */
  public readonly name: string;
  public readonly replicas: number;
  public readonly settings: RedisHaSettings;
  public readonly configuration: RedisHaConfiguration;
  public readonly service: k8s.KubeService;
  public readonly statefulSet: k8s.KubeStatefulSet;

  protected constructor(scope: Construct, id: string, component: 'master' | 'replica', props: RedisHaPartProps) {
    super(scope, id);
    const s = settingsOf('', props);
    this.settings = s;
    this.configuration = props.configuration ?? new RedisHaConfiguration(this, 'Configuration', { settings: s });
    const name = component === 'master' ? s.names.master : s.names.replica;
    this.name = name;
    this.replicas = component === 'master' ? 1 : s.replicas;
    const selector = selectorLabels(s.name, component as Component);
    const labels = { ...commonLabels(s.name, s.labels), ...selector };

    this.service = new k8s.KubeService(this, 'Service', {
      metadata: { name, labels, ...(Object.keys(s.serviceAnnotations).length ? { annotations: s.serviceAnnotations } : {}) },
      spec: {
        clusterIp: 'None',
        // Replicas must find a master by its DNS name before it is ready, and the start
        // script must reach pods that are not ready yet: publish every pod's record.
        publishNotReadyAddresses: true,
        selector,
        ports: [{ name: 'redis', port: REDIS_PORT, targetPort: k8s.IntOrString.fromString('redis') }],
      },
    });

    const env: k8s.EnvVar[] = [
      fieldEnv('POD_NAME', 'metadata.name'),
      fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
      fieldEnv('POD_IP', 'status.podIP'),
      ...plainEnv({
        CLUSTER_DOMAIN: s.clusterDomain,
        GOVERNING_SERVICE: name,
        BOOTSTRAP_MASTER: s.bootstrapMasterHost,
        MASTER_NAME: s.masterName,
        REDIS_PORT,
        SENTINEL_PORT,
        SENTINEL_SERVICE: s.names.sentinelHeadless,
        AUTH_FILE: `${AUTH_MOUNT}/password`,
        DATA_DIR: DATA_MOUNT,
        REDIS_NODES: s.redisPodDnsNames.join(' '),
        FAILOVER_WAIT_SECONDS: s.failoverWaitSeconds,
        HANDOVER_TIMEOUT_SECONDS: s.handoverSeconds,
        GATE_TIMEOUT_SECONDS: s.shutdownGateSeconds,
        SENTINEL_COUNT: s.sentinels,
        SENTINEL_QUORUM: s.quorum,
      }),
    ];
    const probeTiming = { periodSeconds: 5, timeoutSeconds: 4, failureThreshold: 3 };
    this.statefulSet = new StatefulSetWithTypedClaims(this, 'StatefulSet', {
      metadata: { name, labels },
      spec: {
        serviceName: name,
        replicas: this.replicas,
        // Pod order carries no meaning here: who is master is decided at start.
        podManagementPolicy: 'Parallel',
        selector: { matchLabels: selector },
        updateStrategy: { type: 'RollingUpdate' },
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
        template: {
          metadata: {
            labels,
            annotations: { ...s.podAnnotations, [CONFIG_HASH_ANNOTATION]: this.configuration.redisConfigHash },
          },
          spec: {
            securityContext: restrictedPodSecurity(),
            enableServiceLinks: false,
            ...podPlacement(s, redisTierSelector(s.name), s.redisAntiAffinity),
            // preStop waits at its shutdown gate (up to shutdownGateTimeout), hands over (up
            // to handoverTimeout), then Redis needs time to exit cleanly.
            terminationGracePeriodSeconds: s.shutdownGateSeconds + s.handoverSeconds + 15,
            containers: [{
              name: 'redis',
              image: s.image,
              command: scriptCommand('redis-start.sh'),
              ports: [{ name: 'redis', containerPort: REDIS_PORT }],
              env,
              resources: resourceRequirements(s.redisResources),
              securityContext: restrictedContainerSecurity(),
              startupProbe: execProbe(scriptCommand('redis-probe.sh', 'liveness'),
                { periodSeconds: 2, timeoutSeconds: 4, failureThreshold: 150 }),
              livenessProbe: execProbe(scriptCommand('redis-probe.sh', 'liveness'),
                { periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 }),
              readinessProbe: execProbe(scriptCommand('redis-probe.sh', 'readiness'), probeTiming),
              lifecycle: { preStop: { exec: { command: scriptCommand('redis-prestop.sh') } } },
              volumeMounts: [
                { name: 'data', mountPath: DATA_MOUNT },
                { name: 'config', mountPath: '/etc/redis' },
                { name: 'config-template', mountPath: '/etc/redis-template', readOnly: true },
                { name: 'scripts', mountPath: SCRIPTS_MOUNT, readOnly: true },
                { name: 'auth', mountPath: AUTH_MOUNT, readOnly: true },
                { name: 'tmp', mountPath: '/tmp' },
              ],
            }, {
              // The guard: records this pod's data for the start script, fences a master
              // cut off from the Sentinels and a replica, demotes a replaced master.
              name: 'guard',
              image: s.image,
              command: scriptCommand('redis-guard.sh'),
              env: [...env, ...plainEnv(GUARD_TIMINGS)],
              resources: resourceRequirements(GUARD_RESOURCES),
              securityContext: restrictedContainerSecurity(),
              volumeMounts: [
                { name: 'data', mountPath: DATA_MOUNT },
                { name: 'config-template', mountPath: '/etc/redis-template', readOnly: true },
                { name: 'scripts', mountPath: SCRIPTS_MOUNT, readOnly: true },
                { name: 'auth', mountPath: AUTH_MOUNT, readOnly: true },
              ],
            }],
            volumes: [
              { name: 'config', emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString('1Mi') } },
              { name: 'tmp', emptyDir: { sizeLimit: k8s.Quantity.fromString('16Mi') } },
              configMapVolume('config-template', s.names.redisConfig, 0o444),
              configMapVolume('scripts', s.names.scripts, 0o555),
              passwordVolume(s.authSecretName),
            ],
          },
        },
        // A claim template cannot change once the StatefulSet exists: it carries nothing
        // a user may later want to change (no user labels), and apiVersion/kind so that
        // server-side apply sees no difference to what the API server stores.
        volumeClaimTemplates: [{
          metadata: { name: 'data', labels: selector },
          spec: {
            accessModes: ['ReadWriteOnce'],
            storageClassName: s.storageClassName,
            resources: { requests: { storage: k8s.Quantity.fromString(s.storageSize) } },
          },
        }],
      },
    });
  }

  /** Stable DNS names of this StatefulSet's pods, relative to the namespace. */
  public podDnsNames(): string[] {
    return Array.from({ length: this.replicas }, (_, i) => `${this.name}-${i}.${this.name}`);
  }
}
