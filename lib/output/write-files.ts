import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'fs';
import { dirname, join } from 'path';
import { ValidationError } from '../constructs/validation';

/** Output files as path (relative to the output directory) -> content. */
export type FileTree = Map<string, string>;

/**
 * Replace each of `replace` (directories relative to outdir) with the files of `tree`
 * below it. New content is written next to the old and swapped in with renames, so an
 * interrupted or failed write never leaves a half-written directory behind. Every
 * directory to replace must have files in `tree`: this is checked before anything moves.
 */
export function writeTree(outdir: string, tree: FileTree, replace: string[]): void {
  const staging = `${outdir}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  try {
    for (const [path, content] of tree) {
      mkdirSync(dirname(join(staging, path)), { recursive: true });
      writeFileSync(join(staging, path), content);
    }
    const dirs = [...new Set(replace)];
    for (const dir of dirs) {
      if (!existsSync(join(staging, dir))) {
        throw new ValidationError('writeTree replace', dir, 'must name a directory that has files in the tree (nothing was written)');
      }
    }
    for (const dir of dirs) {
      const target = join(outdir, dir);
      const old = `${target}.old-${process.pid}`;
      mkdirSync(dirname(target), { recursive: true });
      rmSync(old, { recursive: true, force: true });
      let movedAside = false;
      try {
        renameSync(target, old);
        movedAside = true;
      } catch { /* first synth: nothing to move aside */ }
      try {
        renameSync(join(staging, dir), target);
      } catch (err) {
        if (movedAside) renameSync(old, target); // put the previous directory back
        throw err;
      }
      rmSync(old, { recursive: true, force: true });
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
