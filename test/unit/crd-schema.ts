// Validation of custom resources against the CRDs in crds/ (the same files `cdk8s import`
// reads): ajv checks each version's openAPIV3Schema (types, required fields, enums), and a
// walk over its `properties` reports fields the schema does not have, which an API server
// with structural schemas would silently drop (a typo would go unnoticed otherwise).
import Ajv from 'ajv';
import { readFileSync } from 'fs';
import { join } from 'path';
import { parseAllDocuments } from 'yaml';

const ROOT = join(__dirname, '..', '..');

type Schema = { type?: string; properties?: Record<string, Schema>; items?: Schema; additionalProperties?: Schema | boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean; 'x-kubernetes-int-or-string'?: boolean; [k: string]: unknown };

const schemas = new Map<string, Schema>(); // "<group>/<version>/<kind>" -> schema
for (const file of ['crds/argoproj.io_applications.yaml', 'crds/monitoring.coreos.com.yaml']) {
  for (const doc of parseAllDocuments(readFileSync(join(ROOT, file), 'utf8'))) {
    const crd = doc.toJSON();
    if (crd?.kind !== 'CustomResourceDefinition') continue;
    for (const v of crd.spec.versions) schemas.set(`${crd.spec.group}/${v.name}/${crd.spec.names.kind}`, v.schema.openAPIV3Schema);
  }
}

/** The OpenAPI schema as JSON Schema for ajv: int-or-string becomes a type union. */
function toJsonSchema(s: Schema): Schema {
  if (Array.isArray(s)) return s.map(toJsonSchema) as unknown as Schema;
  if (s === null || typeof s !== 'object') return s;
  const out: Schema = {};
  for (const [k, v] of Object.entries(s)) {
    if (k.startsWith('x-kubernetes-')) continue;
    out[k] = typeof v === 'object' ? toJsonSchema(v as Schema) : v;
  }
  if (s['x-kubernetes-int-or-string']) { delete out.type; out.anyOf = [{ type: 'integer' }, { type: 'string' }]; }
  return out;
}

/**
 * Go's inline case-insensitive flag `(?i)` (the Prometheus Operator's CRDs use it) is not
 * JavaScript: it becomes the `i` flag.
 */
function goRegExp(pattern: string, flags: string): RegExp {
  const insensitive = pattern.startsWith('^(?i)') || pattern.startsWith('(?i)');
  return new RegExp(pattern.replace(/^\^\(\?i\)/, '^').replace(/^\(\?i\)/, ''), insensitive ? `${flags}i` : flags);
}
goRegExp.code = 'new RegExp';

const ajv = new Ajv({ strict: false, allErrors: true, code: { regExp: goRegExp } });

function unknownFields(value: unknown, s: Schema | undefined, path: string, out: string[]): void {
  if (!s || value === null || typeof value !== 'object' || s['x-kubernetes-preserve-unknown-fields']) return;
  if (Array.isArray(value)) { value.forEach((v, i) => unknownFields(v, s.items, `${path}[${i}]`, out)); return; }
  if (s.properties) {
    for (const [k, v] of Object.entries(value)) {
      if (path === '' && (k === 'apiVersion' || k === 'kind' || k === 'metadata')) continue;
      if (!(k in s.properties)) out.push(`${path}.${k} is not in the CRD schema`);
      else unknownFields(v, s.properties[k], `${path}.${k}`, out);
    }
  } else if (typeof s.additionalProperties === 'object') {
    for (const [k, v] of Object.entries(value)) unknownFields(v, s.additionalProperties, `${path}[${k}]`, out);
  }
}

/** Errors of a custom resource against its CRD in crds/ ([] when valid). */
export function crdSchemaErrors(o: { apiVersion: string; kind: string; metadata?: { name?: string } }): string[] {
  const name = `${o.kind}/${o.metadata?.name}`;
  const schema = schemas.get(`${o.apiVersion}/${o.kind}`);
  if (!schema) return [`${name}: no CRD for ${o.apiVersion} ${o.kind} in crds/`];
  const validate = ajv.compile(toJsonSchema(schema));
  const errors = validate(o) ? [] : (validate.errors ?? []).map((e) => `${name}: ${e.instancePath || '/'} ${e.message}`);
  const unknown: string[] = [];
  unknownFields(o, schema, '', unknown);
  return [...errors, ...unknown.map((u) => `${name}: ${u}`)];
}
