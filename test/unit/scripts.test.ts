// The shell scripts that run in the pods: POSIX sh, shellcheck clean, strict mode, and
// no redis-cli call that can hang a start script or a probe.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'child_process';
import { readdirSync, readFileSync } from 'fs';
import { join } from 'path';
import { synthBase } from '../../lib/internal';
import { itWith } from '../prerequisites';
import { find, ROOT } from './helpers';
import { stripShell } from './support/shell-source';
import { MASTER0, SLAVE0, World } from './support/world';

const SCRIPTS_DIR = 'lib/pod/scripts';
const scripts = readdirSync(join(ROOT, SCRIPTS_DIR)).filter((f) => f.endsWith('.sh')).sort();
const source = (name: string) => readFileSync(join(ROOT, SCRIPTS_DIR, name), 'utf8');
const itWithShellcheck = itWith('shellcheck', 'apt-get install shellcheck');

/** Code lines: comments dropped, backslash-continued lines joined. */
function codeLines(text: string): string[] {
  return text.replace(/\\\n/g, ' ').split('\n').filter((l) => !l.trimStart().startsWith('#'));
}

describe('lib/pod/scripts', () => {
  it('holds the start, probe, preStop and janitor scripts', () => {
    expect(scripts).toEqual(expect.arrayContaining([
      'common.sh', 'redis-start.sh', 'redis-probe.sh', 'redis-prestop.sh', 'sentinel-start.sh', 'sentinel-probe.sh', 'sentinel-janitor.sh',
    ]));
  });

  itWithShellcheck('shellcheck -x passes on every script (run from the repository root so `source=` paths resolve)', () => {
    const result = spawnSync('shellcheck', ['-x', ...scripts.map((s) => `${SCRIPTS_DIR}/${s}`)], { cwd: ROOT, encoding: 'utf8' });
    if (result.error) throw result.error;
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  itWithShellcheck('shellcheck would report a problem (the check above is not vacuous)', () => {
    const result = spawnSync('shellcheck', ['-s', 'sh', '-'], { input: '#!/bin/sh\necho $UNQUOTED\n[[ -n x ]]\n', encoding: 'utf8' });
    if (result.error) throw result.error;
    expect(result.status).not.toBe(0);
    expect(result.stdout).toMatch(/SC2086/);
  });

  it('every script parses with the POSIX sh of this machine', () => {
    for (const script of scripts) {
      const result = spawnSync('sh', ['-n', `${SCRIPTS_DIR}/${script}`], { cwd: ROOT, encoding: 'utf8' });
      expect(result.stderr, script).toBe('');
      expect(result.status, script).toBe(0);
    }
  });

  for (const script of scripts) {
    it(`${script} starts with #!/bin/sh and a comment saying when it runs`, () => {
      const lines = source(script).split('\n');
      expect(lines[0]).toBe('#!/bin/sh');
      expect(lines[1]).toMatch(/^# \S/);
    });
  }

  // common.sh, the decision files (*-decide.sh) and auth-sync.sh are only sourced, by scripts that set -eu.
  const sourcedOnly = (s: string) => s === 'common.sh' || s.endsWith('-decide.sh') || s === 'auth-sync.sh';
  for (const script of scripts.filter((s) => !sourcedOnly(s))) {
    it(`${script} runs with set -eu and sources common.sh with a shellcheck source directive`, () => {
      const code = codeLines(source(script));
      expect(code).toContain('set -eu');
      // set -eu must come before any command that could fail silently.
      expect(code.findIndex((l) => l === 'set -eu')).toBeLessThan(code.findIndex((l) => l.startsWith('. ')));
      expect(source(script)).toMatch(/# shellcheck source=lib\/pod\/scripts\/common\.sh\n\. "\$\(dirname "\$0"\)\/common\.sh"/);
    });
  }

  it('common.sh and the decision files are only sourced: they set no shell options of their own (set -- in a function only sets its arguments)', () => {
    for (const script of scripts.filter(sourcedOnly)) {
      expect(codeLines(source(script)).filter((l) => /^\s*set -(?!-)/.test(l)), script).toEqual([]);
    }
  });

  it('every redis-cli call is wrapped in timeout', () => {
    let calls = 0;
    for (const script of scripts) {
      for (const line of codeLines(source(script))) {
        if (!/\bredis-cli\b/.test(line)) continue;
        calls++;
        expect(line, `${script}: ${line.trim()}`).toMatch(/\btimeout\s+("[^"]*"|\S+)\s+redis-cli\b/);
      }
    }
    expect(calls).toBeGreaterThan(0);
  });

  it('no redis-cli call uses -t, which the Redis 7.0 tools lack', () => {
    for (const script of scripts) {
      for (const line of codeLines(source(script))) {
        if (/\bredis-cli\b/.test(line)) expect(line, script).not.toMatch(/redis-cli\b[^|;&]*\s-t\s/);
      }
    }
  });

  it('the redis-scripts ConfigMap carries every script verbatim', () => {
    const configMap = find(synthBase(), 'ConfigMap', 'redis-scripts');
    expect(Object.keys(configMap.data).sort()).toEqual(scripts);
    for (const script of scripts) expect(configMap.data[script], script).toBe(source(script));
  });
});

// Commands that change a Redis server or a Sentinel.
const CHANGES_STATE = /\b(CONFIG SET|REPLICAOF|SLAVEOF|CLIENT (KILL|PAUSE|UNPAUSE)|SENTINEL (RESET|FAILOVER|SET|REMOVE|MONITOR)|ACL (SETUSER|DELUSER)|FLUSHALL|FLUSHDB|SHUTDOWN)\b/;

describe('deciding, probing and acting are apart', () => {
  it('the decision files change nothing: no command that changes a server, no file written', () => {
    for (const script of scripts.filter((s) => s.endsWith('-decide.sh'))) {
      const code = stripShell(source(script), true);
      // A redirection to a file: ">" outside a quoted string (messages may contain "->"), not to /dev/null.
      const writes = (l: string) => /[^2&]>\s*"?[$/\w]/.test(l.replace(/(?<!>\s*)"(?:[^"\\]|\\.)*"/g, '""').replace(/>\s*\/dev\/null/g, ''));
      expect(code.split('\n').filter((l) => CHANGES_STATE.test(l) || writes(l)), script).toEqual([]);
      expect(writes('echo x > "$ROLE_FILE"') && !writes('log "a -> b" >/dev/null'), 'the check sees a write').toBe(true);
    }
  });

  it('only the guard, the janitor and the preStop hook send commands that change a server', () => {
    const acting = scripts.filter((s) => stripShell(source(s), false).split('\n').some((l) => CHANGES_STATE.test(l)));
    // auth-sync.sh (the password rotation) is sourced by the guard and the janitor only.
    expect(acting.sort()).toEqual(['auth-sync.sh', 'redis-guard.sh', 'redis-prestop.sh', 'sentinel-janitor.sh']);
    expect(scripts.filter((s) => source(s).includes('/auth-sync.sh"')).sort()).toEqual(['redis-guard.sh', 'sentinel-janitor.sh']);
    // The janitor changes Sentinel's periods through ensure_sentinel_timings (SENTINEL DEBUG with values), in common.sh.
    expect(source('common.sh')).toMatch(/sentinel_cmd "\$_host" SENTINEL DEBUG \$SENTINEL_TIMINGS/);
    expect(source('sentinel-janitor.sh')).toMatch(/ensure_sentinel_timings 127\.0\.0\.1/);
  });

  it('the probes only read: against the stand-in they send PING, INFO and SENTINEL GET-MASTER-ADDR-BY-NAME and write no file', () => {
    const world = new World()
      .redis(MASTER0, { role: 'master', replicas: [SLAVE0] })
      .redis(SLAVE0, { role: 'slave', link: 'down' })
      .sentinel('10.0.0.5', { master: { host: MASTER0, epoch: 1 } });
    try {
      const results: string[] = [];
      for (const pod of ['redis-master-0', 'redis-slave-0']) {
        for (const kind of ['liveness', 'readiness']) {
          const r = world.script('redis-probe.sh', world.redisEnv(pod), [kind]);
          results.push(`${pod} ${kind} ${r.status} ${r.stdout.trim()}`);
        }
      }
      for (const kind of ['liveness', 'readiness']) {
        const r = world.script('sentinel-probe.sh', world.sentinelEnv('10.0.0.5'), [kind]);
        results.push(`sentinel ${kind} ${r.status} ${r.stdout.trim()}`);
      }
      expect(results).toEqual([
        'redis-master-0 liveness 0 ', 'redis-master-0 readiness 0 ',
        'redis-slave-0 liveness 0 ', "redis-slave-0 readiness 1 replica link to master is 'down'",
        'sentinel liveness 0 ', 'sentinel readiness 0 ',
      ]);
      const commands = [...new Set(world.calls().map((c) => c.split(' ').slice(1).join(' ')))].sort();
      expect(commands).toEqual(['INFO replication', 'PING', 'SENTINEL GET-MASTER-ADDR-BY-NAME mymaster']);
      // Only what the world put there: the Secret's keys and the ConfigMap's acl-users.
      expect(readTreeNames(join(world.dir, 'mounts')).filter((f) => !/\/etc\/redis-auth\/|\/acl-users$/.test(f))).toEqual([]);
    } finally {
      world.remove();
    }
  });

  it('liveness pings without credentials and takes NOAUTH as alive; readiness logs in as operations', () => {
    const world = new World()
      .redis(MASTER0, { role: 'master', replicas: [SLAVE0] })
      .sentinel('10.0.0.5', { master: { host: MASTER0, epoch: 1 } });
    try {
      const probe = (kind: string) => [world.script('redis-probe.sh', world.redisEnv('redis-master-0'), [kind]),
        world.script('sentinel-probe.sh', world.sentinelEnv('10.0.0.5'), [kind])].map((r) => `${r.status} ${r.stdout.trim()}`);
      expect(probe('liveness')).toEqual(['0 ', '0 ']);
      expect(probe('readiness')).toEqual(['0 ', '0 ']);
      expect(world.authCalls().sort()).toEqual([
        '10.0.0.5 - PING', '10.0.0.5 operations SENTINEL GET-MASTER-ADDR-BY-NAME mymaster',
        `${MASTER0} - PING`, `${MASTER0} operations INFO replication`, `${MASTER0} operations PING`,
      ]);
      // Servers that accept neither password (a Secret changed under them): alive, not ready.
      world.accepts(MASTER0, 6379, [['operations', 'other']]).accepts('10.0.0.5', 26379, [['operations', 'other']]);
      expect(probe('liveness')).toEqual(['0 ', '0 ']);
      const refused = "; the server answers but refuses the operations user's password (Secret redis-auth, key operations-password)";
      expect(probe('readiness')).toEqual([`1 PING answered ''${refused}`, `1 Sentinel does not know master mymaster${refused}`]);
      // A server that does not answer at all is not alive.
      world.down(MASTER0).down('10.0.0.5');
      expect(probe('liveness')).toEqual(["1 PING answered ''", "1 PING answered ''"]);
    } finally {
      world.remove();
    }
  });
});

/** Files (not directories) below dir. */
function readTreeNames(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else out.push(join(d, e.name));
    }
  };
  walk(dir);
  return out;
}
