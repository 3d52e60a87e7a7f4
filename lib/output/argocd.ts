import { ApiObject, Chart } from 'cdk8s';
import { requireDnsLabel, requireDnsSubdomain, requireKnownKeys, ValidationError } from '../constructs/validation';

/**
 * How Argo CD deploys one environment: where the committed `dist/` lives and where its
 * overlay goes. Written in the environment's profile (main.ts); `npm run synth` turns it
 * into `dist/argocd/<env>/application.yaml`.
 */
export interface ArgoCdSettings {
  /** Git repository holding the committed `dist/` (https://… or git@host:path). */
  readonly repoURL: string;
  /**
   * Branch, tag or commit Argo CD follows.
   * @default 'main'
   */
  readonly targetRevision?: string;
  /**
   * Directory of the overlay inside the repository.
   * @default 'dist/overlays/<environment>'
   */
  readonly path?: string;
  /**
   * Argo CD project the Application belongs to.
   * @default 'default'
   */
  readonly project?: string;
  /**
   * API server of the destination cluster, as registered in Argo CD.
   * @default 'https://kubernetes.default.svc' (the cluster Argo CD runs in)
   */
  readonly destinationServer?: string;
  /**
   * Namespace Argo CD watches for Applications.
   * @default 'argocd'
   */
  readonly applicationNamespace?: string;
  /**
   * Sync automatically (with self-heal and pruning); false leaves each sync to an operator.
   * @default true
   */
  readonly automated?: boolean;
}

const SETTINGS_KEYS = ['repoURL', 'targetRevision', 'path', 'project', 'destinationServer', 'applicationNamespace', 'automated'];

/**
 * Sync waves: Argo CD applies a lower wave first and waits for it to be healthy. The
 * Namespace comes first (everything lands in it); then what pods read or are protected
 * by (ConfigMaps, ServiceAccount, NetworkPolicies, Services, PDBs, and with the tls prop
 * from an issuer the cert-manager Certificate, whose Secret the pods mount: Argo CD waits
 * for it to be Ready), so no pod starts without its configuration or certificate or
 * unprotected by its NetworkPolicy; the workloads last.
 */
export const SYNC_WAVES: Readonly<Record<string, number>> = {
  Namespace: -2,
  ServiceAccount: -1,
  ConfigMap: -1,
  Certificate: -1,
  NetworkPolicy: -1,
  Service: -1,
  PodDisruptionBudget: -1,
  StatefulSet: 0,
  Deployment: 0,
  // Monitoring last: the workloads never wait on the Prometheus Operator's CRDs.
  PodMonitor: 1,
  PrometheusRule: 1,
};

const SYNC_WAVE = 'argocd.argoproj.io/sync-wave';
const SYNC_OPTIONS = 'argocd.argoproj.io/sync-options';
/**
 * The Namespace holds the volumes' claims (StatefulSet PVCs are not Argo CD's objects but
 * are deleted with their namespace): neither pruning nor deleting the Application (even
 * with the cascading finalizer) may delete it.
 */
export const NAMESPACE_SYNC_OPTIONS = 'Prune=false,Delete=false';

/**
 * Annotates every object of a chart with its sync wave (and the Namespace with its
 * protection). The annotations are inert without Argo CD, so the kustomize output for
 * `kubectl apply -k` is unchanged in effect.
 */
export function addArgoCdAnnotations(chart: Chart): void {
  for (const child of chart.node.findAll()) {
    if (!(child instanceof ApiObject)) continue;
    const wave = SYNC_WAVES[child.kind];
    if (wave === undefined) {
      throw new Error(`no Argo CD sync wave for kind ${child.kind} (${child.node.path}); add it to SYNC_WAVES`);
    }
    child.metadata.addAnnotation(SYNC_WAVE, String(wave));
    if (child.kind === 'Namespace') child.metadata.addAnnotation(SYNC_OPTIONS, NAMESPACE_SYNC_OPTIONS);
  }
}

/** A repository URL Argo CD can clone: https://, ssh:// or scp-like git@host:path. */
function requireRepoUrl(field: string, value: string): string {
  if (typeof value !== 'string' || !/^(https?:\/\/[^\s/]+\/\S+|ssh:\/\/\S+|[\w.-]+@[\w.-]+:\S+)$/.test(value)) {
    throw new ValidationError(field, value, 'must be the Git repository holding dist/, as https://host/org/repo.git, ssh://… or git@host:org/repo.git');
  }
  return value;
}

function requireNonEmpty(field: string, value: string): string {
  if (typeof value !== 'string' || value.trim() === '' || /\s/.test(value)) {
    throw new ValidationError(field, value, 'must be a non-empty string without spaces');
  }
  return value;
}

/** Settings with their defaults, validated; `field` prefixes every error (e.g. `argocd`). */
export function resolveArgoCd(environment: string, settings: ArgoCdSettings, field = 'argocd'): Required<ArgoCdSettings> {
  requireKnownKeys(field, settings, SETTINGS_KEYS);
  const server = settings.destinationServer ?? 'https://kubernetes.default.svc';
  if (!/^https:\/\/\S+$/.test(server)) {
    throw new ValidationError(`${field}.destinationServer`, server, 'must be the https:// URL of the cluster\'s API server as registered in Argo CD');
  }
  const path = settings.path ?? `dist/overlays/${environment}`;
  if (typeof path !== 'string' || path === '' || path.startsWith('/') || path.split('/').includes('..')) {
    throw new ValidationError(`${field}.path`, path, 'must be a relative directory inside the repository, such as dist/overlays/staging');
  }
  if (settings.automated !== undefined && typeof settings.automated !== 'boolean') {
    throw new ValidationError(`${field}.automated`, settings.automated, 'must be true or false');
  }
  return {
    repoURL: requireRepoUrl(`${field}.repoURL`, settings.repoURL),
    targetRevision: requireNonEmpty(`${field}.targetRevision`, settings.targetRevision ?? 'main'),
    path,
    project: requireDnsSubdomain(`${field}.project`, settings.project ?? 'default'),
    destinationServer: server,
    applicationNamespace: requireDnsLabel(`${field}.applicationNamespace`, settings.applicationNamespace ?? 'argocd'),
    automated: settings.automated ?? true,
  };
}
