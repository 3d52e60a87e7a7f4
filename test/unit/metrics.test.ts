// The metrics prop: a redis_exporter sidecar on every Redis and Sentinel pod, logged in as
// the read-only ACL user `metrics`, off by default and on in production; how it is
// validated, and what it adds (and does not) to the output.
import { describe, expect, it } from 'vitest';
import { ChildProcess, execFileSync, spawn } from 'child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { REDIS_ACL } from '../../lib/pod/acl';
import { itWith } from '../prerequisites';
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

const itWithExporter = itWith('prometheus-redis-exporter', 'apt-get install prometheus-redis-exporter');

describe('the sidecar\'s own command line, run with Debian\'s exporter against a TLS Redis with the metrics user', () => {
  itWithExporter('scrapes over TLS (rediss:// to localhost, certificate not checked) as metrics', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'metrics-tls-'));
    const procs: ChildProcess[] = [];
    try {
      // A certificate for a pod name, not for localhost, as the TLS Secret holds.
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'tls.key'), '-out', join(dir, 'tls.crt'),
        '-days', '1', '-subj', '/CN=redis-master-0.redis-master'], { stdio: 'ignore' });
      const port = 21000 + Math.floor(Math.random() * 10000);
      writeFileSync(join(dir, 'redis.conf'), [`port 0`, `tls-port ${port}`, 'bind 127.0.0.1', `tls-cert-file ${dir}/tls.crt`, `tls-key-file ${dir}/tls.key`,
        `tls-ca-cert-file ${dir}/tls.crt`, 'tls-auth-clients optional', 'save ""', `dir ${dir}`, 'user default off',
        `user metrics on >the-metrics-password ${REDIS_ACL.metrics}`, ''].join('\n'));
      procs.push(spawn('redis-server', [join(dir, 'redis.conf')], { stdio: 'ignore' }));
      const [w] = workloads(stagingWith({ metrics: true, tls: { secretName: 'redis-tls' } }));
      const listen = port + 1;
      const args = (exporterOf(w).args as string[]).map((a) => a.replace(':6379', `:${port}`).replace(/^--web\.listen-address=.*/, `--web.listen-address=127.0.0.1:${listen}`));
      procs.push(spawn('prometheus-redis-exporter', args, { stdio: 'ignore', env: { ...process.env, REDIS_PASSWORD: 'the-metrics-password' } }));
      let text = '';
      for (let i = 0; i < 100 && !/^redis_up 1$/m.test(text); i++) {
        await new Promise((r) => setTimeout(r, 100));
        text = await fetch(`http://127.0.0.1:${listen}/metrics`).then((r) => r.text()).catch(() => '');
      }
      expect(text).toMatch(/^redis_up 1$/m);
      expect(text).toMatch(/^redis_instance_info\{[^}]*role="master"/m);
    } finally {
      for (const p of procs) p.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
