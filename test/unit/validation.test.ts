import { describe, expect, it } from 'vitest';
import { App, Chart, Duration, Size } from 'cdk8s';
import { Cpu } from 'cdk8s-plus-28';
import {
  EnvironmentProfile, RedisMaster, RedisReplicaSet, RedisSentinelHAProps, SentinelQuorum, synthEnvironment, ValidationError,
} from '../../lib/internal';
import { findEnvironments } from '../../main';

const [staging] = findEnvironments(['staging']);

type RedisProps = Omit<RedisSentinelHAProps, 'namespace'>;

/** The message of the error that synthesizing staging with these changes throws. */
function rejection(redis: RedisProps, profile: Partial<EnvironmentProfile> = {}): string {
  try {
    synthEnvironment({ ...staging, ...profile, redis: { ...staging.redis, ...redis } });
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as Error).message;
  }
  throw new Error(`synth accepted ${JSON.stringify({ ...profile, redis })}`);
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The message names the field (right after the environment), ends with the value that
 * was received, and says how to fix it.
 */
function expectMessage(message: string, field: string, got: string, fix: RegExp) {
  expect(message).toMatch(new RegExp(`^environment "staging": ${escape(field)} `));
  expect(message).toMatch(new RegExp(`, got ${escape(got)}$`));
  expect(message).toMatch(fix);
}

describe('sentinel count and quorum', () => {
  it('quorum larger than the number of sentinels is rejected, naming the field and the fix', () => {
    expectMessage(rejection({ quorum: 4 }), 'quorum', '4', /must be an integer from 1 to the number of sentinels \(3\)/);
    expectMessage(rejection({ sentinels: 5, quorum: 6 }), 'quorum', '6', /from 1 to the number of sentinels \(5\)/);
  });

  it('a quorum of zero is rejected, naming the field and the fix', () => {
    expectMessage(rejection({ quorum: 0 }), 'quorum', '0', /must be an integer from 1 to the number of sentinels \(3\)/);
  });

  it('fewer than 3 sentinels are rejected, saying why a third is needed', () => {
    for (const sentinels of [2, 1, 0]) {
      expectMessage(rejection({ sentinels }), 'sentinels', String(sentinels),
        /must be an integer from 3 to 15 \(fewer than 3 Sentinels cannot keep a majority when one fails\)/);
    }
  });

  it('a quorum equal to the number of sentinels is accepted', () => {
    expect(() => synthEnvironment({ ...staging, redis: { ...staging.redis, quorum: 3 } })).not.toThrow();
  });
});

describe('replicas', () => {
  it('a replica count below 1 is rejected, naming the field and the fix', () => {
    for (const replicas of [0, -1]) {
      expectMessage(rejection({ replicas }), 'replicas', String(replicas),
        /must be an integer from 1 to 100 \(with no replica there is nothing to fail over to\)/);
    }
  });

  it('a fractional replica count is rejected', () => {
    expectMessage(rejection({ replicas: 1.5 }), 'replicas', '1.5', /must be an integer from 1 to 100/);
  });

  it('parallelSyncs and minReplicasToWrite cannot exceed the number of replicas', () => {
    expectMessage(rejection({ parallelSyncs: 3 }), 'parallelSyncs', '3', /must be an integer from 1 to the number of replicas \(2\)/);
    expectMessage(rejection({ minReplicasToWrite: 3 }), 'minReplicasToWrite', '3',
      /must be an integer from 0 to the number of replicas \(2\); 0 disables the check/);
  });
});

