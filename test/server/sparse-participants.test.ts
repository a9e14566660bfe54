/**
 * Top-k both ways with real participants: a real coordinator on 127.0.0.1, three socket.io
 * participants training real tfjs students on MNIST shards; uploads go up as top-2 and targets
 * come down as top-1, both uint8, and every round closes with every participant learning from
 * a target — on fewer bytes than dense uint8 rows could take.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { subset } from '../../client/data/dataset.js';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { partition } from '../../client/data/partition.js';
import { createModel } from '../../client/models.js';
import { runParticipant } from '../../client/participant.js';
import { Student } from '../../client/student.js';
import { Coordinator } from '../../server/coordinator.js';
import type { SessionConfig } from '../../server/session-config.js';

const PARTICIPANTS = 3;
const ROWS = 200;

describe('top-k uploads and targets between real participants', () => {
  let coordinator: Coordinator;
  beforeAll(async () => {
    await selectBackend();
    coordinator = await Coordinator.start();
  });
  afterAll(async () => coordinator.close());

  it('closes every round with every participant, on fewer bytes up than dense uint8 rows', async () => {
    const split = splitDataset(loadMnist(), { test: 300, reference: ROWS }, 11);
    const shards = partition(split.pool.y, 10, PARTICIPANTS, { kind: 'dirichlet', alpha: 0.5 }, 11);
    const tokens = Array.from({ length: PARTICIPANTS }, (_, i) => ({ id: `s${i}`, token: `token-${i}-${Math.random()}` }));
    const config: SessionConfig = {
      id: 'e2e-top-k', algorithm: 'dml', rounds: 2, participants: tokens, minParticipants: PARTICIPANTS,
      numClasses: 10, referenceSize: ROWS, referencePerRound: ROWS, temperature: 3, alpha: 0.5,
      uploadDtype: 'uint8', targetDtype: 'uint8', uploadTopK: 2, targetTopK: 1,
      roundTimeoutMs: 60_000, trainTimeoutMs: 60_000, onRoundFailure: 'stop', seed: 11, maxMessageBytes: 1 << 20,
    };
    const session = coordinator.createSession(config);
    const ended = new Promise((resolve) => session.once('end', resolve));
    const students = tokens.map((_, i) => new Student(createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: 10, seed: 200 + i }), {
      sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: i,
    }));
    const summaries = await Promise.all(tokens.map(({ token }, i) => runParticipant({
      url: coordinator.url, session: config.id, token, student: students[i]!, epochs: 1, batchSize: 32,
      data: { train: subset(split.pool, shards.indices[i]!.slice(0, 300)), reference: split.reference.x },
      evaluation: split.test,
    })));
    await ended;
    for (const student of students) student.dispose();
    expect(session.history.map((r) => r.contributors.length)).toEqual([PARTICIPANTS, PARTICIPANTS]);
    for (const summary of summaries) expect(summary.rounds.map((r) => r.receivedTarget)).toEqual([true, true]);
    // Dense uint8 rows alone would be ROWS × 10 bytes per upload; top-2 sends ROWS × 2 × (1 + 1).
    for (const record of session.history) expect(record.bytesUp).toBeLessThan(PARTICIPANTS * ROWS * 10);
  });
});
