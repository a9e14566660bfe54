/**
 * `codistill distill` keeps its distilled student (simulations/distill-student.ts): the saved
 * model, read back with plain tfjs, makes exactly the test errors the run reported for the
 * student — not the teacher's or the labels-only baseline's.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { distillData, type DistillReport } from '../../client/distill/index.js';
import type { ModelCard } from '../../client/student-io/index.js';
import { runDistillCommand } from '../../simulations/distill.js';

async function testErrors(dir: string, options: { trainSize: number; testSize: number; seed: number }): Promise<number> {
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as tf.io.ModelJSON;
  const model = await tf.loadLayersModel(tf.io.fromMemory({
    modelTopology: json.modelTopology,
    weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
    weightData: new Uint8Array(Buffer.concat(json.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(join(dir, p)))))).buffer,
  }));
  const { test } = distillData(options);
  const errors = tf.tidy(() => tf.notEqual((model.predict(tf.tensor(test.x, [test.y.length, 28, 28, 1])) as tf.Tensor2D).argMax(1), tf.tensor1d(test.y, 'int32')).sum().dataSync()[0]!);
  model.dispose();
  return errors;
}

describe('codistill distill saves its student', () => {
  afterEach(() => vi.restoreAllMocks());

  for (const method of ['kd', 'ban'] as const) {
    it(`${method}: the saved student is the reported one`, async () => {
      const stdout: string[] = [];
      vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (stdout.push(String(chunk)), true));
      const dir = mkdtempSync(join(tmpdir(), 'codistill-distill-save-'));
      const sizes = { trainSize: 500, testSize: 200, seed: 2 };
      const args = method === 'kd'
        ? ['--method', 'kd', '--teacher', 'd32', '--student', 'd16', '--teacher-epochs', '2', '--epochs', '1']
        : ['--method', 'ban', '--student', 'd16', '--generations', '2', '--epochs', '1'];
      expect(await runDistillCommand([...args, '--train-size', '500', '--test-size', '200', '--seed', '2', '--backend', 'wasm', '--out', join(dir, 'run.json'), '--quantize', 'float16'])).toBe(0);
      expect(stdout.join('')).toContain(`student saved to ${join(dir, 'run-student')} (float16 weights`);
      const report = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as DistillReport;
      const card = JSON.parse(readFileSync(join(dir, 'run-student', 'card.json'), 'utf8')) as ModelCard;
      expect(card.training.algorithm).toBe(`distill ${method}`);
      expect(card.metrics.heldOut).toEqual({ accuracy: report.student.accuracy, samples: 200 });
      expect(card.model.architecture).toBe('d16');
      // float16 weights move a logit by far less than the gaps between them on almost every row.
      expect(Math.abs((await testErrors(join(dir, 'run-student'), sizes)) - report.student.errors)).toBeLessThanOrEqual(1);
      expect(await runDistillCommand([...args, '--train-size', '500', '--test-size', '200', '--seed', '2', '--backend', 'wasm', '--out', join(dir, 'again.json')])).toBe(0);
      expect(await testErrors(join(dir, 'again-student'), sizes)).toBe(report.student.errors);
    });
  }
});
