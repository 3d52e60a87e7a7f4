'use strict';
// `npm run synth`: one node process. Rebuilds build/main.js (esbuild, in this process)
// only if a file it is built from changed since the last build, then runs it as the main
// module, exactly as `node build/main.js ARGS` would (same arguments, exit codes, output).
const { ensureBundle } = require('./bundle.cjs');

const main = ensureBundle('main');
process.argv[1] = main;
try {
  require('module').runMain(main);
} catch (err) {
  // An environment profile refused while main.ts loads (see lib/output/profile-values.ts):
  // the same one-line error as any other refused value, and nothing is written.
  if (!err || err.name !== 'ValidationError') throw err;
  process.stderr.write(`synth failed, nothing written: ${err.message}\n`);
  process.exit(1);
}
