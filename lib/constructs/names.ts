/**
 * Names and ports that are part of the user's contract (see the architecture seed):
 * clients and runbooks refer to them, so they carry no hash suffix and never change.
 */
export const REDIS_MASTER_NAME = 'redis-master';
export const REDIS_REPLICA_NAME = 'redis-slave';
export const SENTINEL_NAME = 'redis-sentinel';
/** Headless Service listing every Sentinel pod, so scripts can ask all of them. */
export const SENTINEL_HEADLESS_NAME = 'redis-sentinel-headless';
export const REDIS_CONFIG_NAME = 'redis-config';
export const REDIS_SCRIPTS_NAME = 'redis-scripts';
export const SENTINEL_CONFIG_NAME = 'redis-sentinel-config';

export const REDIS_PORT = 6379;
export const SENTINEL_PORT = 26379;

export const DEFAULT_REDIS_IMAGE = 'redis:7.2.7-bookworm';
export const DEFAULT_MASTER_NAME = 'mymaster';
export const DEFAULT_AUTH_SECRET = 'redis-auth';
export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

/** Labels that select pods. Kept minimal and stable: selectors are immutable. */
export function selectorLabels(component: 'master' | 'replica' | 'sentinel'): Record<string, string> {
  return {
    'app.kubernetes.io/name': component === 'sentinel' ? 'redis-sentinel' : 'redis',
    'app.kubernetes.io/component': component,
  };
}

export const REDIS_POD_LABELS = { 'app.kubernetes.io/name': 'redis' };

export function commonLabels(extra: Record<string, string> = {}): Record<string, string> {
  return { 'app.kubernetes.io/part-of': 'redis-sentinel-ha', 'app.kubernetes.io/managed-by': 'cdk8s', ...extra };
}
