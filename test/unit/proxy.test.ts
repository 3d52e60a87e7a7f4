// The proxy tier: its objects, its props, the HAProxy configuration and the contract
// between the container's environment and the Lua decider.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { RedisHaSettings } from '../../lib';
import { proxyStartScript } from '../../lib/constructs/redis-proxy';
import { synthEnvironment } from '../../lib/internal';
import { PROXY_BACKENDS, proxyLua, renderProxyConfig } from '../../lib/pod/proxy-config';
import { ENVIRONMENTS } from '../../main';
import { PROXY_TIMINGS } from '../../lib/pod/contract';
import { makeTestCertificates } from '../../harness/live-cluster';
import { find } from './helpers';
import { itWith } from '../prerequisites';

const staging = ENVIRONMENTS.find((e) => e.name === 'staging')!;
const objects = synthEnvironment(staging);
const deployment = find(objects, 'Deployment', 'redis-proxy');
const container = deployment.spec.template.spec.containers[0];
const config = find(objects, 'ConfigMap', 'redis-proxy').data;

describe('the proxy tier\'s objects', () => {
  it('a Deployment of two HAProxy pods (haproxy:2.6.12) that surges before it removes, a PDB of one, spread over nodes and zones', () => {
    expect(deployment.spec.replicas).toBe(2);
    expect(container.image).toBe('haproxy:2.6.12');
    expect(deployment.spec.strategy.rollingUpdate).toEqual({ maxSurge: 1, maxUnavailable: 0 });
    const pdb = find(objects, 'PodDisruptionBudget', 'redis-proxy');
    expect(pdb.spec).toEqual({ maxUnavailable: 1, selector: deployment.spec.selector });
    const spec = deployment.spec.template.spec;
    expect(spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey).toBe('kubernetes.io/hostname');
    expect(spec.topologySpreadConstraints[0].topologyKey).toBe('topology.kubernetes.io/zone');
  });

  it('hardened like the other workloads: non-root uid 10001, read-only root, no capability, no token, probes on /healthz', () => {
    const spec = deployment.spec.template.spec;
    expect(spec.securityContext).toEqual({ runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001, runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(container.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(spec.automountServiceAccountToken).toBe(false);
    for (const probe of [container.livenessProbe, container.readinessProbe]) expect(probe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(container.resources.requests.cpu).toBeDefined();
    expect(container.resources.limits.memory).toBeDefined();
  });

  it('only the proxy user\'s password reaches the pod, as a file (and its -previous during a rotation)', () => {
    const auth = deployment.spec.template.spec.volumes.find((v: any) => v.name === 'auth');
    expect(auth.secret.items.map((i: any) => i.key)).toEqual(['proxy-password', 'proxy-password-previous']);
    expect(auth.secret.optional).toBe(true);
    expect(container.env.some((e: any) => e.valueFrom?.secretKeyRef)).toBe(false);
  });

  it('redis-write forwards to the write port, redis-read to the read port, both on 6379; metrics on the port named metrics', () => {
    expect(find(objects, 'Service', 'redis-write').spec.ports).toEqual([{ name: 'redis', port: 6379, targetPort: 'write' }]);
    expect(find(objects, 'Service', 'redis-read').spec.ports).toEqual([{ name: 'redis', port: 6379, targetPort: 'read' }]);
    expect(container.ports).toEqual([
      { name: 'write', containerPort: 6379 }, { name: 'read', containerPort: 6380 }, { name: 'metrics', containerPort: 8404 },
    ]);
    for (const name of ['redis-write', 'redis-read']) expect(find(objects, 'Service', name).spec.selector).toEqual(deployment.spec.selector.matchLabels);
  });

  it('proxy: false leaves the tier out', () => {
    const without = synthEnvironment({ ...staging, redis: { ...staging.redis, proxy: false } });
    expect(without.filter((o: any) => /proxy|-write$|-read$/.test(o.metadata.name))).toEqual([]);
  });
});

describe('the proxy props', () => {
  it('proxyReplicas below 2 is refused, naming the field, the value and why', () => {
    expect(() => RedisHaSettings.resolve({ proxyReplicas: 1 }))
      .toThrow(/^proxyReplicas must be an integer from 2 to 20 \(with one proxy pod, a drain or rollout cuts every client off\), got 1$/);
  });

  it('an unpinned proxyImage is refused', () => {
    expect(() => RedisHaSettings.resolve({ proxyImage: 'haproxy' })).toThrow(/^proxyImage must carry a pinned tag \(for example "haproxy:2.6.12"\)/);
    expect(() => RedisHaSettings.resolve({ proxyImage: 'haproxy:latest' })).toThrow(/^proxyImage must be pinned to a version tag/);
  });

  it('proxy must be a boolean', () => {
    expect(() => RedisHaSettings.resolve({ proxy: 'yes' as unknown as boolean })).toThrow(/^proxy /);
  });
});

describe('haproxy.cfg', () => {
  const cfg: string = config['haproxy.cfg'];

  it('every write server starts in maintenance: only the decider opens one', () => {
    const write = cfg.slice(cfg.indexOf(`\nbackend ${PROXY_BACKENDS.write}`), cfg.indexOf(`\nbackend ${PROXY_BACKENDS.read}`));
    expect(write).toMatch(/default-server .* disabled/);
    expect(write).toMatch(/on-marked-down shutdown-sessions/);
    expect(write.match(/^ {2}server /gm)).toHaveLength(3);
  });

  it('a frontend with no open server holds a client for the decider (bounded by the inspect delay), then refuses it; metrics come from HAProxy\'s Prometheus exporter', () => {
    for (const f of ['write', 'read'] as const) {
      const frontend = cfg.slice(cfg.indexOf(`frontend ${f}\n`)).split('\n\n')[0];
      expect(frontend).toContain(`tcp-request inspect-delay ${PROXY_TIMINGS.holdMs + 1000}ms`);
      expect(frontend.indexOf(`tcp-request content lua.hold_${f}`)).toBeGreaterThan(0);
      expect(frontend.indexOf(`tcp-request content reject if { nbsrv(${PROXY_BACKENDS[f]}) eq 0 }`)).toBeGreaterThan(frontend.indexOf(`lua.hold_${f}`));
      expect(proxyLua()).toContain(`core.register_action("hold_${f}"`);
    }
    expect(cfg).toContain('http-request use-service prometheus-exporter if { path /metrics }');
    expect(cfg).toContain('monitor-uri /healthz');
  });

  it('with TLS: TLS to every server (checked against the CA and the pod\'s name) and to clients', () => {
    const tls = renderProxyConfig({
      redisPods: ['redis-master-0.redis-master'], sentinelService: 'redis-sentinel', clusterDomain: 'cluster.local', redisPort: 6379,
      sentinelPort: 26379, writePort: 6379, readPort: 6380, metricsPort: 8404, holdMs: 2000, tls: { caFile: '/t/ca.crt', certFile: '/t/proxy.pem' },
    });
    expect(tls).toContain('bind :6379 ssl crt /t/proxy.pem');
    expect(tls).toContain('ssl verify required ca-file /t/ca.crt verifyhost "redis-master-0.redis-master.${POD_NAMESPACE}.svc.cluster.local" check-ssl');
  });

  itWith('haproxy', 'apt-get install haproxy')('HAProxy 2.6 (Debian\'s, as in the image) accepts the configuration and loads the decider', () => {
    const dir = mkdtempSync(join(tmpdir(), 'proxy-cfg-'));
    try {
      writeFileSync(join(dir, 'redis-proxy.lua'), config['redis-proxy.lua']);
      writeFileSync(join(dir, 'haproxy.cfg'), cfg.replace('/usr/local/etc/haproxy/redis-proxy.lua', join(dir, 'redis-proxy.lua')));
      const env = Object.fromEntries(container.env.filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]));
      const out = execFileSync('haproxy', ['-c', '-f', join(dir, 'haproxy.cfg')], {
        env: { ...env, POD_NAMESPACE: 'redis-staging', PATH: process.env.PATH }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
      });
      expect(out).toMatch(/Configuration file is valid/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('with TLS', () => {
  const tlsObjects = synthEnvironment({ ...staging, redis: { ...staging.redis, tls: { secretName: 'redis-tls' } } });
  const tlsDeployment = find(tlsObjects, 'Deployment', 'redis-proxy');

  it('the proxy mounts the certificate as proxy.pem with its key beside it (HAProxy\'s naming) and tells the decider to speak TLS', () => {
    const tls = tlsDeployment.spec.template.spec.volumes.find((v: any) => v.name === 'tls');
    expect(tls.secret.items).toEqual([
      { key: 'tls.crt', path: 'proxy.pem' }, { key: 'tls.key', path: 'proxy.pem.key' }, { key: 'ca.crt', path: 'ca.crt' },
    ]);
    expect(tlsDeployment.spec.template.spec.containers[0].env).toContainEqual({ name: 'TLS', value: '1' });
  });

  itWith('haproxy', 'apt-get install haproxy openssl')('HAProxy accepts the TLS configuration with a real certificate, key and CA', () => {
    const dir = mkdtempSync(join(tmpdir(), 'proxy-tls-'));
    try {
      const files = makeTestCertificates(['redis-write', 'redis-read']);
      writeFileSync(join(dir, 'proxy.pem'), files['tls.crt']);
      writeFileSync(join(dir, 'proxy.pem.key'), files['tls.key']);
      writeFileSync(join(dir, 'ca.crt'), files['ca.crt']);
      const cm = find(tlsObjects, 'ConfigMap', 'redis-proxy').data;
      writeFileSync(join(dir, 'redis-proxy.lua'), cm['redis-proxy.lua']);
      writeFileSync(join(dir, 'haproxy.cfg'), cm['haproxy.cfg'].replaceAll('/etc/redis-proxy-tls', dir)
        .replace('/usr/local/etc/haproxy/redis-proxy.lua', join(dir, 'redis-proxy.lua')));
      const env = Object.fromEntries(tlsDeployment.spec.template.spec.containers[0].env.filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]));
      const out = execFileSync('haproxy', ['-c', '-f', join(dir, 'haproxy.cfg')], {
        env: { ...env, POD_NAMESPACE: 'redis-staging', PATH: process.env.PATH }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
      });
      expect(out).toMatch(/Configuration file is valid/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the container\'s environment is exactly what the config, start script and decider read', () => {
  it('every variable read is set, and every variable set is read', () => {
    const given = container.env.map((e: any) => e.name).sort();
    const lua = proxyLua();
    const read = new Set<string>([
      ...[...lua.matchAll(/\benv\("([A-Z_]+)"\)/g)].map((m) => m[1]),
      ...[...lua.matchAll(/os\.getenv\("([A-Z_]+)"\)/g)].map((m) => m[1]),
      ...[...config['haproxy.cfg'].matchAll(/\$\{([A-Z_]+)\}/g)].map((m) => m[1]),
      ...[...proxyStartScript('x').matchAll(/\$\{?([A-Z_]+)\}?/g)].map((m) => m[1]),
    ]);
    // TLS is set only with the tls prop.
    expect([...read].filter((n) => !given.includes(n) && n !== 'TLS'), 'read but not set').toEqual([]);
    expect(given.filter((n: string) => !read.has(n)), 'set but never read').toEqual([]);
    expect(read.size).toBeGreaterThan(10);
  });
});
