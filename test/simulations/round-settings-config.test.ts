/**
 * The round settings researchers set in experiment configs and flags: participant sampling,
 * co-distillation's asynchronous knobs and FedMD's transfer learning — validated with a sentence
 * that names the field, and carried through to the session a run starts.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DEFAULT_ASYNC } from '../../server/session-config.js';
import { validateExperiment } from '../../simulations/config.js';
import { DEFAULT_OPTIONS, pretrainEpochs, type SimulationResult } from '../../simulations/simulate.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');
const experiment = (fields: Record<string, unknown>) => validateExperiment({ ...DEFAULT_OPTIONS, out: 'x', ...fields }, 'test');
/** What `codistill simulate` says when it refuses its flags (it exits 2 before any run). */
async function refusal(args: string[]): Promise<string> {
  try {
    await run('node', [CLI, 'simulate', ...args, '--no-save', '--out', join(tmpdir(), 'codistill-never-written')], { timeout: 60_000 });
  } catch (error) {
    const { code, stderr } = error as { code: number; stderr: string };
    expect(code).toBe(2);
    return stderr;
  }
  throw new Error(`simulate ${args.join(' ')} was not refused`);
}

describe('sampling in experiment configs', () => {
  it('takes a fraction or a count with a minimum, from a config or the flags', async () => {
    expect(experiment({ sampling: { fraction: 0.5, min: 2 } }).sampling).toEqual({ fraction: 0.5, min: 2 });
    expect(experiment({ sampling: { count: 3 } }).sampling).toEqual({ count: 3 });
    // The flags land in the same fields (test/e2e/sampling-simulation.test.ts runs them).
    expect(await refusal(['--participants', '4', '--sample-count', '3', '--sample-min', '5'])).toMatch(/sampling\.min: must be ≤ the participants that contribute \(4\) \(got 5\)/);
    expect(await refusal(['--sample-fraction', '0.5', '--sample-count', '3'])).toMatch(/sampling: takes exactly one of fraction and count \(got both\)/);
  });

  it('refuses what cannot be sampled, naming the field', () => {
    expect(() => experiment({ sampling: { fraction: 0.5, count: 2 } })).toThrow(/sampling: takes exactly one of fraction and count \(got both\)/);
    expect(() => experiment({ sampling: { min: 2 } })).toThrow(/sampling: takes exactly one of fraction and count \(got neither\)/);
    expect(() => experiment({ sampling: { fraction: 0 } })).toThrow(/sampling\.fraction: must be in \(0, 1\] \(got 0\)/);
    expect(() => experiment({ participants: 4, sampling: { count: 5 } })).toThrow(/sampling\.count: must be ≤ the participants that contribute \(4\) \(got 5\)/);
    expect(() => experiment({ sampling: { count: 2, min: 3 } })).toThrow(/sampling\.min: must be ≤ count \(2\)/);
    expect(() => experiment({ algorithm: 'codistillation', sampling: { count: 2 } })).toThrow(/sampling: codistillation exchanges asynchronously: there are no rounds to sample participants for/);
    expect(() => experiment({ sampling: { fraction: 0.5, seed: 3 } })).toThrow(/sampling: unknown field "seed"/);
    // FedAvg samples too (its client fraction C): a sampled participant starts from the latest global model (test/e2e/fedavg-sampling.test.ts).
    expect(experiment({ algorithm: 'fedavg', sampling: { count: 2 } }).sampling).toEqual({ count: 2 });
  });
});

describe('co-distillation\'s knobs in experiment configs', () => {
  it('takes shards, exchangeEvery, burnInSteps and stalenessMs, from a config or the flags', async () => {
    expect(experiment({ algorithm: 'codistillation', async: { shards: 2, stalenessMs: 5000 } }).async).toEqual({ shards: 2, stalenessMs: 5000 });
    const said = await refusal(['--algorithm', 'codistillation', '--async-shards', '4', '--exchange-every', '0', '--burn-in-steps', '-', '--staleness-ms', '0']);
    expect(said).toMatch(/async\.exchangeEvery: must be ≥ 1 \(got 0\)/);
    expect(said).toMatch(/async\.burnInSteps: must be a number \(got "-"\)/);
    expect(said).toMatch(/async\.stalenessMs: must be > 0 \(got 0\)/);
    // Cross-field rules speak once the fields themselves are right.
    expect(await refusal(['--algorithm', 'dml', '--async-shards', '4'])).toMatch(/async: dml runs synchronous rounds: the asynchronous exchange's knobs are for codistillation only/);
  });

  it('refuses them for a synchronous algorithm, and shards the reference set cannot fill', () => {
    expect(() => experiment({ algorithm: 'dml', async: { shards: 2 } })).toThrow(/async: dml runs synchronous rounds: the asynchronous exchange's knobs are for codistillation only/);
    expect(() => experiment({ algorithm: 'codistillation', referenceSize: 100, referencePerRound: 100, async: { shards: 101 } })).toThrow(/async\.shards: must be ≤ referenceSize \(100\)/);
    expect(() => experiment({ algorithm: 'codistillation', async: { exchangeEvery: 0 } })).toThrow(/async\.exchangeEvery: must be ≥ 1/);
  });

  it('reach the session: more shards, smaller pushes', { timeout: 300_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-async-'));
    const results: SimulationResult[] = [];
    for (const shards of [1, 4]) {
      const out = join(dir, `shards${shards}`);
      await run('node', [CLI, 'simulate', '--algorithm', 'codistillation', '--participants', '2', '--rounds', '1', '--test-size', '300', '--reference-size', '200',
        '--private-size', '600', '--async-shards', String(shards), '--no-baseline', '--no-save', '--seed', '3', '--out', out], { timeout: 300_000 });
      results.push(JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as SimulationResult);
    }
    const [one, four] = results.map((r) => r.runs[0]!);
    expect(one!.settings.async).toEqual({ ...DEFAULT_ASYNC, shards: 1 });
    expect(four!.settings.async).toEqual({ ...DEFAULT_ASYNC, shards: 4 });
    // As many pushes either way (one every exchangeEvery steps), each of a quarter of the rows.
    expect(four!.totalBytes.up).toBeLessThan(0.4 * one!.totalBytes.up);
  });
});

describe('transfer learning in experiment configs', () => {
  it('is on for fedmd by default, off for the others, and set by pretrainOnReference or --pretrain-on-reference', async () => {
    expect(pretrainEpochs(experiment({ algorithm: 'fedmd' }))).toBe(5);
    expect(pretrainEpochs(experiment({ algorithm: 'fedmd', pretrainOnReference: 0 }))).toBe(0);
    expect(pretrainEpochs(experiment({ algorithm: 'dml' }))).toBe(0);
    expect(pretrainEpochs(experiment({ algorithm: 'dml', pretrainOnReference: 2 }))).toBe(2);
    expect(await refusal(['--pretrain-on-reference', '1.5'])).toMatch(/pretrainOnReference: must be an integer \(got 1\.5\)/);
    expect(() => experiment({ pretrainOnReference: -1 })).toThrow(/pretrainOnReference: must be ≥ 0/);
  });
});
