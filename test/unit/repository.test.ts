// The repository stands on its own: nothing in it points at files outside it, and the
// CRD sources that `npx cdk8s import` reads (cdk8s.yaml) are inside it, in crds/.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'child_process';
import { existsSync, readdirSync, readFileSync } from 'fs';
import { join } from 'path';
import { parse } from 'yaml';
import { ROOT } from './helpers';

/** Every file the repository tracks (what a clone holds; build output and node_modules are not). */
function repositoryFiles(): string[] {
  const result = spawnSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`git ls-files failed: ${result.stderr}`);
  return result.stdout.split('\0').filter((file) => file && existsSync(join(ROOT, file)));
}

describe('the repository points at nothing outside it', () => {
  it('no file names a path in the parent directory or the machine it was written on', () => {
    const files = repositoryFiles();
    expect(files).toContain('cdk8s.yaml');
    expect(files).toContain('README.md');
    const outside = files.flatMap((file) => readFileSync(join(ROOT, file), 'utf8').split('\n')
      .map((line, i) => `${file}:${i + 1}: ${line.trim()}`)
      .filter((line) => /(\.\.\/shared\b|\/work\/shared\b|\/work\/main\b)/.test(line)));
    expect(outside).toEqual([]);
  });

  it('cdk8s.yaml imports CRDs from crds/, and each exists', () => {
    const config = parse(readFileSync(join(ROOT, 'cdk8s.yaml'), 'utf8'));
    expect(config.imports.length).toBeGreaterThan(0);
    for (const source of config.imports) {
      expect(source).toMatch(/^crds\/[^/]+\.yaml$/);
      expect(existsSync(join(ROOT, source)), source).toBe(true);
    }
    expect(readdirSync(join(ROOT, 'crds')).sort()).toEqual([...config.imports.map((s: string) => s.slice('crds/'.length)), 'README.md'].sort());
  });
});
