import { describe, expect, it } from 'vitest';
import { join } from 'path';
import { ManifestObject, synthBase, synthEnvironment } from '../../lib/internal';
import { ENVIRONMENTS, findEnvironments } from '../../main';
import {
  fieldsUnknownToKubernetes128, find, kubernetes128Errors, kustomize, openApiSchemaErrors, useSynthOutput,
} from './helpers';
import { itWith } from '../prerequisites';

const itWithKubectl = itWith('kubectl', 'kubectl 1.27 or later, https://kubernetes.io/docs/tasks/tools/');

const { outdir } = useSynthOutput('schema');

function allErrors(objects: ManifestObject[]): string[] {
  return objects.flatMap(kubernetes128Errors);
}

describe('every synthesized object is valid Kubernetes 1.28', () => {
  it('the environment-neutral base', () => {
    const objects = synthBase();
    expect(objects.length).toBeGreaterThan(5);
    expect(allErrors(objects)).toEqual([]);
  });

  for (const profile of ENVIRONMENTS) {
    it(`the ${profile.name} environment chart`, () => {
      expect(allErrors(synthEnvironment(profile))).toEqual([]);
    });

    itWithKubectl(`the ${profile.name} overlay as kubectl kustomize renders it`, () => {
      const rendered = kustomize(join(outdir(), 'overlays', profile.name));
      expect(rendered.length).toBe(synthEnvironment(profile).length);
      expect(allErrors(rendered)).toEqual([]);
    });
  }

  itWithKubectl('the base as kubectl kustomize renders it', () => {
    const rendered = kustomize(join(outdir(), 'base'));
    expect(rendered.length).toBe(synthBase().length);
    expect(allErrors(rendered)).toEqual([]);
  });
});

describe('the schema checks reject invalid objects (so the checks above cannot pass vacuously)', () => {
  const statefulSet = () => structuredClone(find(synthEnvironment(findEnvironments(['staging'])[0]), 'StatefulSet', 'redis-master'));

  it('a replica count given as a string fails the OpenAPI schema', () => {
    const o = statefulSet();
    o.spec.replicas = '1';
    expect(openApiSchemaErrors(o).join('\n')).toMatch(/StatefulSet\/redis-master: .*spec\/replicas must be integer/);
  });

  it('a container port given as a name where a number is required fails the OpenAPI schema', () => {
    const o = statefulSet();
    o.spec.template.spec.containers[0].ports[0].containerPort = 'redis';
    expect(openApiSchemaErrors(o).join('\n')).toMatch(/containerPort must be integer/);
  });

  it('a pod template without containers fails the OpenAPI schema', () => {
    const o = statefulSet();
    delete o.spec.template.spec.containers;
    expect(openApiSchemaErrors(o).join('\n')).toMatch(/spec\/template\/spec must have required property containers/);
  });

  it('an unknown kind has no schema and fails', () => {
    const o = { ...statefulSet(), apiVersion: 'apps/v1', kind: 'StatefulSets' };
    expect(kubernetes128Errors(o).join('\n')).toMatch(/no schema for apps\/v1 StatefulSets/);
  });

  it('a misspelt field fails the Kubernetes 1.28 field check', () => {
    const o = statefulSet();
    o.spec.replica = 1;
    expect(fieldsUnknownToKubernetes128(o)).toEqual(['StatefulSet/redis-master: .spec.replica is not a field of StatefulSetSpec in Kubernetes 1.28']);
  });

  it('a field added after 1.28 (preStop sleep, 1.29) passes the 1.33 OpenAPI schema but fails the 1.28 field check', () => {
    const o = statefulSet();
    o.spec.template.spec.containers[0].lifecycle.preStop = { sleep: { seconds: 5 } };
    expect(openApiSchemaErrors(o)).toEqual([]);
    expect(fieldsUnknownToKubernetes128(o).join('\n'))
      .toMatch(/\.spec\.template\.spec\.containers\[0\]\.lifecycle\.preStop\.sleep is not a field of LifecycleHandler in Kubernetes 1.28/);
  });

  it('misspelt fields deep inside maps of objects and arrays are found', () => {
    const o = statefulSet();
    o.spec.volumeClaimTemplates[0].spec.resources.request = { storage: '1Gi' };
    o.metadata.labelz = {};
    expect(fieldsUnknownToKubernetes128(o)).toEqual([
      'StatefulSet/redis-master: .metadata.labelz is not a field of ObjectMeta in Kubernetes 1.28',
      'StatefulSet/redis-master: .spec.volumeClaimTemplates[0].spec.resources.request is not a field of ResourceRequirements in Kubernetes 1.28',
    ]);
  });
});
