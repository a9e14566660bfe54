/**
 * One global student from the ensemble, end to end: a real coordinator on 127.0.0.1, three real
 * socket.io participants running DML on real MNIST shards, and a distiller — no private data,
 * no uploads — that learns only from the ensemble of their predictions on the reference set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { subset, type LabeledDataset } from '../../client/data/dataset.js';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { partition } from '../../client/data/partition.js';
import { createModel } from '../../client/models.js';
import { runParticipant, type ParticipantSummary } from '../../client/participant.js';
import { softmaxRows } from '../../client/procedures/distiller.js';
import { Student } from '../../client/student.js';
import { Coordinator } from '../../server/coordinator.js';
import type { SessionConfig } from '../../server/session.js';

const ROUNDS = 3;
const PARTICIPANTS = 3;
const REFERENCE = 500;

const split = splitDataset(loadMnist(), { test: 500, reference: REFERENCE }, 5);
const shards = partition(split.pool.y, 10, PARTICIPANTS, { kind: 'dirichlet', alpha: 0.5 }, 5);
// 500 private samples each keep the test quick; the shards stay label-skewed.
const trainSets = shards.indices.map((indices) => subset(split.pool, indices.slice(0, 500)));
/** What a distiller holds: nothing — an empty data set with the samples' shape and the classes. */
const nothing: LabeledDataset = subset(split.pool, []);

const newStudent = (seed: number) =>
  new Student(createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: 10, seed }), { sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed });

const sessionConfig = (id: string, algorithm: string): SessionConfig => ({
  id, algorithm, rounds: ROUNDS,
  participants: [
    ...Array.from({ length: PARTICIPANTS }, (_, i) => ({ id: `p${i}`, token: `${id}-p${i}` })),
    { id: 'distiller', token: `${id}-distiller`, role: 'distiller' as const },
  ],
  minParticipants: PARTICIPANTS,
  numClasses: 10, referenceSize: REFERENCE, referencePerRound: REFERENCE, temperature: 3, alpha: 0.5, uploadDtype: 'float32',
  roundTimeoutMs: 60_000, trainTimeoutMs: 60_000, onRoundFailure: 'stop', seed: 5, maxMessageBytes: 4 << 20,
});

