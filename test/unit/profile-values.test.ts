// A value cdk8s refuses in its own constructor while an environment profile is being
// written (a negative Duration or Size) is reported with the profile's environment, the
// field and the value as written, not as a bare cdk8s stack trace.
import { describe, expect, it } from 'vitest';
import { Duration, Size } from 'cdk8s';
import { defineEnvironments, explainValueError } from '../../lib/output/profile-values';

describe('defineEnvironments', () => {
  it('names the environment, the field and the value of a negative Duration', () => {
    const build = () => defineEnvironments(() => [
      { name: 'staging', namespace: 'redis-staging', redis: { downAfter: Duration.seconds(5) } },
      {
        name: 'qa',
        namespace: 'redis-qa',
        redis: { storageSize: Size.gibibytes(8), downAfter: Duration.seconds(-2) },
      },
    ]);
    expect(build).toThrow(expect.objectContaining({ name: 'ValidationError' }));
    expect(build).toThrow(/^environment "qa": downAfter must be a valid Duration, but cdk8s refused it \(Duration amounts cannot be negative\. Received: -2\); write a non-negative amount in the environment profile, got "Duration\.seconds\(-2\)"$/);
  });

  it('names a negative Size the same way', () => {
    expect(() => defineEnvironments(() => [
      { name: 'prod', namespace: 'redis-prod', redis: { storageSize: Size.gibibytes(-50) } },
    ])).toThrow(/^environment "prod": storageSize must be a valid Size, .*got "Size\.gibibytes\(-50\)"$/);
  });

  it('returns the profiles when every value is valid', () => {
    const profiles = defineEnvironments(() => [{ name: 'a', namespace: 'redis-a', redis: { downAfter: Duration.seconds(3) } }]);
    expect(profiles[0].redis.downAfter.toSeconds()).toBe(3);
  });

  it('leaves other errors unchanged', () => {
    const other = new TypeError('x is not a function');
    expect(explainValueError(other)).toBe(other);
    expect(() => defineEnvironments(() => { throw other; })).toThrow(other);
  });
});
