'use strict';
// Bundles the repository's TypeScript entry points with esbuild, in-process (tens of
// milliseconds), so they run on plain node without a TypeScript runner's start-up cost.
// Dependencies stay external and load from node_modules. Each bundle records the files it
// was built from (build/<name>.inputs.json, from esbuild's metafile), so `isFresh` can tell
// with a few stat calls whether a rebuild is needed.
const { mkdirSync, readFileSync, statSync, writeFileSync } = require('fs');
const { join, relative, resolve } = require('path');
const { generateScripts, SCRIPTS_DIR, scriptFiles } = require('./gen-scripts.cjs');

const ROOT = resolve(__dirname, '..');
const OUTDIR = join(ROOT, 'build');
/** Bundle name -> entry point. `main` is the synth command. */
const ENTRIES = { main: 'main.ts', 'bench-failover': 'bench/failover.ts' };

const bundlePath = (name) => join(OUTDIR, `${name}.js`);
const inputsPath = (name) => join(OUTDIR, `${name}.inputs.json`);

/** Regenerate the scripts module, then bundle the named entry points. */
function bundle(names) {
  generateScripts();
  const entryPoints = Object.fromEntries(names.map((n) => [n, join(ROOT, ENTRIES[n])]));
  const result = require('esbuild').buildSync({
    entryPoints,
    outdir: OUTDIR,
    absWorkingDir: ROOT,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    packages: 'external',
    logLevel: 'warning',
    metafile: true,
  });
  mkdirSync(OUTDIR, { recursive: true });
  // What a rebuild depends on besides the bundled sources: the pod scripts (through the
  // generated module, so also their directory, which changes when one is added) and this
  // build's own code.
  const extra = [
    relative(ROOT, SCRIPTS_DIR),
    ...scriptFiles().map((f) => relative(ROOT, join(SCRIPTS_DIR, f))),
    'bin/bundle.cjs',
    'bin/gen-scripts.cjs',
  ];
  for (const name of names) {
    const output = result.metafile.outputs[relative(ROOT, bundlePath(name))];
    const inputs = Object.keys(output ? output.inputs : result.metafile.inputs);
    writeFileSync(inputsPath(name), JSON.stringify([...inputs, ...extra], null, 1) + '\n');
  }
}

/** True if build/<name>.js exists and no file it was built from changed since. */
function isFresh(name) {
  try {
    const built = statSync(bundlePath(name)).mtimeMs;
    const inputs = JSON.parse(readFileSync(inputsPath(name), 'utf8'));
    return inputs.every((p) => statSync(join(ROOT, p)).mtimeMs <= built);
  } catch {
    return false; // never built, or an input is gone
  }
}

/** Path of build/<name>.js, rebuilt first only if a source changed. */
function ensureBundle(name) {
  if (!isFresh(name)) bundle([name]);
  return bundlePath(name);
}

module.exports = { ENTRIES, bundle, isFresh, ensureBundle, bundlePath };
