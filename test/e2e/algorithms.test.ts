/**
 * Every algorithm end to end over real sockets: a coordinator on 127.0.0.1 and participants
 * training real students on real MNIST shards. Also: different architectures in one session,
 * and a teacher-only participant.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { subset, type LabeledDataset } from '../../client/data/dataset.js';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { partition } from '../../client/data/partition.js';
import { createModel, type ModelName } from '../../client/models.js';
import { runParticipant, type ParticipantSummary } from '../../client/participant.js';
import { Student } from '../../client/student.js';
import { Coordinator } from '../../server/coordinator.js';
import type { SessionConfig } from '../../server/session.js';
import { ALGORITHM_DEFAULTS, ALGORITHM_NAMES, STRATEGIES } from '../../server/strategies/index.js';

const REFERENCE = 200;
const split = splitDataset(loadMnist(), { test: 300, reference: REFERENCE }, 11);
const shards = partition(split.pool.y, 10, 3, { kind: 'dirichlet', alpha: 0.5 }, 11);
// 300 private samples each keep the tests quick; the shards stay label-skewed.
const trainSets: LabeledDataset[] = shards.indices.map((indices) => subset(split.pool, indices.slice(0, 300)));

interface Member {
  model: ModelName;
  role?: 'participant' | 'teacher';
  train: LabeledDataset;
  /** A student trained beforehand (a teacher); a fresh one of `model` otherwise. */
  student?: Student;
}

let coordinator: Coordinator;
let sessionCount = 0;

/** One session of `rounds` rounds with the given members; returns their summaries and students. */
async function runSession(algorithm: string, members: Member[], rounds = 2) {
  const tokens = members.map((_, i) => ({ id: `p${i}`, token: `t-${algorithm}-${sessionCount}-${i}` }));
  const defaults = ALGORITHM_DEFAULTS[algorithm]!;
  const config: SessionConfig = {
    id: `e2e-${algorithm}-${sessionCount++}`, algorithm, rounds, participants: tokens, minParticipants: members.length,
    numClasses: 10, referenceSize: REFERENCE, referencePerRound: 100, temperature: defaults.temperature, alpha: defaults.alpha,
    aggregator: defaults.aggregator, sharpenTemperature: defaults.sharpenTemperature, uploadDtype: 'float32',
    roundTimeoutMs: 60_000, trainTimeoutMs: 60_000, onRoundFailure: 'stop', seed: 3, maxMessageBytes: 8 << 20,
    async: algorithm === 'codistillation' ? { shards: 4, exchangeEvery: 3, burnInSteps: 3, stalenessMs: 60_000 } : undefined,
  };
  const session = coordinator.createSession(config);
  const students = members.map((m, i) => m.student ?? new Student(createModel({ name: m.model, inputShape: [28, 28, 1], numClasses: 10, seed: 40 + i }), {
    sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: i,
  }));
  const summaries: ParticipantSummary[] = await Promise.all(members.map((m, i) => runParticipant({
    url: coordinator.url, session: config.id, token: tokens[i]!.token, student: students[i]!, role: m.role,
    data: { train: m.train, reference: split.reference.x }, evaluation: split.test, epochs: 1, batchSize: 32,
  })));
  return { session, summaries, students };
}

