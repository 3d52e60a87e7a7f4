import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'fs';
import { join } from 'path';
import { parse } from 'yaml';
import { Size } from 'cdk8s';
import {
  EnvironmentProfile, ManifestObject, renderBase, renderOverlay, synthBase, synthEnvironment, writeTree,
} from '../../lib/internal';
import { ENVIRONMENTS, findEnvironments, renderDist } from '../../main';
import { byKey, find, kustomize, useSynthOutput } from './helpers';
import { itWith } from '../prerequisites';

const itWithKubectl = itWith('kubectl', 'kubectl 1.27 or later, https://kubernetes.io/docs/tasks/tools/');

const [staging, production] = findEnvironments(['staging', 'production']);
const { temp, outdir } = useSynthOutput('kustomize');

/**
 * What kustomize makes of an environment chart: the chart's objects carry no namespace,
 * the overlay's kustomization sets it on every namespaced object.
 */
function inNamespace(objects: ManifestObject[], namespace: string): ManifestObject[] {
  return objects.map((o) => (o.kind === 'Namespace' ? o : { ...o, metadata: { ...o.metadata, namespace } }));
}

/** What kustomize should render for a profile. */
function expectedOverlay(profile: EnvironmentProfile): ManifestObject[] {
  return inNamespace(synthEnvironment(profile), profile.namespace);
}

/** Same objects, compared as a set keyed by kind/name, each deep-equal. */
function expectSameObjects(rendered: ManifestObject[], expected: ManifestObject[]) {
  const renderedByKey = byKey(rendered);
  const expectedByKey = byKey(expected);
  expect([...renderedByKey.keys()].sort()).toEqual([...expectedByKey.keys()].sort());
  for (const [key, object] of expectedByKey) {
    expect(renderedByKey.get(key), key).toStrictEqual(object);
  }
}

describe('kubectl kustomize renders exactly what the charts synthesize', () => {
  for (const profile of ENVIRONMENTS) {
    itWithKubectl(`the ${profile.name} overlay renders exactly the objects of the ${profile.name} environment chart`, () => {
      expectSameObjects(kustomize(join(outdir(), 'overlays', profile.name)), expectedOverlay(profile));
    });
  }

  itWithKubectl('a hand edit of an overlay patch makes the comparison fail (the check is not vacuous)', () => {
    const dir = temp.make('edited');
    writeTree(dir, renderDist(ENVIRONMENTS), ['']);
    const patch = join(dir, 'overlays/production/patches/statefulset-redis-master.yaml');
    writeFileSync(patch, readFileSync(patch, 'utf8').replace('value: 50Gi', 'value: 49Gi'));
    expect(() => expectSameObjects(kustomize(join(dir, 'overlays/production')), expectedOverlay(production)))
      .toThrow(/StatefulSet\/redis-master/);
  });

  itWithKubectl('the base renders on its own, exactly the base chart, with no namespace', () => {
    const rendered = kustomize(join(outdir(), 'base'));
    expectSameObjects(rendered, synthBase());
    expect(rendered.filter((o) => o.metadata.namespace !== undefined)).toEqual([]);
  });
});

describe('each environment lives in its own namespace', () => {
  it('no two environments share a name or a namespace', () => {
    const names = ENVIRONMENTS.map((p) => p.name);
    const namespaces = ENVIRONMENTS.map((p) => p.namespace);
    expect(new Set(names).size).toBe(names.length);
    expect(new Set(namespaces).size).toBe(namespaces.length);
  });

  for (const profile of ENVIRONMENTS) {
    itWithKubectl(`the ${profile.name} overlay sets namespace ${profile.namespace}, creates it, and puts every object in it`, () => {
      const kustomization = parse(readFileSync(join(outdir(), 'overlays', profile.name, 'kustomization.yaml'), 'utf8'));
      expect(kustomization.namespace).toBe(profile.namespace);
      expect(kustomization.resources[0]).toBe('../../base');

      const rendered = kustomize(join(outdir(), 'overlays', profile.name));
      const namespace = find(rendered, 'Namespace', profile.namespace);
      expect(namespace.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
      for (const o of rendered.filter((x) => x.kind !== 'Namespace')) {
        expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(profile.namespace);
      }
    });
  }
});

describe('adding an environment needs nothing but its profile', () => {
  const qa: EnvironmentProfile = {
    name: 'qa',
    namespace: 'redis-qa',
    redis: { replicas: 3, sentinels: 5, storageSize: Size.gibibytes(16), labels: { team: 'cache' } },
  };

  itWithKubectl('a third profile gets its own overlay that kustomize renders into exactly its chart', () => {
    const dir = temp.make('third-env');
    const environments = findEnvironments(['staging', 'qa'], [...ENVIRONMENTS, qa]);
    writeTree(dir, renderDist(environments), ['']);

    const rendered = kustomize(join(dir, 'overlays', 'qa'));
    expectSameObjects(rendered, expectedOverlay(qa));
    expect(find(rendered, 'StatefulSet', 'redis-slave').spec.replicas).toBe(3);
    expect(find(rendered, 'Deployment', 'redis-sentinel').spec.replicas).toBe(5);
    expect(find(rendered, 'StatefulSet', 'redis-slave').spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe('16Gi');
    expect(find(rendered, 'ConfigMap', 'redis-sentinel-config').data['sentinel.conf']).toContain('sentinel monitor mymaster redis-master-0.redis-master 6379 3\n');
    expect(rendered.every((o) => o.kind === 'Namespace' || o.metadata.namespace === 'redis-qa')).toBe(true);
    // The other environment written alongside is unaffected.
    expectSameObjects(kustomize(join(dir, 'overlays', 'staging')), expectedOverlay(staging));
  });

  itWithKubectl('renderOverlay on its own produces a kustomization for the new environment', () => {
    const base = synthBase();
    const overlay = renderOverlay(qa.name, qa.namespace, base, synthEnvironment(qa));
    const kustomization = parse(overlay.get('overlays/qa/kustomization.yaml')!);
    expect(kustomization).toMatchObject({ kind: 'Kustomization', namespace: 'redis-qa', resources: ['../../base', 'namespace-redis-qa.yaml'] });
    expect([...overlay.keys()].every((path) => path.startsWith('overlays/qa/'))).toBe(true);

    const dir = temp.make('overlay-only');
    writeTree(dir, new Map([...renderBase(base), ...overlay]), ['']);
    expectSameObjects(kustomize(join(dir, 'overlays', 'qa')), expectedOverlay(qa));
  });

  it('an environment without differences from the base carries only its namespace', () => {
    const plain: EnvironmentProfile = { name: 'plain', namespace: 'redis-plain', redis: {} };
    const overlay = renderOverlay(plain.name, plain.namespace, synthBase(), synthEnvironment(plain));
    expect([...overlay.keys()].sort()).toEqual(['overlays/plain/kustomization.yaml', 'overlays/plain/namespace-redis-plain.yaml']);
  });
});
