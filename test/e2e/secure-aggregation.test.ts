/**
 * Secure aggregation end to end: real participants (runParticipant) training real tfjs students
 * on real MNIST shards, through a real coordinator, once plain and once under secure aggregation
 * with the same seeds. Round 1's targets — what each student trains towards, read at its train
 * call — must be equal within the fixed-point step, for DML's leave-one-out means, the distiller's
 * ensemble and FD's per-class teachers; and the coordinator's journal must hold none of the
 * participants' uploads, as float32 or fixed point.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { subset, type LabeledDataset } from '../../client/data/dataset.js';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { partition } from '../../client/data/partition.js';
import { createModel } from '../../client/models.js';
import { runParticipant } from '../../client/participant.js';
import type { Share } from '../../client/procedures/index.js';
import { Student } from '../../client/student.js';
import { encodeKnowledge, LOGIT_SCALE, PROBABILITY_SCALE } from '../../protocol/secure/index.js';
import { Coordinator } from '../../server/coordinator.js';
import type { SessionConfig } from '../../server/session.js';

const PARTICIPANTS = 3;
const REFERENCE = 100;
const split = splitDataset(loadMnist(), { test: 100, reference: REFERENCE }, 9);
const shards = partition(split.pool.y, 10, PARTICIPANTS, { kind: 'dirichlet', alpha: 0.5 }, 9);
const trainSets = shards.indices.map((indices) => subset(split.pool, indices.slice(0, 200)));
const nothing: LabeledDataset = subset(split.pool, []);

interface Run {
  /** Per participant (the distiller last): the soft targets its student trained towards, per round. */
  probs: Float32Array[][];
  /** Per participant: what it uploaded (after any hook), per round. */
  uploads: Share[][];
  journal: Buffer;
}

async function run(algorithm: 'dml' | 'fd', secure: boolean, withDistiller: boolean, privacy?: { clip: number; noiseMultiplier: number; delta: number }): Promise<Run> {
  const file = join(mkdtempSync(join(tmpdir(), 'codistill-secure-e2e-')), 'journal.db');
  const coordinator = await Coordinator.start({ journal: file });
  const ids = Array.from({ length: PARTICIPANTS }, (_, i) => `p${i}`);
  const entries: Array<{ id: string; token: string; role?: 'distiller' }> = [
    ...ids.map((id) => ({ id, token: `${algorithm}-${secure}-${id}-token` })),
    ...(withDistiller ? [{ id: 'distiller', token: `${algorithm}-${secure}-d-token`, role: 'distiller' as const }] : []),
  ];
  const config: SessionConfig = {
    id: `${algorithm}-${secure ? 'secure' : 'plain'}`, algorithm, rounds: 1, participants: entries,
    minParticipants: PARTICIPANTS, numClasses: 10, referenceSize: algorithm === 'fd' ? 0 : REFERENCE, referencePerRound: REFERENCE,
    temperature: algorithm === 'fd' ? 1 : 3, alpha: 0.5, uploadDtype: 'float32', roundTimeoutMs: 60_000, trainTimeoutMs: 60_000,
    onRoundFailure: 'stop', seed: 9, maxMessageBytes: 1 << 20, ...(secure ? { secureAggregation: { threshold: 2 } } : {}),
  };
  coordinator.createSession(config);
  const members = entries.length;
  const probs: Float32Array[][] = Array.from({ length: members }, () => []);
  const uploads: Share[][] = Array.from({ length: members }, () => []);
  try {
    await Promise.all(entries.map(async ({ token, role }, i) => {
      const student = new Student(createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: 10, seed: 40 + i }), { sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: i });
      const train = student.train.bind(student);
      student.train = (sources, options) => {
        if (sources.soft !== undefined) probs[i]!.push(sources.soft.probs.slice());
        return train(sources, options);
      };
      try {
        await runParticipant({
          url: coordinator.url, session: config.id, token, student, epochs: 1, batchSize: 32, role,
          data: { train: role === 'distiller' ? nothing : trainSets[i]!, reference: split.reference.x },
          // Differential privacy seeded per participant, so that the plain and the secure run add the same noise.
          ...(privacy === undefined ? { uploadHook: { transform: (share: Share) => (uploads[i]!.push(share), share) } } : { privacy: { ...privacy, seed: 100 + i } }),
        });
      } finally {
        student.dispose();
      }
    }));
  } finally {
    await coordinator.close();
  }
  return { probs, uploads, journal: Buffer.concat([file, `${file}-wal`].filter(existsSync).map((f) => readFileSync(f))) };
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

describe('secure aggregation with real participants', () => {
  beforeAll(async () => {
    await selectBackend();
  });

  it('DML and the distiller train on the plain run\'s targets within the step; the journal holds no participant\'s upload', async () => {
    const plain = await run('dml', false, true);
    const secure = await run('dml', true, true);
    for (let i = 0; i <= PARTICIPANTS; i++) {
      expect(secure.probs[i]).toHaveLength(1);
      expect(plain.probs[i]).toHaveLength(1);
      // Leave-one-out of two peers and the distiller's mean: each within 2^−24 (plus float32 rounding).
      const difference = maxDifference(secure.probs[i]![0]!, plain.probs[i]![0]!);
      expect(difference).toBeLessThanOrEqual(1 / PROBABILITY_SCALE);
      expect(difference).toBeGreaterThan(0); // fixed point did round: the targets came through the sum
    }
    // The same uploads both ways (same seeds), so the plain journal holds them and the secure one must not.
    for (let i = 0; i < PARTICIPANTS; i++) {
      const share = secure.uploads[i]![0]!;
      expect(share.values).toEqual(plain.uploads[i]![0]!.values);
      const floats = Buffer.from(share.values.buffer, share.values.byteOffset, 40);
      const fixed = Buffer.from(encodeKnowledge('reference-predictions', share.values, 10).buffer, 0, 40);
      expect(plain.journal.indexOf(floats)).toBeGreaterThanOrEqual(0);
      expect(secure.journal.indexOf(floats)).toBe(-1);
      expect(secure.journal.indexOf(fixed)).toBe(-1);
    }
  });

  it('differential privacy applies before the masking: secure and plain runs with the same noise train on the same targets', async () => {
    const privacy = { clip: 1, noiseMultiplier: 0.5, delta: 1e-5 };
    const plain = await run('dml', false, false, privacy);
    const secure = await run('dml', true, false, privacy);
    const noiseless = await run('dml', true, false);
    for (let i = 0; i < PARTICIPANTS; i++) {
      expect(maxDifference(secure.probs[i]![0]!, plain.probs[i]![0]!)).toBeLessThanOrEqual(1 / PROBABILITY_SCALE);
      expect(maxDifference(secure.probs[i]![0]!, noiseless.probs[i]![0]!)).toBeGreaterThan(0.01); // the noise is there
    }
  });

  it('FD trains on the plain run\'s per-class teachers within the logit step', async () => {
    const plain = await run('fd', false, false);
    const secure = await run('fd', true, false);
    for (let i = 0; i < PARTICIPANTS; i++) {
      expect(secure.probs[i]).toHaveLength(1);
      // softmax(t/T) at T = 1 moves by at most the logits' change: 2^−16.
      expect(maxDifference(secure.probs[i]![0]!, plain.probs[i]![0]!)).toBeLessThanOrEqual(1 / LOGIT_SCALE);
      const share = secure.uploads[i]![0]!;
      expect(secure.journal.indexOf(Buffer.from(share.values.buffer, share.values.byteOffset, 40))).toBe(-1);
    }
  });
});
