import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { createHash } from 'crypto';
import { secretKey } from '../pod/acl';
import { MOUNTS, PROXY_TIMINGS, PROXY_USER, proxyContainerEnv, TLS_FILES } from '../pod/contract';
import {
  PROXY_BACKENDS, PROXY_CONFIG_DIR, PROXY_CONFIG_FILE, PROXY_LUA_FILE, proxyLua, renderProxyConfig,
} from '../pod/proxy-config';
import {
  commonLabels, PROXY_METRICS_PORT, PROXY_READ_PORT, PROXY_WRITE_PORT, REDIS_PORT, SENTINEL_PORT, selectorLabels,
} from './names';
import { configMapVolume, podPlacement, resourceRequirements, restrictedContainerSecurity } from './pod-spec';
import { exemptionAnnotations, proxyExemptions } from './policy-exemptions';
import { RedisHaPartProps, claimPart, settingsOf } from './redis-ha-configuration';
import { CONFIG_HASH_ANNOTATION, RedisHaSettings, SpreadConstraint } from './redis-ha-settings';
import { ValidationError } from './validation';

export interface RedisProxyProps extends RedisHaPartProps {}

/**
 * uid/gid of the proxy pods: HAProxy needs no file of its own (its configuration and the
 * password are mounted, readable through fsGroup), so it runs as an unprivileged id above
 * 10000 rather than the image's `haproxy` user (99).
 */
export const PROXY_UID = 10001;

/** HAProxy's binary in the official image. */
export const PROXY_COMMAND = '/usr/local/sbin/haproxy';

/**
 * The container's command: wait (at most START_WAIT_SECONDS) until every Redis pod's name and
 * the Sentinel Service resolve, so HAProxy starts with every address (a pod not created yet has no name), then
 * exec HAProxy in the foreground. One log line per outcome.
 */
export function proxyStartScript(configFile: string): string {
  return [
    'i=0',
    'while :; do missing=""; for h in $PROXY_HOSTS; do getent hosts "$h" >/dev/null || missing="$missing $h"; done',
    '  [ -z "$missing" ] && { echo "redis-proxy: every Redis pod resolves, starting HAProxy"; break; }',
    '  [ "$i" -ge "$START_WAIT_SECONDS" ] && { echo "redis-proxy: starting HAProxy without the address of$missing (the cluster DNS fills it in)"; break; }',
    '  i=$((i+1)); sleep 1',
    'done',
    `exec ${PROXY_COMMAND} -db -f ${configFile}`,
  ].join('\n');
}

/** Where the proxy mounts its TLS files: the certificate as `proxy.pem` and its key as `proxy.pem.key` (HAProxy's naming). */
const PROXY_TLS_DIR = '/etc/redis-proxy-tls';

/** HAProxy with a few hundred connections and the decider: tens of MiB. */
const PROXY_RESOURCES = { cpuRequest: '50m', memoryRequest: '64Mi', memoryLimit: '256Mi' };

/**
 * The proxy tier for clients that do not speak Sentinel: Deployment `<name>-proxy`
 * (HAProxy, `proxyReplicas` pods, spread over nodes and zones), its ConfigMap
 * `<name>-proxy` (haproxy.cfg and the Lua decider), PodDisruptionBudget `<name>-proxy`
 * (one pod down at a time) and two Services, both on port 6379:
 *
 * - `<name>-write`: the master. Only the node the newest Sentinel configuration names
 *   (highest config epoch, answered by a majority of the Sentinels) and that itself says
 *   ROLE master takes connections; a node that loses that place has its connections shut.
 * - `<name>-read`: the replicas in sync (the master only while none is).
 *
 * HAProxy's Prometheus exporter serves /metrics on port 8404 (`metrics`), /healthz for
 * the probes. Made by `RedisSentinelHA` unless `proxy` is false.
 */
export class RedisProxy extends Construct {
  public readonly settings: RedisHaSettings;
  public readonly configMap: k8s.KubeConfigMap;
  public readonly deployment: k8s.KubeDeployment;
  public readonly writeService: k8s.KubeService;
  public readonly readService: k8s.KubeService;
  public readonly disruptionBudget: k8s.KubePodDisruptionBudget;