describe('memory and CPU', () => {
  it('a Redis memory request above its limit is rejected, naming both and the fix', () => {
    const message = rejection({ redisResources: { memory: { request: Size.gibibytes(3), limit: Size.gibibytes(2) } } });
    expectMessage(message, 'redisResources.memory.request', '3Gi',
      /must not exceed redisResources\.memory\.limit \(2Gi\); lower the request or raise the limit/);
  });

  it('a Sentinel memory request above its limit is rejected, naming both and the fix', () => {
    const message = rejection({ sentinelResources: { memory: { request: Size.mebibytes(256), limit: Size.mebibytes(128) } } });
    expectMessage(message, 'sentinelResources.memory.request', '256Mi',
      /must not exceed sentinelResources\.memory\.limit \(128Mi\); lower the request or raise the limit/);
  });

  it('a Redis memory limit below 64Mi is rejected: the derived maxmemory would shrink towards 0, "no limit" to Redis', () => {
    for (const [limit, got] of [[Size.mebibytes(63), '63Mi'], [Size.mebibytes(1), '1Mi'], [Size.kibibytes(1), '1Ki']] as const) {
      expectMessage(rejection({ redisResources: { memory: { request: Size.kibibytes(1), limit } } }), 'redisResources.memory.limit', got,
        /must be at least 64Mi \(Redis needs room for data, forks and buffers; .*"no limit"\); raise the limit/);
    }
  });

  it('a memory request equal to the limit is accepted', () => {
    expect(() => synthEnvironment({ ...staging, redis: { redisResources: { memory: { request: Size.gibibytes(2), limit: Size.gibibytes(2) } } } }))
      .not.toThrow();
  });

  it('maxmemory equal to the memory limit is rejected: it must stay below it', () => {
    expectMessage(rejection({ maxmemory: Size.gibibytes(2) }), 'maxmemory', '2Gi',
      /must be below the Redis memory limit \(2Gi\) to leave headroom for forks and buffers; omit it to use 75% of the limit/);
  });

  it('maxmemory above the memory limit is rejected', () => {
    expectMessage(rejection({ maxmemory: Size.gibibytes(3) }), 'maxmemory', '3Gi', /must be below the Redis memory limit \(2Gi\)/);
  });

  it('a maxmemory that leaves too little headroom for backlog, replica buffer and copy-on-write is rejected, saying how much fits', () => {
    // 1800Mi of 2Gi leaves 248Mi; the budget is 112Mi backlog + 224Mi buffer + 225Mi copy-on-write.
    expectMessage(rejection({ maxmemory: Size.mebibytes(1800) }), 'maxmemory', '1800Mi', new RegExp(
      '^environment "staging": maxmemory must leave at least 561Mi of the Redis memory limit \\(2Gi\\) free for the replication '
      + 'backlog \\(112Mi\\), the replica output buffer \\(224Mi\\) and fork copy-on-write \\(225Mi\\), all derived from '
      + 'maxmemory; lower maxmemory to at most 1562Mi, raise the limit, or omit maxmemory to use 75% of the limit, got 1800Mi$'));
    expectMessage(rejection({ maxmemory: Size.mebibytes(1563) }), 'maxmemory', '1563Mi', /lower maxmemory to at most 1562Mi/);
    expectMessage(rejection({ redisResources: { memory: { request: Size.gibibytes(8), limit: Size.gibibytes(8) } }, maxmemory: Size.gibibytes(7) }),
      'maxmemory', '7Gi', /at least 2240Mi of the Redis memory limit \(8Gi\).*lower maxmemory to at most 6242Mi/);
  });

  it('the largest maxmemory that fits the headroom budget is accepted', () => {
    expect(() => synthEnvironment({ ...staging, redis: { ...staging.redis, maxmemory: Size.mebibytes(1562) } })).not.toThrow();
  });

  it('a zero maxmemory (which Redis reads as "no limit") is rejected', () => {
    expectMessage(rejection({ maxmemory: Size.mebibytes(0) }), 'maxmemory', '0Ki', /must be a positive whole size/);
  });

  it('a CPU request of zero, or above the CPU limit, is rejected', () => {
    expectMessage(rejection({ redisResources: { cpu: { request: Cpu.millis(0) } } }), 'redisResources.cpu.request', '"0m"',
      /must be a positive CPU amount \(for example Cpu\.millis\(250\)\)/);
    expectMessage(rejection({ redisResources: { cpu: { request: Cpu.units(2), limit: Cpu.units(1) } } }), 'redisResources.cpu.request', '2',
      /must not exceed redisResources\.cpu\.limit \(1\); lower the request or raise the limit/);
  });
});

