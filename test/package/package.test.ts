// The library as others get it. `npm run build:jsii` compiles lib/ with jsii (JavaScript,
// .d.ts and the .jsii assembly, into out/; `npm run build:lib` = regenerate the scripts
// module + this, but a test must not regenerate what it checks); `npm pack` packs it; the tarball goes into a
// fresh temporary cdk8s app (App + Chart + RedisSentinelHA, plain app.synth()), which is
// type-checked against the packed .d.ts and synthesized twice: run directly with node, and
// bundled with esbuild (library included) and run from a directory with no node_modules.
// Both must give exactly the objects the repository's own sources give for the same props.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { builtinModules } from 'module';
import { join, resolve } from 'path';
import { buildSync } from 'esbuild';
import { parseAllDocuments } from 'yaml';
import { App, Chart, Duration, Size } from 'cdk8s';
import { RedisSentinelHA, RedisSentinelHAProps } from '../../lib';

const ROOT = resolve(__dirname, '../..');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const SLOW = 240_000; // jsii, npm pack, npm install and tsc on two shared cores

/** The props every variant synthesizes, as TypeScript source (for the app) and as a value. */
const NAMESPACE = 'redis-apps';
const PROPS_SOURCE = `{
  replicas: 3,
  downAfter: Duration.seconds(3),
  failoverTimeout: Duration.seconds(20),
  storageSize: Size.gibibytes(4),
}`;
const PROPS: RedisSentinelHAProps = {
  replicas: 3,
  downAfter: Duration.seconds(3),
  failoverTimeout: Duration.seconds(20),
  storageSize: Size.gibibytes(4),
};

/** The app a user writes; `cdk8s` is the app's own copy unless `cdk8sFrom` names another. */
function appSource(cdk8sFrom = 'cdk8s'): string {
  return `import { App, Chart } from 'cdk8s';
import { Duration, Size } from ${JSON.stringify(cdk8sFrom)};
import { RedisSentinelHA, RedisSentinelHAProps } from 'redis-sentinel-ha';

declare const process: { argv: string[] };

const props: RedisSentinelHAProps = ${PROPS_SOURCE};
const app = new App({ outdir: process.argv[2] });
const chart = new Chart(app, 'redis', { namespace: ${JSON.stringify(NAMESPACE)} });
new RedisSentinelHA(chart, 'redis', props);
app.synth();
`;
}

function run(command: string, args: string[], cwd: string): string {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...process.env, JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION: '1' } });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} (in ${cwd}) exited ${r.status}:\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

/** The objects of every YAML file an app.synth() wrote into outdir. */
function synthesized(outdir: string): unknown[] {
  const files = readdirSync(outdir).filter((f) => f.endsWith('.yaml')).sort();
  expect(files).toEqual(['redis.k8s.yaml']);
  return parseAllDocuments(readFileSync(join(outdir, files[0]), 'utf8')).map((d) => d.toJSON());
}

/** What the repository's own sources synthesize for PROPS (in this process). */
function reference(): unknown[] {
  const chart = new Chart(new App(), 'redis', { namespace: NAMESPACE });
  new RedisSentinelHA(chart, 'redis', PROPS);
  return chart.toJson();
}

const tmp = mkdtempSync(join(tmpdir(), 'redis-ha-package-'));
const appDir = join(tmp, 'app');
let tarball = '';

