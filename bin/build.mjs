// Bundles the TypeScript entry points with esbuild (see bin/bundle.cjs), always rebuilding,
// from lib/pod/scripts.generated.ts as it is (the unit tests use this build and must not
// rewrite the module they check; `npm run build` regenerates it first).
//   node bin/build.mjs          -> build/main.js (the synth command)
//   node bin/build.mjs bench    -> also build/bench-failover.js (npm run bench:failover)
// `npm run synth` (bin/synth.cjs) regenerates and rebuilds itself, and only when needed.
import bundler from './bundle.cjs';

bundler.bundle(process.argv.includes('bench') ? ['main', 'bench-failover'] : ['main'], { generate: false });
