// Run in client pods of the live migrate test (bundled with esbuild): fills the old single
// Redis, changes it during the cut-over, and compares it with the HA master (found through
// Sentinel as `app`). One JSON line on stdout.
import Redis from 'ioredis';
import { compareKeys, fill } from '../../unit/support/migrate-data';

const [mode, host] = process.argv.slice(2);

async function main(): Promise<unknown> {
  const source = new Redis({ host, port: 6379, password: process.env.SOURCE_PASSWORD, retryStrategy: (n) => (n > 100 ? null : 100) });
  source.on('error', () => undefined);
  await source.ping();
  try {
    if (mode === 'fill') {
      await fill(source);
      // Enough small keys for the copy to take a while (so the test can interrupt it).
      for (let i = 0; i < 20_000; i += 1000) {
        const p = source.pipeline();
        for (let j = i; j < i + 1000; j++) {
          if (j % 3 === 0) p.set(`many:${j}`, `value-${j}`, 'PX', 900_000 + j);
          else p.set(`many:${j}`, `value-${j}`);
        }
        await p.exec();
      }
      return { keys: await source.dbsize() };
    }
    if (mode === 'mutate') {
      await source.set('follow:new', 'v', 'PX', 600_000);
      await source.rpush('list', 'appended');
      await source.del('str');
      await source.hset('hash', 'f1', 'changed');
      return { mutated: true };
    }
    const password = process.env.APP_PASSWORD!;
    const target = new Redis({
      sentinels: [{ host: 'redis-sentinel', port: 26379 }], name: 'mymaster', sentinelUsername: 'app', sentinelPassword: password,
      username: 'app', password, enableReadyCheck: false,
    });
    try {
      return { ...(await compareKeys(source, target)), strOnTarget: await target.exists('str') };
    } finally {
      target.disconnect();
    }
  } finally {
    source.disconnect();
  }
}

main().then((r) => { console.log(JSON.stringify(r)); process.exit(0); }, (e) => { console.error(e); process.exit(1); });
