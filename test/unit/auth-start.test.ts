// What the start scripts make of the auth Secret: ACL users with password hashes (both
// during a rotation), the default user off, the client credentials towards peers, and a
// clear refusal when the Secret lacks a key or still has the pre-ACL layout. Against the
// stand-in world (redis-server and redis-sentinel print the config they were given).
import { describe, expect, it } from 'vitest';
import { createHash } from 'crypto';
import { writeFileSync } from 'fs';
import { REDIS_ACL, SENTINEL_ACL } from '../../lib/pod/acl';
import { MASTER0, PASSWORDS, SLAVE1, World, useWorlds } from './support/world';

const newWorld = useWorlds();
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const userLine = (user: string, rules: string, ...passwords: string[]) => `user ${user} on ${passwords.map((p) => `#${sha(p)}`).join(' ')} ${rules}`;

/** redis-start.sh of redis-slave-0 where the Sentinels name redis-slave-1 master: the config it starts with. */
function startRedis(world: World) {
  world.sentinel('10.0.0.5', { master: { host: SLAVE1, epoch: 3 } }).redis(SLAVE1, { role: 'master' }).redis(MASTER0, { role: 'slave', masterHost: SLAVE1 });
  const env = world.redisEnv('redis-slave-0');
  writeFileSync(env.REDIS_TEMPLATE, 'port 6379\n');
  const r = world.script('redis-start.sh', env, [], 20_000);
  return { status: r.status, lines: r.stdout.trim().split('\n'), log: r.stderr };
}

/** sentinel-start.sh of 10.0.0.5, with a previous config (as Sentinel rewrote it) in its data directory. */
function startSentinel(world: World, previous?: string) {
  world.sentinel('10.0.0.6', { master: { host: SLAVE1, epoch: 3 } });
  const env = world.sentinelEnv('10.0.0.5');
  writeFileSync(env.SENTINEL_TEMPLATE, 'port 26379\nsentinel monitor mymaster redis-master-0.redis-master 6379 2\n');
  if (previous !== undefined) writeFileSync(env.SENTINEL_CONFIG, previous);
  const r = world.script('sentinel-start.sh', env, [], 20_000);
  return { status: r.status, lines: r.stdout.trim().split('\n'), log: r.stderr };
}

