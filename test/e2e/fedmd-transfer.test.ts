/**
 * FedMD's first step as the paper has it (Li & Wang 2019, Algorithm 1): before the collaboration
 * rounds each party trains on the labelled public set, then on its private data. Real
 * coordinator, real sockets, real students on MNIST; then the CLI's short fedmd run, which turns
 * the step on by default.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
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
import { writeCsv, writeIdxImages } from '../../simulations/demo-sites.js';
import type { SimulationResult } from '../../simulations/simulate.js';
import { startCli } from '../server/fault-kit.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');

describe('FedMD\'s transfer learning', () => {
  let coordinator: Coordinator;
  beforeAll(async () => {
    await selectBackend();
    coordinator = await Coordinator.start();
  });
  afterAll(async () => coordinator.close());

  it('trains each participant on the labelled reference set, then its private data, before round 1', { timeout: 120_000 }, async () => {
    const split = splitDataset(loadMnist(), { test: 500, reference: 500 }, 11);
    const shards = partition(split.pool.y, 10, 3, { kind: 'dirichlet', alpha: 0.3 }, 11);
    const tokens = ['p0', 'p1', 'p2'].map((id) => ({ id, token: `token-${id}-${Math.random()}` }));
    const config: SessionConfig = {
      id: 'fedmd-transfer', algorithm: 'fedmd', rounds: 1, participants: tokens, minParticipants: 3, numClasses: 10,
      referenceSize: 500, referencePerRound: 200, temperature: 1, alpha: 1, uploadDtype: 'float32', roundTimeoutMs: 60_000,
      trainTimeoutMs: 60_000, onRoundFailure: 'stop', seed: 11, maxMessageBytes: 1 << 20,
    };
    coordinator.createSession(config);
    const labelled = { x: split.reference.x, y: split.reference.y, sampleShape: [28, 28, 1], numClasses: 10 };
    const students = tokens.map((_, i) => new Student(createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: 10, seed: 30 + i }), {
      sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: i,
    }));
    // The same students untrained: chance on the reference labels.
    const before = await Promise.all(students.map(async (s) => (await s.evaluate(labelled)).accuracy));
    const trainSets = tokens.map((_, i) => subset(split.pool, shards.indices[i]!.slice(0, 300)));
    const summaries = await Promise.all(tokens.map(({ token }, i) => runParticipant({
      url: coordinator.url, session: config.id, token, student: students[i]!, epochs: 1, batchSize: 32, pretrainOnReference: 5,
      data: { train: trainSets[i]!, reference: split.reference.x, referenceLabels: split.reference.y },
      evaluation: split.test,
    })));
    for (const s of students) s.dispose();
    for (const [i, summary] of summaries.entries()) {
      expect(before[i]).toBeLessThan(0.3);
      const pretrain = summary.pretrain!;
      expect(pretrain.epochs).toBe(5);
      // Trained on the public labels: high accuracy on them, and 5 epochs over each set seen.
      expect(pretrain.referenceAccuracy).toBeGreaterThan(0.9);
      expect(pretrain.train.samples).toBe(5 * (500 + trainSets[i]!.y.length));
      // The private data comes after and pulls towards its own skewed labels; the public knowledge is not all lost.
      expect(pretrain.referenceAccuracyBeforeRound1).toBeGreaterThan(0.3);
      expect(summary.rounds.map((r) => r.round)).toEqual([1]);
      expect(summary.rounds[0]!.receivedTarget).toBe(true);
    }
  });

  it('refuses to start it without the reference labels, saying what is missing', { timeout: 60_000 }, async () => {
    const split = splitDataset(loadMnist(), { test: 0, reference: 100 }, 2);
    const token = `token-q-${Math.random()}`;
    coordinator.createSession({
      id: 'fedmd-unlabelled', algorithm: 'fedmd', rounds: 1, participants: [{ id: 'q', token }], minParticipants: 1, numClasses: 10,
      referenceSize: 100, referencePerRound: 100, temperature: 1, alpha: 1, uploadDtype: 'float32', roundTimeoutMs: 60_000,
      trainTimeoutMs: 60_000, onRoundFailure: 'stop', seed: 2, maxMessageBytes: 1 << 20,
    });
    const student = new Student(createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: 10, seed: 1 }), { sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: 1 });
    try {
      await expect(runParticipant({
        url: coordinator.url, session: 'fedmd-unlabelled', token, student, epochs: 1, batchSize: 32, pretrainOnReference: 2,
        data: { train: subset(split.pool, [0, 1, 2, 3]), reference: split.reference.x },
      })).rejects.toThrow(/transfer learning on the reference set \(pretrainOnReference\) needs its labels/);
    } finally {
      student.dispose();
    }
  });

  it('runs at a deployed site from a labelled reference CSV (codistill client --pretrain-on-reference), and an IDX reference without labels is refused', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-fedmd-client-'));
    const split = splitDataset(loadMnist(), { test: 0, reference: 300 }, 6);
    const rows = Array.from({ length: 300 }, (_, i) => i);
    writeCsv(join(dir, 'site.csv'), Float32Array.from(rows.flatMap((r) => Array.from(split.pool.x.subarray(r * 784, (r + 1) * 784)))), Int32Array.from(rows, (r) => split.pool.y[r]!));
    writeCsv(join(dir, 'reference.csv'), split.reference.x, split.reference.y);
    writeIdxImages(join(dir, 'reference-idx3-ubyte'), split.reference.x);
    const token = `token-site-${Math.random()}-0123456789`;
    coordinator.createSession({
      id: 'fedmd-site', algorithm: 'fedmd', rounds: 1, participants: [{ id: 'site', token }], minParticipants: 1, numClasses: 10,
      referenceSize: 300, referencePerRound: 100, temperature: 1, alpha: 1, uploadDtype: 'float32', roundTimeoutMs: 60_000,
      trainTimeoutMs: 60_000, onRoundFailure: 'stop', seed: 6, maxMessageBytes: 1 << 20,
    });
    const args = (reference: string) => ['client', '--server', coordinator.url, '--session', 'fedmd-site', '--data', join(dir, 'site.csv'), '--model', 'mlp',
      '--reference', join(dir, reference), '--pretrain-on-reference', '3', '--no-save', '--out', join(dir, 'log.json')];
    const refused = startCli(args('reference-idx3-ubyte'), { CODISTILL_TOKEN: token });
    expect(await refused.exited).not.toBe(0);
    expect(refused.output()).toMatch(/--pretrain-on-reference needs the reference set's labels: give the IDX labels file of .*reference-idx3-ubyte with --reference-labels FILE/);
    const site = startCli(args('reference.csv'), { CODISTILL_TOKEN: token });
    expect(await site.exited).toBe(0);
    const accuracy = /transfer learning: 3 epochs on the 300 labelled reference samples \(accuracy on them (\d+\.\d) %\), then 3 on 270 private samples/.exec(site.output());
    expect(accuracy, site.output()).not.toBeNull();
    expect(Number(accuracy![1])).toBeGreaterThan(80);
    expect(site.output()).toMatch(/session ended: completed 1 rounds/);

    // An IDX reference with its IDX labels file (magic 0x00000801, n, then one byte per label).
    const labels = Buffer.alloc(8 + 300);
    labels.writeUInt32BE(0x00000801, 0);
    labels.writeUInt32BE(300, 4);
    split.reference.y.forEach((y, i) => labels.writeUInt8(y, 8 + i));
    writeFileSync(join(dir, 'reference-idx1-ubyte'), labels);
    const idxToken = `token-idx-${Math.random()}-0123456789`;
    coordinator.createSession({
      id: 'fedmd-site-idx', algorithm: 'fedmd', rounds: 1, participants: [{ id: 'site', token: idxToken }], minParticipants: 1, numClasses: 10,
      referenceSize: 300, referencePerRound: 100, temperature: 1, alpha: 1, uploadDtype: 'float32', roundTimeoutMs: 60_000,
      trainTimeoutMs: 60_000, onRoundFailure: 'stop', seed: 6, maxMessageBytes: 1 << 20,
    });
    const idxArgs = args('reference-idx3-ubyte').map((a) => (a === 'fedmd-site' ? 'fedmd-site-idx' : a));
    const idxSite = startCli([...idxArgs, '--reference-labels', join(dir, 'reference-idx1-ubyte')], { CODISTILL_TOKEN: idxToken });
    expect(await idxSite.exited, idxSite.output()).toBe(0);
    expect(idxSite.output()).toMatch(/transfer learning: 3 epochs on the 300 labelled reference samples \(accuracy on them (8|9)\d\.\d %\)/);
  });

  it('is on by default in a short fedmd simulation, for the local-only baseline too, and the run completes', { timeout: 300_000 }, async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'codistill-fedmd-')), 'run');
    const { stdout } = await run('node', [CLI, 'simulate', '--algorithm', 'fedmd', '--participants', '3', '--rounds', '2', '--test-size', '300',
      '--reference-size', '300', '--reference-per-round', '200', '--private-size', '900', '--seed', '4', '--no-save', '--out', out], { timeout: 300_000 });
    expect(stdout.match(/transfer learning before round 1: 5 epochs on the labelled reference set \(300 samples\), then 5 on each private set/g)).toHaveLength(2);
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as SimulationResult;
    expect(result.runs.map((r) => [r.algorithm, r.settings.pretrainOnReference, r.rows.length])).toEqual([['fedmd', 5, 2], ['local', 5, 2]]);
    // Started from the public labels, the participants beat chance by far already in round 1.
    expect(result.runs[0]!.rows[0]!.meanAccuracy).toBeGreaterThan(0.5);
  });
});
