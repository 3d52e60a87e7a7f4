// The contract between the constructs and the pod scripts (lib/pod/contract.ts): each
// container gets exactly the environment its scripts read, and no script types a value
// (path, file name, port, name, timing) that the contract defines.
import { describe, expect, it } from 'vitest';
import { synthBase, synthEnvironment } from '../../lib/internal';
import { findEnvironments } from '../../main';
import {
  FAILOVER_LEAD_MS, FILES, MOUNTS, PRIORITY_SEEN_WAIT_MS, REPLICA_FRESHNESS_SLACK_MS, SENTINEL_PING_PERIOD_MS, SCRIPTS_MOUNT, SENTINEL_INFO_PERIOD_MS, SENTINEL_TIMINGS,
} from '../../lib/pod/contract';
import { environmentRead, scriptSource, stripShell, withSourced } from './support/shell-source';

interface Container { name: string; command?: string[]; env?: { name: string; value?: string }[]; [probe: string]: any }

// The proxy's HAProxy runs no pod script: its contract with the Lua decider is checked in test/unit/proxy.test.ts.
const workloadContainers = (objects: any[]): { owner: string; container: Container }[] => objects
  .filter((o) => (o.kind === 'StatefulSet' || o.kind === 'Deployment') && o.metadata.name !== 'redis-proxy')
  .flatMap((o: any) => o.spec.template.spec.containers.map((c: Container) => ({ owner: `${o.kind}/${o.metadata.name}`, container: c })));
const containers = workloadContainers(synthBase());
/** The same with the tls prop: each container also gets TLS_CA_FILE. */
const [staging] = findEnvironments(['staging']);
const tlsContainers = workloadContainers(synthEnvironment({ ...staging, redis: { ...staging.redis, tls: { secretName: 'redis-tls' } } }))
  .map(({ owner, container }) => ({ owner: `${owner} (tls)`, container }));

/** Scripts a container runs: its command, its probes and its preStop hook. */
function scriptsRunBy(c: Container): string[] {
  const commands = [c.command, c.startupProbe?.exec?.command, c.livenessProbe?.exec?.command,
    c.readinessProbe?.exec?.command, c.lifecycle?.preStop?.exec?.command].filter(Boolean) as string[][];
  const scripts = commands.flat().filter((w) => w.startsWith(`${SCRIPTS_MOUNT}/`)).map((w) => w.slice(SCRIPTS_MOUNT.length + 1));
  return [...new Set(scripts)].sort();
}

describe('every container gets the environment its scripts read', () => {
  it('each Redis and Sentinel container runs at least one script', () => {
    expect(containers.map(({ owner, container }) => `${owner} ${container.name}: ${scriptsRunBy(container).join(' ')}`).sort()).toEqual([
      'Deployment/redis-sentinel janitor: sentinel-janitor.sh',
      'Deployment/redis-sentinel sentinel: sentinel-probe.sh sentinel-start.sh',
      'StatefulSet/redis-master guard: redis-guard.sh',
      'StatefulSet/redis-master redis: redis-prestop.sh redis-probe.sh redis-start.sh',
      'StatefulSet/redis-slave guard: redis-guard.sh',
      'StatefulSet/redis-slave redis: redis-prestop.sh redis-probe.sh redis-start.sh',
    ]);
  });

  for (const { owner, container } of [...containers, ...tlsContainers]) {
    it(`${owner} ${container.name}: every variable its scripts read is set, and every variable set is read`, () => {
      const given = (container.env ?? []).map((e) => e.name).sort();
      const required = new Set<string>();
      const optional = new Set<string>();
      for (const script of scriptsRunBy(container)) {
        const read = environmentRead(script);
        read.required.forEach((n) => required.add(n));
        read.optional.forEach((n) => optional.add(n));
      }
      expect([...required].filter((n) => !given.includes(n)), 'read but not set').toEqual([]);
      expect(given.filter((n) => !required.has(n) && !optional.has(n)), 'set but never read').toEqual([]);
    });
  }

  it('the analysis sees what the scripts read (it is not vacuous)', () => {
    const start = environmentRead('redis-start.sh').required;
    expect(start).toEqual(expect.arrayContaining(['REDIS_PORT', 'DATA_DIR', 'BOOTSTRAP_MASTER', 'START_RETRY_SECONDS', 'FAILOVER_WAIT_SECONDS']));
    // The guard's fencing reads FENCE_AFTER_ROUNDS; the start script never calls it.
    expect(environmentRead('redis-guard.sh').required).toContain('FENCE_AFTER_ROUNDS');
    expect(start).not.toContain('FENCE_AFTER_ROUNDS');
    expect(withSourced('sentinel-janitor.sh')).toEqual(['sentinel-janitor.sh', 'common.sh', 'sentinel-decide.sh', 'auth-sync.sh']);
    // TLS_CA_FILE is read with a default (absent: plaintext), and given only with the tls prop.
    expect(environmentRead('redis-probe.sh').optional).toContain('TLS_CA_FILE');
    expect(tlsContainers.every(({ container }) => container.env?.some((e) => e.name === 'TLS_CA_FILE'))).toBe(true);
    expect(tlsContainers).toHaveLength(6);
  });
});

