import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { commonLabels, Component, redisTierSelector, REDIS_PORT, SENTINEL_PORT, selectorLabels } from './names';
import {
  AUTH_MOUNT, configMapVolume, execProbe, HELPER_EPHEMERAL_STORAGE, MAIN_EPHEMERAL_STORAGE, passwordVolume, podPlacement, SCRIPTS_MOUNT,
  resourceRequirements, restrictedContainerSecurity, restrictedPodSecurity, scriptCommand, tlsMounts, tlsVolumes,
} from './pod-spec';
import { exemptionAnnotations, redisExemptions } from './policy-exemptions';
import { RedisHaConfiguration, RedisHaPartProps, claimPart, settingsOf } from './redis-ha-configuration';
import { CONFIG_HASH_ANNOTATION, RedisHaSettings } from './redis-ha-settings';
import { exporterContainer } from './metrics-exporter';
import { guardContainerEnv, MOUNTS, RedisPodContract, redisContainerEnv } from '../pod/contract';

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
    claimPart(this, component === 'master' ? 'RedisMaster' : 'RedisReplicaSet', s.name);
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

    const contract: RedisPodContract = {
      governingService: name,
      bootstrapMaster: s.bootstrapMasterHost,
      redisPods: s.redisPodDnsNames,
      sentinelService: s.names.sentinelHeadless,
      masterName: s.masterName,
      clusterDomain: s.clusterDomain,
      redisPort: REDIS_PORT,
      sentinelPort: SENTINEL_PORT,
      sentinelCount: s.sentinels,
      sentinelQuorum: s.quorum,
      failoverWaitSeconds: s.failoverWaitSeconds,
      handoverTimeoutSeconds: s.handoverSeconds,
      shutdownGateTimeoutSeconds: s.shutdownGateSeconds,
      tls: s.tls !== undefined,
      authSecretName: s.authSecretName,
      metrics: s.metrics,
      proxy: s.proxy,
    };
    const probeTiming = { periodSeconds: 5, timeoutSeconds: 4, failureThreshold: 3 };
    this.statefulSet = new StatefulSetWithTypedClaims(this, 'StatefulSet', {
      metadata: { name, labels, annotations: exemptionAnnotations(redisExemptions(s.workloadImages)) },
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
              env: redisContainerEnv(contract),
              resources: resourceRequirements(s.redisResources, MAIN_EPHEMERAL_STORAGE),
              securityContext: restrictedContainerSecurity(),
              startupProbe: execProbe(scriptCommand('redis-probe.sh', 'liveness'),
                { periodSeconds: 2, timeoutSeconds: 4, failureThreshold: 150 }),
              livenessProbe: execProbe(scriptCommand('redis-probe.sh', 'liveness'),
                { periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 }),
              readinessProbe: execProbe(scriptCommand('redis-probe.sh', 'readiness'), probeTiming),
              lifecycle: { preStop: { exec: { command: scriptCommand('redis-prestop.sh') } } },
              volumeMounts: [
                { name: 'data', mountPath: MOUNTS.redisData },
                { name: 'config', mountPath: MOUNTS.redisConfig },
                { name: 'config-template', mountPath: MOUNTS.redisTemplate, readOnly: true },
                { name: 'scripts', mountPath: SCRIPTS_MOUNT, readOnly: true },
                { name: 'auth', mountPath: AUTH_MOUNT, readOnly: true },
                { name: 'tmp', mountPath: MOUNTS.tmp },
                ...tlsMounts(s),
              ],
            }, {
              // The guard: records this pod's data for the start script, fences a master
              // cut off from the Sentinels and a replica, demotes a replaced master.
              name: 'guard',
              image: s.image,
              command: scriptCommand('redis-guard.sh'),
              env: guardContainerEnv(contract),
              resources: resourceRequirements(GUARD_RESOURCES, HELPER_EPHEMERAL_STORAGE),
              securityContext: restrictedContainerSecurity(),
              volumeMounts: [
                { name: 'data', mountPath: MOUNTS.redisData },
                { name: 'config-template', mountPath: MOUNTS.redisTemplate, readOnly: true },
                { name: 'scripts', mountPath: SCRIPTS_MOUNT, readOnly: true },
                { name: 'auth', mountPath: AUTH_MOUNT, readOnly: true },
                // The rotation status file (the root filesystem is read-only).
                { name: 'tmp', mountPath: MOUNTS.tmp },
                ...tlsMounts(s),
              ],
            }, ...(s.metrics ? [exporterContainer(s, REDIS_PORT)] : [])],
            volumes: [
              { name: 'config', emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString('1Mi') } },
              { name: 'tmp', emptyDir: { sizeLimit: k8s.Quantity.fromString('16Mi') } },
              configMapVolume('config-template', s.names.redisConfig, 0o444),
              configMapVolume('scripts', s.names.scripts, 0o555),
              passwordVolume(s.authSecretName),
              ...tlsVolumes(s),
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
