import { describe, expect, test } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { stringify } from 'yaml';
import { waitFor } from '../../harness/sim/util';
import { LiveCluster } from '../../harness/live-cluster';
import { synthEnvironment } from '../../lib/internal';
import { findEnvironments } from '../../main';
import { clusterPerTest, livePrerequisites } from './live-suite';

/**
 * The metrics prop, live: the staging overlay with metrics on, each Redis and Sentinel pod
 * running its redis_exporter sidecar (the simulator runs Debian's prometheus-redis-exporter
 * 1.45 for the image oliver006/redis_exporter:v1.45.0) as the read-only ACL user `metrics`.
 * A scraper pod in the namespace `monitoring` (monitoringNamespaceLabels' default) reads
 * every exporter; pods elsewhere, labelled clients of the instance's own namespace
 * included, are dropped by the NetworkPolicies. The role metrics follow a failover.
 */

const missing = livePrerequisites('metrics');

/**
 * Bash in a scraper pod: every 2 s, GET /metrics of each host:port (HTTP/1.0, bash's
 * /dev/tcp), each answer between "=== <target>" and "=== rc <exit code>" (124: the
 * connection timed out, i.e. dropped), a round ended by "=== end".
 */
const SCRAPE = `while :; do
  for t in "$@"; do
    echo "=== $t"
    timeout 3 bash -c 'exec 3<>"/dev/tcp/\${0%:*}/\${0#*:}" || exit 7; printf "GET /metrics HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n" "$0" >&3; cat <&3' "$t" 2>/dev/null
    echo "=== rc $?"
  done
  echo "=== end"
  sleep 2
done`;

interface Answer { rc: number; body: string }

class Scraper {
  private out = '';
  private constructor(readonly name: string) {}

  static async start(live: LiveCluster, name: string, namespace: string | undefined, labels: Record<string, string> | undefined, targets: string[]): Promise<Scraper> {
    const sc = new Scraper(name);
    const pod = await live.sim.startClientPod(name, ['bash', '-c', SCRAPE, 'scrape', ...targets], {
      ...(namespace ? { namespace } : {}), ...(labels ? { labels } : {}),
    });
    pod.proc.stdout?.on('data', (d) => {
      sc.out += d;
      // Keep the last two rounds at most.
      const ends = [...sc.out.matchAll(/^=== end$/gm)];
      if (ends.length > 2) sc.out = sc.out.slice(ends[ends.length - 2].index! + '=== end\n'.length);
    });
    return sc;
  }

  /** The last complete round, by target; undefined before the first. */
  lastRound(): Record<string, Answer> | undefined {
    const end = this.out.lastIndexOf('\n=== end\n');
    if (end < 0 && !this.out.startsWith('=== end\n')) return undefined;
    const prevEnd = this.out.lastIndexOf('=== end\n', end);
    const round = this.out.slice(prevEnd >= 0 && prevEnd < end ? prevEnd + '=== end\n'.length : 0, end + 1);
    const answers: Record<string, Answer> = {};
    for (const m of round.matchAll(/^=== (\S+)\n([\s\S]*?)^=== rc (\d+)$/gm)) answers[m[1]] = { body: m[2], rc: Number(m[3]) };
    return answers;
  }

  /** The next complete round (fresh: started after this call), or the last one. */
  async round(fresh = true): Promise<Record<string, Answer>> {
    if (fresh) this.out = '';
    return (await waitFor(() => this.lastRound(), 30_000, `${this.name}: a complete scrape round`))!;
  }
}

/** The value of a metric line (name and, when given, a label fragment), or undefined. */
function metric(body: string, name: string, labels?: RegExp): number | undefined {
  for (const line of body.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line.trim());
    if (!m || m[1] !== name) continue;
    if (labels && !labels.test(m[2] ?? '')) continue;
    return Number(m[3]);
  }
  return undefined;
}

/**
 * A real Prometheus (Debian's) in a pod of the namespace `monitoring`, scraping every
 * exporter every second with the labels the PodMonitor gives (namespace, pod, ha_instance,
 * ha_component) and evaluating the PrometheusRule's groups as synthesized; a loop beside it
 * appends the alerts API's answer to a file once a second, one JSON document a line.
 */
