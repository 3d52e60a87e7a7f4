// The rotation tool's steps (lib/ops/rotation.ts) against a described cluster: a Secret and
// pods whose sidecars behave as auth_sync does (the server accepts current and previous of
// the Secret as that pod's kubelet last wrote it; a client credential moves to the current
// password once every pod accepts it), and a proxy pod whose decider behaves as the contract
// says (each connection to a server logs in with the current password if that server takes
// it, else with the previous one). Kubelets lag: each pod sees a Secret update only after a
// few looks. No Redis runs, and time is the test's own (sleep advances a clock).
import { describe, expect, it } from 'vitest';
import {
  AUTH_USERS, AuthUser, PodAccess, REPORTED_USERS, RotationOptions, RotationPod, SecretAccess, hashPrefix, parseDuration,
  parseStatus, parseUsers, previousKey, rotatePasswords, secretKey, SERVER_USERS,
} from '../../lib/ops/rotation';

const OLD: Record<string, string> = Object.fromEntries(AUTH_USERS.map((u) => [secretKey(u), `old-${u}`]));
const PODS: RotationPod[] = [
  { name: 'redis-master-0', kind: 'redis', container: 'guard' },
  { name: 'redis-slave-0', kind: 'redis', container: 'guard' },
  { name: 'redis-sentinel-abc', kind: 'sentinel', container: 'janitor' },
  { name: 'redis-proxy-5d9c-x2x7k', kind: 'proxy', container: 'haproxy' },
];
const SERVER_PODS = PODS.filter((p) => p.kind !== 'proxy');

/**
 * stuck: its kubelet never delivers an update. keepsOld: its server keeps taking the old
 * passwords (a proxy pod: its decider keeps using the old one). idle: a proxy pod whose
 * decider has no connection open.
 */
interface FakePod { pod: RotationPod; seen: Record<string, string>; behind: number; stuck?: boolean; keepsOld?: boolean; idle?: boolean }

class World {
  data: Record<string, string> | undefined;
  updates: Record<string, string | null>[] = [];
  /** Broken promises: a -previous key removed while some pod did not yet use the new password. */
  violations: string[] = [];
  pods: FakePod[];
  clock = 0;
  log: string[] = [];

  /** data: the Secret (null: none). */
  constructor(data: Record<string, string> | null = { ...OLD }, readonly lag = 2, pods = PODS) {
    this.data = data ?? undefined;
    this.pods = pods.map((pod) => ({ pod, seen: { ...(data ?? {}) }, behind: 0 }));
  }

  accepted(p: FakePod, user: AuthUser): string[] {
    return [p.seen[secretKey(user)], p.seen[previousKey(user)]].filter((x): x is string => x !== undefined);
  }

  /** What the pod's components use as a client for `user` (auth_sync's rule). */
  using(p: FakePod, user: AuthUser): string[] {
    if (p.pod.kind === 'proxy') return user === 'proxy' ? this.proxyUsing(p) : [];
    const clientOf: Record<string, AuthUser[]> = { redis: ['replication', 'operations'], sentinel: ['sentinel', 'operations'] };
    if (!clientOf[p.pod.kind].includes(user)) return [];
    const cur = p.seen[secretKey(user)];
    const peers = this.pods.filter((q) => SERVER_USERS[q.pod.kind].includes(user));
    if (user === 'operations' || peers.every((q) => this.accepted(q, user).includes(cur))) return [cur];
    return [p.seen[previousKey(user)] ?? cur];
  }

  /** The passwords of the proxy's decider's connections, one per server (the contract's rule). */
  proxyUsing(p: FakePod): string[] {
    if (p.idle) return [];
    if (p.keepsOld) return [OLD[secretKey('proxy')]];
    const cur = p.seen[secretKey('proxy')];
    const prev = p.seen[previousKey('proxy')];
    const servers = this.pods.filter((q) => q.pod.kind !== 'proxy');
    return [...new Set(servers.map((q) => (this.accepted(q, 'proxy').includes(cur) || prev === undefined ? cur : prev)))];
  }

  status(p: FakePod): string {
    if (p.pod.kind === 'proxy') return `proxy accepted - using ${this.proxyUsing(p).map(hashPrefix).join(',') || '-'}\n`;
    return REPORTED_USERS[p.pod.kind].map((u) => {
      const using = this.using(p, u).map(hashPrefix);
      const accepted = this.accepted(p, u).map(hashPrefix);
      if (p.keepsOld) accepted.push(hashPrefix(OLD[secretKey(u)]));
      return `${u} accepted ${accepted.join(',')} using ${using.join(',') || '-'}`;
    }).join('\n');
  }

