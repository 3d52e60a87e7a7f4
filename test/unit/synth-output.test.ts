// The synth command and the files it writes: deterministic, complete replacement,
// partial synth, failures that leave the previous output alone, and no secrets. (That the
// committed dist/ is what a synth writes: snapshot.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, writeFileSync } from 'fs';
import { dirname, join } from 'path';
import { parseAllDocuments } from 'yaml';
import { EnvironmentProfile, ValidationError, writeTree } from '../../lib/internal';
import { ENVIRONMENTS, findEnvironments, renderDist } from '../../main';
import { buildSynthCommand, listDir, readTree, ROOT, runSynth, synthInto, TempDirs } from './helpers';

const temp = new TempDirs();
beforeAll(() => buildSynthCommand());
afterAll(() => temp.cleanup());

/** A synthesized output directory (a fresh one for each call). */
function freshOutput(label: string): string {
  const outdir = join(temp.make(label), 'dist');
  synthInto(outdir);
  return outdir;
}

/** Nothing but the output directory itself in its parent: no staging or moved-aside leftovers. */
function expectNoLeftovers(outdir: string) {
  expect(listDir(dirname(outdir))).toEqual(['dist']);
}

describe('synth output is deterministic and complete', () => {
  it('two synths into two directories are byte-identical', () => {
    const first = readTree(freshOutput('det-a'));
    const second = readTree(freshOutput('det-b'));
    expect(first.size).toBeGreaterThan(10);
    expect([...second.keys()]).toEqual([...first.keys()]);
    for (const [path, content] of first) expect(second.get(path), path).toBe(content);
  });

  it('writes the base, one overlay and one Argo CD Application per environment, and says so', () => {
    const outdir = join(temp.make('layout'), 'dist');
    const result = synthInto(outdir);
    expect(listDir(outdir)).toEqual(['argocd', 'base', 'overlays']);
    expect(listDir(join(outdir, 'overlays'))).toEqual(ENVIRONMENTS.map((p) => p.name).sort());
    expect(listDir(join(outdir, 'argocd'))).toEqual(ENVIRONMENTS.filter((p) => p.argocd).map((p) => p.name).sort());
    expect(existsSync(join(outdir, 'base', 'kustomization.yaml'))).toBe(true);
    expect(result.stdout).toMatch(/^wrote \d+ files to .*dist\/ \(base \+ staging, production\)\n$/);
    expectNoLeftovers(outdir);
  });

  it('the command writes what renderDist computes in memory, file for file', () => {
    const outdir = freshOutput('in-memory');
    expect(readTree(outdir)).toEqual(new Map([...renderDist(ENVIRONMENTS)].sort(([a], [b]) => (a < b ? -1 : 1))));
  });

  it('a second full synth removes stray files and overlays of environments that no longer exist', () => {
    const outdir = freshOutput('stale');
    const clean = readTree(outdir);
    for (const stray of ['stray.yaml', 'base/stray.yaml', 'overlays/retired/kustomization.yaml', 'overlays/staging/patches/old.yaml']) {
      mkdirSync(dirname(join(outdir, stray)), { recursive: true });
      writeFileSync(join(outdir, stray), 'kind: Stray\n');
    }
    synthInto(outdir);
    expect(readTree(outdir)).toEqual(clean);
    expect(existsSync(join(outdir, 'overlays', 'retired'))).toBe(false);
    expectNoLeftovers(outdir);
  });

  it('a partial synth (--env staging) rewrites the base and staging and keeps the production overlay', () => {
    const outdir = freshOutput('partial');
    const before = readTree(outdir);
    writeFileSync(join(outdir, 'overlays', 'production', 'kept-by-partial-synth.txt'), 'x');
    writeFileSync(join(outdir, 'argocd', 'production', 'kept-by-partial-synth.txt'), 'x');
    writeFileSync(join(outdir, 'argocd', 'staging', 'stray.yaml'), 'x');
    writeFileSync(join(outdir, 'overlays', 'staging', 'stray.yaml'), 'x');
    writeFileSync(join(outdir, 'base', 'stray.yaml'), 'x');

    const result = synthInto(outdir, '--env', 'staging');
    expect(result.stdout).toMatch(/\(base \+ staging\)\n$/);
    const after = readTree(outdir);
    expect(after.get('overlays/production/kept-by-partial-synth.txt')).toBe('x');
    expect(after.get('argocd/production/kept-by-partial-synth.txt')).toBe('x');
    expect(after.has('overlays/staging/stray.yaml')).toBe(false);
    expect(after.has('argocd/staging/stray.yaml')).toBe(false);
    expect(after.has('base/stray.yaml')).toBe(false);
    after.delete('overlays/production/kept-by-partial-synth.txt');
    after.delete('argocd/production/kept-by-partial-synth.txt');
    expect(after).toEqual(before);
    expectNoLeftovers(outdir);
  });

  it('a partial synth into an empty directory writes only the base and the named overlay', () => {
    const outdir = join(temp.make('partial-empty'), 'dist');
    synthInto(outdir, '--env', 'production');
    expect(listDir(join(outdir, 'overlays'))).toEqual(['production']);
    expect(listDir(join(outdir, 'argocd'))).toEqual(['production']);
    expect(existsSync(join(outdir, 'base', 'kustomization.yaml'))).toBe(true);
  });
});

