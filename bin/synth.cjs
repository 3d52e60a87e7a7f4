'use strict';
// `npm run synth`: one node process. Rebuilds build/main.js (esbuild, in this process)
// only if a file it is built from changed since the last build, then runs it as the main
// module, exactly as `node build/main.js ARGS` would (same arguments, exit codes, output).
const { ensureBundle } = require('./bundle.cjs');

const main = ensureBundle('main');
process.argv[1] = main;
require('module').runMain(main);
