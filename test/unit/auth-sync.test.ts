// auth_sync (lib/pod/scripts/auth-sync.sh), the guard's and the janitor's part of a password
// rotation, against the stand-in redis-cli: the server's ACL passwords follow the Secret
// (current and previous), a client credential moves to the new password only once every
// peer takes it, and the status file says what is accepted and in use (hashes, no password).
import { createHash } from 'crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'fs';
import { dirname, join } from 'path';
import { describe, expect, it } from 'vitest';
import { MASTER0, PASSWORDS, SLAVE0, SLAVE1, World, useWorlds } from './support/world';

const newWorld = useWorlds();
const hash = (pw: string): string => createHash('sha256').update(pw).digest('hex');
const short = (pw: string): string => hash(pw).slice(0, 16);
const OPS = PASSWORDS['operations-password'];
const OLD = PASSWORDS['replication-password'];
const NEW = 'replication-new';
const S_OLD = PASSWORDS['sentinel-password'];
const S_NEW = 'sentinel-new';

describe('the decisions', () => {
  const world = (): World => newWorld();
  const run = (code: string): string => {
    const w = world();
    return w.functions(['common.sh', 'auth-sync.sh'], code, w.redisEnv('redis-master-0', { container: 'guard' })).stdout.trim();
  };

  it.each([
    ['a rotation starts: the new password is added', 'NEWH OLDH OLDH', 'add NEWH current'],
    ['a server that restarted with the current one only gets the previous back', 'NEWH OLDH NEWH', 'add OLDH previous'],
    ['both held: nothing to do', 'NEWH OLDH OLDH NEWH', ''],
    ['-previous removed: the old one goes', 'NEWH "" OLDH NEWH', 'remove OLDH'],
    ['a password nobody knows goes, the current one comes', 'NEWH "" STRAY', 'add NEWH current\nremove STRAY'],
    ['the Secret could not be read: nothing changes, nothing is removed', '"" "" OLDH NEWH', ''],
  ])('decide_acl_changes: %s', (_what, args, verdict) => {
    expect(run(`decide_acl_changes ${args}`)).toBe(verdict);
  });

  it.each([
    ['no previous password', 'new ""', '', 'current no rotation is under way'],
    ['every peer takes the new one', 'new old', '', 'current every peer accepts it'],
    ['a peer does not take it yet', 'new old', 'redis-slave-1', 'previous redis-slave-1 does not accept the current one yet'],
  ])('decide_client_password: %s', (_what, args, refusing, verdict) => {
    expect(run(`decide_client_password ${args} "${refusing}"`)).toBe(verdict);
  });
});