describe('timings', () => {
  it('downAfter below 1s is rejected, saying why', () => {
    expectMessage(rejection({ downAfter: Duration.millis(999) }), 'downAfter', '999ms',
      /must be at least 1s \(Sentinel would fail over on ordinary network jitter\)/);
    expectMessage(rejection({ downAfter: Duration.millis(0) }), 'downAfter', '0ms', /must be at least 1s/);
  });

  it('failoverTimeout equal to downAfter is rejected, naming downAfter', () => {
    expectMessage(rejection({ failoverTimeout: Duration.seconds(5) }), 'failoverTimeout', '5000ms',
      /must be longer than downAfter \(5000ms\)/);
  });

  it('failoverTimeout shorter than downAfter is rejected', () => {
    expectMessage(rejection({ downAfter: Duration.seconds(10), failoverTimeout: Duration.seconds(8) }), 'failoverTimeout', '8000ms',
      /must be longer than downAfter \(10000ms\)/);
  });

  it('a downAfter longer than the default failoverTimeout is rejected, showing the default in force', () => {
    expectMessage(rejection({ downAfter: Duration.seconds(40) }), 'failoverTimeout', '10000ms', /must be longer than downAfter \(40000ms\)/);
  });

  it('minReplicasMaxLag must be whole seconds', () => {
    expectMessage(rejection({ minReplicasMaxLag: Duration.millis(1500) }), 'minReplicasMaxLag', '1500ms',
      /must be a whole number of seconds, at least 1s/);
  });

  it('a downAfter that is not whole seconds is accepted: the defaulted minReplicasMaxLag rounds it up', () => {
    expect(() => synthEnvironment({ ...staging, redis: { ...staging.redis, downAfter: Duration.millis(1500) } })).not.toThrow();
  });

  it('a fractional number of milliseconds is rejected under the field name, showing the value', () => {
    expectMessage(rejection({ downAfter: Duration.millis(1500.5) }), 'downAfter', '1500.5ms',
      /must be a whole, non-negative number of milliseconds/);
    expectMessage(rejection({ failoverTimeout: Duration.millis(30000.5) }), 'failoverTimeout', '30000.5ms',
      /must be a whole, non-negative number of milliseconds/);
  });
});

describe('names and namespaces', () => {
  const notLabels = ['Redis-Staging', 'redis_staging', 'redis.staging', '-redis', 'redis-', '', 'a'.repeat(64), 'redis\nstaging'];

  it('a namespace that is not a DNS label is rejected, naming the field, the value and the rule', () => {
    for (const namespace of notLabels) {
      expectMessage(rejection({}, { namespace }), 'namespace', JSON.stringify(namespace),
        /must be a DNS label of at most 63 characters \(lower-case letters, digits and '-', starting and ending with a letter or digit\)/);
    }
  });

  it('an environment name that is not a DNS label is rejected, naming the field, the value and the rule', () => {
    for (const name of notLabels) {
      expect(() => synthEnvironment({ ...staging, name })).toThrow(new RegExp(
        `^environment name must be a DNS label of at most 63 characters .*, got ${escape(JSON.stringify(name))}$`));
    }
  });

  it('a 63-character namespace is accepted', () => {
    expect(() => synthEnvironment({ ...staging, namespace: 'a'.repeat(63) })).not.toThrow();
  });
});

describe('images', () => {
  it('an image without a tag is rejected, because it means latest', () => {
    for (const image of ['redis', 'docker.io/library/redis', 'registry.example:5000/redis']) {
      expectMessage(rejection({ image }), 'image', JSON.stringify(image),
        /must carry a pinned tag \(for example "redis:7\.2\.7-bookworm"\); an untagged image means :latest/);
    }
  });

  it('an image tagged latest is rejected, naming a pinned example', () => {
    for (const image of ['redis:latest', 'registry.example:5000/redis:latest']) {
      expectMessage(rejection({ image }), 'image', JSON.stringify(image),
        /must be pinned to a version tag, not "latest" \(for example "redis:7\.2\.7-bookworm"\)/);
    }
  });

  it('an image reference with spaces or a newline is rejected', () => {
    expectMessage(rejection({ image: 'redis:7.2 --evil' }), 'image', '"redis:7.2 --evil"', /must be an image reference like "redis:7\.2\.7-bookworm"/);
    expectMessage(rejection({ image: 'redis:7.2\nx' }), 'image', '"redis:7.2\\nx"', /must be an image reference/);
  });

  it('an image whose repository has capital letters is rejected (tags may have them, repositories may not)', () => {
    for (const image of ['Redis:7.2.7', 'registry.example:5000/Redis:7.2.7']) {
      expectMessage(rejection({ image }), 'image', JSON.stringify(image), /must be an image reference like "redis:7\.2\.7-bookworm"/);
    }
  });

  it('an image pinned by tag or by digest is accepted and used for Redis and Sentinel', () => {
    const digest = `redis@sha256:${'a'.repeat(64)}`;
    const tagAndDigest = `redis:7.2.7@sha256:${'b'.repeat(64)}`;
    for (const image of ['valkey/valkey:8.0.1', 'registry.example:5000/redis:7.2.7', digest, tagAndDigest,
      'redis:7.2.7-Bookworm', 'registry.example:5000/team/redis:RC_1.2']) {
      const objects = synthEnvironment({ ...staging, redis: { ...staging.redis, image } });
      const images = objects.flatMap((o: any) => o.spec?.template?.spec?.containers ?? [])
        .filter((c: { name: string }) => c.name !== 'haproxy').map((c: { image: string }) => c.image);
      expect(new Set(images)).toEqual(new Set([image]));
    }
  });
});