describe('redis-start.sh: ACL users and replication credentials', () => {
  it('switches the default user off and writes one user per rule line, with the hash of its password only', () => {
    const s = startRedis(newWorld());
    expect(s.status, s.log).toBe(0);
    expect(s.lines.filter((l) => l.startsWith('user '))).toEqual([
      'user default off',
      userLine('app', REDIS_ACL.app, PASSWORDS['app-password']),
      userLine('replication', REDIS_ACL.replication, PASSWORDS['replication-password']),
      userLine('sentinel', REDIS_ACL.sentinel, PASSWORDS['sentinel-password']),
      userLine('operations', REDIS_ACL.operations, PASSWORDS['operations-password']),
      userLine('metrics', REDIS_ACL.metrics, PASSWORDS['metrics-password']),
    ]);
    expect(s.lines).toContain('masteruser replication');
    expect(s.lines).toContain(`masterauth "${PASSWORDS['replication-password']}"`);
    expect(s.lines).toContain(`replicaof ${SLAVE1} 6379`);
    expect(s.lines.some((l) => /^requirepass\b/.test(l))).toBe(false);
    // Only the replication password, which it must send, is there in plain text.
    for (const key of ['app-password', 'sentinel-password', 'operations-password', 'metrics-password']) expect(s.lines.join('\n')).not.toContain(PASSWORDS[key]);
  });

  it('during a rotation accepts the current and the previous password, and logs in to its master with the previous one', () => {
    const world = newWorld().secret('app-password-previous', 'old-app').secret('replication-password-previous', 'old-replication');
    const s = startRedis(world);
    expect(s.status, s.log).toBe(0);
    expect(s.lines).toContain(userLine('app', REDIS_ACL.app, PASSWORDS['app-password'], 'old-app'));
    expect(s.lines).toContain(userLine('replication', REDIS_ACL.replication, PASSWORDS['replication-password'], 'old-replication'));
    expect(s.lines).toContain(userLine('operations', REDIS_ACL.operations, PASSWORDS['operations-password']));
    expect(s.lines).toContain('masterauth "old-replication"');
  });

  it('refuses to start, naming the Secret, the missing key and the fix', () => {
    const s = startRedis(newWorld().secret('sentinel-password', undefined));
    expect(s.status).toBe(1);
    expect(s.log.trim().split('\n')).toHaveLength(1);
    expect(s.log).toMatch(/redis-start: refusing to start: Secret redis-auth has no key sentinel-password; add it, or create the Secret with every key: kubectl -n ns create secret generic redis-auth --from-literal=app-password=\$\(openssl rand -hex 32\) --from-literal=replication-password=\$\(openssl rand -hex 32\) --from-literal=sentinel-password=\$\(openssl rand -hex 32\) --from-literal=operations-password=\$\(openssl rand -hex 32\) --from-literal=metrics-password=\$\(openssl rand -hex 32\)\n$/);
    expect(s.lines).toEqual(['']);
  });

  it('refuses a Secret in the pre-ACL layout (only the key password), saying how to add the five keys', () => {
    const world = newWorld().secret('password', 'one-for-all');
    for (const key of Object.keys(PASSWORDS)) world.secret(key, undefined);
    const s = startRedis(world);
    expect(s.status).toBe(1);
    expect(s.log.trim().split('\n')).toHaveLength(1);
    expect(s.log).toMatch(/refusing to start: Secret redis-auth is in the pre-ACL layout \(one key, password\); each user now has its own key \(app-password, replication-password, sentinel-password, operations-password, metrics-password\): add them, or recreate the Secret: kubectl -n ns create secret generic redis-auth --from-literal=app-password=/);
  });

  it('without the exporter (metrics off) needs no metrics-password and makes no metrics user', () => {
    const world = newWorld().secret('metrics-password', undefined);
    world.sentinel('10.0.0.5', { master: { host: SLAVE1, epoch: 3 } }).redis(SLAVE1, { role: 'master' }).redis(MASTER0, { role: 'slave', masterHost: SLAVE1 });
    const env = world.redisEnv('redis-slave-0', { contract: { metrics: false } });
    writeFileSync(env.REDIS_TEMPLATE, 'port 6379\n');
    const r = world.script('redis-start.sh', env, [], 20_000);
    expect(r.status, r.stderr).toBe(0);
    const users = r.stdout.split('\n').filter((l) => l.startsWith('user ')).map((l) => l.split(' ')[1]);
    expect(users).toEqual(['default', 'app', 'replication', 'sentinel', 'operations']);
  });

  it('refuses a password that is not a plain token (current or previous)', () => {
    for (const [key, value] of [['app-password', 'a"b'], ['operations-password-previous', 'x\\y']]) {
      const s = startRedis(newWorld().secret(key, value));
      expect(s.status, key).toBe(1);
      expect(s.log).toMatch(new RegExp(`refusing to start: the value of key ${key} in Secret redis-auth is empty or contains a quote, backslash or newline`));
    }
  });
});

