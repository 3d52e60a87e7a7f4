import { describe, expect, it } from 'vitest';
import { App, Chart, Duration, Size } from 'cdk8s';
import {
  deriveMaxmemoryBytes, deriveReplicationSizing, largestFittingMaxmemoryBytes, MAXMEMORY_HEADROOM, MaxmemoryPolicy, RedisConfInput, RedisHaSettings,
  RedisSentinelHA, renderRedisConf, renderSentinelConf, SentinelConfInput, synthEnvironment,
} from '../../lib/internal';
import { findEnvironments } from '../../main';
import { find } from './helpers';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const redisInput: RedisConfInput = {
  port: 6379,
  maxmemoryBytes: deriveMaxmemoryBytes(2 * GiB),
  replBacklogBytes: 96 * MiB,
  replicaOutputBufferLimitBytes: 192 * MiB,
  maxmemoryPolicy: MaxmemoryPolicy.NOEVICTION,
  appendOnly: true,
  minReplicasToWrite: 1,
  minReplicasMaxLagSeconds: 5,
};

const sentinelInput: SentinelConfInput = {
  port: 26379,
  masterName: 'mymaster',
  bootstrapMasterHost: 'redis-master-0.redis-master',
  redisPort: 6379,
  quorum: 2,
  downAfterMillis: 5000,
  failoverTimeoutMillis: 30000,
  parallelSyncs: 1,
};

/** Configuration lines that are directives (no comments, no blank lines). */
function directives(conf: string): string[] {
  return conf.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
}

function haConf(props: ConstructorParameters<typeof RedisSentinelHA>[2] = {}): RedisHaSettings {
  return new RedisSentinelHA(new Chart(new App(), 'test'), 'redis', props).settings;
}

describe('maxmemory is derived from the container memory limit', () => {
  it('a 2Gi limit gives maxmemory of 75% of it, 1536MiB', () => {
    expect(MAXMEMORY_HEADROOM).toBe(0.25);
    expect(deriveMaxmemoryBytes(2 * GiB)).toBe(1536 * MiB);
    expect(deriveMaxmemoryBytes(2 * GiB)).toBe(1610612736);
  });

  it('an 8Gi limit gives 6GiB', () => {
    expect(deriveMaxmemoryBytes(8 * GiB)).toBe(6 * GiB);
  });

  it('the result is rounded down to whole MiB, never up', () => {
    expect(deriveMaxmemoryBytes(129 * MiB)).toBe(96 * MiB); // 96.75MiB
    expect(deriveMaxmemoryBytes(100 * MiB + 1)).toBe(75 * MiB);
    expect(deriveMaxmemoryBytes(2 * MiB)).toBe(MiB); // 1.5MiB
    for (const limit of [300 * MiB, 1000 * MiB + 12345, 3 * GiB + 7]) {
      const derived = deriveMaxmemoryBytes(limit);
      expect(derived % MiB).toBe(0);
      expect(derived).toBeLessThanOrEqual(limit * 0.75);
      expect(derived).toBeGreaterThan(limit * 0.75 - MiB);
    }
  });

  it('a limit that would round down to maxmemory 0 (Redis: "no limit") throws instead', () => {
    expect(() => deriveMaxmemoryBytes(MiB)).toThrow(
      /^memoryLimitBytes must leave at least 1MiB for maxmemory after 25% headroom \(Redis reads a maxmemory of 0 as "no limit"\); raise the memory limit, got 1048576$/);
    expect(() => deriveMaxmemoryBytes(0)).toThrow(/, got 0$/);
  });

  it('a different headroom share can be given', () => {
    expect(deriveMaxmemoryBytes(1 * GiB, 0.5)).toBe(512 * MiB);
  });

  it('the staging redis.conf carries maxmemory 1610612736 for its 2Gi limit, production 6442450944 for 8Gi', () => {
    const [staging, production] = findEnvironments(['staging', 'production']);
    const conf = (p: typeof staging) => find(synthEnvironment(p), 'ConfigMap', 'redis-config').data['redis.conf'];
    expect(directives(conf(staging))).toContain('maxmemory 1610612736');
    expect(directives(conf(production))).toContain('maxmemory 6442450944');
  });

  it('an explicit maxmemory below the limit is written as given', () => {
    expect(directives(haConf({ maxmemory: Size.mebibytes(1000) }).redisConf)).toContain(`maxmemory ${1000 * MiB}`);
  });
});

