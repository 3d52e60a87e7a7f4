// Wall time of a full synth against its floor, the time node needs just to load
// cdk8s-plus-28 (which every synth must do). Target: synth at most 2x the floor.
// Run with `npm run bench:synth` (it builds build/main.js first). Reports, never fails.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const TARGET_RATIO = 2;

/** Run `node ARGS` in the repository root RUNS times (after one warm-up); times in ms. */
function time(label, args) {
  const samples = [];
  for (let i = 0; i <= RUNS; i++) {
    const start = process.hrtime.bigint();
    const result = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (result.status !== 0) {
      console.log(`${label}: failed (exit ${result.status}): ${result.stderr.trim() || result.stdout.trim()}`);
      return undefined;
    }
    if (i > 0) samples.push(ms); // the first run only warms the file cache
  }
  samples.sort((a, b) => a - b);
  const mid = Math.floor(samples.length / 2);
  const median = samples.length % 2 ? samples[mid] : (samples[mid - 1] + samples[mid]) / 2;
  return { label, median, min: samples[0], max: samples[samples.length - 1] };
}

function report(r) {
  if (r) console.log(`${r.label.padEnd(44)} median ${r.median.toFixed(1).padStart(7)} ms   min ${r.min.toFixed(1).padStart(7)} ms   max ${r.max.toFixed(1).padStart(7)} ms`);
}

const workdir = mkdtempSync(join(tmpdir(), 'redis-ha-bench-'));
try {
  console.log(`node ${process.version}, ${RUNS} runs each after one warm-up\n`);
  const floor = time("floor: node -e \"require('cdk8s-plus-28')\"", ['-e', "require('cdk8s-plus-28')"]);
  const synth = time('synth: node build/main.js --outdir <tmp>', ['build/main.js', '--outdir', join(workdir, 'dist')]);
  const build = time('build (information): node bin/build.mjs', ['bin/build.mjs']);
  report(floor);
  report(synth);
  report(build);
  if (floor && synth) {
    const ratio = synth.median / floor.median;
    const verdict = ratio <= TARGET_RATIO ? 'within' : 'OVER';
    console.log(`\nsynth / floor (medians): ${ratio.toFixed(2)}x — ${verdict} the ${TARGET_RATIO}x target`);
    console.log(`synth / floor (minimums): ${(synth.min / floor.min).toFixed(2)}x`);
  }
} finally {
  rmSync(workdir, { recursive: true, force: true });
}