beforeAll(() => {
  run('npm', ['run', '--silent', 'build:jsii'], ROOT);
  const packed = JSON.parse(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], ROOT));
  tarball = join(tmp, packed[0].filename);
}, SLOW);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the jsii build (npm run build:jsii)', () => {
  it('writes a .jsii assembly that describes the constructs and their props', () => {
    const assembly = JSON.parse(readFileSync(join(ROOT, '.jsii'), 'utf8'));
    expect(assembly.schema).toBe('jsii/0.10.0');
    expect(assembly.name).toBe(PKG.name);
    expect(assembly.version).toBe(PKG.version);
    const types = assembly.types as Record<string, { kind: string; base?: string; datatype?: boolean }>;
    for (const cls of ['RedisSentinelHA', 'RedisMaster', 'RedisReplicaSet', 'SentinelQuorum']) {
      expect(types[`${PKG.name}.${cls}`]?.kind, `${cls} in the assembly`).toBe('class');
    }
    expect(types[`${PKG.name}.RedisSentinelHA`].base).toBe('constructs.Construct');
    expect(types[`${PKG.name}.RedisSentinelHAProps`]).toMatchObject({ kind: 'interface', datatype: true });
    expect(Object.keys(assembly.dependencies ?? {}).sort()).toEqual(['cdk8s', 'cdk8s-plus-28', 'constructs']);
  });

  it('compiles into out/ (JavaScript and .d.ts), nothing next to the sources', () => {
    expect(existsSync(join(ROOT, PKG.main))).toBe(true);
    expect(existsSync(join(ROOT, PKG.types))).toBe(true);
    const stray = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory()
      ? stray(join(dir, e.name))
      : /\.(js|d\.ts)$/.test(e.name) ? [join(dir, e.name)] : []));
    expect(stray(join(ROOT, 'lib'))).toEqual([]);
  });
});

describe('npm pack', () => {
  const list = (): string[] => run('tar', ['tzf', tarball], tmp).split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));

  it('holds the compiled library, its types and the jsii assembly, and no sources', () => {
    const files = list();
    for (const f of ['package.json', '.jsii', 'out/index.js', 'out/index.d.ts', 'out/pod/scripts.generated.js', 'out/constructs/redis-sentinel-ha.js', PKG.bin['redis-ha']]) {
      expect(files, f).toContain(f);
    }
    const own = files.filter((f) => !f.startsWith('node_modules/'));
    expect(own.filter((f) => !/^(out\/.*\.(js|d\.ts)|\.jsii|package\.json|README\.md|LICENSE)$/.test(f))).toEqual([]);
  });

  it('needs at run time only its peer dependencies and what it bundles, and bundles nothing it does not need', () => {
    const files = list();
    const bundled: string[] = PKG.bundleDependencies ?? PKG.bundledDependencies ?? [];
    for (const dep of bundled) expect(files, `bundled ${dep}`).toContain(`node_modules/${dep}/package.json`);
    const unpacked = join(tmp, 'unpacked');
    mkdirSync(unpacked, { recursive: true });
    run('tar', ['xzf', tarball, '-C', unpacked], tmp);
    const required = new Set<string>();
    for (const f of files.filter((x) => /^out\/.*\.js$/.test(x))) {
      for (const m of readFileSync(join(unpacked, 'package', f), 'utf8').matchAll(/require\("([^"]+)"\)/g)) {
        if (m[1].startsWith('.') || builtinModules.includes(m[1].replace(/^node:/, ''))) continue;
        required.add(m[1].startsWith('@') ? m[1].split('/').slice(0, 2).join('/') : m[1].split('/')[0]);
      }
    }
    const allowed = new Set([...Object.keys(PKG.peerDependencies ?? {}), ...bundled]);
    expect([...required].filter((d) => !allowed.has(d)), 'required by out/**/*.js but neither a peer dependency nor bundled').toEqual([]);
    expect(bundled.filter((d) => !required.has(d)), 'bundled but required by nothing in out/ (make it a devDependency)').toEqual([]);
  });
});

