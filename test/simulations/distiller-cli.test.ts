/**
 * `codistill simulate --distiller`: one more member beside the participants, learning one global
 * student from their ensemble — its own column, its own fields, its own saved student; and refused
 * up front, with the reason, by algorithms that have no ensemble on a reference set.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { validateExperiment } from '../../simulations/config.js';
import { DEFAULT_OPTIONS, distillerModel, distillerRefusal, type RoundRow, type SimulationResult } from '../../simulations/simulate.js';

const run = promisify(execFile);
// The CLI runs from dist/ because worker threads load compiled files.
const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');
const SMALL = ['--participants', '3', '--rounds', '2', '--test-size', '300', '--reference-size', '200', '--private-size', '1200'];

describe('codistill simulate --distiller', () => {
  it('prints a distiller column and final accuracy, and stores them in result.json, rounds.jsonl and summary.csv', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'codistill-')), 'run');
    const { stdout } = await run('node', [CLI, 'simulate', ...SMALL, '--distiller', '--no-baseline', '--seed', '3', '--out', out], { timeout: 300_000 });
    expect(stdout).toContain('3 participants and a distiller (mlp)');
    expect(stdout).toMatch(/round\s+p0\s+p1\s+p2\s+mean\s+personal\s+ensemble\s+distiller\s+bytes up/);
    expect(stdout).toMatch(/dml\s+mean\s+\d+\.\d%\s+personalised\s+\d+\.\d%\s+ensemble\s+\d+\.\d%\s+distiller\s+\d+\.\d%/);

    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as SimulationResult;
    expect(result.runs.map((r) => r.algorithm)).toEqual(['dml']);
    const [dml] = result.runs;
    expect(dml!.participants).toBe(3);
    expect(dml!.distiller).toEqual({ model: 'mlp' });
    for (const row of dml!.rows) {
      // The distiller is none of the participants' columns, and uploads nothing.
      expect(row.accuracy).toHaveLength(3);
      expect(row.contributors).toBe(3);
      expect(row.distillerAccuracy).toBeGreaterThanOrEqual(0);
      expect(row.distillerAccuracy).toBeLessThanOrEqual(1);
      // The coordinator counts its target: four [200, 10] float32 targets go down each round.
      expect(row.bytesDown).toBeGreaterThan(4 * 200 * 10 * 4);
    }
    expect(dml!.final.distillerAccuracy).toBe(dml!.rows.at(-1)!.distillerAccuracy);

    const rows = readFileSync(join(out, 'rounds.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as RoundRow);
    expect(rows.map((r) => typeof r.distillerAccuracy)).toEqual(['number', 'number']);
    const csv = readFileSync(join(out, 'summary.csv'), 'utf8').trim().split('\n');
    expect(csv[0]!.split(',').at(-1)).toBe('distiller_accuracy');
    expect(Number(csv[1]!.split(',').at(-1))).toBe(dml!.final.distillerAccuracy);

    // Its student is saved beside the participants', with a card that says what it learnt from.
    const card = JSON.parse(readFileSync(join(out, 'students', 'distiller', 'card.json'), 'utf8')) as { training: { role: string; trainSamples: number; data: { source: string } } };
    expect(card.training.role).toMatch(/^distiller/);
    expect(card.training.trainSamples).toBe(0);
    expect(card.training.data.source).toMatch(/ensemble on the reference set/);
    expect(existsSync(join(out, 'students', 'p2', 'model.json'))).toBe(true);
  });

  it('is refused up front, naming why, where the algorithm has no ensemble on a reference set', async () => {
    const fails = (args: string[]) => run('node', [CLI, 'simulate', ...args]).then(() => '', (e: { code: number; stderr: string }) => `${e.code} ${e.stderr}`);
    expect(await fails(['--algorithm', 'fedavg', '--distiller'])).toMatch(/^2 .*distiller: fedavg cannot take a distiller: it averages weights, which already makes one global model/s);
    expect(await fails(['--algorithm', 'dml', '--distiller', 'resnet'])).toMatch(/distiller\.model: must be one of mlp \| mlp:H1\[,H2…\] \| cnn \(got "resnet"\)/);
  });

  it('validates distiller in configs: true, false or { model }, and only for dml, fedmd and dsfl', () => {
    const config = (fields: object) => ({ ...DEFAULT_OPTIONS, out: 'x', ...fields });
    expect(validateExperiment(config({ distiller: true }), 'test').distiller).toEqual({});
    expect(distillerModel(validateExperiment(config({ distiller: true, model: 'cnn' }), 'test'))).toBe('cnn');
    expect(distillerModel(validateExperiment(config({ distiller: { model: 'cnn' } }), 'test'))).toBe('cnn');
    expect(distillerModel(validateExperiment(config({ distiller: {} }), 'test'))).toBe('mlp');
    expect(distillerModel(validateExperiment(config({ distiller: false }), 'test'))).toBeUndefined();
    expect(() => validateExperiment(config({ distiller: 'yes' }), 'test')).toThrow(/distiller: must be true, false or \{ model: NAME \}/);
    expect(() => validateExperiment(config({ distiller: { model: 'mlp', epochs: 3 } }), 'test')).toThrow(/unknown field "epochs"/);
    for (const algorithm of ['dml', 'fedmd', 'dsfl']) expect(distillerRefusal(algorithm)).toBeUndefined();
    for (const [algorithm, why] of [
      ['fd', 'it exchanges class-logits, not predictions on a shared reference set'],
      ['local', 'it exchanges nothing'],
      ['codistillation', 'it runs asynchronously, so there is no round ensemble to send'],
      ['centralized', 'it pools every shard into one participant'],
    ] as const) {
      expect(() => validateExperiment(config({ algorithm, distiller: true }), 'test')).toThrow(`distiller: ${algorithm} cannot take a distiller: ${why}`);
    }
  });
});
