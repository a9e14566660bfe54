/**
 * A teacher language model reachable only over HTTP (black-box distillation): like the hosted
 * APIs, it answers a text with, per position, the top-k next tokens and their log-probabilities
 * (`codistill serve-lm` serves a saved model so; see simulations/serve-lm.ts for the wire shape).
 *
 * Every answer is validated before it becomes a target — one row per position, k distinct ids
 * inside the vocabulary, log-probabilities finite and ≤ 0, probabilities summing to at most
 * 1 + SUM_TOLERANCE — and a faulty answer is an error naming the fault, never a silent target.
 * A row becomes a dense distribution by the top-k sparse form's rule (protocol/sparse.ts
 * expandTopK): the k probabilities at their ids, the remaining mass spread evenly over the other
 * vocab − k tokens (the completion of largest entropy). token-kd then learns from
 * softmax(log p / T), i.e. p^(1/T) renormalised.
 *
 * Requests are bounded (a budget, refused past it), retried with exponential backoff on 5xx, 429,
 * timeouts and dropped connections (bounded), and cached: the same window is never asked twice
 * (in memory, and on disk under a SHA-256 of endpoint, k and window when a cache folder is given).
 * Nothing here logs the bearer token or the text: progress lines carry counts only, and error
 * messages name window numbers, positions and HTTP statuses, never bytes of the window.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CodedError } from '../../protocol/errors.js';
import { expandTopK, type TopKRows } from '../../protocol/sparse.js';
import { SeededRandom } from '../data/random.js';
import type { TokenSequences } from '../data/text-sequences.js';
import { tokenPredictions } from '../procedures/tokens.js';
import type { LanguageModel, LmSpec } from './model.js';

/** Σ exp(logprob) over a row may exceed 1 by float rounding at most this much. */
export const SUM_TOLERANCE = 1e-3;
/** A log-probability may exceed 0 by rounding at most this much (it is then read as 0). */
const LOGPROB_TOLERANCE = 1e-5;

export type ApiTeacherErrorCode = 'E_BUDGET' | 'E_TEACHER_ANSWER' | 'E_TEACHER_HTTP' | 'E_TEACHER_TIMEOUT' | 'E_TEACHER_TABLE';

export class ApiTeacherError extends CodedError<ApiTeacherErrorCode> {
  override readonly name = 'ApiTeacherError';
}

export interface ApiTeacherOptions {
  /** The endpoint, e.g. http://127.0.0.1:8080/v1/logprobs. */
  endpoint: string;
  /** Sent as `Authorization: Bearer …`; never logged. */
  token?: string;
  /** Tokens per position asked for. */
  topK: number;
  /** The vocabulary the answers' ids must lie in (the student's). */
  vocab: number;
  /** HTTP requests allowed in all (retries count: a hosted API bills them). */
  maxRequests: number;
  /** Further attempts after a 5xx, a timeout or a dropped connection [3]. */
  retries?: number;
  /** First backoff; doubled at each retry [200 ms]. */
  backoffMs?: number;
  /** Per request [30 s]. */
  timeoutMs?: number;
  /** A folder for answers on disk (created if missing). */
  cacheDir?: string;
  /** Requests in flight at once when fetching many windows [4]. */
  concurrency?: number;
  say?: (line: string) => void;
}

export interface ApiTeacherCounts {
  /** HTTP requests sent, retries included. */
  requests: number;
  retries: number;
  memoryHits: number;
  diskHits: number;
}

/** The answer's JSON, as serve-lm writes it and as validated here. */
export interface LogprobsAnswer {
  top_ids: number[][];
  top_logprobs: number[][];
}

export class ApiTeacher {
  readonly counts: ApiTeacherCounts = { requests: 0, retries: 0, memoryHits: 0, diskHits: 0 };
  private readonly memory = new Map<string, TopKRows>();
  /** Windows being asked about now: a second caller waits for the same answer. */
  private readonly inFlight = new Map<string, Promise<TopKRows>>();
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly timeoutMs: number;

  constructor(readonly options: ApiTeacherOptions) {
    if (!Number.isInteger(options.topK) || options.topK < 1 || options.topK > options.vocab) {
      throw new ApiTeacherError('E_TEACHER_ANSWER', `top-k must be an integer in [1, ${options.vocab}]; got ${options.topK}`);
    }
    if (!Number.isInteger(options.maxRequests) || options.maxRequests < 0) throw new ApiTeacherError('E_BUDGET', `the request budget must be an integer ≥ 0; got ${options.maxRequests}`);
    this.retries = options.retries ?? 3;
    this.backoffMs = options.backoffMs ?? 200;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    if (options.cacheDir !== undefined) mkdirSync(options.cacheDir, { recursive: true });
  }

