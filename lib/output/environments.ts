import { App, Chart } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { NAMESPACE_CONTEXT } from '../constructs/redis-monitoring';
import { RedisSentinelHA, RedisSentinelHAProps } from '../constructs/redis-sentinel-ha';
import { addArgoCdAnnotations, ArgoCdSettings } from './argocd';
import { requireDnsLabel, requireKnownKeys, ValidationError } from '../constructs/validation';

/** One deployment environment: a name (the overlay directory), a namespace and the system's props. */
export interface EnvironmentProfile {
  /** Name of the environment and of its overlay directory, `dist/overlays/<name>`. */
  readonly name: string;
  /** Namespace every object of this environment lives in (set by the overlay's kustomization). */
  readonly namespace: string;
  /** Props of the Redis Sentinel system in this environment; unset props keep the base's defaults. */
  readonly redis: RedisSentinelHAProps;
  /**
   * How Argo CD deploys this environment; `npm run synth` writes its Application to
   * `dist/argocd/<name>/application.yaml`. Without it, no Application is written.
   */
  readonly argocd?: ArgoCdSettings;
}

const PROFILE_KEYS = ['name', 'namespace', 'redis', 'argocd'];

/**
 * Namespaces an environment may not use: Kubernetes' own (`kube-system`, `kube-public`,
 * `kube-node-lease`) and `default`, where everything lands that names no namespace.
 */
export const RESERVED_NAMESPACES: readonly string[] = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

/** A Kubernetes object as synthesized: plain JSON. */
export type ManifestObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: unknown }; [k: string]: unknown };

export interface RedisHaChartProps {
  /**
   * Namespace of the environment: the chart adds its Namespace object. The other objects
   * get no namespace here; the overlay's kustomization sets it.
   * @default - none: the environment-neutral base
   */
  readonly namespace?: string;
  /**
   * Props of the Redis Sentinel system.
   * @default - the construct defaults
   */
  readonly redis?: RedisSentinelHAProps;
}

/**
 * The whole system in one chart. Without a namespace it is the environment-neutral
 * base; with one it is an environment, including its Namespace object.
 */
export class RedisHaChart extends Chart {
  public readonly ha: RedisSentinelHA;

  constructor(scope: Construct, id: string, props: RedisHaChartProps = {}) {
    super(scope, id);
    if (props.namespace !== undefined) {
      // The objects get their namespace from the overlay, but the alert rules must name it
      // in their expressions (RedisMonitoring reads this context).
      this.node.setContext(NAMESPACE_CONTEXT, props.namespace);
      new k8s.KubeNamespace(this, 'Namespace', {
        metadata: {
          name: requireNamespace(props.namespace),
          labels: {
            'app.kubernetes.io/part-of': 'redis-sentinel-ha',
            // Every pod here runs as non-root with a read-only root and no capabilities.
            'pod-security.kubernetes.io/enforce': 'restricted',
          },
        },
      });
    }
    // The objects get their namespace from the overlay, not the chart: a Certificate's
    // fully qualified DNS names take it from the environment unless tls.namespace says.
    const tls = props.redis?.tls;
    const redis = tls?.issuer !== undefined && tls.namespace === undefined && props.namespace !== undefined
      ? { ...props.redis, tls: { ...tls, namespace: props.namespace } }
      : props.redis;
    this.ha = new RedisSentinelHA(this, 'redis', redis);
    // Sync waves (inert without Argo CD): Namespace, then configuration, then workloads.
    addArgoCdAnnotations(this);
  }
}

/** An environment's namespace: a DNS label, and not one of Kubernetes' own or `default`. */
export function requireNamespace(namespace: string): string {
  requireDnsLabel('namespace', namespace);
  if (RESERVED_NAMESPACES.includes(namespace)) {
    throw new ValidationError('namespace', namespace,
      `must not be one of ${RESERVED_NAMESPACES.join(', ')} (they hold the cluster's own workloads or whatever names no namespace); use a namespace of its own, such as "redis-staging"`);
  }
  return namespace;
}

/** Environments must differ in name (one overlay each) and namespace (one system each). */
export function requireDistinctEnvironments(profiles: readonly EnvironmentProfile[]): void {
  const seen = new Map<string, string>();
  for (const p of profiles) {
    const byName = seen.get(`name:${p.name}`);
    if (byName !== undefined) {
      throw new ValidationError('environment name', p.name, 'must be unique: two profiles have it, and one overlay would overwrite the other; rename one');
    }
    const byNamespace = seen.get(`namespace:${p.namespace}`);
    if (byNamespace !== undefined) {
      throw new ValidationError(`environment "${p.name}": namespace`, p.namespace,
        `must differ from environment "${byNamespace}"'s (two systems with the same object names in one namespace overwrite each other); choose another namespace`);
    }
    seen.set(`name:${p.name}`, p.name);
    seen.set(`namespace:${p.namespace}`, p.name);
  }
}

export function synthBase(): ManifestObject[] {
  return new RedisHaChart(new App(), 'base').toJson() as ManifestObject[];
}

export function synthEnvironment(profile: EnvironmentProfile): ManifestObject[] {
  const name = requireDnsLabel('environment name', profile.name);
  try {
    requireKnownKeys('', profile, PROFILE_KEYS);
    return new RedisHaChart(new App(), name, { namespace: profile.namespace, redis: profile.redis }).toJson() as ManifestObject[];
  } catch (err) {
    // Say which profile is wrong; the message already names the field, value and fix.
    if (err instanceof Error) err.message = `environment "${name}": ${err.message}`;
    throw err;
  }
}
