// A small real Redis + Sentinel system on loopback for the operator commands' unit tests
// (lib/ops): this machine's redis-server and redis-sentinel, a master and replicas, and
// Sentinels, all with the project's ACL users and rules (lib/pod/acl.ts, `default` off),
// so every command the tools send is checked against the rules the pods get.
import { ChildProcess, execFileSync, spawn } from 'child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { createServer, Server, Socket, connect } from 'net';
import { tmpdir } from 'os';
import { join } from 'path';
import { REDIS_ACL, SENTINEL_ACL } from '../../../lib/pod/acl';

export const MASTER_NAME = 'mymaster';
export const HOST = '127.0.0.1';

/** One password per user, and `default` off, as in the pods. */
export const PASSWORDS: Record<string, string> = Object.fromEntries(Object.keys(REDIS_ACL).map((u) => [u, `${u}-pw-${Math.random().toString(36).slice(2)}`]));

function aclLines(rules: Partial<Record<string, string>>): string[] {
  return ['user default off', ...Object.entries(rules).map(([u, r]) => `user ${u} on >${PASSWORDS[u]} ${r}`)];
}

export interface LoopbackOptions {
  replicas?: number;
  sentinels?: number;
  quorum?: number;
  downAfterMs?: number;
}

export class LoopbackHa {
  readonly dir = mkdtempSync(join(tmpdir(), 'loopback-ha-'));
  readonly procs = new Map<number, ChildProcess>();
  readonly redisPorts: number[];
  readonly sentinelPorts: number[];
  private readonly forwarders: Server[] = [];

  constructor(readonly opts: LoopbackOptions = {}) {
    const base = 21000 + Math.floor(Math.random() * 15000);
    const replicas = opts.replicas ?? 1;
    const sentinels = opts.sentinels ?? 3;
    this.redisPorts = Array.from({ length: replicas + 1 }, (_, i) => base + i);
    this.sentinelPorts = Array.from({ length: sentinels }, (_, i) => base + 100 + i);
  }

  /** redis-cli as `user` (default operations) against a port; '' when it fails. */
  cli(port: number, ...args: string[]): string {
    return this.cliAs('operations', port, ...args);
  }

  cliAs(user: string, port: number, ...args: string[]): string {
    try {
      return execFileSync('redis-cli', ['--raw', '--no-auth-warning', '-p', String(port), '--user', user, '--pass', PASSWORDS[user], ...args],
        { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '';
    }
  }

  startRedis(port: number): void {
    const master = this.redisPorts[0];
    const conf = [
      `bind ${HOST}`, `port ${port}`, 'save ""', 'appendonly no', `dir ${this.dir}`, `dbfilename dump-${port}.rdb`,
      `masteruser replication`, `masterauth ${PASSWORDS.replication}`,
      ...(port === master ? [] : [`replicaof ${HOST} ${master}`]),
      'repl-diskless-sync no',
      ...aclLines(REDIS_ACL),
    ];
    const file = join(this.dir, `redis-${port}.conf`);
    writeFileSync(file, conf.join('\n') + '\n');
    this.procs.set(port, spawn('redis-server', [file], { stdio: 'ignore' }));
  }

  startSentinel(port: number): void {
    const q = this.opts.quorum ?? Math.floor(this.sentinelPorts.length / 2) + 1;
    const conf = [
      `bind ${HOST}`, `port ${port}`, `dir ${this.dir}`,
      `sentinel monitor ${MASTER_NAME} ${HOST} ${this.redisPorts[0]} ${q}`,
      `sentinel down-after-milliseconds ${MASTER_NAME} ${this.opts.downAfterMs ?? 3000}`,
      `sentinel failover-timeout ${MASTER_NAME} 10000`,
      `sentinel auth-user ${MASTER_NAME} sentinel`, `sentinel auth-pass ${MASTER_NAME} ${PASSWORDS.sentinel}`,
      'sentinel sentinel-user sentinel', `sentinel sentinel-pass ${PASSWORDS.sentinel}`,
      ...aclLines(SENTINEL_ACL),
    ];
    const file = join(this.dir, `sentinel-${port}.conf`);
    writeFileSync(file, conf.join('\n') + '\n');
    this.procs.set(port, spawn('redis-sentinel', [file], { stdio: 'ignore' }));
  }

  async waitFor(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (check()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`loopback HA: timed out waiting for ${what}`);
  }

  /** Starts everything and waits until the replicas are in sync and every Sentinel knows every replica and Sentinel. */
  async start(): Promise<void> {
    for (const p of this.redisPorts) this.startRedis(p);
    for (const p of this.redisPorts) await this.waitFor(`redis ${p}`, () => this.cli(p, 'PING') === 'PONG');
    for (const p of this.sentinelPorts) this.startSentinel(p);
    await this.waitHealthy();
  }

  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const replicas = this.redisPorts.length - 1;
    await this.waitFor('replicas in sync', () => (this.cli(this.masterPort(), 'INFO', 'replication').match(/state=online/g) ?? []).length === replicas, timeoutMs);
    for (const p of this.sentinelPorts) {
      await this.waitFor(`sentinel ${p} to know everything`, () => {
        const m = this.cli(p, 'SENTINEL', 'MASTER', MASTER_NAME).split('\n');
        const field = (k: string) => m[m.indexOf(k) + 1];
        return m.includes('num-slaves') && Number(field('num-slaves')) === replicas
          && Number(field('num-other-sentinels')) === this.sentinelPorts.length - 1 && field('flags') === 'master';
      }, timeoutMs);
    }
  }

  /** The port of the server that reports role master (the first if several). */
  masterPort(): number {
    return this.redisPorts.find((p) => /^master/.test(this.cli(p, 'ROLE'))) ?? this.redisPorts[0];
  }

  stop(port: number): void {
    this.procs.get(port)?.kill('SIGKILL');
    this.procs.delete(port);
  }

  /** A TCP forwarder on loopback to `port` (what `kubectl port-forward` is to a pod); its port. */
  async forward(port: number): Promise<number> {
    const server = createServer((c: Socket) => {
      const u = connect(port, HOST);
      c.pipe(u).pipe(c);
      c.on('error', () => u.destroy());
      u.on('error', () => c.destroy());
    });
    await new Promise<void>((r) => server.listen(0, HOST, () => r()));
    this.forwarders.push(server);
    return (server.address() as { port: number }).port;
  }

  /** A password file for `user` (or any text); its path. */
  passwordFile(user: string, text = `${PASSWORDS[user]}\n`): string {
    const f = join(this.dir, `${user}-${Math.random().toString(36).slice(2)}.pw`);
    writeFileSync(f, text);
    return f;
  }

  close(): void {
    for (const p of this.procs.values()) p.kill('SIGKILL');
    this.procs.clear();
    for (const s of this.forwarders) s.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
