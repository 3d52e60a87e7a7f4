// The rotation tool's kubectl access (lib/ops/kubectl.ts) against a stand-in kubectl that
// records its arguments and stdin: what it runs, that the Secret patch is one merge patch on
// the version read, and that no password is ever an argument (ps shows arguments).
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../lib/ops/cli';
import { kubectlPods, kubectlSecret } from '../../lib/ops/kubectl';
import { hashPrefix } from '../../lib/ops/rotation';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

/**
 * A kubectl that logs "<args>\t<stdin>" per call and answers from `replies` (the first whose
 * `match` is in the arguments and, when given, whose `stdin` is in its stdin).
 */
function standIn(replies: { match: string; stdin?: string; code?: number; stdout?: string; stderr?: string }[]): { kubectl: string; dir: string; calls: () => { args: string; stdin: string }[] } {
  const dir = mkdtempSync(join(tmpdir(), 'kubectl-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'replies.json'), JSON.stringify(replies));
  const kubectl = join(dir, 'kubectl');
  writeFileSync(kubectl, `#!/usr/bin/env node
const fs = require('fs');
const args = process.argv.slice(2).join(' ');
const stdin = fs.readFileSync(0, 'utf8');
fs.appendFileSync(${JSON.stringify(join(dir, 'calls'))}, JSON.stringify({ args, stdin }) + '\\n');
const r = JSON.parse(fs.readFileSync(${JSON.stringify(join(dir, 'replies.json'))}, 'utf8')).find((x) => args.includes(x.match) && (!x.stdin || stdin.includes(x.stdin))) || { code: 1, stderr: 'no reply for ' + args };
process.stdout.write(r.stdout || '');
process.stderr.write(r.stderr || '');
process.exit(r.code || 0);
`);
  chmodSync(kubectl, 0o755);
  return { kubectl, dir, calls: () => readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)) };
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('kubectl access of redis-ha rotate-passwords', () => {
  it('reads the Secret decoded and patches it once, on the version read, with the values on stdin', async () => {
    const k = standIn([
      { match: 'get secret redis-auth', stdout: JSON.stringify({ metadata: { resourceVersion: '41' }, data: { 'app-password': b64('old-app') } }) },
      { match: 'patch secret redis-auth', stdout: '42' },
    ]);
    const secret = kubectlSecret({ namespace: 'shop', context: 'prod', kubectl: k.kubectl }, 'redis-auth');
    expect(secret.name).toBe('shop/redis-auth');
    expect(await secret.read()).toEqual({ 'app-password': 'old-app' });
    await secret.update({ 'app-password': 'new-app', 'app-password-previous': 'old-app', 'x-previous': null });
    const [get, patch] = k.calls();
    expect(get.args).toBe('--context prod --namespace shop get secret redis-auth -o json');
    expect(patch.args).toBe('--context prod --namespace shop patch secret redis-auth --type merge --patch-file /dev/stdin -o jsonpath={.metadata.resourceVersion}');
    expect(JSON.parse(patch.stdin)).toEqual({
      metadata: { resourceVersion: '41' },
      data: { 'app-password': b64('new-app'), 'app-password-previous': b64('old-app'), 'x-previous': null },
    });
    for (const c of k.calls()) expect(c.args).not.toMatch(/new-app|old-app/);
  });

  it('a missing Secret reads as undefined; other kubectl errors are one line', async () => {
    const k = standIn([{ match: 'get secret', code: 1, stderr: 'Error from server (NotFound): secrets "redis-auth" not found\n' }]);
    expect(await kubectlSecret({ kubectl: k.kubectl }, 'redis-auth').read()).toBeUndefined();
    const denied = standIn([{ match: 'get secret', code: 1, stderr: 'Error from server (Forbidden): secrets "redis-auth" is forbidden\n' }]);
    await expect(kubectlSecret({ kubectl: denied.kubectl }, 'redis-auth').read()).rejects.toThrow('kubectl get secret redis-auth: Error from server (Forbidden): secrets "redis-auth" is forbidden');
  });

  it('lists the running Redis, Sentinel and proxy pods of the instance and runs commands in their status containers, stdin passed with -i', async () => {
    const pod = (name: string, app: string, phase = 'Running', deleting = false) => ({
      metadata: { name, labels: { 'app.kubernetes.io/name': app }, ...(deleting ? { deletionTimestamp: 'x' } : {}) }, status: { phase },
    });
    const k = standIn([
      { match: 'get pods', stdout: JSON.stringify({ items: [pod('redis-slave-0', 'redis'), pod('redis-sentinel-x', 'redis-sentinel'), pod('redis-master-0', 'redis'), pod('redis-slave-1', 'redis', 'Pending'), pod('redis-sentinel-y', 'redis-sentinel', 'Running', true), pod('redis-proxy-5d9c-x2x7k', 'redis-proxy')] }) },
      { match: 'exec', stdout: 'OK\n' },
    ]);
    const access = kubectlPods({ namespace: 'shop', kubectl: k.kubectl }, 'cache');
    const pods = await access.pods();
    expect(pods).toEqual([
      { name: 'redis-master-0', kind: 'redis', container: 'guard' },
      { name: 'redis-proxy-5d9c-x2x7k', kind: 'proxy', container: 'haproxy' },
      { name: 'redis-sentinel-x', kind: 'sentinel', container: 'janitor' },
      { name: 'redis-slave-0', kind: 'redis', container: 'guard' },
    ]);
    expect(await access.exec(pods[2], ['sh', '-c', 'read -r pw', 'sh', 'app'], 'secret-pw\n')).toBe('OK\n');
    const [list, exec] = k.calls();
    expect(list.args).toBe('--namespace shop get pods -l app.kubernetes.io/instance=cache,app.kubernetes.io/name in (redis,redis-sentinel,redis-proxy) -o json');
    expect(exec).toEqual({ args: '--namespace shop exec -i redis-sentinel-x -c janitor -- sh -c read -r pw sh app', stdin: 'secret-pw\n' });
  });

  it('redis-ha rotate-passwords --finish without --users completes what was started, and leaves out the proxy user of an instance without the proxy tier', async () => {
    const pod = (name: string, app: string) => ({ metadata: { name, labels: { 'app.kubernetes.io/name': app } }, status: { phase: 'Running' } });
    // No proxy-password: an instance with proxy: false. The app rotation waits for --finish.
    const secret = { 'replication-password': 'r', 'sentinel-password': 's', 'operations-password': 'o', 'app-password': 'new-app', 'app-password-previous': 'old-app' };
    const k = standIn([
      { match: 'get secret redis-auth', stdout: JSON.stringify({ metadata: { resourceVersion: '7' }, data: Object.fromEntries(Object.entries(secret).map(([key, v]) => [key, b64(v)])) }) },
      { match: 'patch secret redis-auth', stdout: '8' },
      { match: 'get pods', stdout: JSON.stringify({ items: [pod('redis-master-0', 'redis'), pod('redis-sentinel-x', 'redis-sentinel')] }) },
      { match: 'cat /tmp/redis-ha-auth-status', stdout: `app accepted ${hashPrefix('new-app')} using -\n` },
      { match: 'exec -i', stdin: 'new-app', stdout: 'OK\n' },
      { match: 'exec -i', stdin: 'old-app', stdout: 'WRONGPASS invalid username-password pair or user is disabled.\n' },
    ]);
    const lines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((l: string) => { lines.push(l); });
    const path = process.env.PATH;
    process.env.PATH = `${k.dir}:${path}`;
    try {
      expect(await main(['rotate-passwords', '--finish', '--namespace', 'shop', '--timeout', '10s'])).toBe(0);
    } finally {
      process.env.PATH = path;
      log.mockRestore();
    }
    expect(lines.at(-1)).toMatch(/ done: app rotated$/);
    const patches = k.calls().filter((c) => c.args.includes('patch secret'));
    expect(patches.map((c) => JSON.parse(c.stdin).data)).toEqual([{ 'app-password-previous': null }]);
  });
});