describe('a fresh cdk8s app with the packed library installed', () => {
  beforeAll(() => {
    mkdirSync(appDir, { recursive: true });
    const peers = PKG.peerDependencies as Record<string, string>;
    writeFileSync(join(appDir, 'package.json'), JSON.stringify({
      name: 'fresh-cdk8s-app',
      version: '1.0.0',
      private: true,
      dependencies: {
        [PKG.name]: `file:${tarball}`,
        // The app's own copies, at the versions this repository tests with.
        cdk8s: PKG.devDependencies.cdk8s ?? peers.cdk8s,
        'cdk8s-plus-28': PKG.devDependencies['cdk8s-plus-28'] ?? peers['cdk8s-plus-28'],
        constructs: PKG.devDependencies.constructs ?? peers.constructs,
      },
    }, null, 2));
    // From npm's local cache where it can; the registry only for what the cache lacks.
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], appDir);
    writeFileSync(join(appDir, 'main.ts'), appSource());
    writeFileSync(join(appDir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'commonjs', moduleResolution: 'node', strict: true, skipLibCheck: true, types: [] },
      files: ['main.ts'],
    }));
    // Type-checks the app against the packed .d.ts and emits main.js.
    run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', appDir], appDir);
  }, SLOW);

  it('resolves cdk8s, cdk8s-plus-28 and constructs from the app (peer dependencies), not a copy of its own', () => {
    const lib = join(appDir, 'node_modules', PKG.name);
    for (const dep of ['cdk8s', 'cdk8s-plus-28', 'constructs']) {
      expect(existsSync(join(lib, 'node_modules', dep)), `${PKG.name}/node_modules/${dep}`).toBe(false);
      expect(require.resolve(dep, { paths: [lib] })).toBe(require.resolve(dep, { paths: [appDir] }));
    }
  });

  it('installs the operator command `redis-ha` (package.json bin), which runs with node alone', () => {
    const bin = join(appDir, 'node_modules', '.bin', 'redis-ha');
    expect(existsSync(bin)).toBe(true);
    const usage = run(bin, ['--help'], appDir);
    expect(usage).toContain('rotate-passwords');
    const r = spawnSync(bin, ['rotate-passwords', '--users', 'root'], { cwd: appDir, encoding: 'utf8' });
    expect({ status: r.status, stderr: r.stderr.trim() }).toEqual({ status: 1, stderr: 'redis-ha rotate-passwords: unknown user root (the users are replication, sentinel, operations, proxy, app)' });
  });

  it('runs `redis-ha drill` from the install (its modules load ioredis, vega and vega-lite, bundled): a one-line error without a password', () => {
    const bin = join(appDir, 'node_modules', '.bin', 'redis-ha');
    const env = { ...process.env, REDIS_HA_PASSWORD_FILE: '' };
    const r = spawnSync(bin, ['drill', '--wait', '--sentinel', '127.0.0.1:1'], { cwd: appDir, encoding: 'utf8', env });
    expect({ status: r.status, stderr: r.stderr.trim() }).toEqual({ status: 1, stderr: expect.stringMatching(/^redis-ha: no password for user 'app'[^\n]*$/) });
  });

  it('synthesizes, run directly with node, the objects the repository synthesizes (Duration and Size from the app\'s cdk8s)', () => {
    const outdir = join(tmp, 'out-node');
    run(process.execPath, [join(appDir, 'main.js'), outdir], appDir);
    expect(synthesized(outdir)).toEqual(reference());
  });

  it('synthesizes the same objects bundled with esbuild (the library bundled in), run where there is no node_modules', () => {
    const bundleDir = join(tmp, 'bundled');
    buildSync({
      entryPoints: [join(appDir, 'main.ts')],
      outfile: join(bundleDir, 'app.js'),
      absWorkingDir: appDir,
      bundle: true,
      platform: 'node',
      target: 'node20',
      logLevel: 'error',
    });
    const outdir = join(tmp, 'out-bundled');
    run(process.execPath, [join(bundleDir, 'app.js'), outdir], bundleDir);
    expect(synthesized(outdir)).toEqual(reference());
  });

  // A Duration or Size made by a second, separate copy of cdk8s (here the repository's own)
  // must be accepted too: validation recognises them by shape, not instanceof.
  it('accepts a Duration and Size from a different copy of cdk8s than the library uses', () => {
    const dir = join(appDir, 'foreign');
    mkdirSync(dir, { recursive: true });
    const foreign = join(ROOT, 'node_modules', 'cdk8s');
    writeFileSync(join(dir, 'main.js'), [
      `const { App, Chart } = require('cdk8s');`,
      `const { Duration, Size } = require(${JSON.stringify(foreign)});`,
      `const { RedisSentinelHA } = require(${JSON.stringify(PKG.name)});`,
      `const app = new App({ outdir: process.argv[2] });`,
      `new RedisSentinelHA(new Chart(app, 'redis', { namespace: ${JSON.stringify(NAMESPACE)} }), 'redis', ${PROPS_SOURCE});`,
      `app.synth();`,
    ].join('\n'));
    expect(require.resolve('cdk8s', { paths: [dir] })).not.toBe(require.resolve(foreign));
    const outdir = join(tmp, 'out-foreign');
    run(process.execPath, [join(dir, 'main.js'), outdir], dir);
    expect(synthesized(outdir)).toEqual(reference());
  });
});
