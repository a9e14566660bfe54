/**
 * Sparse aggregation (issue 17 §1): the mean and the leave-one-out means of 100 participants'
 * top-k distributions computed on the sparse form (server/aggregators/sparse-sums.ts), against
 * the dense math (sums.ts) on the same rows expanded, interleaved in the same run — for classes
 * ([1000, 10], k = 1 and 3) and per-token vocabularies ([rows, positions, vocab], k = 8).
 */
import { decodeTopKRows, expandTopK, packTopK, type TopKRows } from '../protocol/index.js';
import { leaveOneOutMeans, meanOf } from '../server/aggregators/sums.js';
import { sparseLeaveOneOutMeans, sparseMean } from '../server/aggregators/sparse-sums.js';
import { figure, fmt, gbPerSecond, interleavedSync, softPredictions, type Benchmark, type Figure, type Table } from './harness.js';

const PARTICIPANTS = 100;

interface Case {
  name: string;
  shape: number[];
  k: number;
  /** Expanded inputs above this many bytes are not built: the dense side is left out. */
  dense: boolean;
}

const CASES: Case[] = [
  { name: 'classes', shape: [1000, 10], k: 1, dense: true },
  { name: 'classes', shape: [1000, 10], k: 3, dense: true },
  { name: 'bytes vocab', shape: [16, 64, 256], k: 8, dense: true },
  { name: 'word vocab', shape: [16, 64, 8192], k: 8, dense: false },
];

function inputsFor(c: Case): TopKRows[] {
  const width = c.shape[c.shape.length - 1]!;
  const rows = c.shape.reduce((a, b) => a * b, 1) / width;
  return Array.from({ length: PARTICIPANTS }, (_, p) => decodeTopKRows(packTopK(softPredictions(rows, width, 500 + p, 0.3), c.shape, c.k, 'float32')));
}

export const sparseAggregationBenchmark: Benchmark = {
  id: 'sparse-aggregation',
  title: 'Sparse aggregation: mean and leave-one-out means of top-k distributions, 100 participants',
  async run({ quick, log }) {
    const rows: Table['rows'] = [];
    const figures: Figure[] = [];
    for (const c of quick ? CASES.slice(0, 3) : CASES) {
      const inputs = inputsFor(c);
      const sparseBytes = inputs.reduce((a, t) => a + t.indices.byteLength + t.values.byteLength, 0);
      const variants: Record<string, () => unknown> = {
        'sparse mean': () => sparseMean(inputs),
        'sparse leave-one-out': () => sparseLeaveOneOutMeans(inputs),
      };
      let denseBytes = 0;
      if (c.dense) {
        const dense = inputs.map((t) => expandTopK(t));
        denseBytes = dense.reduce((a, d) => a + d.byteLength, 0);
        variants['dense mean'] = () => meanOf(dense);
        variants['dense leave-one-out'] = () => leaveOneOutMeans(dense);
      }
      const t = interleavedSync(variants, { rounds: quick ? 3 : 5, batchMs: quick ? 60 : 150 });
      const label = `${c.name} [${c.shape.join(',')}], k=${c.k}`;
      for (const what of ['mean', 'leave-one-out']) {
        const sparseMs = t[`sparse ${what}`]!;
        const denseMs = t[`dense ${what}`];
        rows.push([label, what, fmt(sparseMs), fmt(gbPerSecond(sparseBytes, sparseMs)), denseMs === undefined ? '–' : fmt(denseMs), denseMs === undefined ? '–' : fmt(denseMs / sparseMs)]);
        figures.push(figure({
          id: `sparse-aggregation.${what === 'mean' ? 'mean' : 'loo'}.${c.shape[c.shape.length - 1]}.k${c.k}`,
          label: `sparse ${what}, ${PARTICIPANTS} participants, ${label}: GB/s of top-k input (uint16 index + float32 value per entry)`,
          value: gbPerSecond(sparseBytes, sparseMs),
          unit: 'GB/s',
          ...(denseMs === undefined ? {} : { baseline: { label: `dense ${what} (sums.ts) on the expanded rows, GB/s of the same top-k input`, value: gbPerSecond(sparseBytes, denseMs), unit: 'GB/s' } }),
        }));
      }
      log(`  ${label}: sparse mean ${fmt(t['sparse mean']!)} ms, leave-one-out ${fmt(t['sparse leave-one-out']!)} ms${c.dense ? `; dense ${fmt(t['dense mean']!)} / ${fmt(t['dense leave-one-out']!)} ms on ${fmt(denseBytes / 1e6)} MB` : ''}`);
    }
    return {
      method: [
        `${PARTICIPANTS} participants' top-k uploads of temperature-0.3 softmax rows (harness softPredictions), decoded (decodeTopKRows) before timing; each call aggregates all of them once.`,
        'GB/s = top-k input bytes (2-byte index + 4-byte value per entry, all participants) / time of one call, median of interleaved batches; the dense side runs meanOf / leaveOneOutMeans on the rows expanded to dense (the coordinator\'s path today), timed on the same input measure, so the ratio is the speed-up.',
        'Leave-one-out writes one target per participant over the union of supports (up to n·k entries per row): its output, not its input, bounds it.',
      ],
      tables: [{ caption: 'Sparse against dense aggregation, 100 participants', columns: ['input', 'aggregate', 'sparse ms', 'sparse GB/s', 'dense ms', 'dense / sparse'], rows }],
      figures,
      notes: [],
    };
  },
};