describe('auth_sync beside Redis (the guard)', () => {
  /** redis-master-0 and its two peers; every server takes the given replication passwords. */
  function world(peersTake: string[]): World {
    const w = newWorld().redis(MASTER0).redis(SLAVE0, { role: 'slave' }).redis(SLAVE1, { role: 'slave' });
    w.accepts(MASTER0, 6379, [['operations', OPS], ['replication', OLD], ['app', PASSWORDS['app-password']]]);
    for (const peer of [SLAVE0, SLAVE1]) w.accepts(peer, 6379, [['operations', OPS], ...peersTake.map((p): [string, string] => ['replication', p])]);
    return w;
  }
  const sync = (w: World) => {
    const env = w.redisEnv('redis-master-0', { container: 'guard' });
    const r = w.functions(['common.sh', 'auth-sync.sh'], 'AUTH_SERVER=redis; auth_sync sync_masterauth replication', env);
    return { log: r.stderr, status: readFileSync(env.AUTH_STATUS_FILE, 'utf8'), users: w.file(MASTER0, 'users'), masterauth: w.file(MASTER0, 'CONFIG_GET_masterauth') };
  };

  it('a rotation: both accepted at once, masterauth moves only when every peer takes the new one, the old one goes with -previous', () => {
    const w = world([OLD]);
    w.secret('replication-password', NEW).secret('replication-password-previous', OLD);
    // 1. Peers still on the old password (their kubelets are late): the server takes both, masterauth stays.
    let s = sync(w);
    expect(s.users).toContain(`replication #${hash(NEW)}`);
    expect(s.log).toContain(`user replication: accepting its current password (${short(NEW)}) from the Secret`);
    expect(s.masterauth).toBe(`masterauth\n${OLD}\n`);
    expect(s.status).toContain(`replication accepted ${[short(OLD), short(NEW)].sort().join(',')} using ${short(OLD)}\n`);
    expect(s.log).not.toContain('masterauth');
    // 2. Every peer takes it: masterauth switches (sent on stdin: CONFIG SET), once.
    w.accepts(SLAVE0, 6379, [['operations', OPS], ['replication', OLD], ['replication', NEW]]);
    w.accepts(SLAVE1, 6379, [['operations', OPS], ['replication', OLD], ['replication', NEW]]);
    s = sync(w);
    expect(s.masterauth).toBe(`masterauth\n${NEW}\n`);
    expect(s.log).toContain('masterauth: now the current replication password because every peer accepts it');
    expect(s.status).toContain(`using ${short(NEW)}\n`);
    expect(sync(w).log).toBe('');
    // 3. -previous removed from the Secret: the old password is refused from now on.
    w.secret('replication-password-previous', undefined);
    s = sync(w);
    expect(s.log).toContain(`user replication: refusing password ${short(OLD)} from now on (no longer in the Secret)`);
    expect(s.status).toContain(`replication accepted ${short(NEW)} using ${short(NEW)}\n`);
    expect(s.users).not.toMatch(/^replication replication-secret$/m);
  });

  it('reports every user of the server, with the operations password in use, and never a password', () => {
    const w = world([OLD]);
    const { status } = sync(w);
    expect(status.split('\n').map((l) => l.split(' ')[0]).filter(Boolean)).toEqual(['app', 'replication', 'sentinel', 'operations', 'metrics']);
    expect(status).toContain(`operations accepted ${short(OPS)} using ${short(OPS)}\n`);
    expect(status).toContain(`app accepted ${short(PASSWORDS['app-password'])} using -\n`);
    // The stand-in server has no sentinel user: not known.
    expect(status).toContain('sentinel accepted ? using -\n');
    for (const pw of Object.values(PASSWORDS)) expect(status).not.toContain(pw);
  });

  it('a server that does not answer is reported as unknown and nothing is changed', () => {
    const w = world([OLD]).down(MASTER0);
    w.secret('replication-password', NEW).secret('replication-password-previous', OLD);
    const env = w.redisEnv('redis-master-0', { container: 'guard' });
    w.functions(['common.sh', 'auth-sync.sh'], 'AUTH_SERVER=redis; auth_sync sync_masterauth replication', env);
    expect(readFileSync(env.AUTH_STATUS_FILE, 'utf8')).toMatch(/^app accepted \? using -\nreplication accepted \? using /);
    expect(w.calls(MASTER0).filter((c) => c.startsWith('ACL SETUSER') || c.startsWith('CONFIG SET'))).toEqual([]);
  });

  it('with the Secret unreadable nothing is removed', () => {
    const w = world([OLD]);
    w.secret('replication-password', undefined);
    sync(w);
    expect(w.calls(MASTER0).filter((c) => c.startsWith('ACL SETUSER replication'))).toEqual([]);
  });

  it('reads the Secret through the kubelet\'s ..data link, current before previous', () => {
    const w = world([OLD]);
    const env = w.redisEnv('redis-master-0', { container: 'guard' });
    // The new version is in place under ..data; the user-visible link of the new key is not there yet.
    const ts = join(env.AUTH_DIR, '..2026_11_30_04_00_00.1');
    mkdirSync(ts);
    for (const [k, v] of Object.entries({ ...PASSWORDS, 'replication-password': NEW, 'replication-password-previous': OLD })) writeFileSync(join(ts, k), v);
    symlinkSync(ts.slice(dirname(ts).length + 1), join(env.AUTH_DIR, '..data'));
    const r = w.functions(['common.sh', 'auth-sync.sh'], 'auth_file replication-password; echo; auth_file replication-password-previous', env);
    expect(r.stdout).toBe(`${NEW}\n${OLD}`);
  });
});

