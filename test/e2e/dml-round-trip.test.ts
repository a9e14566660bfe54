/**
 * End to end: a real coordinator on 127.0.0.1, three real socket.io participants training
 * real tfjs students on real MNIST shards, exchanging msgpack envelopes.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { subset } from '../../client/data/dataset.js';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { partition } from '../../client/data/partition.js';
import { createModel } from '../../client/models.js';
import { runParticipant, type ParticipantSummary } from '../../client/participant.js';
import { Student } from '../../client/student.js';
import { Coordinator } from '../../server/coordinator.js';
import type { SessionConfig } from '../../server/session.js';

const ROUNDS = 3;
const PARTICIPANTS = 3;

describe('three participants over real sockets', () => {
  let coordinator: Coordinator;
  beforeAll(async () => {
    await selectBackend();
    coordinator = await Coordinator.start();
  });
  afterAll(async () => coordinator.close());

  it('every participant receives a target every round, and tensors do not accumulate', async () => {
    const split = splitDataset(loadMnist(), { test: 500, reference: 300 }, 7);
    const shards = partition(split.pool.y, 10, PARTICIPANTS, { kind: 'dirichlet', alpha: 0.5 }, 7);
    const tokens = Array.from({ length: PARTICIPANTS }, (_, i) => ({ id: `p${i}`, token: `token-${i}-${Math.random()}` }));
    const config: SessionConfig = {
      id: 'e2e-dml', algorithm: 'dml', rounds: ROUNDS, participants: tokens, minParticipants: PARTICIPANTS,
      numClasses: 10, referenceSize: 300, referencePerRound: 200, temperature: 3, alpha: 0.5, uploadDtype: 'float16',
      roundTimeoutMs: 60_000, trainTimeoutMs: 60_000, onRoundFailure: 'stop', seed: 7, maxMessageBytes: 1 << 20,
    };
    const session = coordinator.createSession(config);
    const ended = new Promise((resolve) => session.once('end', resolve));

    const students = tokens.map((_, i) => new Student(createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: 10, seed: 100 + i }), {
      sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: i,
    }));
    const summaries: ParticipantSummary[] = await Promise.all(
      tokens.map(({ token }, i) => runParticipant({
        url: coordinator.url, session: config.id, token, student: students[i]!, epochs: 1, batchSize: 32,
        // 400 private samples each keep the test quick; the shards stay label-skewed.
        data: { train: subset(split.pool, shards.indices[i]!.slice(0, 400)), reference: split.reference.x },
        evaluation: split.test,
      })),
    );
    await ended;
    const liveWithStudents = tf.memory().numTensors;
    for (const student of students) student.dispose();

    expect(session.history.map((r) => r.round)).toEqual([1, 2, 3]);
    for (const record of session.history) {
      expect(record.contributors.sort()).toEqual(['p0', 'p1', 'p2']);
      expect(Object.keys(record.reports).sort()).toEqual(['p0', 'p1', 'p2']);
      expect(record.referenceCount).toBe(200);
      expect(record.bytesUp).toBeGreaterThan(0);
      expect(record.bytesDown).toBeGreaterThan(0);
    }
    for (const summary of summaries) {
      expect(summary.endReason).toBe(`completed ${ROUNDS} rounds`);
      expect(summary.rounds.map((r) => r.round)).toEqual([1, 2, 3]);
      expect(summary.rounds.every((r) => r.receivedTarget)).toBe(true);
      for (const r of summary.rounds) expect(r.accuracy).toBeGreaterThan(0.1);
    }
    // The three students share this process's tfjs, and every optimizer has made its slots in
    // round 1: from then on the live tensor count must hold still, and drop once they are disposed.
    const counts = summaries.flatMap((s) => s.rounds.map((r) => r.numTensors));
    expect(new Set([...counts, liveWithStudents])).toEqual(new Set([liveWithStudents]));
    expect(tf.memory().numTensors).toBeLessThan(liveWithStudents);
  });

  it('tells a participant that was away when the session ended, once it reconnects, that its session is over', async () => {
    const split = splitDataset(loadMnist(), { test: 200, reference: 100 }, 3);
    const tokens = ['q0', 'q1'].map((id) => ({ id, token: `token-${id}-${Math.random()}` }));
    const session = coordinator.createSession({
      id: 'e2e-away', algorithm: 'dml', rounds: 2, participants: tokens, minParticipants: 1, numClasses: 10, referenceSize: 100,
      referencePerRound: 100, temperature: 3, alpha: 0.5, uploadDtype: 'float32', roundTimeoutMs: 60_000, trainTimeoutMs: 60_000,
      onRoundFailure: 'stop', seed: 3, maxMessageBytes: 1 << 20,
    });
    // As the last round completes, q1's link drops (the transport, not a goodbye): the end goes out while it is away.
    session.on('round', (record) => {
      if (record.round !== 2) return;
      const io = (coordinator as unknown as { io: { of(n: string): { sockets: Map<string, { data: { identity: { participant: string } }; conn: { close(): void } }> } } }).io;
      for (const socket of io.of('/').sockets.values()) if (socket.data.identity.participant === 'q1') socket.conn.close();
    });
    const logs: string[] = [];
    const summaries = await Promise.all(tokens.map(({ token }, i) => {
      const student = new Student(createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: 10, seed: 50 + i }), { sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: i });
      return runParticipant({
        url: coordinator.url, session: 'e2e-away', token, student, epochs: 1, batchSize: 32, reconnect: { delayMs: 50 },
        data: { train: subset(split.pool, Array.from({ length: 200 }, (_, k) => 200 * i + k)), reference: split.reference.x },
        log: (line) => i === 1 && logs.push(line),
      }).finally(() => student.dispose());
    }));
    for (const summary of summaries) {
      expect(summary.endReason).toBe('completed 2 rounds');
      expect(summary.rounds.map((r) => r.round)).toEqual([1, 2]);
    }
    expect(logs).toContainEqual(expect.stringMatching(/^disconnected \(transport close\); reconnecting$/));
    expect(logs).toContainEqual('the session ended while this participant was away: session e2e-away has ended: completed 2 rounds');
  });
});
