import { existsSync, readFileSync } from 'fs';
import { join } from 'path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ManifestObject, synthBase, synthEnvironment, ValidationError } from '../../lib/internal';
import { NAMESPACE_SYNC_OPTIONS, resolveArgoCd } from '../../lib/output/argocd';
import { synthApplication } from '../../lib/output/argocd-application';
import { ENVIRONMENTS, renderDist } from '../../main';
import { crdSchemaErrors } from './crd-schema';

const ROOT = join(__dirname, '..', '..');
const wave = (o: ManifestObject) => Number((o.metadata.annotations as Record<string, string> | undefined)?.['argocd.argoproj.io/sync-wave']);

describe('Argo CD Applications (dist/argocd/<env>/application.yaml)', () => {
  const tree = renderDist(ENVIRONMENTS);

  for (const profile of ENVIRONMENTS) {
    describe(profile.name, () => {
      const app = parse(tree.get(`argocd/${profile.name}/application.yaml`) ?? 'null');

      it('is a valid Application by the Argo CD CRD in crds/', () => {
        expect(app?.kind).toBe('Application');
        expect(crdSchemaErrors(app)).toEqual([]);
      });

      it('points at this environment\'s overlay, which the repository has, and deploys into its namespace', () => {
        expect(app.spec.source).toMatchObject({ repoURL: profile.argocd!.repoURL, path: `dist/overlays/${profile.name}` });
        expect(existsSync(join(ROOT, app.spec.source.path, 'kustomization.yaml'))).toBe(true);
        const kustomization = parse(readFileSync(join(ROOT, app.spec.source.path, 'kustomization.yaml'), 'utf8'));
        expect(app.spec.destination.namespace).toBe(kustomization.namespace);
        expect(app.spec.destination.namespace).toBe(profile.namespace);
      });

      it('does not create the namespace itself (the overlay has it, with its Pod Security label) and prunes last', () => {
        expect(app.spec.syncPolicy.syncOptions).toEqual(expect.arrayContaining(['CreateNamespace=false', 'PruneLast=true']));
        const ns = synthEnvironment(profile).find((o) => o.kind === 'Namespace')!;
        expect(ns.metadata.name).toBe(profile.namespace);
      });
    });
  }

  it('the Namespace (it holds the volumes) is protected from pruning and from deletion with the Application', () => {
    for (const profile of ENVIRONMENTS) {
      const ns = synthEnvironment(profile).find((o) => o.kind === 'Namespace')!;
      const options = String((ns.metadata.annotations as Record<string, string>)['argocd.argoproj.io/sync-options']).split(',');
      expect(options).toEqual(expect.arrayContaining(['Prune=false', 'Delete=false']));
      expect(NAMESPACE_SYNC_OPTIONS.split(',')).toEqual(options);
    }
  });

  it('sync waves: the Namespace first, then every ConfigMap, ServiceAccount, NetworkPolicy, Service and PDB, the workloads, the Prometheus Operator\'s objects last', () => {
    for (const profile of ENVIRONMENTS) {
      const objects = synthEnvironment(profile);
      for (const o of objects) expect(Number.isInteger(wave(o)), `${o.kind}/${o.metadata.name} has a sync wave`).toBe(true);
      const ns = objects.filter((o) => o.kind === 'Namespace');
      const workloads = objects.filter((o) => o.kind === 'StatefulSet' || o.kind === 'Deployment');
      // PodMonitor and PrometheusRule (metrics on): after the workloads, which never wait on the CRDs.
      const monitoring = objects.filter((o) => o.apiVersion.startsWith('monitoring.coreos.com/'));
      expect(monitoring.length).toBe(profile.redis.metrics ? 2 : 0);
      for (const o of monitoring) for (const w of workloads) expect(wave(o)).toBeGreaterThan(wave(w));
      const rest = objects.filter((o) => !ns.includes(o) && !workloads.includes(o) && !monitoring.includes(o));
      expect(workloads.length).toBe(4);
      for (const o of rest) {
        expect(wave(o)).toBeGreaterThan(wave(ns[0]));
        for (const w of workloads) expect(wave(o), `${o.kind}/${o.metadata.name} before ${w.metadata.name}`).toBeLessThan(wave(w));
      }
    }
    // The base carries the same waves, so the overlays do not patch them.
    for (const o of synthBase()) expect(Number.isInteger(wave(o))).toBe(true);
  });

  it('an environment without argocd settings gets no Application', () => {
    const [staging] = ENVIRONMENTS;
    const tree2 = renderDist([{ ...staging, argocd: undefined }]);
    expect([...tree2.keys()].filter((k) => k.startsWith('argocd/'))).toEqual([]);
  });

  it('profile settings reach the Application: revision, project, server, namespace, manual sync', () => {
    const app = synthApplication('qa', 'redis-qa', {
      repoURL: 'git@git.example.com:ops/gitops.git', targetRevision: 'v1.2.3', project: 'data', destinationServer: 'https://10.0.0.1:6443',
      applicationNamespace: 'gitops', automated: false, path: 'clusters/qa/redis',
    }) as any;
    expect(crdSchemaErrors(app)).toEqual([]);
    expect(app.metadata).toMatchObject({ name: 'redis-qa', namespace: 'gitops' });
    expect(app.spec).toMatchObject({ project: 'data', destination: { server: 'https://10.0.0.1:6443', namespace: 'redis-qa' } });
    expect(app.spec.source).toEqual({ repoURL: 'git@git.example.com:ops/gitops.git', targetRevision: 'v1.2.3', path: 'clusters/qa/redis' });
    expect(app.spec.syncPolicy.automated).toBeUndefined();
  });

  it('the CRD check is not vacuous: a misspelt or mistyped field fails it', () => {
    const app = synthApplication('qa', 'redis-qa', { repoURL: 'https://git.example.com/x.git' }) as any;
    expect(crdSchemaErrors({ ...app, spec: { ...app.spec, sources: 'x' } }).join('\n')).toMatch(/sources/);
    expect(crdSchemaErrors({ ...app, spec: { ...app.spec, destinaton: {} } }).join('\n')).toMatch(/destinaton is not in the CRD schema/);
    const { project: _p, ...noProject } = app.spec;
    expect(crdSchemaErrors({ ...app, spec: noProject }).join('\n')).toMatch(/project/);
  });

  describe('bad settings are refused with field, value and fix', () => {
    const cases: Array<[string, object, RegExp]> = [
      ['repoURL', { repoURL: 'not a url' }, /argocd\.repoURL.*git@host.*"not a url"/],
      ['path', { repoURL: 'https://h/r.git', path: '../outside' }, /argocd\.path.*relative directory/],
      ['destinationServer', { repoURL: 'https://h/r.git', destinationServer: 'http://plain' }, /argocd\.destinationServer.*https:\/\//],
      ['project', { repoURL: 'https://h/r.git', project: 'Not Valid' }, /argocd\.project/],
      ['unknown key', { repoURL: 'https://h/r.git', revision: 'main' }, /revision/],
    ];
    for (const [name, settings, message] of cases) {
      it(name, () => {
        expect(() => resolveArgoCd('staging', settings as any)).toThrow(ValidationError);
        expect(() => resolveArgoCd('staging', settings as any)).toThrow(message);
      });
    }

    it('through synth, the error names the environment', () => {
      expect(() => synthApplication('staging', 'redis-staging', { repoURL: '' })).toThrow(/environment "staging": argocd\.repoURL/);
    });
  });
});
