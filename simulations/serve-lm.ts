/**
 * `codistill serve-lm`: a saved codistill language model behind HTTP, answering as hosted
 * language-model APIs do — per position, the top-k next tokens and their log-probabilities —
 * so that a student can be distilled from it as from a black box (client/lm/api-teacher.ts),
 * and so that the API teacher has a real server to be tested against.
 *
 *   POST /v1/logprobs   { "text": "…" } or { "tokens": [byte, …] }, optional "top_k"
 *   → 200 { "model", "vocab", "top_k", "positions", "top_ids": [[…]…], "top_logprobs": [[…]…] }
 *
 * Row i is the distribution of token i given BOS and the tokens before it (the model reads
 * [BOS, t_0 … t_{n−2}]), ids largest log-probability first. A request holds at most the model's
 * context of tokens: longer text is refused (400) rather than windowed here, so the caller
 * chooses its windows and each answer is one forward pass. Faulty requests get 400 with a
 * sentence, a missing or wrong bearer token 401; the text is never logged.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../client/backend.js';
import { lmSpecName, type LanguageModel } from '../client/lm/model.js';
import { BOS, encodeText } from '../client/lm/tokenizer.js';
import { loadLanguageModel } from '../client/student-io/index.js';

export interface LmServerOptions {
  host: string;
  port: number;
  /** The most tokens per position a request may ask for, and what it gets when it names none. */
  maxTopK: number;
  /** When set, every request must carry `Authorization: Bearer <token>`. */
  token?: string;
}

/** Bodies larger than this are refused unread (a context of bytes as JSON numbers is far smaller). */
const MAX_BODY_BYTES = 1 << 20;

