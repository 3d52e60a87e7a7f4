import { Duration, Size, SizeRoundingBehavior } from 'cdk8s';
import { Cpu } from 'cdk8s-plus-28';

/**
 * Validation helpers shared by the constructs. Every error names the field, the value
 * received and the fix, because the person reading it is editing a profile, not this code.
 *
 * ValidationError is the error every refused prop throws. It is a class expression bound
 * to a const (plus a type of the same name), not a class declaration, because jsii cannot
 * describe a class that extends `Error`; TypeScript users still write
 * `instanceof ValidationError` and `new ValidationError(...)`.
 */
export const ValidationError = class ValidationError extends Error {
  constructor(field: string, value: unknown, fix: string) {
    super(`${field} ${fix}, got ${describe(value)}`);
    this.name = 'ValidationError';
  }
};
export type ValidationError = InstanceType<typeof ValidationError>;

function describe(value: unknown): string {
  if (value instanceof Size) return sizeToQuantity(value, { lenient: true });
  if (value instanceof Duration) return `${value.toMilliseconds({ integral: false })}ms`;
  if (value instanceof Cpu) return value.amount;
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

/** An image reference with an explicit, pinned tag (or digest) that is not `latest`. */
export function requirePinnedImage(field: string, value: string): string {
  const text = typeof value === 'string' ? value : '';
  const digest = IMAGE_DIGEST.exec(text)?.[0] ?? '';
  const name = text.slice(0, text.length - digest.length);
  // The tag follows the first ':' after the last '/' (an earlier ':' is a registry port).
  const colon = name.indexOf(':', name.lastIndexOf('/') + 1);
  const repository = colon < 0 ? name : name.slice(0, colon);
  const tag = colon < 0 ? undefined : name.slice(colon + 1);
  if (!IMAGE_NAME.test(repository) || (tag !== undefined && !IMAGE_TAG.test(tag))) {
    throw new ValidationError(field, value, 'must be an image reference like "redis:7.2.7-bookworm"');
  }
  if (digest) return value;
  if (tag === undefined) {
    throw new ValidationError(field, value, 'must carry a pinned tag (for example "redis:7.2.7-bookworm"); an untagged image means :latest');
  }
  if (tag === '' || tag === 'latest') {
    throw new ValidationError(field, value, 'must be pinned to a version tag, not "latest" (for example "redis:7.2.7-bookworm")');
  }
  return value;
}

export function requireIntegerInRange(field: string, value: number, min: number, max: number, fix?: string): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(field, value, fix ?? `must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** Size in bytes, or a clear error for zero, negative, fractional or NaN sizes. */
export function sizeInBytes(field: string, value: Size): number {
  if (!(value instanceof Size)) {
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

export function durationMillis(field: string, value: Duration): number {
  if (!(value instanceof Duration)) {
    throw new ValidationError(field, value, 'must be a Duration (for example Duration.seconds(5))');
  }
  // Not integral: cdk8s would throw its own error for 1.5ms, one that names no field.
  const ms = value.toMilliseconds({ integral: false });
  if (!Number.isFinite(ms) || !Number.isInteger(ms) || ms < 0) {
    throw new ValidationError(field, value, 'must be a whole, non-negative number of milliseconds');
  }
  return ms;
}

/** CPU amount in millicores, from the Cpu value type's string form ("250m", "1.5"). */
export function cpuMillis(field: string, value: Cpu): number {
  const amount = value instanceof Cpu ? value.amount : undefined;
  const m = typeof amount === 'string' ? /^(\d+(?:\.\d+)?)(m?)$/.exec(amount) : null;
  const millis = m ? (m[2] === 'm' ? Number(m[1]) : Number(m[1]) * 1000) : NaN;
  if (!Number.isFinite(millis) || millis <= 0) {
    throw new ValidationError(field, amount ?? value, 'must be a positive CPU amount (for example Cpu.millis(250))');
  }
  return millis;
}

const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

export function requireLabels(field: string, labels: Record<string, string>): Record<string, string> {
  for (const [key, value] of Object.entries(labels)) {
    const slash = key.lastIndexOf('/');
    const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
    const name = slash >= 0 ? key.slice(slash + 1) : key;
    if ((prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) || name.length > 63 || !LABEL_NAME.test(name)) {
      throw new ValidationError(`${field} key`, key, 'must be a Kubernetes label key ([prefix/]name, name at most 63 characters of letters, digits, \'-\', \'_\', \'.\')');
    }
    if (typeof value !== 'string' || value.length > 63 || !LABEL_VALUE.test(value)) {
      throw new ValidationError(`${field}["${key}"]`, value, 'must be a Kubernetes label value (at most 63 characters of letters, digits, \'-\', \'_\', \'.\')');
    }
  }
  return labels;
}