describe('no script types a value the contract defines', () => {
  const env = containers.flatMap(({ container }) => container.env ?? []).filter((e) => e.value !== undefined);
  // Every path, file name, name and port; among numbers, those of three digits or more
  // except 1000 (the factor between seconds and milliseconds, which the scripts use).
  const values = new Set<string>([
    ...Object.values(MOUNTS),
    ...Object.values(FILES),
    ...env.flatMap((e) => e.value!.split(' ').length > 1 && e.name === 'REDIS_NODES' ? e.value!.split(' ') : [e.value!]),
  ].filter((v) => !/^\d+(\.\d+)?$/.test(v) || (v.length >= 3 && v !== '1000' && !v.includes('.'))));

  const literalsIn = (text: string) => {
    const code = stripShell(text, false);
    return [...values].filter((v) => new RegExp(`(?<![\\w.-])${v.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}(?![\\w-])`).test(code));
  };

  it('collects the values to look for (paths, files, names, ports), and finds them in code but not in comments', () => {
    expect(literalsIn('# reads /data and 6379\nx="$(cat /data/redis-ha-role)"; redis-cli -p 26379\n').sort()).toEqual(['/data', '/data/redis-ha-role', '26379', 'redis-ha-role']);
    expect([...values]).toEqual(expect.arrayContaining(['/data', '/etc/redis', '/etc/redis-template', '/etc/sentinel-template',
      '/opt/redis-ha', '/etc/redis-auth', 'redis-ha-state', 'redis-ha-role', 'redis-ha-ip', '6379', '26379',
      'redis-sentinel-headless', 'redis-master-0.redis-master', 'mymaster', SENTINEL_TIMINGS]));
  });

  for (const script of withSourced('redis-start.sh').concat(['redis-probe.sh', 'redis-prestop.sh', 'redis-guard.sh',
    'sentinel-start.sh', 'sentinel-probe.sh', 'sentinel-janitor.sh', 'sentinel-decide.sh']).filter((s, i, a) => a.indexOf(s) === i)) {
    it(`${script} contains none of them outside comments`, () => {
      expect(literalsIn(scriptSource(script))).toEqual([]);
    });
  }
});

describe('values derived from each other', () => {
  it('the preStop timing follows the INFO period the janitor gives Sentinel', () => {
    expect(SENTINEL_TIMINGS).toBe(`info-period ${SENTINEL_INFO_PERIOD_MS} ping-period ${SENTINEL_PING_PERIOD_MS}`);
    expect(PRIORITY_SEEN_WAIT_MS).toBe(2.5 * SENTINEL_INFO_PERIOD_MS);
    expect(FAILOVER_LEAD_MS).toBeLessThan(SENTINEL_INFO_PERIOD_MS / 2);
    const redis = containers.find(({ owner, container }) => owner === 'StatefulSet/redis-master' && container.name === 'redis')!.container;
    const janitor = containers.find(({ container }) => container.name === 'janitor')!.container;
    const value = (c: Container, name: string) => c.env!.find((e) => e.name === name)?.value;
    expect(value(janitor, 'SENTINEL_TIMINGS')).toMatch(new RegExp(`^info-period ${value(redis, 'SENTINEL_INFO_PERIOD_MS')} `));
  });

  it('the ping period leaves Sentinel a replica fresh enough to promote while the master is down', () => {
    // sentinelSelectSlave: a replica's last INFO must be younger than 5 ping periods, and
    // replicas get INFO once per SENTINEL_INFO_PERIOD_MS during a failover.
    expect(5 * SENTINEL_PING_PERIOD_MS).toBeGreaterThanOrEqual(SENTINEL_INFO_PERIOD_MS + REPLICA_FRESHNESS_SLACK_MS);
    expect(SENTINEL_PING_PERIOD_MS).toBeLessThan(1000); // below Sentinel's default, or it buys nothing
  });
});
