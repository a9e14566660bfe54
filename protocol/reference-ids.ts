/**
 * The wire form of a round's reference ids: the plain msgpack array of integers, or a bitmap,
 * whichever is fewer bytes. The ids a coordinator announces are a sorted set over
 * [0, referenceSize): all rows (codistillation, DML without sampling) or a seeded sample. As an
 * array, 1,000 ids cost ≈ 2.7 kB (ids above 127 take 3 bytes each), sent to every participant every
 * round; as a bitmap the same round costs 125 bytes (experiments/bytes/RESULTS.md measured the
 * announcements at 41 % of a top-1 uint8 run's bytes).
 *
 * Bitmap: a Uint8Array (msgpack bin) in which bit (i mod 8) of byte ⌊i / 8⌋, least significant
 * first, is set ⇔ id i is in the round. The encoder ends it at the byte holding the largest id, so
 * it needs no referenceSize; the receiver bounds it by its own session's referenceSize before
 * expanding it (a hostile bitmap would otherwise make it allocate 8 ids per byte received).
 * Decoded ids come out ascending, as the coordinator sends them.
 */
import { ErrorCode, ProtocolError } from './errors.js';

/** What `referenceIds` travels as. */
export type ReferenceIdsWire = number[] | Uint8Array;

/** Ids at most in any round announcement, whatever the session: the bound before a session is known. */
export const MAX_REFERENCE_IDS = 10_000_000;

/**
 * The smaller wire form of `ids`: the bitmap when the ids are strictly increasing non-negative
 * integers and it is fewer msgpack bytes than the array (sizes below), else the array itself.
 * A sampled-out participant's empty list and a small sample of a large set stay arrays.
 */
export function encodeReferenceIds(ids: readonly number[]): ReferenceIdsWire {
  if (ids.length === 0) return [];
  let arrayBytes = ids.length <= 15 ? 1 : ids.length <= 0xffff ? 3 : 5;
  let previous = -1;
  for (const id of ids) {
    // Unsorted, repeated or not an id: only the array can say it (and the schema refuses it).
    if (!Number.isInteger(id) || id <= previous) return [...ids];
    previous = id;
    // msgpack positive fixint, uint8, uint16, uint32.
    arrayBytes += id < 0x80 ? 1 : id < 0x100 ? 2 : id < 0x10000 ? 3 : 5;
  }
  const length = (previous >> 3) + 1;
  // msgpack bin8, bin16, bin32 headers.
  const bitmapBytes = length + (length < 0x100 ? 2 : length < 0x10000 ? 3 : 5);
  if (bitmapBytes >= arrayBytes) return [...ids];
  const bitmap = new Uint8Array(length);
  for (const id of ids) bitmap[id >> 3]! |= 1 << (id & 7);
  return bitmap;
}

/**
 * The ids a wire form names, ascending for a bitmap, as sent for an array. Refuses (E_SCHEMA, in a
 * sentence) a bitmap longer than ⌈referenceSize / 8⌉ bytes — before allocating anything for it —
 * and a bitmap bit at or past referenceSize. An array is returned as it came: its ids are checked
 * against the session where they are used (client/participant.ts checkRound), as before.
 */
export function decodeReferenceIds(wire: ReferenceIdsWire, referenceSize: number): number[] {
  if (!(wire instanceof Uint8Array)) return wire;
  const maxLength = Math.ceil(referenceSize / 8);
  if (wire.byteLength > maxLength) {
    throw new ProtocolError(
      ErrorCode.Schema,
      `the reference-id bitmap has ${wire.byteLength} bytes (rows up to ${wire.byteLength * 8 - 1}); the reference set holds ${referenceSize} rows, at most ${maxLength} bytes`,
    );
  }
  const ids: number[] = [];
  for (let byte = 0; byte < wire.byteLength; byte++) {
    let bits = wire[byte]!;
    while (bits !== 0) {
      const bit = 31 - Math.clz32(bits & -bits); // the lowest set bit
      const id = byte * 8 + bit;
      if (id >= referenceSize) {
        throw new ProtocolError(ErrorCode.Schema, `the reference-id bitmap names row ${id}; the reference set holds 0…${referenceSize - 1}`);
      }
      ids.push(id);
      bits &= bits - 1;
    }
  }
  return ids;
}
