/**
 * Language models across sites, deployed: `codistill server` on a session file of per-token
 * knowledge (tokenizer, positions, the reference windows' count and digest) and one
 * `codistill client --text` process per site on its own text file and the shared reference text —
 * the commands a site runs, as separate processes over loopback sockets; each saves its language
 * model, which `codistill generate` then writes with. A site whose tokenizer is not the session's
 * is refused at its join with a message naming both.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { referenceWindows, windowFeatures } from '../../client/lm/site.js';
import { loadLanguageModel } from '../../client/student-io/index.js';
import { referenceDigest } from '../../protocol/sha256.js';
import { startServer } from '../server/fault-kit.js';
import { DE, EN } from './fortune-slices.js';

const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');
const run = promisify(execFile);
const MODEL = 'transformer:d=16,l=1,h=2,ctx=16';
/** The shared reference text: both languages, none of it any site's private text. */
const PUBLIC = `${EN[4]}\n${DE[3]}\n${EN[5]}\n${DE[5]}\n`;
const TOKENS = ['token-site-en-0123456789abcdef', 'token-site-de-0123456789abcdef'];

function sessionFile(path: string, id: string, reference: { size: number; digest: string }, tokenizer = '{ kind: bytes, encoding: utf-8, vocabSize: 257, bos: 256 }', numClasses = 257, algorithm = ['algorithm: dml', 'referencePerRound: 6']): void {
  writeFileSync(path, [
    `id: ${id}`, ...algorithm, 'rounds: 2', `numClasses: ${numClasses}`, `referenceSize: ${reference.size}`, `referenceDigest: ${reference.digest}`,
    'temperature: 2', 'alpha: 0.5', `tokenizer: ${tokenizer}`, 'positions: 16',
    'participants:', `  - { id: site-en, token: ${TOKENS[0]} }`, `  - { id: site-de, token: ${TOKENS[1]} }`,
  ].join('\n'));
}