  /** The teacher's top-k rows for a window of byte tokens: row i is the distribution of window[i] given the bytes before it. */
  async topK(window: Uint8Array, label = 'window'): Promise<TopKRows> {
    const key = this.key(window);
    const held = this.memory.get(key);
    if (held !== undefined) {
      this.counts.memoryHits++;
      return held;
    }
    const pending = this.inFlight.get(key);
    if (pending !== undefined) {
      this.counts.memoryHits++;
      return pending;
    }
    const asked = this.fetchRows(window, key, label);
    this.inFlight.set(key, asked);
    try {
      return await asked;
    } finally {
      this.inFlight.delete(key);
    }
  }

  private async fetchRows(window: Uint8Array, key: string, label: string): Promise<TopKRows> {
    const file = this.options.cacheDir === undefined ? undefined : join(this.options.cacheDir, `${key}.json`);
    if (file !== undefined && existsSync(file)) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(readFileSync(file, 'utf8'));
      } catch {
        throw new ApiTeacherError('E_TEACHER_ANSWER', `the cached answer ${file} is not JSON; delete it to ask again`);
      }
      const rows = validateAnswer(parsed, window.length, this.options.topK, this.options.vocab, `the cached answer ${file}`);
      this.counts.diskHits++;
      this.memory.set(key, rows);
      return rows;
    }
    const body = await this.ask(window, label);
    const rows = validateAnswer(body, window.length, this.options.topK, this.options.vocab, `the answer for ${label}`);
    this.memory.set(key, rows);
    if (file !== undefined) {
      const answer: LogprobsAnswer = { top_ids: (body as LogprobsAnswer).top_ids, top_logprobs: (body as LogprobsAnswer).top_logprobs };
      writeFileSync(`${file}.tmp`, JSON.stringify(answer));
      renameSync(`${file}.tmp`, file);
    }
    return rows;
  }

  /** Dense [window.length, vocab] probabilities, row-major, by the sparse form's spread rule. */
  async distributions(window: Uint8Array, label?: string): Promise<Float32Array> {
    return expandTopK(await this.topK(window, label));
  }

  /** The top-k rows of many windows, `concurrency` requests at a time; progress every 10 %. */
  async topKMany(windows: readonly Uint8Array[]): Promise<TopKRows[]> {
    const out: TopKRows[] = new Array(windows.length);
    let next = 0;
    let done = 0;
    const say = this.options.say;
    const every = Math.max(1, Math.ceil(windows.length / 10));
    // After one window fails the whole call fails: the other workers stop asking (and spending the budget).
    let failed = false;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= windows.length || failed) return;
        try {
          out[i] = await this.topK(windows[i]!, `window ${i}`);
        } catch (error) {
          failed = true;
          throw error;
        }
        done++;
        if (say !== undefined && (done % every === 0 || done === windows.length)) {
          say(`  API teacher: ${done}/${windows.length} windows (${this.counts.requests} requests, ${this.counts.retries} retries, ${this.counts.memoryHits + this.counts.diskHits} from the cache)`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency ?? 4, windows.length) }, worker));
    return out;
  }

  private key(window: Uint8Array): string {
    return createHash('sha256').update(this.options.endpoint).update('\n').update(String(this.options.topK)).update('\n').update(window).digest('hex');
  }

  private async ask(window: Uint8Array, label: string): Promise<unknown> {
    const payload = JSON.stringify({ tokens: Array.from(window), top_k: this.options.topK });
    for (let attempt = 0; ; attempt++) {
      if (this.counts.requests >= this.options.maxRequests) {
        throw new ApiTeacherError('E_BUDGET', `the API teacher's budget of ${this.options.maxRequests} requests is spent (${label} still unanswered); raise --api-budget or use --api-cache to reuse answers`);
      }
      this.counts.requests++;
      if (attempt > 0) this.counts.retries++;
      let failure: string;
      try {
        const response = await fetch(this.options.endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(this.options.token === undefined ? {} : { authorization: `Bearer ${this.options.token}` }) },
          body: payload,
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        if (response.ok) {
          try {
            return await response.json();
          } catch {
            throw new ApiTeacherError('E_TEACHER_ANSWER', `the answer for ${label} is not JSON`);
          }
        }
        await response.body?.cancel();
        // The body is not quoted: a server may echo the text back in it.
        // 429 (rate limited) is retried as a 5xx is; any other 4xx would only be refused again.
        if (response.status < 500 && response.status !== 429) {
          throw new ApiTeacherError('E_TEACHER_HTTP', `the endpoint answered ${label} with HTTP ${response.status}${response.status === 401 || response.status === 403 ? ' (check the bearer token: --teacher-api-token-file)' : ''}`);
        }
        failure = `HTTP ${response.status}`;
      } catch (error) {
        if (error instanceof ApiTeacherError) throw error;
        const name = (error as Error).name;
        failure = name === 'TimeoutError' || name === 'AbortError' ? `no answer within ${this.timeoutMs} ms` : `connection failed (${(error as { cause?: { code?: string } }).cause?.code ?? name})`;
      }
      if (attempt >= this.retries) {
        const code = failure.startsWith('no answer') ? 'E_TEACHER_TIMEOUT' : 'E_TEACHER_HTTP';
        throw new ApiTeacherError(code, `${label}: ${failure} on each of ${attempt + 1} attempts`);
      }
      await new Promise((resolve) => setTimeout(resolve, this.backoffMs * 2 ** attempt));
    }
  }
}

