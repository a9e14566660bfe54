/**
 * Secure aggregation's pure pieces (protocol/secure): GF(2^8) and Shamir sharing against golden
 * values, key agreement and mask streams against Node's own AES, masks that cancel, shares that
 * rebuild a key from any t of n and not from t − 1, and the fixed-point step.
 */
import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../client/data/random.js';
import {
  addMask,
  addPairMask,
  combineShares,
  decryptShare,
  encodeKnowledge,
  encryptShare,
  generateKeyPair,
  gfMul,
  importPrivateKey,
  LOGIT_SCALE,
  maskStream,
  meanFromSecureSum,
  othersFromSecureSum,
  PROBABILITY_SCALE,
  publicKeyOf,
  randomSeed,
  selfMaskKey,
  shareEncryptionKey,
  splitSecret,
  sumVectors,
  type KeyPair,
} from '../../protocol/secure/index.js';

const context = { session: 's1', round: 3 };

function rng(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.next();
}

/** Every k-subset of items. */
function subsets<T>(items: readonly T[], k: number): T[][] {
  if (k === 0) return [[]];
  if (items.length < k) return [];
  const [first, ...rest] = items;
  return [...subsets(rest, k - 1).map((s) => [first!, ...s]), ...subsets(rest, k)];
}

describe('GF(2^8) and Shamir sharing', () => {
  it('multiplies as FIPS-197 §4.2 does', () => {
    expect(gfMul(0x57, 0x83)).toBe(0xc1); // FIPS-197's worked example
    expect(gfMul(0x57, 0x13)).toBe(0xfe);
    expect(gfMul(0x53, 0xca)).toBe(0x01); // inverses
    expect(gfMul(0, 0x83)).toBe(0);
  });

  it('gives the golden shares of a degree-1 polynomial', () => {
    // t = 2: share(x) = a·x ⊕ s; a = 0x57, s = 0x42: at x = 0x83, 0xc1 ⊕ 0x42 = 0x83; at x = 1, 0x57 ⊕ 0x42 = 0x15.
    const shares = splitSecret(new Uint8Array([0x42]), 0x83, 2, () => new Uint8Array([0x57]));
    expect(shares[0]).toEqual({ x: 1, y: new Uint8Array([0x15]) });
    expect(shares[0x82]).toEqual({ x: 0x83, y: new Uint8Array([0x83]) });
    expect(combineShares([shares[0]!, shares[0x82]!])).toEqual(new Uint8Array([0x42]));
  });

  it('rebuilds a mask key from any t of n shares, and from t − 1 gets another key', async () => {
    const n = 6;
    const t = 4;
    const pair = await generateKeyPair();
    const shares = splitSecret(pair.privateBytes, n, t);
    for (const chosen of subsets(shares, t)) expect(combineShares(chosen)).toEqual(pair.privateBytes);
    for (const chosen of subsets(shares, t + 1)) expect(combineShares(chosen)).toEqual(pair.privateBytes);
    for (const chosen of subsets(shares, t - 1)) {
      const wrong = combineShares(chosen);
      expect(wrong).not.toEqual(pair.privateBytes);
    }
    // The rebuilt key is the member's: its public half is the one it announced.
    expect(await publicKeyOf(await importPrivateKey(combineShares(shares.slice(2, 2 + t))))).toEqual(pair.publicKey);
    expect(await publicKeyOf(await importPrivateKey(combineShares(shares.slice(0, t - 1))))).not.toEqual(pair.publicKey);
  });

  it('refuses shares that cannot be of one split', () => {
    expect(() => combineShares([{ x: 1, y: new Uint8Array(2) }, { x: 1, y: new Uint8Array(2) }])).toThrow(/two shares at x = 1/);
    expect(() => combineShares([{ x: 0, y: new Uint8Array(2) }])).toThrow(/x-coordinate 0/);
    expect(() => splitSecret(new Uint8Array(4), 256, 2)).toThrow(/share count/);
    expect(() => splitSecret(new Uint8Array(4), 5, 6)).toThrow(/threshold/);
  });
});

