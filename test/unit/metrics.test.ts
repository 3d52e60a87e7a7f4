// The metrics prop: a redis_exporter sidecar on every Redis and Sentinel pod, logged in as
// the read-only ACL user `metrics`, off by default and on in production; how it is
// validated, and what it adds (and does not) to the output.
import { describe, expect, it } from 'vitest';
import { RedisHaSettings, RedisSentinelHAProps } from '../../lib';
import { synthEnvironment } from '../../lib/internal';
import { findEnvironments } from '../../main';
import { find } from './helpers';

const [staging, production] = findEnvironments(['staging', 'production']);
const stagingWith = (redis: RedisSentinelHAProps): any[] => synthEnvironment({ ...staging, redis: { ...staging.redis, ...redis } });
const workloads = (objects: any[]) => [
  find(objects, 'StatefulSet', 'redis-master'), find(objects, 'StatefulSet', 'redis-slave'), find(objects, 'Deployment', 'redis-sentinel'),
];
const exporterOf = (w: any) => w.spec.template.spec.containers.find((c: any) => c.name === 'metrics');

describe('the redis_exporter sidecar (metrics)', () => {
  it('is off by default (staging) and on in production', () => {
    for (const w of workloads(synthEnvironment(staging))) expect(exporterOf(w)).toBeUndefined();
    for (const w of workloads(synthEnvironment(production))) expect(exporterOf(w)).toBeDefined();
  });

  it('scrapes the server beside it on loopback as user metrics, password from the Secret key metrics-password, port 9121 named metrics', () => {
    for (const w of workloads(stagingWith({ metrics: true }))) {
      const port = w.kind === 'Deployment' ? 26379 : 6379;
      const c = exporterOf(w);
      expect(c.image).toBe('oliver006/redis_exporter:v1.45.0');
      expect(c.command).toEqual(['/redis_exporter']);
      expect(c.args).toEqual([`--redis.addr=redis://localhost:${port}`, '--redis.user=metrics', '--config-command=-',
        '--web.listen-address=:9121', '--log-format=json']);
      expect(c.env).toEqual([{ name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'redis-auth', key: 'metrics-password' } } }]);
      expect(c.ports).toEqual([{ name: 'metrics', containerPort: 9121 }]);
      expect(c.livenessProbe.httpGet).toEqual({ path: '/health', port: 'metrics' });
      expect(c.readinessProbe.httpGet).toEqual({ path: '/health', port: 'metrics' });
      expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
      expect(Object.keys(c.resources.limits).sort()).toEqual(['ephemeral-storage', 'memory']);
      expect(Object.keys(c.resources.requests).sort()).toEqual(['cpu', 'ephemeral-storage', 'memory']);
      // No password anywhere in the manifest, no volume of its own.
      expect(c.volumeMounts).toBeUndefined();
    }
  });

  it('with tls: rediss:// to localhost, certificate not checked (a name the certificates do not carry; the connection stays in the pod)', () => {
    for (const w of workloads(stagingWith({ metrics: true, tls: { secretName: 'redis-tls' } }))) {
      const args: string[] = exporterOf(w).args;
      expect(args[0]).toMatch(/^--redis\.addr=rediss:\/\/localhost:(6379|26379)$/);
      expect(args).toContain('--skip-tls-verification');
    }
  });

  it('validates metrics, metricsImage and monitoringNamespaceLabels, and refuses unknown keys', () => {
    expect(() => RedisHaSettings.resolve({ metrics: 'yes' as any })).toThrow(/metrics must be true or false/);
    expect(() => RedisHaSettings.resolve({ metrics: true, metricsImage: 'oliver006/redis_exporter' })).toThrow(/metricsImage must carry a pinned tag/);
    expect(() => RedisHaSettings.resolve({ metrics: true, metricsImage: 'oliver006/redis_exporter:latest' })).toThrow(/metricsImage must be pinned/);
    expect(RedisHaSettings.resolve({ metrics: true, metricsImage: 'registry.local/redis_exporter:v1.45.0' }).metricsImage).toBe('registry.local/redis_exporter:v1.45.0');
    expect(RedisHaSettings.resolve({}).monitoringNamespaceLabels).toEqual({ 'kubernetes.io/metadata.name': 'monitoring' });
    expect(() => RedisHaSettings.resolve({ metricz: true } as any)).toThrow(/metricz/);
  });
});
