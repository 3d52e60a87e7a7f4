// Behaviour of the shell functions in lib/scripts/common.sh that decide something on
// their own: which replica Sentinel is about to promote, and when the janitor re-applies
// Sentinel's timings. They run under the machine's POSIX sh; Sentinel is replaced by a
// stand-in redis-cli that serves canned replies and records what it was asked.
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { ROOT } from './helpers';

const COMMON = join(ROOT, 'lib/scripts/common.sh');

function sh(script: string, opts: { stdin?: string; env?: Record<string, string> } = {}) {
  const r = spawnSync('sh', ['-c', `set -eu; . "${COMMON}"; ${script}`], {
    input: opts.stdin ?? '', encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', SENTINEL_PORT: '26379', MASTER_NAME: 'mymaster', ...opts.env },
  });
  if (r.status !== 0) throw new Error(`sh exited ${r.status}: ${r.stderr}`);
  return r;
}

interface Replica { name: string; flags?: string; priority?: number; offset: number; runid: string; age: number }

/** SENTINEL REPLICAS as `redis-cli --raw` prints it: one field name or value per line. */
function sentinelReplicas(replicas: Replica[]): string {
  return replicas.map((r) => [
    'name', r.name, 'ip', r.name, 'port', '6379', 'runid', r.runid, 'flags', r.flags ?? 'slave',
    'link-pending-commands', '0', 'link-refcount', '1', 'last-ping-sent', '0', 'last-ok-ping-reply', '120',
    'last-ping-reply', '120', 'down-after-milliseconds', '5000', 'info-refresh', String(r.age),
    'role-reported', 'slave', 'role-reported-time', '90000', 'master-link-down-time', '0',
    'master-link-status', 'ok', 'master-host', 'redis-master-0', 'master-port', '6379',
    'slave-priority', String(r.priority ?? 100), 'slave-repl-offset', String(r.offset), 'replica-announced', '1',
  ].join('\n')).join('\n') + '\n';
}

const forecast = (replicas: Replica[]) => sh('promotion_forecast', { stdin: sentinelReplicas(replicas) }).stdout.trim();

describe('promotion_forecast (which replica Sentinel promotes next)', () => {
  const a = { name: 'redis-slave-0', runid: 'b1'.repeat(20) };
  const b = { name: 'redis-slave-1', runid: 'a2'.repeat(20) };

  it('prefers the lower replica-priority over a higher offset', () => {
    expect(forecast([{ ...a, priority: 10, offset: 100, age: 300 }, { ...b, priority: 100, offset: 900, age: 700 }]))
      .toBe('300 700 redis-slave-0');
  });

  it('with equal priority prefers the higher replication offset', () => {
    expect(forecast([{ ...a, offset: 5000, age: 610 }, { ...b, offset: 4999, age: 650 }])).toBe('610 650 redis-slave-0');
    expect(forecast([{ ...a, offset: 4999, age: 610 }, { ...b, offset: 5000, age: 650 }])).toBe('650 650 redis-slave-1');
  });

  it('with equal offsets prefers the lower run ID, compared without case as Sentinel does', () => {
    expect(forecast([{ ...a, offset: 7, age: 1 }, { ...b, offset: 7, age: 2 }])).toBe('2 2 redis-slave-1');
    expect(forecast([{ ...a, runid: 'A'.repeat(40), offset: 7, age: 1 }, { ...b, runid: 'b'.repeat(40), offset: 7, age: 2 }]))
      .toBe('1 2 redis-slave-0');
  });

  it('leaves out replicas Sentinel would not promote: down, disconnected or priority 0', () => {
    const best = { ...a, offset: 10, age: 600 };
    for (const excluded of [{ flags: 's_down,slave' }, { flags: 'slave,disconnected' }, { priority: 0 }]) {
      expect(forecast([best, { ...b, offset: 99, age: 950, ...excluded }]), JSON.stringify(excluded)).toBe('600 600 redis-slave-0');
    }
  });

  it('prints nothing when no replica can be promoted', () => {
    expect(forecast([{ ...a, offset: 1, age: 1, priority: 0 }])).toBe('');
    expect(forecast([])).toBe('');
  });
});

