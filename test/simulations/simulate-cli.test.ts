/**
 * The `codistill simulate` command as a user runs it: the built CLI, worker threads, a real
 * coordinator on loopback, and the results file it writes. Small sizes keep it quick.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { SimulationResult } from '../../simulations/simulate.js';

const run = promisify(execFile);
// `npm test` builds first; the CLI runs from dist/ because worker threads load compiled files.
const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');

describe('codistill simulate', () => {
  it('runs the distilled and local-only runs, prints the per-round table and writes the results', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'codistill-')), 'result.json');
    const { stdout } = await run('node', [
      CLI, 'simulate', '--participants', '3', '--rounds', '2', '--test-size', '300', '--reference-size', '200',
      '--reference-per-round', '100', '--upload-dtype', 'uint8', '--seed', '5', '--out', out,
    ], { timeout: 300_000 });
    expect(stdout).toMatch(/round\s+p0\s+p1\s+p2\s+mean\s+ensemble\s+bytes up\s+bytes down/);
    expect(stdout).toMatch(/gain of dml over local-only: [+-]\d+\.\d points/);
    expect(stdout).toContain(`results written to ${out}`);

    const result = JSON.parse(readFileSync(out, 'utf8')) as SimulationResult;
    expect(result.runs.map((r) => r.algorithm)).toEqual(['dml', 'local']);
    expect(result.data.sizes).toEqual({ test: 300, reference: 200, pool: 9500 });
    expect(result.data.labelMatrix.flat().reduce((a, b) => a + b, 0)).toBe(9500);
    expect(result.data.partitionHash).toMatch(/^[0-9a-f]{64}$/);
    const [dml, local] = result.runs;
    for (const r of [dml!, local!]) {
      expect(r.rows.map((row) => row.round)).toEqual([1, 2]);
      expect(r.rows.every((row) => row.contributors === 3 && row.accuracy.length === 3)).toBe(true);
      expect(r.rows.every((row) => row.meanAccuracy > 0.3 && row.ensembleAccuracy > 0.3)).toBe(true);
    }
    // 100 reference rows × 10 classes × 1 byte per participant per round, plus envelope headers.
    expect(dml!.rows[0]!.bytesUp).toBeGreaterThan(3 * 1000);
    expect(dml!.rows[0]!.bytesUp).toBeLessThan(3 * 1000 + 3 * 1024);
    // Downward targets travel as float32: at least 3 × 4,000 bytes.
    expect(dml!.rows[0]!.bytesDown).toBeGreaterThan(3 * 4000);
    expect(local!.rows[0]!.bytesUp).toBeLessThan(1024);
    expect(result.gainOverLocal).toBeCloseTo(100 * (dml!.final.meanAccuracy - local!.final.meanAccuracy), 6);
  });

  it('names a bad flag and its allowed values', async () => {
    await expect(run('node', [CLI, 'simulate', '--model', 'resnet'])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--model must be one of mlp, cnn; got "resnet"'),
    });
    await expect(run('node', [CLI, 'simulate', '--alpha', '2'])).rejects.toMatchObject({
      stderr: expect.stringContaining('--alpha must be a number in [0, 1]; got "2"'),
    });
  });
});
