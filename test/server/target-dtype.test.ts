/** Targets can travel down in float16 or uint8 (targetDtype): fewer bytes, values within the dtype's step of the float32 target. */
import { describe, expect, it } from 'vitest';
import { encodeEnvelope, packTensor, PROTOCOL_VERSION, unpackTensor, type WireDtype } from '../../protocol/index.js';
import { leaveOneOutMeans } from '../../server/aggregators/sums.js';
import { C, config, coordinatorPerTest, predictions, REFERENCE, refusalCode, until } from './raw-participant.js';

describe('targetDtype', () => {
  const fixture = coordinatorPerTest();

  const roundWith = async (targetDtype: WireDtype | undefined) => {
    const session = fixture.coordinator.createSession(config({ id: `t-${targetDtype ?? 'default'}`, targetDtype }));
    const ps = ['a', 'b', 'c'].map((id) => fixture.participant(id));
    await Promise.all(ps.map((p) => p.join(session.config.id)));
    await until(() => ps.every((p) => p.rounds.length === 1), 'round 1');
    for (const [k, p] of ps.entries()) {
      const reply = await p.send('upload', encodeEnvelope({
        v: PROTOCOL_VERSION, session: session.config.id, round: 1, participant: p.id, kind: 'reference-predictions', values: packTensor(predictions(k), [REFERENCE, C], 'float32'),
      }));
      expect(refusalCode(reply)).toBe('ok');
    }
    await until(() => ps.every((p) => p.targets.length === 1), 'targets');
    return { ps };
  };

  for (const [dtype, step] of [['float16', 2 ** -11], ['uint8', 1 / 255]] as const) {
    it(`${dtype}: each target arrives as ${dtype}, within its step of the float32 target`, async () => {
      const { ps } = await roundWith(dtype);
      const exact = leaveOneOutMeans([0, 1, 2].map((k) => predictions(k)));
      ps.forEach((p, k) => {
        const wire = p.targets[0]!.target!;
        expect(wire.dtype).toBe(dtype);
        const got = unpackTensor(wire);
        for (let i = 0; i < got.length; i++) expect(Math.abs(got[i]! - exact[k]![i]!)).toBeLessThanOrEqual(step);
      });
    });
  }

  it('float32 when omitted', async () => {
    const { ps } = await roundWith(undefined);
    expect(ps[0]!.targets[0]!.target!.dtype).toBe('float32');
  });
});
