import { Duration, Size, SizeRoundingBehavior } from 'cdk8s';
import { Cpu } from 'cdk8s-plus-28';

/**
 * Validation helpers shared by the constructs. Every error names the field, the value
 * received and the fix, because the person reading it is editing a profile, not this code.
 *
 * Value types (`Duration`, `Size`, `Cpu`) are recognised by their shape, not with
 * `instanceof`: an app that has its own copy of cdk8s passes objects of that copy's
 * classes, which `instanceof` against ours would refuse.
 */

export const ValidationError = class ValidationError extends Error {
  constructor(field: string, value: unknown, fix: string) {
    super(`${field} ${fix}, got ${describeValue(value)}`);
    this.name = 'ValidationError';
  }
};
/**
 * The error every refused prop throws. A value and a type rather than a class
 * declaration, because jsii cannot describe a class that extends Error.
 */
export type ValidationError = InstanceType<typeof ValidationError>;

/** A cdk8s `Duration` from any copy of cdk8s. */
export function isDuration(value: unknown): value is Duration {
  return typeof value === 'object' && value !== null && typeof (value as Duration).toMilliseconds === 'function';
}

/** A cdk8s `Size` from any copy of cdk8s. */
export function isSize(value: unknown): value is Size {
  return typeof value === 'object' && value !== null && typeof (value as Size).toKibibytes === 'function';
}

/** A cdk8s-plus `Cpu` from any copy of cdk8s-plus. */
export function isCpu(value: unknown): value is Cpu {
  return typeof value === 'object' && value !== null && typeof (value as Cpu).amount === 'string';
}

function describeValue(value: unknown): string {
  try {
    if (isSize(value)) return sizeToQuantity(value, { lenient: true });
    if (isDuration(value)) return `${value.toMilliseconds({ integral: false })}ms`;
    if (isCpu(value)) return value.amount;
  } catch { /* a broken value object: show it as JSON below */ }
  return JSON.stringify(value) ?? String(value);
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** RFC 1123 label: namespaces, Service and StatefulSet names. */
export function requireDnsLabel(field: string, value: string, maxLength = 63): string {
  if (typeof value !== 'string' || value.length > maxLength || !DNS_LABEL.test(value)) {
    throw new ValidationError(field, value,
      `must be a DNS label of at most ${maxLength} characters (lower-case letters, digits and '-', starting and ending with a letter or digit)`);
  }
  return value;
}

/** RFC 1123 subdomain: Secret and StorageClass names, the cluster domain. */
export function requireDnsSubdomain(field: string, value: string): string {
  if (typeof value !== 'string' || value.length > 253 || !DNS_SUBDOMAIN.test(value)) {
    throw new ValidationError(field, value,
      'must be a DNS subdomain (lower-case letters, digits, \'-\' and \'.\', at most 253 characters)');
  }
  return value;
}

/**
 * A value written into redis.conf or sentinel.conf. Anything but a plain token could end
 * the directive and start another one (a newline, a quote, a space), so only a safe
 * character set passes.
 */
export function requireConfToken(field: string, value: string): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9._-]{1,128}$/.test(value)) {
    throw new ValidationError(field, value,
      'must be 1-128 characters of letters, digits, \'.\', \'_\' or \'-\' (no spaces, quotes or newlines: it is written into Redis configuration)');
  }
  return value;
}

const IMAGE_NAME = /^[a-z0-9][a-z0-9._\-/:]*$/; // [registry[:port]/]repository: lower-case only
const IMAGE_TAG = /^[A-Za-z0-9_.-]*$/; // tags may have capitals ("7.2.7-Bookworm")
const IMAGE_DIGEST = /@sha256:[a-f0-9]{64}$/;
/** A tag that states a version: "6.2.14", "7-alpine", "v7.2". */
const VERSION_TAG = /^v?(\d+)(?:\.(\d+))?(?:[.-]|$)/;

/** Oldest Redis the scripts support: they use Redis 7 commands and configuration (hostnames in Sentinel, `bind * -::*`). */
export const MIN_REDIS_MAJOR_VERSION = 7;

/**
 * An image reference with an explicit, pinned tag (or digest) that is not `latest`, and
 * whose tag, when it states a version, is Redis 7.0 or newer.
 */
/** Whether an image reference ends in a `@sha256:` digest. */
export function imageHasDigest(image: string): boolean {
  return IMAGE_DIGEST.test(image);
}

