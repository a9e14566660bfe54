/**
 * The API teacher's per-token knowledge in a session (apiTokenPredictions): a top-k answer
 * expanded by the sparse form's rule, then tempered as a site tempers its logits — golden values
 * computed once by an independent script (Python: p = [0.5, 0.25] + [0.25/255]·255;
 * q = p^(1/2) / Σ p^(1/2)).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { ApiTeacher, ApiTeacherError, apiTokenPredictions } from '../../client/lm/api-teacher.js';
import { referenceWindows } from '../../client/lm/site.js';
import { BYTE_VOCAB } from '../../client/lm/tokenizer.js';

let answer: (hit: number) => unknown;
let hits = 0;
const GOOD = { top_ids: [[97, 98]], top_logprobs: [[Math.log(0.5), Math.log(0.25)]] };
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const body = answer(++hits);
    const send = () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    // The first answer at once, the others a little later: a failure comes back while other windows are in flight.
    if (hits === 1) send();
    else setTimeout(send, 50);
  });
});
let url: string;

beforeAll(async () => {
  await selectBackend('wasm');
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/logprobs`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

it('gives p^(1/T) renormalised over the vocabulary, the remaining mass spread evenly over the other tokens (golden, T = 2)', async () => {
  answer = () => GOOD;
  const teacher = new ApiTeacher({ endpoint: url, topK: 2, vocab: BYTE_VOCAB, maxRequests: 10 });
  const values = await apiTokenPredictions(teacher, referenceWindows(['a'], 1), 2);
  expect(values.length).toBe(BYTE_VOCAB);
  expect(values[97]).toBeCloseTo(0.07693079028921215, 6);
  expect(values[98]).toBeCloseTo(0.054398283495542106, 6);
  for (const id of [0, 96, 99, 255, 256]) expect(values[id]).toBeCloseTo(0.0034065526518244848, 6);
  // At T = 1 the expanded rows themselves.
  const plain = await apiTokenPredictions(teacher, referenceWindows(['a'], 1), 1);
  expect(plain[97]).toBeCloseTo(0.5, 5);
  expect(plain[3]).toBeCloseTo(0.25 / 255, 8);
  expect(hits).toBe(1);
});

it('throws E_TEACHER_ANSWER on a garbage answer and E_BUDGET past the budget, and stops asking after the first failure', async () => {
  answer = (hit) => (hit === 1 ? { top_ids: [[1, 1]], top_logprobs: [[0, 0]] } : GOOD);
  hits = 0;
  const teacher = new ApiTeacher({ endpoint: url, topK: 2, vocab: BYTE_VOCAB, maxRequests: 100, concurrency: 2 });
  const windows = referenceWindows(['abcdefgh'], 1);
  await expect(apiTokenPredictions(teacher, windows, 2)).rejects.toThrow(/^E_TEACHER_ANSWER: the answer for window 0: position 0 names token 1 twice$/);
  // The window in flight is answered; no further window of the 8 is asked about.
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(hits).toBe(2);
  expect(teacher.counts.requests).toBe(2);
  const poor = new ApiTeacher({ endpoint: url, topK: 2, vocab: BYTE_VOCAB, maxRequests: 0 });
  const spent = await apiTokenPredictions(poor, windows, 2).catch((e: unknown) => e);
  expect(spent).toBeInstanceOf(ApiTeacherError);
  expect((spent as ApiTeacherError).code).toBe('E_BUDGET');
});
