// The pod scripts reach the constructs through lib/pod/scripts.generated.ts (no file is
// read at synth time); the .sh files are the source. This fails when the two differ.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'fs';
import { join, resolve } from 'path';
import { loadScripts } from '../../lib/pod/scripts';

const ROOT = resolve(__dirname, '../..');
const DIR = join(ROOT, 'lib/pod/scripts');

describe('lib/pod/scripts.generated.ts', () => {
  it('holds exactly the .sh files of lib/pod/scripts, byte for byte, sorted by name', () => {
    const files = readdirSync(DIR).filter((f) => f.endsWith('.sh')).sort();
    const onDisk = Object.fromEntries(files.map((f) => [f, readFileSync(join(DIR, f), 'utf8')]));
    const loaded = loadScripts();
    const stale = [...new Set([...files, ...Object.keys(loaded)])].filter((f) => onDisk[f] !== loaded[f]);
    expect(stale, `lib/pod/scripts.generated.ts is out of date with lib/pod/scripts/*.sh (differs in: ${stale.join(', ')}); run \`npm run gen:scripts\` and commit it`).toEqual([]);
    expect(Object.keys(loaded)).toEqual(files);
  });
});
