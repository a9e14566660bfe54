/**
 * Language models through the built CLI: `codistill distill-lm` on a small slice of text (one
 * UTF-8 file per domain) trains a teacher and three students, writes results.json and saves each
 * model with its card; `codistill generate` continues a prompt with a saved student (greedy is
 * repeatable, sampling repeats with its seed); bad options and folders are refused with exit 2
 * and a message naming them.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import type { LmDistillResult } from '../../client/lm/distill.js';
import type { LmCard } from '../../client/student-io/index.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');
const codistill = (args: string[]) => run('node', [CLI, ...args], { timeout: 240_000 });
const failure = (args: string[]) => codistill(args).then(() => { throw new Error('expected a failure'); }, (e: { code: number; stderr: string }) => e);

/** Two domains: a slice of Debian's fortunes-min (English) and of fortunes-de (German), documents separated by blank lines. */
const EN = ['A day for firm decisions!!!!!  Or is it?', 'A few hours grace before the madness begins again.', 'A gift of a flower will soon be made to you.', 'A long-forgotten loved one will appear soon.  Buy the negatives at any price.', 'A tall, dark stranger will have more fun than you.'];
const DE = ['Wer anderen eine Grube gräbt, fällt selbst hinein.', 'Morgenstund hat Gold im Mund.', 'Was du heute kannst besorgen, das verschiebe nicht auf morgen.', 'Ohne Fleiß kein Preis.', 'Übung macht den Meister.'];

describe('distill-lm and generate through the CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'codistill-lm-cli-'));
  const out = join(dir, 'run');
  let result: LmDistillResult;
  let stdout: string;

  beforeAll(async () => {
    writeFileSync(join(dir, 'en.txt'), EN.join('\n\n'));
    writeFileSync(join(dir, 'de.txt'), DE.join('\n\n'));
    ({ stdout } = await codistill(['distill-lm', '--text', join(dir, 'en.txt'), '--text', join(dir, 'de.txt'), '--teacher', 'transformer:d=32,l=1,h=2,ctx=32', '--student', 'gru:d=16,l=1,ctx=32',
      '--teacher-steps', '30', '--steps', '10', '--batch-size', '8', '--seq-samples', '16', '--held-out-fraction', '0.2', '--backend', 'wasm', '--out', out]));
    result = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as LmDistillResult;
  }, 300_000);

  it('trains the teacher and the three students, prints progress and writes bits per byte per domain and mixed', () => {
    expect(stdout).toMatch(/teacher step 30\/30/);
    expect(stdout).toContain(`results written to ${join(out, 'results.json')}`);
    expect(result.students.map((s) => s.method)).toEqual(['alone', 'word', 'sequence']);
    for (const e of [result.teacher.heldOut, ...result.students.map((s) => s.heldOut)]) {
      expect(Object.keys(e.perDomain)).toEqual(['en', 'de']);
      expect(e.mixed).toBeGreaterThan(0);
      expect(e.mixed).toBeLessThan(9);
    }
    // 30 steps take the teacher well below the uniform log2(257) ≈ 8.006 bits per byte.
    expect(result.teacher.heldOut.mixed).toBeLessThan(7.5);
    // The sequence-level student also trained on the teacher's 16 sequences.
    expect(result.students[2]!.trainBytes).toBeGreaterThan(result.students[0]!.trainBytes);
    const card = JSON.parse(readFileSync(join(out, 'students', 'word', 'card.json'), 'utf8')) as LmCard;
    expect(card).toMatchObject({ task: 'language-modelling', tokenizer: { kind: 'bytes', vocabSize: 257, bos: 256 }, model: { architecture: 'gru:d=16,l=1,ctx=32' }, training: { teacher: 'transformer:d=32,l=1,h=2,ctx=32' } });
    expect(card.metrics.heldOut!.bitsPerByte).toBeCloseTo(result.students[1]!.heldOut.mixed, 10);
  });

  it('generate continues the prompt; greedy repeats itself; a sample repeats with its seed', async () => {
    const args = ['generate', '--model', join(out, 'teacher'), '--prompt', 'A gift', '--max-tokens', '20', '--backend', 'wasm'];
    const greedy = (await codistill([...args, '--temperature', '0'])).stdout;
    expect(greedy.startsWith('A gift')).toBe(true);
    expect((await codistill([...args, '--temperature', '0'])).stdout).toBe(greedy);
    const sampled = (await codistill([...args, '--temperature', '1', '--top-k', '10', '--seed', '4'])).stdout;
    expect((await codistill([...args, '--temperature', '1', '--top-k', '10', '--seed', '4'])).stdout).toBe(sampled);
  }, 120_000);

  it('refuses bad options and folders that hold no language model, naming them', async () => {
    expect(await failure(['generate', '--model', join(out, 'teacher'), '--prompt', 'x', '--temperature=-1'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/temperature must be a finite number ≥ 0/) });
    expect(await failure(['generate', '--model', join(dir, 'nowhere'), '--prompt', 'x'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/nowhere\/model\.json: no such file/) });
    expect(await failure(['generate', '--prompt', 'x'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--model DIR is required/) });
    expect(await failure(['distill-lm', '--methods', 'alone,beam'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown method "beam"/) });
    expect(await failure(['distill-lm', '--student', 'transformer:d=30,l=1,h=4,ctx=32', '--text', join(dir, 'en.txt')])).toMatchObject({ code: 2, stderr: expect.stringMatching(/not divisible/) });
  }, 60_000);
});