describe('redis.conf', () => {
  const conf = renderRedisConf(redisInput);

  it('sets port, data directory, maxmemory and the no-eviction policy', () => {
    const lines = directives(conf);
    expect(lines).toContain('port 6379');
    expect(lines).toContain('dir /data');
    expect(lines).toContain('maxmemory 1610612736');
    expect(lines).toContain('maxmemory-policy noeviction');
  });

  it('with append-only on, fsyncs every second and turns off timed RDB snapshots with save ""', () => {
    const lines = directives(conf);
    expect(lines).toContain('appendonly yes');
    expect(lines).toContain('appendfsync everysec');
    expect(lines).toContain('save ""');
    expect(lines.filter((l) => l.startsWith('save '))).toEqual(['save ""']);
  });

  it('with append-only off, says appendonly no and keeps periodic RDB snapshots', () => {
    const lines = directives(renderRedisConf({ ...redisInput, appendOnly: false }));
    expect(lines).toContain('appendonly no');
    expect(lines).not.toContain('save ""');
    expect(lines.filter((l) => l.startsWith('save '))).toEqual(['save 3600 1 300 100 60 10000']);
  });

  it('writes the min-replicas lines that stop an isolated master taking writes', () => {
    const lines = directives(renderRedisConf({ ...redisInput, minReplicasToWrite: 2, minReplicasMaxLagSeconds: 7 }));
    expect(lines).toContain('min-replicas-to-write 2');
    expect(lines).toContain('min-replicas-max-lag 7');
  });

  it('keeps replicas read-only and contains no password (it is appended at start from the Secret)', () => {
    const lines = directives(conf);
    expect(lines).toContain('replica-read-only yes');
    expect(lines.filter((l) => /^(requirepass|masterauth)\b/.test(l))).toEqual([]);
  });

  it('sets every directive once', () => {
    const names = directives(conf).map((l) => l.split(' ')[0]);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
  });

  it('refuses maxmemory 0 (which Redis reads as "no limit") or a fractional byte count', () => {
    for (const maxmemoryBytes of [0, -1, 1.5, NaN]) {
      expect(() => renderRedisConf({ ...redisInput, maxmemoryBytes })).toThrow(
        /^maxmemoryBytes must be a positive whole number of bytes \(Redis reads a maxmemory of 0 as "no limit"\), got /);
    }
  });

  it('is a pure function of its input', () => {
    expect(renderRedisConf({ ...redisInput })).toBe(conf);
    expect(conf.endsWith('\n')).toBe(true);
  });
});