  secret(): SecretAccess {
    return {
      name: 'ns/redis-auth',
      read: async () => (this.data ? { ...this.data } : undefined),
      update: async (changes) => {
        const data = this.data;
        if (!data) throw new Error('no Secret');
        for (const [k, v] of Object.entries(changes)) {
          if (v !== null) continue;
          const user = k.replace(/-password-previous$/, '') as AuthUser;
          for (const p of this.pods) {
            const u = this.using(p, user);
            if (u.some((x) => x !== data[secretKey(user)])) this.violations.push(`${k} removed while ${p.pod.name} uses ${u}`);
          }
        }
        this.updates.push(changes);
        for (const [k, v] of Object.entries(changes)) {
          if (v === null) delete data[k];
          else data[k] = v;
        }
        for (const p of this.pods) p.behind = this.lag;
      },
    };
  }

  access(): PodAccess {
    return {
      pods: async () => this.pods.map((p) => p.pod),
      exec: async (pod, argv, stdin) => {
        const p = this.pods.find((x) => x.pod === pod)!;
        if (argv[0] === 'cat') {
          // The kubelet of this pod catches up after `lag` looks.
          if (!p.stuck && p.behind > 0 && --p.behind === 0) p.seen = { ...this.data };
          return this.status(p);
        }
        // A proxy pod has no server to log in to.
        expect(pod.kind).not.toBe('proxy');
        const user = argv[argv.length - 1] as AuthUser;
        const pw = stdin!.trim();
        expect(argv.join(' ')).not.toContain(pw);
        return this.accepted(p, user).includes(pw) || (p.keepsOld && pw === OLD[secretKey(user)]) ? 'OK\n' : 'WRONGPASS invalid username-password pair or user is disabled.\n';
      },
    };
  }

  options(extra: Partial<RotationOptions> = {}): RotationOptions {
    let n = 0;
    return {
      timeoutMs: 60_000,
      pollMs: 1000,
      log: (l) => this.log.push(l),
      generate: () => `new-${++n}`,
      sleep: async (ms) => { this.clock += ms; },
      now: () => this.clock,
      ...extra,
    };
  }

  run(extra: Partial<RotationOptions> = {}) {
    return rotatePasswords(this.secret(), this.access(), this.options(extra));
  }
}

