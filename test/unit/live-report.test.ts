// A failing live test prints what the cluster looked like while its pods still run (the
// live suite's per-test cluster, test/live/live-suite.ts): vitest runs a fixture file
// with a stand-in cluster whose report holds container output only until it is stopped.
// And every live test has a time budget of its own.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'child_process';
import { readdirSync, readFileSync } from 'fs';
import { join } from 'path';
import { REPORT_HEADING } from '../live/live-suite';
import { ROOT } from './helpers';

function runFixture() {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && !['CI', 'NODE_ENV', 'FORCE_COLOR'].includes(k)));
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'test/fixtures/vitest.config.mts',
    'test/fixtures/live-report.fixture.ts'], { cwd: ROOT, encoding: 'utf8', env: { ...env, NO_COLOR: '1' }, timeout: 120_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('the live suite reports a failed test before it stops the cluster', () => {
  let status: number | null = null;
  let output = '';
  beforeAll(() => ({ status, output } = runFixture()), 120_000);

  it('the fixture ran: one test passed, the failing and the timed-out one failed', () => {
    expect(output, output).toMatch(/Tests +2 failed \| 1 passed/);
    expect(output).toMatch(/Test timed out in 300ms/);
    expect(status).toBe(1);
  });

  it('for each failed test, the report holds container output and comes before the stop', () => {
    for (const cluster of ['cluster-2', 'cluster-3']) {
      const report = output.indexOf(`${REPORT_HEADING}\n[redis] ${cluster}: Ready to accept connections tcp`);
      const stopped = output.indexOf(`stand-in ${cluster} stopped`);
      expect(report, `${cluster}'s report in:\n${output}`).toBeGreaterThanOrEqual(0);
      expect(stopped, cluster).toBeGreaterThan(report);
    }
    expect(output).not.toMatch(/is not running/);
  });

  it('a passing test prints no report', () => {
    expect(output.split(REPORT_HEADING)).toHaveLength(3);
    expect(output).not.toMatch(/cluster-1: Ready/);
    expect(output).toMatch(/stand-in cluster-1 stopped/);
  });
});

describe('every live test has its own time budget', () => {
  for (const file of readdirSync(join(ROOT, 'test/live')).filter((f) => f.endsWith('.test.ts'))) {
    it(`test/live/${file}: each test names its timeout, at least 90 s`, () => {
      const source = readFileSync(join(ROOT, 'test/live', file), 'utf8');
      const tests = source.match(/^ {2}test\(/gm) ?? []; // the tests of the file's describe
      const budgets = [...source.matchAll(/^ {2}\}, (\d[\d_]*)\);/gm)].map((m) => Number(m[1].replace(/_/g, '')));
      expect(tests.length).toBeGreaterThan(0);
      expect(budgets).toHaveLength(tests.length);
      for (const ms of budgets) expect(ms).toBeGreaterThanOrEqual(90_000);
    });
  }
});
