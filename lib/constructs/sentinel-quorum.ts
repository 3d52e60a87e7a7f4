import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { commonLabels, REDIS_PORT, SENTINEL_PORT, selectorLabels } from './names';
import {
  AUTH_MOUNT, configMapVolume, execProbe, HELPER_EPHEMERAL_STORAGE, MAIN_EPHEMERAL_STORAGE, passwordVolume, podPlacement, SCRIPTS_MOUNT,
  resourceRequirements, restrictedContainerSecurity, restrictedPodSecurity, scriptCommand, tlsMounts, tlsVolumes,
} from './pod-spec';
import { exemptionAnnotations, sentinelExemptions } from './policy-exemptions';
import { RedisHaConfiguration, RedisHaPartProps, claimPart, settingsOf } from './redis-ha-configuration';
import { CONFIG_HASH_ANNOTATION, RedisHaSettings } from './redis-ha-settings';
import { exporterContainer } from './metrics-exporter';
import { janitorContainerEnv, MOUNTS, SentinelPodContract, sentinelContainerEnv } from '../pod/contract';

export interface SentinelQuorumProps extends RedisHaPartProps {}

/**
 * Sentinel internal periods (milliseconds) the janitor applies with SENTINEL DEBUG
 * (lib/pod/contract.ts derives them).
 */
export { SENTINEL_TIMINGS } from '../pod/contract';

/**
 * Deployment `<name>-sentinel`, its Service `<name>-sentinel` (port 26379, what clients
 * use), a headless Service `<name>-sentinel-headless` listing every Sentinel pod (what
 * the scripts use to ask all of them) and a PodDisruptionBudget `<name>-sentinel` (one
 * Sentinel down at a time). Each pod runs Sentinel plus a small janitor that removes
 * phantom peers left behind by replaced pods and keeps Sentinel's INFO period at one
 * second (SENTINEL_TIMINGS). On its own it also creates the configuration it mounts.
 */
export class SentinelQuorum extends Construct {
  public readonly settings: RedisHaSettings;
  public readonly configuration: RedisHaConfiguration;
  public readonly service: k8s.KubeService;
  public readonly headlessService: k8s.KubeService;
  public readonly deployment: k8s.KubeDeployment;
  public readonly disruptionBudget: k8s.KubePodDisruptionBudget;

