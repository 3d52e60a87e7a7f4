import { afterEach, beforeEach, test } from 'vitest';
import { LiveCluster } from '../../harness/live-cluster';
import { checkLivePrerequisites } from '../../harness/sim';

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

/** What freshClusterPerTest needs of a cluster (LiveCluster; a stand-in in the tests of this ordering). */
export interface TestCluster {
  report(): Promise<string>;
  stop(): Promise<void>;
}

/** The heading of the failure report, so a reader (and a test) can find it. */
export const REPORT_HEADING = '===== what the cluster looked like when the test failed (before teardown) =====';

/**
 * Inside a describe: every test gets a fresh cluster of the staging overlay (handed to
 * `started`), what the cluster looked like is printed when the test fails, and the cluster
 * is stopped after the test (`beforeStop` runs first, with the test's name).
 */
export function freshClusterPerTest(started: (live: LiveCluster) => void,
  beforeStop?: (live: LiveCluster, testName: string) => void): void {
  clusterPerTest(() => LiveCluster.start('staging'), started, beforeStop);
}

/**
 * freshClusterPerTest for any cluster `start` makes. When a test failed, timed out
 * included, its report is printed first, while the pods still run: it is gathered in
 * afterEach, before the stop (vitest runs onTestFailed handlers only after the afterEach
 * hooks, when the cluster would already be gone).
 */
export function clusterPerTest<C extends TestCluster>(start: () => Promise<C>, started: (live: C) => void,
  beforeStop?: (live: C, testName: string) => void): void {
  let live: C | undefined;
  beforeEach(async () => {
    live = await start();
    started(live);
  });
  afterEach(async (ctx) => {
    const cluster = live;
    live = undefined;
    if (!cluster) return;
    try {
      if (ctx.task.result?.state === 'fail') {
        let report: string;
        try {
          report = await cluster.report();
        } catch (err) {
          report = `(the report failed: ${(err as Error).message})`;
        }
        console.log(`\n${REPORT_HEADING}\n${report}`);
      }
      beforeStop?.(cluster, ctx.task.name);
    } finally {
      await cluster.stop();
    }
  });
}
