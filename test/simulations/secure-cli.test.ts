/**
 * `codistill simulate --secure-aggregation` as a user runs it: the built CLI, worker threads and a
 * real coordinator; a run completes under secure aggregation, and what it cannot run is refused
 * before anything starts.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');
const SMALL = ['--participants', '3', '--rounds', '1', '--test-size', '200', '--reference-size', '100', '--private-size', '600', '--no-baseline', '--no-save'];

describe('codistill simulate --secure-aggregation', () => {
  it('runs DML under secure aggregation with the default threshold ⌊n/2⌋ + 1', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'codistill-secure-')), 'run');
    const { stdout } = await run('node', [CLI, 'simulate', '--algorithm', 'dml', '--secure-aggregation', ...SMALL, '--out', out], { timeout: 300_000 });
    expect(stdout).toMatch(/final accuracy/);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { secureAggregation?: { threshold: number } };
    expect(config.secureAggregation).toEqual({ threshold: 2 });
  });

  it('refuses what it cannot run, naming the field and why, before starting', async () => {
    const failure = await run('node', [CLI, 'simulate', '--algorithm', 'dml', '--aggregator', 'median', '--secure-threshold', '2', ...SMALL]).catch((error: { code: number; stderr: string }) => error);
    expect((failure as { code: number }).code).toBe(2);
    expect((failure as { stderr: string }).stderr).toMatch(/secureAggregation: aggregator "median" needs every participant's individual values/);
    const threshold = await run('node', [CLI, 'simulate', '--algorithm', 'fd', '--secure-threshold', '4', ...SMALL]).catch((error: { code: number; stderr: string }) => error);
    expect((threshold as { stderr: string }).stderr).toMatch(/secureAggregation.threshold must be an integer in \[2, 3\]/);
  });
});
