/**
 * Black-box distillation from a language model behind HTTP: serve-lm's answers against the
 * model's own log-softmax, and the API teacher against real servers on 127.0.0.1 — the budget,
 * retries on 500 and timeouts, the cache (request counts, memory and disk), every kind of
 * garbage answer refused by name, the spread of the top-k rows, the answered teacher in
 * training, and that neither the bearer token nor the text is ever logged.
 */
import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { toSequences } from '../../client/data/text.js';
import { answeredTeacher, ApiTeacher, plannedTrainingRows, rowWindow, validateAnswer } from '../../client/lm/api-teacher.js';
import { createLanguageModel, type LanguageModel } from '../../client/lm/model.js';
import { BOS, BYTE_VOCAB, encodeText } from '../../client/lm/tokenizer.js';
import { trainLanguageModel } from '../../client/lm/train.js';
import { answerLogprobs, startLmServer } from '../../simulations/serve-lm.js';

/** Two cookies from Debian's fortunes-min (fortune-mod's "fortunes" file). */
const COOKIES = ['A day for firm decisions!!!!!  Or is it?', 'A few hours grace before the madness begins again.'];
const TOKEN = 'sk-test-9f8e7d6c5b4a';
const CTX = 16;

let model: LanguageModel;
let served: Awaited<ReturnType<typeof startLmServer>>;