describe('key agreement, mask streams and share encryption', () => {
  it('mask streams are AES-256-CTR over zeros from counter 0, as Node\'s own AES computes them', async () => {
    const raw = new Uint8Array(32).map((_, i) => i * 7 + 1);
    const key = await globalThis.crypto.subtle.importKey('raw', raw, 'AES-CTR', false, ['encrypt']);
    const stream = await maskStream(key, 100);
    const reference = createCipheriv('aes-256-ctr', raw, Buffer.alloc(16)).update(Buffer.alloc(400));
    for (let i = 0; i < 100; i++) expect(stream[i]).toBe(reference.readUInt32LE(4 * i));
  });

  it('the masks of all pairs cancel in the sum, and the self masks come off with their seeds', async () => {
    const ids = ['a', 'b', 'c', 'd', 'e'];
    const L = 257;
    const keys = new Map<string, KeyPair>();
    for (const id of ids) keys.set(id, await generateKeyPair());
    const random = rng(7);
    const inputs = new Map(ids.map((id) => [id, Uint32Array.from({ length: L }, () => Math.floor(random() * 2 ** 24))]));
    const seeds = new Map(ids.map((id) => [id, randomSeed()]));
    const uploads: Uint32Array[] = [];
    for (const u of ids) {
      const y = inputs.get(u)!.slice();
      addMask(y, await maskStream(await selfMaskKey(seeds.get(u)!, context), L));
      for (const v of ids) if (v !== u) await addPairMask(y, u, keys.get(u)!.privateKey, v, keys.get(v)!.publicKey, context);
      expect(y).not.toEqual(inputs.get(u)); // masked
      uploads.push(y);
    }
    const sum = sumVectors(uploads, L);
    for (const u of ids) addMask(sum, await maskStream(await selfMaskKey(seeds.get(u)!, context), L), -1);
    expect(sum).toEqual(sumVectors(inputs.values(), L));
  });

  it('the mask of a pair is the same from either end and differs between rounds', async () => {
    const [u, v] = [await generateKeyPair(), await generateKeyPair()];
    const fromU = new Uint32Array(8);
    const fromV = new Uint32Array(8);
    await addPairMask(fromU, 'u', u.privateKey, 'v', v.publicKey, context);
    await addPairMask(fromV, 'v', v.privateKey, 'u', u.publicKey, context);
    addMask(fromU, fromV);
    expect(fromU).toEqual(new Uint32Array(8));
    const nextRound = new Uint32Array(8);
    await addPairMask(nextRound, 'u', u.privateKey, 'v', v.publicKey, { ...context, round: 4 });
    expect(nextRound).not.toEqual(fromV.map((w) => (-w) >>> 0));
  });

  it('shares decrypt only at their recipient, for their sender, session and round', async () => {
    const [u, v] = [await generateKeyPair(), await generateKeyPair()];
    const plaintext = new Uint8Array(64).map((_, i) => i);
    const sent = await encryptShare(await shareEncryptionKey(u.privateKey, v.publicKey, context), plaintext, context, 'u', 'v');
    expect(sent.ciphertext.length).toBe(80);
    const atV = await shareEncryptionKey(v.privateKey, u.publicKey, context);
    expect(await decryptShare(atV, sent.nonce, sent.ciphertext, context, 'u', 'v')).toEqual(plaintext);
    await expect(decryptShare(atV, sent.nonce, sent.ciphertext, context, 'u', 'w')).rejects.toThrow(/does not decrypt/);
    const altered = sent.ciphertext.slice();
    altered[3]! ^= 1;
    await expect(decryptShare(atV, sent.nonce, altered, context, 'u', 'v')).rejects.toThrow(/does not decrypt/);
  });
});