describe('sentinel-start.sh: ACL users and credentials, once each after any number of restarts', () => {
  // A config as Sentinel rewrote it: its own users, credentials and state lines.
  const rewritten = [
    'port 26379', 'sentinel monitor mymaster redis-slave-1.redis-slave.ns.svc.cluster.local 6379 2',
    'sentinel auth-user mymaster sentinel', 'sentinel auth-pass mymaster "stale-pass"',
    'sentinel sentinel-user sentinel', 'sentinel sentinel-pass "stale-pass"',
    'sentinel myid 6e828d14bda6fe5402f445e1ecf699520d9449b4', 'sentinel current-epoch 3',
    'user default off', `user app on #${sha('stale-app')} -@all`, `user sentinel on #${sha('stale')} -@all`, `user operations on #${sha('stale')} -@all`, `user metrics on #${sha('stale')} -@all`,
  ].join('\n') + '\n';

  const expectedAuthLines = (sentinelPassword: string) => [
    'user default off',
    userLine('app', SENTINEL_ACL.app!, PASSWORDS['app-password']),
    userLine('sentinel', SENTINEL_ACL.sentinel!, PASSWORDS['sentinel-password']),
    userLine('operations', SENTINEL_ACL.operations!, PASSWORDS['operations-password']),
    userLine('metrics', SENTINEL_ACL.metrics!, PASSWORDS['metrics-password']),
    'sentinel auth-user mymaster sentinel', `sentinel auth-pass mymaster "${sentinelPassword}"`,
    'sentinel sentinel-user sentinel', `sentinel sentinel-pass "${sentinelPassword}"`,
  ];
  const authLines = (lines: string[]) => lines.filter((l) => /^user |^sentinel (auth-user|auth-pass|sentinel-user|sentinel-pass) /.test(l));

  it('on a first start: default off, the Sentinel users (no replication user), and the sentinel user towards Redis and the other Sentinels', () => {
    const s = startSentinel(newWorld());
    expect(s.status, s.log).toBe(0);
    expect(authLines(s.lines)).toEqual(expectedAuthLines(PASSWORDS['sentinel-password']));
    // Per-master options follow the monitor line (Sentinel refuses them for a master it does not know yet).
    expect(s.lines.findIndex((l) => l.startsWith('sentinel auth-user'))).toBeGreaterThan(s.lines.findIndex((l) => l.startsWith('sentinel monitor')));
  });

  it('after a restart over the config Sentinel rewrote, each line once, with the Secret\'s values (none carried over)', () => {
    const s = startSentinel(newWorld(), rewritten);
    expect(s.status, s.log).toBe(0);
    expect(authLines(s.lines)).toEqual(expectedAuthLines(PASSWORDS['sentinel-password']));
    expect(s.lines.join('\n')).not.toMatch(/stale/);
    // It still keeps its ID from the previous run.
    expect(s.lines).toContain('sentinel myid 6e828d14bda6fe5402f445e1ecf699520d9449b4');
  });

  it('during a rotation accepts both passwords and uses the previous one towards its peers', () => {
    const world = newWorld().secret('sentinel-password-previous', 'old-sentinel');
    const s = startSentinel(world, rewritten);
    expect(s.status, s.log).toBe(0);
    expect(s.lines).toContain(userLine('sentinel', SENTINEL_ACL.sentinel!, PASSWORDS['sentinel-password'], 'old-sentinel'));
    expect(s.lines).toContain('sentinel auth-pass mymaster "old-sentinel"');
    expect(s.lines).toContain('sentinel sentinel-pass "old-sentinel"');
  });

  it('refuses to start without a key it needs, and does not need the replication key', () => {
    expect(startSentinel(newWorld().secret('replication-password', undefined)).status).toBe(0);
    const s = startSentinel(newWorld().secret('app-password', undefined).secret('operations-password', undefined));
    expect(s.status).toBe(1);
    expect(s.log).toMatch(/sentinel-start: refusing to start: Secret redis-auth has no key app-password, operations-password; add it/);
  });
});

describe('the scripts as operations', () => {
  it('retry once with operations-password-previous when the server refuses the current one, and never put a password on a command line', () => {
    const world = newWorld().redis(MASTER0, { role: 'master' }).secret('operations-password-previous', 'old-ops')
      .accepts(MASTER0, 6379, [['operations', 'old-ops']]);
    const env = world.redisEnv('redis-master-0');
    expect(world.functions(['common.sh'], `redis_cmd ${MASTER0} ROLE | head -n 1`, env).stdout).toBe('master\n');
    expect(world.authCalls()).toEqual([`${MASTER0} - ROLE`, `${MASTER0} operations ROLE`]);
    // Without a previous password, the refusal is no answer at all (NOAUTH is not a role).
    world.secret('operations-password-previous', undefined);
    const r = world.functions(['common.sh'], `redis_cmd ${MASTER0} ROLE || echo "status $?"`, env);
    expect(r.stdout).toBe('status 1\n');
  });
});
