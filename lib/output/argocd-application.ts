import { App, Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { Application } from '../../imports/argoproj.io';
import { requireDnsLabel } from '../constructs/validation';
import { ArgoCdSettings, resolveArgoCd } from './argocd';

// The Argo CD Application of an environment, typed from the CRD binding in imports/
// (`npx cdk8s import crds/argoproj.io_applications.yaml`). Only main.ts uses it, so the
// library build (lib/index.ts) does not carry the Argo CD types.

/** The Argo CD Application of one environment. */
export class RedisHaApplication extends Construct {
  public readonly application: Application;

  constructor(scope: Construct, id: string, props: { environment: string; namespace: string; settings: ArgoCdSettings }) {
    super(scope, id);
    const s = resolveArgoCd(props.environment, props.settings);
    this.application = new Application(this, 'Application', {
      metadata: {
        name: `redis-${props.environment}`,
        namespace: s.applicationNamespace,
        labels: { 'app.kubernetes.io/part-of': 'redis-sentinel-ha' },
        // Deleting the Application deletes what it deployed (except the protected
        // Namespace), instead of leaving orphans behind.
        finalizers: ['resources-finalizer.argocd.argoproj.io'],
      },
      spec: {
        project: s.project,
        source: { repoUrl: s.repoURL, targetRevision: s.targetRevision, path: s.path },
        destination: { server: s.destinationServer, namespace: props.namespace },
        syncPolicy: {
          ...(s.automated ? { automated: { prune: true, selfHeal: true } } : {}),
          syncOptions: [
            // The overlay has its own Namespace object (labelled for Pod Security).
            'CreateNamespace=false',
            // Deletions happen after everything else is applied and healthy.
            'PruneLast=true',
            // Refuse to take over an object another Application already manages.
            'FailOnSharedResource=true',
          ],
          retry: { limit: 5, backoff: { duration: '10s', factor: 2, maxDuration: '3m' } },
        },
      },
    });
  }
}

/** The Application of an environment as plain JSON. */
export function synthApplication(environment: string, namespace: string, settings: ArgoCdSettings): Record<string, unknown> {
  const chart = new Chart(new App(), `argocd-${requireDnsLabel('environment name', environment)}`);
  try {
    new RedisHaApplication(chart, 'app', { environment, namespace, settings });
  } catch (err) {
    if (err instanceof Error) err.message = `environment "${environment}": ${err.message}`;
    throw err;
  }
  return chart.toJson()[0];
}
