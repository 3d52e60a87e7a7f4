// bin/ensure-test-packages.sh, which `npm test` runs first (pretest): as root on an apt
// system it installs only the missing Debian packages the tests need and stops the Redis
// services it installed; anywhere else it does nothing. It runs against stand-ins for
// id, dpkg, apt-get and invoke-rc.d on a PATH that holds nothing else (plus the few plain
// tools it uses), so no real package is ever installed here.
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'fs';
import { join } from 'path';
import { ROOT, TempDirs } from './helpers';

const SCRIPT = join(ROOT, 'bin/ensure-test-packages.sh');
const NEEDED = ['redis-server', 'redis-sentinel', 'redis-tools', 'bubblewrap', 'iproute2', 'python3-redis', 'shellcheck', 'nftables'];
const temp = new TempDirs();
afterEach(() => temp.cleanup());

interface Machine {
  uid?: number;
  installed?: string[];
  aptStatus?: number;
  /** Leave apt-get and dpkg out of PATH: not a Debian system. */
  noApt?: boolean;
}

function run(machine: Machine) {
  const dir = temp.make('apt');
  const bin = join(dir, 'bin');
  const calls = join(dir, 'calls');
  mkdirSync(bin);
  writeFileSync(calls, '');
  const standIn = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  for (const tool of ['grep', 'mktemp', 'rm', 'tail', 'cat']) {
    const real = ['/usr/bin', '/bin'].map((d) => join(d, tool)).find((p) => existsSync(p));
    if (!real) throw new Error(`${tool} not found`);
    symlinkSync(real, join(bin, tool));
  }
  standIn('id', `[ "$1" = -u ] && echo ${machine.uid ?? 0}`);
  standIn('invoke-rc.d', `echo "invoke-rc.d $*" >> "${calls}"`);
  if (!machine.noApt) {
    const installed = ` ${(machine.installed ?? []).join(' ')} `;
    standIn('dpkg', `[ "$1" = -s ] || exit 2\ncase "${installed}" in *" $2 "*) printf 'Package: %s\\nStatus: install ok installed\\n' "$2" ;; *) echo "dpkg-query: package '$2' is not installed" >&2; exit 1 ;; esac`);
    standIn('apt-get', `echo "apt-get $*" >> "${calls}"\necho "Reading package lists..."\nexit ${machine.aptStatus ?? 0}`);
  }
  const r = spawnSync('/bin/sh', [SCRIPT], { encoding: 'utf8', env: { PATH: bin } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, calls: readFileSync(calls, 'utf8').split('\n').filter(Boolean) };
}

describe('bin/ensure-test-packages.sh (pretest)', () => {
  it('is in package.json as pretest, so `npm test` runs it first', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.scripts.pretest).toBe('sh bin/ensure-test-packages.sh');
  });

  it('is shellcheck clean POSIX sh', () => {
    const result = spawnSync('shellcheck', ['-s', 'sh', SCRIPT], { encoding: 'utf8' });
    if (result.error) throw new Error(`shellcheck could not be run (apt-get install shellcheck): ${result.error.message}`);
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('as root with some packages missing: one line naming them, apt-get update, then install -y of only those', () => {
    const r = run({ installed: ['redis-tools', 'bubblewrap', 'iproute2', 'python3-redis', 'shellcheck'] });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('ensure-test-packages: installing redis-server redis-sentinel nftables (missing; the tests need them)\n');
    expect(r.stderr).toBe('');
    expect(r.calls).toEqual([
      'apt-get update',
      'apt-get install -y redis-server redis-sentinel nftables',
      'invoke-rc.d redis-server stop',
      'invoke-rc.d redis-sentinel stop',
    ]);
  });

  it('stops only the Redis services it installed: an existing Redis is left running', () => {
    const r = run({ installed: NEEDED.filter((p) => p !== 'nftables' && p !== 'redis-sentinel') });
    expect(r.calls).toEqual(['apt-get update', 'apt-get install -y redis-sentinel nftables', 'invoke-rc.d redis-sentinel stop']);
  });

  it('with everything installed it does nothing and prints nothing', () => {
    const r = run({ installed: NEEDED });
    expect([r.status, r.stdout, r.stderr, r.calls]).toEqual([0, '', '', []]);
  });

  it('when not root, or not on an apt system, it does nothing and prints nothing', () => {
    for (const machine of [{ uid: 1000 }, { noApt: true }]) {
      const r = run(machine);
      expect([r.status, r.stdout, r.stderr, r.calls], JSON.stringify(machine)).toEqual([0, '', '', []]);
    }
  });

  it('when apt-get fails it says so with apt\'s last lines, starts no service stop, and lets the tests run', () => {
    const r = run({ installed: NEEDED.filter((p) => p !== 'shellcheck'), aptStatus: 100 });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^ensure-test-packages: apt-get failed, tests needing these packages will skip or fail; its last lines:\nReading package lists\.\.\.\n$/);
    expect(r.calls).toEqual(['apt-get update']);
  });
});
