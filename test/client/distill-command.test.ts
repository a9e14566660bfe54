/**
 * `codistill distill` (simulations/distill.ts), in process: argument parsing, a tiny run that
 * writes its results JSON, and an experiment config that writes results and RESULTS.md beside it.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { DistillReport } from '../../client/distill/index.js';
import { parseDistillArgs, runDistillCommand, type DistillExperimentResult } from '../../simulations/distill.js';

function capture() {
  const stdout: string[] = [];
  const stderr: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (stdout.push(String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (stderr.push(String(chunk)), true));
  return { stdout: () => stdout.join(''), stderr: () => stderr.join('') };
}

describe('codistill distill', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('fills the method defaults and applies each flag', () => {
    const parsed = parseDistillArgs(['--method', 'at', '--student', 'c2,p2,c4,p2,d8', '--pairs', 'conv2:conv2', '--beta', '500', '--epochs', '3', '--no-baseline', '--seed', '4']);
    expect('options' in parsed && parsed.options).toMatchObject({
      method: 'at', teacher: 'cnn', student: 'c2,p2,c4,p2,d8', pairs: [{ student: 'conv2', teacher: 'conv2' }], beta: 500, epochs: 3, baseline: false, seed: 4, trainSize: 8000, testSize: 2000,
    });
    const ban = parseDistillArgs(['--method', 'ban']);
    expect('options' in ban && ban.options).toMatchObject({ temperature: 1, alpha: 0, generations: 3 });
    const loss = parseDistillArgs(['--method', 'kd', '--loss', '[{"name":"ce","weight":0.5},{"name":"kd","weight":0.5,"params":{"temperature":2}}]']);
    expect('options' in loss && loss.options.loss).toEqual([{ name: 'ce', weight: 0.5 }, { name: 'kd', weight: 0.5, params: { temperature: 2 } }]);
  });

  it('names a bad flag and what it accepts, with exit code 2', async () => {
    const io = capture();
    expect(await runDistillCommand(['--method', 'crd'])).toBe(2);
    expect(await runDistillCommand(['--method', 'kd', '--alpha', '2'])).toBe(2);
    expect(await runDistillCommand(['--method', 'fitnets', '--hint', 'conv2'])).toBe(2);
    expect(await runDistillCommand(['--config', 'x.json', '--epochs', '3'])).toBe(2);
    expect(await runDistillCommand(['--method', 'kd', '--student', 'd8,q1', '--train-size', '50', '--test-size', '20'])).toBe(2);
    // Feature names are checked before anything trains.
    expect(await runDistillCommand(['--method', 'nst', '--pairs', 'conv9:conv1', '--train-size', '50', '--test-size', '20', '--backend', 'wasm'])).toBe(2);
    expect(io.stderr()).toContain('--method must be one of kd, fitnets, at, nst, ban, one; got "crd"');
    expect(io.stderr()).toContain('--alpha must be a number in [0, 1]; got "2"');
    expect(io.stderr()).toContain('--hint takes STUDENT:TEACHER feature names, e.g. conv2:conv2; got "conv2"');
    expect(io.stderr()).toContain('--config takes its options from the file; remove --epochs');
    expect(io.stderr()).toContain('E_CONFIG: architecture "d8,q1": cannot read "q1"');
    expect(io.stderr()).toContain('E_CONFIG: nst: the student (c4,p2,c8,p2,d32) has no feature "conv9"; it has conv1, pool1, conv2, pool2, dense1');
  });

  it('runs a method, prints progress and the summary, and writes the results JSON', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'codistill-distill-')), 'kd.json');
    const io = capture();
    const code = await runDistillCommand([
      '--method', 'kd', '--teacher', 'd32', '--student', 'd8', '--teacher-epochs', '1', '--epochs', '2', '--train-size', '300', '--test-size', '100', '--batch-size', '50', '--backend', 'wasm', '--out', out,
    ]);
    expect(code).toBe(0);
    expect(io.stdout()).toMatch(/\[teacher\] d32 \(25,450 parameters\)/);
    expect(io.stdout()).toMatch(/epoch {2}2\/2 {2}loss \d+\.\d{4} {3}test \d+\.\d{2}% {2}\d+\/100 errors/);
    expect(io.stdout()).toMatch(/summary: test errors out of 100 \(kd, seed 1, \d+ s on wasm\)/);
    expect(io.stdout()).toMatch(/distillation (removed|added) \d+ errors relative to the baseline/);
    const report = JSON.parse(readFileSync(out, 'utf8')) as DistillReport;
    expect(report.method).toBe('kd');
    expect(report.student.history).toHaveLength(2);
    expect(io.stdout()).toContain(`student distilled (kd)`);
    expect(io.stdout()).toContain(String(report.student.errors));
  });

  it('runs an experiment config over seeds and writes its results and RESULTS.md beside it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-experiment-'));
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({
      name: 'tiny offline KD', method: 'kd', seeds: [1, 2],
      options: { teacher: 'd32', student: 'd8', teacherEpochs: 1, epochs: 1, trainSize: 200, testSize: 100, batchSize: 50 },
      results: 'out/results.json', report: 'RESULTS.md',
    }));
    capture();
    expect(await runDistillCommand(['--config', config, '--backend', 'wasm'])).toBe(0);
    const result = JSON.parse(readFileSync(join(dir, 'out/results.json'), 'utf8')) as DistillExperimentResult;
    expect(result.runs.map((r) => r.options.seed)).toEqual([1, 2]);
    expect(result.series.map((s) => s.label)).toEqual(['teacher — d32', 'student on labels alone — d8', 'student distilled (kd) — d8']);
    const [, baseline, student] = result.series;
    expect(result.improvement!.errors).toEqual(baseline!.errors.map((e, i) => e - student!.errors[i]!));
    const markdown = readFileSync(join(dir, 'RESULTS.md'), 'utf8');
    expect(markdown).toContain('# tiny offline KD');
    expect(markdown).toContain(`| student distilled (kd) — d8 | ${student!.errors.join(' | ')} |`);
    expect(markdown).toMatch(/The distilled student made fewer test errors than the labels-only student in \d of 2 seeds/);
  });
});
