// Bundles the TypeScript entry points with esbuild (see bin/bundle.cjs), always rebuilding.
//   node bin/build.mjs          -> build/main.js (the synth command)
//   node bin/build.mjs bench    -> also build/bench-failover.js (npm run bench:failover)
// `npm run synth` (bin/synth.cjs) rebuilds build/main.js itself, and only when needed.
import bundler from './bundle.cjs';

bundler.bundle(process.argv.includes('bench') ? ['main', 'bench-failover'] : ['main']);
