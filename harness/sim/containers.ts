// Container processes, as the kubelet runs them: the command line and sandbox of each
// container, start (fresh writable layer, postStart hook, then probes), exit and restart
// with back-off, termination (preStop bounded by the grace period, SIGTERM, SIGKILL), and
// the faults and commands a test applies to one container (kill, restart, exec).
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { publish } from './dns';
import { containerEnv, expand } from './env';
import { EXPORTER_BINARY, EXPORTER_ENTRYPOINT, HAPROXY_BINARY, HAPROXY_ENTRYPOINT, isExporterImage, isHaproxyImage, isRedisImage } from './manifests';
import { appendToLog, startProbes } from './probes';
import { Mount, runSandboxed, sandboxArgv } from './sandbox';
import { SimState } from './state';
import { Container, ExecResult } from './types';
import { sleep } from './util';

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function prepareContainer(s: SimState, c: Container): void {
  const p = c.pod;
  const spec = c.spec;
  const psc = p.spec.securityContext ?? {};
  const csc = spec.securityContext ?? {};
  const uid: number | undefined = csc.runAsUser ?? psc.runAsUser;
  const gid: number | undefined = csc.runAsGroup ?? psc.runAsGroup;
  const env = containerEnv(s, c);
  let argv: string[];
  if (spec.command?.length) argv = [...spec.command, ...(spec.args ?? [])];
  else if (isExporterImage(spec.image)) argv = [EXPORTER_ENTRYPOINT, ...(spec.args ?? [])];
  else if (isHaproxyImage(spec.image)) argv = [HAPROXY_ENTRYPOINT, '-W', '-db', '-f', '/usr/local/etc/haproxy/haproxy.cfg', ...(spec.args ?? [])];
  else if (isRedisImage(spec.image)) {
    // The official image's entrypoint: "-flag ..." or "x.conf" means redis-server.
    argv = spec.args?.length ? [...spec.args] : ['redis-server'];
    if (argv[0].startsWith('-') || argv[0].endsWith('.conf')) argv.unshift('redis-server');
  } else argv = spec.args?.length ? [...spec.args] : ['sh'];
  c.argv = argv.map((a) => expand(a, env));
  const mounts: Mount[] = [];
  for (const vm of spec.volumeMounts ?? []) {
    const v = p.volumes.get(vm.name);
    if (!v) continue;
    let source = v.dir;
    if (vm.subPath) {
      source = join(v.dir, vm.subPath);
      if (!existsSync(source)) mkdirSync(source, { recursive: true }); // as the kubelet does
    }
    mounts.push({ target: vm.mountPath, source, readOnly: v.readOnly || vm.readOnly === true });
  }
  c.sandbox = {
    netns: p.net!.netns,
    hostname: p.hostname,
    hostsFile: join(p.dir, 'hosts'),
    resolvFile: join(p.dir, 'resolv.conf'),
    tmpDir: c.tmpDir,
    mounts,
    env,
    uid,
    gid: uid !== undefined && gid === undefined ? 0 : gid,
    groups: p.uidGid.groups,
    cwd: spec.workingDir ?? (isRedisImage(spec.image) ? '/data' : '/'),
    readOnlyRoot: csc.readOnlyRootFilesystem === true,
    redisBinaries: isRedisImage(spec.image),
    exporterBinary: isExporterImage(spec.image) ? EXPORTER_BINARY : undefined,
    hostBinaries: isHaproxyImage(spec.image) ? [{ source: HAPROXY_BINARY, target: HAPROXY_ENTRYPOINT }] : [],
  };
}

export function startContainer(s: SimState, c: Container): void {
  if (s.stopped || c.pod.terminating) return;
  // The container's writable layer (/tmp here) starts fresh on every start.
  rmSync(c.tmpDir, { recursive: true, force: true });
  mkdirSync(c.tmpDir, { recursive: true });
  chmodSync(c.tmpDir, 0o1777);
  const argv = sandboxArgv(c.sandbox!, c.argv);
  const fd = openSync(c.logFile, 'a');
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  c.proc = proc;
  c.running = true;
  c.ready = false;
  c.held = false;
  c.startedAt = Date.now();
  const gen = ++c.gen;
  s.event(`start ${c.init ? 'init ' : ''}container ${c.pod.name}/${c.spec.name}${c.restarts ? ` (restart ${c.restarts})` : ''}`);
  c.exited = new Promise<number>((resolve) => {
    proc.once('exit', (code, signal) => {
      c.running = false;
      c.ready = false;
      c.proc = undefined;
      resolve(code ?? 128);
      onExit(s, c, gen, code, signal);
    });
  });
  proc.once('error', (e) => s.event(`container ${c.pod.name}/${c.spec.name}: ${e.message}`));
  if (!c.init) void postStart(s, c, gen);
}

