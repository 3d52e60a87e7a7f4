// The client examples: they type-check (npm run typecheck includes examples/), carry the
// settings the README recommends, and the benchmark's client (harness/client-agent.cjs)
// uses the same numbers, so bench:failover measures what an application following the
// examples gets. (The Python and TypeScript examples run through a failover in
// test/live/examples.test.ts; the Java one is not compiled here: Maven Central is not
// reachable.)
import { readFileSync } from 'fs';
import { join } from 'path';
import { describe, expect, it } from 'vitest';
import { CLIENT_SETTINGS, configFromEnvironment, sentinelOptions } from '../../examples/typescript/sentinel-client';

const ROOT = join(__dirname, '..', '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

function agentSettings(): Record<string, number> {
  const m = /^const CLIENT_SETTINGS = (\{[^;]*\});$/m.exec(read('harness/client-agent.cjs'));
  if (!m) throw new Error('harness/client-agent.cjs has no CLIENT_SETTINGS object');
  return new Function(`return ${m[1]}`)();
}

function pythonConstant(name: string): number {
  const m = new RegExp(`^${name} = ([0-9.]+)$`, 'm').exec(read('examples/python/sentinel_client.py'));
  if (!m) throw new Error(`examples/python/sentinel_client.py has no ${name}`);
  return Number(m[1]);
}

describe('client examples', () => {
  it('the benchmark client uses the settings the TypeScript example recommends', () => {
    const { retryForMs: _applicationRetry, ...clientSide } = CLIENT_SETTINGS;
    expect(agentSettings()).toEqual(clientSide);
  });

  it('the Python example uses the same timeouts and retry delay', () => {
    expect(pythonConstant('CONNECT_TIMEOUT_S') * 1000).toBe(CLIENT_SETTINGS.connectTimeoutMs);
    expect(pythonConstant('COMMAND_TIMEOUT_S') * 1000).toBe(CLIENT_SETTINGS.commandTimeoutMs);
    expect(pythonConstant('RETRY_DELAY_S') * 1000).toBe(CLIENT_SETTINGS.retryDelayMs);
    expect(pythonConstant('RETRY_FOR_S') * 1000).toBe(CLIENT_SETTINGS.retryForMs);
  });

  it('the Java example uses the same timeouts and retry delay', () => {
    const java = read('examples/java/src/main/java/example/SentinelClient.java');
    expect(java).toContain(`CONNECT_TIMEOUT = Duration.ofMillis(${CLIENT_SETTINGS.connectTimeoutMs})`);
    expect(java).toContain(`COMMAND_TIMEOUT = Duration.ofSeconds(${CLIENT_SETTINGS.commandTimeoutMs / 1000})`);
    expect(java).toContain(`RETRY_DELAY = Duration.ofMillis(${CLIENT_SETTINGS.retryDelayMs})`);
    expect(java).toContain(`RETRY_FOR = Duration.ofSeconds(${CLIENT_SETTINGS.retryForMs / 1000})`);
  });

  it('the TypeScript example logs in as app on Sentinel and Redis, with TLS only when a CA is given', () => {
    const config = configFromEnvironment({ REDIS_PASSWORD: 'pw', REDIS_SENTINELS: 'a:1,b.c:26379' });
    expect(config.sentinels).toEqual([{ host: 'a', port: 1 }, { host: 'b.c', port: 26379 }]);
    const options = sentinelOptions(config, 'master');
    expect(options).toMatchObject({ username: 'app', password: 'pw', sentinelUsername: 'app', sentinelPassword: 'pw', enableReadyCheck: false });
    expect(options.tls).toBeUndefined();
    expect(sentinelOptions({ ...config, tlsCa: 'PEM' }, 'slave')).toMatchObject({ tls: { ca: 'PEM' }, sentinelTLS: { ca: 'PEM' }, enableTLSForSentinelMode: true });
    expect(() => configFromEnvironment({})).toThrow(/REDIS_PASSWORD_FILE/);
  });
});
