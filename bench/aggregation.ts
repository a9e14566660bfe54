/**
 * 4. Aggregation: GB/s of uploaded predictions aggregated for 10, 100 and 1,000 participants, by
 *    every aggregation function and strategy registered when the benchmark runs; and the latency
 *    from the last upload received to the last target sent for 100 participants × 1,000×10
 *    predictions, through a real Coordinator with real socket.io clients.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Server } from 'socket.io';
import type { Contribution, KnowledgeKind } from '../protocol/index.js';
import { leaveOneOutMeans, meanOf } from '../server/aggregators/sums.js';
import { Coordinator } from '../server/coordinator.js';
import type { SessionConfig } from '../server/session.js';
import { createStrategy, STRATEGIES } from '../server/strategies/index.js';
import { ClientPool } from './client-pool.js';
import { legacyLeaveOneOutMeans, legacyMeanOf } from './legacy.js';
import { legacyDml, legacyFd, legacyLeaveOneOutAggregates, legacyMean } from './legacy-aggregation.js';
import { AGGREGATORS, leaveOneOutAggregates, type AggregatorName } from '../server/aggregators/index.js';
import { figure, fmt, gbPerSecond, interleavedSync, median, seededUniform, softPredictions, type Benchmark, type Figure, type Table } from './harness.js';

const ROWS = 1000;
const CLASSES = 10;
const COUNTS = [10, 100, 1000];
/** A call slower than this is timed once; a function whose call at n took longer than the budget skips larger n. */
const SLOW_CALL_MS = 1000;
const BUDGET_MS = 4000;
/** Parameters of the MLP student, for FedAvg-style weight uploads. */
const MLP_PARAMETERS = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10;

type Kind = KnowledgeKind;

interface Candidate {
  family: string;
  name: string;
  kind: Kind;
  /** Aggregates n contributions once. */
  run: (contributions: Contribution[]) => unknown;
  maxParticipants?: number;
}

function payload(kind: Kind, index: number): { values: Float32Array; sampleCount?: number; labelCounts?: number[] } {
  const rand = seededUniform(1000 + index);
  const counts = Array.from({ length: CLASSES }, () => 1 + Math.floor(rand() * 100));
  const sampleCount = counts.reduce((a, b) => a + b, 0);
  switch (kind) {
    case 'reference-predictions':
    // Per-token predictions aggregate as rows·positions distributions: the same math on the same bytes.
    case 'reference-token-predictions':
      return { values: softPredictions(ROWS, CLASSES, 1000 + index), sampleCount, labelCounts: counts };
    case 'reference-logits':
    case 'class-logits': {
      const length = kind === 'class-logits' ? CLASSES * CLASSES : ROWS * CLASSES;
      const values = new Float32Array(length);
      for (let i = 0; i < length; i++) values[i] = rand() * 8 - 4;
      return { values, sampleCount, labelCounts: counts };
    }
    case 'weights': {
      const values = new Float32Array(MLP_PARAMETERS);
      for (let i = 0; i < values.length; i++) values[i] = rand() * 0.2 - 0.1;
      return { values, sampleCount };
    }
    case 'class-representations':
    case 'class-hyper-knowledge': {
      // 128-wide rows (the mlp's penultimate layer); the soft part of hyper-knowledge is not on the simplex, which aggregation does not need.
      const values = new Float32Array(CLASSES * (128 + (kind === 'class-hyper-knowledge' ? CLASSES : 0)));
      for (let i = 0; i < values.length; i++) values[i] = rand() * 4;
      return { values, sampleCount, labelCounts: counts };
    }
  }
}

function contributionsFor(kind: Kind, n: number, cache: Map<string, Contribution[]>): Contribution[] {
  const key = `${kind}:${n}`;
  let list = cache.get(key);
  if (list === undefined) {
    list = Array.from({ length: n }, (_, i) => ({ participant: `p${i}`, kind, ...payload(kind, i) }));
    cache.set(key, list);
  }
  return list;
}