/**
 * Checks an answer for a window of `positions` tokens and returns its rows (probabilities
 * exp(logprob)); throws E_TEACHER_ANSWER naming the first fault.
 */
export function validateAnswer(body: unknown, positions: number, k: number, vocab: number, where: string): TopKRows {
  const fail = (why: string) => new ApiTeacherError('E_TEACHER_ANSWER', `${where}: ${why}`);
  if (typeof body !== 'object' || body === null) throw fail('not a JSON object');
  const { top_ids: ids, top_logprobs: logprobs } = body as Partial<LogprobsAnswer>;
  if (!Array.isArray(ids) || !Array.isArray(logprobs)) throw fail('needs top_ids and top_logprobs, arrays with one row per position');
  if (ids.length !== positions || logprobs.length !== positions) throw fail(`has ${ids.length} rows of ids and ${logprobs.length} of log-probabilities; the window has ${positions} positions`);
  const indices = new Uint16Array(positions * k);
  const values = new Float32Array(positions * k);
  const seen = new Int32Array(vocab).fill(-1);
  for (let r = 0; r < positions; r++) {
    const idRow = ids[r];
    const lpRow = logprobs[r];
    if (!Array.isArray(idRow) || !Array.isArray(lpRow) || idRow.length !== k || lpRow.length !== k) throw fail(`position ${r} does not hold ${k} ids and ${k} log-probabilities`);
    let sum = 0;
    for (let i = 0; i < k; i++) {
      const id = idRow[i];
      const lp = lpRow[i];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocab) throw fail(`position ${r} names token ${String(id)}; the vocabulary is 0…${vocab - 1}`);
      if (seen[id] === r) throw fail(`position ${r} names token ${id} twice`);
      seen[id] = r;
      if (typeof lp !== 'number' || !Number.isFinite(lp) || lp > LOGPROB_TOLERANCE) throw fail(`position ${r} gives token ${id} the log-probability ${String(lp)}; it must be finite and ≤ 0`);
      const p = Math.exp(Math.min(0, lp));
      sum += p;
      indices[r * k + i] = id;
      values[r * k + i] = p;
    }
    if (sum > 1 + SUM_TOLERANCE) throw fail(`position ${r}'s ${k} probabilities sum to ${sum.toFixed(6)}, more than 1`);
  }
  return { rows: positions, width: vocab, k, indices, values };
}

/**
 * The rows trainLanguageModel will draw: it draws `batchSize` rows per step with
 * SeededRandom(seed).int(count) and nothing else from that generator, so the same calls here
 * give the same rows — the windows worth asking the teacher about, and no others.
 */
export function plannedTrainingRows(count: number, steps: number, batchSize: number, seed: number): number[] {
  const random = new SeededRandom(seed);
  const rows = new Set<number>();
  for (let i = 0; i < steps * batchSize; i++) rows.add(random.int(count));
  return [...rows].sort((a, b) => a - b);
}

