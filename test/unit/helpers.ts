// Shared equipment of the unit tests: running the real synth command, reading output
// trees, rendering with kustomize, and checking objects against the Kubernetes API.
import { afterAll, beforeAll } from 'vitest';
import { spawnSync, SpawnSyncReturns } from 'child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'fs';
import { tmpdir } from 'os';
import { join, relative, resolve } from 'path';
import { k8s } from 'cdk8s-plus-28';
import { parseAllDocuments } from 'yaml';
import * as modelsCoreV1 from 'kubernetes-models/v1';
import * as modelsAppsV1 from 'kubernetes-models/apps/v1';
import * as modelsPolicyV1 from 'kubernetes-models/policy/v1';
import * as modelsNetworkingV1 from 'kubernetes-models/networking.k8s.io/v1';
import * as modelsRbacV1 from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import * as modelsBatchV1 from 'kubernetes-models/batch/v1';
import type { ManifestObject } from '../../lib/internal';
import { objectKey } from '../../lib/internal';
import { crdSchemaErrors } from './crd-schema';

export const ROOT = resolve(__dirname, '../..');

/** Bundle main.ts into build/main.js, as `npm run synth` does (build/ is not committed). */
export function buildSynthCommand(): void {
  const result = spawnSync(process.execPath, ['bin/build.mjs'], { cwd: ROOT, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`node bin/build.mjs failed:\n${result.stderr}${result.stdout}`);
}

/** Run the synth command the way users do: `node build/main.js ARGS`. */
export function runSynth(args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, ['build/main.js', ...args], { cwd: ROOT, encoding: 'utf8' });
}

/** Run the synth command and fail loudly (with its output) unless it succeeds. */
export function synthInto(outdir: string, ...args: string[]): SpawnSyncReturns<string> {
  const result = runSynth(['--outdir', outdir, ...args]);
  if (result.status !== 0) throw new Error(`synth exited ${result.status}:\n${result.stderr}${result.stdout}`);
  return result;
}

/** Temporary directories, removed by `cleanup()` (call it from afterAll). */
export class TempDirs {
  private readonly dirs: string[] = [];

  public make(label = 'out'): string {
    const dir = mkdtempSync(join(tmpdir(), `redis-ha-${label}-`));
    this.dirs.push(dir);
    return dir;
  }

  public cleanup(): void {
    for (const dir of this.dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * For a test file that reads synthesized output: builds the synth command and synthesizes
 * into a temporary directory once before its tests; every directory of `temp` is removed
 * after them. `outdir()` is that output directory.
 */
export function useSynthOutput(label: string): { temp: TempDirs; outdir: () => string } {
  const temp = new TempDirs();
  let dir = '';
  beforeAll(() => {
    buildSynthCommand();
    dir = temp.make(label);
    synthInto(dir);
  });
  afterAll(() => temp.cleanup());
  return { temp, outdir: () => dir };
}

/** Every file below `dir`, as relative path -> content. Missing directory: empty map. */
export function readTree(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (current: string) => {
    for (const entry of readdirSync(current).sort()) {
      const path = join(current, entry);
      if (statSync(path).isDirectory()) walk(path);
      else files.set(relative(dir, path), readFileSync(path, 'utf8'));
    }
  };
  try { walk(dir); } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; }
  return files;
}

/** Entries of a directory (sorted), or [] if it does not exist. */
export function listDir(dir: string): string[] {
  try { return readdirSync(dir).sort(); } catch { return []; }
}

/** `kubectl kustomize DIR`, parsed into objects. */
export function kustomize(dir: string): ManifestObject[] {
  const result = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.error) throw new Error(`kubectl could not be run: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`kubectl kustomize ${dir} failed:\n${result.stderr}`);
  return parseAllDocuments(result.stdout).map((doc) => {
    if (doc.errors.length) throw new Error(`kustomize output is not valid YAML: ${doc.errors[0].message}`);
    return doc.toJS() as ManifestObject;
  }).filter((o) => o !== null);
}

export { objectKey };

export function byKey(objects: ManifestObject[]): Map<string, ManifestObject> {
  const map = new Map<string, ManifestObject>();
  for (const o of objects) {
    if (map.has(objectKey(o))) throw new Error(`duplicate object ${objectKey(o)}`);
    map.set(objectKey(o), o);
  }
  return map;
}

/** The one object of this kind and name; throws (listing what exists) if absent. */
export function find(objects: ManifestObject[], kind: string, name: string): any {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind}/${name} among ${objects.map(objectKey).join(', ')}`);
  return o;
}

/** Kubernetes memory/storage quantity ("256Mi", "2Gi", "1536Ki", "1G") in bytes. */
export function quantityBytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$/.exec(q);
  if (!m) throw new Error(`not a quantity: ${q}`);
  const factors: Record<string, number> = {
    '': 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, Pi: 1024 ** 5,
    k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15,
  };
  return Number(m[1]) * factors[m[2] ?? ''];
}

// ---------------------------------------------------------------------------------
// Schema validation.
//
// Two checks, because no single offline schema covers Kubernetes 1.28 exactly:
//  1. kubernetes-models (4.5.x, generated from the Kubernetes 1.33.0 OpenAPI spec; its
//     4.3.x line is 1.27.1 and there is no 1.28 release) validates types, required
//     fields and enums with ajv. Its schemas allow unknown properties, so on its own it
//     would accept a typo or a field newer than the cluster.
//  2. The field set of Kubernetes 1.28.0 taken from cdk8s-plus-28's generated `k8s`
//     bindings (`cdk8s import k8s@1.28.0`): every field of every object must exist in
//     1.28, so a 1.29+ field (which a 1.28 API server drops or rejects) or a typo fails.
// ---------------------------------------------------------------------------------

