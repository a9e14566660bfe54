/** The co-distillation store: latest predictions per shard, staleness, leave-one-out, memory bound. */
import { describe, expect, it } from 'vitest';
import { packTensor, PROTOCOL_VERSION, shardIds, type ClientMessage, type WireTensor } from '../../protocol/index.js';
import { AsyncExchange } from '../../server/async-exchange.js';
import { readPush } from '../../server/wire.js';
import { createStrategy } from '../../server/strategies/index.js';

const settings = { shards: 2, exchangeEvery: 1, burnInSteps: 0, stalenessMs: 1000 };
const strategy = createStrategy('codistillation', { referenceSize: 3, referencePerRound: 3, seed: 1, numClasses: 2 });
const rows = (values: number[]) => packTensor(new Float32Array(values), [values.length / 2, 2], 'float32');

/** A push as the coordinator hands it over: decoded and checked against the shard's rows (server/wire.ts), then stored. */
function push(exchange: AsyncExchange, participant: string, shard: number, step: number, values: WireTensor, now: number): void {
  const expectation = { kind: 'reference-predictions' as const, round: 0, numClasses: 2, rows: exchange.rows(shard) };
  const message: ClientMessage<'push'> = { v: PROTOCOL_VERSION, session: 's', participant, shard, step, values };
  exchange.push(participant, shard, step, readPush(participant, message, expectation), now);
}

describe('asynchronous exchange', () => {
  it('cuts the reference set into contiguous shards both ends agree on', () => {
    expect([0, 1, 2].map((s) => shardIds(10, 3, s))).toEqual([[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]);
    expect(() => shardIds(10, 3, 3)).toThrow(/^E_SCHEMA: shard 3 does not exist; the reference set has shards 0…2$/);
  });

  it('serves the mean of the others\' fresh predictions, never one\'s own, and forgets who leaves', () => {
    const exchange = new AsyncExchange(strategy, settings, 3);
    expect(exchange.rows(0)).toBe(1);
    expect(exchange.rows(1)).toBe(2);
    push(exchange, 'a', 1, 10, rows([0.8, 0.2, 0.6, 0.4]), 0);
    expect(exchange.ensembleFor('a', 1, 0)).toBeNull(); // only its own
    push(exchange, 'b', 1, 12, rows([0.4, 0.6, 0.2, 0.8]), 500);
    push(exchange, 'c', 1, 3, rows([0.0, 1.0, 1.0, 0.0]), 900);
    const forA = exchange.ensembleFor('a', 1, 1000)!;
    expect([...forA.values].map((v) => +v.toFixed(6))).toEqual([0.2, 0.8, 0.6, 0.4]);
    expect(forA).toMatchObject({ contributors: 2, oldestMs: 500 });
    // At t = 1600 b's predictions (from t = 500) are past the 1000 ms bound; c's are not.
    expect([...exchange.ensembleFor('a', 1, 1600)!.values]).toEqual([0, 1, 1, 0]);
    expect(exchange.ensembleFor('a', 1, 5000)).toBeNull();
    // A newer push replaces the older one; an older step is refused.
    push(exchange, 'b', 1, 20, rows([1, 0, 1, 0]), 1700);
    expect(() => push(exchange, 'b', 1, 19, rows([1, 0, 1, 0]), 1800)).toThrow(/^E_ROUND_CLOSED: b already pushed shard 1 at step 20; step 19 is older$/);
    expect(exchange.size).toBe(3);
    exchange.forget('b');
    expect(exchange.size).toBe(2);
    expect(exchange.ensembleFor('a', 1, 1700)!.contributors).toBe(1);
  });

  it('validates pushed predictions like uploads', () => {
    const exchange = new AsyncExchange(strategy, settings, 3);
    expect(() => push(exchange, 'a', 1, 1, rows([0.8, 0.2]), 0)).toThrow(/^E_SHAPE: reference-predictions for round 0: tensor has shape \[1,2\]; expected \[2,2\]$/);
    expect(() => push(exchange, 'a', 1, 1, rows([3, -2, 0.5, 0.5]), 0)).toThrow(/^E_VALUE: /);
    expect(() => push(exchange, 'a', 2, 1, rows([0.5, 0.5]), 0)).toThrow(/^E_SCHEMA: shard 2 does not exist/);
  });
});