  constructor(scope: Construct, id: string, props: RedisProxyProps = {}) {
    super(scope, id);
    const s = settingsOf('', props);
    this.settings = s;
    if (!s.proxy) {
      throw new ValidationError('proxy', false,
        'is false in the settings this RedisProxy was given; leave the part out, or resolve the settings with proxy: true');
    }
    claimPart(this, 'RedisProxy', s.name);
    const selector = selectorLabels(s.name, 'proxy');
    const labels = { ...commonLabels(s.name, s.labels), ...selector };
    const config = renderProxyConfig({
      redisPods: s.redisPodDnsNames,
      sentinelService: s.names.sentinel,
      clusterDomain: s.clusterDomain,
      redisPort: REDIS_PORT,
      sentinelPort: SENTINEL_PORT,
      writePort: PROXY_WRITE_PORT,
      readPort: PROXY_READ_PORT,
      metricsPort: PROXY_METRICS_PORT,
      holdMs: PROXY_TIMINGS.holdMs,
      ...(s.tls ? { tls: { caFile: `${PROXY_TLS_DIR}/${TLS_FILES.ca}`, certFile: `${PROXY_TLS_DIR}/proxy.pem` } } : {}),
    });
    const lua = proxyLua();
    this.configMap = new k8s.KubeConfigMap(this, 'Config', {
      metadata: { name: s.names.proxy, labels: commonLabels(s.name, s.labels) },
      data: { [PROXY_CONFIG_FILE]: config, [PROXY_LUA_FILE]: lua },
    });
    const configHash = createHash('sha256').update(config).update(lua).digest('hex').slice(0, 16);

    const serviceMetadata = (name: string) => ({
      name, labels, ...(Object.keys(s.serviceAnnotations).length ? { annotations: s.serviceAnnotations } : {}),
    });
    this.writeService = new k8s.KubeService(this, 'WriteService', {
      metadata: serviceMetadata(s.names.proxyWrite),
      spec: { selector, ports: [{ name: 'redis', port: REDIS_PORT, targetPort: k8s.IntOrString.fromString('write') }] },
    });
    this.readService = new k8s.KubeService(this, 'ReadService', {
      metadata: serviceMetadata(s.names.proxyRead),
      spec: { selector, ports: [{ name: 'redis', port: REDIS_PORT, targetPort: k8s.IntOrString.fromString('read') }] },
    });

    const probe = (timing: { periodSeconds: number; failureThreshold: number }): k8s.Probe => ({
      httpGet: { path: '/healthz', port: k8s.IntOrString.fromString('metrics') },
      timeoutSeconds: 2, successThreshold: 1, ...timing,
    });
    const env = proxyContainerEnv({
      masterName: s.masterName,
      clusterDomain: s.clusterDomain,
      redisPort: REDIS_PORT,
      sentinelPort: SENTINEL_PORT,
      sentinelCount: s.sentinels,
      tls: s.tls !== undefined,
      redisPods: s.redisPodDnsNames,
      sentinelService: s.names.sentinel,
    }, PROXY_BACKENDS);
    this.deployment = new k8s.KubeDeployment(this, 'Deployment', {
      metadata: { name: s.names.proxy, labels, annotations: exemptionAnnotations(proxyExemptions(s.proxyImageHasDigest)) },
      spec: {
        replicas: s.proxyReplicas,
        selector: { matchLabels: selector },
        // A new proxy pod is up before an old one goes.
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: k8s.IntOrString.fromNumber(1), maxUnavailable: k8s.IntOrString.fromNumber(0) } },
        template: {
          metadata: { labels, annotations: { ...s.podAnnotations, [CONFIG_HASH_ANNOTATION]: configHash } },
          spec: {
            securityContext: {
              runAsUser: PROXY_UID, runAsGroup: PROXY_UID, fsGroup: PROXY_UID, runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' },
            },
            enableServiceLinks: false,
            // Stateless: spread where the scheduler can, never left pending for it.
            ...podPlacement(s, selector, SpreadConstraint.PREFERRED),
            terminationGracePeriodSeconds: 10,
            containers: [{
              name: 'haproxy',
              image: s.proxyImage,
              command: ['sh', '-c', proxyStartScript(`${PROXY_CONFIG_DIR}/${PROXY_CONFIG_FILE}`)],
              ports: [
                { name: 'write', containerPort: PROXY_WRITE_PORT },
                { name: 'read', containerPort: PROXY_READ_PORT },
                { name: 'metrics', containerPort: PROXY_METRICS_PORT },
              ],
              env,
              resources: resourceRequirements(PROXY_RESOURCES, { request: '16Mi', limit: '128Mi' }),
              securityContext: restrictedContainerSecurity(),
              livenessProbe: probe({ periodSeconds: 10, failureThreshold: 3 }),
              readinessProbe: probe({ periodSeconds: 3, failureThreshold: 2 }),
              volumeMounts: [
                { name: 'config', mountPath: PROXY_CONFIG_DIR, readOnly: true },
                { name: 'auth', mountPath: MOUNTS.auth, readOnly: true },
                // The decider's password status file (the root filesystem is read-only).
                { name: 'tmp', mountPath: MOUNTS.tmp },
                ...(s.tls ? [{ name: 'tls', mountPath: PROXY_TLS_DIR, readOnly: true }] : []),
              ],
            }],
            volumes: [
              configMapVolume('config', s.names.proxy, 0o444),
              { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString('1Mi') } },
              // Only the proxy user's password (and, during a rotation, the previous one).
              {
                name: 'auth',
                secret: {
                  secretName: s.authSecretName, defaultMode: 0o440, optional: true,
                  items: [secretKey(PROXY_USER), `${secretKey(PROXY_USER)}-previous`].map((k) => ({ key: k, path: k })),
                },
              },
              ...(s.tls ? [{
                name: 'tls',
                secret: {
                  secretName: s.tls.secretName, defaultMode: 0o440,
                  items: [
                    { key: TLS_FILES.cert, path: 'proxy.pem' }, { key: TLS_FILES.key, path: 'proxy.pem.key' }, { key: TLS_FILES.ca, path: TLS_FILES.ca },
                  ],
                },
              }] : []),
            ],
          },
        },
      },
    });
    this.disruptionBudget = new k8s.KubePodDisruptionBudget(this, 'DisruptionBudget', {
      metadata: { name: s.names.proxy, labels: commonLabels(s.name, s.labels) },
      spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: selector } },
    });
  }
}
