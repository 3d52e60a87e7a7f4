// bin/ensure-test-packages.sh, which `npm test` runs first (pretest): as root on an apt
// system it installs only the missing Debian packages the tests need and stops the Redis
// services it installed; anywhere else it does nothing. It runs against stand-ins for
// id, dpkg, apt-get and invoke-rc.d on a PATH that holds nothing else (plus the few plain
// tools it uses), so no real package is ever installed here. And what `npm test` does where
// the packages are missing: skips with one line, or fails under CI=true.
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'fs';
import { join } from 'path';
import { itWith } from '../prerequisites';
import { ROOT, TempDirs } from './helpers';

const SCRIPT = join(ROOT, 'bin/ensure-test-packages.sh');
const NEEDED = ['redis-server', 'redis-sentinel', 'redis-tools', 'bubblewrap', 'iproute2', 'python3-redis', 'shellcheck', 'nftables', 'openssl', 'prometheus-redis-exporter', 'prometheus', 'haproxy'];
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

  itWith('shellcheck', 'apt-get install shellcheck')('is shellcheck clean POSIX sh', () => {
    const result = spawnSync('shellcheck', ['-s', 'sh', SCRIPT], { encoding: 'utf8' });
    if (result.error) throw result.error;
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('as root with some packages missing: one line naming them, apt-get update, then install -y of only those', () => {
    const r = run({ installed: ['redis-tools', 'bubblewrap', 'iproute2', 'python3-redis', 'shellcheck', 'openssl', 'prometheus-redis-exporter', 'prometheus', 'haproxy'] });
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

describe('without the Debian packages (here: shellcheck missing from PATH)', () => {
  /** A PATH with every program of this one except shellcheck. */
  function pathWithoutShellcheck(): string {
    const bin = temp.make('no-shellcheck');
    for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
      let entries: string[] = [];
      try { entries = readdirSync(dir); } catch { continue; }
      for (const entry of entries) {
        if (entry === 'shellcheck' || existsSync(join(bin, entry))) continue;
        symlinkSync(join(dir, entry), join(bin, entry));
      }
    }
    return bin;
  }

  /** vitest on the shell-script tests, run as a fresh process with that PATH. */
  function vitestWithoutShellcheck(ci: boolean) {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && !['CI', 'NODE_ENV', 'FORCE_COLOR'].includes(k)));
    const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', 'test/unit/scripts.test.ts', '--reporter=verbose'],
      { cwd: ROOT, encoding: 'utf8', env: { ...env, NO_COLOR: '1', PATH: pathWithoutShellcheck(), ...(ci ? { CI: 'true' } : {}) }, timeout: 120_000 });
    return { status: r.status, output: `${r.stdout}${r.stderr}` };
  }

  it('npm test skips the shellcheck tests with one line and passes', () => {
    const r = vitestWithoutShellcheck(false);
    expect(r.output.match(/shellcheck is not installed \(apt-get install shellcheck\): the tests that run it are skipped/g), r.output).toHaveLength(1);
    expect(r.output).toMatch(/Tests +\d+ passed \| 2 skipped/);
    expect(r.output).not.toMatch(/TypeError|ENOENT/);
    expect(r.status, r.output).toBe(0);
  }, 120_000);

  it('under CI=true the shellcheck tests fail, naming what is missing', () => {
    const r = vitestWithoutShellcheck(true);
    expect(r.output).toMatch(/Tests +2 failed \| \d+ passed/);
    expect(r.output).toMatch(/shellcheck is not installed \(apt-get install shellcheck\); it is required when CI=true/);
    expect(r.status).toBe(1);
  }, 120_000);
});