/** The aggregator registry (server/aggregators), if this tree has one. */
async function registeredAggregators(): Promise<{ candidates: Candidate[]; found: boolean }> {
  const compiled = new URL('../server/aggregators/index.js', import.meta.url);
  if (!existsSync(fileURLToPath(compiled))) return { candidates: [], found: false };
  // A specifier in a variable: the bench must compile whether or not the registry exists.
  const specifier = compiled.href;
  const registry = (await import(specifier)) as {
    AGGREGATORS?: Record<string, (c: readonly Contribution[], o: { rows: number; classes: number }) => Float32Array>;
    leaveOneOutAggregates?: (name: string, c: readonly Contribution[], o: { rows: number; classes: number }) => Map<string, Float32Array>;
  };
  const candidates: Candidate[] = [];
  const options = { rows: ROWS, classes: CLASSES };
  for (const [name, aggregate] of Object.entries(registry.AGGREGATORS ?? {})) {
    candidates.push({ family: 'aggregator', name, kind: 'reference-predictions', run: (c) => aggregate(c, options) });
  }
  const loo = registry.leaveOneOutAggregates;
  if (loo !== undefined) {
    for (const name of Object.keys(registry.AGGREGATORS ?? {})) {
      candidates.push({ family: 'aggregator, leave-one-out (all n targets)', name, kind: 'reference-predictions', run: (c) => loo(name, c, options) });
    }
  }
  return { candidates, found: true };
}

function registeredStrategies(notes: string[]): Candidate[] {
  const candidates: Candidate[] = [];
  for (const name of Object.keys(STRATEGIES)) {
    const strategy = createStrategy(name, { referenceSize: ROWS, referencePerRound: ROWS, seed: 1, numClasses: CLASSES });
    if (strategy.knowledge === 'none') {
      notes.push(`Strategy ${name} exchanges nothing (knowledge "none"): nothing to aggregate.`);
      continue;
    }
    const kind = strategy.knowledge;
    const learners = (c: Contribution[]) => c.map((x) => x.participant);
    candidates.push({
      family: `strategy (${kind})`,
      name,
      kind,
      run: (c) => strategy.aggregate(c, learners(c), kind === 'class-logits' || kind === 'weights' ? 0 : ROWS),
      // A weights upload is the whole model (~0.9 MB for the MLP): 1,000 of them is 0.9 GB of input.
      maxParticipants: kind === 'weights' ? 100 : undefined,
    });
  }
  return candidates;
}

interface Throughput {
  family: string;
  name: string;
  n: number;
  bytes: number;
  ms: number;
  gbps: number;
}

function timeCandidate(candidate: Candidate, contributions: Contribution[]): number {
  const started = performance.now();
  candidate.run(contributions);
  const first = performance.now() - started;
  if (first > SLOW_CALL_MS) return first;
  const times = [first];
  const until = performance.now() + 400;
  while (times.length < 3 || (performance.now() < until && times.length < 50)) {
    const t0 = performance.now();
    candidate.run(contributions);
    times.push(performance.now() - t0);
  }
  return median(times.slice(1));
}

// ---- round latency through a real coordinator -----------------------------------------------

interface LatencyResult {
  serverMs: number[];
  /** Of serverMs: the strategy's aggregate() call (every target and the ensemble). */
  aggregateMs: number[];
  clientMs: number[];
  rounds: number;
}

/**
 * 100 raw participants in two client processes, a dml session of 1,000×10 float32 predictions.
 * Server side: a socket.io middleware stamps each upload's arrival and wraps its ack; the last
 * upload of a round is acknowledged only after session.upload has aggregated and emitted every
 * target (all synchronous), so ack time − arrival time of that upload is "last upload received
 * → last target sent". Client side: latest upload emitted → latest target received.
 */