export function requirePinnedImage(field: string, value: string, example = 'redis:7.2.7-bookworm', isRedis = true): string {
  const text = typeof value === 'string' ? value : '';
  const digest = IMAGE_DIGEST.exec(text)?.[0] ?? '';
  const name = text.slice(0, text.length - digest.length);
  // The tag follows the first ':' after the last '/' (an earlier ':' is a registry port).
  const colon = name.indexOf(':', name.lastIndexOf('/') + 1);
  const repository = colon < 0 ? name : name.slice(0, colon);
  const tag = colon < 0 ? undefined : name.slice(colon + 1);
  if (!IMAGE_NAME.test(repository) || (tag !== undefined && !IMAGE_TAG.test(tag))) {
    throw new ValidationError(field, value, `must be an image reference like "${example}"`);
  }
  const version = tag === undefined ? null : VERSION_TAG.exec(tag);
  if (isRedis && version && Number(version[1]) < MIN_REDIS_MAJOR_VERSION) {
    throw new ValidationError(field, value,
      `must be Redis ${MIN_REDIS_MAJOR_VERSION}.0 or newer (the pod scripts and the rendered configuration use Redis 7 features); use for example "redis:7.2.7-bookworm"`);
  }
  if (digest) return value;
  if (tag === undefined) {
    throw new ValidationError(field, value, `must carry a pinned tag (for example "${example}"); an untagged image means :latest`);
  }
  if (tag === '' || tag === 'latest') {
    throw new ValidationError(field, value, `must be pinned to a version tag, not "latest" (for example "${example}")`);
  }
  return value;
}

export function requireIntegerInRange(field: string, value: number, min: number, max: number, fix?: string): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(field, value, fix ?? `must be an integer from ${min} to ${max}`);
  }
  return value;
}

export function requireBoolean(field: string, value: boolean): boolean {
  if (typeof value !== 'boolean') throw new ValidationError(field, value, 'must be true or false');
  return value;
}

/** Size in bytes, or a clear error for zero, negative, fractional or NaN sizes. */
export function sizeInBytes(field: string, value: Size): number {
  if (!isSize(value)) {
    throw new ValidationError(field, value, 'must be a Size (for example Size.gibibytes(8))');
  }
  let kib: number;
  try {
    kib = value.toKibibytes();
  } catch {
    throw new ValidationError(field, value, 'must be a whole number of KiB (for example Size.mebibytes(512))');
  }
  if (!Number.isFinite(kib) || !Number.isInteger(kib) || kib <= 0) {
    throw new ValidationError(field, value, 'must be a positive whole size (for example Size.gibibytes(8))');
  }
  return kib * 1024;
}

/**
 * Kubernetes quantity for a Size: the largest binary unit that represents it exactly.
 * Lenient (for error messages): a size that is not a whole number of KiB (fractional,
 * NaN) is shown as its exact KiB amount, such as "0.1024Ki" or "NaNKi", instead of throwing.
 */
export function sizeToQuantity(value: Size, opts: { lenient?: boolean } = {}): string {
  const kib = value.toKibibytes({ rounding: opts.lenient ? SizeRoundingBehavior.NONE : SizeRoundingBehavior.FAIL });
  if (!Number.isFinite(kib)) return `${kib}Ki`;
  for (const [unit, factor] of [['Ti', 1024 ** 3], ['Gi', 1024 ** 2], ['Mi', 1024]] as const) {
    if (kib !== 0 && kib % factor === 0) return `${kib / factor}${unit}`;
  }
  return `${kib}Ki`;
}

/**
 * Largest duration Redis and Sentinel accept: they parse millisecond settings
 * (`down-after-milliseconds`, `failover-timeout`) as 32-bit signed integers.
 */
export const MAX_DURATION_MILLIS = 2 ** 31 - 1;

/** Whole milliseconds of a Duration, from 0 to MAX_DURATION_MILLIS (about 24.8 days). */
export function durationMillis(field: string, value: Duration): number {
  if (!isDuration(value)) {
    throw new ValidationError(field, value, 'must be a Duration (for example Duration.seconds(5))');
  }
  // Not integral: cdk8s would throw its own error for 1.5ms, one that names no field.
  let ms: number;
  try {
    ms = value.toMilliseconds({ integral: false });
  } catch {
    ms = NaN;
  }
  if (!Number.isFinite(ms) || !Number.isInteger(ms) || ms < 0) {
    throw new ValidationError(field, value, 'must be a whole, non-negative number of milliseconds');
  }
  if (ms > MAX_DURATION_MILLIS) {
    throw new ValidationError(field, value,
      `must be at most ${MAX_DURATION_MILLIS}ms (about 24 days; Redis reads milliseconds as a 32-bit number); choose a shorter duration`);
  }
  return ms;
}

