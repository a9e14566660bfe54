import { describe, it, expect } from 'vitest';
import { datasetSize, labelCounts } from '../../client/data/dataset.js';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { describePartition, partition, partitionHash, PARTITION_KINDS, type Partition, type PartitionSpec } from '../../client/data/partition.js';

function expectCoversEachIndexOnce(p: Partition, n: number): void {
  const seen = new Uint8Array(n);
  for (const rows of p.indices) for (const i of rows) seen[i]!++;
  expect(seen.every((count) => count === 1)).toBe(true);
}

function expectConsistentLabelMatrix(p: Partition, labels: Int32Array, numClasses: number): void {
  expect(p.labelMatrix.map((row) => row.reduce((a, b) => a + b, 0))).toEqual(p.indices.map((rows) => rows.length));
  const classTotals = p.labelMatrix.reduce((acc, row) => acc.map((v, c) => v + row[c]!));
  expect(classTotals).toEqual(labelCounts({ x: new Float32Array(0), y: labels, sampleShape: [0], numClasses }));
  for (const rows of p.indices) for (let k = 1; k < rows.length; k++) expect(rows[k]!).toBeGreaterThan(rows[k - 1]!);
}

/** Total variation distance between a participant's label distribution and the pool's. */
function totalVariation(row: number[], global: number[]): number {
  const size = row.reduce((a, b) => a + b, 0);
  return 0.5 * row.reduce((a, count, c) => a + Math.abs(count / size - global[c]!), 0);
}

describe('partition hashes of the original kinds are unchanged', () => {
  // Computed with the partition.ts of commit 279b72b, before shards and quantity skew existed.
  const labels = Int32Array.from({ length: 500 }, (_, i) => (i * 7) % 10);
  it('IID and Dirichlet', () => {
    expect(partition(labels, 10, 5, { kind: 'iid' }, 3).hash).toBe('d9aaae69b84de711d3d9bb2cecc1f79911c1433251bbea8bb345e61d0e79b00c');
    expect(partition(labels, 10, 5, { kind: 'dirichlet', alpha: 0.5 }, 3).hash).toBe(
      'e85658d78270d212514d24641ef431feb0eb642d2e05a23219398c3a4312991d',
    );
  });
  it('shards and quantity skew have fixed hashes too (same numbers on every machine)', () => {
    expect(partition(labels, 10, 5, { kind: 'shards', classesPerParticipant: 2 }, 3).hash).toBe(
      '438ca1d53a8316d55f22be331cceecd6fc23705c96aa85cac0bf91add62af1d7',
    );
    expect(partition(labels, 10, 5, { kind: 'quantity', alpha: 0.5 }, 3).hash).toBe(
      '0779609f2a4d8cc909fefe6ccfa127fef287e63f7c218f814df6f6a6bda18220',
    );
  });
});

