// The kubelet's probes: startup, then readiness and liveness, each on its period with
// its thresholds; exec, tcpSocket and httpGet probes (others are treated as passing, with a
// notice). A failed liveness or startup probe restarts the container.
import { writeFileSync } from 'node:fs';
import { Probe } from './manifests';
import { publish } from './dns';
import { runSandboxed } from './sandbox';
import { SimState } from './state';
import { Container } from './types';
import { run, sleep } from './util';

// restart: stops the container (preStop, SIGTERM, grace) so that it is restarted.
export function startProbes(s: SimState, c: Container, gen: number, restart: (graceMs: number) => void): void {
  const spec = c.spec;
  const rest = (): void => {
    if (spec.readinessProbe) void probeLoop(s, c, gen, 'readiness', spec.readinessProbe, restart);
    else setReady(s, c, true);
    if (spec.livenessProbe) void probeLoop(s, c, gen, 'liveness', spec.livenessProbe, restart);
  };
  if (spec.startupProbe) void probeLoop(s, c, gen, 'startup', spec.startupProbe, restart, rest);
  else rest();
}

async function probeLoop(s: SimState, c: Container, gen: number, kind: 'startup' | 'readiness' | 'liveness', p: Probe,
  restart: (graceMs: number) => void, onStarted?: () => void): Promise<void> {
  const alive = (): boolean => c.running && c.gen === gen && !s.stopped;
  const periodMs = (p.periodSeconds ?? 10) * 1000;
  const succT = kind === 'readiness' ? p.successThreshold ?? 1 : 1;
  const failT = p.failureThreshold ?? 3;
  const firstAt = c.startedAt + (p.initialDelaySeconds ?? 0) * 1000;
  while (alive() && Date.now() < firstAt) await sleep(Math.min(200, firstAt - Date.now()));
  let succ = 0;
  let fail = 0;
  while (alive()) {
    const t0 = Date.now();
    const { ok, out } = await runProbe(s, c, p);
    if (!alive()) return;
    if (ok) { succ++; fail = 0; } else { fail++; succ = 0; }
    if (!ok) s.event(`${kind} probe failed ${c.pod.name}/${c.spec.name} (${fail}/${failT}): ${out.trim().slice(0, 200)}`);
    if (kind === 'startup' && succ >= 1) return onStarted?.();
    if (kind === 'readiness') {
      if (succ >= succT) setReady(s, c, true);
      if (fail >= failT) setReady(s, c, false);
    }
    if ((kind === 'liveness' || kind === 'startup') && fail >= failT) {
      s.event(`${kind} probe of ${c.pod.name}/${c.spec.name} failed ${fail} times: restarting container`);
      restart((c.pod.spec.terminationGracePeriodSeconds ?? 30) * 1000);
      return;
    }
    const wait = t0 + periodMs - Date.now();
    for (let end = Date.now() + wait; alive() && Date.now() < end;) await sleep(Math.min(200, end - Date.now()));
  }
}

// Hooks and probes run in a sandbox of their own (not the container's pid namespace),
// so the scripts' `exec 2>/proc/1/fd/2` cannot reach the container log as it does in
// Kubernetes; their stderr is appended to the log here instead.
export function appendToLog(c: Container, text: string): void {
  if (!text.trim()) return;
  try {
    writeFileSync(c.logFile, text.endsWith('\n') ? text : `${text}\n`, { flag: 'a' });
  } catch (err) {
    // A probe that ends while the cluster is being torn down finds its log directory gone.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

async function runProbe(s: SimState, c: Container, p: Probe): Promise<{ ok: boolean; out: string }> {
  const timeoutMs = (p.timeoutSeconds ?? 1) * 1000;
  if (p.exec) {
    const r = await runSandboxed(c.sandbox!, p.exec.command, timeoutMs);
    appendToLog(c, r.stderr);
    return { ok: r.code === 0, out: r.stdout + r.stderr };
  }
  if (p.tcpSocket) {
    let port = p.tcpSocket.port;
    if (typeof port === 'string' && !/^\d+$/.test(port)) port = c.spec.ports?.find((x) => x.name === port)?.containerPort ?? 0;
    const host = p.tcpSocket.host ?? c.pod.ip;
    try {
      await run('nsenter', [`--net=/run/netns/${c.pod.net!.netns}`, '--', 'timeout', String(Math.max(1, timeoutMs / 1000)), 'bash', '-c', `exec 3<>/dev/tcp/${host}/${port}`], timeoutMs + 2000);
      return { ok: true, out: '' };
    } catch (e) {
      return { ok: false, out: String(e) };
    }
  }
  if (p.httpGet) {
    // As the kubelet: GET from outside the pod (here: its network namespace, like the
    // node's), success on a status from 200 to 399.
    let port = p.httpGet.port;
    if (typeof port === 'string' && !/^\d+$/.test(port)) port = c.spec.ports?.find((x) => x.name === port)?.containerPort ?? 0;
    const host = p.httpGet.host ?? c.pod.ip;
    const path = p.httpGet.path ?? '/';
    const script = `exec 3<>/dev/tcp/${host}/${port} && printf 'GET %s HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n' "$1" "$2" >&3 && head -n1 <&3`;
    try {
      const out = await run('nsenter', [`--net=/run/netns/${c.pod.net!.netns}`, '--', 'timeout', String(Math.max(1, timeoutMs / 1000)), 'bash', '-c', script, 'probe', path, `${host}:${port}`], timeoutMs + 2000);
      const status = Number(/^HTTP\/\d\.\d (\d{3})/.exec(String(out).trim())?.[1] ?? 0);
      return { ok: status >= 200 && status < 400, out: String(out) };
    } catch (e) {
      return { ok: false, out: String(e) };
    }
  }
  s.notice(`probe type of ${c.pod.wl.name}/${c.spec.name} is not simulated (only exec, tcpSocket and httpGet): treated as passing`);
  return { ok: true, out: '' };
}

function setReady(s: SimState, c: Container, ready: boolean): void {
  if (c.ready === ready) return;
  c.ready = ready;
  s.event(`container ${c.pod.name}/${c.spec.name} ${ready ? 'ready' : 'not ready'}`);
  publish(s);
  if (ready) void s.reconcile();
}