/** CPU amount in millicores, from the Cpu value type's string form ("250m", "1.5"). */
export function cpuMillis(field: string, value: Cpu): number {
  const amount = isCpu(value) ? value.amount : undefined;
  const m = typeof amount === 'string' ? /^(\d+(?:\.\d+)?)(m?)$/.exec(amount) : null;
  const millis = m ? (m[2] === 'm' ? Number(m[1]) : Number(m[1]) * 1000) : NaN;
  if (!Number.isFinite(millis) || millis <= 0) {
    throw new ValidationError(field, amount ?? value, 'must be a positive CPU amount (for example Cpu.millis(250))');
  }
  return millis;
}

const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

function requireQualifiedKey(field: string, key: string, what: string): void {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if ((prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) || name.length > 63 || !LABEL_NAME.test(name)) {
    throw new ValidationError(`${field} key`, key, `must be a Kubernetes ${what} key ([prefix/]name, name at most 63 characters of letters, digits, '-', '_', '.')`);
  }
}

function requireStringMap(field: string, value: { [key: string]: string }): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError(field, value, 'must be an object of string keys and string values');
  }
}

/**
 * Labels a user adds. `reserved` are the keys this library sets itself (and selects on):
 * a user value for one of them would end up on some objects but not in the selectors.
 */
export function requireLabels(field: string, labels: { [key: string]: string }, reserved: readonly string[] = []): { [key: string]: string } {
  requireStringMap(field, labels);
  for (const [key, value] of Object.entries(labels)) {
    requireQualifiedKey(field, key, 'label');
    if (reserved.includes(key)) {
      throw new ValidationError(`${field} key`, key,
        `is set by redis-sentinel-ha itself (${reserved.join(', ')}) and used in selectors; use another key, or the name prop to tell instances apart`);
    }
    if (typeof value !== 'string' || value.length > 63 || !LABEL_VALUE.test(value)) {
      throw new ValidationError(`${field}["${key}"]`, value, 'must be a Kubernetes label value (at most 63 characters of letters, digits, \'-\', \'_\', \'.\')');
    }
  }
  return labels;
}

/** Annotations a user adds; `reserved` keys are set by this library. */
export function requireAnnotations(field: string, annotations: { [key: string]: string }, reserved: readonly string[] = []): { [key: string]: string } {
  requireStringMap(field, annotations);
  for (const [key, value] of Object.entries(annotations)) {
    requireQualifiedKey(field, key, 'annotation');
    if (reserved.includes(key)) {
      throw new ValidationError(`${field} key`, key, 'is set by redis-sentinel-ha itself; use another key');
    }
    if (typeof value !== 'string') {
      throw new ValidationError(`${field}["${key}"]`, value, 'must be a string');
    }
  }
  return annotations;
}

/** A list of strings, each checked by `check` under `field[i]`. */
export function requireStringList(field: string, value: string[], check: (field: string, item: string) => unknown): string[] {
  if (!Array.isArray(value)) throw new ValidationError(field, value, 'must be a list of strings');
  value.forEach((item, i) => check(`${field}[${i}]`, item));
  return value;
}

/** The `allowed` member (an enum's values) that `value` is, or an error listing them. */
export function requireOneOf<T extends string>(field: string, value: T, allowed: readonly T[]): T {
  if (!allowed.includes(value)) {
    throw new ValidationError(field, value, `must be one of ${allowed.join(', ')}`);
  }
  return value;
}

/**
 * Refuse keys a props object does not know: a misspelled prop (`replica: 5`) would
 * otherwise be silently ignored, because bundlers do not type-check.
 */
export function requireKnownKeys(field: string, value: object | undefined, known: readonly string[]): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError(field, value, 'must be an object');
  }
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const near = closest(key, known);
    const where = field ? `${field}.${key}` : key;
    throw new ValidationError(where, (value as { [k: string]: unknown })[key],
      `is not a known prop${near ? ` (did you mean ${near}?)` : ''}; known props: ${known.join(', ')}`);
  }
}

/** The known name closest to a misspelled one, if it is close enough to be a typo. */
function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) { best = candidate; bestDistance = d; }
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}