class PrometheusPod {
  private constructor(readonly dir: string, private readonly live: LiveCluster) {}

  static async start(live: LiveCluster, targets: Array<{ pod: string; address: string; component: string }>): Promise<PrometheusPod> {
    const dir = mkdtempSync(join(tmpdir(), 'redis-ha-prometheus-'));
    const [staging] = findEnvironments(['staging']);
    const rule = synthEnvironment({ ...staging, redis: { ...staging.redis, metrics: true } })
      .find((o) => o.kind === 'PrometheusRule') as unknown as { spec: { groups: unknown[] } };
    writeFileSync(join(dir, 'rules.yaml'), stringify({ groups: rule.spec.groups }));
    writeFileSync(join(dir, 'prometheus.yml'), stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s', scrape_timeout: '1s' },
      rule_files: [join(dir, 'rules.yaml')],
      scrape_configs: [{
        job_name: `${live.namespace}/redis`,
        static_configs: targets.map((t) => ({
          targets: [t.address], labels: { namespace: live.namespace, pod: t.pod, ha_instance: 'redis', ha_component: t.component },
        })),
      }],
    }));
    // Prometheus replaces the shell (so it dies with the pod); the loop ends with it.
    const script = `main=$$
while kill -0 "$main" 2>/dev/null; do
  timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/9090 && printf "GET /api/v1/alerts HTTP/1.0\\r\\n\\r\\n" >&3 && cat <&3' 2>/dev/null \\
    | sed '1,/^\\r$/d' | tr -d '\\n' >>"$1/alerts.jsonl"; echo >>"$1/alerts.jsonl"
  sleep 1
done &
exec prometheus --config.file="$1/prometheus.yml" --storage.tsdb.path="$1/data" --web.listen-address=127.0.0.1:9090 --log.level=warn >"$1/prometheus.log" 2>&1`;
    await live.sim.startClientPod('prometheus-server', ['bash', '-c', script, 'prometheus', dir], { namespace: 'monitoring', labels: {} });
    return new PrometheusPod(dir, live);
  }

  /** Every alert state seen so far: `<alertname> <state>` once each, in order of first sight. */
  seen(): string[] {
    const file = join(this.dir, 'alerts.jsonl');
    if (!existsSync(file)) return [];
    const out = new Set<string>();
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      try {
        for (const a of JSON.parse(line).data.alerts) out.add(`${a.labels.alertname} ${a.state}`);
      } catch { /* an empty or partly written line */ }
    }
    return [...out];
  }

  /** The alerts of the last complete answer. */
  current(): Array<{ labels: Record<string, string>; state: string }> {
    const lines = existsSync(join(this.dir, 'alerts.jsonl')) ? readFileSync(join(this.dir, 'alerts.jsonl'), 'utf8').split('\n') : [];
    for (let i = lines.length - 1; i >= 0; i--) {
      try { return JSON.parse(lines[i]).data.alerts; } catch { /* incomplete */ }
    }
    return [];
  }

  log(): string {
    return existsSync(join(this.dir, 'prometheus.log')) ? readFileSync(join(this.dir, 'prometheus.log'), 'utf8') : '';
  }

  async stop(): Promise<void> {
    await this.live.sim.stopClientPod('prometheus-server');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** `role` label of redis_instance_info. */
function role(body: string): string | undefined {
  return /^redis_instance_info\{[^}]*role="(\w+)"/m.exec(body)?.[1];
}

describe.skipIf(missing)('live metrics: redis_exporter sidecars (staging overlay with metrics on)', () => {
  let live: LiveCluster;
  clusterPerTest(() => LiveCluster.start('staging', { metrics: true }), (started) => { live = started; });

  test('every exporter is scraped from the monitoring namespace and refused elsewhere; the metrics follow a failover', async () => {
    await live.waitHealthy();
    const ip = (pod: string) => live.sim.podIp(pod);
    const redisPods = live.redisPods().sort();
    const sentinelPods = live.sentinelPods().sort();
    const target = (pod: string) => `${ip(pod)}:9121`;
    const targets = [...redisPods, ...sentinelPods].map(target);

    // From elsewhere: another namespace, and the instance's own namespace with the client label.
    for (const [name, namespace, labels] of [['stranger', 'elsewhere', {}], ['app-client', undefined, undefined]] as const) {
      const sc = await Scraper.start(live, name, namespace, labels as Record<string, string> | undefined, targets);
      const round = await sc.round(false);
      for (const t of targets) expect(round[t]?.rc, `${name} -> ${t}`).toBe(124);
      await live.sim.stopClientPod(name);
    }

    const prom = await Scraper.start(live, 'prometheus', 'monitoring', {}, targets);
    const component = (pod: string) => (sentinelPods.includes(pod) ? 'sentinel' : pod.includes('-master-') ? 'master' : 'replica');
    const server = await PrometheusPod.start(live, [...redisPods, ...sentinelPods].map((pod) => ({ pod, address: target(pod), component: component(pod) })));
    const master = await live.onlyMaster();
    const before = (await waitFor(async () => {
      const r = await prom.round();
      const ok = targets.every((t) => r[t]?.rc === 0 && metric(r[t].body, 'redis_up') === 1)
        && metric(r[target(master)].body, 'redis_connected_slaves') === 2
        && sentinelPods.every((p) => metric(r[target(p)].body, 'redis_sentinel_master_ok_sentinels') === 3);
      return ok ? r : undefined;
    }, 60_000, 'every exporter up, the master with 2 replicas, every Sentinel seeing 3'))!;

    // What the alerts read, before: one master; replicas linked and acknowledging; memory
    // against a maxmemory; the Sentinels agreeing, CKQUORUM OK, no phantom, no TILT.
    const sentinelMasterOf = /master_name="mymaster"/;
    for (const pod of redisPods) {
      const body = before[target(pod)].body;
      expect(metric(body, 'redis_memory_used_bytes'), pod).toBeGreaterThan(0);
      expect(metric(body, 'redis_memory_max_bytes'), pod).toBeGreaterThan(0);
      expect(metric(body, 'redis_commands_processed_total'), pod).toBeGreaterThan(0);
      if (pod === master) {
        expect(metric(body, 'redis_master_repl_offset'), pod).toBeGreaterThan(0);
        for (const r of redisPods.filter((p) => p !== master)) {
          const replicaLabel = new RegExp(`slave_ip="${r}\\.`);
          expect(metric(body, 'redis_connected_slave_offset_bytes', replicaLabel), `${pod} sees ${r}`).toBeGreaterThan(0);
          expect(metric(body, 'redis_connected_slave_lag_seconds', replicaLabel), `${pod} sees ${r} acknowledging`).toBeLessThanOrEqual(1);
        }
      }
    }
    for (const pod of sentinelPods) {
      const body = before[target(pod)].body;
      expect(metric(body, 'redis_sentinel_master_sentinels', sentinelMasterOf), pod).toBe(3);
      expect(metric(body, 'redis_sentinel_tilt'), pod).toBe(0);
    }
    for (const pod of redisPods) {
      const body = before[target(pod)].body;
      expect(body, pod).toMatch(/^HTTP\/1\.[01] 200 OK/);
      expect(metric(body, 'redis_up'), pod).toBe(1);
      expect(role(body), pod).toBe(pod === master ? 'master' : 'slave');
      if (pod === master) expect(metric(body, 'redis_connected_slaves')).toBe(2);
      else expect(metric(body, 'redis_master_link_up'), pod).toBe(1);
      // Nothing the exporter asked for was refused but SLOWLOG GET (deliberately): no scrape error.
      expect(metric(body, 'redis_exporter_last_scrape_error'), pod).toBe(0);
    }
    for (const pod of sentinelPods) {
      const body = before[target(pod)].body;
      expect(metric(body, 'redis_up'), pod).toBe(1);
      expect(body, pod).toMatch(/^redis_instance_info\{[^}]*redis_mode="sentinel"/m);
      expect(metric(body, 'redis_sentinel_masters'), pod).toBe(1);
      expect(metric(body, 'redis_sentinel_master_ok_sentinels', /master_name="mymaster"/), pod).toBe(3);
      expect(metric(body, 'redis_sentinel_master_ok_slaves', /master_name="mymaster"/), pod).toBe(2);
      expect(metric(body, 'redis_sentinel_master_status', /master_status="ok"/), pod).toBe(1);
      expect(metric(body, 'redis_sentinel_master_ckquorum_status', /master_name="mymaster"/), pod).toBe(1);
      expect(metric(body, 'redis_exporter_last_scrape_error'), pod).toBe(0);
    }
    const masterAddress = (body: string) => /^redis_sentinel_master_status\{[^}]*master_address="([^"]+)"/m.exec(body)?.[1];
    const addressBefore = masterAddress(before[target(sentinelPods[0])].body);
    // The Sentinels' exported master address names the current master (by its pod's DNS name).
    expect(addressBefore).toMatch(new RegExp(`^${master}\\.`));

    // Failover: the master's Redis dies for good; a replica is promoted.
    await live.sim.killContainer(master, 'redis', { restart: false });
    const promoted = await live.waitForSentinelMasterOtherThan(master, 60_000);
    const others = redisPods.filter((p) => p !== master && p !== promoted);
    const after = (await waitFor(async () => {
      const r = await prom.round();
      const ok = role(r[target(promoted)]?.body ?? '') === 'master'
        && metric(r[target(promoted)].body, 'redis_connected_slaves') === others.length
        && others.every((p) => metric(r[target(p)]?.body ?? '', 'redis_master_link_up') === 1)
        && sentinelPods.every((p) => masterAddress(r[target(p)]?.body ?? '') !== addressBefore);
      return ok ? r : undefined;
    }, 60_000, `${promoted}'s exporter to report role master with ${others.length} replica(s), and the Sentinels the new master`))!;

    expect(role(after[target(promoted)].body)).toBe('master');
    for (const p of others) expect(role(after[target(p)].body), p).toBe('slave');
    // The dead master's exporter still answers, and says its server is down.
    expect(after[target(master)].rc).toBe(0);
    expect(metric(after[target(master)].body, 'redis_up')).toBe(0);
    for (const pod of sentinelPods) {
      const body = after[target(pod)].body;
      expect(metric(body, 'redis_sentinel_master_status', /master_status="ok"/), pod).toBe(1);
      expect(masterAddress(body), pod).not.toBe(addressBefore);
      expect(masterAddress(body), pod).toBe(masterAddress(after[target(sentinelPods[0])].body));
      expect(metric(body, 'redis_sentinel_master_ckquorum_status', sentinelMasterOf), pod).toBe(1);
      expect(metric(body, 'redis_sentinel_master_sentinels', sentinelMasterOf), pod).toBe(3);
    }
    // The other replica follows the new master: link up, named by the new master's host.
    for (const p of others) {
      expect(metric(after[target(p)].body, 'redis_master_link_up', new RegExp(`master_host="${promoted}\\.`)), p).toBe(1);
    }
    await live.sim.stopClientPod('prometheus');

    // The real Prometheus, evaluating the synthesized rules on these exporters: "a failover
    // happened" fires; "not exactly one master" (at most pending for the few seconds without
    // one) never fires, also once its for-duration (60s) has passed since the failover.
    try {
      await waitFor(() => server.seen().includes('RedisHAFailover firing') || undefined, 60_000,
        'Prometheus to fire RedisHAFailover').catch((err) => { throw new Error(`${err.message}; seen ${JSON.stringify(server.seen())}; log ${server.log()}`); });
      const failover = server.current().find((a) => a.labels.alertname === 'RedisHAFailover');
      expect(failover?.labels).toMatchObject({ namespace: live.namespace, ha_instance: 'redis', severity: 'info' });
      await new Promise((r) => setTimeout(r, 70_000));
      const seen = server.seen();
      console.log(`alerts seen by Prometheus across the failover: ${seen.join(', ')}`);
      expect(seen).not.toContain('RedisHANotExactlyOneMaster firing');
      expect(seen).not.toContain('RedisHASentinelsDisagree firing');
      expect(seen).not.toContain('RedisHASentinelQuorumUnreachable firing');
      expect(seen).not.toContain('RedisHAPhantomSentinels firing');
      // The dead master's server stays down (restart: false): that one is meant to fire.
      expect(server.current().filter((a) => a.state === 'firing').map((a) => `${a.labels.alertname} ${a.labels.pod ?? ''}`.trim()).sort())
        .toEqual(['RedisHAFailover', `RedisHAServerDown ${master}`]);
    } finally {
      await server.stop();
    }
  }, 420_000);
});
