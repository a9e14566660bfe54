/**
 * A round's reference ids on the wire (protocol/reference-ids.ts): the plain array or the bitmap,
 * whichever is fewer msgpack bytes, decoded back to the same `number[]` through the round schema
 * (encodeMessage / decodeMessage), and a hostile bitmap refused before it is expanded.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeMessage,
  decodeReferenceIds,
  encodeEnvelope,
  encodeMessage,
  encodeReferenceIds,
  ProtocolError,
  PROTOCOL_VERSION,
  roundMessage,
  serverMessages,
  type ServerMessage,
} from '../../protocol/index.js';
import { referenceIdsForRound } from '../../server/strategies/reference-ids.js';

const round = (referenceIds: number[]): ServerMessage<'round'> => ({
  v: PROTOCOL_VERSION, session: 's', round: 1, knowledge: 'reference-predictions', referenceIds, temperature: 3, deadline: 1e12,
});
/** The round's envelope as version 1 sent it: referenceIds as a msgpack array, whatever they are. */
const plainEnvelope = (referenceIds: number[]) => encodeEnvelope(round(referenceIds));
const all = (n: number) => Array.from({ length: n }, (_, i) => i);

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof ProtocolError) return error.message;
    throw error;
  }
  return 'accepted';
}

describe('the reference-id wire form', () => {
  const cases: Array<[string, number[], number, 'array' | 'bitmap']> = [
    ['all 1,000 rows', all(1000), 1000, 'bitmap'],
    ['a seeded sample of 500 of 1,000', referenceIdsForRound(1000, 500, 7, 3), 1000, 'bitmap'],
    ['none (a sampled-out participant)', [], 1000, 'array'],
    ['one id', [637], 1000, 'array'],
    ['the first and the last row', [0, 999], 1000, 'array'],
    ['the last row of a set of 8', [7], 8, 'array'],
    ['all rows of a set of 9 (the last alone in its byte)', all(9), 9, 'bitmap'],
    ['10 of 100,000 (a list is smaller)', referenceIdsForRound(100_000, 10, 1, 1), 100_000, 'array'],
    ['all 60,000 rows', all(60_000), 60_000, 'bitmap'],
  ];
  for (const [what, ids, referenceSize, form] of cases) {
    it(`round-trips ${what} as the ${form}, through the round schema`, () => {
      const wire = encodeReferenceIds(ids);
      expect(wire instanceof Uint8Array ? 'bitmap' : 'array').toBe(form);
      expect(decodeReferenceIds(wire, referenceSize)).toEqual(ids);
      const envelope = encodeMessage(serverMessages.round, round(ids));
      // The same ids to a participant that checks its session's bound and to one that does not.
      expect(decodeMessage(roundMessage(referenceSize), envelope).referenceIds).toEqual(ids);
      expect(decodeMessage(serverMessages.round, envelope).referenceIds).toEqual(ids);
      // Never more bytes than the plain array.
      expect(envelope.byteLength).toBeLessThanOrEqual(plainEnvelope(ids).byteLength);
    });
  }

  it('writes bit (i mod 8) of byte ⌊i/8⌋, least significant first, and ends at the largest id', () => {
    // 0, 1, 2, 3, 9, 15, 16 → byte 0 = 0b00001111, byte 1 = 0b10000010, byte 2 = 0b00000001.
    const wire = encodeReferenceIds([0, 1, 2, 3, 9, 15, 16]);
    expect(wire).toEqual(new Uint8Array([0x0f, 0x82, 0x01]));
    expect(decodeReferenceIds(new Uint8Array([0x0f, 0x82, 0x01]), 17)).toEqual([0, 1, 2, 3, 9, 15, 16]);
  });

  it('picks the smaller form by its msgpack size, which is the envelope difference', () => {
    // 1,000 ids as an array: 128 one-byte + 128 two-byte + 744 three-byte ids + a 3-byte header = 2,619 bytes; the bitmap 125 + 2.
    const ids = all(1000);
    const saved = plainEnvelope(ids).byteLength - encodeMessage(serverMessages.round, round(ids)).byteLength;
    expect(saved).toBe(2619 - 127);
    // 16 ids 0…15: array 3 + 16 = 19 bytes, bitmap 2 + 2 = 4.
    expect(encodeReferenceIds(all(16))).toEqual(new Uint8Array([0xff, 0xff]));
    // Ids 0 and 120: array 1 + 2 = 3 bytes, bitmap 2 + 16: the array.
    expect(encodeReferenceIds([0, 120])).toEqual([0, 120]);
    // [0, 1, 2]: array 1 + 3 = 4 bytes, bitmap 2 + 1 = 3: the bitmap. [0, 1]: 3 bytes either way: a tie stays the array.
    expect(encodeReferenceIds([0, 1, 2])).toEqual(new Uint8Array([0x07]));
    expect(encodeReferenceIds([0, 1])).toEqual([0, 1]);
    expect(encodeReferenceIds([5])).toEqual([5]); // array 2 bytes, bitmap 3
  });

  it('leaves ids that are not a strictly increasing set as the array (for the receiver to refuse)', () => {
    expect(encodeReferenceIds(all(100).reverse())).toEqual(all(100).reverse());
    expect(encodeReferenceIds([...all(100), 99])).toEqual([...all(100), 99]);
  });
});

describe('a hostile reference-id bitmap', () => {
  const envelope = (referenceIds: unknown) => encodeEnvelope({ ...round([]), referenceIds });

  it('is refused when longer than the session’s ⌈referenceSize / 8⌉ bytes, before it is expanded', () => {
    expect(refusal(() => decodeMessage(roundMessage(20), envelope(new Uint8Array(4))))).toBe(
      'E_SCHEMA: referenceIds: the reference-id bitmap has 4 bytes (rows up to 31); the reference set holds 20 rows, at most 3 bytes',
    );
    // 1.25 MB of set bits would be 10 million ids: refused by a session of 20 rows without building them.
    expect(refusal(() => decodeMessage(roundMessage(20), envelope(new Uint8Array(1_250_000).fill(0xff)), { maxBytes: 2 << 20 }))).toMatch(
      /^E_SCHEMA: referenceIds: the reference-id bitmap has 1250000 bytes/,
    );
    // Without a session (a bare decode), no bitmap beyond what 10 million ids need.
    expect(refusal(() => decodeMessage(serverMessages.round, envelope(new Uint8Array(1_250_001)), { maxBytes: 2 << 20 }))).toMatch(
      /^E_SCHEMA: referenceIds: /,
    );
  });

  it('is refused when a bit names a row at or past referenceSize', () => {
    // 20 rows: 3 bytes, but bits 20…23 of the last byte name no row.
    expect(refusal(() => decodeMessage(roundMessage(20), envelope(new Uint8Array([0, 0, 0x10]))))).toBe(
      'E_SCHEMA: referenceIds: the reference-id bitmap names row 20; the reference set holds 0…19',
    );
    expect(refusal(() => decodeMessage(roundMessage(20), envelope(new Uint8Array([0xff, 0xff, 0x0f]))))).toBe('accepted');
  });

  it('is refused as anything but an array of counts or binary', () => {
    for (const wrong of ['0-19', 42, { bitmap: new Uint8Array(3) }, [0, -1], [0.5], null]) {
      expect(refusal(() => decodeMessage(roundMessage(20), envelope(wrong)))).toMatch(/^E_SCHEMA: referenceIds/);
    }
  });
});