describe('storage size', () => {
  it('a zero storage size is rejected, naming the field and an example', () => {
    expectMessage(rejection({ storageSize: Size.gibibytes(0) }), 'storageSize', '0Ki',
      /must be a positive whole size \(for example Size\.gibibytes\(8\)\)/);
  });

  it('a negative storage size cannot even be constructed', () => {
    expect(() => Size.gibibytes(-1)).toThrow(/Storage amounts cannot be negative\. Received: -1/);
  });

  it('a NaN storage size is rejected, naming the field and the fix', () => {
    const message = rejection({ storageSize: Size.gibibytes(NaN) });
    expect(message).toMatch(/^environment "staging": storageSize /);
    expect(message).toMatch(/must be a whole number of KiB \(for example Size\.mebibytes\(512\)\)/);
  });

  it('a NaN storage size is rejected, showing the NaN it received', () => {
    expectMessage(rejection({ storageSize: Size.gibibytes(NaN) }), 'storageSize', 'NaNKi', /must be a whole number of KiB/);
  });

  it('a fractional number of KiB is rejected, showing it', () => {
    expectMessage(rejection({ storageSize: Size.kibibytes(1.5) }), 'storageSize', '1.5Ki', /must be a positive whole size/);
  });

  it('a size that converts to a fractional number of KiB is rejected, naming the field and the fix', () => {
    const message = rejection({ storageSize: Size.mebibytes(0.0001) });
    expect(message).toMatch(/^environment "staging": storageSize must be a whole number of KiB \(for example Size\.mebibytes\(512\)\)/);
    expect(message).toMatch(/, got 0\.1024Ki$/);
    expect(message).not.toContain('[object Object]');
  });

  it('a malformed memory limit is rejected under its own field name', () => {
    expectMessage(rejection({ redisResources: { memory: { limit: Size.kibibytes(0.5) } } }), 'redisResources.memory.limit', '0.5Ki',
      /must be a positive whole size/);
  });

  it('a storage class name that is not a DNS subdomain is rejected', () => {
    expectMessage(rejection({ storageClassName: 'Fast SSD' }), 'storageClassName', '"Fast SSD"', /must be a DNS subdomain/);
  });
});

