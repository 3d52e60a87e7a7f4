import { App, Chart } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { RedisSentinelHA, RedisSentinelHAProps } from '../constructs/redis-sentinel-ha';
import { requireDnsLabel, ValidationError } from '../constructs/validation';

/** One deployment environment: a name (the overlay directory), a namespace and the system's props. */
export interface EnvironmentProfile {
  /** Name of the environment and of its overlay directory, `dist/overlays/<name>`. */
  readonly name: string;
  /** Namespace every object of this environment lives in. */
  readonly namespace: string;
  /**
   * Props of the Redis Sentinel system in this environment; unset props keep the base's
   * defaults. Its namespace is `namespace` above: leave `redis.namespace` unset.
   */
  readonly redis: RedisSentinelHAProps;
}

/** A Kubernetes object as synthesized: plain JSON. */
export type ManifestObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: unknown }; [k: string]: unknown };

export interface RedisHaChartProps {
  readonly namespace?: string;
  /** Props of the Redis Sentinel system; its namespace is `namespace` above (leave `redis.namespace` unset). */
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
    if (props.redis?.namespace !== undefined) {
      throw new ValidationError('redis.namespace', props.redis.namespace, 'must be unset: the chart\'s (or environment profile\'s) namespace is the namespace');
    }
    if (props.namespace !== undefined) {
      new k8s.KubeNamespace(this, 'Namespace', {
        metadata: {
          name: requireDnsLabel('namespace', props.namespace),
          labels: {
            'app.kubernetes.io/part-of': 'redis-sentinel-ha',
            // Every pod here runs as non-root with a read-only root and no capabilities.
            'pod-security.kubernetes.io/enforce': 'restricted',
          },
        },
      });
    }
    this.ha = new RedisSentinelHA(this, 'redis', { ...props.redis, namespace: props.namespace });
  }
}

export function synthBase(): ManifestObject[] {
  return new RedisHaChart(new App(), 'base').toJson() as ManifestObject[];
}

export function synthEnvironment(profile: EnvironmentProfile): ManifestObject[] {
  const name = requireDnsLabel('environment name', profile.name);
  try {
    return new RedisHaChart(new App(), name, { namespace: profile.namespace, redis: profile.redis }).toJson() as ManifestObject[];
  } catch (err) {
    // Say which profile is wrong; the message already names the field, value and fix.
    if (err instanceof ValidationError) err.message = `environment "${name}": ${err.message}`;
    throw err;
  }
}
