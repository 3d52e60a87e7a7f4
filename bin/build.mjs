// Bundles TypeScript entry points with esbuild (tens of milliseconds) so they run on
// plain node, without a TypeScript runner's start-up cost. Dependencies stay external
// and load from node_modules.
//   node bin/build.mjs          -> build/main.js (the synth command)
//   node bin/build.mjs bench    -> also build/bench-failover.js (npm run bench:failover)
import { build } from 'esbuild';

const entries = { main: 'main.ts' };
if (process.argv.includes('bench')) entries['bench-failover'] = 'bench/failover.ts';

await build({
  entryPoints: entries,
  outdir: 'build',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  packages: 'external',
  logLevel: 'warning',
});
