/**
 * A participant's local objective beyond its peers, end to end: in a real DML session (a
 * coordinator on 127.0.0.1, socket.io clients, tfjs training), one participant adds attention
 * transfer from a local teacher to its peers term, another FitNets hints and KD from the same
 * teacher, a third keeps the default objective. Every round completes with all three, and the
 * extra terms do what they say.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { subset, type LabeledDataset } from '../../client/data/dataset.js';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { partition } from '../../client/data/partition.js';
import { attentionTransferLoss, type LossTermConfig } from '../../client/losses/index.js';
import { createModel, featureView, type FeatureModel, type ModelName } from '../../client/models.js';
import { runParticipant } from '../../client/participant.js';
import { Student } from '../../client/student.js';
import { Coordinator } from '../../server/coordinator.js';
import type { SessionConfig } from '../../server/session.js';
import { ALGORITHM_DEFAULTS } from '../../server/strategies/index.js';

const REFERENCE = 200;
const split = splitDataset(loadMnist(), { test: 300, reference: REFERENCE }, 12);
const shards = partition(split.pool.y, 10, 3, { kind: 'dirichlet', alpha: 0.5 }, 12);
const trainSets: LabeledDataset[] = shards.indices.map((indices) => subset(split.pool, indices.slice(0, 300)));

let coordinator: Coordinator;

describe('a participant objective with feature and teacher terms', () => {
  beforeAll(async () => {
    await selectBackend();
    coordinator = await Coordinator.start({ maxMessageBytes: 8 << 20 });
  });
  afterAll(async () => coordinator.close());

  it('AT, FitNets and KD from a local teacher train next to the peers term in a DML session', async () => {
    // The local teacher: a CNN trained beforehand on more data than any one participant holds.
    const teacherStudent = new Student(createModel({ name: 'cnn', inputShape: [28, 28, 1], numClasses: 10, seed: 9 }), {
      sampleShape: [28, 28, 1], numClasses: 10, learningRate: 3e-3, seed: 9,
    });
    await teacherStudent.train({ labeled: subset(split.pool, shards.indices.flatMap((indices) => indices.slice(0, 400))) }, { epochs: 1, batchSize: 32, alpha: 1, temperature: 1 });
    const teacher: FeatureModel = featureView(teacherStudent.model, 10);

    const members: Array<{ model: ModelName; objective?: LossTermConfig[] }> = [
      { model: 'cnn', objective: [{ name: 'peers', weight: 1 }, { name: 'at', weight: 100, params: { pairs: [{ student: 'conv2', teacher: 'conv2' }] } }] },
      {
        model: 'mlp',
        objective: [
          { name: 'peers', weight: 1 },
          // The MLP's first hidden layer (256) guided towards the CNN's dense layer (64) through a fully connected regressor.
          { name: 'fitnets', weight: 0.1, params: { student: 'dense1', teacher: 'dense1' } },
          { name: 'kd', weight: 0.5, params: { temperature: 3 } },
        ],
      },
      { model: 'mlp' },
    ];
    const tokens = members.map((_, i) => ({ id: `p${i}`, token: `t-objective-${i}` }));
    const defaults = ALGORITHM_DEFAULTS.dml!;
    const config: SessionConfig = {
      id: 'e2e-local-objective', algorithm: 'dml', rounds: 2, participants: tokens, minParticipants: 3,
      numClasses: 10, referenceSize: REFERENCE, referencePerRound: 100, temperature: defaults.temperature, alpha: defaults.alpha,
      aggregator: defaults.aggregator, uploadDtype: 'float32', roundTimeoutMs: 60_000, trainTimeoutMs: 60_000, onRoundFailure: 'stop',
      seed: 3, maxMessageBytes: 8 << 20,
    };
    const session = coordinator.createSession(config);
    const students = members.map((m, i) => new Student(createModel({ name: m.model, inputShape: [28, 28, 1], numClasses: 10, seed: 40 + i }), {
      sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: i, objective: m.objective, teacher: m.objective === undefined ? undefined : teacher,
    }));
    const attentionDistance = () => tf.tidy(() => {
      const x = tf.tensor(split.test.x, [split.test.y.length, 28, 28, 1]);
      const ours = featureView(students[0]!.model, 10).forward(x, false).features.conv2!;
      return attentionTransferLoss(ours, teacher.forward(x, false).features.conv2!).dataSync()[0]!;
    });
    const before = attentionDistance();

    const summaries = await Promise.all(members.map((_, i) => runParticipant({
      url: coordinator.url, session: config.id, token: tokens[i]!.token, student: students[i]!,
      data: { train: trainSets[i]!, reference: split.reference.x }, evaluation: split.test, epochs: 1, batchSize: 32,
    })));

    expect(session.history.map((r) => [r.round, r.contributors.length, Object.keys(r.reports).length])).toEqual([[1, 3, 3], [2, 3, 3]]);
    for (const s of summaries) {
      expect(s.endReason).toBe('completed 2 rounds');
      expect(s.rounds.map((r) => r.receivedTarget)).toEqual([true, true]);
      expect(s.rounds.every((r) => Number.isFinite(r.train.loss))).toBe(true);
      expect(s.rounds.at(-1)!.accuracy).toBeGreaterThan(0.2);
    }
    // The AT participant's attention maps moved towards the teacher's.
    expect(attentionDistance()).toBeLessThan(0.7 * before);
    for (const st of students) st.dispose();
    teacherStudent.dispose();
  });
});
