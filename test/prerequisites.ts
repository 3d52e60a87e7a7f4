import { accessSync, constants } from 'fs';
import { delimiter, join } from 'path';
import { it } from 'vitest';

/**
 * Tests that need a program the Debian packages provide (bin/ensure-test-packages.sh
 * installs them before `npm test` when it can). Where the program is missing, they skip
 * with one line per test file; under CI=true each of them fails instead, naming what is
 * missing, so CI never passes by skipping.
 */

/** Whether `tool` is an executable file in one of the directories of `path` (default: PATH). */
export function onPath(tool: string, path = process.env.PATH ?? ''): boolean {
  return path.split(delimiter).filter(Boolean).some((dir) => {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export type TestWith = (name: string, fn: () => unknown, timeout?: number) => void;

const announced = new Set<string>();

/**
 * `it` for a test that runs `tool` (e.g. itWith('shellcheck', 'apt-get install shellcheck')).
 * Missing tool: the test is skipped and, the first time in this test file, one line says so;
 * with CI=true the test fails with that line instead.
 */
export function itWith(tool: string, install: string): TestWith {
  if (onPath(tool)) return (name, fn, timeout) => it(name, fn, timeout);
  const line = `${tool} is not installed (${install}): the tests that run it are skipped`;
  if (process.env.CI === 'true') {
    return (name) => it(name, () => {
      throw new Error(`${tool} is not installed (${install}); it is required when CI=true`);
    });
  }
  return (name, fn, timeout) => {
    if (!announced.has(tool)) {
      announced.add(tool);
      console.log(line);
    }
    it.skip(name, fn, timeout);
  };
}
