/**
 * A deployment on one machine: `codistill server` with a session file, and `codistill client`
 * processes on their own CSV data and a shared IDX reference file — the commands a site runs,
 * as separate processes over loopback sockets.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { startServer } from '../server/fault-kit.js';
import { writeCsv, writeIdxImages } from '../../simulations/demo-sites.js';

const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');
const run = promisify(execFile);

describe('codistill server and codistill client', () => {
  it('run a DML session across processes on sites\' own files', { timeout: 400_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-deploy-'));
    const split = splitDataset(loadMnist(), { test: 0, reference: 200 }, 21);
    const site = (k: number) => {
      const rows = Array.from({ length: 400 }, (_, i) => k * 400 + i);
      return { x: Float32Array.from(rows.flatMap((r) => Array.from(split.pool.x.subarray(r * 784, (r + 1) * 784)))), y: Int32Array.from(rows, (r) => split.pool.y[r]!) };
    };
    for (const k of [0, 1]) writeCsv(join(dir, `site${k}.csv`), site(k).x, site(k).y);
    writeIdxImages(join(dir, 'reference-idx3-ubyte'), split.reference.x);
    const tokens = ['token-site-0-0123456789abcdef', 'token-site-1-0123456789abcdef'];
    writeFileSync(join(dir, 'session.yaml'), [
      'id: deploy-test', 'algorithm: dml', 'rounds: 2', 'numClasses: 10', 'referenceSize: 200',
      'participants:', ...tokens.map((t, k) => `  - { id: site-${k}, token: ${t} }`),
    ].join('\n'));

    const server = await startServer(['--config', join(dir, 'session.yaml'), '--port', '0', '--out', join(dir, 'history.json')]);
    const { url } = server;
    const client = (k: number) => run('node', [
      CLI, 'client', '--server', url, '--session', 'deploy-test', '--data', join(dir, `site${k}.csv`),
      '--reference', join(dir, 'reference-idx3-ubyte'), '--model', 'mlp', '--out', join(dir, `client${k}.json`),
    ], { env: { ...process.env, CODISTILL_TOKEN: tokens[k] }, timeout: 300_000 });
    const [c0, c1] = await Promise.all([client(0), client(1)]);
    await server.exited;

    for (const c of [c0, c1]) {
      expect(c.stdout).toMatch(/participant on \w+: 360 private samples \(40 held out for validation\), 200 reference samples, model mlp/);
      expect(c.stdout).toMatch(/round 1: learned from peers, loss \d+\.\d+, validation accuracy \d+\.\d%/);
      expect(c.stdout).toMatch(/session ended: completed 2 rounds/);
    }
    expect(server.output()).toMatch(/round 2\/2: 2 contributors, 2 reports/);
    const history = JSON.parse(readFileSync(join(dir, 'history.json'), 'utf8')) as { rounds: unknown[]; session: { participants: Array<Record<string, unknown>> } };
    expect(history.rounds).toHaveLength(2);
    // Tokens are secrets: the history names participants without them.
    expect(history.session.participants).toEqual([{ id: 'site-0' }, { id: 'site-1' }]);
    expect(readFileSync(join(dir, 'history.json'), 'utf8')).not.toContain(tokens[0]);
  });

  it('tells a site clearly what is wrong: a missing file, a rejected token, an unreachable server', async () => {
    const fail = (args: string[], env: Record<string, string> = {}) =>
      run('node', [CLI, 'client', ...args], { env: { ...process.env, ...env }, timeout: 120_000 }).then(() => '', (e: { stderr: string }) => e.stderr);
    const dir = mkdtempSync(join(tmpdir(), 'codistill-deploy-'));
    expect(await fail(['--server', 'http://127.0.0.1:9', '--session', 's', '--data', join(dir, 'nope.csv'), '--model', 'mlp', '--token', 'x'])).toMatch(/--data .*nope\.csv: no such file or folder/);
    // A malformed address fails at once, with the form to give (it used to retry for minutes).
    for (const server of ['http://127.0.0.1:8080:', 'ftp://127.0.0.1:21', 'https://host:99999', 'https://host:8443/path']) {
      expect(await fail(['--server', server, '--session', 's', '--data', join(dir, 'nope.csv'), '--model', 'mlp', '--token', 'x']), server)
        .toMatch(/--server ".*" is not a coordinator address: give https:\/\/HOST:PORT/);
    }
    const split = splitDataset(loadMnist(), { test: 0, reference: 0 }, 1);
    writeCsv(join(dir, 'site.csv'), split.pool.x.subarray(0, 784 * 50), split.pool.y.subarray(0, 50));
    writeFileSync(join(dir, 'session.yaml'), 'id: s\nalgorithm: fd\nrounds: 1\nnumClasses: 10\nparticipants:\n  - { id: a, token: the-real-token-0123456789 }\n');
    const server = await startServer(['--config', join(dir, 'session.yaml'), '--port', '0', '--out', join(dir, 'h.json')]);
    const { url } = server;
    try {
      expect(await fail(['--server', url, '--session', 's', '--data', join(dir, 'site.csv'), '--model', 'mlp'], { CODISTILL_TOKEN: 'a-wrong-token-0123456789' }))
        .toMatch(/E_AUTH: the token is not valid for any running session/);
    } finally {
      server.process.kill();
    }
    expect(await fail(['--server', url, '--session', 's', '--data', join(dir, 'site.csv'), '--model', 'mlp', '--token', 'x', '--reconnect-attempts', '3'])).toMatch(/could not reach the coordinator at http:\/\/127\.0\.0\.1:\d+/);
  });
});