// Probes begin once the postStart hook (if any) has succeeded; a failed hook kills
// the container, which is then restarted like any other exit.
async function postStart(s: SimState, c: Container, gen: number): Promise<void> {
  const hook = c.spec.lifecycle?.postStart?.exec?.command;
  if (hook) {
    const r = await runSandboxed(c.sandbox!, hook, 60_000);
    if (c.gen !== gen || !c.running) return;
    if (r.code !== 0) {
      s.event(`postStart ${c.pod.name}/${c.spec.name} failed (${r.code}): ${(r.stdout + r.stderr).trim().slice(-300)}`);
      if (c.proc?.pid) process.kill(c.proc.pid, 'SIGKILL');
      return;
    }
  }
  startProbes(s, c, gen, (graceMs) => void stopContainer(s, c, graceMs, true));
}

function onExit(s: SimState, c: Container, gen: number, code: number | null, signal: string | null): void {
  if (c.init || gen !== c.gen) return;
  s.event(`container ${c.pod.name}/${c.spec.name} exited (${signal ?? code})`);
  publish(s);
  if (s.stopped || c.pod.terminating) return;
  const delay = c.nextRestart ?? s.restartDelayMs;
  c.nextRestart = undefined;
  c.restarts++;
  if (delay === 'hold') {
    c.held = true;
    return;
  }
  c.restartTimer = setTimeout(() => startContainer(s, c), delay);
}

// preStop hook (bounded by the grace period), SIGTERM to the container's main
// process, SIGKILL of the whole sandbox when the grace period runs out.
export async function stopContainer(s: SimState, c: Container, graceMs: number, runHook: boolean): Promise<void> {
  clearTimeout(c.restartTimer);
  if (!c.running || !c.proc) return;
  const outer = c.proc.pid!;
  let deadline = Date.now() + graceMs;
  const hook = c.spec.lifecycle?.preStop?.exec?.command;
  if (runHook && hook && !c.init && graceMs > 0) {
    const t0 = Date.now();
    const r = await runSandboxed(c.sandbox!, hook, graceMs);
    appendToLog(c, r.stderr);
    s.event(`preStop ${c.pod.name}/${c.spec.name} exited ${r.code} after ${Date.now() - t0} ms${r.code ? `: ${(r.stdout + r.stderr).trim().slice(-500)}` : ''}`);
    deadline = Math.max(deadline, Date.now() + 2000); // the kubelet's minimum after a slow hook
  }
  if (graceMs > 0 && c.running) {
    // bwrap's pid 1 is a reaper; the container's command is its child.
    const [init] = childPids(outer);
    for (const pid of init ? childPids(init) : []) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* exited meanwhile */
      }
    }
    await Promise.race([c.exited, sleep(Math.max(0, deadline - Date.now()))]);
  }
  if (c.running) {
    try {
      process.kill(outer, 'SIGKILL'); // bwrap's reaper dies with it, and with it the pid namespace
    } catch {
      /* gone */
    }
  }
  await c.exited;
}

// SIGKILL the container's process tree. restart: true = after the normal back-off,
// a number = after that many ms, false = held until restartContainer().
export async function killContainer(s: SimState, pod: string, container?: string, opts: { restart?: boolean | number } = {}): Promise<void> {
  const c = s.container(pod, container);
  const r = opts.restart ?? true;
  s.event(`kill ${pod}/${c.spec.name}${r === false ? ' (restart held)' : ''}`);
  if (!c.running || !c.proc?.pid) {
    // Already down (crashed, waiting for its back-off, or held): only adjust the restart.
    clearTimeout(c.restartTimer);
    c.held = r === false;
    if (r !== false) c.restartTimer = setTimeout(() => startContainer(s, c), r === true ? s.restartDelayMs : r);
    return;
  }
  c.nextRestart = r === false ? 'hold' : r === true ? undefined : r;
  process.kill(c.proc.pid, 'SIGKILL'); // bwrap's reaper dies with it, and with it the pid namespace
  await c.exited;
}

// Starts a held (or running: kills and restarts) container now.
export async function restartContainer(s: SimState, pod: string, container?: string): Promise<void> {
  const c = s.container(pod, container);
  if (c.running) await killContainer(s, pod, c.spec.name, { restart: 0 });
  else {
    clearTimeout(c.restartTimer);
    c.held = false;
    startContainer(s, c);
  }
}

// Like `kubectl exec`: runs argv in the container's sandbox (same volumes, env, user).
export async function exec(s: SimState, pod: string, argv: string[], opts: { container?: string; timeoutMs?: number; stdin?: string } = {}): Promise<ExecResult> {
  const c = s.container(pod, opts.container);
  if (!c.running || !c.sandbox) throw new Error(`container ${pod}/${c.spec.name} is not running`);
  return runSandboxed(c.sandbox, argv, opts.timeoutMs ?? 30_000, opts.stdin);
}