describe('nothing that reaches redis.conf, sentinel.conf or a pod can inject configuration', () => {
  const confToken = /must be 1-128 characters of letters, digits, '\.', '_' or '-' \(no spaces, quotes or newlines: it is written into Redis configuration\)/;

  it('a masterName with a newline (a second directive) is rejected, showing the escaped value', () => {
    const evil = 'mymaster\nsentinel monitor evil 203.0.113.7 6379 1';
    expectMessage(rejection({ masterName: evil }), 'masterName', JSON.stringify(evil), confToken);
  });

  it('a masterName with a space, a quote, a comment sign or a carriage return is rejected', () => {
    for (const masterName of ['my master', 'my"master', "my'master", 'mymaster#x', 'mymaster\r', 'mymaster\t2', '']) {
      expectMessage(rejection({ masterName }), 'masterName', JSON.stringify(masterName), confToken);
    }
  });

  it('a masterName longer than 128 characters is rejected', () => {
    expectMessage(rejection({ masterName: 'm'.repeat(129) }), 'masterName', JSON.stringify('m'.repeat(129)), confToken);
  });

  it('a maxmemoryPolicy that is not one of Redis\'s policies is rejected, listing them', () => {
    expectMessage(rejection({ maxmemoryPolicy: 'noeviction\nsave 1 1' as never }), 'maxmemoryPolicy', '"noeviction\\nsave 1 1"',
      /must be one of noeviction, allkeys-lru, allkeys-lfu, allkeys-random, volatile-lru, volatile-lfu, volatile-random, volatile-ttl/);
  });

  it('an authSecretName that is not a DNS subdomain is rejected', () => {
    for (const authSecretName of ['redis-auth\nx', 'Redis_Auth', 'redis auth', '']) {
      expectMessage(rejection({ authSecretName }), 'authSecretName', JSON.stringify(authSecretName),
        /must be a DNS subdomain \(lower-case letters, digits, '-' and '\.', at most 253 characters\)/);
    }
  });

  it('a clusterDomain that is not a DNS subdomain is rejected', () => {
    expectMessage(rejection({ clusterDomain: 'cluster.local\nx' }), 'clusterDomain', '"cluster.local\\nx"', /must be a DNS subdomain/);
  });

  it('a label key that is not a Kubernetes label key is rejected', () => {
    for (const key of ['bad key', 'team\n', '-team', 'Example.com/team', `${'k'.repeat(64)}`]) {
      expectMessage(rejection({ labels: { [key]: 'x' } }), 'labels key', JSON.stringify(key),
        /must be a Kubernetes label key \(\[prefix\/\]name, name at most 63 characters of letters, digits, '-', '_', '\.'\)/);
    }
  });

  it('a label value that is not a Kubernetes label value is rejected, naming the key', () => {
    for (const value of ['a\nb', 'a b', '-a', 'v'.repeat(64)]) {
      expectMessage(rejection({ labels: { team: value } }), 'labels["team"]', JSON.stringify(value),
        /must be a Kubernetes label value \(at most 63 characters of letters, digits, '-', '_', '\.'\)/);
    }
  });

  it('valid labels are accepted and reach every object, never a selector', () => {
    const objects = synthEnvironment({ ...staging, redis: { ...staging.redis, labels: { 'example.com/team': 'cache', tier: '' } } });
    const redis = objects.filter((o) => o.kind !== 'Namespace');
    expect(redis.every((o: any) => o.metadata.labels['example.com/team'] === 'cache')).toBe(true);
    const selectors = JSON.stringify(objects.map((o: any) => o.spec?.selector));
    expect(selectors).not.toContain('example.com/team');
  });

  it('appendOnly that is not a boolean is rejected', () => {
    expectMessage(rejection({ appendOnly: 'yes' as never }), 'appendOnly', '"yes"', /must be true or false/);
  });
});

describe('the parts validate their props on their own, under the same field names', () => {
  const chart = () => new Chart(new App(), 'test');

  it('SentinelQuorum rejects fewer than 3 sentinels, a quorum above them, a bad masterName and an unpinned image', () => {
    expect(() => new SentinelQuorum(chart(), 's', { sentinels: 2 })).toThrow(/^sentinels must be an integer from 3 to 15 .*, got 2$/);
    expect(() => new SentinelQuorum(chart(), 's', { sentinels: 5, quorum: 6 }))
      .toThrow(/^quorum must be an integer from 1 to the number of sentinels \(5\), got 6$/);
    expect(() => new SentinelQuorum(chart(), 's', { masterName: 'a b' })).toThrow(/^masterName must be 1-128 characters .*, got "a b"$/);
    expect(() => new SentinelQuorum(chart(), 's', { image: 'redis' })).toThrow(/^image must carry a pinned tag .*, got "redis"$/);
  });

  it('RedisReplicaSet rejects zero replicas; RedisMaster rejects a bad storage size and image', () => {
    expect(() => new RedisReplicaSet(chart(), 'r', { replicas: 0 })).toThrow(/^replicas must be an integer from 1 to 100 .*, got 0$/);
    expect(() => new RedisMaster(chart(), 'm', { storageSize: Size.gibibytes(0) })).toThrow(/^storageSize must be a positive whole size .*, got 0Ki$/);
    expect(() => new RedisMaster(chart(), 'm', { image: 'redis:latest' })).toThrow(/^image must be pinned to a version tag, not "latest".*, got "redis:latest"$/);
    expect(() => new RedisReplicaSet(chart(), 'r', { handoverTimeout: Duration.millis(0) }))
      .toThrow(/^handoverTimeout must be at least 1s .*, got 0ms$/);
  });
});