describe('a failing synth leaves the previous output untouched', () => {
  const badProfile: EnvironmentProfile = { name: 'broken', namespace: 'redis-broken', redis: { quorum: 7 } };

  it('an unknown --env fails with the list of known environments (in process)', () => {
    expect(() => findEnvironments(['nope'])).toThrow('--env: unknown environment "nope"; known environments: staging, production');
    expect(() => findEnvironments(['staging', 'nope'])).toThrow(/unknown environment "nope"/);
    expect(findEnvironments(['production']).map((p) => p.name)).toEqual(['production']);
    expect(findEnvironments(undefined).map((p) => p.name)).toEqual(['staging', 'production']);
    expect(findEnvironments([]).map((p) => p.name)).toEqual(['staging', 'production']);
  });

  it('the synth command exits 1 on an unknown --env, lists the known environments and writes nothing', () => {
    const parent = temp.make('unknown-env');
    const outdir = join(parent, 'dist');
    const result = runSynth(['--env', 'nope', '--outdir', outdir]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/unknown environment "nope"; known environments: staging, production/);
    expect(result.stderr).toMatch(/nothing written/);
    expect(result.stdout).toBe('');
    expect(listDir(parent)).toEqual([]);
  });

  it('an unknown --env leaves an existing output directory exactly as it was', () => {
    const outdir = freshOutput('unknown-env-existing');
    const before = readTree(outdir);
    const result = runSynth(['--env', 'staging,nope', '--outdir', outdir]);
    expect(result.status).toBe(1);
    expect(readTree(outdir)).toEqual(before);
    expectNoLeftovers(outdir);
  });

  it('an invalid profile makes renderDist throw, naming the environment and the field, before anything is written', () => {
    const outdir = freshOutput('bad-profile');
    const before = readTree(outdir);
    let error: unknown;
    try {
      writeTree(outdir, renderDist([...ENVIRONMENTS, badProfile]), ['']);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).toBe('environment "broken": quorum must be an integer from 1 to the number of sentinels (3), got 7');
    expect(readTree(outdir)).toEqual(before);
    expectNoLeftovers(outdir);
  });

  it('a repeated --env name is written once and does not lose the overlay', () => {
    const outdir = freshOutput('repeated-env');
    const before = readTree(outdir);
    const result = runSynth(['--env', 'staging,staging', '--outdir', outdir]);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/\(base \+ staging\)\n$/);
    expect(readTree(outdir)).toEqual(before);
    expectNoLeftovers(outdir);
  });

  it('writeTree replaces a directory named twice only once', () => {
    const outdir = freshOutput('repeated-replace');
    const before = readTree(outdir);
    writeTree(outdir, renderDist(ENVIRONMENTS), ['base', 'overlays/staging', 'overlays/staging']);
    expect(readTree(outdir)).toEqual(before);
    expectNoLeftovers(outdir);
  });

  it('writeTree refuses a directory to replace that the tree has no files in, before moving anything', () => {
    const outdir = freshOutput('missing-replace');
    const before = readTree(outdir);
    expect(() => writeTree(outdir, renderDist(findEnvironments(['staging'])), ['base', 'overlays/production']))
      .toThrow(new ValidationError('writeTree replace', 'overlays/production', 'must name a directory that has files in the tree (nothing was written)'));
    expect(readTree(outdir)).toEqual(before);
    expectNoLeftovers(outdir);
  });

  it('writeTree puts the previous directory back when swapping the new one in fails', () => {
    const outdir = freshOutput('failed-rename');
    const before = readTree(outdir);
    // Replacing 'overlays' first moves the staged overlays/staging with it, so the second
    // swap finds nothing to rename after it has moved overlays/staging aside.
    expect(() => writeTree(outdir, renderDist(ENVIRONMENTS), ['overlays', 'overlays/staging'])).toThrow(/ENOENT/);
    expect(readTree(outdir)).toEqual(before);
    expect(listDir(join(outdir, 'overlays'))).toEqual(['production', 'staging']);
    expectNoLeftovers(outdir);
  });

  it('an unknown option fails without writing', () => {
    const parent = temp.make('bad-option');
    const result = runSynth(['--bogus', '--outdir', join(parent, 'dist')]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/unknown option '--bogus'/);
    expect(listDir(parent)).toEqual([]);
  });
});

