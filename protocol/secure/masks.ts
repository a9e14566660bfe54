/**
 * Masks: pseudo-random uint32 vectors that hide one member's upload and cancel in the sum
 * (Bonawitz et al. 2017, §4). The PRG is AES-256-CTR over zeros (WebCrypto), read as
 * little-endian uint32 words; all arithmetic is mod 2^32.
 *
 * Member u uploads y_u = x_u + PRG(b_u) + Σ_{v ≠ u} σ(u, v) · PRG(s_{u,v})  (mod 2^32),
 * with σ(u, v) = +1 when u sorts before v and −1 after: in Σ_u y_u each pair's stream appears
 * once with each sign and cancels, leaving Σ x_u + Σ PRG(b_u) — which the coordinator removes
 * after reconstructing the seeds b_u of the members that uploaded.
 */
import type { CryptoKey, KeyPair, RoundContext } from './keys.js';
import { pairMaskKey } from './keys.js';

/** `words` uint32 words of the AES-CTR keystream of `key` (counter block from 0). */
export async function maskStream(key: CryptoKey, words: number): Promise<Uint32Array> {
  const bytes = new Uint8Array(
    await globalThis.crypto.subtle.encrypt({ name: 'AES-CTR', counter: new Uint8Array(16), length: 64 }, key, new Uint8Array(4 * words)),
  );
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stream = new Uint32Array(words);
  for (let i = 0; i < words; i++) stream[i] = view.getUint32(4 * i, true);
  return stream;
}

/** σ(u, v): +1 when u sorts before v (by UTF-16 code units, as both ends compare), else −1. */
export function pairSign(self: string, other: string): 1 | -1 {
  return self < other ? 1 : -1;
}

/** target += sign · stream, mod 2^32, in place. */
export function addMask(target: Uint32Array, stream: Uint32Array, sign: 1 | -1 = 1): void {
  if (stream.length !== target.length) throw new RangeError(`a mask of ${stream.length} words cannot mask ${target.length}`);
  if (sign === 1) for (let i = 0; i < target.length; i++) target[i] = (target[i]! + stream[i]!) >>> 0;
  else for (let i = 0; i < target.length; i++) target[i] = (target[i]! - stream[i]!) >>> 0;
}

/** The pairwise mask member `self` adds for `other`: σ(self, other) · PRG(s_{self,other}). */
export async function addPairMask(
  target: Uint32Array,
  self: string,
  ownMaskKey: KeyPair['privateKey'],
  other: string,
  otherMaskPublic: Uint8Array,
  context: RoundContext,
): Promise<void> {
  const key = await pairMaskKey(ownMaskKey, otherMaskPublic, context);
  addMask(target, await maskStream(key, target.length), pairSign(self, other));
}

/** Σ of uint32 vectors mod 2^32. */
export function sumVectors(vectors: Iterable<Uint32Array>, words: number): Uint32Array {
  const sum = new Uint32Array(words);
  for (const vector of vectors) addMask(sum, vector, 1);
  return sum;
}