/** A server whose answer the test chooses per request; counts what it receives. */
async function scriptedServer(handle: (n: number, body: { tokens: number[]; top_k: number }, res: ServerResponse, req: IncomingMessage) => void) {
  let hits = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(++hits, JSON.parse(Buffer.concat(chunks).toString('utf8')) as { tokens: number[]; top_k: number }, res, req));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/logprobs`,
    hits: () => hits,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
};

beforeAll(async () => {
  await selectBackend('wasm');
  model = createLanguageModel(`transformer:d=16,l=1,h=2,ctx=${CTX}`, 5);
  served = await startLmServer(model, { host: '127.0.0.1', port: 0, maxTopK: 10, token: TOKEN });
});
afterAll(async () => {
  await served.close();
  model.dispose();
});

const teacher = (extra: Partial<ConstructorParameters<typeof ApiTeacher>[0]> = {}) =>
  new ApiTeacher({ endpoint: served.url, token: TOKEN, topK: 5, vocab: BYTE_VOCAB, maxRequests: 100, backoffMs: 5, ...extra });

describe('serve-lm', () => {
  it('answers per position the top-k of the model\'s own log-softmax, given BOS and the bytes before', async () => {
    const text = COOKIES[0]!.slice(0, CTX);
    const res = await fetch(served.url, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ text, top_k: 4 }) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { top_ids: number[][]; top_logprobs: number[][]; positions: number; vocab: number };
    expect(body.positions).toBe(CTX);
    expect(body.vocab).toBe(BYTE_VOCAB);
    // Independently: the whole row of log-softmax, sorted in JS.
    const bytes = Array.from(encodeText(text));
    const logProbs = tf.tidy(() => tf.logSoftmax(model.logits(tf.tensor2d([[BOS, ...bytes.slice(0, CTX - 1)]], [1, CTX], 'int32')))).arraySync() as number[][][];
    for (let r = 0; r < CTX; r++) {
      const want = logProbs[0]![r]!.map((v, id) => ({ v, id })).sort((a, b) => b.v - a.v).slice(0, 4);
      expect(body.top_ids[r]).toEqual(want.map((w) => w.id));
      body.top_logprobs[r]!.forEach((v, i) => expect(v).toBeCloseTo(want[i]!.v, 5));
    }
  });

  it('refuses faulty requests with 400 and a sentence, and a missing or wrong token with 401', async () => {
    const post = async (body: string, token = TOKEN) => {
      const res = await fetch(served.url, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body });
      return { status: res.status, error: ((await res.json()) as { error: string }).error };
    };
    expect(await post(JSON.stringify({ text: 'x'.repeat(CTX + 1) }))).toEqual({ status: 400, error: `the text is ${CTX + 1} tokens; this model reads at most ${CTX} per request (split it into windows)` });
    expect(await post(JSON.stringify({ tokens: [65, 300] }))).toEqual({ status: 400, error: 'tokens[1] is not a byte (an integer in 0…255)' });
    expect(await post(JSON.stringify({ text: 'abc', top_k: 11 }))).toEqual({ status: 400, error: 'top_k must be an integer in [1, 10]; got 11' });
    expect(await post(JSON.stringify({ text: '' }))).toEqual({ status: 400, error: 'the text is empty: there is no position to answer' });
    expect((await post('{not json')).status).toBe(400);
    expect(await post(JSON.stringify({ text: 'x'.repeat((1 << 20) + 1) }))).toEqual({ status: 413, error: `the request body exceeds ${1 << 20} bytes` });
    expect((await post(JSON.stringify({ text: 'abc' }), 'wrong')).status).toBe(401);
    expect((await fetch(served.url, { method: 'POST', body: '{"text":"abc"}' })).status).toBe(401);
  });
});

describe('the API teacher', () => {
  const window = encodeText(COOKIES[1]!.slice(0, CTX));

  it('turns answers into dense distributions by the top-k spread rule', async () => {
    const t = teacher();
    const dense = await t.distributions(window);
    expect(dense.length).toBe(CTX * BYTE_VOCAB);
    const answer = answerLogprobs(model, Array.from(window), 5);
    for (let r = 0; r < CTX; r++) {
      const row = dense.subarray(r * BYTE_VOCAB, (r + 1) * BYTE_VOCAB);
      const top = answer.top_logprobs[r]!.map(Math.exp);
      const rest = (1 - top.reduce((a, b) => a + b, 0)) / (BYTE_VOCAB - 5);
      answer.top_ids[r]!.forEach((id, i) => expect(row[id]).toBeCloseTo(top[i]!, 6));
      const other = Array.from({ length: BYTE_VOCAB }, (_, id) => id).find((id) => !answer.top_ids[r]!.includes(id))!;
      expect(row[other]).toBeCloseTo(rest, 7);
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    }
  });

  it('asks once per window: a memory cache, then a disk cache across teachers', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'codistill-api-cache-'));
    const first = teacher({ cacheDir });
    const a = await first.topK(window);
    await first.topK(window);
    expect(first.counts).toMatchObject({ requests: 1, memoryHits: 1, diskHits: 0 });
    await first.topK(window.subarray(0, 8));
    expect(first.counts.requests).toBe(2);
    const second = teacher({ cacheDir, maxRequests: 0 });
    const b = await second.topK(window);
    expect(second.counts).toMatchObject({ requests: 0, diskHits: 1 });
    expect(Array.from(b.indices)).toEqual(Array.from(a.indices));
    expect(Array.from(b.values)).toEqual(Array.from(a.values));
  });

  it('refuses past its budget with E_BUDGET', async () => {
    const t = teacher({ maxRequests: 2 });
    await t.topK(window.subarray(0, 4));
    await t.topK(window.subarray(0, 5));
    await expect(t.topK(window.subarray(0, 6))).rejects.toThrow(/^E_BUDGET: the API teacher's budget of 2 requests is spent/);
    await t.topK(window.subarray(0, 4)); // a cached window still costs nothing
    expect(t.counts.requests).toBe(2);
  });

  it('retries a 500 and a 429 with backoff, and gives up after its retries', async () => {
    const flaky = await scriptedServer((n, body, res) => (n <= 2 ? json(res, n === 1 ? 500 : 429, { error: 'busy' }) : json(res, 200, answerLogprobs(model, body.tokens, body.top_k))));
    try {
      const t = new ApiTeacher({ endpoint: flaky.url, topK: 3, vocab: BYTE_VOCAB, maxRequests: 10, retries: 3, backoffMs: 5 });
      const rows = await t.topK(window);
      expect(rows.rows).toBe(CTX);
      expect(flaky.hits()).toBe(3);
      expect(t.counts).toMatchObject({ requests: 3, retries: 2 });
    } finally {
      await flaky.close();
    }
    const broken = await scriptedServer((_n, _b, res) => json(res, 503, {}));
    try {
      const t = new ApiTeacher({ endpoint: broken.url, topK: 3, vocab: BYTE_VOCAB, maxRequests: 10, retries: 2, backoffMs: 5 });
      await expect(t.topK(window)).rejects.toThrow('E_TEACHER_HTTP: window: HTTP 503 on each of 3 attempts');
      expect(broken.hits()).toBe(3);
    } finally {
      await broken.close();
    }
  });

  it('times out a silent server, retries, then fails with E_TEACHER_TIMEOUT', async () => {
    const silent = await scriptedServer(() => {});
    try {
      const t = new ApiTeacher({ endpoint: silent.url, topK: 3, vocab: BYTE_VOCAB, maxRequests: 10, retries: 1, backoffMs: 5, timeoutMs: 150 });
      await expect(t.topK(window)).rejects.toThrow('E_TEACHER_TIMEOUT: window: no answer within 150 ms on each of 2 attempts');
      expect(silent.hits()).toBe(2);
    } finally {
      await silent.close();
    }
  });

  it('refuses every kind of garbage answer, naming it', async () => {
    const n = 3;
    const good = () => answerLogprobs(model, Array.from(window.subarray(0, n)), 2);
    const cases: Array<[string, unknown, RegExp]> = [
      ['not JSON', '<html>', /the answer for window is not JSON/],
      ['no rows', { hello: 1 }, /needs top_ids and top_logprobs/],
      ['a row missing', { ...good(), top_ids: good().top_ids.slice(1) }, /has 2 rows of ids and 3 of log-probabilities; the window has 3 positions/],
      ['k wrong', { ...good(), top_ids: [[1], [2], [3]] }, /position 0 does not hold 2 ids and 2 log-probabilities/],
      ['id outside the vocabulary', { top_ids: [[1, 257], [1, 2], [1, 2]], top_logprobs: [[-1, -2], [-1, -2], [-1, -2]] }, /position 0 names token 257; the vocabulary is 0…256/],
      ['id not an integer', { top_ids: [[1, 2.5], [1, 2], [1, 2]], top_logprobs: [[-1, -2], [-1, -2], [-1, -2]] }, /position 0 names token 2.5/],
      ['id twice', { top_ids: [[1, 2], [7, 7], [1, 2]], top_logprobs: [[-1, -2], [-1, -2], [-1, -2]] }, /position 1 names token 7 twice/],
      ['log-prob > 0', { top_ids: [[1, 2], [1, 2], [1, 2]], top_logprobs: [[-1, -2], [-1, -2], [0.5, -2]] }, /position 2 gives token 1 the log-probability 0.5; it must be finite and ≤ 0/],
      ['log-prob not a number', { top_ids: [[1, 2], [1, 2], [1, 2]], top_logprobs: [[null, -2], [-1, -2], [-1, -2]] }, /position 0 gives token 1 the log-probability null/],
      ['mass above 1', { top_ids: [[1, 2], [1, 2], [1, 2]], top_logprobs: [[-1, -2], [-0.1, -0.2], [-1, -2]] }, /position 1's 2 probabilities sum to 1.723.*, more than 1/],
    ];
    let answer: unknown;
    const server = await scriptedServer((_n, _b, res) => json(res, 200, answer));
    try {
      for (const [name, body, message] of cases) {
        answer = body;
        const t = new ApiTeacher({ endpoint: server.url, topK: 2, vocab: BYTE_VOCAB, maxRequests: 5, backoffMs: 5 });
        await expect(t.topK(window.subarray(0, n)), name).rejects.toThrow(message);
        await expect(t.topK(window.subarray(0, n)), name).rejects.toThrow(/^E_TEACHER_ANSWER/);
      }
      answer = good();
      expect((await new ApiTeacher({ endpoint: server.url, topK: 2, vocab: BYTE_VOCAB, maxRequests: 5 }).topK(window.subarray(0, n))).rows).toBe(n);
    } finally {
      await server.close();
    }
    expect(() => validateAnswer({ top_ids: [[1]], top_logprobs: [[Number.NEGATIVE_INFINITY]] }, 1, 1, BYTE_VOCAB, 'x')).toThrow(/must be finite/);
  });

  it('never logs the bearer token or the text, whatever happens', async () => {
    const secretText = 'PRIVATE diary 42'.slice(0, CTX);
    const secretBytes = Array.from(encodeText(secretText));
    const logged: string[] = [];
    const originals = { log: console.log, info: console.info, warn: console.warn, error: console.error, debug: console.debug, out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
    const capture = (...args: unknown[]) => {
      logged.push(args.map((a) => (typeof a === 'string' ? a : a instanceof Uint8Array ? Buffer.from(a).toString('utf8') : JSON.stringify(a) ?? String(a))).join(' '));
      return true;
    };
    console.log = console.info = console.warn = console.error = console.debug = capture;
    process.stdout.write = capture as typeof process.stdout.write;
    process.stderr.write = capture as typeof process.stderr.write;
    const errors: string[] = [];
    try {
      const cacheDir = mkdtempSync(join(tmpdir(), 'codistill-api-log-'));
      const t = teacher({ cacheDir, say: capture, maxRequests: 3 });
      await t.topKMany([encodeText(secretText), encodeText(secretText)]);
      expect(t.counts.requests).toBe(1); // the same window asked twice at once: one request
      for (const attempt of [
        () => teacher({ token: `${TOKEN}-wrong`, say: capture }).topK(encodeText(secretText)),
        () => teacher({ say: capture, maxRequests: 0 }).topK(encodeText(`${secretText}!`.slice(1))),
        () => teacher({ say: capture, topK: 11 }).topK(encodeText(secretText)),
      ]) {
        await attempt().catch((e: Error) => errors.push(e.message));
      }
    } finally {
      Object.assign(console, { log: originals.log, info: originals.info, warn: originals.warn, error: originals.error, debug: originals.debug });
      process.stdout.write = originals.out;
      process.stderr.write = originals.err;
    }
    expect(errors).toHaveLength(3);
    expect(logged.length).toBeGreaterThan(0); // progress was said
    for (const line of [...logged, ...errors]) {
      expect(line).not.toContain(TOKEN);
      expect(line).not.toContain('PRIVATE');
      expect(line).not.toContain('diary');
      expect(line).not.toContain(secretBytes.slice(0, 6).join(','));
    }
  });
});

describe('the answered teacher in training', () => {
  it('serves the planned rows to trainLanguageModel, and refuses a row it was not asked about', async () => {
    const data = toSequences(COOKIES, CTX);
    const steps = 3;
    const batchSize = 2;
    const rows = plannedTrainingRows(data.count, steps, batchSize, 7);
    const t = teacher({ topK: 8 });
    const answers = await t.topKMany(rows.map((r) => rowWindow(data, r)));
    const table = answeredTeacher(model.spec, rows.map((row) => ({ data, row })), answers);
    // Its logits are log p of the spread answer at real positions.
    const first = rows[0]!;
    const logits = table.logits(tf.tensor2d(data.inputs.subarray(first * CTX, (first + 1) * CTX), [1, CTX], 'int32')).arraySync()[0]!;
    const dense = await t.distributions(rowWindow(data, first));
    expect(logits[0]![answers[0]!.indices[0]!]).toBeCloseTo(Math.log(dense[answers[0]!.indices[0]!]!), 5);

    const student = createLanguageModel(`transformer:d=16,l=1,h=2,ctx=${CTX}`, 9);
    const kd = [{ name: 'token-kd', weight: 1, params: { temperature: 1 } }];
    const losses = trainLanguageModel(student, data, { steps, batchSize, learningRate: 1e-3, seed: 7, loss: kd, teacher: table });
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(rows.length).toBeLessThan(data.count);
    {
      expect(() => trainLanguageModel(student, data, { steps: 20, batchSize, learningRate: 1e-3, seed: 8, loss: kd, teacher: table })).toThrow(/E_TEACHER_TABLE: batch row \d+ is not among the \d+ windows/);
    }
    expect(() => table.startDecoding(1)).toThrow(/E_TEACHER_TABLE/);
    student.dispose();
  });
});