describe('no secret ever reaches the output', () => {
  const outputs = (): Array<[string, Map<string, string>]> => [['a fresh synth', readTree(freshOutput('secrets'))], ['the committed dist/', readTree(join(ROOT, 'dist'))]];

  it('there is no Secret object and no Secret data in any output file', () => {
    for (const [label, tree] of outputs()) {
      expect(tree.size, label).toBeGreaterThan(0);
      for (const [path, content] of tree) {
        for (const doc of parseAllDocuments(content)) {
          const value = doc.toJS();
          const values = Array.isArray(value) ? value : [value];
          for (const v of values) {
            expect(v?.kind, `${label} ${path}`).not.toBe('Secret');
            expect(v?.value?.kind, `${label} ${path}`).not.toBe('Secret');
          }
        }
        expect(content, `${label} ${path}`).not.toMatch(/^\s*(stringData|kind:\s*Secret)\b/m);
      }
    }
  });

  it('no password-looking string appears: auth directives only reference the mounted Secret at start time', () => {
    for (const [label, tree] of outputs()) {
      for (const [path, content] of tree) {
        const where = `${label} ${path}`;
        for (const line of content.split('\n')) {
          // requirepass/masterauth/auth-pass/sentinel-pass only as the start scripts write
          // them: the value is a shell variable read from the mounted Secret file. Elsewhere
          // (the rotation reads and sets them at run time, auth-sync.sh) never followed by a
          // literal value.
          const directive = /\b(requirepass|masterauth|auth-pass|sentinel-pass)\b(.*)$/.exec(line);
          const code = line.trimStart();
          if (directive && !code.startsWith('#')) {
            if (/^(echo\b|requirepass|masterauth|sentinel (auth-pass|sentinel-pass))/.test(code)) {
              expect(directive[2], `${where}: ${line}`).toMatch(/^( \$\w+)? \\"\$\w+\\""$/);
            } else {
              expect(directive[2], `${where}: ${line}`).not.toMatch(/^\s+(\S+\s+)?["']?[A-Za-z0-9+/=]{16,}/);
            }
          }
          // Key/value pairs that look like a credential with a literal value.
          expect(line, where).not.toMatch(/(password|passwd|secret|token|apikey)\s*[:=]\s*["']?[A-Za-z0-9+/]{8,}/i);
          // Long random-looking blobs (base64 or hex, letters mixed with digits).
          const blobs = line.split(/[^A-Za-z0-9+=]+/).filter((t) => t.length >= 24 && /\d/.test(t) && /[A-Za-z]/.test(t));
          expect(blobs, where).toEqual([]);
        }
      }
    }
  });

  it('environment variables carry no secret: the password is a mounted file, never an env value or secretKeyRef', () => {
    const tree = readTree(freshOutput('env'));
    for (const [path, content] of tree) {
      if (!content.includes('containers:')) continue;
      const o = parseAllDocuments(content)[0].toJS();
      for (const c of o.spec.template.spec.containers) {
        for (const env of c.env ?? []) {
          expect(env.valueFrom?.secretKeyRef, `${path} ${c.name} ${env.name}`).toBeUndefined();
          if (/PASS|SECRET|TOKEN/.test(env.name)) throw new Error(`${path}: env ${env.name} looks like a credential`);
        }
        expect(c.envFrom, path).toBeUndefined();
      }
      // The whole Secret (no items): the -previous keys of a rotation appear, and kubelet
      // updates the files in place. The proxy pods get only the proxy user's keys (optional:
      // the -previous one exists only during a rotation), still without subPath.
      const auth = o.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'auth');
      if (o.metadata.name === 'redis-proxy') {
        expect(auth.secret).toEqual({
          secretName: 'redis-auth', defaultMode: 0o440, optional: true,
          items: [{ key: 'proxy-password', path: 'proxy-password' }, { key: 'proxy-password-previous', path: 'proxy-password-previous' }],
        });
      } else {
        expect(auth.secret).toEqual({ secretName: 'redis-auth', defaultMode: 0o440 });
      }
      for (const container of o.spec.template.spec.containers) {
        for (const m of container.volumeMounts ?? []) if (m.name === 'auth') expect(m.subPath, `${path} ${container.name}`).toBeUndefined();
      }
    }
  });
});
