/**
 * The commands end to end on a tiny model: `codistill serve-lm` in a child process (with a bearer
 * token), then `codistill distill-lm --teacher-api` against it: exits 0, writes results.json with
 * the API teacher's counts and a word-level student, and prints neither the token nor the text.
 * Needs `npx tsc -p .` first (runs dist/).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { createLanguageModel } from '../../client/lm/model.js';
import { saveLanguageModel } from '../../client/student-io/index.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');
const TOKEN = 'sk-e2e-0a1b2c3d4e5f';

/** Cookies from Debian's fortunes-min (fortune-mod's "fortunes" file), documents separated by blank lines. */
const TEXT = [
  'A day for firm decisions!!!!!  Or is it?',
  'A few hours grace before the madness begins again.',
  'A gift of a flower will soon be made to you.',
  'A long-forgotten loved one will appear soon.  Buy the negatives at any price.',
  'A tall, dark stranger will have more fun than you.',
  'A visit to a fresh place will bring strange work.',
].join('\n\n');

beforeAll(async () => {
  await selectBackend('wasm');
});

it('serve-lm serves a saved model; distill-lm --teacher-api distills from it and writes its results', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'codistill-serve-lm-'));
  const model = createLanguageModel('transformer:d=16,l=1,h=2,ctx=16', 3);
  saveLanguageModel(join(dir, 'teacher'), model, {
    backend: 'wasm',
    training: { method: 'token-ce', steps: 0, batchSize: 1, learningRate: 0.001, seed: 3, data: { source: 'test', trainBytes: 0 } },
    metrics: {},
  });
  model.dispose();
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  writeFileSync(join(dir, 'text.txt'), TEXT);

  const server = spawn(process.execPath, [CLI, 'serve-lm', '--model', join(dir, 'teacher'), '--port', '0', '--top-k', '5', '--token-file', join(dir, 'token'), '--backend', 'wasm']);
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      server.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /at (http:\/\/\S+)/.exec(out);
        if (m !== null) resolve(m[1]!);
      });
      server.once('exit', (code) => reject(new Error(`serve-lm exited with ${code}: ${out}`)));
    });
    expect((await fetch(url, { method: 'POST', body: '{"text":"abc"}' })).status).toBe(401);

    const out = join(dir, 'run');
    const { stdout, stderr } = await run(process.execPath, [
      CLI, 'distill-lm', '--text', join(dir, 'text.txt'), '--student', 'transformer:d=16,l=1,h=2,ctx=16', '--methods', 'alone,word', '--steps', '3', '--batch-size', '2',
      '--held-out-fraction', '0.3', '--backend', 'wasm', '--teacher-api', url, '--teacher-api-token-file', join(dir, 'token'), '--api-top-k', '4', '--api-budget', '100', '--out', out,
    ]);
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as {
      apiTeacher: { topK: number; requests: number; retries: number; endpoint: string };
      teacher: { architecture: string; heldOut: { mixed: number } };
      students: Array<{ method: string; heldOut: { mixed: number } }>;
    };
    expect(results.apiTeacher.topK).toBe(4);
    expect(results.apiTeacher.requests).toBeGreaterThan(0);
    expect(results.apiTeacher.requests).toBeLessThanOrEqual(100);
    expect(results.teacher.architecture).toBe('API teacher (top-k answers)');
    expect(Number.isFinite(results.teacher.heldOut.mixed)).toBe(true);
    expect(results.students.map((s) => s.method)).toEqual(['alone', 'word']);
    for (const line of [stdout, stderr, readFileSync(join(out, 'results.json'), 'utf8')]) {
      expect(line).not.toContain(TOKEN);
      expect(line).not.toContain('madness');
    }

    // A budget too small stops the run with E_BUDGET and exit 1.
    const refused = await run(process.execPath, [CLI, 'distill-lm', '--text', join(dir, 'text.txt'), '--student', 'transformer:d=16,l=1,h=2,ctx=16', '--methods', 'word', '--steps', '3', '--batch-size', '2', '--held-out-fraction', '0.3', '--backend', 'wasm', '--teacher-api', url, '--teacher-api-token-file', join(dir, 'token'), '--api-budget', '1', '--out', join(dir, 'run2')]).catch((e: { code: number; stderr: string }) => e);
    expect((refused as { code: number }).code).toBe(1);
    expect((refused as { stderr: string }).stderr).toMatch(/E_BUDGET: the API teacher's budget of 1 requests is spent/);
  } finally {
    server.kill('SIGTERM');
  }
}, 120_000);
