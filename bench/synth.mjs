// Wall time of `npm run synth` against its floor, the time node needs just to load
// cdk8s-plus-28 (which every synth must do). Target: synth at most 2x the floor.
// What is timed is exactly the command `npm run synth` runs (package.json's "synth" script,
// npm's own start-up aside): `node bin/synth.cjs`, which rebuilds build/main.js only when a
// source changed, so after the warm-up run no rebuild happens. Reports, never fails.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const TARGET_RATIO = 2;

const synthScript = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.synth;
const match = /^node (\S+)$/.exec(synthScript);
if (!match) throw new Error(`bench/synth.mjs times "node <file>"; package.json's synth script is now ${JSON.stringify(synthScript)}`);
const SYNTH = match[1];

/** Wall time of one `node ARGS` run in the repository root, in ms; throws if it fails. */
function once(args) {
  const start = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0) throw new Error(`node ${args.join(' ')} failed (exit ${result.status}): ${result.stderr.trim() || result.stdout.trim()}`);
  return ms;
}

function summary(label, samples) {
  const s = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return { label, median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, min: s[0], max: s[s.length - 1] };
}

function report(r) {
  console.log(`${r.label.padEnd(58)} median ${r.median.toFixed(1).padStart(7)} ms   min ${r.min.toFixed(1).padStart(7)} ms   max ${r.max.toFixed(1).padStart(7)} ms`);
}

const workdir = mkdtempSync(join(tmpdir(), 'redis-ha-bench-'));
const outdir = join(workdir, 'dist');
try {
  console.log(`node ${process.version}, ${RUNS} runs each after one warm-up, floor and synth interleaved\n`);
  // Interleaved, one of each per round, so both see the same machine load. The first
  // round only warms the file cache (and builds build/main.js if it is missing or stale).
  const floorArgs = ['-e', "require('cdk8s-plus-28')"];
  const synthArgs = [SYNTH, '--outdir', outdir];
  const floorSamples = [];
  const synthSamples = [];
  const rebuildSamples = [];
  for (let i = 0; i <= RUNS; i++) {
    const f = once(floorArgs);
    const s = once(synthArgs);
    if (i > 0) {
      floorSamples.push(f);
      synthSamples.push(s);
    }
  }
  // For information: a synth right after a source change, which rebuilds build/main.js first.
  for (let i = 0; i < Math.min(RUNS, 5); i++) {
    rmSync(join(ROOT, 'build', 'main.js'), { force: true });
    rebuildSamples.push(once(synthArgs));
  }
  const floor = summary("floor: node -e \"require('cdk8s-plus-28')\"", floorSamples);
  const synth = summary(`synth: node ${SYNTH} --outdir <tmp> (npm run synth)`, synthSamples);
  const rebuild = summary('synth after a source change (rebuilds; information)', rebuildSamples);
  report(floor);
  report(synth);
  report(rebuild);
  const ratio = synth.median / floor.median;
  const verdict = ratio <= TARGET_RATIO ? 'within' : 'OVER';
  console.log(`\nsynth / floor (medians): ${ratio.toFixed(2)}x — ${verdict} the ${TARGET_RATIO}x target`);
  console.log(`synth / floor (minimums): ${(synth.min / floor.min).toFixed(2)}x`);
} finally {
  rmSync(workdir, { recursive: true, force: true });
}