/** A row's text: its real targets (the bytes the teacher is asked about). */
export function rowWindow(data: TokenSequences, row: number): Uint8Array {
  const c = data.context;
  let m = 0;
  while (m < c && data.mask[row * c + m] === 1) m++;
  return Uint8Array.from(data.targets.subarray(row * c, row * c + m));
}

const rowKey = (inputs: ArrayLike<number>, from: number, c: number) => Array.prototype.join.call(Array.prototype.slice.call(inputs, from, from + c), ',');

/**
 * The API teacher's answers on rows of `data` as a teacher model for trainLanguageModel:
 * `logits` gives, for each input row it was asked about (found by its tokens), log p of the
 * dense answer at the real positions and zeros (masked out) on padding. It answers nothing else:
 * a row it has no answer for is an error, not a guess. It has no weights and cannot decode.
 *
 * The API sees each window from the start of its text (BOS, then the window), so at a window
 * that continues a document its first position lacks the one byte of history a local teacher
 * reads there; every other position sees the same history.
 */
export function answeredTeacher(spec: LmSpec, asked: ReadonlyArray<{ data: TokenSequences; row: number }>, answers: readonly TopKRows[]): LanguageModel {
  const c = spec.ctx;
  const vocab = spec.vocab;
  const table = new Map<string, Float32Array>();
  asked.forEach(({ data, row }, i) => {
    if (data.context !== c) throw new ApiTeacherError('E_TEACHER_TABLE', `rows of ${data.context} positions; the student reads ${c}`);
    const dense = expandTopK(answers[i]!);
    const logits = new Float32Array(c * vocab);
    for (let j = 0; j < dense.length; j++) logits[j] = Math.log(Math.max(dense[j]!, 1e-30));
    table.set(rowKey(data.inputs, row * c, c), logits);
  });
  const refuse = (what: string) => () => {
    throw new ApiTeacherError('E_TEACHER_TABLE', `the API teacher has no ${what}: it is known only by its answers`);
  };
  return {
    spec,
    weights: [],
    variables: [],
    logits(tokens: tf.Tensor2D): tf.Tensor3D {
      const [n, width] = tokens.shape;
      if (width !== c) throw new ApiTeacherError('E_TEACHER_TABLE', `rows of ${width} positions; the API teacher was asked about rows of ${c}`);
      const flat = tokens.dataSync();
      const out = new Float32Array(n * c * vocab);
      for (let r = 0; r < n; r++) {
        const hit = table.get(rowKey(flat, r * c, c));
        if (hit === undefined) throw new ApiTeacherError('E_TEACHER_TABLE', `batch row ${r} is not among the ${table.size} windows the API teacher answered (the training rows were planned with another seed, step count or batch size)`);
        out.set(hit, r * c * vocab);
      }
      return tf.tensor3d(out, [n, c, vocab]);
    },
    countParams: () => 0,
    startDecoding: refuse('decoder'),
    forwardFlopsPerToken: () => 0,
    dispose: () => table.clear(),
  };
}

/**
 * An API teacher's stand-in spec: it has no architecture, only the vocabulary its answers index
 * and the window length it is asked about (all that a session's checks and answeredTeacher read).
 */
export function apiTeacherSpec(vocab: number, ctx: number): LmSpec {
  return { kind: 'transformer', d: 0, l: 0, h: 0, ctx, vocab };
}

/**
 * The API teacher's per-token knowledge on a session's reference windows (TextSite.knowledge):
 * every window asked (window i's bytes, its targets), each answer expanded by the top-k sparse
 * form's rule (answeredTeacher: log p of expandTopK's dense row) and tempered as a site tempers
 * its own logits (tokenPredictions: softmax(log p / T), i.e. p^(1/T) renormalised over the whole
 * vocabulary, the spread remainder included). [rows, positions, vocab] row-major. Throws an
 * ApiTeacherError (budget, HTTP, timeout, garbage) when any window of them goes unanswered.
 */
export async function apiTokenPredictions(teacher: ApiTeacher, windows: TokenSequences, temperature: number): Promise<Float32Array> {
  const rows = Array.from({ length: windows.count }, (_, row) => row);
  const answers = await teacher.topKMany(rows.map((row) => rowWindow(windows, row)));
  const model = answeredTeacher(apiTeacherSpec(teacher.options.vocab, windows.context), rows.map((row) => ({ data: windows, row })), answers);
  try {
    return tokenPredictions({ model }, windows, temperature);
  } finally {
    model.dispose();
  }
}