describe('shards (McMahan et al. 2017)', () => {
  it('with class sizes a multiple of the shard size, gives each participant k whole shards of ≤ k classes', () => {
    // 10 classes × 100 rows, 10 participants × 2 shards → 20 single-class shards of 50 rows.
    const labels = Int32Array.from({ length: 1000 }, (_, i) => i % 10);
    const p = partition(labels, 10, 10, { kind: 'shards', classesPerParticipant: 2 }, 4);
    expectCoversEachIndexOnce(p, 1000);
    expectConsistentLabelMatrix(p, labels, 10);
    expect(p.spec).toEqual({ kind: 'shards', classesPerParticipant: 2 });
    for (const row of p.labelMatrix) {
      expect(row.reduce((a, b) => a + b, 0)).toBe(100);
      expect(row.filter((c) => c > 0).length).toBeLessThanOrEqual(2);
      for (const count of row) expect(count % 50).toBe(0);
    }
  });

  const pool = splitDataset(loadMnist(), { test: 2000, reference: 1000 }, 1).pool;
  const n = datasetSize(pool);

  it('on MNIST: every index once, near-equal sizes, few classes each', () => {
    const p = partition(pool.y, 10, 10, { kind: 'shards', classesPerParticipant: 2 }, 7);
    expectCoversEachIndexOnce(p, n);
    expectConsistentLabelMatrix(p, pool.y, 10);
    const sizes = p.indices.map((rows) => rows.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(2); // k shards, each within one row of the others
    for (const row of p.labelMatrix) {
      // A shard (350 rows) straddles at most one class boundary (classes have ≥ 600 rows here).
      expect(row.filter((c) => c > 0).length).toBeLessThanOrEqual(4);
      const size = row.reduce((a, b) => a + b, 0);
      const topTwo = [...row].sort((a, b) => b - a).slice(0, 2).reduce((a, b) => a + b, 0);
      expect(topTwo / size).toBeGreaterThan(0.5);
    }
  });

  it('is deterministic in its seed and independent of row order within a class', () => {
    const spec: PartitionSpec = { kind: 'shards', classesPerParticipant: 3 };
    const a = partition(pool.y, 10, 8, spec, 42);
    const b = partition(pool.y, 10, 8, spec, 42);
    const c = partition(pool.y, 10, 8, spec, 43);
    expect(b.indices).toEqual(a.indices);
    expect(b.hash).toBe(a.hash);
    expect(c.hash).not.toBe(a.hash);
    expect(a.hash).toBe(partitionHash(a.spec, 42, a.indices));
  });

  it('one participant with k = 1 holds everything; too many shards are refused', () => {
    const labels = Int32Array.from([0, 1, 1, 2]);
    expect(partition(labels, 3, 1, { kind: 'shards', classesPerParticipant: 1 }, 1).indices).toEqual([[0, 1, 2, 3]]);
    expect(() => partition(labels, 3, 3, { kind: 'shards', classesPerParticipant: 2 }, 1)).toThrow(/E_PARTITION.*classesPerParticipant/);
    expect(() => partition(labels, 3, 2, { kind: 'shards', classesPerParticipant: 0 }, 1)).toThrow(/E_PARTITION/);
    expect(() => partition(labels, 3, 2, { kind: 'shards', classesPerParticipant: 1.5 }, 1)).toThrow(/E_PARTITION/);
  });
});

describe('quantity skew', () => {
  const pool = splitDataset(loadMnist(), { test: 2000, reference: 1000 }, 1).pool;
  const n = datasetSize(pool);
  const global = labelCounts(pool).map((c) => c / n);

  it('covers every index once with minSize respected, and fills the minSize default', () => {
    const p = partition(pool.y, 10, 10, { kind: 'quantity', alpha: 0.5 }, 3);
    expectCoversEachIndexOnce(p, n);
    expectConsistentLabelMatrix(p, pool.y, 10);
    expect(p.spec).toEqual({ kind: 'quantity', alpha: 0.5, minSize: 10 });
    expect(Math.min(...p.indices.map((rows) => rows.length))).toBeGreaterThanOrEqual(10);
    expect(partition(pool.y, 10, 10, { kind: 'quantity', alpha: 0.5, minSize: 10 }, 3).hash).toBe(p.hash);
  });

  it('skews sizes for small α, evens them for large α, and keeps labels IID', () => {
    const skewed = partition(pool.y, 10, 10, { kind: 'quantity', alpha: 0.2 }, 11);
    const sizes = skewed.indices.map((rows) => rows.length).sort((a, b) => b - a);
    expect(sizes[0]! / n).toBeGreaterThan(0.3);
    const flat = partition(pool.y, 10, 10, { kind: 'quantity', alpha: 1000 }, 11);
    for (const rows of flat.indices) expect(Math.abs(rows.length - n / 10)).toBeLessThan(0.1 * (n / 10));
    // Labels: a uniform sample of the pool, so large participants look like the pool.
    for (const row of [...skewed.labelMatrix, ...flat.labelMatrix]) {
      if (row.reduce((a, b) => a + b, 0) >= 500) expect(totalVariation(row, global)).toBeLessThan(0.08);
    }
  });

  it('never fails for tiny α: every participant gets minSize first', () => {
    const p = partition(pool.y, 10, 50, { kind: 'quantity', alpha: 0.01, minSize: 20 }, 5);
    expectCoversEachIndexOnce(p, n);
    expect(Math.min(...p.indices.map((rows) => rows.length))).toBeGreaterThanOrEqual(20);
    const q = partition(pool.y, 10, 4, { kind: 'quantity', alpha: 0.5, minSize: 0 }, 5);
    expectCoversEachIndexOnce(q, n);
  });

  it('is deterministic in its seed and validates its parameters', () => {
    const a = partition(pool.y, 10, 6, { kind: 'quantity', alpha: 1 }, 8);
    expect(partition(pool.y, 10, 6, { kind: 'quantity', alpha: 1 }, 8).indices).toEqual(a.indices);
    expect(partition(pool.y, 10, 6, { kind: 'quantity', alpha: 1 }, 9).hash).not.toBe(a.hash);
    expect(partition(pool.y, 10, 6, { kind: 'dirichlet', alpha: 1 }, 8).hash).not.toBe(a.hash);
    expect(() => partition(pool.y, 10, 6, { kind: 'quantity', alpha: 0 }, 8)).toThrow(/E_PARTITION.*alpha/);
    expect(() => partition(pool.y, 10, 6, { kind: 'quantity', alpha: 1, minSize: 2000 }, 8)).toThrow(/E_PARTITION.*minSize/);
  });
});

describe('describePartition', () => {
  it('names every kind', () => {
    const specs: PartitionSpec[] = [
      { kind: 'iid' },
      { kind: 'dirichlet', alpha: 0.3 },
      { kind: 'shards', classesPerParticipant: 2 },
      { kind: 'quantity', alpha: 0.5 },
    ];
    expect(specs.map((s) => s.kind)).toEqual([...PARTITION_KINDS]);
    expect(specs.map(describePartition)).toEqual(['IID', 'Dirichlet α=0.3 label skew', '2 label shards each', 'Dirichlet α=0.5 quantity skew']);
  });
});