describe('replication is sized from maxmemory', () => {
  it('staging (2Gi limit, maxmemory 1536MiB): backlog 96MiB, replica output buffer 192MiB, no soft limit', () => {
    const [staging] = findEnvironments(['staging']);
    const lines = directives(find(synthEnvironment(staging), 'ConfigMap', 'redis-config').data['redis.conf']);
    expect(lines).toContain(`repl-backlog-size ${96 * MiB}`);
    expect(lines).toContain(`client-output-buffer-limit replica ${192 * MiB} 0 0`);
    expect(lines).toContain('repl-timeout 60');
  });

  it('production (8Gi limit, maxmemory 6GiB): backlog 384MiB, replica output buffer 768MiB', () => {
    const [production] = findEnvironments(['production']);
    const lines = directives(find(synthEnvironment(production), 'ConfigMap', 'redis-config').data['redis.conf']);
    expect(lines).toContain(`repl-backlog-size ${384 * MiB}`);
    expect(lines).toContain(`client-output-buffer-limit replica ${768 * MiB} 0 0`);
  });

  it('the construct exposes the derived values, and the headroom of the default maxmemory holds all of them', () => {
    const ha = haConf();
    expect(ha.replBacklogBytes).toBe(96 * MiB);
    expect(ha.replicaOutputBufferLimitBytes).toBe(192 * MiB);
    expect(ha.copyOnWriteAllowanceBytes).toBe(192 * MiB);
    expect(ha.memoryHeadroomBytes).toBe(512 * MiB);
    expect(ha.replBacklogBytes + ha.replicaOutputBufferLimitBytes + ha.copyOnWriteAllowanceBytes).toBeLessThanOrEqual(ha.memoryHeadroomBytes);
  });

  it('an explicit maxmemory sizes the backlog and buffer, rounded down to whole MiB', () => {
    const ha = haConf({ maxmemory: Size.mebibytes(1000) });
    expect(ha.replBacklogBytes).toBe(62 * MiB); // 62.5MiB
    expect(ha.replicaOutputBufferLimitBytes).toBe(124 * MiB);
    const lines = directives(ha.redisConf);
    expect(lines).toContain(`repl-backlog-size ${62 * MiB}`);
    expect(lines).toContain(`client-output-buffer-limit replica ${124 * MiB} 0 0`);
  });

  it('the replica output buffer limit is above the backlog, so a replica the backlog can serve is never cut off', () => {
    for (const maxmemory of [MiB, 5 * MiB, 48 * MiB, 1536 * MiB, 6 * GiB, 100 * GiB]) {
      const sizing = deriveReplicationSizing(maxmemory);
      expect(sizing.replicaOutputBufferLimitBytes).toBeGreaterThan(sizing.replBacklogBytes);
    }
  });

  it('the backlog never falls below Redis\' own 1MiB default', () => {
    expect(deriveReplicationSizing(8 * MiB).replBacklogBytes).toBe(MiB);
    expect(deriveReplicationSizing(8 * MiB).replicaOutputBufferLimitBytes).toBe(2 * MiB);
    expect(deriveReplicationSizing(16 * MiB).replBacklogBytes).toBe(MiB);
    expect(deriveReplicationSizing(32 * MiB).replBacklogBytes).toBe(2 * MiB);
  });

  it('for every accepted memory limit the derived maxmemory leaves headroom for backlog, buffer and copy-on-write', () => {
    for (let limit = 64 * MiB; limit <= 64 * GiB; limit = Math.floor(limit * 1.37)) {
      const maxmemory = deriveMaxmemoryBytes(limit);
      expect(limit - maxmemory, `limit ${limit}`).toBeGreaterThanOrEqual(deriveReplicationSizing(maxmemory).requiredHeadroomBytes);
    }
  });

  it('the largest fitting maxmemory fits, and one MiB more does not (about 16/21 of the limit)', () => {
    for (const limit of [64 * MiB, 2 * GiB, 8 * GiB, 3 * GiB + 12345]) {
      const largest = largestFittingMaxmemoryBytes(limit);
      expect(largest + deriveReplicationSizing(largest).requiredHeadroomBytes).toBeLessThanOrEqual(limit);
      expect(largest + MiB + deriveReplicationSizing(largest + MiB).requiredHeadroomBytes).toBeGreaterThan(limit);
    }
    expect(largestFittingMaxmemoryBytes(2 * GiB)).toBe(1562 * MiB); // 1562 + 97 + 194 + 195 = 2048
  });

  it('renderRedisConf refuses a backlog or buffer limit of 0 (Redis reads 0 as "no limit")', () => {
    expect(() => renderRedisConf({ ...redisInput, replBacklogBytes: 0 })).toThrow(/^replBacklogBytes must be a positive whole number of bytes/);
    expect(() => renderRedisConf({ ...redisInput, replicaOutputBufferLimitBytes: 0 }))
      .toThrow(/^replicaOutputBufferLimitBytes must be a positive whole number of bytes/);
  });
});

