/**
 * A round's aggregate does not depend on the order in which uploads arrived: the same uploads
 * give the same targets, bit for bit, however the network ordered them. (FedAvg's weighted
 * mean differed in its last bits from run to run before contributions were put in participant
 * order.)
 */
import { describe, expect, it } from 'vitest';
import { packTensor, readContribution, type Contribution } from '../../protocol/index.js';
import { Session } from '../../server/session.js';
import type { SessionConfig } from '../../server/session-config.js';
import { valuesDigest } from '../../server/session-config.js';
import type { Outgoing, PeerLink } from '../../server/wire.js';

const ids = ['p0', 'p1', 'p2', 'p3', 'p4'];
const config = (algorithm: string): SessionConfig => ({
  id: 's', algorithm, rounds: 1, participants: ids.map((id) => ({ id, token: `t-${id}` })), minParticipants: ids.length,
  numClasses: 3, referenceSize: 4, referencePerRound: 4, temperature: 1, alpha: 0.5, uploadDtype: 'float32',
  roundTimeoutMs: 60_000, trainTimeoutMs: 60_000, onRoundFailure: 'continue', seed: 1, maxMessageBytes: 1 << 20,
});

/** Values whose weighted float sums round differently in different orders. */
function upload(algorithm: string, k: number): { values: Float32Array; sampleCount: number } {
  // Weights where order decides: with equal sample counts, 0.2·1e20 + 0.2·1 − 0.2·1e20 is 0 in
  // this order and 0.2 when the large terms cancel first.
  if (algorithm === 'fedavg') return { values: Float32Array.from({ length: 7 }, (_, i) => [1e20, 1 + i, -1e20, 0, 0][k]!), sampleCount: 10 };
  const values = new Float32Array(12);
  for (let r = 0; r < 4; r++) {
    const a = Math.fround(1 / (3 + k + r));
    const b = Math.fround(1e-7 * (k + 1));
    values.set([a, b, 1 - a - b], r * 3);
  }
  return { values, sampleCount: 10 + k };
}

async function targetsInOrder(algorithm: string, order: readonly number[]): Promise<Map<string, string | null>> {
  const session = new Session(config(algorithm));
  const digests = new Map<string, string | null>();
  const link = (id: string): PeerLink => ({
    send: (event, message) => {
      if (event === 'target') {
        const { target } = message as Outgoing['target'];
        digests.set(id, target === null ? null : valuesDigest(target.values));
      }
      return 0;
    },
  });
  for (const id of ids) session.join(id, link(id));
  await new Promise((resolve) => setImmediate(resolve));
  const knowledge = session.strategy.knowledge;
  for (const k of order) {
    const participant = ids[k]!;
    const { values, sampleCount } = upload(algorithm, k);
    const expectation = session.expectUpload(participant, 1)!;
    const shape = knowledge === 'weights' ? [values.length] : [4, 3];
    const contribution: Contribution = readContribution(
      participant,
      { kind: knowledge as 'weights', values: packTensor(values, shape, 'float32'), sampleCount },
      expectation,
    );
    session.upload(participant, 1, contribution, 0);
  }
  session.end('test over');
  return digests;
}

describe('a round aggregates in participant order, not arrival order', () => {
  for (const algorithm of ['fedavg', 'dml', 'dsfl']) {
    it(`${algorithm}: the same uploads in two orders give the same targets, bit for bit`, async () => {
      const forward = await targetsInOrder(algorithm, [0, 1, 2, 3, 4]);
      const backward = await targetsInOrder(algorithm, [4, 2, 0, 3, 1]);
      expect(forward.size).toBe(ids.length);
      expect(backward).toEqual(forward);
    });
  }
});
