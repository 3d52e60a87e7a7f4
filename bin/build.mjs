// Bundles main.ts and lib/ into build/main.js with esbuild (about 20 ms): synth then
// runs on plain node, without a TypeScript runner's start-up cost. Dependencies stay
// external and load from node_modules.
import { build } from 'esbuild';

await build({
  entryPoints: ['main.ts'],
  outfile: 'build/main.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  packages: 'external',
  logLevel: 'warning',
});
