// The bwrap command line for one container (or exec/probe inside it).
//
// bwrap cannot create mount points under a read-only bind of the host's /usr, so the
// sandbox root is bwrap's own tmpfs and the host is bound into it piece by piece:
// a host directory that has a mount target somewhere below it is "exploded" (made a
// fresh directory on the tmpfs with each host entry bound back individually), so
// e.g. /usr/local/bin can hold the host's redis binaries like the official image.
import { spawn } from 'node:child_process';
import { lstatSync, readdirSync, readlinkSync, realpathSync, existsSync } from 'node:fs';
import type { ExecResult } from './types';

export interface Mount {
  target: string;
  source: string; // host file or directory
  readOnly: boolean;
}

export interface SandboxSpec {
  netns: string;
  hostname: string;
  hostsFile: string; // cluster "DNS", bound at /etc/hosts
  resolvFile: string;
  tmpDir: string; // per container instance, bound at /tmp (shared with exec and probes)
  mounts: Mount[]; // volumes
  env: Record<string, string>;
  uid?: number;
  gid?: number;
  groups: number[];
  cwd: string;
  readOnlyRoot: boolean;
  redisBinaries: boolean; // bind host redis-* into /usr/local/bin
  exporterBinary?: string; // bind this host binary at /redis_exporter (redis_exporter's entrypoint)
  hostBinaries?: { source: string; target: string }[]; // other host binaries bound where the image has them (haproxy)
}

const HOST_TOP = ['/usr', '/bin', '/lib', '/lib64', '/sbin'];
const HOST_ETC = [
  'passwd', 'group', 'nsswitch.conf', 'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'alternatives',
  'localtime', 'host.conf', 'gai.conf', 'services', 'protocols', 'os-release', 'debian_version',
];
const REDIS_BINARIES = ['redis-server', 'redis-sentinel', 'redis-cli', 'redis-benchmark', 'redis-check-aof', 'redis-check-rdb'];
// What a container runtime grants root by default (Docker's default set).
const DEFAULT_CAPS = [
  'CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP',
  'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE',
];

const under = (p: string, dir: string): boolean => p.startsWith(dir + '/');

// Bind host path `p` read-only, or explode it if some target lies below it.
// Every destination created is recorded in `made`.
function hostTree(p: string, targets: string[], out: string[], made: Set<string>): void {
  if (!existsSync(p)) return;
  const st = lstatSync(p);
  made.add(p);
  if (st.isSymbolicLink()) {
    out.push('--symlink', readlinkSync(p), p);
  } else if (st.isDirectory() && targets.some((t) => under(t, p))) {
    out.push('--dir', p);
    for (const e of readdirSync(p)) {
      const child = `${p}/${e}`;
      if (!targets.includes(child)) hostTree(child, targets, out, made);
    }
  } else {
    out.push('--ro-bind', p, p);
  }
}

export function sandboxArgv(s: SandboxSpec, argv: string[]): string[] {
  const mounts: Mount[] = [...s.mounts];
  if (s.redisBinaries) {
    for (const b of REDIS_BINARIES) {
      if (existsSync(`/usr/bin/${b}`)) mounts.push({ target: `/usr/local/bin/${b}`, source: realpathSync(`/usr/bin/${b}`), readOnly: true });
    }
  }
  if (s.exporterBinary) mounts.push({ target: '/redis_exporter', source: realpathSync(s.exporterBinary), readOnly: true });
  for (const b of s.hostBinaries ?? []) mounts.push({ target: b.target, source: realpathSync(b.source), readOnly: true });
  mounts.sort((a, b) => a.target.split('/').length - b.target.split('/').length);
  const targets = mounts.map((m) => m.target);
  const made = new Set<string>(['/etc', '/proc', '/dev', '/tmp']);

  const a: string[] = ['nsenter', `--net=/run/netns/${s.netns}`, '--', 'bwrap'];
  a.push('--die-with-parent', '--new-session', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--hostname', s.hostname);
  for (const top of HOST_TOP) hostTree(top, targets, a, made);
  a.push('--dir', '/etc');
  for (const f of HOST_ETC) if (!targets.includes(`/etc/${f}`)) hostTree(`/etc/${f}`, targets, a, made);
  a.push('--ro-bind', s.hostsFile, '/etc/hosts', '--ro-bind', s.resolvFile, '/etc/resolv.conf');
  a.push('--proc', '/proc', '--dev', '/dev');
  if (!targets.includes('/tmp')) a.push('--bind', s.tmpDir, '/tmp');
  // The official image's WORKDIR /data is writable by its redis user.
  if (s.cwd === '/data' && !targets.includes('/data')) {
    a.push('--perms', '0777', '--dir', '/data');
    made.add('/data');
  }
  // bwrap would create missing parents of a mount point with mode 0700, which a
  // non-root container cannot traverse: create them 0755 first.
  for (const m of mounts) {
    const parts = m.target.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const dir = '/' + parts.slice(0, i).join('/');
      if (!made.has(dir)) a.push('--perms', '0755', '--dir', dir);
      made.add(dir);
    }
    a.push(m.readOnly ? '--ro-bind' : '--bind', m.source, m.target);
    made.add(m.target);
  }
  // Like a container runtime, create a missing workingDir (unless it lies in host /usr...).
  if (s.cwd !== '/' && !made.has(s.cwd) && !targets.includes(s.cwd) && s.cwd !== '/data' && !HOST_TOP.some((t) => s.cwd === t || under(s.cwd, t))) {
    a.push('--perms', '0755', '--dir', s.cwd);
  }
  if (s.readOnlyRoot) a.push('--remount-ro', '/');
  a.push('--cap-drop', 'ALL');
  for (const c of DEFAULT_CAPS) a.push('--cap-add', `CAP_${c}`);
  a.push('--chdir', s.cwd, '--clearenv');
  for (const [k, v] of Object.entries(s.env)) a.push('--setenv', k, v);
  a.push('--');
  if ((s.uid ?? 0) !== 0 || (s.gid ?? 0) !== 0) {
    // Drop to the pod's user inside the sandbox (a uid change also clears capabilities).
    const uid = s.uid ?? 0;
    const gid = s.gid ?? uid;
    a.push('/usr/bin/setpriv', `--reuid=${uid}`, `--regid=${gid}`);
    a.push(...(s.groups.length ? [`--groups=${s.groups.join(',')}`] : ['--clear-groups']), '--');
  }
  return [...a, ...argv];
}

// Runs argv in a sandbox (exec, probes, hooks): its output, and code 124 when it was
// killed at the timeout.
export function runSandboxed(sb: SandboxSpec, argv: string[], timeoutMs: number, stdin?: string): Promise<ExecResult> {
  const a = sandboxArgv(sb, argv);
  return new Promise((resolve) => {
    const proc = spawn(a[0], a.slice(1), { stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    proc.stdout!.on('data', (d) => { if (stdout.length < 4_000_000) stdout += d; });
    proc.stderr!.on('data', (d) => { if (stderr.length < 4_000_000) stderr += d; });
    if (stdin !== undefined) proc.stdin!.end(stdin);
    const t = setTimeout(() => { timedOut = true; proc.kill('SIGKILL'); }, timeoutMs);
    proc.once('error', (e) => { stderr += e.message; });
    proc.once('close', (code) => {
      clearTimeout(t);
      resolve({ code: timedOut ? 124 : code ?? 137, stdout, stderr: timedOut ? `${stderr}timed out after ${timeoutMs} ms\n` : stderr });
    });
  });
}
