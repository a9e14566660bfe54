/**
 * A small seeded PRNG for partitions, splits and simulations. Not cryptographic: it exists so
 * that the same seed reproduces the same experiment on any machine, which Math.random cannot.
 */
export class SeededRandom {
  private state: number;
  /** Second Box–Muller variate, kept so that normal() uses both halves of each draw. */
  private spareNormal: number | undefined;

  /** @param seed an unsigned 32-bit integer; other values are refused so no two seeds collide silently. */
  constructor(readonly seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(`E_SEED: seed must be an integer in [0, 2^32); got ${seed}`);
    }
    this.state = seed;
  }

  /**
   * Uniform in [0, 1) with 32 bits of resolution. mulberry32 (Tommy Ettinger, 2017): a Weyl
   * sequence step (+0x6D2B79F5) followed by an xorshift-multiply output mix. Period 2^32, which
   * is ample for partitioning datasets of up to millions of samples.
   */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, n). floor(next()·n) has bias below n/2^32, negligible for n ≪ 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 0xffffffff) {
      throw new RangeError(`E_RANGE: int(n) needs an integer n in [1, 2^32]; got ${n}`);
    }
    return Math.floor(this.next() * n);
  }

  /**
   * Standard normal N(0, 1) by the Box–Muller transform (Box & Muller, 1958):
   * r = √(−2 ln u₁), θ = 2π u₂ gives the independent pair (r cos θ, r sin θ).
   */
  normal(): number {
    if (this.spareNormal !== undefined) {
      const z = this.spareNormal;
      this.spareNormal = undefined;
      return z;
    }
    const u1 = 1 - this.next(); // (0, 1]: keeps ln finite
    const u2 = this.next();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spareNormal = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }

  /**
   * Gamma(shape, scale 1), mean = variance = shape.
   * Marsaglia & Tsang (2000), "A simple method for generating gamma variables", ACM TOMS 26(3):
   * for shape ≥ 1, d = shape − 1/3, c = 1/√(9d); draw x ~ N(0,1), v = (1 + c·x)³, accept d·v if
   * v > 0 and u < 1 − 0.0331·x⁴ (squeeze) or ln u < x²/2 + d(1 − v + ln v).
   * For shape < 1 the same paper's boost: Gamma(a) = Gamma(a + 1) · u^(1/a).
   */
  gamma(shape: number): number {
    return Math.exp(this.logGamma(shape));
  }

  /**
   * ln of a Gamma(shape) draw. Small shapes (Dirichlet α = 0.01, say) make u^(1/a) underflow to
   * 0 in linear space; in log space the boost is ln Gamma(a+1) + ln(u)/a and stays finite.
   */
  private logGamma(shape: number): number {
    if (!(shape > 0) || !Number.isFinite(shape)) {
      throw new RangeError(`E_RANGE: gamma shape must be a finite number > 0; got ${shape}`);
    }
    if (shape < 1) {
      const u = 1 - this.next(); // (0, 1]
      return this.logGamma(shape + 1) + Math.log(u) / shape;
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      const x = this.normal();
      const t = 1 + c * x;
      if (t <= 0) continue;
      const v = t * t * t;
      const u = this.next();
      if (u < 1 - 0.0331 * x * x * x * x) return Math.log(d * v);
      if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return Math.log(d * v);
    }
  }

  /**
   * Symmetric Dirichlet(α·1_k): normalised independent Gamma(α) draws. Normalised in log space
   * (subtract the max before exp) so tiny α cannot produce an all-zero vector and 0/0.
   * Mean of each component 1/k; variance (k − 1) / (k²(kα + 1)).
   */
  dirichlet(alpha: number, k: number): number[] {
    if (!Number.isInteger(k) || k < 1) {
      throw new RangeError(`E_RANGE: dirichlet needs an integer k ≥ 1; got ${k}`);
    }
    const logs = Array.from({ length: k }, () => this.logGamma(alpha));
    const max = Math.max(...logs);
    const weights = logs.map((l) => Math.exp(l - max));
    const total = weights.reduce((a, b) => a + b, 0);
    return weights.map((w) => w / total);
  }

  /** In-place Fisher–Yates (Durstenfeld's variant, Knuth TAOCP vol. 2 Algorithm P); returns the array. */
  shuffle<A extends { length: number; [i: number]: unknown }>(array: A): A {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }
}