async function roundLatency(participants: number, rounds: number, log: (line: string) => void): Promise<LatencyResult> {
  const coordinator = await Coordinator.start({ host: '127.0.0.1', port: 0, maxMessageBytes: 16 * 1024 * 1024 });
  const uploads: Array<{ arrived: number; acked: number }> = [];
  const io = (coordinator as unknown as { io?: Server }).io;
  if (io === undefined) throw new Error('cannot reach the coordinator\'s socket.io server to time uploads (Coordinator.io is gone)');
  io.on('connection', (socket) => {
    socket.use((packet, next) => {
      if (packet[0] === 'upload' && typeof packet[packet.length - 1] === 'function') {
        const entry = { arrived: performance.now(), acked: 0 };
        uploads.push(entry);
        const ack = packet[packet.length - 1] as (...args: unknown[]) => void;
        packet[packet.length - 1] = (...args: unknown[]) => {
          entry.acked = performance.now();
          ack(...args);
        };
      }
      next();
    });
  });
  const tokens = Array.from({ length: participants }, (_, i) => ({ id: `p${i}`, token: `latency-token-${i}-${Math.random().toString(36).slice(2)}` }));
  const config: SessionConfig = {
    id: 'bench-latency',
    algorithm: 'dml',
    rounds,
    participants: tokens,
    minParticipants: participants,
    numClasses: CLASSES,
    referenceSize: ROWS,
    referencePerRound: ROWS,
    temperature: 3,
    alpha: 0.5,
    uploadDtype: 'float32',
    roundTimeoutMs: 120_000,
    trainTimeoutMs: 120_000,
    onRoundFailure: 'stop',
    seed: 1,
    maxMessageBytes: 16 * 1024 * 1024,
  };
  const session = coordinator.createSession(config);
  // Instrumentation only: time the strategy's share of each round's latency.
  const aggregateMs: number[] = [];
  const strategy = session.strategy as { aggregate: (...args: never[]) => unknown };
  const aggregate = strategy.aggregate.bind(strategy);
  strategy.aggregate = (...args: never[]) => {
    const started = performance.now();
    const result = aggregate(...args);
    aggregateMs.push(performance.now() - started);
    return result;
  };
  const ended = new Promise<string>((resolve) => session.once('end', ({ reason }) => resolve(reason)));
  const pool = await ClientPool.start({ processes: 2, url: coordinator.url, session: config.id, classes: CLASSES, participants: tokens });
  try {
    await pool.waitJoined(60_000);
    log(`  latency: ${participants} participants joined; ${rounds} rounds of ${ROWS}×${CLASSES}`);
    const reason = await Promise.race([
      ended,
      pool.until(() => false, 300_000, 'the latency session to end').then(() => ''),
    ]);
    if (!reason.startsWith('completed')) throw new Error(`the latency session ended early: ${reason}`);
    await pool.until(() => pool.rounds.size >= rounds && [...pool.rounds.values()].every((r) => r.processes >= 2), 30_000, 'every round\'s client timings');
  } finally {
    await pool.close();
    await coordinator.close();
  }
  if (uploads.length !== participants * rounds) throw new Error(`expected ${participants * rounds} uploads, saw ${uploads.length}`);
  const serverMs: number[] = [];
  const clientMs: number[] = [];
  for (let r = 1; r <= rounds; r++) {
    const last = uploads[r * participants - 1]!;
    serverMs.push(last.acked - last.arrived);
    const times = pool.rounds.get(r)!;
    clientMs.push(times.targetAt - times.uploadAt);
  }
  return { serverMs, aggregateMs, clientMs, rounds };
}