describe('algorithms end to end', () => {
  beforeAll(async () => {
    await selectBackend();
    coordinator = await Coordinator.start({ maxMessageBytes: 8 << 20 });
  });
  afterAll(async () => coordinator.close());

  // Every registered synchronous algorithm that exchanges something (dml has its own round-trip test too):
  // a new algorithm is covered here by registering it.
  for (const algorithm of ALGORITHM_NAMES.filter((name) => STRATEGIES[name]!.mode === 'sync' && STRATEGIES[name]!.knowledge !== 'none')) {
    it(`${algorithm}: every round completes with every participant contributing and receiving a target`, async () => {
      const { session, summaries, students } = await runSession(algorithm, trainSets.map((train) => ({ model: 'mlp' as const, train })));
      expect(session.history.map((r) => [r.round, r.contributors.length, Object.keys(r.reports).length])).toEqual([[1, 3, 3], [2, 3, 3]]);
      for (const s of summaries) {
        expect(s.rounds.map((r) => r.receivedTarget)).toEqual([true, true]);
        expect(s.rounds.at(-1)!.accuracy).toBeGreaterThan(0.2);
      }
      if (algorithm === 'fedavg') {
        // After the last round every participant holds the same global model.
        const weights = students.map((st) => st.getWeights());
        expect(weights[1]).toEqual(weights[0]);
        expect(weights[2]).toEqual(weights[0]);
      }
      if (algorithm === 'fd') {
        // Class logits travel: C × C floats up per participant, no reference set, a few hundred bytes.
        expect(session.history[0]!.referenceCount).toBe(0);
        expect(session.history[0]!.bytesUp).toBeLessThan(3 * 1024);
      }
      if (algorithm === 'fedproto' || algorithm === 'fedhkd') {
        // Per-class rows travel, no reference set: C × 128 floats (fedhkd: C × (128 + C)) up per participant.
        expect(session.history[0]!.referenceCount).toBe(0);
        const width = algorithm === 'fedproto' ? 128 : 138;
        expect(session.history[0]!.bytesUp).toBeGreaterThan(3 * 10 * width * 4);
        expect(session.history[0]!.bytesUp).toBeLessThan(3 * (10 * width * 4 + 1024));
      }
      for (const st of students) st.dispose();
    });
  }

  it('codistillation: participants run at their own pace, exchange stale predictions by shard, and report every checkpoint', async () => {
    const { session, summaries, students } = await runSession('codistillation', trainSets.map((train) => ({ model: 'mlp' as const, train })));
    expect(session.history.map((r) => [r.round, Object.keys(r.reports).length])).toEqual([[1, 3], [2, 3]]);
    expect(session.history.every((r) => r.bytesUp > 0 && r.bytesDown > 0)).toBe(true);
    for (const s of summaries) {
      expect(s.endReason).toBe('completed 2 checkpoints');
      // 300 samples / (3 steps × 32) = 4 exchanges per epoch: past the 3-step burn-in it learned from peers.
      expect(s.rounds.map((r) => r.receivedTarget)).toEqual([true, true]);
      expect(s.rounds.at(-1)!.accuracy).toBeGreaterThan(0.2);
    }
    for (const st of students) st.dispose();
  });

  it('heterogeneous students: an MLP and a CNN learn from each other through predictions alone', async () => {
    const { session, summaries, students } = await runSession('dml', [
      { model: 'mlp', train: trainSets[0]! },
      { model: 'cnn', train: trainSets[1]! },
      { model: 'mlp', train: trainSets[2]! },
    ]);
    expect(students[0]!.model.countParams()).not.toBe(students[1]!.model.countParams());
    expect(session.history.every((r) => r.contributors.length === 3)).toBe(true);
    for (const s of summaries) expect(s.rounds.every((r) => r.receivedTarget)).toBe(true);
    for (const st of students) st.dispose();
  });

  it('a teacher-only participant contributes to every target but never learns', async () => {
    // The teacher: a CNN trained beforehand on all three shards (a bigger model with more data).
    const pooled = subset(split.pool, shards.indices.flatMap((indices) => indices.slice(0, 600)));
    const teacher = new Student(createModel({ name: 'cnn', inputShape: [28, 28, 1], numClasses: 10, seed: 9 }), {
      sampleShape: [28, 28, 1], numClasses: 10, learningRate: 3e-3, seed: 9,
    });
    await teacher.train({ labeled: pooled }, { epochs: 2, batchSize: 32, alpha: 1, temperature: 1 });
    const teacherWeights = teacher.getWeights();

    const { session, summaries, students } = await runSession('dml', [
      { model: 'mlp', train: trainSets[0]! },
      { model: 'mlp', train: trainSets[1]! },
      { model: 'cnn', role: 'teacher', train: pooled, student: teacher },
    ]);
    // It contributed every round, was sent no target, reported no training, and its weights never moved.
    expect(session.history.every((r) => r.contributors.includes('p2'))).toBe(true);
    expect(session.history.every((r) => !('p2' in r.reports) && Object.keys(r.reports).length === 2)).toBe(true);
    expect(summaries[2]!.rounds).toEqual([]);
    expect(teacher.getWeights()).toEqual(teacherWeights);
    for (const s of summaries.slice(0, 2)) expect(s.rounds.every((r) => r.receivedTarget)).toBe(true);
    for (const st of students) st.dispose();
  });
});