class BadRequest extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The model's answer for `tokens`: per position the top-k ids and log-probabilities of that token given those before it. */
export function answerLogprobs(model: LanguageModel, tokens: readonly number[], k: number): { top_ids: number[][]; top_logprobs: number[][] } {
  const n = tokens.length;
  const { values, indices } = tf.tidy(() => {
    const inputs = tf.tensor2d([[BOS, ...tokens.slice(0, n - 1)]], [1, n], 'int32');
    const logProbs = tf.logSoftmax(tf.reshape(model.logits(inputs), [n, model.spec.vocab]));
    return tf.topk(logProbs, k, true);
  });
  const v = values.dataSync();
  const ix = indices.dataSync();
  tf.dispose([values, indices]);
  const top_ids: number[][] = [];
  const top_logprobs: number[][] = [];
  for (let r = 0; r < n; r++) {
    top_ids.push(Array.from(ix.subarray(r * k, (r + 1) * k)));
    top_logprobs.push(Array.from(v.subarray(r * k, (r + 1) * k), (x) => Math.min(0, x)));
  }
  return { top_ids, top_logprobs };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // An oversized body is read to its end and dropped, so that the 413 can still be answered.
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) chunks.push(c);
    });
    req.on('end', () => (size > MAX_BODY_BYTES ? reject(new BadRequest(413, `the request body exceeds ${MAX_BODY_BYTES} bytes`)) : resolve(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

function parseRequest(raw: string, model: LanguageModel, options: LmServerOptions): { tokens: number[]; k: number } {
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    throw new BadRequest(400, 'the body is not JSON; send {"text": "...", "top_k": K} or {"tokens": [...], "top_k": K}');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequest(400, 'the body must be a JSON object with "text" or "tokens"');
  const b = body as Record<string, unknown>;
  const ctx = model.spec.ctx;
  let tokens: number[];
  if (b.text !== undefined && b.tokens !== undefined) throw new BadRequest(400, 'give "text" or "tokens", not both');
  if (typeof b.text === 'string') tokens = Array.from(encodeText(b.text));
  else if (Array.isArray(b.tokens)) {
    tokens = b.tokens as number[];
    const bad = tokens.findIndex((t) => typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > 255);
    if (bad >= 0) throw new BadRequest(400, `tokens[${bad}] is not a byte (an integer in 0…255)`);
  } else throw new BadRequest(400, '"text" must be a string or "tokens" an array of bytes');
  if (tokens.length === 0) throw new BadRequest(400, 'the text is empty: there is no position to answer');
  if (tokens.length > ctx) throw new BadRequest(400, `the text is ${tokens.length} tokens; this model reads at most ${ctx} per request (split it into windows)`);
  const k = b.top_k === undefined ? options.maxTopK : b.top_k;
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > options.maxTopK) throw new BadRequest(400, `top_k must be an integer in [1, ${options.maxTopK}]; got ${JSON.stringify(k)}`);
  return { tokens, k };
}

function authorised(req: IncomingMessage, token: string | undefined): boolean {
  if (token === undefined) return true;
  const header = req.headers.authorization ?? '';
  const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** Starts the server; resolves once it listens, with its URL (the port chosen when 0 was asked). */
export async function startLmServer(model: LanguageModel, options: LmServerOptions): Promise<{ server: Server; url: string; close: () => Promise<void> }> {
  if (options.maxTopK < 1 || options.maxTopK > model.spec.vocab) throw new Error(`E_CONFIG: --top-k must be in [1, ${model.spec.vocab}]; got ${options.maxTopK}`);
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server = createServer((req, res) => {
    void (async () => {
      try {
        if (req.url !== '/v1/logprobs') throw new BadRequest(404, `no such path; POST /v1/logprobs`);
        if (req.method !== 'POST') throw new BadRequest(405, 'POST /v1/logprobs with a JSON body');
        if (!authorised(req, options.token)) throw new BadRequest(401, 'a valid "Authorization: Bearer <token>" header is required');
        const { tokens, k } = parseRequest(await readBody(req), model, options);
        send(res, 200, { model: lmSpecName(model.spec), vocab: model.spec.vocab, top_k: k, positions: tokens.length, ...answerLogprobs(model, tokens, k) });
      } catch (error) {
        if (error instanceof BadRequest) send(res, error.status, { error: error.message });
        else send(res, 500, { error: 'the model failed to answer' });
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return { server, url: `http://${host}:${address.port}/v1/logprobs`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const USAGE = `usage: codistill serve-lm --model DIR [options]

Serves a saved language model (codistill distill-lm's teacher/ or students/*/) over HTTP as hosted
language-model APIs answer: POST /v1/logprobs {"text": "..."} or {"tokens": [bytes]}, "top_k": K
→ per position the top-k next-token ids and log-probabilities (top_ids, top_logprobs). A request
holds at most the model's context of tokens (longer: 400). Runs until stopped (Ctrl-C).

options:
  --model DIR        a saved language model (model.json + weights)
  --host H           [127.0.0.1]
  --port P           0 picks a free port [8080]
  --top-k K          the most tokens per position a request may ask for, and the default [20]
  --token-file F     require "Authorization: Bearer <the file's first line>"
  --backend NAME     node-gpu | node | wasm | cpu [automatic]
`;

export async function runServeLmCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  let options: LmServerOptions;
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options: Object.fromEntries(['model', 'host', 'port', 'top-k', 'token-file', 'backend'].map((k) => [k, { type: 'string' as const }])), strict: true }) as { values: Record<string, string | undefined> });
    if (values.model === undefined) throw new Error('--model DIR is required');
    const port = Number(values.port ?? 8080);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`E_CONFIG: --port must be an integer in [0, 65535]; got "${values.port}"`);
    const maxTopK = Number(values['top-k'] ?? 20);
    if (!Number.isInteger(maxTopK) || maxTopK < 1) throw new Error(`E_CONFIG: --top-k must be a positive integer; got "${values['top-k']}"`);
    const token = values['token-file'] === undefined ? undefined : readFileSync(values['token-file'], 'utf8').split('\n')[0]!.trim();
    if (token === '') throw new Error(`E_CONFIG: --token-file ${values['token-file']} has an empty first line`);
    options = { host: values.host ?? '127.0.0.1', port, maxTopK, ...(token === undefined ? {} : { token }) };
  } catch (error) {
    process.stderr.write(`codistill serve-lm: ${(error as Error).message}\n`);
    return 2;
  }
  const backend = await selectBackend(values.backend);
  const { model } = loadLanguageModel(values.model!);
  const { url, close } = await startLmServer(model, options);
  process.stdout.write(`serving ${lmSpecName(model.spec)} from ${values.model} on backend ${backend} at ${url}${options.token === undefined ? '' : ' (bearer token required)'}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await close();
  model.dispose();
  return 0;
}