export const aggregationBenchmark: Benchmark = {
  id: 'aggregation',
  title: '4. Aggregation',
  async run({ quick, log }) {
    const notes: string[] = [];
    const figures: Figure[] = [];
    const candidates: Candidate[] = [
      { family: 'server/aggregate.ts', name: 'meanOf', kind: 'reference-predictions', run: (c) => meanOf(c.map((x) => x.values)) },
      { family: 'server/aggregate.ts', name: 'leaveOneOutMeans', kind: 'reference-predictions', run: (c) => leaveOneOutMeans(c.map((x) => x.values)) },
    ];
    // The four-vectors-per-pass sum against the one-vector-per-pass sum it replaced, interleaved.
    const fixRows: Table['rows'] = [];
    const fixCache = new Map<string, Contribution[]>();
    for (const n of quick ? COUNTS.slice(0, 2) : COUNTS) {
      const vectors = contributionsFor('reference-predictions', n, fixCache).map((c) => c.values);
      const bytes = n * ROWS * CLASSES * 4;
      const t = interleavedSync({
        'meanOf before': () => legacyMeanOf(vectors),
        'meanOf after': () => meanOf(vectors),
        'leaveOneOutMeans before': () => legacyLeaveOneOutMeans(vectors),
        'leaveOneOutMeans after': () => leaveOneOutMeans(vectors),
      }, { rounds: 5, batchMs: quick ? 60 : 150 });
      for (const f of ['meanOf', 'leaveOneOutMeans']) {
        const before = t[`${f} before`]!;
        const after = t[`${f} after`]!;
        fixRows.push([f, n, fmt(before), fmt(after), fmt(gbPerSecond(bytes, before)), fmt(gbPerSecond(bytes, after))]);
        figures.push(figure({
          id: `aggregation.${f}.fix.n${n}`,
          label: `${f}, ${n} participants × ${ROWS}×${CLASSES}: four vectors per pass vs one (before), same run`,
          value: gbPerSecond(bytes, after), unit: 'GB/s',
          baseline: { label: 'one vector per pass (bench/legacy.ts)', value: gbPerSecond(bytes, before), unit: 'GB/s' },
        }));
      }
      log(`  sum fix, n=${n}: meanOf ${fmt(t['meanOf before']!)} → ${fmt(t['meanOf after']!)} ms`);
    }

    // Checks fused with the sum and done once per round (server/aggregators, the dml and fd
    // strategies), against the code they replaced (bench/legacy-aggregation.ts), interleaved.
    const checkRows: Table['rows'] = [];
    const options = { rows: ROWS, classes: CLASSES };
    const settings = { referenceSize: ROWS, referencePerRound: ROWS, seed: 1, numClasses: CLASSES };
    const dmlStrategy = createStrategy('dml', settings);
    const fdStrategy = createStrategy('fd', settings);
    for (const n of quick ? COUNTS.slice(0, 2) : COUNTS) {
      const predictions = contributionsFor('reference-predictions', n, fixCache);
      const classLogits = contributionsFor('class-logits', n, fixCache);
      const learners = predictions.map((c) => c.participant);
      const t = interleavedSync({
        'mean before': () => legacyMean(predictions, options),
        'mean after': () => AGGREGATORS.mean(predictions, options),
        'dml before': () => legacyDml('mean', predictions, learners, options),
        'dml after': () => dmlStrategy.aggregate(predictions, learners, ROWS),
        'fd before': () => legacyFd(classLogits, learners, CLASSES),
        'fd after': () => fdStrategy.aggregate(classLogits, learners, 0),
      }, { rounds: quick ? 3 : 7, batchMs: quick ? 60 : 200 });
      for (const [f, what, input] of [
        ['mean', 'mean aggregator: finiteness checked on the float64 sum vs on every value', predictions],
        ['dml', 'dml strategy: contributions checked and summed once for all targets and the ensemble vs twice', predictions],
        ['fd', 'fd strategy: every learner\'s class teacher from one exact sum (O(n)) vs summed per learner (O(n²))', classLogits],
      ] as const) {
        const before = t[`${f} before`]!;
        const after = t[`${f} after`]!;
        const bytes = input.reduce((a, c) => a + c.values.byteLength, 0);
        checkRows.push([what, n, fmt(before), fmt(after), fmt(gbPerSecond(bytes, before)), fmt(gbPerSecond(bytes, after)), `${fmt(before / after)}×`]);
        figures.push(figure({
          id: `aggregation.${f}.check-fix.n${n}`,
          label: `${what}, ${n} participants, same run`,
          value: gbPerSecond(bytes, after), unit: 'GB/s',
          baseline: { label: 'before (bench/legacy-aggregation.ts), interleaved', value: gbPerSecond(bytes, before), unit: 'GB/s' },
        }));
      }
      log(`  check fix, n=${n}: mean ${fmt(t['mean before']!)} → ${fmt(t['mean after']!)} ms, dml ${fmt(t['dml before']!)} → ${fmt(t['dml after']!)} ms, fd ${fmt(t['fd before']!)} → ${fmt(t['fd after']!)} ms`);
    }
    // The other leave-one-out aggregates stay O(n²·P·C), but for the median and the trimmed mean
    // (one sort per coordinate, O(n log n)); what changed for all is that the whole set is checked
    // once instead of 2n times. Small n: the old code takes seconds at 100.
    const looNames: AggregatorName[] = ['sample-weighted', 'label-weighted', 'entropy-weighted', 'era', 'median', 'trimmed-mean'];
    for (const n of quick ? [10] : [10, 30, 100]) {
      const predictions = contributionsFor('reference-predictions', n, fixCache);
      const bytes = predictions.reduce((a, c) => a + c.values.byteLength, 0);
      for (const name of looNames) {
        const t = interleavedSync({
          before: () => legacyLeaveOneOutAggregates(name, predictions, options),
          after: () => leaveOneOutAggregates(name, predictions, options),
        }, { rounds: 3, batchMs: quick ? 30 : 60 });
        const change = name === 'median' || name === 'trimmed-mean' ? 'one sort per coordinate and the set checked once vs n selections and 2n checks' : 'the set checked once vs 2n times';
        checkRows.push([`${name} leave-one-out (all n targets): ${change}`, n, fmt(t.before!), fmt(t.after!), fmt(gbPerSecond(bytes, t.before!)), fmt(gbPerSecond(bytes, t.after!)), `${fmt(t.before! / t.after!)}×`]);
        figures.push(figure({
          id: `aggregation.loo.${name}.check-fix.n${n}`,
          label: `${name} leave-one-out (all n targets), ${n} participants: ${change}, same run`,
          value: gbPerSecond(bytes, t.after!), unit: 'GB/s',
          baseline: { label: 'before (bench/legacy-aggregation.ts), interleaved', value: gbPerSecond(bytes, t.before!), unit: 'GB/s' },
        }));
      }
      log(`  leave-one-out check fix, n=${n}: done`);
    }
    fixCache.clear();
    const aggregators = await registeredAggregators();
    candidates.push(...aggregators.candidates);
    if (!aggregators.found) notes.push('No server/aggregators registry in this tree: only server/aggregate.ts and the strategies were measured.');
    candidates.push(...registeredStrategies(notes));

    const cache = new Map<string, Contribution[]>();
    const results: Throughput[] = [];
    const skipped: Table['rows'] = [];
    const counts = quick ? COUNTS.slice(0, 2) : COUNTS;
    for (const candidate of candidates) {
      let lastMs = 0;
      let lastN = 0;
      // How the time grows with n, n^growth, from the last two sizes measured (at least linear).
      let growth = 1;
      for (const n of counts) {
        if (candidate.maxParticipants !== undefined && n > candidate.maxParticipants) {
          skipped.push([candidate.family, candidate.name, n, `input would be ${fmt((n * MLP_PARAMETERS * 4) / 1e9)} GB`]);
          continue;
        }
        // Anything expected to take more than the budget at this n, extrapolated with the growth
        // measured so far (the O(n²) leave-one-out aggregates grow as n², not n), would take minutes.
        const expected = lastN > 0 ? lastMs * (n / lastN) ** growth : 0;
        if (expected > BUDGET_MS) {
          const how = growth > 1 ? `growing as n^${fmt(growth)} from the smaller sizes` : 'at least linearly';
          skipped.push([candidate.family, candidate.name, n, `${fmt(lastMs)} ms at n=${lastN}; about ${fmt(expected / 1000)} s expected (${how})`]);
          continue;
        }
        const contributions = contributionsFor(candidate.kind, n, cache);
        const bytes = contributions.reduce((a, c) => a + c.values.byteLength, 0);
        let ms: number;
        try {
          ms = timeCandidate(candidate, contributions);
        } catch (error) {
          skipped.push([candidate.family, candidate.name, n, `failed: ${(error as Error).message.slice(0, 160)}`]);
          break;
        }
        if (lastN > 0 && lastMs > 0) growth = Math.max(1, Math.log(ms / lastMs) / Math.log(n / lastN));
        lastMs = ms;
        lastN = n;
        results.push({ family: candidate.family, name: candidate.name, n, bytes, ms, gbps: gbPerSecond(bytes, ms) });
        log(`  ${candidate.family} ${candidate.name}, n=${n}: ${fmt(ms)} ms, ${fmt(gbPerSecond(bytes, ms))} GB/s`);
      }
    }
    cache.clear();

    // Targets: the mean at ≥ 1 GB/s, as the function and as the registered aggregator/strategy use it.
    for (const n of counts) {
      for (const [family, name] of [['server/aggregate.ts', 'meanOf'], ['aggregator', 'mean'], ['strategy (reference-predictions)', 'dml']] as const) {
        const r = results.find((x) => x.family === family && x.name === name && x.n === n);
        if (r === undefined) continue;
        const isStrategy = family === 'strategy (reference-predictions)';
        figures.push(figure({
          id: `aggregation.${name}.n${n}`,
          label: `${isStrategy ? 'dml strategy (every leave-one-out target + the ensemble mean)' : `${name} (${family})`}, ${n} participants × ${ROWS}×${CLASSES}`,
          value: r.gbps, unit: 'GB/s',
          // The target is for the mean; dml writes n targets as large as its input besides.
          target: isStrategy ? undefined : { on: 'value', op: '>=', goal: 1 },
        }));
      }
    }

    const participants = 100;
    const rounds = quick ? 4 : 8;
    log(`  round latency: coordinator + ${participants} raw socket.io participants in 2 processes`);
    const latency = await roundLatency(participants, rounds, log);
    const warm = (xs: number[]) => (xs.length > 1 ? xs.slice(1) : xs);
    const serverMedian = median(warm(latency.serverMs));
    const clientMedian = median(warm(latency.clientMs));
    figures.push(figure({
      id: 'aggregation.round-latency',
      label: `Round latency, last upload received → last target sent, ${participants} participants × ${ROWS}×${CLASSES} (coordinator side)`,
      value: serverMedian, unit: 'ms',
      target: { on: 'value', op: '<', goal: 50 },
    }));
    figures.push(figure({
      id: 'aggregation.round-latency-clients',
      label: `Round latency seen by the clients, last upload emitted → last target received (loopback, 2 client processes)`,
      value: clientMedian, unit: 'ms',
    }));

    const dmlAt100 = results.find((r) => r.family === 'strategy (reference-predictions)' && r.name === 'dml' && r.n === 100);
    const meanAt100 = results.find((r) => r.family === 'server/aggregate.ts' && r.name === 'meanOf' && r.n === 100);
    const looAt100 = results.find((r) => r.family === 'server/aggregate.ts' && r.name === 'leaveOneOutMeans' && r.n === 100);
    if (dmlAt100 && meanAt100 && looAt100) {
      notes.push(
        `At 100 participants the dml strategy takes ${fmt(dmlAt100.ms)} ms where leaveOneOutMeans (every target) and meanOf (the ensemble) take ${fmt(looAt100.ms)} + ${fmt(meanAt100.ms)} ms: it checks the contributions (on their float64 sum) and sums them once, then writes n targets, each a fresh array as large as one upload, so its GB/s cannot approach the mean's.`,
      );
    }
    const latencyRest = latency.serverMs.slice(1).map((s, i) => s - (latency.aggregateMs[i + 1] ?? 0));
    notes.push(
      `Round latency: of the ${fmt(serverMedian)} ms median, strategy.aggregate takes ${fmt(median(latency.aggregateMs.slice(1)))} ms; the rest (${fmt(median(latencyRest))} ms) decodes and checks the last upload and encodes (zod + msgpack) and emits 100 target envelopes of ${fmt((ROWS * CLASSES * 4) / 1024)} KiB through socket.io, while the two client processes decode the first targets on the same 2 cores.`,
    );
    return {
      method: [
        `Inputs: n distinct uploads of ${ROWS}×${CLASSES} float32 probabilities (${fmt((ROWS * CLASSES * 4) / 1024)} KiB each); class-logits uploads are ${CLASSES}×${CLASSES}, weights uploads the MLP's ${MLP_PARAMETERS.toLocaleString('en-US')} parameters.`,
        'GB/s = input bytes (n × values × 4) / time of one call; median of repeated calls (one call when slower than 1 s).',
        'Every aggregator in server/aggregators (when present) and every strategy in server/strategies/index.ts found at run time is measured; a strategy is called as the session calls it, with every contributor a learner.',
        `Round latency: a real Coordinator, a dml session, ${participants} raw socket.io participants in 2 child processes uploading canned valid predictions; ${rounds} rounds, the first dropped as warm-up, median of the rest.`,
      ],
      tables: [
        {
          caption: 'server/aggregate.ts before and after the four-vectors-per-pass sum, interleaved in this run (ms per call)',
          columns: ['function', 'participants', 'before ms', 'after ms', 'before GB/s', 'after GB/s'],
          rows: fixRows,
        },
        {
          caption: `Checks fused with the sum and done once per round, before and after, interleaved in this run (ms per call; GB/s of input; before = bench/legacy-aggregation.ts)`,
          columns: ['function', 'participants', 'before ms', 'after ms', 'before GB/s', 'after GB/s', 'speed-up'],
          rows: checkRows,
        },
        {
          caption: `Aggregation throughput (${ROWS}×${CLASSES} per participant unless noted)`,
          columns: ['function', 'name', 'participants', 'input', 'ms per call', 'GB/s'],
          rows: results.map((r) => [r.family, r.name, r.n, `${fmt(r.bytes / 1e6)} MB`, fmt(r.ms), fmt(r.gbps)]),
        },
        ...(skipped.length > 0 ? [{ caption: 'Not measured', columns: ['function', 'name', 'participants', 'why'], rows: skipped }] : []),
        {
          caption: `Round latency per round, ${participants} participants × ${ROWS}×${CLASSES} float32 (ms; round 1 is warm-up)`,
          columns: ['round', 'coordinator: last upload received → last target sent', 'of which strategy.aggregate (dml: n targets + ensemble)', 'the rest: decode and check the upload, encode and emit 100 targets', 'clients: last upload emitted → last target received'],
          rows: latency.serverMs.map((s, i) => [i + 1, fmt(s), fmt(latency.aggregateMs[i] ?? Number.NaN), fmt(s - (latency.aggregateMs[i] ?? Number.NaN)), fmt(latency.clientMs[i]!)]),
        },
      ],
      figures,
      notes,
    };
  },
};
