/**
 * Co-distillation (Anil et al. 2018) between language models: `codistill simulate` on text with
 * algorithm codistillation runs the asynchronous exchange on per-token knowledge — each site pushes
 * softmax(z/T) at every position of one reference shard's windows after every `exchangeEvery`
 * steps and pulls the others' ensemble on it, through a real coordinator — beside the local-only
 * baseline. Embedded fortune slices, no Debian package.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { TextSimulationResult } from '../../simulations/text-sessions.js';
import { fortunesRoot } from '../e2e/fortune-slices.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');

describe('co-distillation on text', () => {
  it('exchanges per-token predictions on reference shards asynchronously, every checkpoint of every site', { timeout: 300_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-lm-codist-'));
    const config = join(dir, 'lm.yaml');
    writeFileSync(config, [
      `data: { source: text, domains: [en, de], root: ${fortunesRoot()} }`,
      'algorithm: codistillation', 'participants: 2', 'rounds: 2', 'seed: 1', 'batchSize: 4', 'learningRate: 0.003',
      'temperature: 2', 'alpha: 0.5', 'uploadDtype: float32', 'baseline: true', 'async: { shards: 2, exchangeEvery: 2, burnInSteps: 2 }',
      'lm: { model: "transformer:d=16,l=1,h=2,ctx=16", steps: 4, maxBytesPerDomain: 1000, heldOutFraction: 0.3, referenceBytesPerDomain: 60 }',
      `out: ${join(dir, 'run')}`, '',
    ].join('\n'));
    const { stdout } = await run('node', [CLI, 'simulate', '--config', config, '--no-save'], { timeout: 280_000 });
    const windows = Number(/reference (\d+) windows of 16 bytes/.exec(stdout)![1]);
    expect(windows).toBeGreaterThanOrEqual(2);
    for (const round of [1, 2]) for (const site of ['p0 \\(en\\)', 'p1 \\(de\\)']) {
      expect(stdout).toMatch(new RegExp(`codistillation round ${round} ${site}: own \\d\\.\\d{3} bpb, mixed \\d\\.\\d{3} bpb`));
    }

    const result = JSON.parse(readFileSync(join(dir, 'run', 'result.json'), 'utf8')) as TextSimulationResult;
    expect(result.runs.map((r) => r.algorithm)).toEqual(['codistillation', 'local']);
    const codist = result.runs[0]!;
    expect(codist.rows.map((r) => [r.round, r.participant])).toEqual([[1, 'p0'], [1, 'p1'], [2, 'p0'], [2, 'p1']]);
    // 4 steps per checkpoint, an exchange every 2: two pushes a checkpoint, shard 0 then shard 1 —
    // together every window once, 16 positions × 257 float32 each, plus two envelopes (and two pulls' requests).
    const payload = windows * 16 * 257 * 4;
    for (const row of codist.rows) {
      expect(row.bytesUp).toBeGreaterThan(payload);
      expect(row.bytesUp).toBeLessThan(payload + 4096);
      expect(Number.isFinite(row.mixedBitsPerByte) && row.mixedBitsPerByte > 0).toBe(true);
    }
    // Checkpoint 1 may end before the peer's first push arrives (the exchange is asynchronous); by checkpoint 2 the
    // peer has pushed both shards, so every pull brings its predictions back and the site learns from them past the burn-in.
    for (const row of codist.rows.filter((r) => r.round === 2)) {
      expect(row.receivedTarget).toBe(true);
      expect(row.bytesDown).toBeGreaterThan(Math.floor(windows / 2) * 16 * 257 * 4);
    }
    expect(result.runs[1]!.totalBytes).toEqual({ up: 0, down: 0 });
  });
});
