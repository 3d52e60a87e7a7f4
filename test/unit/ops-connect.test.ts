// The operator commands' connection layer (lib/ops/connect.ts): the options checked (each
// bad value a one-line CliError naming flag, value and fix), and against a real Redis +
// Sentinel system on loopback with the project's ACL rules: Sentinels found from one,
// the master a majority names, --map applied to the addresses the Sentinels report, and
// the one-line errors for an unreachable Sentinel, a wrong master name, a wrong password
// and a command the user may not run.
import { parseArgs } from 'util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONNECTION_OPTIONS, CliError, ConnectionOptions, HaConnection, connectionOptions } from '../../lib/ops/connect';
import { itWith } from '../prerequisites';
import { HOST, LoopbackHa, PASSWORDS } from './support/loopback-ha';

const parse = (args: string[]) => parseArgs({ args, options: CONNECTION_OPTIONS, strict: true }).values;

/** The CliError message connectionOptions gives for `args` (with a password file unless the args say). */
function optionError(args: string[], env: Record<string, string> = {}): string {
  try {
    connectionOptions(parse(args), { user: 'operations', env });
  } catch (e) {
    expect(e).toBeInstanceOf(CliError);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
  throw new Error(`no error for ${args.join(' ')}`);
}

describe('connection options', () => {
  const ha = new LoopbackHa({ sentinels: 0, replicas: 0 });
  afterAll(() => ha.close());
  const pw = () => ha.passwordFile('operations');

  it('defaults: the Sentinel Service, mymaster, the command\'s user, the same credentials on the Sentinels', () => {
    const o = connectionOptions(parse(['--password-file', pw()]), { user: 'operations', env: {} });
    expect(o).toMatchObject({
      sentinels: [{ host: 'redis-sentinel', port: 26379 }], masterName: 'mymaster', user: 'operations', sentinelUser: 'operations',
      password: PASSWORDS.operations, sentinelPassword: PASSWORDS.operations, tls: false, map: [], connectTimeoutMs: 2000,
    });
    expect(connectionOptions(parse(['--password-file', pw()]), { user: 'app', env: {} }).user).toBe('app');
  });

  it('every option given', () => {
    const app = ha.passwordFile('app');
    const ca = ha.passwordFile('ca', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const o = connectionOptions(parse([
      '--sentinel', '10.0.0.1:26379', '--sentinel', '[::1]:26380', '--master-name', 'cache', '--user', 'app', '--password-file', app,
      '--sentinel-user', 'operations', '--sentinel-password-file', pw(), '--cacert', ca,
      '--map', 'redis-master-0.redis-master.redis.svc.cluster.local:6379=127.0.0.1:6380', '--connect-timeout', '500ms',
    ]), { user: 'operations', env: {} });
    expect(o).toMatchObject({
      sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: '::1', port: 26380 }], masterName: 'cache', user: 'app', password: PASSWORDS.app,
      sentinelUser: 'operations', sentinelPassword: PASSWORDS.operations, tls: true, connectTimeoutMs: 500,
      map: [{ from: { host: 'redis-master-0.redis-master.redis.svc.cluster.local', port: 6379 }, to: { host: '127.0.0.1', port: 6380 } }],
    });
  });

  it('the password file may come from the environment', () => {
    const o = connectionOptions(parse([]), { user: 'operations', env: { REDIS_HA_PASSWORD_FILE: pw() } });
    expect(o.password).toBe(PASSWORDS.operations);
  });

  it('bad values: one line naming the flag, the value and the fix', () => {
    expect(optionError([])).toMatch(/no password for user 'operations': give --password-file FILE .*REDIS_HA_PASSWORD_FILE.*operations-password/);
    expect(optionError(['--password-file', '/nonexistent/pw'])).toBe("--password-file '/nonexistent/pw': cannot read it (no such file); it must hold the password of user 'operations'");
    expect(optionError(['--password-file', ha.passwordFile('x', '\n')])).toMatch(/^--password-file '.*' is empty/);
    expect(optionError(['--password-file', ha.passwordFile('x', 'a\nb\n')])).toMatch(/has more than one line/);
    expect(optionError([], { REDIS_HA_PASSWORD_FILE: '/nonexistent/env' })).toMatch(/^\$REDIS_HA_PASSWORD_FILE '\/nonexistent\/env': cannot read it/);
    expect(optionError(['--password-file', pw(), '--sentinel', 'redis-sentinel'])).toBe("--sentinel 'redis-sentinel' is not HOST:PORT (for example --sentinel redis-sentinel:26379)");
    expect(optionError(['--password-file', pw(), '--sentinel', 'a:99999'])).toMatch(/--sentinel 'a:99999' is not HOST:PORT/);
    expect(optionError(['--password-file', pw(), '--map', 'a:1'])).toMatch(/^--map 'a:1' is not FROM=TO with both HOST:PORT \(for example --map /);
    expect(optionError(['--password-file', pw(), '--map', 'a:1=b'])).toMatch(/^--map 'a:1=b' is not FROM=TO/);
    expect(optionError(['--password-file', pw(), '--map', 'a:1=b:2', '--map', 'A:1=c:3'])).toMatch(/--map maps a:1 twice/i);
    expect(optionError(['--password-file', pw(), '--connect-timeout', 'soon'])).toBe("--connect-timeout 'soon' is not a duration (examples: 500ms, 2s, 1m)");
    expect(optionError(['--password-file', pw(), '--sentinel-user', 'admin'])).toMatch(/no password for Sentinel user 'admin': give --sentinel-password-file FILE/);
    expect(optionError(['--password-file', pw(), '--cacert', '/nonexistent/ca.crt'])).toMatch(/^--cacert '\/nonexistent\/ca.crt': cannot read it \(ENOENT\)/);
    expect(optionError(['--password-file', pw(), '--cacert', pw()])).toMatch(/holds no PEM certificate/);
    expect(optionError(['--password-file', pw(), '--master-name', 'my master'])).toMatch(/--master-name 'my master' is not a Sentinel master name/);
  });

  it('no option takes a password on the command line', () => {
    expect(Object.keys(CONNECTION_OPTIONS).filter((k) => /pass/.test(k) && !/-file$/.test(k))).toEqual([]);
  });
});

const itWithRedis = itWith('redis-sentinel', 'apt-get install redis-server redis-sentinel');

describe('connections to a real system on loopback (the project\'s ACL rules)', () => {
  const ha = new LoopbackHa({ replicas: 1, sentinels: 3 });
  let opened: HaConnection[] = [];
  beforeAll(async () => {
    if (process.env.CI !== 'true' && !(await import('../prerequisites')).onPath('redis-sentinel')) return;
    await ha.start();
  }, 60_000);
  afterAll(async () => {
    for (const c of opened) await c.close();
    ha.close();
  });

  /** A connection as `user` with these extra arguments (the first Sentinel as seed unless given). */
  function conn(args: string[] = [], user = 'operations'): HaConnection {
    const withSeed = args.includes('--sentinel') ? args : ['--sentinel', `${HOST}:${ha.sentinelPorts[0]}`, ...args];
    const withPw = args.includes('--password-file') ? withSeed : [...withSeed, '--password-file', ha.passwordFile(user)];
    const o: ConnectionOptions = connectionOptions(parse(withPw), { user, env: {} });
    const c = new HaConnection(o);
    opened.push(c);
    return c;
  }

  async function failure(p: Promise<unknown>): Promise<string> {
    const e = await p.then(() => undefined, (err) => err);
    expect(e, 'an error').toBeInstanceOf(CliError);
    expect(e.message).not.toContain('\n');
    return e.message;
  }

  itWithRedis('finds every Sentinel from one and returns the master a majority names', async () => {
    const c = conn();
    const { sentinels } = await c.discoverSentinels();
    expect(sentinels.map((s) => s.port).sort()).toEqual([...ha.sentinelPorts].sort());
    expect(await c.masterAddress()).toEqual({ host: HOST, port: ha.redisPorts[0] });
    expect(await c.redisCommand(await c.masterAddress(), 'PING')).toBe('PONG');
  });

  itWithRedis('--map applies to the seed and to every address the Sentinels report', async () => {
    // The seed is a name nothing resolves, forwarded like `kubectl port-forward svc/redis-sentinel`;
    // the master the Sentinels report is forwarded too.
    const sentinelFwd = await ha.forward(ha.sentinelPorts[1]);
    const masterFwd = await ha.forward(ha.redisPorts[0]);
    const c = conn(['--sentinel', 'redis-sentinel.invalid:26379', '--map', `redis-sentinel.invalid:26379=${HOST}:${sentinelFwd}`,
      '--map', `${HOST}:${ha.redisPorts[0]}=${HOST}:${masterFwd}`]);
    const master = await c.masterAddress();
    expect(master).toEqual({ host: HOST, port: ha.redisPorts[0] });
    expect(c.describe(master)).toBe(`${HOST}:${ha.redisPorts[0]} (via ${HOST}:${masterFwd})`);
    expect(await c.redisCommand(master, 'PING')).toBe('PONG');
    // A reported address mapped to where nothing listens: the connection goes there, and says so.
    const broken = conn(['--map', `${HOST}:${ha.redisPorts[0]}=${HOST}:1`]);
    expect(await failure(broken.redisCommand(await broken.masterAddress(), 'PING')))
      .toBe(`cannot reach Redis ${HOST}:${ha.redisPorts[0]} (via ${HOST}:1): connection refused`);
  });

  itWithRedis('no Sentinel reachable: names the addresses tried and suggests --sentinel and --map', async () => {
    const c = conn(['--sentinel', `${HOST}:1`, '--sentinel', 'no-such-host.invalid:26379']);
    const msg = await failure(c.masterAddress());
    expect(msg).toMatch(new RegExp(`^no Sentinel answered \\(tried ${HOST}:1, no-such-host.invalid:26379\\): `));
    expect(msg).toContain(`cannot reach Sentinel ${HOST}:1: connection refused`);
    expect(msg).toContain('cannot reach Sentinel no-such-host.invalid:26379: name not found');
    expect(msg).toMatch(/--sentinel HOST:PORT.*--map FROM=TO/);
  });

  itWithRedis('a master name the Sentinels do not monitor: says so, with the names they monitor when the user may list them', async () => {
    expect(await failure(conn(['--master-name', 'nosuch']).masterAddress()))
      .toBe("the Sentinels monitor no master named 'nosuch' (check --master-name; the chart's default is mymaster)");
    // The app user may run SENTINEL MASTERS (client discovery), so it is told the names.
    expect(await failure(conn(['--master-name', 'nosuch'], 'app').masterAddress()))
      .toBe("the Sentinels monitor no master named 'nosuch'; they monitor: mymaster (--master-name)");
  });

  itWithRedis('wrong credentials: names the user and the password file', async () => {
    const file = ha.passwordFile('operations', 'not-the-password\n');
    const msg = await failure(conn(['--password-file', file]).masterAddress());
    expect(msg).toContain(`Sentinel ${HOST}:${ha.sentinelPorts[0]} refused user 'operations' with the password from --password-file ${file} (WRONGPASS: wrong password, or no such user)`);
    const redisOnly = conn(['--sentinel-password-file', ha.passwordFile('operations'), '--password-file', file]);
    expect(await failure(redisOnly.redisCommand(await redisOnly.masterAddress(), 'PING')))
      .toBe(`Redis ${HOST}:${ha.redisPorts[0]} refused user 'operations' with the password from --password-file ${file} (WRONGPASS: wrong password, or no such user)`);
  });

  itWithRedis('a command the user may not run: names the user and the command', async () => {
    const c = conn([], 'app');
    const master = await c.masterAddress();
    expect(await failure(c.redisCommand(master, 'CLIENT', 'PAUSE', 10, 'WRITE')))
      .toMatch(new RegExp(`^user 'app' may not run CLIENT PAUSE on Redis ${HOST}:${ha.redisPorts[0]} \\(NOPERM\\)`));
    expect(await failure(c.sentinelCommand({ host: HOST, port: ha.sentinelPorts[0] }, 'SENTINEL', 'FAILOVER', 'mymaster')))
      .toMatch(new RegExp(`^user 'app' may not run SENTINEL FAILOVER on Sentinel ${HOST}:${ha.sentinelPorts[0]} \\(NOPERM\\)`));
  });
});
