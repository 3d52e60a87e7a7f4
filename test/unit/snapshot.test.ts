// The committed dist/ is the one snapshot of the output: every file a synth of the current
// source writes (renderDist, what `npm run synth` writes, file for file: see
// synth-output.test.ts) must equal the committed file, and dist/ may hold nothing else.
// A change to what an environment deploys therefore shows up as a diff of dist/ in review.
// `npx vitest run -u` (or `npm run synth`) rewrites dist/; without it a stale dist/ fails
// here with the diff. The specific properties are asserted in the other test files.
import { describe, expect, it } from 'vitest';
import { rmSync } from 'fs';
import { dirname, join } from 'path';
import { ENVIRONMENTS, renderDist } from '../../main';
import { listDir, readTree, ROOT } from './helpers';

const DIST = join(ROOT, 'dist');
const rendered = renderDist(ENVIRONMENTS);

describe('the committed dist/ is what a synth of the current source writes (`npx vitest run -u` or `npm run synth` updates it)', () => {
  it('renders the base and every environment overlay', () => {
    expect([...rendered.keys()]).toEqual(expect.arrayContaining(['base/kustomization.yaml',
      ...ENVIRONMENTS.map((p) => `overlays/${p.name}/kustomization.yaml`)]));
  });

  for (const [path, content] of [...rendered].sort(([a], [b]) => (a < b ? -1 : 1))) {
    it(`dist/${path}`, async () => {
      await expect(content).toMatchFileSnapshot(join(DIST, path));
    });
  }

  it('dist/ holds no file the synth does not write', () => {
    const extra = [...readTree(DIST).keys()].filter((path) => !rendered.has(path));
    if (extra.length && expect.getState().snapshotState.snapshotUpdateState === 'all') {
      // -u: the snapshot follows the source, so files it no longer writes go.
      for (const path of extra) {
        rmSync(join(DIST, path));
        for (let dir = dirname(join(DIST, path)); dir !== DIST && listDir(dir).length === 0; dir = dirname(dir)) rmSync(dir, { recursive: true });
      }
      return;
    }
    expect(extra, 'files in dist/ that a synth no longer writes (`npx vitest run -u` or `npm run synth` removes them)').toEqual([]);
  });
});