describe('codistill server and codistill client --text', () => {
  it('run a DML session of per-token knowledge across processes on sites\' own text files; each saves its model; generate writes with one', { timeout: 400_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-lm-deploy-'));
    writeFileSync(join(dir, 'en.txt'), `${EN.slice(0, 4).join('\n\n')}\n`);
    writeFileSync(join(dir, 'de.txt'), `${DE.slice(0, 4).join('\n\n')}\n`);
    writeFileSync(join(dir, 'public.txt'), PUBLIC);

    // The operator's step: the reference windows' count and digest, for the session file.
    const printed = await run('node', [CLI, 'client', '--reference-text', join(dir, 'public.txt'), '--positions', '16', '--print-reference-digest'], { timeout: 60_000 });
    const windows = referenceWindows([PUBLIC], 16);
    const digest = referenceDigest(windowFeatures(windows));
    expect(printed.stdout).toBe(`referenceSize: ${windows.count}\nreferenceDigest: ${digest}\npositions: 16\n`);
    expect(windows.count).toBe(Math.floor(Buffer.byteLength(PUBLIC) / 16));
    sessionFile(join(dir, 'session.yaml'), 'lm-deploy', { size: windows.count, digest });

    const server = await startServer(['--config', join(dir, 'session.yaml'), '--port', '0', '--out', join(dir, 'history.json')]);
    const client = (k: number, language: string) => run('node', [
      CLI, 'client', '--server', server.url, '--session', 'lm-deploy', '--text', join(dir, `${language}.txt`), '--reference-text', join(dir, 'public.txt'),
      '--model', MODEL, '--steps', '3', '--batch-size', '4', '--held-out', '0.25', '--seed', String(k + 1),
      '--out', join(dir, `${language}-rounds.json`), '--save', join(dir, `${language}-model`),
    ], { env: { ...process.env, CODISTILL_TOKEN: TOKENS[k] }, timeout: 300_000 });
    const [en, de] = await Promise.all([client(0, 'en'), client(1, 'de')]);
    await server.exited;

    for (const [c, language] of [[en, 'en'], [de, 'de']] as const) {
      expect(c.stdout).toMatch(new RegExp(`language-model participant on \\w+: \\d+ bytes of private text, \\d+ held out, ${windows.count} reference windows of 16 bytes; model ${MODEL.replace(/[=,]/g, '.')} \\(\\d+ parameters\\)`));
      expect(c.stdout).toMatch(/round 1: learned from peers, loss \d+\.\d+, held-out \d+\.\d+ bits per byte/);
      expect(c.stdout).toMatch(/round 2: learned from peers/);
      expect(c.stdout).toMatch(/session ended: completed 2 rounds/);
      expect(c.stdout).toContain(`language model saved to ${join(dir, `${language}-model`)}`);
      const log = JSON.parse(readFileSync(join(dir, `${language}-rounds.json`), 'utf8')) as { rounds: Array<{ receivedTarget: boolean; bitsPerByte: number; train: { steps: number } }> };
      expect(log.rounds.map((r) => [r.receivedTarget, r.train.steps])).toEqual([[true, 3], [true, 3]]);
      // The saved model: the session's tokenizer, its architecture, and the held-out figure of its last round.
      const saved = loadLanguageModel(join(dir, `${language}-model`));
      expect(saved.card?.tokenizer).toMatchObject({ kind: 'bytes', encoding: 'utf-8', vocabSize: 257, bos: 256 });
      expect(saved.card?.model.architecture).toBe(MODEL);
      expect(saved.card?.metrics.heldOut?.bitsPerByte).toBeCloseTo(log.rounds[1]!.bitsPerByte, 10);
      expect(saved.card?.training.steps).toBe(6);
      saved.model.dispose();
    }
    expect(server.output()).toMatch(/round 2\/2: 2 contributors, 2 reports, \d+\.\d KiB up/);
    const history = JSON.parse(readFileSync(join(dir, 'history.json'), 'utf8')) as { rounds: Array<{ contributors: string[]; referenceCount: number }> };
    expect(history.rounds.map((r) => [r.contributors.sort(), r.referenceCount])).toEqual([[['site-de', 'site-en'], 6], [['site-de', 'site-en'], 6]]);

    const written = await run('node', [CLI, 'generate', '--model', join(dir, 'en-model'), '--prompt', 'A ', '--max-tokens', '12', '--temperature', '0'], { timeout: 60_000 });
    expect(written.stdout.startsWith('A ')).toBe(true);
    expect(Buffer.byteLength(written.stdout)).toBeGreaterThan(2);
  });

  it('run co-distillation (asynchronous, per-token predictions pushed and pulled on reference shards) across processes', { timeout: 400_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-lm-deploy-'));
    writeFileSync(join(dir, 'en.txt'), `${EN.slice(0, 4).join('\n\n')}\n`);
    writeFileSync(join(dir, 'de.txt'), `${DE.slice(0, 4).join('\n\n')}\n`);
    writeFileSync(join(dir, 'public.txt'), PUBLIC);
    const windows = referenceWindows([PUBLIC], 16);
    sessionFile(join(dir, 'session.yaml'), 'lm-codist', { size: windows.count, digest: referenceDigest(windowFeatures(windows)) }, undefined, undefined,
      ['algorithm: codistillation', 'async: { shards: 2, exchangeEvery: 2, burnInSteps: 0, stalenessMs: 300000 }']);
    const server = await startServer(['--config', join(dir, 'session.yaml'), '--port', '0', '--out', join(dir, 'history.json')]);
    const client = (k: number, language: string) => run('node', [
      CLI, 'client', '--server', server.url, '--session', 'lm-codist', '--text', join(dir, `${language}.txt`), '--reference-text', join(dir, 'public.txt'),
      '--model', MODEL, '--steps', '4', '--batch-size', '4', '--seed', String(k + 1), '--out', join(dir, `${language}-rounds.json`), '--save', join(dir, `${language}-model`),
    ], { env: { ...process.env, CODISTILL_TOKEN: TOKENS[k] }, timeout: 300_000 });
    const [en, de] = await Promise.all([client(0, 'en'), client(1, 'de')]);
    await server.exited;
    // Each checkpoint: two pushes (shard 0, shard 1: every window once, 16 positions × 257 float32) and two pulls.
    const payload = windows.count * 16 * 257 * 4;
    for (const [c, language] of [[en, 'en'], [de, 'de']] as const) {
      expect(c.stdout).toMatch(/joined lm-codist as site-\w+ \(codistillation/);
      expect(c.stdout).toMatch(/round 2: learned from peers, loss \d+\.\d+, held-out \d+\.\d+ bits per byte/);
      expect(c.stdout).toMatch(/session ended: completed 2 checkpoints/);
      const log = JSON.parse(readFileSync(join(dir, `${language}-rounds.json`), 'utf8')) as { rounds: Array<{ train: { steps: number }; bytesUp: number }> };
      expect(log.rounds.map((r) => r.train.steps)).toEqual([4, 4]);
      for (const r of log.rounds) expect(r.bytesUp).toBeGreaterThan(payload);
      const saved = loadLanguageModel(join(dir, `${language}-model`));
      expect(saved.card?.training.method).toMatch(/^codistillation in session lm-codist/);
      saved.model.dispose();
    }
    expect(server.output()).toMatch(/round 2\/2: 2 contributors, 2 reports/);
  });

  it('refuses a site whose tokenizer is not the session\'s, naming both; a reference text that differs, naming the digests', { timeout: 200_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-lm-deploy-'));
    writeFileSync(join(dir, 'en.txt'), `${EN.join('\n\n')}\n`);
    writeFileSync(join(dir, 'public.txt'), PUBLIC);
    const windows = referenceWindows([PUBLIC], 16);
    const reference = { size: windows.count, digest: referenceDigest(windowFeatures(windows)) };
    const fail = async (session: string, url: string, publicText: string) => {
      const error = await run('node', [
        CLI, 'client', '--server', url, '--session', session, '--text', join(dir, 'en.txt'), '--reference-text', publicText, '--model', MODEL, '--no-save', '--reconnect-attempts', '0',
      ], { env: { ...process.env, CODISTILL_TOKEN: TOKENS[0] }, timeout: 120_000 }).then(() => undefined, (e: { code: number; stderr: string }) => e);
      expect(error, 'the client must fail').toBeDefined();
      expect(error!.code).not.toBe(0);
      return error!.stderr;
    };

    // A teacher never trains: an untrained model built here would teach noise.
    const teacher = await run('node', [CLI, 'client', '--server', 'http://127.0.0.1:9', '--session', 's', '--text', join(dir, 'en.txt'), '--reference-text', join(dir, 'public.txt'), '--model', MODEL, '--role', 'teacher', '--token', 'x'], { timeout: 60_000 })
      .then(() => '', (e: { stderr: string }) => e.stderr);
    expect(teacher).toContain(`--role teacher shares a trained model's predictions and never trains: give --model DIR (a saved language model), not ${MODEL}`);

    // Token ids of another tokenizer (here a vocabulary of 258 with BOS 257) would mean different things: refused at the join.
    sessionFile(join(dir, 'other.yaml'), 'lm-other', reference, '{ kind: bytes, encoding: utf-8, vocabSize: 258, bos: 257 }', 258);
    const other = await startServer(['--config', join(dir, 'other.yaml'), '--port', '0', '--out', join(dir, 'h1.json')]);
    try {
      expect(await fail('lm-other', other.url, join(dir, 'public.txt'))).toContain(
        "E_TOKENIZER: site-en's tokenizer {kind=bytes, encoding=utf-8, vocabSize=257, bos=256} is not session lm-other's {kind=bytes, encoding=utf-8, vocabSize=258, bos=257}: token ids would mean different things",
      );
    } finally {
      other.process.kill();
    }

    // The same number of windows from another text: refused by the digest the session file pins.
    const altered = PUBLIC.replace('fool', 'Fool');
    writeFileSync(join(dir, 'altered.txt'), altered);
    sessionFile(join(dir, 'same.yaml'), 'lm-same', reference);
    const same = await startServer(['--config', join(dir, 'same.yaml'), '--port', '0', '--out', join(dir, 'h2.json')]);
    try {
      const theirs = referenceDigest(windowFeatures(referenceWindows([altered], 16)));
      expect(await fail('lm-same', same.url, join(dir, 'altered.txt'))).toContain(
        `E_REFERENCE: site-en's reference set has digest ${theirs.slice(0, 12)}…; session lm-same's is ${reference.digest.slice(0, 12)}… (from the session config)`,
      );
    } finally {
      same.process.kill();
    }
  });
});
