/**
 * `codistill simulate` on text (data: { source: text }): one language-model site per fortune
 * language, DML on per-token knowledge through a real coordinator, the local-only baseline beside
 * it, bits per byte per round on each site's own and the mixed held-out text. The fortunes come
 * from embedded slices written in the fortune files' layout, so the test needs no Debian package.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadLanguageModel } from '../../client/student-io/index.js';
import { validateExperiment } from '../../simulations/config.js';
import { fortunesRoot } from '../e2e/fortune-slices.js';
import { DEFAULT_OPTIONS } from '../../simulations/simulate.js';
import type { TextSimulationResult } from '../../simulations/text-sessions.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');

describe('codistill simulate on text', () => {
  it('runs DML between two language-model sites and the local-only baseline; prints and writes bits per byte per round', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-lm-'));
    const config = join(dir, 'lm.yaml');
    writeFileSync(config, [
      `data: { source: text, domains: [en, de], root: ${fortunesRoot()} }`,
      'algorithm: dml', 'participants: 2', 'rounds: 2', 'seed: 1', 'batchSize: 4', 'learningRate: 0.003', 'referencePerRound: 4',
      'temperature: 2', 'alpha: 0.5', 'uploadDtype: float32', 'baseline: true',
      'lm: { model: "transformer:d=16,l=1,h=2,ctx=16", steps: 2, maxBytesPerDomain: 1000, heldOutFraction: 0.3, referenceBytesPerDomain: 60 }',
      `out: ${join(dir, 'run')}`,
    ].join('\n'));
    const { stdout } = await run('node', [CLI, 'simulate', '--config', config], { timeout: 300_000 });
    expect(stdout).toMatch(/text: 2 sites \(en \d+ B, de \d+ B\), reference \d+ windows of 16 bytes/);
    for (const round of [1, 2]) for (const site of ['p0 \\(en\\)', 'p1 \\(de\\)']) {
      expect(stdout).toMatch(new RegExp(`dml round ${round} ${site}: own \\d\\.\\d{3} bpb, mixed \\d\\.\\d{3} bpb`));
      expect(stdout).toMatch(new RegExp(`local round ${round} ${site}: own \\d\\.\\d{3} bpb, mixed \\d\\.\\d{3} bpb`));
    }
    expect(stdout).toMatch(/goal \(mixed ≥ 10 % lower, own ≤ 2 % higher than local-only\): mixed -?\d+\.\d % lower/);

    const result = JSON.parse(readFileSync(join(dir, 'run', 'result.json'), 'utf8')) as TextSimulationResult;
    expect(result.runs.map((r) => r.algorithm)).toEqual(['dml', 'local']);
    const [dml, local] = result.runs;
    expect(dml!.rows).toHaveLength(4);
    // DML's uploads: 4 windows × 16 positions × 257 float32 per site and round, plus the envelope.
    for (const row of dml!.rows) {
      expect(row.receivedTarget).toBe(true);
      expect(row.bytesUp).toBeGreaterThan(4 * 16 * 257 * 4);
      expect(row.ownBitsPerByte).toBeGreaterThan(0);
      expect(row.mixedBitsPerByte).toBeGreaterThan(0);
    }
    expect(local!.totalBytes).toEqual({ up: 0, down: 0 });
    // One row per site and round, in round order.
    expect(local!.rows.map((r) => r.domain)).toEqual(['en', 'de', 'en', 'de']);
    expect(result.goal).toBeDefined();
    const lines = readFileSync(join(dir, 'run', 'rounds.jsonl'), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(8);

    // The trained models are kept: each DML site's, loadable with its tokenizer and what it reached.
    expect(stdout).toMatch(/students saved to .*students\/ \(p0, p1\)/);
    for (const [i, site] of ['p0', 'p1'].entries()) {
      const loaded = loadLanguageModel(join(dir, 'run', 'students', site));
      try {
        expect(loaded.card?.training.method).toMatch(/^dml across 2 sites/);
        expect(loaded.card?.metrics.heldOut?.bitsPerByte).toBeCloseTo(dml!.final.perParticipant[i]!.mixed, 6);
      } finally {
        loaded.model.dispose();
      }
    }
    expect(existsSync(join(dir, 'run', 'students', 'local'))).toBe(false);
  });

  it('refuses what a text simulation cannot run, naming the field', () => {
    const text = { ...DEFAULT_OPTIONS, out: 'x', data: { source: 'text', domains: ['en', 'de'] }, participants: 2 };
    expect(() => validateExperiment(text, 't')).toThrow(/lm: is required with data.source text/);
    const lm = { model: 'transformer:d=16,l=1,h=2,ctx=16', steps: 1 };
    expect(() => validateExperiment({ ...text, lm, participants: 3 }, 't')).toThrow(/participants: must be the number of text domains \(2\)/);
    expect(() => validateExperiment({ ...text, lm, algorithm: 'fedmd' }, 't')).toThrow(/algorithm: text sessions run dml, codistillation, local/);
    expect(() => validateExperiment({ ...text, lm: { ...lm, model: 'lstm:d=1' } }, 't')).toThrow(/lm.model: must be a language model/);
    expect(() => validateExperiment({ ...text, lm, data: { source: 'text', domains: ['en', 'fr'] } }, 't')).toThrow(/data.domains.1/);
    expect(() => validateExperiment({ ...DEFAULT_OPTIONS, out: 'x', lm }, 't')).toThrow(/lm: is for text simulations/);
  });
});
