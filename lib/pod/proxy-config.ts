import { PROXY_LUA } from './scripts.generated';

/**
 * The proxy tier's HAProxy configuration (haproxy.cfg), a pure function of its inputs.
 *
 * Two TCP frontends: `write` forwards to the backend `redis_write`, whose servers (one per
 * Redis pod) all start in maintenance; the Lua decider (lib/pod/proxy/redis-proxy.lua)
 * opens only the master that the newest Sentinel configuration names and that says ROLE
 * master, and closes (and shuts the sessions of) any other. `read` forwards to
 * `redis_read`, the replicas the decider finds in sync. HAProxy's own TCP check runs
 * beside it (a server must pass both), with `on-marked-down shutdown-sessions`.
 *
 * Pod addresses are resolved by HAProxy (libc at start, then the cluster DNS every
 * second), so a Redis pod recreated with a new IP is followed. A DNS failure keeps the last
 * address (the checks decide whether it answers) instead of dropping the server.
 */
export interface ProxyConfigInput {
  /** Pod DNS names relative to the namespace (`<pod>.<service>`), master first. */
  readonly redisPods: readonly string[];
  /** The Sentinel Service (ClusterIP): the decider's first Sentinel; it learns the others from it. */
  readonly sentinelService: string;
  readonly clusterDomain: string;
  readonly redisPort: number;
  readonly sentinelPort: number;
  readonly writePort: number;
  readonly readPort: number;
  readonly metricsPort: number;
  /** How long the decider holds a client while no server is open (PROXY_TIMINGS.holdMs). */
  readonly holdMs: number;
  /** TLS to the servers (CA file) and to clients (certificate file, its key beside it as `<file>.key`). */
  readonly tls?: { readonly caFile: string; readonly certFile: string };
}

/** Where the proxy's files live in its container (the official image's configuration directory). */
export const PROXY_CONFIG_DIR = '/usr/local/etc/haproxy';
export const PROXY_CONFIG_FILE = 'haproxy.cfg';
export const PROXY_LUA_FILE = 'redis-proxy.lua';

/** Backend names the Lua decider acts on (passed to it in its environment). */
export const PROXY_BACKENDS = { write: 'redis_write', read: 'redis_read', sentinels: 'sentinels' } as const;

/** The Lua decider's source. */
export function proxyLua(): string {
  return PROXY_LUA[PROXY_LUA_FILE];
}

export function renderProxyConfig(c: ProxyConfigInput): string {
  const fqdn = (host: string) => `${host}.\${POD_NAMESPACE}.svc.${c.clusterDomain}`;
  const serverTls = (host: string) => (c.tls ? ` ssl verify required ca-file ${c.tls.caFile} verifyhost "${fqdn(host)}" check-ssl` : '');
  const servers = c.redisPods.map((host) => `  server ${host.split('.')[0]} "${fqdn(host)}:${c.redisPort}"${serverTls(host)}`);
  const bindTls = c.tls ? ` ssl crt ${c.tls.certFile}` : '';
  const serverDefaults = '  default-server check inter 1s fall 2 rise 1 on-marked-down shutdown-sessions resolvers cluster resolve-prefer ipv4 init-addr last,libc,none disabled';
  return [
    '# Rendered by lib/pod/proxy-config.ts. Writes go only to the node the Lua decider opens.',
    'global',
    `  lua-load ${PROXY_CONFIG_DIR}/${PROXY_LUA_FILE}`,
    '',
    'defaults',
    '  mode tcp',
    '  option dontlognull',
    '  timeout connect 1s',
    '  timeout check 1s',
    // Redis clients keep idle connections for long (pools, subscribers): no idle cut.
    '  timeout client 24h',
    '  timeout server 24h',
    // A failed connection to the master is not retried (there is no other server to try,
    // and HAProxy waits a second between retries): the client is told at once and reconnects.
    '  retries 0',
    '',
    'resolvers cluster',
    '  parse-resolv-conf',
    '  resolve_retries 2',
    '  timeout resolve 1s',
    '  timeout retry 1s',
    '  hold valid 1s',
    '  hold obsolete 1s',
    '  hold nx 1h',
    '  hold refused 1h',
    '  hold timeout 1h',
    '  hold other 1h',
    '',
    // With no server open (a failover in progress), the decider holds a new client up to
    // holdMs and lets it on to the server it opens; after that it is refused. (The inspect
    // delay only bounds the hold: rules that decide at once do not wait for it.)
    ...(['write', 'read'] as const).flatMap((f) => [
      `frontend ${f}`,
      `  bind :${f === 'write' ? c.writePort : c.readPort}${bindTls}`,
      `  tcp-request inspect-delay ${c.holdMs + 1000}ms`,
      `  tcp-request content lua.hold_${f}`,
      `  tcp-request content reject if { nbsrv(${PROXY_BACKENDS[f]}) eq 0 }`,
      `  default_backend ${PROXY_BACKENDS[f]}`,
      '',
    ]),
    'frontend metrics',
    '  mode http',
    '  timeout client 10s',
    `  bind :${c.metricsPort}`,
    '  monitor-uri /healthz',
    '  http-request use-service prometheus-exporter if { path /metrics }',
    '  http-request deny',
    '',
    `backend ${PROXY_BACKENDS.write}`,
    serverDefaults,
    ...servers,
    '',
    `backend ${PROXY_BACKENDS.read}`,
    '  balance leastconn',
    // Reads may go to any open replica: a failed connection tries another one.
    '  retries 1',
    '  option redispatch',
    serverDefaults,
    ...servers,
    '',
    // Never used for traffic: the decider's first Sentinel address (the Service's ClusterIP).
    `backend ${PROXY_BACKENDS.sentinels}`,
    `  server seed "${fqdn(c.sentinelService)}:${c.sentinelPort}" resolvers cluster init-addr last,libc,none`,
    '',
  ].join('\n');
}
