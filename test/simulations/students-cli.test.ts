/**
 * The student as the product, through the built CLI: a simulation saves each participant's
 * student; `codistill predict` on one reproduces that participant's held-out accuracy exactly
 * (same backend); `evaluate` and `export` work on it; data that does not fit is refused with one
 * message naming both sides. Small sizes keep it quick.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ModelCard } from '../../client/student-io/index.js';
import { prepareData, type SimulationOptions, type SimulationResult } from '../../simulations/simulate.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');
const codistill = (args: string[]) => run('node', [CLI, ...args], { timeout: 240_000 });
const failure = (args: string[]) => codistill(args).then(() => { throw new Error('expected a failure'); }, (e: { code: number; stderr: string }) => e);

function writeCsv(path: string, x: Float32Array, y: Int32Array | undefined, width: number): void {
  const header = [...(y === undefined ? [] : ['label']), ...Array.from({ length: width }, (_, i) => `p${i}`)].join(',');
  const n = x.length / width;
  // String(v) of a float32 value parses back to the same float32: the features stay bit for bit.
  const rows = Array.from({ length: n }, (_, i) => [...(y === undefined ? [] : [y[i]]), ...Array.from(x.subarray(i * width, (i + 1) * width), String)].join(','));
  writeFileSync(path, `${header}\n${rows.join('\n')}\n`);
}

describe('saved students through the CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'codistill-students-'));
  const out = join(dir, 'run');
  const testCsv = join(dir, 'test.csv');
  let result: SimulationResult;
  let stdout: string;

  beforeAll(async () => {
    ({ stdout } = await codistill(['simulate', '--participants', '2', '--rounds', '2', '--test-size', '300', '--reference-size', '200', '--private-size', '800',
      '--no-baseline', '--backend', 'wasm', '--seed', '5', '--out', out]));
    result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as SimulationResult;
    const options = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as SimulationOptions;
    const { test } = prepareData(options, { line: () => {} });
    writeCsv(testCsv, test.x, test.y, 784);
  }, 300_000);

  it('a simulation saves every participant\'s student with its card, and says where', () => {
    expect(stdout).toContain(`students saved to ${join(out, 'students')}/ (p0, p1)`);
    const last = result.runs[0]!.rows.at(-1)!;
    for (const [i, p] of ['p0', 'p1'].entries()) {
      const card = JSON.parse(readFileSync(join(out, 'students', p, 'card.json'), 'utf8')) as ModelCard;
      expect(card.training).toMatchObject({ participant: p, algorithm: 'dml', rounds: 2, session: 'sim-dml-5' });
      expect(card.metrics.heldOut).toEqual({ accuracy: last.accuracy[i], samples: 300 });
      expect(card.provenance.backend).toBe('wasm');
      expect(card.input.preprocessing.u8Divisor).toBe(255);
    }
  });

  it('predict reproduces each participant\'s held-out accuracy exactly, and writes class and probabilities per row', async () => {
    const last = result.runs[0]!.rows.at(-1)!;
    for (const [i, p] of ['p0', 'p1'].entries()) {
      const preds = join(dir, `preds-${p}.csv`);
      const { stdout: said } = await codistill(['predict', '--model', join(out, 'students', p), '--data', testCsv, '--out', preds, '--backend', 'wasm']);
      const correct = Math.round(last.accuracy[i]! * 300);
      expect(said).toContain(`accuracy ${(100 * last.accuracy[i]!).toFixed(2)}% (${correct}/300)`);
      expect(said).toMatch(/confusion matrix \(rows: true class, columns: predicted\):\ntrue\\pred +0 +1/);
      const lines = readFileSync(preds, 'utf8').trim().split('\n');
      expect(lines[0]).toBe(`row,class,${Array.from({ length: 10 }, (_, k) => `p_${k}`).join(',')},label`);
      expect(lines).toHaveLength(301);
      const agree = lines.slice(1).filter((l) => { const f = l.split(','); return f[1] === f.at(-1); }).length;
      expect(agree).toBe(correct);
    }
  });

  it('predict reads an IDX folder (u8 pixels ÷ 255, as the card says) and unlabelled CSV rows', async () => {
    const options = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as SimulationOptions;
    const { test } = prepareData(options, { line: () => {} });
    const idx = join(dir, 'idx');
    mkdirSync(idx);
    const images = Buffer.alloc(16 + test.x.length);
    [0x803, 300, 28, 28].forEach((v, k) => images.writeUInt32BE(v, 4 * k));
    test.x.forEach((v, i) => (images[16 + i] = Math.round(v * 255)));
    const labels = Buffer.alloc(8 + 300);
    [0x801, 300].forEach((v, k) => labels.writeUInt32BE(v, 4 * k));
    test.y.forEach((v, i) => (labels[8 + i] = v));
    writeFileSync(join(idx, 't10k-images-idx3-ubyte'), images);
    writeFileSync(join(idx, 't10k-labels-idx1-ubyte'), labels);
    const { stdout: said } = await codistill(['predict', '--model', join(out, 'students', 'p0'), '--data', idx, '--out', join(dir, 'idx.csv'), '--backend', 'wasm']);
    expect(said).toContain(`data: IDX ${join(idx, 't10k-images-idx3-ubyte')} (300 samples)`);
    // The embedded digits are not all exact multiples of 1/255: a row or two may differ.
    const correct = Number(/accuracy \d+\.\d\d% \((\d+)\/300\)/.exec(said)![1]);
    expect(Math.abs(correct - Math.round(result.runs[0]!.rows.at(-1)!.accuracy[0]! * 300))).toBeLessThanOrEqual(3);

    const unlabelled = join(dir, 'unlabelled.csv');
    writeCsv(unlabelled, test.x.subarray(0, 5 * 784), undefined, 784);
    const { stdout: rows } = await codistill(['predict', '--model', join(out, 'students', 'p0'), '--data', unlabelled, '--out', join(dir, 'u.csv'), '--backend', 'wasm']);
    expect(rows).toContain('(5 rows, no label column)');
    expect(rows).not.toContain('accuracy');
    const lines = readFileSync(join(dir, 'u.csv'), 'utf8').trim().split('\n');
    expect(lines[0]).toBe(`row,class,${Array.from({ length: 10 }, (_, k) => `p_${k}`).join(',')}`);
    const fromLabelled = readFileSync(join(dir, 'preds-p0.csv'), 'utf8').trim().split('\n').slice(1, 6).map((l) => l.split(',').slice(0, -1).join(','));
    expect(lines.slice(1)).toEqual(fromLabelled);
  });

  it('evaluate prints and writes accuracy, ECE and per-class accuracy', async () => {
    const metrics = join(dir, 'metrics.json');
    const { stdout: said } = await codistill(['evaluate', '--model', join(out, 'students', 'p0'), '--data', testCsv, '--out', metrics, '--backend', 'wasm']);
    expect(said).toMatch(/accuracy \d+\.\d\d% \(\d+\/300\), ECE \(15 bins\) 0\.\d{4}\nper-class accuracy: 0 \d+\.\d%, 1 /);
    const report = JSON.parse(readFileSync(metrics, 'utf8')) as { accuracy: number; ece: number; perClassAccuracy: number[]; samples: number };
    expect(report.accuracy).toBe(result.runs[0]!.rows.at(-1)!.accuracy[0]);
    expect(report.samples).toBe(300);
    expect(report.perClassAccuracy).toHaveLength(10);
    expect(report.ece).toBeGreaterThan(0);
  });

  it('export quantises a saved student, reporting size and accuracy change; predict runs the copy', async () => {
    const q = join(dir, 'p0-uint8');
    const { stdout: said } = await codistill(['export', '--model', join(out, 'students', 'p0'), '--quantize', 'uint8', '--out', q, '--data', testCsv, '--backend', 'wasm']);
    expect(said).toContain(`uint8 student written to ${q}: weights 235,146 bytes, 25.0% of the float32 940,584`);
    expect(said).toMatch(/accuracy on .*test\.csv \(wasm\): float32 \d+\.\d\d%, uint8 \d+\.\d\d% \([+-]\d+\.\d\d points\)/);
    const { stdout: predicted } = await codistill(['predict', '--model', q, '--data', testCsv, '--out', join(dir, 'q.csv'), '--backend', 'wasm']);
    expect(predicted).toMatch(/weights uint8/);
  });

  it('refuses data that does not fit the student with one message naming both', async () => {
    const test = readFileSync(testCsv, 'utf8').trim().split('\n');
    const narrow = join(dir, 'narrow.csv');
    writeFileSync(narrow, `${test.map((l) => l.split(',').slice(0, -1).join(',')).join('\n')}\n`);
    const shape = await failure(['predict', '--model', join(out, 'students', 'p0'), '--data', narrow]);
    expect(shape.stderr).toMatch(new RegExp(`E_SHAPE: --data ${narrow} holds samples of shape \\[783\\] \\(783 values\\); the model at .*students/p0 takes \\[28, 28, 1\\] \\(784 values\\)`));
    const eleven = join(dir, 'eleven.csv');
    writeFileSync(eleven, `${[test[0], `10${test[1]!.slice(test[1]!.indexOf(','))}`, ...test.slice(2)].join('\n')}\n`);
    const classes = await failure(['evaluate', '--model', join(out, 'students', 'p0'), '--data', eleven]);
    expect(classes.stderr).toMatch(/E_SHAPE: --data .*eleven\.csv has labels up to 10 \(11 classes\); the model at .*students\/p0 classifies 10 classes \(0–9\)/);
    expect(classes.code).toBe(2);
  });

  it('refuses, before any training, a run whose students cannot be written', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    const started = Date.now();
    const refused = await failure(['simulate', '--participants', '2', '--rounds', '1', '--out', join(file, 'run')]);
    expect(refused.stderr).toMatch(/codistill simulate: E_SAVE: cannot write the student to .*a-file\/run\/students/);
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});
