/** Participants spread over worker threads so that synchronous rounds wait on balanced loads. */
import { describe, expect, it } from 'vitest';
import { balanceWorkers } from '../../simulations/simulate.js';

describe('balancing participants over worker threads', () => {
  it('puts the largest private sets first, each on the least-loaded worker', () => {
    // The default simulation's shard sizes: round-robin gives loads 2586 / 4414; LPT 3320 / 3680.
    expect(balanceWorkers([956, 3320, 1630, 1094], 2)).toEqual([1, 0, 1, 1]);
    expect(balanceWorkers([5, 5, 5], 3)).toEqual([0, 1, 2]);
    expect(balanceWorkers([7, 1], 1)).toEqual([0, 0]);
  });
});
