/**
 * Shamir secret sharing (Shamir 1979, "How to Share a Secret") over GF(2^8), byte by byte: each
 * byte of the secret is the constant term of its own random polynomial of degree t − 1, and share
 * x holds the polynomials' values at x. Any t shares give the secret back by Lagrange
 * interpolation at 0; t − 1 shares say nothing about it (every secret is equally likely).
 *
 * GF(2^8) is the AES field (reduction polynomial x^8 + x^4 + x^3 + x + 1, 0x11b), generator 3.
 * x-coordinates are 1…255, so a secure-aggregation round holds at most 255 members
 * (MAX_SECURE_MEMBERS). This is secret sharing, not a cipher: the shares travel encrypted
 * (AES-GCM, keys.ts).
 */

/** x-coordinates are the field's nonzero elements. */
export const MAX_SHARES = 255;

const EXP = new Uint8Array(510);
const LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    LOG[x] = i;
    // x · 3 = x · 2 ⊕ x, with x · 2 reduced by 0x11b.
    x ^= (x << 1) ^ (x & 0x80 ? 0x11b : 0);
  }
  for (let i = 255; i < 510; i++) EXP[i] = EXP[i - 255]!;
}

export function gfMul(a: number, b: number): number {
  return a === 0 || b === 0 ? 0 : EXP[LOG[a]! + LOG[b]!]!;
}

export function gfDiv(a: number, b: number): number {
  if (b === 0) throw new RangeError('GF(2^8): division by zero');
  return a === 0 ? 0 : EXP[LOG[a]! + 255 - LOG[b]!]!;
}

export interface SecretShare {
  /** The x-coordinate, 1…255. */
  x: number;
  /** One byte per byte of the secret. */
  y: Uint8Array;
}

/**
 * Splits `secret` into shares at x = 1…n (threshold t: any t of them recover it). `random`
 * supplies the polynomials' coefficients (crypto.getRandomValues; a test may pass its own).
 */
export function splitSecret(secret: Uint8Array, n: number, t: number, random: (bytes: Uint8Array) => Uint8Array = (b) => globalThis.crypto.getRandomValues(b)): SecretShare[] {
  if (!(Number.isInteger(n) && n >= 1 && n <= MAX_SHARES)) throw new RangeError(`Shamir: share count must be in [1, ${MAX_SHARES}] (got ${n})`);
  if (!(Number.isInteger(t) && t >= 1 && t <= n)) throw new RangeError(`Shamir: threshold must be in [1, ${n}] (got ${t})`);
  // coefficients[k · L + i]: coefficient of x^(k+1) for byte i.
  const L = secret.length;
  const coefficients = random(new Uint8Array((t - 1) * L));
  const shares: SecretShare[] = [];
  for (let x = 1; x <= n; x++) {
    const y = new Uint8Array(L);
    for (let i = 0; i < L; i++) {
      // Horner: ((a_{t−1} x + a_{t−2}) x + …) x + secret.
      let value = 0;
      for (let k = t - 2; k >= 0; k--) value = gfMul(value, x) ^ coefficients[k * L + i]!;
      y[i] = gfMul(value, x) ^ secret[i]!;
    }
    shares.push({ x, y });
  }
  return shares;
}

/**
 * The secret behind `shares` (Lagrange interpolation at 0): right when at least t distinct shares
 * of one split are given; any fewer give a different, meaningless value — sharing cannot tell,
 * which is why reconstructed keys are checked against their public half (secure/keys.ts).
 */
export function combineShares(shares: readonly SecretShare[]): Uint8Array {
  if (shares.length === 0) throw new RangeError('Shamir: no shares to combine');
  const L = shares[0]!.y.length;
  const xs = new Set<number>();
  for (const { x, y } of shares) {
    if (!(Number.isInteger(x) && x >= 1 && x <= MAX_SHARES)) throw new RangeError(`Shamir: x-coordinate ${x} is not in [1, ${MAX_SHARES}]`);
    if (xs.has(x)) throw new RangeError(`Shamir: two shares at x = ${x}`);
    if (y.length !== L) throw new RangeError(`Shamir: shares of ${y.length} and ${L} bytes cannot be of one secret`);
    xs.add(x);
  }
  const secret = new Uint8Array(L);
  for (const { x: xj, y } of shares) {
    // Lagrange basis at 0: Π_{m≠j} x_m / (x_m − x_j); subtraction is ⊕ in GF(2^8).
    let basis = 1;
    for (const { x: xm } of shares) if (xm !== xj) basis = gfMul(basis, gfDiv(xm, xm ^ xj));
    for (let i = 0; i < L; i++) secret[i] = secret[i]! ^ gfMul(basis, y[i]!);
  }
  return secret;
}
