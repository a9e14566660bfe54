/**
 * Top-k sparse knowledge through a real coordinator (uploadTopK, targetTopK): the session tells
 * participants its k, decodes top-k uploads to dense rows (the remaining mass spread uniformly)
 * and aggregates them as it would dense ones; targets go down top-k when asked; a malformed top-k
 * upload is refused with its code and the round still closes on the honest ones.
 */
import { describe, expect, it } from 'vitest';
import {
  clientMessages,
  decodeMessage,
  decodeTopKRows,
  encodeMessage,
  expandTopK,
  isTopK,
  packTensor,
  packTopK,
  PROTOCOL_VERSION,
  readTopKProbabilities,
  type TopKWireTensor,
} from '../../protocol/index.js';
import { leaveOneOutMeans } from '../../server/aggregators/sums.js';
import type { SessionConfig } from '../../server/session-config.js';
import { readPush } from '../../server/wire.js';
import { C, config, coordinatorPerTest, predictions, REFERENCE, refusalCode, until } from './raw-participant.js';

describe('top-k sparse uploads and targets', () => {
  const fixture = coordinatorPerTest();

  const session = async (overrides: Partial<SessionConfig>) => {
    const s = fixture.coordinator.createSession(config({ id: 'test', ...overrides }));
    const ps = ['a', 'b', 'c'].map((id) => fixture.participant(id));
    const joined = await Promise.all(ps.map((p) => p.join(s.config.id)));
    await until(() => ps.every((p) => p.rounds.length === 1), 'round 1');
    return { s, ps, joined };
  };

  it('uploadTopK: announced at the join; uploads decoded to dense rows and aggregated as dense ones', async () => {
    const { ps, joined } = await session({ uploadTopK: 1 });
    expect(joined[0]!.info.uploadTopK).toBe(1);
    const sent = [0, 1, 2].map((k) => packTopK(predictions(k), [REFERENCE, C], 1, 'float32'));
    for (const [k, p] of ps.entries()) expect(refusalCode(await p.upload({ values: sent[k] }))).toBe('ok');
    await until(() => ps.every((p) => p.targets.length === 1), 'targets');
    // What the coordinator must have aggregated: each upload spread back to dense rows.
    const dense = sent.map((t) => expandTopK(decodeTopKRows(t)));
    const exact = leaveOneOutMeans(dense);
    ps.forEach((p, k) => {
      const target = p.targets[0]!.target!;
      expect(isTopK(target)).toBe(false);
      const got = new Float32Array(target.data.slice().buffer);
      got.forEach((v, i) => expect(v).toBeCloseTo(exact[k]![i]!, 6));
    });
    // And not the dense predictions themselves: top-1 of three classes lost something.
    const fromDense = leaveOneOutMeans([0, 1, 2].map((k) => predictions(k)));
    expect(Math.max(...exact[0]!.map((v, i) => Math.abs(v - fromDense[0]![i]!)))).toBeGreaterThan(1e-3);
  });

  it('targetTopK: probability targets go down as their k largest per row, in the target dtype', async () => {
    const { ps } = await session({ targetTopK: 2, targetDtype: 'uint8' });
    for (const [k, p] of ps.entries()) {
      expect(refusalCode(await p.upload({ values: packTensor(predictions(k), [REFERENCE, C], 'float32') }))).toBe('ok');
    }
    await until(() => ps.every((p) => p.targets.length === 1), 'targets');
    const exact = leaveOneOutMeans([0, 1, 2].map((k) => predictions(k)));
    ps.forEach((p, k) => {
      const target = p.targets[0]!.target! as TopKWireTensor;
      expect(isTopK(target)).toBe(true);
      expect([target.k, target.dtype, target.indices.byteLength, target.data.byteLength]).toEqual([2, 'uint8', REFERENCE * 2, REFERENCE * 2]);
      const got = readTopKProbabilities(target, [REFERENCE, C]);
      // Each row's two largest within a uint8 step; the third gets what remains, so within two steps.
      for (let i = 0; i < got.length; i++) expect(Math.abs(got[i]! - exact[k]![i]!)).toBeLessThanOrEqual(2 / 255);
    });
  });

  it('refuses a top-k upload with a repeated index (E_VALUE), a k past the classes, and closes the round on the honest uploads', async () => {
    const { ps } = await session({ uploadTopK: 2, minParticipants: 2, roundTimeoutMs: 1000 });
    const bad = packTopK(predictions(0), [REFERENCE, C], 2, 'float32');
    bad.indices[1] = bad.indices[0]!;
    expect(refusalCode(await ps[0]!.upload({ values: bad }))).toBe('E_VALUE');
    expect(refusalCode(await ps[0]!.upload({ values: { ...packTopK(predictions(0), [REFERENCE, C], 2, 'float32'), k: 4 } }))).toBe('E_VALUE');
    for (const k of [1, 2]) expect(refusalCode(await ps[k]!.upload({ values: packTopK(predictions(k), [REFERENCE, C], 2, 'float32') }))).toBe('ok');
    await until(() => ps[1]!.targets.length === 1 && ps[2]!.targets.length === 1, 'targets of the honest two', 15_000);
    expect(ps[1]!.targets[0]!.contributors).toBe(2);
  });

  it('checks uploadTopK and targetTopK against the classes', () => {
    expect(() => fixture.coordinator.createSession(config({ uploadTopK: 0 }))).toThrow(/uploadTopK must be an integer in \[1, 3\]/);
    expect(() => fixture.coordinator.createSession(config({ targetTopK: 4 }))).toThrow(/targetTopK must be an integer in \[1, 3\]/);
  });
});

describe('top-k pushes (asynchronous sessions)', () => {
  it('keep their form through the push schema and decode to the dense rows', () => {
    const sent = packTopK(predictions(1), [REFERENCE, C], 1, 'uint8');
    const envelope = encodeMessage(clientMessages.push, { v: PROTOCOL_VERSION, session: 's', participant: 'a', shard: 0, step: 3, values: sent });
    const message = decodeMessage(clientMessages.push, envelope);
    const contribution = readPush('a', message, { kind: 'reference-predictions', round: 0, numClasses: C, rows: REFERENCE });
    expect(Array.from(contribution.values)).toEqual(Array.from(expandTopK(decodeTopKRows(sent))));
  });
});
