/**
 * The `codistill` command as a user runs it: the built CLI, worker threads, a real coordinator
 * on loopback, and the files a run leaves. Small sizes keep it quick.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ALGORITHM_NAMES } from '../../server/strategies/index.js';
import type { Manifest } from '../../simulations/outputs.js';
import type { RoundRow, SimulationResult } from '../../simulations/simulate.js';

const run = promisify(execFile);
// `npm test` builds first; the CLI runs from dist/ because worker threads load compiled files.
const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');
const SMALL = ['--test-size', '300', '--reference-size', '200', '--private-size', '1200'];

const tempDir = () => mkdtempSync(join(tmpdir(), 'codistill-'));
const rounds = (dir: string) => readFileSync(join(dir, 'rounds.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as RoundRow & { algorithm: string });

describe('codistill simulate', () => {
  it('runs the distilled and local-only runs, prints the table, and writes result, rounds, summary, config and manifest', async () => {
    const out = join(tempDir(), 'run');
    const { stdout } = await run('node', [
      CLI, 'simulate', '--participants', '3', '--rounds', '2', ...SMALL, '--reference-per-round', '100', '--upload-dtype', 'uint8', '--seed', '5', '--out', out,
    ], { timeout: 300_000 });
    expect(stdout).toMatch(/round\s+p0\s+p1\s+p2\s+mean\s+personal\s+ensemble\s+bytes up\s+bytes down/);
    expect(stdout).toMatch(/gain of dml over local-only: [+-]\d+\.\d points/);
    expect(stdout).toContain(`results written to ${join(out, 'result.json')}`);

    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as SimulationResult;
    expect(result.runs.map((r) => r.algorithm)).toEqual(['dml', 'local']);
    expect(result.data.sizes).toEqual({ test: 300, reference: 200, pool: 1200 });
    expect(result.data.labelMatrix.flat().reduce((a, b) => a + b, 0)).toBe(1200);
    const [dml, local] = result.runs;
    for (const r of [dml!, local!]) {
      expect(r.rows.map((row) => row.round)).toEqual([1, 2]);
      expect(r.rows.every((row) => row.contributors === 3 && row.accuracy.length === 3 && row.calibrationError.length === 3)).toBe(true);
      expect(r.rows.every((row) => row.meanAccuracy > 0.3 && row.ensembleAccuracy > 0.3 && row.consensusEntropy > 0)).toBe(true);
      expect(r.rows[0]!.churn).toBeNull();
      expect(r.rows[1]!.churn).toHaveLength(3);
    }
    // 100 reference rows × 10 classes × 1 byte per participant per round, plus envelope headers.
    expect(dml!.rows[0]!.bytesUp).toBeGreaterThan(3 * 1000);
    expect(dml!.rows[0]!.bytesUp).toBeLessThan(3 * 1000 + 3 * 1024);
    expect(dml!.rows[0]!.bytesDown).toBeGreaterThan(3 * 4000); // targets travel as float32
    expect(local!.rows[0]!.bytesUp).toBeLessThan(1024);
    expect(result.gainOverLocal).toBeCloseTo(100 * (dml!.final.meanAccuracy - local!.final.meanAccuracy), 6);

    expect(rounds(out).map((r) => [r.algorithm, r.round])).toEqual([['dml', 1], ['dml', 2], ['local', 1], ['local', 2]]);
    const csv = readFileSync(join(out, 'summary.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('algorithm,seed,participants,rounds,held_out_accuracy,personalized_accuracy,ensemble_accuracy,bytes_up,bytes_down,seconds,backend,hostile,epsilon_max,distiller_accuracy');
    expect(csv[1]).toMatch(/^dml,5,3,2,0\.\d+,.*,[\w-]+,,,$/); // nobody hostile, no privacy, no distiller
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as Manifest;
    expect(manifest.partitionHash).toBe(result.data.partitionHash);
    expect(manifest.seed).toBe(5);
    expect(manifest.packages['@tensorflow/tfjs']).toBe('4.22.0');
    expect(manifest.backends).toEqual([dml!.backend]);
    expect(manifest.config.uploadDtype).toBe('uint8');
  });

  it('is deterministic: the same config and seed on the same backend give the same numbers', async () => {
    const dir = tempDir();
    const config = join(dir, 'experiment.yaml');
    writeFileSync(config, 'algorithm: dml\nparticipants: 2\nrounds: 2\ntestSize: 300\nreferenceSize: 200\nprivateSize: 800\nbaseline: false\nseed: 9\n');
    for (const name of ['a', 'b']) await run('node', [CLI, 'simulate', '--config', config, '--out', join(dir, name)], { timeout: 300_000 });
    const strip = (rows: Array<RoundRow & { algorithm: string }>) => rows.map(({ seconds: _, ...rest }) => rest);
    const [a, b] = [rounds(join(dir, 'a')), rounds(join(dir, 'b'))];
    expect(a).toHaveLength(2);
    expect(strip(b)).toEqual(strip(a));
  });

  it('names a bad field, its rule or allowed values, and what was given — from flags or from a config', async () => {
    const fails = (args: string[]) => run('node', [CLI, 'simulate', ...args]).then(() => '', (e: { code: number; stderr: string }) => `${e.code} ${e.stderr}`);
    expect(await fails(['--model', 'resnet'])).toMatch(/^2 .*model: must be one of mlp \| mlp:H1\[,H2…\] \| cnn \(got "resnet"\)/s);
    expect(await fails(['--alpha', '2'])).toMatch(/alpha: must be in \[0, 1\] \(got 2\)/);
    expect(await fails(['--rounds', 'ten'])).toMatch(/rounds: must be a number \(got "ten"\)/);
    const config = join(tempDir(), 'bad.json');
    writeFileSync(config, JSON.stringify({ algorithm: 'fedprox', roudns: 3, partition: { kind: 'dirichlet', alpha: -1 } }));
    const message = await fails(['--config', config]);
    expect(message).toMatch(/invalid experiment config \(.*bad\.json with command-line overrides\)/);
    expect(message).toMatch(/unknown field "roudns"/);
    expect(message).toContain(`algorithm: must be one of ${[...ALGORITHM_NAMES, 'centralized'].join(', ')} (got "fedprox")`);
    expect(message).toMatch(/partition\.alpha: must be > 0 \(got -1\)/);
    expect(await fails(['--config', join(tempDir(), 'missing.yaml')])).toMatch(/cannot read config .*missing\.yaml: no such file/);
  });
});

describe('codistill sweep', () => {
  it('runs every point of a grid, resumes without repeating finished points, and tables the results', async () => {
    const dir = tempDir();
    const sweep = join(dir, 'sweep.yaml');
    writeFileSync(sweep, [
      'name: tiny',
      'base: { algorithm: dml, participants: 2, rounds: 1, testSize: 200, referenceSize: 100, privateSize: 400 }',
      'grid: { temperature: [1, 4] }',
      'parallel: 2',
    ].join('\n'));
    const first = await run('node', [CLI, 'sweep', sweep], { timeout: 300_000 });
    expect(first.stdout).toContain('sweep tiny: 2 points, 0 already done, 2 to run, 2 at a time');
    expect(first.stdout).toMatch(/\[2\/2\] done temperature=/);
    const table = readFileSync(join(dir, 'tiny', 'sweep.md'), 'utf8');
    // One seed per point: the value with "(n = 1)", no spread.
    expect(table).toMatch(/\| temperature=1 \| 1 \| \d+\.\d \(n = 1\) \|/);
    expect(table).toMatch(/\| temperature=4 \| 1 \| \d+\.\d \(n = 1\) \|/);
    const point = JSON.parse(readFileSync(join(dir, 'tiny', 'temperature=4', 'result.json'), 'utf8')) as SimulationResult;
    expect(point.runs[0]!.settings.temperature).toBe(4);
    const again = await run('node', [CLI, 'sweep', sweep], { timeout: 60_000 });
    expect(again.stdout).toContain('sweep tiny: 2 points, 2 already done, 0 to run');
  });
});
