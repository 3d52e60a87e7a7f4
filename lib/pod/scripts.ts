import { existsSync, readdirSync, readFileSync } from 'fs';
import { dirname, join } from 'path';

/**
 * The shell scripts that run inside the pods are real files in lib/pod/scripts/ (so that
 * shellcheck and editors see them); synth puts them into the `redis-scripts` ConfigMap.
 */
export function scriptsDirectory(): string {
  // Works from lib/ (sources under vitest) and from build/ (the bundled synth).
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    const candidate = join(dir, 'lib', 'pod', 'scripts');
    if (existsSync(join(candidate, 'common.sh'))) return candidate;
    if (existsSync(join(dir, 'scripts', 'common.sh'))) return join(dir, 'scripts');
  }
  throw new Error(`lib/pod/scripts not found above ${__dirname}; run from a checkout of this project`);
}

/** File name to content of every script, sorted by name so the ConfigMap is deterministic. */
export function loadScripts(dir = scriptsDirectory()): Record<string, string> {
  const scripts: Record<string, string> = {};
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.sh')).sort()) {
    scripts[file] = readFileSync(join(dir, file), 'utf8');
  }
  return scripts;
}
