/**
 * An API teacher inside a session: `codistill client --role teacher --teacher-api URL` beside a
 * learning text site, against a real coordinator process, over loopback sockets. The endpoint is
 * serve-lm on a saved tiny model, reached through a local proxy that answers garbage for the
 * windows only round 2 asks about: rounds 1 and 3 list the teacher among the contributors, round
 * 2 goes on without it (the teacher says why and stays joined), the session completes, and
 * neither the bearer token nor any byte of the text appears in the teacher's output.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { rowWindow } from '../../client/lm/api-teacher.js';
import { createLanguageModel } from '../../client/lm/model.js';
import { referenceWindows, windowFeatures } from '../../client/lm/site.js';
import { loadLanguageModel, saveLanguageModel } from '../../client/student-io/index.js';
import { referenceDigest } from '../../protocol/sha256.js';
import { referenceIdsForRound } from '../../server/strategies/reference-ids.js';
import { startLmServer } from '../../simulations/serve-lm.js';
import { startCli, startServer } from '../server/fault-kit.js';
import { DE, EN } from './fortune-slices.js';

const PUBLIC = `${EN[4]}\n${DE[3]}\n${EN[5]}\n${DE[5]}\n`;
const API_TOKEN = 'sk-session-test-7a6b5c4d3e2f';
const TOKENS = { learner: 'token-site-en-0123456789abcdef', teacher: 'token-api-teacher-0123456789ab' };
const PER_ROUND = 4;
const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');
const run = promisify(execFile);
const SEED = 1;

let served: Awaited<ReturnType<typeof startLmServer>>;
let dir: string;

beforeAll(async () => {
  await selectBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'codistill-api-session-'));
  const model = createLanguageModel('transformer:d=16,l=1,h=2,ctx=16', 3);
  saveLanguageModel(join(dir, 'teacher'), model, {
    backend: 'wasm',
    training: { method: 'token-ce', steps: 0, batchSize: 1, learningRate: 0.001, seed: 3, data: { source: 'test', trainBytes: 0 } },
    metrics: {},
  });
  model.dispose();
  served = await startLmServer(loadLanguageModel(join(dir, 'teacher')).model, { host: '127.0.0.1', port: 0, maxTopK: 10, token: API_TOKEN });
});
afterAll(async () => {
  await served?.close();
});

describe('codistill client --role teacher --teacher-api', () => {
  it('shares the API\'s per-token predictions in the rounds it answers, sits out a round answered with garbage, and stays for the next', { timeout: 300_000 }, async () => {
    writeFileSync(join(dir, 'en.txt'), `${EN.slice(0, 4).join('\n\n')}\n`);
    writeFileSync(join(dir, 'public.txt'), PUBLIC);
    writeFileSync(join(dir, 'api-token'), `${API_TOKEN}\n`);
    const windows = referenceWindows([PUBLIC], 16);
    const ids = [1, 2, 3].map((round) => referenceIdsForRound(windows.count, PER_ROUND, SEED, round));
    // Windows only round 2 asks about: answered with garbage, so round 2 (and only it) fails.
    const garbage = new Set(ids[1]!.filter((id) => !ids[0]!.includes(id) && !ids[2]!.includes(id)).map((id) => rowWindow(windows, id).join(',')));
    expect(garbage.size).toBeGreaterThan(0);

    const seen = { forwarded: 0, garbage: 0, unauthorised: 0 };
    const proxy = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        if (req.headers.authorization !== `Bearer ${API_TOKEN}`) {
          seen.unauthorised++;
          res.writeHead(401).end();
          return;
        }
        const body = Buffer.concat(chunks).toString('utf8');
        const { tokens } = JSON.parse(body) as { tokens: number[] };
        if (garbage.has(tokens.join(','))) {
          seen.garbage++;
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ top_ids: [[1, 1, 2]], top_logprobs: [['nonsense']] }));
          return;
        }
        seen.forwarded++;
        const answer = await fetch(served.url, { method: 'POST', headers: { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json' }, body });
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end(Buffer.from(await answer.arrayBuffer()));
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/v1/logprobs`;

    writeFileSync(join(dir, 'session.yaml'), [
      'id: lm-api', 'algorithm: dml', 'rounds: 3', 'numClasses: 257', `referenceSize: ${windows.count}`, `referenceDigest: ${referenceDigest(windowFeatures(windows))}`,
      `referencePerRound: ${PER_ROUND}`, `seed: ${SEED}`, 'temperature: 2', 'alpha: 0.5', 'tokenizer: { kind: bytes, encoding: utf-8, vocabSize: 257, bos: 256 }', 'positions: 16',
      // Round 2 waits this long for the teacher that does not upload, then goes on without it.
      'roundTimeoutMs: 15000', 'minParticipants: 1', 'minToStart: 2',
      'participants:', `  - { id: site-en, token: ${TOKENS.learner} }`, `  - { id: api-teacher, token: ${TOKENS.teacher}, role: teacher }`,
    ].join('\n'));
    const server = await startServer(['--config', join(dir, 'session.yaml'), '--port', '0', '--out', join(dir, 'history.json')]);
    try {
      const teacher = startCli([
        'client', '--server', server.url, '--session', 'lm-api', '--role', 'teacher', '--teacher-api', endpoint, '--teacher-api-token-file', join(dir, 'api-token'),
        '--api-top-k', '5', '--api-budget', '100', '--positions', '16', '--reference-text', join(dir, 'public.txt'), '--out', join(dir, 'teacher.json'), '--backend', 'wasm',
      ], { CODISTILL_TOKEN: TOKENS.teacher });
      const learner = startCli([
        'client', '--server', server.url, '--session', 'lm-api', '--text', join(dir, 'en.txt'), '--reference-text', join(dir, 'public.txt'),
        '--model', 'transformer:d=16,l=1,h=2,ctx=16', '--steps', '2', '--batch-size', '4', '--held-out', '0', '--no-save', '--out', join(dir, 'learner.json'), '--backend', 'wasm',
      ], { CODISTILL_TOKEN: TOKENS.learner });
      const codes = await Promise.all([teacher.exited, learner.exited, server.exited]);
      expect(codes, `teacher:\n${teacher.output()}\nlearner:\n${learner.output()}\nserver:\n${server.output()}`).toEqual([0, 0, 0]);

      // The coordinator's record: the teacher contributed to rounds 1 and 3, not to round 2.
      const history = JSON.parse(readFileSync(join(dir, 'history.json'), 'utf8')) as { rounds: Array<{ round: number; contributors: string[] }> };
      expect(history.rounds.map((r) => [r.round, [...r.contributors].sort()])).toEqual([[1, ['api-teacher', 'site-en']], [2, ['site-en']], [3, ['api-teacher', 'site-en']]]);

      const out = teacher.output();
      expect(out).toMatch(/language-model teacher on wasm: the API at http:\/\/127\.0\.0\.1:\d+\/v1\/logprobs \(top 5 per position, budget 100 requests\), \d+ reference windows of 16 bytes/);
      expect(out).toMatch(new RegExp(`round 1: shared the API teacher's predictions on ${PER_ROUND} windows \\(${PER_ROUND} requests, 0 from the cache`));
      expect(out).toMatch(/round 2: nothing shared: E_TEACHER_ANSWER: the answer for window \d+: has 1 rows of ids and 1 of log-probabilities; the window has 16 positions/);
      expect(out).toMatch(/round 3: shared the API teacher's predictions on 4 windows/);
      expect(out).toMatch(/session ended: completed 3 rounds/);
      const log = JSON.parse(readFileSync(join(dir, 'teacher.json'), 'utf8')) as { apiTeacher: { requests: number; rounds: Array<{ round: number; shared: boolean }> } };
      expect(log.apiTeacher.rounds.map((r) => [r.round, r.shared])).toEqual([[1, true], [2, false], [3, true]]);
      expect(log.apiTeacher.requests).toBe(seen.forwarded + seen.garbage);
      expect(seen.unauthorised).toBe(0);
      expect(seen.garbage).toBeGreaterThan(0);

      // Never the bearer token, never the text: not in its output, not in its round log.
      const written = `${out}\n${readFileSync(join(dir, 'teacher.json'), 'utf8')}`;
      expect(written).not.toContain(API_TOKEN);
      for (const id of ids.flat()) expect(written).not.toContain(Buffer.from(rowWindow(windows, id)).toString('utf8'));
      expect(written).not.toContain(EN[5]!.slice(0, 12));
      expect(learner.output()).toMatch(/session ended: completed 3 rounds/);
    } finally {
      server.process.kill();
      proxy.closeAllConnections();
      proxy.close();
    }
  });

  it('is refused, before it connects, when it is not a teacher, is given a model, or lacks --positions', { timeout: 120_000 }, async () => {
    writeFileSync(join(dir, 'public.txt'), PUBLIC);
    const fail = async (...extra: string[]) => {
      const error = await run(process.execPath, [
        CLI, 'client', '--server', 'http://127.0.0.1:9', '--session', 's', '--token', 'x', '--reference-text', join(dir, 'public.txt'), '--teacher-api', 'http://127.0.0.1:9/v1/logprobs', ...extra,
      ], { timeout: 60_000 }).then(() => undefined, (e: { code: number; stderr: string }) => e);
      expect(error, 'the client must fail').toBeDefined();
      expect(error!.code).not.toBe(0);
      return error!.stderr;
    };
    expect(await fail('--positions', '16')).toContain('--teacher-api makes a teacher (it shares the API\'s predictions and never trains): give --role teacher, not participant');
    expect(await fail('--positions', '16', '--role', 'teacher', '--model', join(dir, 'teacher'))).toContain('--teacher-api: the API is the model; drop --model');
    expect(await fail('--role', 'teacher')).toContain('codistill client: missing --positions');
  });
});
