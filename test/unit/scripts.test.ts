// The shell scripts that run in the pods: POSIX sh, shellcheck clean, strict mode, and
// no redis-cli call that can hang a start script or a probe.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'child_process';
import { readdirSync, readFileSync } from 'fs';
import { join } from 'path';
import { synthBase } from '../../lib/internal';
import { itWith } from '../prerequisites';
import { find, ROOT } from './helpers';

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

  // common.sh and the decision files (*-decide.sh) are only sourced, by scripts that set -eu.
  const sourcedOnly = (s: string) => s === 'common.sh' || s.endsWith('-decide.sh');
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
