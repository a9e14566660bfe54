/**
 * `codistill simulate --plan` on a text config: the plan (session file of per-token knowledge, the
 * shared reference text, each site's private and held-out text) run as separate processes —
 * `codistill server` on its session file and one `codistill client --partition PLAN#i` per site —
 * computes what the in-process text simulation of the same config computes, bit for bit: every
 * site's held-out bits per byte each round. Same split, reference windows, seeds, batches and
 * aggregation order (contributions sorted by participant id).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { referenceWindows, windowFeatures } from '../../client/lm/site.js';
import { referenceDigest } from '../../protocol/sha256.js';
import { readSessionConfig } from '../../server/cli.js';
import type { TextSimulationResult } from '../../simulations/text-sessions.js';
import { fortunesRoot } from '../e2e/fortune-slices.js';
import { startCli, startServer } from '../server/fault-kit.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');

const config = (root: string) => [
  `data: { source: text, domains: [en, de], root: ${root} }`,
  'algorithm: dml', 'participants: 2', 'rounds: 2', 'seed: 4', 'batchSize: 4', 'learningRate: 0.003', 'referencePerRound: 4',
  'temperature: 2', 'alpha: 0.5', 'uploadDtype: float32', 'baseline: false',
  'lm: { model: "transformer:d=16,l=1,h=2,ctx=16", steps: 2, maxBytesPerDomain: 1000, heldOutFraction: 0.3, referenceBytesPerDomain: 60 }', '',
].join('\n');

describe('simulate --plan on text and client --partition', () => {
  it('a planned text run across processes equals the in-process text simulation, bit for bit', { timeout: 400_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-lm-plan-'));
    writeFileSync(join(dir, 'lm.yaml'), config(fortunesRoot()));
    const plan = join(dir, 'plan');
    const written = await run('node', [CLI, 'simulate', '--config', join(dir, 'lm.yaml'), '--plan', plan, '--plan-server', 'http://127.0.0.1:8443'], { timeout: 120_000 });
    expect(written.stdout).toMatch(new RegExp(`plan written to ${plan}/: session text-dml-4 \\(dml, 2 rounds\\), 2 language-model sites \\(p0 en, p1 de\\), \\d+ reference windows of 16 bytes`));

    // The session file: per-token settings, and the reference windows' count and digest of the reference text written beside it.
    const session = readSessionConfig(join(plan, 'session.json'));
    const windows = referenceWindows([readFileSync(join(plan, 'reference.txt'), 'utf8')], 16);
    expect(session).toMatchObject({ tokenizer: { kind: 'bytes', encoding: 'utf-8', vocabSize: 257, bos: 256 }, positions: 16, numClasses: 257, referenceSize: windows.count, referencePerRound: 4 });
    expect(session.referenceDigest).toBe(referenceDigest(windowFeatures(windows)));
    expect(statSync(join(plan, 'session.json')).mode & 0o077).toBe(0); // tokens: the owner's only
    expect(readFileSync(join(plan, 'launch.txt'), 'utf8').trim().split('\n')).toEqual([0, 1].map((i) => `codistill client --partition ${plan}#${i} --server http://127.0.0.1:8443`));
    expect(readFileSync(join(plan, 'README.txt'), 'utf8')).toContain(`codistill server --config ${plan}/session.json`);

    const server = await startServer(['--config', join(plan, 'session.json'), '--port', '0', '--out', join(plan, 'history.json')]);
    const clients = [0, 1].map((i) => startCli(['client', '--partition', `${plan}#${i}`, '--server', server.url]));
    const codes = await Promise.all(clients.map((c) => c.exited));
    expect(codes, clients.map((c) => c.output()).join('\n----\n')).toEqual([0, 0]);
    expect(await server.exited).toBe(0);

    const out = join(dir, 'in-process');
    await run('node', [CLI, 'simulate', '--config', join(dir, 'lm.yaml'), '--no-save', '--out', out], { timeout: 300_000 });
    const [simulated] = (JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as TextSimulationResult).runs;
    for (const i of [0, 1]) {
      const log = JSON.parse(readFileSync(join(plan, `p${i}`, 'rounds.json'), 'utf8')) as { rounds: Array<{ round: number; bitsPerByte: number; receivedTarget: boolean }> };
      const rows = simulated!.rows.filter((r) => r.participant === `p${i}`);
      expect(log.rounds.map((r) => [r.round, r.receivedTarget, r.bitsPerByte])).toEqual(rows.map((r) => [r.round, r.receivedTarget, r.ownBitsPerByte]));
      expect(statSync(join(plan, `p${i}`, 'student', 'model.json')).isFile()).toBe(true);
    }
  });

  it('refuses a local-only text plan: there is no session', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-lm-plan-'));
    writeFileSync(join(dir, 'lm.yaml'), config(fortunesRoot()));
    const failed = await run('node', [CLI, 'simulate', '--config', join(dir, 'lm.yaml'), '--algorithm', 'local', '--plan', join(dir, 'plan')], { timeout: 120_000 })
      .then(() => '', (e: { stderr: string }) => e.stderr);
    expect(failed).toMatch(/--plan: local-only language models exchange nothing/);
  });
});
