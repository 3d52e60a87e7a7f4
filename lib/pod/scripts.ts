import { SCRIPTS } from './scripts.generated';

/**
 * The shell scripts that run inside the pods are real files in lib/pod/scripts/ (so that
 * shellcheck, editors and the script tests see them); synth puts them into the
 * `redis-scripts` ConfigMap. Their contents reach the constructs through
 * scripts.generated.ts (made from the .sh files by bin/gen-scripts.cjs), part of the
 * compiled code: no file is read at synth time, so the constructs work installed from npm
 * and bundled into an app (esbuild, webpack) alike.
 */

/** File name to content of every script, sorted by name so the ConfigMap is deterministic. */
export function loadScripts(): Record<string, string> {
  const scripts: Record<string, string> = {};
  for (const file of Object.keys(SCRIPTS).sort()) scripts[file] = SCRIPTS[file];
  return scripts;
}