describe('auth_sync beside Sentinel (the janitor)', () => {
  it('auth-pass moves once every Redis pod takes the new password, sentinel-pass only once every Sentinel does', () => {
    const w = newWorld().redis(MASTER0).redis(SLAVE0, { role: 'slave' }).redis(SLAVE1, { role: 'slave' })
      .sentinel('10.0.0.5', { master: { host: MASTER0, epoch: 1 } })
      .sentinel('10.0.0.6', { master: { host: MASTER0, epoch: 1 } });
    for (const r of [MASTER0, SLAVE0, SLAVE1]) w.accepts(r, 6379, [['operations', OPS], ['sentinel', S_OLD], ['sentinel', S_NEW]]);
    w.accepts('10.0.0.5', 26379, [['operations', OPS], ['sentinel', S_OLD]]);
    w.accepts('10.0.0.6', 26379, [['operations', OPS], ['sentinel', S_OLD]]);
    w.replies('10.0.0.5', 26379, { 'SENTINEL_CONFIG_GET_sentinel-pass': `sentinel-pass\n${S_OLD}\n` });
    w.secret('sentinel-password', S_NEW).secret('sentinel-password-previous', S_OLD);
    const janitor = w.sentinelEnv('10.0.0.5', { container: 'janitor' });
    mkdirSync(dirname(janitor.SENTINEL_CONFIG), { recursive: true });
    writeFileSync(janitor.SENTINEL_CONFIG, `sentinel monitor mymaster ${MASTER0} 6379 2\nsentinel auth-user mymaster sentinel\nsentinel auth-pass mymaster "${S_OLD}"\n`);
    const sync = () => {
      const r = w.functions(['common.sh', 'auth-sync.sh'], 'AUTH_SERVER=sentinel; auth_sync sync_sentinel_passwords sentinel', janitor);
      return { log: r.stderr, status: readFileSync(janitor.AUTH_STATUS_FILE, 'utf8') };
    };
    let s = sync();
    expect(s.log).toContain(`user sentinel: accepting its current password (${short(S_NEW)}) from the Secret`);
    expect(s.log).toContain('auth-pass: now the current sentinel password because every peer accepts it');
    expect(readFileSync(janitor.SENTINEL_CONFIG, 'utf8')).toContain(`sentinel auth-pass mymaster ${S_NEW}\n`);
    // 10.0.0.6 does not take the new one yet: sentinel-pass stays.
    expect(s.log).not.toContain('sentinel-pass');
    expect(w.file('10.0.0.5', 'SENTINEL_CONFIG_GET_sentinel-pass')).toBe(`sentinel-pass\n${S_OLD}\n`);
    expect(s.status).toContain(`sentinel accepted ${[short(S_OLD), short(S_NEW)].sort().join(',')} using ${[short(S_OLD), short(S_NEW)].sort().join(',')}\n`);
    expect(s.status.split('\n').map((l) => l.split(' ')[0]).filter(Boolean)).toEqual(['app', 'sentinel', 'operations', 'metrics']);
    w.accepts('10.0.0.6', 26379, [['operations', OPS], ['sentinel', S_OLD], ['sentinel', S_NEW]]);
    s = sync();
    expect(s.log).toContain('sentinel-pass: now the current sentinel password because every peer accepts it');
    expect(s.status).toContain(`using ${short(S_NEW)}\n`);
    // Sent on stdin, never as redis-cli arguments: the stand-in records what it received either way,
    // so check the script text itself.
    expect(readFileSync(join(__dirname, '../../lib/pod/scripts/auth-sync.sh'), 'utf8')).toMatch(/printf 'SENTINEL CONFIG SET sentinel-pass %s\\n' "\$CHOSEN" \| sentinel_cmd 127\.0\.0\.1/);
  });
});
