/**
 * The drill's DrillTarget on a real system, from the command line's connection options
 * (connect.ts): the application's Sentinel-aware client with the examples' settings, one
 * subscriber per Sentinel, and reads through HaConnection (which applies --map).
 */
import Redis, { RedisOptions } from 'ioredis';
import { Address, formatAddress, HaConnection, parseAddress } from './connect';
import { CLIENT_SETTINGS, CommandClient, DrillTarget } from './drill';
import { SentinelEvent } from './timeline';

const now = () => performance.timeOrigin + performance.now();

/** "host:port" of a Sentinel reply or a natMap key. */
function toAddress(text: string): Address {
  return parseAddress(text, 'address');
}

/**
 * ioredis options of the application's client of the master, as the examples make it
 * (examples/typescript/sentinel-client.ts sentinelOptions), through --map.
 */
export function writerOptions(conn: HaConnection, sentinels: Address[]): RedisOptions {
  const o = conn.opts;
  const s = CLIENT_SETTINGS;
  return {
    // ioredis maps only the addresses Sentinels report (natMap), not the ones it is given.
    sentinels: sentinels.map((a) => conn.target(a)).map((a) => ({ host: a.host, port: a.port })),
    name: o.masterName,
    role: 'master',
    username: o.user,
    password: o.password,
    sentinelUsername: o.sentinelUser,
    sentinelPassword: o.sentinelPassword,
    // Every address a Sentinel names (the master, the other Sentinels) and those given go through --map.
    natMap: (key: string) => {
      const t = conn.target(toAddress(key));
      return { host: t.host, port: t.port };
    },
    ...(o.tls ? { tls: { ca: o.ca }, sentinelTLS: { ca: o.ca }, enableTLSForSentinelMode: true } : {}),
    connectTimeout: s.connectTimeoutMs,
    commandTimeout: s.commandTimeoutMs,
    retryStrategy: () => s.retryDelayMs,
    sentinelRetryStrategy: () => s.sentinelRetryDelayMs,
    enableReadyCheck: false,
    reconnectOnError: (err) => (/READONLY/.test(err.message) ? 2 : false),
    maxRetriesPerRequest: 2,
  };
}

/**
 * The application's client of the master, kept as a pool keeps a connection: one whose
 * command times out is dropped and a new client made (it asks the Sentinels again). A
 * reconnect of the same client (the examples' disconnect(true)) is not enough through --map:
 * a kubectl port-forward (or any forwarder) to a pod that is gone accepts and closes
 * connections in quick succession, and ioredis 5 can then stay "ready" on a closed socket
 * for good; a drill saw no write acknowledged for 30 s after a switch that way.
 */
class ReplacingClient implements CommandClient {
  private client: Redis;

  constructor(private readonly options: RedisOptions) {
    this.client = this.make();
  }

  async call(command: string, ...args: string[]): Promise<unknown> {
    const used = this.client;
    try {
      return await used.call(command, ...args);
    } catch (err) {
      if (/Command timed out/.test((err as Error).message) && this.client === used) {
        this.client = this.make();
        used.disconnect();
      }
      throw err;
    }
  }

  disconnect(): void {
    this.client.disconnect();
  }

  private make(): Redis {
    const client = new Redis(this.options);
    client.on('error', () => { /* reported through the writes that fail */ });
    return client;
  }
}

/** A Sentinel's event stream (PSUBSCRIBE *), resubscribing after a lost connection. */
async function subscriber(conn: HaConnection, sentinel: Address, onEvent: (e: SentinelEvent) => void): Promise<Redis> {
  const o = conn.opts;
  const t = conn.target(sentinel);
  const label = formatAddress(sentinel);
  const client = new Redis({
    host: t.host, port: t.port, username: o.sentinelUser, password: o.sentinelPassword,
    ...(o.tls ? { tls: { ca: o.ca } } : {}),
    lazyConnect: true, enableReadyCheck: false, connectTimeout: o.connectTimeoutMs,
    retryStrategy: () => 500, maxRetriesPerRequest: 0, autoResubscribe: true,
  });
  client.on('error', () => { /* it reconnects */ });
  client.on('pmessage', (_pattern: string, channel: string, message: string) => {
    // Sentinel's own gossip is not an event.
    if (channel.startsWith('__sentinel__')) return;
    onEvent({ at: now(), sentinel: label, event: channel, detail: String(message) });
  });
  try {
    await client.connect();
    await client.psubscribe('*');
  } catch (err) {
    client.disconnect();
    throw err;
  }
  return client;
}

export interface DrillConnection extends DrillTarget {
  close(): Promise<void>;
}

/** The drill's target through `conn` (the application user's connection options). */
export async function drillTarget(conn: HaConnection): Promise<DrillConnection> {
  const { sentinels } = await conn.discoverSentinels();
  const writer = new ReplacingClient(writerOptions(conn, sentinels));
  const subscribers: Redis[] = [];
  return {
    writer,
    masterAddress: async () => formatAddress(await conn.masterAddress()),
    async subscribe(onEvent) {
      const skipped: string[] = [];
      const subscribed: string[] = [];
      await Promise.all(sentinels.map(async (s) => {
        try {
          subscribers.push(await subscriber(conn, s, onEvent));
          subscribed.push(formatAddress(s));
        } catch (err) {
          skipped.push(`${conn.describe(s)}: ${(err as Error).message}`);
        }
      }));
      return {
        sentinels: subscribed.sort(),
        skipped,
        close: async () => { for (const c of subscribers.splice(0)) c.disconnect(); },
      };
    },
    read: async (address, keys) => conn.redisCommand<Array<string | null>>(toAddress(address), 'MGET', ...keys),
    remove: async (address, keys) => { await conn.redisCommand(toAddress(address), 'UNLINK', ...keys); },
    async close() {
      for (const c of subscribers.splice(0)) c.disconnect();
      writer.disconnect();
      await conn.close();
    },
  };
}
