/**
 * Round announcements over real sockets (a real coordinator, hand-driven participants): each
 * participant decodes the same reference ids the session's strategy drew, and the envelope it
 * receives is smaller than the plain-array one by exactly what the bitmap saves.
 */
import { describe, expect, it } from 'vitest';
import { encodeEnvelope, encodeReferenceIds, type ServerMessage } from '../../protocol/index.js';
import { referenceIdsForRound } from '../../server/strategies/reference-ids.js';
import { config, coordinatorPerTest, type RawParticipant, until } from '../server/raw-participant.js';

const IDS = ['a', 'b', 'c'];
const ROWS = 1000;

/** Joins everyone and returns, per participant, round 1 as decoded and the envelope bytes it arrived in. */
async function firstRound(participant: (id: string) => RawParticipant): Promise<Array<{ round: ServerMessage<'round'>; bytes: number }>> {
  const peers = IDS.map(participant);
  const envelopes = new Map<RawParticipant, number>();
  for (const p of peers) p.socket.on('round', (b: Uint8Array) => envelopes.set(p, b.byteLength));
  await Promise.all(peers.map((p) => p.join()));
  await until(() => peers.every((p) => p.rounds.length > 0 && envelopes.has(p)), 'round 1 announced to everyone');
  return peers.map((p) => ({ round: p.rounds[0]!, bytes: envelopes.get(p)! }));
}

/** What the same announcement cost as version 1 sent it: the ids as a msgpack array. */
const plainBytes = (round: ServerMessage<'round'>) => encodeEnvelope(round).byteLength;

describe('round announcements with compact reference ids', () => {
  const fixture = coordinatorPerTest();
  const sessionOf = (overrides: Parameters<typeof config>[0]) =>
    fixture.coordinator.createSession(config({ referenceSize: ROWS, participants: IDS.map((id) => ({ id, token: `secret-${id}` })), ...overrides }));

  it('all 1,000 rows: every participant gets ids 0…999, in 2,492 fewer bytes', async () => {
    sessionOf({ referencePerRound: ROWS });
    for (const { round, bytes } of await firstRound((id) => fixture.participant(id))) {
      expect(round.referenceIds).toEqual(referenceIdsForRound(ROWS, ROWS, 1, 1));
      // The array: 128 + 2·128 + 3·744 id bytes and a 3-byte header (2,619); the bitmap 125 + 2.
      expect(plainBytes(round) - bytes).toBe(2619 - 127);
    }
  });

  it('a seeded sample of 300 rows, participants sampled 2 of 3: the sampled get the sample, the other none', async () => {
    sessionOf({ referencePerRound: 300, minParticipants: 2, sampling: { count: 2 } });
    const received = await firstRound((id) => fixture.participant(id));
    const sample = referenceIdsForRound(ROWS, 300, 1, 1);
    expect(encodeReferenceIds(sample)).toBeInstanceOf(Uint8Array);
    expect(received.filter(({ round }) => round.sampled === true)).toHaveLength(2);
    for (const { round, bytes } of received) {
      if (round.sampled === true) {
        expect(round.referenceIds).toEqual(sample);
        expect(bytes).toBeLessThan(plainBytes(round) - 500);
      } else {
        expect(round.referenceIds).toEqual([]);
        expect(bytes).toBe(plainBytes(round));
      }
    }
  });
});
