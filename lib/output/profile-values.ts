import { readFileSync } from 'fs';
import { ValidationError } from '../constructs/validation';

/**
 * Builds the environment profiles (main.ts). cdk8s refuses some values in the value
 * types' own constructors, while the profile is still being written and before any of
 * this project's code sees it: `Duration.seconds(-1)` throws "Duration amounts cannot be
 * negative", naming no field. Such an error is turned into one that names the profile
 * field, the value as written and the fix; the field is read from the source line the
 * stack trace points at (main.ts, or the bundle built from it, which keeps the line).
 */
export function defineEnvironments<T>(build: () => T): T {
  try {
    return build();
  } catch (err) {
    throw explainValueError(err);
  }
}

const VALUE_CALL = /([A-Za-z_$][\w$]*)\s*:\s*(?:[\w$]+\.)?((?:Duration|Size|Cpu)\.\w+\([^()]*\))/g;

/** A ValidationError naming field, value and fix for a value cdk8s refused, else `err` unchanged. */
export function explainValueError(err: unknown): unknown {
  if (!(err instanceof Error) || err.name === 'ValidationError' || !/cannot be negative/.test(err.message)) return err;
  const frames = (err.stack ?? '').split('\n').slice(1);
  for (const frame of frames) {
    const m = /\(?((?:\/|[A-Za-z]:\\)[^():]+):(\d+):(\d+)\)?$/.exec(frame.trim());
    if (!m || m[1].includes('node_modules')) continue;
    let lines: string[];
    try {
      lines = readFileSync(m[1], 'utf8').split('\n');
    } catch {
      continue;
    }
    const index = Number(m[2]) - 1;
    const line = lines[index] ?? '';
    const column = Number(m[3]) - 1;
    const calls = [...line.matchAll(VALUE_CALL)];
    if (calls.length === 0) continue;
    // The call the frame points into: the last one starting at or before its column.
    const call = calls.filter((c) => (c.index ?? 0) <= column).pop() ?? calls[0];
    const type = call[2].split('.')[0];
    // The profile it is in: the nearest `name: '...'` above it.
    let environment: string | undefined;
    for (let i = index; i >= 0 && environment === undefined; i--) {
      environment = /\bname:\s*['"]([^'"]+)['"]/.exec(lines[i])?.[1];
    }
    const error = new ValidationError(call[1], call[2],
      `must be a valid ${type}, but cdk8s refused it (${err.message}); write a non-negative amount in the environment profile`);
    if (environment !== undefined) error.message = `environment "${environment}": ${error.message}`;
    return error;
  }
  return err;
}
