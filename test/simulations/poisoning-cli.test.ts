/**
 * `codistill simulate` with hostile participants and private uploads, as the poisoning
 * experiment and a privacy study run it: the built CLI, worker threads, a real coordinator.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { hostileParticipants } from '../../simulations/attacks.js';
import type { RoundRow, SimulationResult } from '../../simulations/simulate.js';
import { expandSweep } from '../../simulations/sweep.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');
const SMALL = ['--test-size', '300', '--reference-size', '200', '--private-size', '1200'];
const EXPERIMENT = join(import.meta.dirname, '../../experiments/poisoning');

describe('codistill simulate --attack, --privacy-noise', () => {
  it('marks the hostile participant, averages over the honest ones, and reports the honest ones\' ε every round', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'codistill-poison-')), 'run');
    const { stdout } = await run('node', [
      CLI, 'simulate', '--participants', '3', '--rounds', '2', ...SMALL, '--seed', '5', '--no-baseline',
      '--attack', 'flipped', '--hostile', '1', '--aggregator', 'median', '--privacy-noise', '1', '--out', out,
    ], { timeout: 300_000 });
    const [hostile] = hostileParticipants(3, 1, 5);
    const honest = [0, 1, 2].filter((i) => i !== hostile);
    expect(stdout).toMatch(new RegExp(`round .*\\*p${hostile!}\\b.*ε max`));
    expect(stdout).toContain('(* hostile: left out of mean, personal and ensemble');
    expect(stdout).toContain(`accuracy over the 2 honest participants (${honest.map((i) => `p${i}`).join(', ')}); hostile p${hostile!} (attack flipped) excluded`);

    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as SimulationResult;
    const dml = result.runs[0]!;
    expect(dml.hostile).toEqual([hostile]);
    expect(result.options.attack).toEqual({ kind: 'flipped', participants: 1 });
    expect(result.options.privacy).toEqual({ noiseMultiplier: 1, clip: 1, delta: 1e-5 });
    // C = 1, z = 1 on probabilities: ρ = 1 per round, ε = r + 2√(r ln 10⁵); the hostile participant uploads without privacy.
    const epsilon = (r: number) => r + 2 * Math.sqrt(r * Math.log(1e5));
    for (const row of dml.rows) {
      expect(row.contributors).toBe(3);
      expect(row.hostile).toEqual([hostile]);
      expect(row.meanAccuracy).toBeCloseTo(honest.reduce((a, i) => a + row.accuracy[i]!, 0) / honest.length, 12);
      for (const i of honest) expect(Math.abs(row.epsilon![i]! - epsilon(row.round)) / epsilon(row.round)).toBeLessThan(1e-9);
      expect(row.epsilon![hostile!]).toBeNull();
    }
    expect(dml.final.meanAccuracy).toBe(dml.rows[1]!.meanAccuracy);
    expect(dml.privacy!.epsilon[honest[0]!]).toBeCloseTo(epsilon(2), 9);
    expect(stdout).toMatch(/privacy spent per participant \(ε at δ = 0\.00001\): min 11\.597, max 11\.597/);

    const lines = readFileSync(join(out, 'rounds.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as RoundRow);
    expect(lines.map((l) => l.hostile)).toEqual([[hostile], [hostile]]);
    // By column name: columns are added at the end as the results grow.
    const [header, first] = readFileSync(join(out, 'summary.csv'), 'utf8').trim().split('\n').map((line) => line.split(','));
    const column = (name: string) => first![header!.indexOf(name)];
    expect(column('hostile')).toBe(`p${hostile!}`);
    expect(Number(column('epsilon_max'))).toBeCloseTo(epsilon(2), 9);
  });

  it('names a bad attack or privacy field, and what was given', async () => {
    const fails = (args: string[]) => run('node', [CLI, 'simulate', ...args]).then(() => '', (e: { code: number; stderr: string }) => `${e.code} ${e.stderr}`);
    expect(await fails(['--attack', 'inverted'])).toMatch(/^2 .*attack\.kind: must be one of random, flipped, scaled \(got "inverted"\)/s);
    expect(await fails(['--attack', 'random', '--hostile', '4', '--participants', '4'])).toMatch(/attack\.participants: must be fewer than participants \(4\): at least one participant has to stay honest \(got 4\)/);
    expect(await fails(['--hostile', '2'])).toMatch(/attack\.kind: must be one of random, flipped, scaled/);
    expect(await fails(['--privacy-noise', '0'])).toMatch(/privacy\.noiseMultiplier: must be > 0 \(got 0\)/);
    expect(await fails(['--privacy-clip', '2'])).toMatch(/privacy\.noiseMultiplier: must be a number/);
    expect(await fails(['--privacy-noise', '1', '--privacy-delta', '2'])).toMatch(/privacy\.delta: must be in \(0, 1\) \(got 2\)/);
    expect(await fails(['--trim-fraction', '0.5'])).toMatch(/trimFraction: must be in \[0, 0\.5\) \(got 0\.5\)/);
  });
});

describe('the poisoning experiment\'s sweeps', () => {
  it('cover every aggregator clean, and every attack × {2, 3} hostile × aggregator (IID: 3 hostile only)', () => {
    for (const suffix of ['', '-iid']) {
      const clean = expandSweep(join(EXPERIMENT, `clean${suffix}.yaml`));
      const attacked = expandSweep(join(EXPERIMENT, `attacked${suffix}.yaml`));
      expect(clean.parallel).toBe(1);
      expect(attacked.parallel).toBe(1);
      expect(clean.points.map((p) => p.config.aggregator)).toEqual(['mean', 'median', 'trimmed-mean']);
      expect(clean.points.every((p) => p.config.attack === undefined)).toBe(true);
      expect(attacked.points).toHaveLength(suffix === '' ? 18 : 9);
      for (const p of [...clean.points, ...attacked.points]) {
        expect(p.config).toMatchObject({ algorithm: 'dml', participants: 10, rounds: 10, seed: 1, trimFraction: 0.34, baseline: false });
        expect((p.config.partition as { kind: string }).kind).toBe(suffix === '' ? 'dirichlet' : 'iid');
      }
      expect(new Set(attacked.points.map((p) => JSON.stringify(p.config.attack))).size).toBe(suffix === '' ? 6 : 3);
    }
  });
});
