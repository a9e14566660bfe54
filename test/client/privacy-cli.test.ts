/**
 * `codistill client --privacy-noise …` as a site runs it: a real `codistill server` process, a
 * client process on its own CSV file uploading FD class logits with clipping and noise, and the
 * (ε, δ) spent reported to the coordinator and printed round by round.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { writeCsv } from '../../simulations/demo-sites.js';
import { startServer } from '../server/fault-kit.js';

const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');
const run = promisify(execFile);

describe('codistill client with differential privacy', () => {
  it('uploads noisy class logits the coordinator accepts, and reports and prints ε growing each round', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-privacy-'));
    const split = splitDataset(loadMnist(), { test: 0, reference: 0 }, 2);
    const [x, y] = [split.pool.x.subarray(0, 784 * 200), split.pool.y.subarray(0, 200)];
    writeCsv(join(dir, 'site.csv'), x, y);
    writeFileSync(join(dir, 'session.yaml'), [
      'id: private', 'algorithm: fd', 'rounds: 2', 'numClasses: 10', 'participants:',
      '  - { id: a, token: the-token-of-site-a-0123 }', '  - { id: b, token: the-token-of-site-b-0123 }', '',
    ].join('\n'));
    const server = await startServer(['--config', join(dir, 'session.yaml'), '--port', '0', '--out', join(dir, 'history.json')]);
    const { url } = server;
    const client = (token: string, extra: string[]) =>
      run('node', [CLI, 'client', '--server', url, '--session', 'private', '--data', join(dir, 'site.csv'), '--model', 'mlp', '--validation', '0',
        '--out', join(dir, `${token.slice(14, 15)}.json`), ...extra], { env: { ...process.env, CODISTILL_TOKEN: token }, timeout: 300_000 });
    let stdout: string;
    try {
      // Site a uploads privately (C = 5, z = 1, δ = 1e-6); site b uploads as it is.
      [{ stdout }] = await Promise.all([
        client('the-token-of-site-a-0123', ['--privacy-noise', '1', '--privacy-clip', '5', '--privacy-delta', '1e-6', '--privacy-seed', '3']),
        client('the-token-of-site-b-0123', []),
      ]);
      await server.exited;
    } finally {
      server.process.kill();
    }
    // Validation 0: all 200 rows train, so the smallest class held is counted from them. With
    // σ = zC and Δ = 2C/n_min, ρ = 2/(z² n_min²) per round; ε = ρ + 2√(ρ ln 10⁶).
    const counts = new Array<number>(10).fill(0);
    for (const label of y) counts[label]!++;
    const smallest = Math.min(...counts.filter((c) => c > 0));
    const epsilon = (round: number) => {
      const rho = (2 * round) / smallest ** 2;
      return rho + 2 * Math.sqrt(rho * Math.log(1e6));
    };
    const printed = [...stdout.matchAll(/round (\d+): .*privacy spent ε = (\d+\.\d+) at δ = 0\.000001/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(printed.map(([r]) => r)).toEqual([1, 2]);
    for (const [round, e] of printed) expect(e).toBeCloseTo(epsilon(round!), 3);
    expect(stdout).toContain(`session ended: completed 2 rounds; privacy spent ε = ${epsilon(2).toFixed(3)} at δ = 0.000001`);
    const history = JSON.parse(readFileSync(join(dir, 'history.json'), 'utf8')) as { rounds: Array<{ round: number; contributors: string[]; reports: Record<string, { privacy?: { epsilon: number; releases: number } }> }> };
    for (const record of history.rounds) {
      expect([...record.contributors].sort()).toEqual(['a', 'b']);
      expect(record.reports.a?.privacy?.releases).toBe(record.round);
      expect(Math.abs(record.reports.a!.privacy!.epsilon - epsilon(record.round)) / epsilon(record.round)).toBeLessThan(1e-9);
      expect(record.reports.b?.privacy).toBeUndefined();
    }
  });

  it('names a bad privacy flag', async () => {
    const fail = (args: string[]) =>
      run('node', [CLI, 'client', '--server', 'http://127.0.0.1:9', '--session', 's', '--data', 'x.csv', '--model', 'mlp', '--token', 't', ...args])
        .then(() => '', (e: { stderr: string }) => e.stderr);
    expect(await fail(['--privacy-clip', '2'])).toMatch(/--privacy-clip needs --privacy-noise Z/);
    expect(await fail(['--privacy-noise', '0'])).toMatch(/--privacy-noise must be a number > 0; got "0"/);
    expect(await fail(['--privacy-noise', '1', '--privacy-delta', '1'])).toMatch(/--privacy-delta must be a number in \(0, 1\); got "1"/);
  });
});