describe('redis.conf as the construct renders it', () => {
  it('append-only persistence is on by default, with save ""', () => {
    const lines = directives(haConf().redisConf);
    expect(lines).toContain('appendonly yes');
    expect(lines).toContain('save ""');
  });

  it('by default maxmemory comes from the 2Gi default limit, one replica must be connected, within downAfter', () => {
    const ha = haConf({ downAfter: Duration.seconds(7), failoverTimeout: Duration.seconds(40) });
    expect(ha.maxmemoryBytes).toBe(1536 * MiB);
    const lines = directives(ha.redisConf);
    expect(lines).toContain('maxmemory 1610612736');
    expect(lines).toContain('min-replicas-to-write 1');
    expect(lines).toContain('min-replicas-max-lag 7');
  });

  it('the default max lag is downAfter rounded up to whole seconds (Redis takes seconds)', () => {
    expect(directives(haConf({ downAfter: Duration.millis(1500) }).redisConf)).toContain('min-replicas-max-lag 2');
    expect(directives(haConf({ downAfter: Duration.millis(1000) }).redisConf)).toContain('min-replicas-max-lag 1');
    expect(directives(haConf({ downAfter: Duration.millis(5001) }).redisConf)).toContain('min-replicas-max-lag 6');
  });

  it('the smallest accepted memory limit, 64Mi, derives maxmemory 48MiB', () => {
    const ha = haConf({ redisResources: { memory: { request: Size.mebibytes(64), limit: Size.mebibytes(64) } } });
    expect(directives(ha.redisConf)).toContain(`maxmemory ${48 * MiB}`);
  });

  it('appendOnly: false and an explicit max lag reach redis.conf', () => {
    const lines = directives(haConf({ appendOnly: false, minReplicasToWrite: 0, minReplicasMaxLag: Duration.seconds(3) }).redisConf);
    expect(lines).toContain('appendonly no');
    expect(lines).toContain('min-replicas-to-write 0');
    expect(lines).toContain('min-replicas-max-lag 3');
  });
});

describe('sentinel.conf', () => {
  const conf = renderSentinelConf(sentinelInput);

  it('monitors the master by name at its stable DNS name with the quorum', () => {
    expect(directives(conf)).toContain('sentinel monitor mymaster redis-master-0.redis-master 6379 2');
  });

  it('writes down-after, failover-timeout and parallel-syncs for the monitored master', () => {
    const lines = directives(conf);
    expect(lines).toContain('sentinel down-after-milliseconds mymaster 5000');
    expect(lines).toContain('sentinel failover-timeout mymaster 30000');
    expect(lines).toContain('sentinel parallel-syncs mymaster 1');
  });

  it('resolves and announces hostnames, so pods are followed by name when their IP changes', () => {
    const lines = directives(conf);
    expect(lines).toContain('sentinel resolve-hostnames yes');
    expect(lines).toContain('sentinel announce-hostnames yes');
    // Both must precede the monitor line: Sentinel resolves the master host when it reads it.
    expect(lines.indexOf('sentinel resolve-hostnames yes')).toBeLessThan(lines.findIndex((l) => l.startsWith('sentinel monitor ')));
  });

  it('listens on 26379 and keeps its state in the writable data directory, with no password', () => {
    const lines = directives(conf);
    expect(lines).toContain('port 26379');
    expect(lines).toContain('dir /data');
    expect(lines.filter((l) => /auth-pass|requirepass/.test(l))).toEqual([]);
  });

  it('uses the given master name in every per-master line', () => {
    const lines = directives(renderSentinelConf({ ...sentinelInput, masterName: 'cache-1' }));
    const perMaster = lines.filter((l) => /^sentinel (monitor|down-after-milliseconds|failover-timeout|parallel-syncs) /.test(l));
    expect(perMaster).toHaveLength(4);
    expect(perMaster.every((l) => l.split(' ')[2] === 'cache-1')).toBe(true);
  });

  it('as the construct renders it: quorum is a majority of the Sentinels, timings come from the props', () => {
    const ha = haConf({ sentinels: 5, downAfter: Duration.seconds(3), failoverTimeout: Duration.seconds(20), replicas: 3, parallelSyncs: 2 });
    const lines = directives(ha.sentinelConf);
    expect(lines).toContain('sentinel monitor mymaster redis-master-0.redis-master 6379 3');
    expect(lines).toContain('sentinel down-after-milliseconds mymaster 3000');
    expect(lines).toContain('sentinel failover-timeout mymaster 20000');
    expect(lines).toContain('sentinel parallel-syncs mymaster 2');
    expect(directives(haConf({ quorum: 3 }).sentinelConf)).toContain('sentinel monitor mymaster redis-master-0.redis-master 6379 3');
  });

  it('the staging sentinel.conf monitors mymaster with quorum 2, down after 5s, failover timeout 10s', () => {
    const [staging] = findEnvironments(['staging']);
    const lines = directives(find(synthEnvironment(staging), 'ConfigMap', 'redis-sentinel-config').data['sentinel.conf']);
    expect(lines).toContain('sentinel monitor mymaster redis-master-0.redis-master 6379 2');
    expect(lines).toContain('sentinel down-after-milliseconds mymaster 5000');
    expect(lines).toContain('sentinel failover-timeout mymaster 10000');
  });
});
