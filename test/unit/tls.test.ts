// The tls prop: how it is validated, what it changes in the output (redis.conf and
// sentinel.conf listen with TLS only, the Secret mounted in every container that runs
// redis-cli, TLS_CA_FILE in their environment, the cert-manager Certificate), that output
// without it stays as it was, and that every redis-cli call of the scripts speaks TLS
// when TLS_CA_FILE is set (against the stand-in redis-cli of a world that refuses
// plaintext).
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'fs';
import { App, Chart } from 'cdk8s';
import { RedisSentinelHA, RedisSentinelHAProps, RedisHaSettings } from '../../lib';
import { synthEnvironment, TLS_PATHS, ValidationError } from '../../lib/internal';
import { findEnvironments, renderDist } from '../../main';
import { scriptSource, stripShell, withSourced } from './support/shell-source';
import { MASTER0, SLAVE0, SLAVE1, useWorlds } from './support/world';

const [staging] = findEnvironments(['staging']);
const newWorld = useWorlds();

/** The staging objects with these props added. */
function stagingWith(redis: RedisSentinelHAProps): any[] {
  return synthEnvironment({ ...staging, redis: { ...staging.redis, ...redis } });
}

function refusal(redis: RedisSentinelHAProps): string {
  try {
    renderDist([{ ...staging, redis: { ...staging.redis, ...redis } }]);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(redis)}`);
}

const byName = (objects: any[], kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);
const directives = (conf: string) => conf.split('\n').filter((l) => l && !l.startsWith('#'));

describe('tls prop: bad input is refused with the field and the fix', () => {
  it('neither a Secret nor an issuer', () => {
    expect(refusal({ tls: {} })).toMatch(/^environment "staging": tls must name the certificate: tls: \{ secretName: "redis-tls" \} for an existing kubernetes.io\/tls Secret \(keys tls.crt, tls.key, ca.crt\), or tls: \{ issuer: .*ClusterIssuer.* for a cert-manager Certificate, got \{\}$/);
  });

  it('a misspelled key, in tls and in tls.issuer', () => {
    expect(refusal({ tls: { secretNam: 'x' } as any })).toMatch(/^environment "staging": tls.secretNam is not a known prop \(did you mean secretName\?\); known props: secretName, issuer, namespace/);
    expect(refusal({ tls: { issuer: { name: 'ca', knd: 'Issuer' } as any } })).toMatch(/^environment "staging": tls.issuer.knd is not a known prop \(did you mean kind\?\)/);
  });

  it('a Secret name that is no DNS subdomain, an unknown issuer kind, an issuer without a name', () => {
    expect(refusal({ tls: { secretName: 'Redis_TLS' } })).toMatch(/^environment "staging": tls.secretName /);
    expect(refusal({ tls: { issuer: { name: 'ca', kind: 'Vault' } } })).toMatch(/^environment "staging": tls.issuer.kind must be one of Issuer, ClusterIssuer, got "Vault"$/);
    expect(refusal({ tls: { issuer: {} as any } })).toMatch(/^environment "staging": tls.issuer.name /);
  });

  it('a namespace without an issuer (it only names the Certificate\'s DNS names)', () => {
    expect(refusal({ tls: { secretName: 'redis-tls', namespace: 'shop' } })).toMatch(/^environment "staging": tls.namespace is only used for the DNS names of the Certificate/);
  });

  it('a Certificate whose namespace is not known (no tls.namespace, a chart without namespace)', () => {
    expect(() => new RedisSentinelHA(new Chart(new App(), 't'), 'r', { tls: { issuer: { name: 'ca' } } }))
      .toThrow(/^tls.namespace is needed for the Certificate's fully qualified DNS names/);
  });
});

describe('tls prop: the output', () => {
  const objects = stagingWith({ tls: { secretName: 'redis-tls' } });
  const plain = synthEnvironment(staging);

  it('redis.conf and sentinel.conf: plaintext port off, TLS on the same ports, certificate files, replication over TLS', () => {
    const redis = directives(byName(objects, 'ConfigMap', 'redis-config').data['redis.conf']);
    const sentinel = directives(byName(objects, 'ConfigMap', 'redis-sentinel-config').data['sentinel.conf']);
    const tlsLines = (port: number) => ['port 0', `tls-port ${port}`, `tls-cert-file ${TLS_PATHS.cert}`, `tls-key-file ${TLS_PATHS.key}`,
      `tls-ca-cert-file ${TLS_PATHS.ca}`, 'tls-auth-clients optional', 'tls-replication yes'];
    expect(redis).toEqual(expect.arrayContaining(tlsLines(6379)));
    expect(sentinel).toEqual(expect.arrayContaining(tlsLines(26379)));
    expect(redis.filter((l) => l.startsWith('port '))).toEqual(['port 0']);
    expect(sentinel.filter((l) => l.startsWith('port '))).toEqual(['port 0']);
    expect(TLS_PATHS).toEqual({ cert: '/etc/redis-tls/tls.crt', key: '/etc/redis-tls/tls.key', ca: '/etc/redis-tls/ca.crt' });
  });

  it('every container mounts the TLS Secret and gets TLS_CA_FILE; each pod has the Secret volume', () => {
    for (const name of ['redis-master', 'redis-slave', 'redis-sentinel']) {
      const w = objects.find((o) => (o.kind === 'StatefulSet' || o.kind === 'Deployment') && o.metadata.name === name);
      const spec = w.spec.template.spec;
      expect(spec.volumes.find((v: any) => v.name === 'tls')).toEqual({
        name: 'tls',
        secret: { secretName: 'redis-tls', defaultMode: 0o440, items: [
          { key: 'tls.crt', path: 'tls.crt' }, { key: 'tls.key', path: 'tls.key' }, { key: 'ca.crt', path: 'ca.crt' }] },
      });
      for (const c of spec.containers) {
        expect(c.volumeMounts, `${name} ${c.name}`).toContainEqual({ name: 'tls', mountPath: '/etc/redis-tls', readOnly: true });
        expect(c.env, `${name} ${c.name}`).toContainEqual({ name: 'TLS_CA_FILE', value: '/etc/redis-tls/ca.crt' });
      }
    }
  });

  it('Services, ports and NetworkPolicies are those of the output without TLS; no Certificate for an existing Secret', () => {
    for (const kind of ['Service', 'NetworkPolicy', 'PodDisruptionBudget']) {
      expect(objects.filter((o) => o.kind === kind), kind).toEqual(plain.filter((o) => o.kind === kind));
    }
    expect(objects.filter((o) => o.kind === 'Certificate')).toEqual([]);
  });

  it('output without the tls prop has no TLS line, mount or variable', () => {
    // (The scripts ConfigMap carries tls_flags, which does nothing without TLS_CA_FILE.)
    const text = JSON.stringify(plain.filter((o) => o.metadata.name !== 'redis-scripts'));
    expect(text).not.toMatch(/tls|TLS_CA_FILE|redis-tls/);
  });

  it('with an issuer: a cert-manager Certificate naming every pod and Service, short and qualified, whose Secret is mounted', () => {
    const withIssuer = stagingWith({ tls: { issuer: { name: 'internal-ca', kind: 'ClusterIssuer' } } });
    const cert = byName(withIssuer, 'Certificate', 'redis-tls');
    expect(cert.apiVersion).toBe('cert-manager.io/v1');
    expect(cert.spec.secretName).toBe('redis-tls');
    expect(cert.spec.issuerRef).toEqual({ name: 'internal-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
    expect(cert.spec.usages).toEqual(expect.arrayContaining(['server auth', 'client auth']));
    // Argo CD applies it with the configuration, before the pods that mount its Secret.
    expect(cert.metadata.annotations['argocd.argoproj.io/sync-wave']).toBe('-1');
    const names: string[] = cert.spec.dnsNames;
    for (const short of ['redis-master-0.redis-master', 'redis-slave-0.redis-slave', 'redis-slave-1.redis-slave',
      'redis-master', 'redis-slave', 'redis-sentinel', 'redis-sentinel-headless', 'redis-write', 'redis-read']) {
      for (const suffix of ['', '.redis-staging', '.redis-staging.svc', '.redis-staging.svc.cluster.local']) {
        expect(names).toContain(short + suffix);
      }
    }
    expect(names).toHaveLength(9 * 4);
    const sentinel = withIssuer.find((o) => o.kind === 'Deployment' && o.metadata.name === 'redis-sentinel');
    expect(sentinel.spec.template.spec.volumes.find((v: any) => v.name === 'tls').secret.secretName).toBe('redis-tls');
    // tls.namespace wins over the environment's; a chart namespace is used when there is no tls.namespace.
    const own = stagingWith({ tls: { issuer: { name: 'ca' }, namespace: 'shop', secretName: 'shop-redis-tls' } });
    expect(byName(own, 'Certificate', 'redis-tls').spec.dnsNames).toContain('redis-master-0.redis-master.shop.svc.cluster.local');
    expect(byName(own, 'Certificate', 'redis-tls').spec.secretName).toBe('shop-redis-tls');
    const chart = new Chart(new App(), 'c', { namespace: 'cache' });
    new RedisSentinelHA(chart, 'r', { name: 'cache', tls: { issuer: { name: 'ca' } } });
    const fromChart = chart.toJson().find((o: any) => o.kind === 'Certificate');
    expect(fromChart.metadata.name).toBe('cache-tls');
    expect(fromChart.spec.dnsNames).toContain('cache-slave-1.cache-slave.cache.svc.cluster.local');
    expect(fromChart.spec.issuerRef.kind).toBe('Issuer');
  });

  it('RedisHaSettings.tlsDnsNames follows replicas and the cluster domain', () => {
    const s = RedisHaSettings.resolve({ replicas: 3, clusterDomain: 'corp.local', tls: { secretName: 'x' } });
    expect(s.tlsDnsNames('ns')).toContain('redis-slave-2.redis-slave.ns.svc.corp.local');
    expect(s.tls).toEqual({ secretName: 'x' });
    expect(RedisHaSettings.resolve({}).tls).toBeUndefined();
  });
});

describe('the scripts speak TLS when TLS_CA_FILE is set', () => {
  it('every redis-cli call in the scripts takes its transport options from tls_flags', () => {
    const scripts = [...new Set(['redis-start.sh', 'redis-probe.sh', 'redis-prestop.sh', 'redis-guard.sh', 'sentinel-start.sh',
      'sentinel-probe.sh', 'sentinel-janitor.sh'].flatMap((s) => withSourced(s)))];
    let calls = 0;
    for (const script of scripts) {
      // Continuation lines joined, so a pipeline into redis-cli is one line.
      for (const line of stripShell(scriptSource(script), true).replace(/\\\n/g, ' ').split('\n')) {
        if (!/\bredis-cli\b/.test(line)) continue;
        calls++;
        expect(line, script).toMatch(/redis-cli \$\(tls_flags\) /);
      }
    }
    // as_operations (redis_cmd, sentinel_cmd, the preStop hook's pipeline) and
    // unauthenticated_ping (liveness): every other call goes through these two.
    expect(calls).toBeGreaterThanOrEqual(2);
  });

  it('tls_flags: --tls --cacert with TLS_CA_FILE, nothing without', () => {
    const world = newWorld();
    const on = world.redisEnv('redis-master-0', { contract: { tls: true } });
    expect(on.TLS_CA_FILE).toMatch(/\/etc\/redis-tls\/ca\.crt$/);
    expect(world.functions(['common.sh'], 'tls_flags', on).stdout).toBe(`--tls --cacert ${on.TLS_CA_FILE}\n`);
    expect(world.functions(['common.sh'], 'tls_flags', world.redisEnv('redis-master-0')).stdout).toBe('');
  });

  it('the Redis probes pass over TLS, and fail where the script would speak plaintext to a TLS-only server', () => {
    const world = newWorld().redis(MASTER0, { role: 'master', replicas: [SLAVE0, SLAVE1] }).redis(SLAVE0, { role: 'slave', link: 'up' });
    const on = world.redisEnv('redis-slave-0', { contract: { tls: true } });
    world.tlsOnly(on.TLS_CA_FILE);
    for (const probe of ['liveness', 'readiness']) {
      const r = world.script('redis-probe.sh', on, [probe]);
      expect(r.status, `${probe}: ${r.stdout}${r.stderr}`).toBe(0);
    }
    const off = world.script('redis-probe.sh', world.redisEnv('redis-slave-0'), ['readiness']);
    expect(off.status).toBe(1);
    expect(world.calls(SLAVE0)).toContain('plaintext-refused PING');
  });

  it('the Sentinel probes and the janitor\'s SENTINEL DEBUG go over TLS', () => {
    const world = newWorld().sentinel('10.0.0.5', { master: { host: MASTER0, epoch: 1 } });
    const on = world.sentinelEnv('10.0.0.5', { contract: { tls: true } });
    world.tlsOnly(on.TLS_CA_FILE);
    for (const probe of ['liveness', 'readiness']) {
      const r = world.script('sentinel-probe.sh', on, [probe]);
      expect(r.status, `${probe}: ${r.stdout}${r.stderr}`).toBe(0);
    }
    const janitor = world.sentinelEnv('10.0.0.5', { container: 'janitor', contract: { tls: true } });
    expect(janitor.TLS_CA_FILE.endsWith(TLS_PATHS.ca), janitor.TLS_CA_FILE).toBe(true);
    world.tlsOnly(janitor.TLS_CA_FILE);
    world.functions(['common.sh'], 'ensure_sentinel_timings 127.0.0.1', janitor);
    expect(world.calls('10.0.0.5').filter((c) => /^SENTINEL DEBUG info-period 1000\b/.test(c))).toHaveLength(1);
    expect(world.calls('10.0.0.5').filter((c) => c.startsWith('plaintext-refused'))).toEqual([]);
    // Over TLS still as the operations user (TLS does not replace authentication).
    expect(world.authCalls().filter((c) => c.startsWith('10.0.0.5 ') && / SENTINEL DEBUG/.test(c))
      .map((c) => c.split(' ')[1])).toEqual(['operations', 'operations']);
  });

  it('sentinel-start.sh finds the master over TLS (Sentinels and Redis pods) and starts', () => {
    const world = newWorld()
      .sentinel('10.0.0.5', {})
      .sentinel('10.0.0.6', { master: { host: SLAVE1, epoch: 3 } })
      .sentinel('10.0.0.7', { master: { host: SLAVE1, epoch: 3 } })
      .redis(SLAVE1, { role: 'master' });
    const env = world.sentinelEnv('10.0.0.5', { contract: { tls: true } });
    world.tlsOnly(env.TLS_CA_FILE);
    writeFileSync(env.SENTINEL_TEMPLATE, 'port 0\ntls-port 26379\nsentinel monitor mymaster redis-master-0.redis-master 6379 2\n');
    const r = world.script('sentinel-start.sh', env, [], 20_000);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`sentinel monitor mymaster ${SLAVE1} 6379 2`);
    expect(world.calls().filter((c) => c.includes('plaintext-refused'))).toEqual([]);
  });
});

describe('tls prop: the policy checks', () => {
  it('an instance with TLS from a cert-manager issuer passes the same checks as one without (the TLS volume and mounts add no finding)', async () => {
    const { runPolicy, formatFindings } = await import('./policy/checks');
    const { RedisHaChart } = await import('../../lib/internal');
    const objects = (new RedisHaChart(new App(), 'policy', { namespace: 'redis-policy', redis: { tls: { issuer: { name: 'ca', kind: 'ClusterIssuer' } } } })
      .toJson() as any[]).map((o) => (o.kind === 'Namespace' ? o : { ...o, metadata: { ...o.metadata, namespace: 'redis-policy' } }));
    expect(objects.map((o) => o.kind)).toContain('Certificate');
    expect(formatFindings(runPolicy(objects).findings)).toBe('');
  });
});
