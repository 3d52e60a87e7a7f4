import { k8s } from 'cdk8s-plus-28';
import { METRICS_EXPORTER_FLAGS, secretKey } from '../pod/acl';
import { HELPER_EPHEMERAL_STORAGE, resourceRequirements, restrictedContainerSecurity } from './pod-spec';
import { METRICS_PORT } from './names';
import { RedisHaSettings } from './redis-ha-settings';

export { METRICS_PORT };

/** The exporter's binary in EXPORTER_IMAGE (its entrypoint). */
export const EXPORTER_COMMAND = '/redis_exporter';

/** Idle between scrapes; a scrape of INFO and a few views takes a few MiB. */
const EXPORTER_RESOURCES = { cpuRequest: '10m', memoryRequest: '16Mi', memoryLimit: '64Mi' };

/**
 * The redis_exporter sidecar of a Redis or Sentinel pod: scrapes the server beside it on
 * loopback, as user `metrics` (password from the auth Secret's `metrics-password`, in the
 * environment: the exporter has no way to read a plain password file), and serves
 * /metrics on the named port `metrics`.
 *
 * The password is read when the container starts: the exporter (1.45) never re-reads it,
 * and its --redis.password-file is a JSON map read once at start too. A rotation of the
 * metrics password therefore needs the pods restarted before `-previous` is removed (see
 * lib/ops/rotation.ts, which leaves `metrics` out).
 *
 * With TLS the exporter speaks TLS to the server (rediss://) without checking its
 * certificate: it connects to localhost, a name the certificates do not carry, and the
 * connection never leaves the pod. The servers do not ask clients for certificates
 * (tls-auth-clients optional), so it needs no TLS files.
 *
 * Flags as `--name=value` (Go's flag package takes both dashes); METRICS_EXPORTER_FLAGS
 * (`--config-command=-`: no CONFIG GET, which would read masterauth) are those the ACL
 * user was derived with.
 */
export function exporterContainer(s: RedisHaSettings, serverPort: number): k8s.Container {
  const scheme = s.tls ? 'rediss' : 'redis';
  const probe = (timing: { periodSeconds: number; failureThreshold: number }): k8s.Probe => ({
    httpGet: { path: '/health', port: k8s.IntOrString.fromString('metrics') },
    timeoutSeconds: 2, successThreshold: 1, ...timing,
  });
  return {
    name: 'metrics',
    image: s.metricsImage,
    command: [EXPORTER_COMMAND],
    args: [
      `--redis.addr=${scheme}://localhost:${serverPort}`,
      '--redis.user=metrics',
      ...METRICS_EXPORTER_FLAGS,
      ...(s.tls ? ['--skip-tls-verification'] : []),
      `--web.listen-address=:${METRICS_PORT}`,
      '--log-format=json',
    ],
    env: [{ name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: s.authSecretName, key: secretKey('metrics') } } }],
    ports: [{ name: 'metrics', containerPort: METRICS_PORT }],
    resources: resourceRequirements(EXPORTER_RESOURCES, HELPER_EPHEMERAL_STORAGE),
    securityContext: restrictedContainerSecurity(),
    livenessProbe: probe({ periodSeconds: 10, failureThreshold: 3 }),
    readinessProbe: probe({ periodSeconds: 10, failureThreshold: 2 }),
  };
}
