/**
 * A real simulation with participant sampling, as a user runs it (`codistill simulate` with
 * --sample-fraction and --sample-min): worker threads, a real coordinator on loopback, real
 * students. Each round half the participants upload and train; the rest sit it out, and the
 * run still completes and reports every participant every round.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { sampleParticipants } from '../../server/participant-sampling.js';
import type { RoundRow, SimulationResult } from '../../simulations/simulate.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');

describe('a simulation with participant sampling', () => {
  it('samples ⌊0.5·4⌋ = 2 participants a round, records them, and completes', { timeout: 300_000 }, async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'codistill-sampling-')), 'run');
    const { stdout } = await run('node', [CLI, 'simulate', '--participants', '4', '--rounds', '3', '--test-size', '300', '--reference-size', '200',
      '--reference-per-round', '100', '--private-size', '1200', '--sample-fraction', '0.5', '--sample-min', '2', '--seed', '3', '--no-save', '--out', out], { timeout: 300_000 });
    expect(stdout).toContain('sampling 2 of 4 participants each round ({"fraction":0.5,"min":2}; quorum 2); the others sit the round out (marked -)');
    // Two of the four accuracies of each row are marked as sat out.
    const table = stdout.slice(stdout.indexOf('[dml]'), stdout.indexOf('[local]')).split('\n').filter((l) => /^\s+[123] /.test(l));
    expect(table).toHaveLength(3);
    for (const line of table) expect(line.match(/\d+\.\d- /g)).toHaveLength(2);
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as SimulationResult;
    const [dml, local] = result.runs;
    expect(dml!.settings.sampling).toEqual({ fraction: 0.5, min: 2 });
    const ids = ['p0', 'p1', 'p2', 'p3'];
    for (const row of dml!.rows) {
      // The session's sample, as the seeded ranking draws it; only the sampled contributed.
      expect(row.sampled).toEqual(sampleParticipants(ids, { fraction: 0.5, min: 2 }, 2, 3, row.round).map((id) => ids.indexOf(id)));
      expect(row.contributors).toBe(2);
      expect(row.accuracy).toHaveLength(4);
    }
    expect(new Set(dml!.rows.map((r) => r.sampled!.join())).size).toBeGreaterThan(1);
    // A participant that sat a round out kept its student: the same accuracy as after its last round.
    const rows = dml!.rows;
    for (let r = 1; r < rows.length; r++) {
      for (let i = 0; i < 4; i++) if (!rows[r]!.sampled!.includes(i)) expect(rows[r]!.accuracy[i]).toBe(rows[r - 1]!.accuracy[i]);
    }
    // The local-only baseline trains everyone every round, unsampled.
    expect(local!.settings.sampling).toBeUndefined();
    expect(local!.rows.every((row) => row.sampled === undefined)).toBe(true);
    const lines = readFileSync(join(out, 'rounds.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as RoundRow & { algorithm: string });
    expect(lines.filter((l) => l.algorithm === 'dml').map((l) => l.sampled)).toEqual(rows.map((r) => r.sampled));
  });

  it('runs fedavg on half the participants a round: the sampled share one global model, and bytes down count the ones sent it with the round', { timeout: 300_000 }, async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'codistill-sampling-')), 'run');
    await run('node', [CLI, 'simulate', '--algorithm', 'fedavg', '--model', 'mlp:32', '--participants', '4', '--rounds', '4', '--test-size', '300',
      '--reference-size', '200', '--private-size', '1200', '--sample-fraction', '0.5', '--seed', '4', '--no-baseline', '--no-save', '--out', out], { timeout: 300_000 });
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as SimulationResult;
    const [fedavg] = result.runs;
    expect(fedavg!.settings.sampling).toEqual({ fraction: 0.5 });
    const ids = ['p0', 'p1', 'p2', 'p3'];
    const samples = [1, 2, 3, 4].map((round) => sampleParticipants(ids, { fraction: 0.5 }, 2, 4, round).map((id) => ids.indexOf(id)));
    // Seeded: p1,p2 | p1,p3 | p2,p3 | p0,p2 — in rounds 2, 3 and 4 one sampled participant (p3, p2, p0) sat the round before out.
    expect(samples).toEqual([[1, 2], [1, 3], [2, 3], [0, 2]]);
    expect(fedavg!.rows.map((r) => r.sampled)).toEqual(samples);
    // mlp:32 is 784·32 + 32 + 32·10 + 10 = 25,450 float32 parameters: 101,800 bytes a model.
    const model = 4 * 25_450;
    const sentWithRound = [0, 1, 1, 1];
    fedavg!.rows.forEach((row, r) => {
      expect(row.contributors).toBe(2);
      // Up: two models (and two reports). Down: two targets, and the global model with the round to the one that sat out the round before.
      expect(row.bytesUp).toBeGreaterThan(2 * model);
      expect(row.bytesUp).toBeLessThan(2 * model + 4096);
      expect(row.bytesDown).toBeGreaterThan((2 + sentWithRound[r]!) * model);
      expect(row.bytesDown).toBeLessThan((2 + sentWithRound[r]!) * model + 4096);
      // The sampled end the round with the same global model; the others keep the student they had.
      const [a, b] = row.sampled!.map((i) => row.accuracy[i]!);
      expect(b).toBe(a);
      if (r > 0) for (let i = 0; i < 4; i++) if (!row.sampled!.includes(i)) expect(row.accuracy[i]).toBe(fedavg!.rows[r - 1]!.accuracy[i]);
      // The run's figures are the global model's, not a mean over older copies of it.
      expect(row.meanAccuracy).toBe(a);
      expect(row.ensembleAccuracy).toBeCloseTo(a!, 12);
    });
    expect(fedavg!.final.meanAccuracy).toBe(fedavg!.rows.at(-1)!.meanAccuracy);
  });
});