describe('redis-ha rotate-passwords (the steps)', () => {
  it('rotates our own users first, then the application user, each in two Secret updates', async () => {
    const w = new World();
    const result = await w.run({ appGraceMs: 30_000 });
    expect(result).toEqual({ rotated: ['replication', 'sentinel', 'operations', 'proxy', 'app'], pending: [] });
    expect(w.updates.map((u) => Object.entries(u).map(([k, v]) => `${k}=${v}`).sort())).toEqual([
      ['operations-password-previous=old-operations', 'operations-password=new-3', 'proxy-password-previous=old-proxy', 'proxy-password=new-4',
        'replication-password-previous=old-replication', 'replication-password=new-1', 'sentinel-password-previous=old-sentinel', 'sentinel-password=new-2'],
      ['operations-password-previous=null', 'proxy-password-previous=null', 'replication-password-previous=null', 'sentinel-password-previous=null'],
      ['app-password-previous=old-app', 'app-password=new-5'],
      ['app-password-previous=null'],
    ]);
    expect(w.data).toEqual({
      'replication-password': 'new-1', 'sentinel-password': 'new-2', 'operations-password': 'new-3', 'proxy-password': 'new-4', 'app-password': 'new-5',
    });
    expect(w.violations).toEqual([]);
    // The proxy pod is waited for with the proxy user (twice), never logged in to (it has no server).
    expect(w.log.filter((l) => l.startsWith('  redis-proxy-5d9c-x2x7k: ok after'))).toHaveLength(2);
    expect(w.log.filter((l) => l.includes('verified'))).toEqual([
      'replication, sentinel, operations, proxy: verified on 3 pods: the old passwords are refused, the new ones work',
      'app: verified on 3 pods: the old passwords are refused, the new ones work',
    ]);
    expect(w.log.some((l) => l.includes('applications have 30s to move'))).toBe(true);
  });

  it('removes a -previous key only once every pod accepts the new password and uses nothing else, however late its kubelet', async () => {
    const w = new World({ ...OLD }, 7);
    await w.run({ users: ['replication', 'sentinel'] });
    expect(w.violations).toEqual([]);
    expect(w.updates).toHaveLength(2);
    expect(w.log.filter((l) => /^ {2}\S+: ok after/.test(l))).toHaveLength(6);
  });

  it('generates 32 random bytes as hex for each new password', async () => {
    const w = new World();
    await rotatePasswords(w.secret(), w.access(), { ...w.options(), generate: undefined, users: ['operations'] });
    expect(w.data!['operations-password']).toMatch(/^[0-9a-f]{64}$/);
    expect(w.log.join('\n')).not.toContain(w.data!['operations-password']);
  });

  it('without an app grace period stops with both app passwords accepted; --finish completes it', async () => {
    const w = new World();
    expect(await w.run({ users: ['app'] })).toEqual({ rotated: [], pending: ['app'] });
    expect(w.data!['app-password-previous']).toBe('old-app');
    expect(w.log.some((l) => /move the applications to the new one .* then run this command again with --finish/.test(l))).toBe(true);
    expect(await w.run({ finish: true })).toEqual({ rotated: ['app'], pending: [] });
    expect(w.data).not.toHaveProperty('app-password-previous');
    expect(w.violations).toEqual([]);
  });

  it('stops with one line naming the pods that do not converge and what they report', async () => {
    const w = new World();
    w.pods[1].stuck = true;
    const err = await w.run({ users: ['replication'], timeoutMs: 20_000 }).catch((e: Error) => e);
    const [o, n] = [hashPrefix('old-replication'), hashPrefix('new-1')];
    // The slave's kubelet never delivers the new password, so the master cannot switch its masterauth either.
    expect(String(err)).toBe(`RotationError: timed out after 20s waiting for replication: new passwords accepted and in use; `
      + `redis-master-0: replication accepts [${n},${o}] uses [${o}] (old ${o}, new ${n}); `
      + `redis-slave-0: replication accepts [${o}] uses [${o}] (old ${o}, new ${n})`);
    // The -previous key stays: nothing was dropped.
    expect(w.data!['replication-password-previous']).toBe('old-replication');
  });

  it('fails the verification when a server still takes the old password', async () => {
    const w = new World();
    w.pods[2].keepsOld = true;
    const err = await w.run({ users: ['sentinel'], timeoutMs: 10_000 }).catch((e: Error) => e);
    expect(String(err)).toContain('redis-sentinel-abc: sentinel accepts');
  });

  it('rotates the proxy user: the -previous key goes only once every proxy pod\'s decider uses the new password on every connection', async () => {
    const proxies: RotationPod[] = [1, 2].map((i) => ({ name: `redis-proxy-5d9c-${i}`, kind: 'proxy', container: 'haproxy' }));
    const w = new World({ ...OLD }, 5, [...SERVER_PODS, ...proxies]);
    expect(await w.run({ users: ['proxy'] })).toEqual({ rotated: ['proxy'], pending: [] });
    expect(w.updates.map((u) => Object.keys(u).sort())).toEqual([['proxy-password', 'proxy-password-previous'], ['proxy-password-previous']]);
    // While the servers' kubelets lagged, the deciders used the old password (fallback); the key stayed until they did not.
    expect(w.violations).toEqual([]);
    for (const p of w.pods.filter((x) => x.pod.kind === 'proxy')) expect(w.status(p)).toBe(`proxy accepted - using ${hashPrefix('new-1')}\n`);
    expect(w.log.filter((l) => /^ {2}redis-proxy-5d9c-\d: ok after/.test(l))).toHaveLength(4);
    expect(w.log).toContain('proxy: verified on 3 pods: the old passwords are refused, the new ones work');
    expect(w.log.some((l) => l.startsWith('waiting for every Redis, Sentinel and proxy pod: proxy: new passwords accepted and in use'))).toBe(true);
  });

  it.each([
    ['still uses the old password', { keepsOld: true }, hashPrefix('old-proxy')],
    ['has no connection open (nothing proves it took the new one)', { idle: true }, '-'],
  ])('stops, naming the proxy pod, when its decider %s', async (_what, state, uses) => {
    const w = new World();
    Object.assign(w.pods[3], state);
    const err = await w.run({ users: ['proxy'], timeoutMs: 20_000 }).catch((e: Error) => e);
    const [o, n] = [hashPrefix('old-proxy'), hashPrefix('new-1')];
    expect(String(err)).toBe(`RotationError: timed out after 20s waiting for proxy: new passwords accepted and in use; `
      + `redis-proxy-5d9c-x2x7k: proxy uses [${uses}] (old ${o}, new ${n})`);
    // The servers still take the old password: the key stays.
    expect(w.data!['proxy-password-previous']).toBe('old-proxy');
    expect(w.updates).toHaveLength(1);
  });

  it('without the proxy tier (no proxy-password key) leaves the proxy user out, and refuses it when asked for', async () => {
    const { 'proxy-password': _, ...noProxy } = OLD;
    const w = new World({ ...noProxy }, 2, SERVER_PODS);
    expect(await w.run({ appGraceMs: 0 })).toEqual({ rotated: ['replication', 'sentinel', 'operations', 'app'], pending: [] });
    expect(w.data).not.toHaveProperty('proxy-password');
    expect(w.violations).toEqual([]);
    const asked = new World({ ...noProxy }, 2, SERVER_PODS);
    const err = await asked.run({ users: ['proxy', 'app'] }).catch((e: Error) => e);
    expect((err as Error).message).toBe('Secret ns/redis-auth has no key proxy-password: the proxy tier is off for this instance '
      + '(the key exists only with the proxy prop on), so there is no proxy user to rotate; leave proxy out of --users');
    expect(asked.updates).toEqual([]);
  });

  it('a proxy-password left in the Secret with no proxy pod running: the proxy user is left out by default, and says so', async () => {
    const w = new World({ ...OLD }, 2, SERVER_PODS);
    expect(await w.run({ appGraceMs: 0 })).toEqual({ rotated: ['replication', 'sentinel', 'operations', 'app'], pending: [] });
    expect(w.data?.['proxy-password']).toBe(OLD['proxy-password']);
    expect(w.log.filter((l) => l.startsWith('proxy: not rotated: no proxy pod runs'))).toHaveLength(1);
    expect(w.violations).toEqual([]);
  });

  it('with the proxy tier on but no proxy pod running, rotates the proxy user on the servers when asked, and says so', async () => {
    const w = new World({ ...OLD }, 2, SERVER_PODS);
    expect(await w.run({ users: ['proxy'] })).toEqual({ rotated: ['proxy'], pending: [] });
    expect(w.log.filter((l) => l.includes('no running proxy pod'))).toHaveLength(2);
  });

  it.each([
    ['a missing Secret', null, {}, 'Secret ns/redis-auth not found (check --namespace and --secret)'],
    ['a missing key', { ...OLD, 'sentinel-password': '' }, {}, 'Secret ns/redis-auth has no key sentinel-password'],
    ['the pre-ACL layout', { password: 'x' }, {}, "Secret ns/redis-auth is in the pre-ACL layout (one 'password' key)"],
    ['a rotation under way', { ...OLD, 'app-password-previous': 'x' }, {}, 'a rotation of app is already under way (Secret ns/redis-auth has app-password-previous): complete it with --finish'],
    ['nothing to finish', { ...OLD }, { finish: true }, 'nothing to finish: Secret ns/redis-auth has no -previous key'],
  ])('refuses %s with one line', async (_what, data, extra, message) => {
    const w = new World(data as Record<string, string> | null);
    const err = await w.run(extra).catch((e: Error) => e);
    expect((err as Error).message).toContain(message);
    expect((err as Error).message).not.toContain('\n');
    expect(w.updates).toEqual([]);
  });
});

describe('the status file and the command line values', () => {
  it('reads one line per user: accepted hashes and those in use', () => {
    expect(parseStatus('replication accepted aaaa,bbbb using bbbb\napp accepted aaaa using -\nnoise\n')).toEqual({
      replication: { accepted: ['aaaa', 'bbbb'], using: ['bbbb'] },
      app: { accepted: ['aaaa'], using: [] },
    });
    // A proxy pod's: no server, so nothing accepted.
    expect(parseStatus('proxy accepted - using cccc,dddd\n')).toEqual({ proxy: { accepted: [], using: ['cccc', 'dddd'] } });
  });

  it('parses durations and users', () => {
    expect(parseDuration('90')).toBe(90_000);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(() => parseDuration('soon')).toThrow("invalid duration 'soon'");
    expect(parseUsers('app,replication')).toEqual(['replication', 'app']);
    expect(parseUsers('app,proxy,operations')).toEqual(['operations', 'proxy', 'app']);
    expect(() => parseUsers('app,root')).toThrow('unknown user root');
  });
});
