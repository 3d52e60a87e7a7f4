'use strict';
// Bundles the repository's TypeScript entry points with esbuild, in-process (a few hundred
// milliseconds at most), so they run on plain node without a TypeScript runner's start-up
// cost. The synth command (`main`) is bundled whole, dependencies included: node then loads
// one file instead of resolving and reading some hundred modules from node_modules, which
// takes about a quarter off every synth. The failover bench keeps its dependencies external.
// Each bundle records the files it was built from (build/<name>.inputs.json, from esbuild's
// metafile), so `isFresh` can tell with a few hundred stat calls (a millisecond or two)
// whether a rebuild is needed.
const { mkdirSync, readFileSync, statSync, writeFileSync } = require('fs');
const { join, resolve } = require('path');
const { generateScripts } = require('./gen-scripts.cjs');

const ROOT = resolve(__dirname, '..');
const OUTDIR = join(ROOT, 'build');
/** Bundle name -> entry point, and whether its packages stay in node_modules. `main` is the synth command. */
const ENTRIES = {
  main: { entry: 'main.ts', packagesExternal: false },
  'bench-failover': { entry: 'bench/failover.ts', packagesExternal: true },
};

const bundlePath = (name) => join(OUTDIR, `${name}.js`);
const inputsPath = (name) => join(OUTDIR, `${name}.inputs.json`);

/**
 * Bundle the named entry points; first regenerate the scripts module from the .sh files
 * unless `generate` is false (the tests' build: tests check the module, never rewrite it).
 */
function bundle(names, { generate = true } = {}) {
  if (generate) generateScripts();
  const { buildSync } = require('esbuild');
  mkdirSync(OUTDIR, { recursive: true });
  // What a rebuild depends on besides the bundled sources (the pod scripts come in through
  // the generated module, itself a bundled source): this build's own code.
  const extra = ['bin/bundle.cjs', 'bin/gen-scripts.cjs'];
  for (const name of names) {
    const result = buildSync({
      entryPoints: { [name]: join(ROOT, ENTRIES[name].entry) },
      outdir: OUTDIR,
      absWorkingDir: ROOT,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      ...(ENTRIES[name].packagesExternal ? { packages: 'external' } : {}),
      logLevel: 'warning',
      metafile: true,
    });
    const inputs = Object.keys(result.metafile.inputs);
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

/**
 * Path of build/<name>.js, rebuilt first only if a source changed. The scripts module is
 * regenerated first (about a millisecond; it is rewritten, and so newer than the bundle,
 * only when a .sh file's content changed).
 */
function ensureBundle(name) {
  generateScripts();
  if (!isFresh(name)) bundle([name], { generate: false });
  return bundlePath(name);
}

module.exports = { ENTRIES, bundle, isFresh, ensureBundle, bundlePath };