describe('a distiller end to end', () => {
  let coordinator: Coordinator;
  /** The session's distiller (no private data, 3 epochs over the reference rows) and its three participants, to the end. */
  const runWithDistiller = (session: string, global: Student, students: Student[]) =>
    Promise.all([
      runParticipant({
        url: coordinator.url, session, token: `${session}-distiller`, student: global, role: 'distiller',
        data: { train: nothing, reference: split.reference.x }, evaluation: split.test, epochs: 3, batchSize: 32,
      }),
      ...trainSets.map((train, i) => runParticipant({
        url: coordinator.url, session, token: `${session}-p${i}`, student: students[i]!,
        data: { train, reference: split.reference.x }, evaluation: split.test, epochs: 1, batchSize: 32,
      })),
    ]) as Promise<[ParticipantSummary, ...ParticipantSummary[]]>;
  beforeAll(async () => {
    await selectBackend();
    coordinator = await Coordinator.start({ host: '127.0.0.1', maxMessageBytes: 4 << 20 });
  });
  afterAll(async () => coordinator.close());

  it('learns one student from the DML ensemble alone, reporting every round, well above chance', async () => {
    const config = sessionConfig('e2e-distiller', 'dml');
    const session = coordinator.createSession(config);
    const students = trainSets.map((_, i) => newStudent(60 + i));
    const global = newStudent(99);
    const untrained = (await global.evaluate(split.test)).accuracy;
    try {
      const [distilled, ...summaries] = await runWithDistiller(config.id, global, students);

      expect(session.history.map((r) => r.round)).toEqual([1, 2, 3]);
      for (const record of session.history) {
        // The distiller contributes nothing, and the round waited for its report.
        expect(record.contributors.sort()).toEqual(['p0', 'p1', 'p2']);
        expect(Object.keys(record.reports).sort()).toEqual(['distiller', 'p0', 'p1', 'p2']);
      }
      expect(distilled.participant).toBe('distiller');
      expect(distilled.endReason).toBe(`completed ${ROUNDS} rounds`);
      expect(distilled.rounds.map((r) => [r.round, r.receivedTarget, r.train.samples])).toEqual([1, 2, 3].map((round) => [round, true, 3 * REFERENCE]));
      // Nothing went up but its join and reports; each round its target came down: [500, 10] float32.
      for (const r of distilled.rounds) {
        expect(r.bytesDown).toBeGreaterThan(REFERENCE * 10 * 4);
        expect(r.bytesUp).toBeLessThan(1024);
      }
      for (const s of summaries) expect(s.rounds.map((r) => r.receivedTarget)).toEqual([true, true, true]);
      // Every student made its optimizer's slots in round 1, which closed before round 2 opened: from
      // then on the tensor count these four students share holds still.
      expect(new Set([distilled, ...summaries].flatMap((s) => s.rounds.filter((r) => r.round >= 2).map((r) => r.numTensors))).size).toBe(1);
      const accuracy = distilled.rounds.at(-1)!.accuracy!;
      expect(untrained).toBeLessThan(0.25);
      expect(accuracy).toBeGreaterThan(0.5);
      expect(accuracy).toBeGreaterThan(untrained + 0.3);
    } finally {
      for (const s of [...students, global]) s.dispose();
    }
  });

  it('learns from FedMD\'s mean logits, turned into softmax(z/T) on its side', async () => {
    const config = { ...sessionConfig('e2e-distiller-fedmd', 'fedmd'), temperature: 1, alpha: 1, aggregator: 'mean-logits' };
    const session = coordinator.createSession(config);
    const students = trainSets.map((_, i) => newStudent(70 + i));
    const global = newStudent(97);
    try {
      const [distilled] = await runWithDistiller(config.id, global, students);
      expect(session.history.map((r) => [r.round, r.contributors.length, Object.keys(r.reports).length])).toEqual([[1, 3, 4], [2, 3, 4], [3, 3, 4]]);
      expect(distilled.rounds.map((r) => r.receivedTarget)).toEqual([true, true, true]);
      expect(distilled.rounds.every((r) => Number.isFinite(r.train.loss))).toBe(true);
      expect(distilled.rounds.at(-1)!.accuracy).toBeGreaterThan(0.5);
    } finally {
      for (const s of [...students, global]) s.dispose();
    }
  });

  it('is refused by an FD session, which has no ensemble on a reference set to give it', async () => {
    const config = { ...sessionConfig('e2e-distiller-fd', 'fd'), referenceSize: 0, referencePerRound: 0 };
    coordinator.createSession(config);
    const global = newStudent(98);
    try {
      await expect(runParticipant({
        url: coordinator.url, session: config.id, token: `${config.id}-distiller`, student: global, role: 'distiller',
        data: { train: nothing }, evaluation: split.test, epochs: 1, batchSize: 32,
      })).rejects.toThrow('E_AUTH: session e2e-distiller-fd (fd) cannot take a distiller: it exchanges class-logits, not predictions on a shared reference set');
    } finally {
      global.dispose();
    }
  });
});

describe('softmaxRows', () => {
  it('turns each row of logits into softmax(z / T), stable for large logits', () => {
    const probs = softmaxRows(Float32Array.from([0, Math.log(3), 1000, 1000]), 2, 1);
    expect(probs[0]).toBeCloseTo(0.25, 6);
    expect(probs[1]).toBeCloseTo(0.75, 6);
    expect([...probs.subarray(2)]).toEqual([0.5, 0.5]);
    const tempered = softmaxRows(Float32Array.from([0, 2 * Math.log(3)]), 2, 2);
    expect(tempered[1]).toBeCloseTo(0.75, 6);
  });
});