interface ModelClass { new (data: unknown): { validate(): void }; apiVersion?: string; kind?: string }

const MODELS = new Map<string, ModelClass>();
for (const group of [modelsCoreV1, modelsAppsV1, modelsPolicyV1, modelsNetworkingV1, modelsRbacV1, modelsBatchV1]) {
  for (const value of Object.values(group) as unknown[]) {
    const model = value as ModelClass;
    if (typeof model === 'function' && typeof model.apiVersion === 'string' && typeof model.kind === 'string') {
      MODELS.set(`${model.apiVersion}/${model.kind}`, model);
    }
  }
}

/** Errors of `o` against the kubernetes-models JSON schema of its kind ([] when valid). */
export function openApiSchemaErrors(o: ManifestObject): string[] {
  const model = MODELS.get(`${o.apiVersion}/${o.kind}`);
  if (!model) return [`${objectKey(o)}: no schema for ${o.apiVersion} ${o.kind}; add its kubernetes-models group to test/unit/helpers.ts`];
  try {
    new model(o).validate();
    return [];
  } catch (err) {
    return [`${objectKey(o)}: ${(err as Error).message}`];
  }
}

type FieldType = string | null; // name of a generated toJson_ type, or null for scalars and opaque values
interface TypeFields { fields: Map<string, FieldType>; maps: Map<string, FieldType> }

let fieldsOf128: Map<string, TypeFields> | undefined;

/** Parse the generated toJson_<Type> functions of k8s@1.28.0: wire field names and their types. */
function kubernetes128Fields(): Map<string, TypeFields> {
  if (fieldsOf128) return fieldsOf128;
  const source = readFileSync(join(ROOT, 'node_modules/cdk8s-plus-28/lib/imports/k8s.js'), 'utf8');
  const types = new Map<string, TypeFields>();
  const fn = /^function toJson_(\w+)\(obj\) \{\n([\s\S]*?)\n\}\n/gm;
  for (let m = fn.exec(source); m; m = fn.exec(source)) {
    const entry: TypeFields = { fields: new Map(), maps: new Map() };
    for (const line of m[2].split('\n')) {
      const field = /^\s+'([^']+)': (.*),$/.exec(line);
      if (!field) continue;
      const [, name, expr] = field;
      const nested = /toJson_(\w+)\(/.exec(expr)?.[1] ?? null;
      if (expr.includes('Object.entries(')) entry.maps.set(name, nested);
      else entry.fields.set(name, nested);
    }
    types.set(m[1], entry);
  }
  if (!types.has('StatefulSetSpec') || !types.get('PodSpec')?.fields.has('containers')) {
    throw new Error('could not read the Kubernetes 1.28 field set from cdk8s-plus-28');
  }
  fieldsOf128 = types;
  return types;
}

const KIND_TO_PROPS = new Map<string, string>();
for (const [className, value] of Object.entries(k8s)) {
  const gvk = (value as { GVK?: { apiVersion: string; kind: string } }).GVK;
  if (gvk) KIND_TO_PROPS.set(`${gvk.apiVersion}/${gvk.kind}`, `${className}Props`);
}

/** Fields of `o` that do not exist in Kubernetes 1.28 ([] when every field exists). */
export function fieldsUnknownToKubernetes128(o: ManifestObject): string[] {
  const types = kubernetes128Fields();
  const props = KIND_TO_PROPS.get(`${o.apiVersion}/${o.kind}`);
  if (!props) return [`${objectKey(o)}: ${o.apiVersion} ${o.kind} is not a Kubernetes 1.28 kind`];
  const errors: string[] = [];
  const walk = (value: unknown, type: FieldType, path: string) => {
    if (type === null || value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) {
      value.forEach((item, i) => walk(item, type, `${path}[${i}]`));
      return;
    }
    const known = types.get(type);
    if (!known) {
      errors.push(`${objectKey(o)}: ${path}: no Kubernetes 1.28 type ${type} to check against`);
      return;
    }
    for (const [key, child] of Object.entries(value)) {
      // apiVersion and kind are set by the object itself, outside the generated props.
      if (type.startsWith('Kube') && (key === 'apiVersion' || key === 'kind')) continue;
      if (known.fields.has(key)) walk(child, known.fields.get(key)!, `${path}.${key}`);
      else if (known.maps.has(key)) {
        for (const [k, v] of Object.entries(child as object)) walk(v, known.maps.get(key)!, `${path}.${key}[${k}]`);
      } else errors.push(`${objectKey(o)}: ${path}.${key} is not a field of ${type.replace(/^Kube(\w+)Props$/, '$1')} in Kubernetes 1.28`);
    }
  };
  walk(o, props, '');
  return errors;
}

/** Both schema checks; [] when the object is valid Kubernetes 1.28. */
export function kubernetes128Errors(o: ManifestObject): string[] {
  // The Prometheus Operator's resources (metrics on): by their CRDs in crds/.
  if (o.apiVersion.startsWith('monitoring.coreos.com/')) return crdSchemaErrors(o);
  return [...openApiSchemaErrors(o), ...fieldsUnknownToKubernetes128(o)];
}