describe('fixed point', () => {
  it('encodes golden values', () => {
    expect([...encodeKnowledge('reference-predictions', new Float32Array([0, 0.5, 1, 1.5, -0.25]), 5)]).toEqual([0, 2 ** 23, 2 ** 24, 2 ** 24, 0]);
    expect([...encodeKnowledge('reference-logits', new Float32Array([-1.5, 2, 200]), 3)]).toEqual([2 ** 32 - 1.5 * 2 ** 16, 2 ** 17, 128 * 2 ** 16]);
    // FD: class 1 not held → its row zeroed, holder 0, count 0.
    expect([...encodeKnowledge('class-logits', new Float32Array([1, -1, 9, 9]), 2, [3, 0])]).toEqual([2 ** 16, 2 ** 32 - 2 ** 16, 0, 0, 1, 0, 3, 0]);
  });

  it('a decoded value is within half a step of the float: probabilities 2^−25, logits 2^−17', () => {
    const random = rng(11);
    const p = Float32Array.from({ length: 10_000 }, () => random());
    const z = Float32Array.from({ length: 10_000 }, () => (random() - 0.5) * 200);
    const dp = meanFromSecureSum('reference-predictions', encodeKnowledge('reference-predictions', p, 10), 1).values;
    const dz = meanFromSecureSum('reference-logits', encodeKnowledge('reference-logits', z, 10), 1).values;
    let ep = 0;
    let ez = 0;
    for (let i = 0; i < p.length; i++) {
      ep = Math.max(ep, Math.abs(dp[i]! - p[i]!));
      ez = Math.max(ez, Math.abs(dz[i]! - z[i]!));
    }
    expect(ep).toBeLessThanOrEqual(0.5 / PROBABILITY_SCALE + 2 ** -25);
    expect(ez).toBeLessThanOrEqual(0.5 / LOGIT_SCALE + 2 ** -17);
    expect(ep).toBeGreaterThan(0); // the encoding does round
  });

  it('leave-one-out from the sum equals the plain (S − own)/(n − 1) within the step, at 255 members without wrapping', () => {
    const random = rng(5);
    const n = 255;
    const C = 4;
    const members = Array.from({ length: n }, () => {
      const row = Float32Array.from({ length: C }, () => random());
      const total = row.reduce((a, b) => a + b, 0);
      return row.map((x) => x / total);
    });
    members[0] = new Float32Array([1, 1, 1, 1]); // the extreme: every value at the top of the range
    members[1] = new Float32Array([1, 1, 1, 1]);
    const encoded = members.map((m) => encodeKnowledge('reference-predictions', m, C));
    const sum = sumVectors(encoded, C);
    const target = othersFromSecureSum('reference-predictions', sum, encoded[3]!, n, C)!;
    for (let k = 0; k < C; k++) {
      let plain = 0;
      members.forEach((m, j) => (plain += j === 3 ? 0 : m[k]!));
      expect(Math.abs(target.values[k]! - plain / (n - 1))).toBeLessThanOrEqual(0.5 / PROBABILITY_SCALE + 2 ** -24);
    }
    expect(othersFromSecureSum('reference-predictions', sum, encoded[0]!, 1, C)).toBeNull();
  });

  it('FD from the sum: per class the mean over the other holders, and their counts (golden)', () => {
    const C = 2;
    // a holds both classes, b only class 0, c only class 1.
    const a = encodeKnowledge('class-logits', new Float32Array([1, -2, 0.5, 3]), C, [4, 2]);
    const b = encodeKnowledge('class-logits', new Float32Array([3, -1, 7, 7]), C, [5, 0]);
    const c = encodeKnowledge('class-logits', new Float32Array([9, 9, -0.5, 1]), C, [0, 6]);
    const sum = sumVectors([a, b, c], C * C + 2 * C);
    // For a: class 0 from b alone → [3, −1]; class 1 from c alone → [−0.5, 1]; counts [5, 6].
    expect(othersFromSecureSum('class-logits', sum, a, 3, C)).toEqual({ values: new Float32Array([3, -1, -0.5, 1]), counts: [5, 6] });
    // For b: class 0 from a → [1, −2]; class 1 from a and c → [0, 2]; counts [4, 8].
    expect(othersFromSecureSum('class-logits', sum, b, 3, C)).toEqual({ values: new Float32Array([1, -2, 0, 2]), counts: [4, 8] });
  });
});
