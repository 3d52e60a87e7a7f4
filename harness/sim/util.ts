// Small helpers shared by the simulator files.
import { execFile, execFileSync } from 'node:child_process';

export function run(cmd: string, args: string[], timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    // A command that outlives its timeout must not hold up what waits for it: SIGKILL, and
    // give up on it even if it cannot die (a process stuck in the kernel).
    const abandon = setTimeout(() => reject(new Error(`${cmd} ${args.join(' ')}: still running ${timeoutMs + 2000} ms after it started`)), timeoutMs + 2000);
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      clearTimeout(abandon);
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

export function runSync(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'], timeout: 15_000 }).toString();
  } catch {
    return '';
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// Polls `cond` until it returns truthy or the deadline passes (then throws naming `what`;
// a function is called then, so the message describes the state at the timeout).
export async function waitFor<T>(cond: () => T | Promise<T>, timeoutMs: number, what: string | (() => string), everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}${last ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
