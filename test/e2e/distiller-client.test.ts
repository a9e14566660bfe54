/**
 * `codistill client --role distiller` as a site runs it: `codistill server` with a DML session of
 * two sites and a distiller, each a separate process over loopback; the distiller's --data is its
 * validation set only, and it learns on the shared reference file.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { startServer } from '../server/fault-kit.js';
import { writeCsv, writeIdxImages } from '../../simulations/demo-sites.js';

const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');
const run = promisify(execFile);

describe('codistill client --role distiller', () => {
  it('joins a DML session as its distiller, learns from the ensemble, validates on --data and saves its student', { timeout: 400_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-distiller-'));
    const split = splitDataset(loadMnist(), { test: 100, reference: 200 }, 21);
    const rows = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);
    const write = (path: string, indices: number[], source = split.pool) =>
      writeCsv(path, Float32Array.from(indices.flatMap((r) => Array.from(source.x.subarray(r * 784, (r + 1) * 784)))), Int32Array.from(indices, (r) => source.y[r]!));
    for (const k of [0, 1]) write(join(dir, `site${k}.csv`), rows(k * 400, 400));
    write(join(dir, 'validation.csv'), rows(0, 100), split.test);
    writeIdxImages(join(dir, 'reference-idx3-ubyte'), split.reference.x);
    const tokens = ['token-site-0-0123456789abcdef', 'token-site-1-0123456789abcdef', 'token-distiller-0123456789ab'];
    writeFileSync(join(dir, 'session.yaml'), [
      'id: distil-test', 'algorithm: dml', 'rounds: 2', 'numClasses: 10', 'referenceSize: 200', 'minParticipants: 2',
      'participants:', `  - { id: site-0, token: ${tokens[0]} }`, `  - { id: site-1, token: ${tokens[1]} }`, `  - { id: global, token: ${tokens[2]}, role: distiller }`,
    ].join('\n'));

    const server = await startServer(['--config', join(dir, 'session.yaml'), '--port', '0', '--out', join(dir, 'history.json')]);
    const client = (data: string, token: string, extra: string[]) => run('node', [
      CLI, 'client', '--server', server.url, '--session', 'distil-test', '--data', join(dir, data),
      '--reference', join(dir, 'reference-idx3-ubyte'), '--model', 'mlp', ...extra,
    ], { env: { ...process.env, CODISTILL_TOKEN: token }, timeout: 300_000 });
    const [distiller] = await Promise.all([
      client('validation.csv', tokens[2]!, ['--role', 'distiller', '--out', join(dir, 'distiller.json'), '--save', join(dir, 'global')]),
      ...[0, 1].map((k) => client(`site${k}.csv`, tokens[k]!, ['--out', join(dir, `client${k}.json`), '--no-save'])),
    ]);
    await server.exited;

    expect(distiller.stdout).toMatch(/distiller on \w+: no private data \(100 samples of --data for validation\), 200 reference samples, model mlp/);
    expect(distiller.stdout).toMatch(/round 2: learned from peers, loss \d+\.\d+, validation accuracy \d+\.\d%/);
    expect(distiller.stdout).toMatch(/session ended: completed 2 rounds/);
    expect(server.output()).toMatch(/round 2\/2: 2 contributors, 3 reports/);
    const log = JSON.parse(readFileSync(join(dir, 'distiller.json'), 'utf8')) as { participant: string; rounds: Array<{ train: { samples: number } }> };
    expect(log.participant).toBe('global');
    expect(log.rounds.map((r) => r.train.samples)).toEqual([200, 200]);
    const card = JSON.parse(readFileSync(join(dir, 'global', 'card.json'), 'utf8')) as { training: { role: string; trainSamples: number; data: { source: string } } };
    expect(card.training).toMatchObject({ role: 'distiller', trainSamples: 0 });
    expect(card.training.data.source).toMatch(/^the ensemble on --reference .*; --data .*validation\.csv for validation only$/);
    expect(existsSync(join(dir, 'global', 'model.json'))).toBe(true);
  });

  it('needs the reference set, and refuses privacy settings it has nothing to apply to', async () => {
    const fail = (args: string[]) =>
      run('node', [CLI, 'client', '--server', 'http://127.0.0.1:9', '--session', 's', '--token', 'x', '--model', 'mlp', '--role', 'distiller', ...args], { timeout: 60_000 })
        .then(() => '', (e: { stderr: string }) => e.stderr);
    expect(await fail(['--data', 'any.csv'])).toMatch(/--role distiller learns on the session's reference set: give it with --reference PATH/);
    expect(await fail(['--data', 'any.csv', '--reference', 'ref', '--privacy-noise', '1'])).toMatch(/--role distiller uploads nothing: --privacy-noise has nothing to protect/);
  });
});
