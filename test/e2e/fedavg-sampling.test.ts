/**
 * FedAvg with half the participants sampled each round, end to end: a coordinator on 127.0.0.1,
 * four participants training real students (tfjs) on real MNIST shards over socket.io. FedAvg's
 * client fraction C (McMahan et al. 2017, Algorithm 1): each sampled participant starts the round
 * from the global model w_t — the last round's aggregate — bit for bit, whether it got w_t as its
 * last target or sat that round out (then w_t comes with the round's announcement).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { subset } from '../../client/data/dataset.js';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { partition } from '../../client/data/partition.js';
import { createModel } from '../../client/models.js';
import { runParticipant, type RoundResult } from '../../client/participant.js';
import { Student } from '../../client/student.js';
import { Coordinator } from '../../server/coordinator.js';
import { sampleParticipants } from '../../server/participant-sampling.js';
import { valuesDigest, type SessionConfig } from '../../server/session-config.js';
import type { Session } from '../../server/session.js';

const IDS = ['p0', 'p1', 'p2', 'p3'];
const ROUNDS = 4;
/**
 * Seed 4 samples p1,p2 | p1,p3 | p2,p3 | p0,p2: p1 goes on from its target in round 2; p2 sat
 * round 2 out and p3 round 1; p0 sits out rounds 1–3 and starts round 4 from the global model,
 * not from its initial one.
 */
const SEED = 4;
const split = splitDataset(loadMnist(), { test: 300, reference: 0 }, 5);
const shards = partition(split.pool.y, 10, IDS.length, { kind: 'dirichlet', alpha: 0.5 }, 5);

function sessionConfig(id: string): SessionConfig {
  return {
    id, algorithm: 'fedavg', rounds: ROUNDS, participants: IDS.map((p) => ({ id: p, token: `token-${p}-0123456789` })),
    minParticipants: 2, sampling: { fraction: 0.5 }, numClasses: 10, referenceSize: 0, referencePerRound: 0, temperature: 1, alpha: 1,
    uploadDtype: 'float32', roundTimeoutMs: 60_000, trainTimeoutMs: 60_000, onRoundFailure: 'stop', seed: SEED, maxMessageBytes: 8 << 20,
  };
}

/**
 * Runs the four participants to the session's end, each with a student of one initial model (as
 * FedAvg's w_0), and records the weights each trains from (FedAvg trains once a round, in share)
 * and holds after each round, as sha256 digests (server/session-config.ts valuesDigest).
 */
async function runInstrumented(url: string, session: string) {
  const students = IDS.map((_, i) => new Student(createModel({ name: 'mlp:32', inputShape: [28, 28, 1], numClasses: 10, seed: 40 }), {
    sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: i,
  }));
  const initial = valuesDigest(students[0]!.getWeights());
  const starts: string[][] = IDS.map(() => []);
  const held: string[][] = IDS.map(() => []);
  const results: RoundResult[][] = IDS.map(() => []);
  students.forEach((student, i) => {
    const train = student.train.bind(student);
    student.train = (...args) => {
      starts[i]!.push(valuesDigest(student.getWeights()));
      return train(...args);
    };
  });
  await Promise.all(IDS.map((id, i) => runParticipant({
    url, session, token: `token-${id}-0123456789`, student: students[i]!,
    data: { train: subset(split.pool, shards.indices[i]!.slice(0, 300)) }, evaluation: split.test, epochs: 1, batchSize: 32,
    onRound: (result) => {
      results[i]!.push(result);
      held[i]!.push(valuesDigest(students[i]!.getWeights()));
    },
  })));
  return { initial, starts, held, results };
}