  constructor(scope: Construct, id: string, props: SentinelQuorumProps = {}) {
    super(scope, id);
    const s = settingsOf('', props);
    this.settings = s;
    claimPart(this, 'SentinelQuorum', s.name);
    this.configuration = props.configuration ?? new RedisHaConfiguration(this, 'Configuration', { settings: s });
    const selector = selectorLabels(s.name, 'sentinel');
    const labels = { ...commonLabels(s.name, s.labels), ...selector };
    const serviceMetadata = (name: string) => ({
      name, labels, ...(Object.keys(s.serviceAnnotations).length ? { annotations: s.serviceAnnotations } : {}),
    });
    const port = { name: 'sentinel', port: SENTINEL_PORT, targetPort: k8s.IntOrString.fromString('sentinel') };

    this.service = new k8s.KubeService(this, 'Service', {
      metadata: serviceMetadata(s.names.sentinel),
      spec: { selector, ports: [port] },
    });
    this.headlessService = new k8s.KubeService(this, 'HeadlessService', {
      metadata: serviceMetadata(s.names.sentinelHeadless),
      spec: { clusterIp: 'None', publishNotReadyAddresses: true, selector, ports: [port] },
    });

    const contract: SentinelPodContract = {
      sentinelService: s.names.sentinelHeadless,
      redisPods: s.redisPodDnsNames,
      masterName: s.masterName,
      clusterDomain: s.clusterDomain,
      redisPort: REDIS_PORT,
      sentinelPort: SENTINEL_PORT,
      sentinelCount: s.sentinels,
      janitorIntervalSeconds: s.janitorSeconds,
      tls: s.tls !== undefined,
      authSecretName: s.authSecretName,
      metrics: s.metrics,
      proxy: s.proxy,
    };
    const scriptsMount = { name: 'scripts', mountPath: SCRIPTS_MOUNT, readOnly: true };
    const tmpMount = { name: 'tmp', mountPath: MOUNTS.tmp };

    this.deployment = new k8s.KubeDeployment(this, 'Deployment', {
      metadata: { name: s.names.sentinel, labels, annotations: exemptionAnnotations(sentinelExemptions(s.workloadImages)) },
      spec: {
        replicas: s.sentinels,
        selector: { matchLabels: selector },
        // Bring the new Sentinel up before an old one goes: the quorum never shrinks.
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: k8s.IntOrString.fromNumber(1), maxUnavailable: k8s.IntOrString.fromNumber(0) } },
        template: {
          metadata: {
            labels,
            annotations: { ...s.podAnnotations, [CONFIG_HASH_ANNOTATION]: this.configuration.sentinelConfigHash },
          },
          spec: {
            securityContext: restrictedPodSecurity(),
            enableServiceLinks: false,
            ...podPlacement(s, selector, s.sentinelAntiAffinity),
            terminationGracePeriodSeconds: 10,
            containers: [
              {
                name: 'sentinel',
                image: s.image,
                command: scriptCommand('sentinel-start.sh'),
                ports: [{ name: 'sentinel', containerPort: SENTINEL_PORT }],
                env: sentinelContainerEnv(contract),
                resources: resourceRequirements(s.sentinelResources, MAIN_EPHEMERAL_STORAGE),
                securityContext: restrictedContainerSecurity(),
                // sentinel-start waits, without a Sentinel process, until it knows which
                // master to monitor (after every pod restarted, until a Redis pod answers):
                // liveness starts counting once Sentinel answers, so a waiting container is
                // not killed and, on a real kubelet, pushed into CrashLoopBackOff.
                startupProbe: execProbe(scriptCommand('sentinel-probe.sh', 'liveness'),
                  { periodSeconds: 2, timeoutSeconds: 4, failureThreshold: 150 }),
                livenessProbe: execProbe(scriptCommand('sentinel-probe.sh', 'liveness'),
                  { periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 }),
                readinessProbe: execProbe(scriptCommand('sentinel-probe.sh', 'readiness'),
                  { periodSeconds: 3, timeoutSeconds: 2, failureThreshold: 2 }),
                volumeMounts: [
                  { name: 'data', mountPath: MOUNTS.sentinelData },
                  { name: 'config-template', mountPath: MOUNTS.sentinelTemplate, readOnly: true },
                  scriptsMount,
                  { name: 'auth', mountPath: AUTH_MOUNT, readOnly: true },
                  tmpMount,
                  ...tlsMounts(s),
                ],
              },
              {
                name: 'janitor',
                image: s.image,
                command: scriptCommand('sentinel-janitor.sh'),
                env: janitorContainerEnv(contract),
                resources: resourceRequirements({ cpuRequest: '10m', memoryRequest: '16Mi', memoryLimit: '32Mi' }, HELPER_EPHEMERAL_STORAGE),
                securityContext: restrictedContainerSecurity(),
                volumeMounts: [
                  scriptsMount,
                  { name: 'auth', mountPath: AUTH_MOUNT, readOnly: true },
                  tmpMount,
                  // For the password rotation: the users (acl-users) and the auth-pass Sentinel uses (its config file).
                  { name: 'config-template', mountPath: MOUNTS.sentinelTemplate, readOnly: true },
                  { name: 'data', mountPath: MOUNTS.sentinelData, readOnly: true },
                  ...tlsMounts(s),
                ],
              },
              ...(s.metrics ? [exporterContainer(s, SENTINEL_PORT)] : []),
            ],
            volumes: [
              { name: 'data', emptyDir: { sizeLimit: k8s.Quantity.fromString('16Mi') } },
              { name: 'tmp', emptyDir: { sizeLimit: k8s.Quantity.fromString('16Mi') } },
              configMapVolume('config-template', s.names.sentinelConfig, 0o444),
              configMapVolume('scripts', s.names.scripts, 0o555),
              passwordVolume(s.authSecretName),
              ...tlsVolumes(s),
            ],
          },
        },
      },
    });

    // At most one Sentinel pod down for voluntary disruptions (drains).
    this.disruptionBudget = new k8s.KubePodDisruptionBudget(this, 'DisruptionBudget', {
      metadata: { name: s.names.sentinelBudget, labels: commonLabels(s.name, s.labels) },
      spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: selector } },
    });
  }
}
