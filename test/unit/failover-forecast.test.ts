// promotionForecast (lib/ops/failover.ts): which replica a Sentinel would promote, from its
// SENTINEL REPLICAS view, and whether that pick holds once `redis-ha failover` has paused
// writes. A clean-clone CI run promoted redis-slave-0 after `failover --to redis-slave-1`:
// the Sentinel had not seen slave-1's replica-priority 1 yet, slave-1 won on a stale offset,
// and once the pause let both replicas catch up the run id picked slave-0.
import { describe, expect, it } from 'vitest';
import { promotionForecast } from '../../lib/ops/failover';

const replica = (port: number, priority: number, offset: number, runid: string, flags = 'slave'): Record<string, string> =>
  ({ name: `10.0.0.1:${port}`, ip: '10.0.0.1', port: String(port), flags, 'slave-priority': String(priority), 'slave-repl-offset': String(offset), runid });

describe('promotionForecast', () => {
  it('picks by lowest priority first; the pick holds (byPriority) when every other candidate has a higher one', () => {
    expect(promotionForecast([replica(1, 100, 900, 'a'), replica(2, 1, 100, 'b')])).toEqual({ address: '10.0.0.1:2', priority: 1, byPriority: true });
  });

  it('a pick made by the offset between equal priorities does not hold: the offsets end equal under the pause', () => {
    const stale = promotionForecast([replica(1, 100, 100, 'a'), replica(2, 100, 900, 'b')]);
    expect(stale).toEqual({ address: '10.0.0.1:2', priority: 100, byPriority: false });
    // The same two replicas once both have the whole stream: the run id decides, and it is the other one.
    expect(promotionForecast([replica(1, 100, 900, 'a'), replica(2, 100, 900, 'b')])?.address).toBe('10.0.0.1:1');
  });

  it('leaves out replicas with priority 0 or flagged down; a single candidate holds; none gives nothing', () => {
    expect(promotionForecast([replica(1, 0, 999, 'a'), replica(2, 100, 1, 'b'), replica(3, 1, 5, 'c', 'slave,s_down')]))
      .toEqual({ address: '10.0.0.1:2', priority: 100, byPriority: true });
    expect(promotionForecast([replica(1, 0, 999, 'a')])).toBeUndefined();
  });
});