describe('FedAvg with participant sampling, real participants', () => {
  let coordinator: Coordinator;
  beforeAll(async () => {
    await selectBackend();
    coordinator = await Coordinator.start({ maxMessageBytes: 8 << 20 });
  });
  afterAll(async () => coordinator.close());

  it('starts every sampled participant from the last global model, bit for bit, the ones that sat out included', { timeout: 180_000 }, async () => {
    const config = sessionConfig('fedavg-sampled');
    const session = coordinator.createSession(config);
    const { initial, starts, held, results } = await runInstrumented(coordinator.url, config.id);

    const samples = Array.from({ length: ROUNDS }, (_, r) => sampleParticipants(IDS, { fraction: 0.5 }, 2, SEED, r + 1));
    expect(samples).toEqual([['p1', 'p2'], ['p1', 'p3'], ['p2', 'p3'], ['p0', 'p2']]);
    expect(session.history.map((r) => r.sampled)).toEqual(samples);
    const globals = session.history.map((r) => r.ensembleDigest!);
    let fromAnnouncement = 0;
    IDS.forEach((id, i) => {
      const rounds = samples.flatMap((s, r) => (s.includes(id) ? [r + 1] : []));
      expect(results[i]!.map((r) => r.sampled !== false)).toEqual(samples.map((s) => s.includes(id)));
      expect(starts[i]).toHaveLength(rounds.length);
      rounds.forEach((round, k) => {
        // w_t: the initial model in round 1, the last round's aggregate after it.
        const expected = round === 1 ? initial : globals[round - 2]!;
        expect(starts[i]![k], `${id}'s starting weights in round ${round}`).toBe(expected);
        // Sat the round before out: what it held then was not w_t (the announcement brought it).
        if (round > 1 && !samples[round - 2]!.includes(id)) {
          expect(held[i]![round - 2]).not.toBe(expected);
          fromAnnouncement++;
        }
        // It ends its round holding the new global model (its target), as every sampled participant does.
        expect(held[i]![round - 1]).toBe(globals[round - 1]);
      });
    });
    // p3 (round 2), p2 (round 3), p0 (round 4): seeded, so always these three.
    expect(fromAnnouncement).toBe(3);
    // The ones sampled in a round hold the same model after it, so they report the same held-out accuracy.
    for (let r = 0; r < ROUNDS; r++) {
      const [first, second] = samples[r]!.map((id) => results[IDS.indexOf(id)]![r]!.accuracy);
      expect(second).toBe(first);
    }
    expect(results[2]![3]!.accuracy).toBeGreaterThan(0.3);
  });

  it('starts them from the same global model after the coordinator restarts on its journal between rounds 2 and 3', { timeout: 180_000 }, async () => {
    const journal = join(mkdtempSync(join(tmpdir(), 'codistill-fedavg-restart-')), 'journal.db');
    const first = await Coordinator.start({ journal });
    const config = sessionConfig('fedavg-restarted');
    const session = first.createSession(config);
    let second: Coordinator | undefined;
    let resumed: Session | undefined;
    // Held after round 2 (round 3 does not open), then the coordinator stops; a new one resumes the
    // session from its journal, held until all four are back so that round 3 samples among them all.
    session.on('round', (record) => {
      if (record.round !== 2) return;
      session.pause();
      setImmediate(async () => {
        await first.close();
        second = await Coordinator.start({ journal, port: Number(new URL(first.url).port) });
        const again = second.session(config.id)!;
        resumed = again;
        again.pause();
        const all = setInterval(() => {
          if (again.connected.length < IDS.length) return;
          clearInterval(all);
          again.resume();
        }, 20);
      });
    });
    try {
      const { initial, starts } = await runInstrumented(first.url, config.id);
      // The resumed session's history: rounds 1 and 2 from the journal, 3 and 4 run after the restart.
      const history = resumed?.history ?? [];
      expect(history.map((r) => r.sampled)).toEqual([['p1', 'p2'], ['p1', 'p3'], ['p2', 'p3'], ['p0', 'p2']]);
      const globals = history.map((r) => r.ensembleDigest!);
      IDS.forEach((id, i) => {
        const rounds = history.flatMap((r) => (r.sampled!.includes(id) ? [r.round] : []));
        // Round 3's w_t is round 2's aggregate, recomputed by the new coordinator from the journal.
        expect(starts[i], `${id}'s starting weights in rounds ${rounds.join(', ')}`).toEqual(rounds.map((round) => (round === 1 ? initial : globals[round - 2])));
      });
    } finally {
      await second?.close();
    }
  });
});
