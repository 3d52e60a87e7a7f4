// Input that once got through: each is refused at synth, naming the field, the value and
// the fix, before anything is written (renderDist throws; writeTree never runs).
import { describe, expect, it } from 'vitest';
import { App, Chart, Duration, Size } from 'cdk8s';
import { Cpu } from 'cdk8s-plus-28';
import { RedisSentinelHA, RedisSentinelHAProps, SentinelQuorum } from '../../lib';
import { EnvironmentProfile, synthEnvironment, ValidationError } from '../../lib/internal';
import { ENVIRONMENTS, findEnvironments, renderDist } from '../../main';

const [staging] = findEnvironments(['staging']);

/** The message renderDist throws for staging with these props (or profile fields). */
function refusal(redis: RedisSentinelHAProps, profile: Partial<EnvironmentProfile> = {}): string {
  const broken = { ...staging, ...profile, redis: { ...staging.redis, ...redis } };
  try {
    renderDist([broken]);
  } catch (err) {
    expect((err as Error).name).toBe('ValidationError');
    expect(err).toBeInstanceOf(ValidationError);
    return (err as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify({ ...profile, redis })}`);
}

/** A Duration, Size or Cpu look-alike from another copy of cdk8s: same shape, other class. */
const foreignDuration = (ms: number) => ({ toMilliseconds: () => ms, toSeconds: () => ms / 1000 }) as unknown as Duration;
const foreignSize = (kib: number) => ({ toKibibytes: () => kib, toMebibytes: () => kib / 1024 }) as unknown as Size;
const foreignCpu = (amount: string) => ({ amount }) as unknown as Cpu;

describe('durations Redis and Sentinel cannot parse', () => {
  for (const field of ['downAfter', 'failoverTimeout', 'minReplicasMaxLag', 'shutdownGateTimeout', 'handoverTimeout', 'janitorInterval'] as const) {
    it(`${field} beyond a 32-bit millisecond count (30 days) is refused`, () => {
      // failoverTimeout must exceed downAfter, so that check cannot fire first.
      expect(refusal({ [field]: Duration.days(30) })).toBe(
        `environment "staging": ${field} must be at most 2147483647ms (about 24 days; Redis reads milliseconds as a 32-bit number); choose a shorter duration, got 2592000000ms`);
    });
  }

  it('the largest 32-bit duration is accepted and rendered as it is', () => {
    const objects = synthEnvironment({ ...staging, redis: { ...staging.redis, failoverTimeout: Duration.millis(2147483647) } });
    const conf = objects.find((o) => o.metadata.name === 'redis-sentinel-config') as any;
    expect(conf.data['sentinel.conf']).toContain('sentinel failover-timeout mymaster 2147483647\n');
  });

  it('a negative or NaN duration that reaches the construct is refused under its field name', () => {
    expect(refusal({ downAfter: foreignDuration(-1000) })).toMatch(/^environment "staging": downAfter must be a whole, non-negative number of milliseconds, got -1000ms$/);
    expect(refusal({ shutdownGateTimeout: foreignDuration(NaN) })).toMatch(/^environment "staging": shutdownGateTimeout must be a whole, non-negative number of milliseconds, got NaNms$/);
  });
});

describe('values from the app\'s own copy of cdk8s (instanceof would fail) are accepted by shape', () => {
  it('a foreign Duration, Size and Cpu synthesize like ours', () => {
    const chart = (props: RedisSentinelHAProps) => {
      const c = new Chart(new App(), 't');
      new RedisSentinelHA(c, 'r', props);
      return c.toJson();
    };
    const ours = chart({
      downAfter: Duration.seconds(3), storageSize: Size.gibibytes(4),
      redisResources: { cpu: { request: Cpu.millis(300) }, memory: { limit: Size.gibibytes(1) } },
    });
    const theirs = chart({
      downAfter: foreignDuration(3000), storageSize: foreignSize(4 * 1024 * 1024),
      redisResources: { cpu: { request: foreignCpu('300m') }, memory: { limit: foreignSize(1024 * 1024) } },
    });
    expect(theirs).toEqual(ours);
  });

  it('something that is no Duration at all is still refused', () => {
    expect(refusal({ downAfter: { seconds: 5 } as never })).toMatch(/downAfter must be a Duration \(for example Duration\.seconds\(5\)\), got \{"seconds":5\}$/);
  });
});

describe('images older than Redis 7.0', () => {
  for (const image of ['redis:6.2.14', 'redis:6', 'redis:6.2-alpine', 'registry.example.com:5000/redis:5.0.14', 'redis:v6.0']) {
    it(`${image} is refused`, () => {
      expect(refusal({ image })).toBe(
        `environment "staging": image must be Redis 7.0 or newer (the pod scripts and the rendered configuration use Redis 7 features); use for example "redis:7.2.7-bookworm", got "${image}"`);
    });
  }

  for (const image of ['redis:7.2.7-bookworm', 'redis:7.0.0', 'redis:8.0-alpine', 'redis:alpine3.20', 'redis:bookworm',
    `redis@sha256:${'a'.repeat(64)}`, `redis:7.2@sha256:${'b'.repeat(64)}`, 'registry.example.com:5000/redis:7.4']) {
    it(`${image} is accepted`, () => {
      expect(() => renderDist([{ ...staging, redis: { ...staging.redis, image } }])).not.toThrow();
    });
  }
});

describe('memory too small to run', () => {
  it('a Sentinel memory limit below 32Mi is refused, saying what runs in it', () => {
    expect(refusal({ sentinelResources: { memory: { request: Size.mebibytes(16), limit: Size.mebibytes(31) } } })).toBe(
      'environment "staging": sentinelResources.memory.limit must be at least 32Mi (Sentinel, its start script and the probes\' shell and redis-cli all run inside this limit); raise the limit, got 31Mi');
    expect(() => renderDist([{ ...staging, redis: { sentinelResources: { memory: { request: Size.mebibytes(32), limit: Size.mebibytes(32) } } } }])).not.toThrow();
  });

  it('a too-small memory limit is reported as a limit problem, even when the request is above it too', () => {
    expect(refusal({ redisResources: { memory: { request: Size.mebibytes(256), limit: Size.mebibytes(32) } } }))
      .toMatch(/^environment "staging": redisResources\.memory\.limit must be at least 64Mi .*raise the limit, got 32Mi$/);
    expect(refusal({ sentinelResources: { memory: { request: Size.mebibytes(64), limit: Size.mebibytes(16) } } }))
      .toMatch(/^environment "staging": sentinelResources\.memory\.limit must be at least 32Mi/);
  });

  it('a maxmemory below 8Mi is refused; 8Mi is accepted', () => {
    expect(refusal({ maxmemory: Size.mebibytes(4) })).toBe(
      'environment "staging": maxmemory must be at least 8Mi (an empty Redis already uses about 1Mi, so below that it refuses writes almost at once); raise it, or omit it to use 75% of the memory limit, got 4Mi');
    expect(refusal({ maxmemory: Size.kibibytes(1) })).toMatch(/maxmemory must be at least 8Mi .*, got 1Ki$/);
    expect(() => renderDist([{ ...staging, redis: { ...staging.redis, maxmemory: Size.mebibytes(8) } }])).not.toThrow();
  });
});

describe('environments', () => {
  for (const namespace of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
    it(`namespace ${namespace} is refused`, () => {
      expect(refusal({}, { namespace })).toMatch(new RegExp(
        `^environment "staging": namespace must not be one of default, kube-system, kube-public, kube-node-lease .*use a namespace of its own, such as "redis-staging", got "${namespace}"$`));
    });
  }

  it('two environments with the same name are refused (one overlay would overwrite the other)', () => {
    const twin = { ...staging, namespace: 'redis-staging-2' };
    expect(() => renderDist([...ENVIRONMENTS, twin])).toThrow(
      'environment name must be unique: two profiles have it, and one overlay would overwrite the other; rename one, got "staging"');
    expect(() => findEnvironments(['production'], [...ENVIRONMENTS, twin])).toThrow(/environment name must be unique/);
  });

  it('two environments in the same namespace are refused', () => {
    expect(() => renderDist([...ENVIRONMENTS, { ...staging, name: 'staging2' }])).toThrow(
      /^environment "staging2": namespace must differ from environment "staging"'s .*, got "redis-staging"$/);
  });

  it('a misspelled profile field is refused with a suggestion', () => {
    expect(() => renderDist([{ ...staging, namespce: 'x' } as never])).toThrow(
      /^environment "staging": namespce is not a known prop \(did you mean namespace\?\); known props: name, namespace, redis, argocd, got "x"$/);
  });
});

describe('misspelled props are refused at run time (a bundler does not type-check)', () => {
  it('replica: 5 in a profile names the prop and suggests replicas', () => {
    expect(refusal({ replica: 5 } as never)).toMatch(/^environment "staging": replica is not a known prop \(did you mean replicas\?\); known props: name, image, replicas, .*, got 5$/);
  });

  it('a misspelled nested resources field is refused', () => {
    expect(refusal({ redisResources: { memory: { limt: Size.gibibytes(1) } } as never }))
      .toMatch(/^environment "staging": redisResources\.memory\.limt is not a known prop \(did you mean limit\?\)/);
  });

  it('the old namespace prop is refused, pointing at the chart\'s namespace', () => {
    const c = new Chart(new App(), 't');
    expect(() => new RedisSentinelHA(c, 'r', { namespace: 'x' } as never))
      .toThrow('namespace is not a prop: the objects take their namespace from the chart, new Chart(app, id, { namespace }), got "x"');
  });

  it('every construct refuses unknown props', () => {
    const c = () => new Chart(new App(), 't');
    expect(() => new RedisSentinelHA(c(), 'r', { sentinel: 5 } as never)).toThrow(/^sentinel is not a known prop \(did you mean sentinels\?\)/);
    expect(() => new SentinelQuorum(c(), 's', { replicsa: 3 } as never)).toThrow(/^replicsa is not a known prop \(did you mean replicas\?\)/);
    expect(() => new SentinelQuorum(c(), 's', { xyzzy: 3 } as never)).toThrow(/^xyzzy is not a known prop; known props: /);
  });
});

describe('labels that would break selectors', () => {
  for (const key of ['app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/component', 'app.kubernetes.io/part-of', 'app.kubernetes.io/managed-by']) {
    it(`a labels entry for ${key} is refused`, () => {
      expect(refusal({ labels: { [key]: 'x' } })).toMatch(new RegExp(
        `^environment "staging": labels key is set by redis-sentinel-ha itself \\(.*\\) and used in selectors; use another key, or the name prop to tell instances apart, got "${key}"$`));
    });
  }
});
