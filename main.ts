import { Command, CommanderError } from 'commander';
import { Cpu } from 'cdk8s-plus-28';
import { Duration, Size } from 'cdk8s';
import {
  EnvironmentProfile, requireDistinctEnvironments, synthBase, synthEnvironment,
} from './lib/output/environments';
import { synthApplication } from './lib/output/argocd-application';
import { renderApplication, renderBase, renderOverlay } from './lib/output/kustomize';
import { defineEnvironments } from './lib/output/profile-values';
import { FileTree, writeTree } from './lib/output/write-files';

/**
 * Where the committed dist/ lives for Argo CD: replace with your GitOps repository.
 * Each environment's Application syncs its overlay from here.
 */
const GITOPS = { repoURL: 'https://git.example.com/platform/redis-sentinel-ha.git', targetRevision: 'main', project: 'default' };

/**
 * The environments. Each is one typed profile; adding an environment means adding one
 * entry here and nothing else. Unset props keep the construct defaults, which are the
 * architecture's staging figures, so the staging overlay carries little more than its namespace.
 * TLS is off in both; a profile turns it on with `redis: { tls: { secretName: 'redis-tls' } }`
 * (an existing kubernetes.io/tls Secret) or `tls: { issuer: { name, kind } }` (a cert-manager
 * Certificate, whose DNS names take the profile's namespace).
 */
export const ENVIRONMENTS: readonly EnvironmentProfile[] = defineEnvironments(() => [
  {
    name: 'staging',
    namespace: 'redis-staging',
    redis: {
      // Seed: master and slaves 256Mi-2Gi, Sentinels 64Mi-128Mi.
      redisResources: { cpu: { request: Cpu.millis(250) }, memory: { request: Size.mebibytes(256), limit: Size.gibibytes(2) } },
      sentinelResources: { cpu: { request: Cpu.millis(50) }, memory: { request: Size.mebibytes(64), limit: Size.mebibytes(128) } },
      storageSize: Size.gibibytes(8),
      downAfter: Duration.seconds(5),
    },
    argocd: GITOPS,
  },
  {
    name: 'production',
    namespace: 'redis-production',
    redis: {
      // Memory request = limit: the scheduler reserves all of it, so the node never
      // overcommits the memory Redis, its forks and replication buffers may use, and a
      // node under memory pressure evicts pods using more than they requested first.
      redisResources: { cpu: { request: Cpu.units(1) }, memory: { request: Size.gibibytes(8), limit: Size.gibibytes(8) } },
      sentinelResources: { cpu: { request: Cpu.millis(100) }, memory: { request: Size.mebibytes(128), limit: Size.mebibytes(256) } },
      storageSize: Size.gibibytes(50),
      downAfter: Duration.seconds(5),
      failoverTimeout: Duration.seconds(10),
      // A redis_exporter sidecar on every Redis and Sentinel pod (Prometheus in the namespace `monitoring`).
      metrics: true,
    },
    argocd: GITOPS,
  },
]);

export function findEnvironments(names: string[] | undefined, known: readonly EnvironmentProfile[] = ENVIRONMENTS): EnvironmentProfile[] {
  requireDistinctEnvironments(known);
  if (!names || names.length === 0) return [...known];
  return names.map((name) => {
    const profile = known.find((p) => p.name === name);
    if (!profile) {
      throw new Error(`--env: unknown environment "${name}"; known environments: ${known.map((p) => p.name).join(', ')}`);
    }
    return profile;
  });
}

/** Everything `dist/` should contain for these environments, computed in memory. */
export function renderDist(environments: readonly EnvironmentProfile[]): FileTree {
  requireDistinctEnvironments(environments);
  const base = synthBase();
  const tree: FileTree = renderBase(base);
  for (const profile of environments) {
    for (const [path, content] of renderOverlay(profile.name, profile.namespace, base, synthEnvironment(profile))) {
      tree.set(path, content);
    }
    if (profile.argocd) {
      for (const [path, content] of renderApplication(profile.name, synthApplication(profile.name, profile.namespace, profile.argocd))) {
        tree.set(path, content);
      }
    }
  }
  return tree;
}

export function main(argv: string[]): void {
  const program = new Command()
    .name('synth')
    .description('Synthesize the kustomize base and environment overlays into the output directory.')
    .option('-e, --env <names>', 'comma-separated environments to write (default: all, replacing the whole output directory)')
    .option('-o, --outdir <dir>', 'output directory', process.env.CDK8S_OUTDIR || 'dist')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  program.parse(argv);
  const opts = program.opts<{ env?: string; outdir: string }>();
  // Deduplicated: a repeated name would put its overlay twice into the replace list.
  const selected = opts.env === undefined ? undefined : [...new Set(opts.env.split(',').map((s) => s.trim()).filter(Boolean))];
  const environments = findEnvironments(selected);
  const tree = renderDist(environments);
  // A full synth replaces the whole output directory, so stale files disappear; a
  // partial one replaces only the base and the named overlays.
  const replace = selected
    ? ['base', ...environments.flatMap((p) => [`overlays/${p.name}`, ...(p.argocd ? [`argocd/${p.name}`] : [])])]
    : [''];
  writeTree(opts.outdir, tree, replace);
  process.stdout.write(`wrote ${tree.size} files to ${opts.outdir}/ (base + ${environments.map((p) => p.name).join(', ')})\n`);
}

if (require.main === module) {
  try {
    main(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    process.stderr.write(`synth failed, nothing written: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
