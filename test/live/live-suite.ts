import { afterEach, beforeEach, onTestFailed, test } from 'vitest';
import { checkLivePrerequisites } from '../../harness/sim';
import { LiveCluster } from '../../harness/live-cluster';

/**
 * What every live test file does the same way (vitest-only, so kept out of the harness,
 * which the failover benchmark bundles too).
 */

/**
 * The reason the live suite `name` cannot run here, or null. Without the prerequisites it
 * prints one line and the suite skips; under CI=true the missing prerequisite is a failing test.
 */
export function livePrerequisites(name: string): string | null {
  const missing = checkLivePrerequisites();
  if (missing && process.env.CI === 'true') {
    test(`live ${name} prerequisites are installed (required when CI=true)`, () => {
      throw new Error(`live ${name} suite cannot run: ${missing}`);
    });
  } else if (missing) {
    console.log(`live ${name} suite skipped: ${missing}`);
  }
  return missing;
}

/**
 * Inside a describe: every test gets a fresh cluster of the staging overlay (handed to
 * `started`), what the cluster looked like is printed when the test fails, and the cluster
 * is stopped after the test (`beforeStop` runs first, with the test's name).
 */
export function freshClusterPerTest(started: (live: LiveCluster) => void,
  beforeStop?: (live: LiveCluster, testName: string) => void): void {
  let live: LiveCluster | undefined;
  beforeEach(async () => {
    live = await LiveCluster.start('staging');
    started(live);
    onTestFailed(async () => {
      console.log(`\n===== what the cluster looked like =====\n${await live?.report()}`);
    });
  });
  afterEach(async (ctx) => {
    if (live) beforeStop?.(live, ctx.task.name);
    await live?.stop();
    live = undefined;
  });
}