describe('ensure_sentinel_timings (the janitor keeps SENTINEL DEBUG values applied)', () => {
  /** A redis-cli that answers SENTINEL DEBUG from a state file and logs every call. */
  function fakeSentinel(initial: Record<string, number>, refuse = false) {
    const dir = mkdtempSync(join(tmpdir(), 'fake-cli-'));
    const state = join(dir, 'state');
    writeFileSync(state, Object.entries(initial).map(([k, v]) => `${k.toUpperCase()}\n${v}`).join('\n') + '\n');
    writeFileSync(join(dir, 'redis-cli'), `#!/bin/sh
echo "$*" >> "${dir}/calls"
while [ "$1" != "SENTINEL" ]; do shift; done
shift 2
if [ $# -eq 0 ]; then cat "${state}"; exit 0; fi
${refuse ? 'echo "ERR Unknown sentinel subcommand \'debug\'"; exit 0' : ''}
while [ $# -ge 2 ]; do
  key=$(echo "$1" | tr '[:lower:]' '[:upper:]')
  awk -v k="$key" -v v="$2" 'prev == k { print v; prev = ""; next } { print; prev = $0 }' "${state}" > "${state}.new"
  mv "${state}.new" "${state}"
  shift 2
done
echo OK
`);
    chmodSync(join(dir, 'redis-cli'), 0o755);
    const run = (timings: string) => sh('ensure_sentinel_timings 10.0.0.5', {
      env: { PATH: `${dir}:${process.env.PATH}`, SENTINEL_TIMINGS: timings },
    });
    const calls = () => { try { return readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n'); } catch { return []; } };
    const values = () => readFileSync(state, 'utf8');
    made.push(dir);
    return { run, calls, values };
  }
  const made: string[] = [];
  afterEach(() => {
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('sets the values a restarted Sentinel lost, then leaves a correct Sentinel alone', () => {
    const s = fakeSentinel({ 'info-period': 10000, 'ping-period': 1000 });
    const first = s.run('info-period 1000');
    expect(s.values()).toContain('INFO-PERIOD\n1000\n');
    expect(s.values()).toContain('PING-PERIOD\n1000\n');
    expect(first.stderr).toMatch(/set Sentinel timings on 10\.0\.0\.5: info-period 1000/);
    expect(s.calls().filter((c) => /DEBUG info-period 1000/.test(c))).toHaveLength(1);

    const second = s.run('info-period 1000');
    expect(second.stderr).toBe('');
    expect(s.calls()).toHaveLength(3); // get, set, get: no second set
  });

  it('does not mistake a value that only starts with the wanted one (10000 for 1000)', () => {
    const s = fakeSentinel({ 'info-period': 10000 });
    s.run('info-period 1000');
    expect(s.values()).toContain('INFO-PERIOD\n1000\n');
  });

  it('reports a Sentinel without SENTINEL DEBUG (Redis before 7.0) and carries on', () => {
    const s = fakeSentinel({ 'info-period': 10000 }, true);
    const r = s.run('info-period 1000');
    expect(r.stderr).toMatch(/refused 'SENTINEL DEBUG info-period 1000': 'ERR Unknown sentinel subcommand/);
  });

  it('does nothing without SENTINEL_TIMINGS', () => {
    const s = fakeSentinel({ 'info-period': 10000 });
    s.run('');
    expect(s.calls()).toEqual([]);
  });
});

describe('redis-prestop.sh (the master hands over before shutdown)', () => {
  const ME = 'redis-master-0.redis-master.ns.svc.cluster.local';
  const REPLICA = 'redis-slave-0.redis-slave.ns.svc.cluster.local';

  /**
   * Runs the hook against stand-ins: this server is a master with one caught-up replica,
   * one Sentinel names it master and, when asked, answers SENTINEL FAILOVER with
   * `failoverReply` and then names `newMaster`. Returns the commands the hook sent.
   */
  function runHook(failoverReply: string, newMaster: string) {
    const dir = mkdtempSync(join(tmpdir(), 'prestop-'));
    try {
      writeFileSync(join(dir, 'password'), 'secret\n');
      writeFileSync(join(dir, 'getent'), '#!/bin/sh\necho "10.0.0.5 STREAM $2"\n');
      writeFileSync(join(dir, 'redis-cli'), `#!/bin/sh
host=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h) host="$2"; shift 2 ;;
    -p) shift 2 ;;
    --raw|--no-auth-warning) shift ;;
    *) break ;;
  esac
done
echo "$host $*" >> "${dir}/calls"
case "$host $*" in
  "127.0.0.1 ROLE") printf 'master\\n100\\n' ;;
  "127.0.0.1 INFO replication") printf 'role:master\\r\\nconnected_slaves:1\\r\\nslave0:ip=${REPLICA},port=6379,state=online,offset=100,lag=0\\r\\nmaster_repl_offset:100\\r\\n' ;;
  "${REPLICA} INFO replication") printf 'role:slave\\r\\nslave_repl_offset:100\\r\\n' ;;
  *"SENTINEL MASTER mymaster") printf 'name\\nmymaster\\nip\\n${ME}\\nport\\n6379\\nflags\\nmaster\\nconfig-epoch\\n3\\n' ;;
  *"SENTINEL REPLICAS mymaster") printf 'name\\n${REPLICA}:6379\\nrunid\\nabc\\nflags\\nslave\\ninfo-refresh\\n600\\nslave-priority\\n100\\nslave-repl-offset\\n100\\n' ;;
  *"SENTINEL FAILOVER mymaster") echo "${failoverReply}"; touch "${dir}/failover" ;;
  *"SENTINEL GET-MASTER-ADDR-BY-NAME mymaster") if [ -e "${dir}/failover" ]; then printf '${newMaster}\\n6379\\n'; else printf '${ME}\\n6379\\n'; fi ;;
  *) echo OK ;;
esac
`);
      chmodSync(join(dir, 'redis-cli'), 0o755);
      chmodSync(join(dir, 'getent'), 0o755);
      const r = spawnSync('sh', [join(ROOT, 'lib/scripts/redis-prestop.sh')], {
        encoding: 'utf8', timeout: 20_000,
        env: {
          PATH: `${dir}:${process.env.PATH}`, POD_NAME: 'redis-master-0', POD_NAMESPACE: 'ns', CLUSTER_DOMAIN: 'cluster.local',
          MASTER_NAME: 'mymaster', REDIS_PORT: '6379', SENTINEL_PORT: '26379', SENTINEL_SERVICE: 'redis-sentinel-headless',
          AUTH_FILE: join(dir, 'password'), GOVERNING_SERVICE: 'redis-master', HANDOVER_TIMEOUT_SECONDS: '1',
          HOOK_LOG: '/nonexistent', ROLE_FILE: join(dir, 'role'),
        },
      });
      let role = '';
      try { role = readFileSync(join(dir, 'role'), 'utf8').trim(); } catch { /* not written */ }
      return { status: r.status, log: r.stderr, calls: readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n'), role };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const local = (calls: string[]) => calls.filter((c) => c.startsWith('127.0.0.1 ')).map((c) => c.slice('127.0.0.1 '.length));

  it('pauses writes, asks for the failover, then follows the new master and unpauses', () => {
    const r = runHook('OK', REPLICA);
    expect(r.status).toBe(0);
    const cmds = local(r.calls);
    const order = ['CLIENT PAUSE', 'REPLICAOF', 'CLIENT KILL TYPE normal', 'CLIENT UNPAUSE'].map((c) => cmds.findIndex((x) => x.startsWith(c)));
    expect(order.every((i) => i >= 0), cmds.join('\n')).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(cmds).toContain(`REPLICAOF ${REPLICA} 6379`);
    expect(r.calls.findIndex((c) => c.endsWith('SENTINEL FAILOVER mymaster'))).toBeGreaterThan(r.calls.findIndex((c) => c.includes('CLIENT PAUSE')));
    expect(r.role).toBe(`replica ${REPLICA}`);
    expect(r.log).toMatch(/would promote redis-slave-0\.redis-slave\.ns\.svc\.cluster\.local:6379 and last had INFO from it 600 ms ago/);
  });

  it('unpauses when the Sentinel refuses the failover (nothing was promoted)', () => {
    const r = runHook('NOGOODSLAVE No suitable replica to promote', REPLICA);
    expect(r.status).toBe(0);
    expect(local(r.calls)).toContain('CLIENT UNPAUSE');
    expect(local(r.calls).some((c) => c.startsWith('REPLICAOF'))).toBe(false);
    expect(r.log).toMatch(/refused the failover/);
  });

  it('keeps writes paused when a requested failover names no new master in time (a replica may be master already)', () => {
    const r = runHook('OK', ME);
    expect(r.status).toBe(0);
    expect(local(r.calls)).not.toContain('CLIENT UNPAUSE');
    expect(local(r.calls)).toContain('CLIENT PAUSE 60000 WRITE');
    expect(r.log).toMatch(/writes stay paused until shutdown/);
    expect(r.role).toBe('');
  });
});
