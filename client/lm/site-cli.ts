/**
 * `codistill client --text FILE`: a language-model site in a session of per-token knowledge
 * (reference-token-predictions), with no code to write. The site trains its own language model on
 * its own text file; only its next-token distributions on the shared reference text's windows
 * leave the machine. At the end it saves the model (model.json, weights, card) for `generate`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { SessionInfo } from '../../protocol/index.js';
import { selectBackend } from '../backend.js';
import { checkServerUrl, readCa } from '../cli.js';
import { loadTextFiles, readUtf8, splitDomains, toSequences, type TokenSequences } from '../data/text.js';
import { runParticipant, type ParticipantSummary, type RoundResult } from '../participant.js';
import { loadLanguageModel, probeFolder, probeSaveDir, saveLanguageModel } from '../student-io/index.js';
import { answeredTeacher, ApiTeacher, ApiTeacherError, apiTeacherSpec, apiTokenPredictions } from './api-teacher.js';
import { createLanguageModel, LM_NAMES_HELP, lmSpecName, parseLmSpec, type LanguageModel } from './model.js';
import { referenceWindows, textParticipantData, type TextSite } from './site.js';
import { BYTE_TOKENIZER, BYTE_VOCAB } from './tokenizer.js';
import { bitsPerByte } from './train.js';
import { numberFlag } from '../flags.js';

export const TEXT_CLIENT_USAGE = `usage: codistill client --text FILE --reference-text FILE --server URL --session ID --model SPEC|DIR [options]
       codistill client --partition PLAN#i [--server URL] [options]       (a plan of a text config)
       codistill client --role teacher --teacher-api URL --positions N --reference-text FILE --server URL --session ID
A language-model site: it trains its own byte-level language model on its own text and exchanges
per-token knowledge (reference-token-predictions) on windows of the shared reference text. The
session file gives tokenizer and positions; a site whose tokenizer differs is refused (E_TOKENIZER).
  --text FILE           this site's private text: UTF-8, documents separated by blank lines (or a .jsonl
                        file: one document per line as a JSON string, blank lines inside allowed)
  --reference-text FILE the session's shared reference text (the same file at every site): its bytes
                        cut into windows of --positions bytes, window i = reference id i; the join
                        checks their count (referenceSize) and digest (referenceDigest) with the session
  --model SPEC|DIR      ${LM_NAMES_HELP}, built here with --seed, or a saved
                        language model to start from (its folder: model.json, weights, card.json)
  --positions N         bytes per reference window: the session's positions [the model's ctx]
  --steps N             Adam steps per round, each on --batch-size private sequences and (with a
                        target) as many of the round's reference windows [20]
  --batch-size N        [8]
  --lr X                Adam learning rate [0.003]
  --held-out F          share of this site's documents held out: its bits per byte on them is printed
                        every round and written to the card (0: none) [0.1]
  --held-out-text FILE  held-out text of its own instead (then all of --text trains)
  --role ROLE           participant | teacher (shares a saved model's predictions, never trains: --model DIR)
                        | distiller (learns one LM from the ensemble alone; its --text is only its
                        held-out text) [participant]
  --server URL, --session ID, --token TOKEN (or CODISTILL_TOKEN), --ca FILE, --backend NAME,
  --seed N [1], --reconnect-attempts N [30]: as for any client (codistill client --help)
  --print-reference-digest  print the reference windows' count and SHA-256 (referenceSize and
                        referenceDigest for the session file) and exit: codistill client
                        --reference-text FILE --positions N --print-reference-digest
  --out FILE            the round log [codistill-client-<session>-<participant>.json]
  --save DIR            where the trained language model goes [students/<session>/<participant>/]
  --no-save             keep no model
An API teacher (black-box): --role teacher --teacher-api URL --positions N, no --text or --model.
Each round it asks the endpoint (codistill serve-lm, or an API answering as it does) for the top-k
log-probabilities at every position of the round's windows, spreads the rest of the mass evenly
over the other tokens and shares softmax(log p / T). A round it cannot answer (timeout, HTTP
error, garbage, spent budget) it sits out, saying why; it stays joined for the next.
  --teacher-api URL     the endpoint (POST {tokens, top_k} → {top_ids, top_logprobs})
  --teacher-api-token-file F   its bearer token (the file's first line; never logged)
  --api-top-k K         tokens per position asked for [10]
  --api-budget N        the most HTTP requests in the session (retries count) [20000]
  --api-cache DIR       keep answers on disk: the same window is never asked twice, across runs
`;

/** A text plan's shared part (PLAN/plan.json), as simulations/plan.ts writes it for a text config. */
export interface TextPlanFile {
  format: typeof TEXT_PLAN_FORMAT;
  session: string;
  algorithm: string;
  server: string;
  model: string;
  positions: number;
  steps: number;
  batchSize: number;
  learningRate: number;
  /** The shared reference text, relative to the plan. */
  reference: string;
  members: Array<{ index: number; id: string; role: string; folder: string; domain: string }>;
}

/** One member of a text plan (PLAN/<folder>/participant.json). */
export interface TextPlanMember {
  index: number;
  id: string;
  role: 'participant' | 'teacher' | 'distiller';
  token: string;
  seed: number;
  domain: string;
  /** Its private text and held-out text, relative to its folder (.jsonl: one document per line). */
  text: string;
  heldOut: string;
}

export const TEXT_PLAN_FORMAT = 'codistill-text-plan/1';

/**
 * Documents as a `.jsonl` `--text` file holds them: one JSON string per line, so that a document
 * may hold blank lines (in a plain text file they separate documents).
 */
export function documentsJsonLines(documents: readonly string[]): string {
  return documents.map((d) => `${JSON.stringify(d)}\n`).join('');
}

function readJsonLines(flag: string, path: string): string[] {
  const lines = readUtf8(path).split('\n').filter((line) => line.trim() !== '');
  const documents = lines.map((line, i) => {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      value = undefined;
    }
    if (typeof value !== 'string') throw new Error(`E_DATA: --${flag} ${path}: line ${i + 1} is not a JSON string (a .jsonl text file holds one document per line, as a JSON string)`);
    return value;
  });
  if (documents.length === 0) throw new Error(`E_DATA: --${flag} ${path} holds no text`);
  return documents;
}

/** The reference text as a site reads it: the file's bytes, one document (windows are cut from its start). */
function readReferenceText(path: string): string {
  try {
    return readUtf8(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`--reference-text ${path}: no such file`);
    throw error;
  }
}

function readDocuments(flag: string, path: string): string[] {
  try {
    if (path.endsWith('.jsonl')) return readJsonLines(flag, path);
    return loadTextFiles([path])[0]!.documents;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`--${flag} ${path}: no such file`);
    throw error;
  }
}

/** The plan member's settings, each under its flag's name, where the command line left the flag out. */
function planDefaults(v: Record<string, string | boolean | undefined>, spec: string): void {
  const at = spec.lastIndexOf('#');
  const dir = spec.slice(0, at);
  const index = Number(spec.slice(at + 1));
  const plan = readPlanJson<TextPlanFile>(join(dir, 'plan.json'), spec);
  if (plan.format !== TEXT_PLAN_FORMAT) throw new Error(`--partition ${spec}: ${join(dir, 'plan.json')} is ${JSON.stringify(plan.format)}, not a ${TEXT_PLAN_FORMAT} plan`);
  const entry = at < 0 || !Number.isInteger(index) ? undefined : plan.members[index];
  if (entry === undefined) throw new Error(`--partition ${spec}: the plan has members 0 to ${plan.members.length - 1}; give PLAN#i`);
  const folder = join(dir, entry.folder);
  const member = readPlanJson<TextPlanMember>(join(folder, 'participant.json'), spec);
  const defaults: Record<string, string> = {
    server: plan.server, session: plan.session, model: plan.model, positions: String(plan.positions), steps: String(plan.steps), 'batch-size': String(plan.batchSize),
    lr: String(plan.learningRate), 'reference-text': join(dir, plan.reference), text: join(folder, member.text), 'held-out-text': join(folder, member.heldOut),
    role: member.role, seed: String(member.seed), token: member.token, out: join(folder, 'rounds.json'),
  };
  if (v['no-save'] !== true) defaults.save = join(folder, 'student');
  for (const [flag, value] of Object.entries(defaults)) v[flag] ??= value;
}

function readPlanJson<T>(path: string, spec: string): T {
  try {
    return JSON.parse(readUtf8(path)) as T;
  } catch (error) {
    throw new Error(`--partition ${spec}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (write the plan with codistill simulate --plan DIR)' : (error as Error).message}`);
  }
}

/** Whether `PLAN#i` names a text plan (so that `codistill client --partition` runs a language-model site). */
export function isTextPlan(spec: string): boolean {
  try {
    return (JSON.parse(readUtf8(join(spec.slice(0, spec.lastIndexOf('#')), 'plan.json'))) as { format?: unknown }).format === TEXT_PLAN_FORMAT;
  } catch {
    return false;
  }
}

export async function runTextClientCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      ...Object.fromEntries(
        ['partition', 'server', 'session', 'token', 'ca', 'text', 'held-out-text', 'reference-text', 'model', 'positions', 'steps', 'batch-size', 'lr', 'held-out', 'role', 'backend', 'seed', 'out', 'reconnect-attempts', 'save',
          'teacher-api', 'teacher-api-token-file', 'api-top-k', 'api-budget', 'api-cache']
          .map((name) => [name, { type: 'string' as const }]),
      ),
      help: { type: 'boolean' },
      'no-save': { type: 'boolean' },
      'print-reference-digest': { type: 'boolean' },
    },
  });
  const v = values as Record<string, string | boolean | undefined>;
  if (v.help === true) {
    process.stdout.write(TEXT_CLIENT_USAGE);
    return 0;
  }
  if (typeof v.partition === 'string') planDefaults(v, v.partition);
  const number = (name: string, fallback: number, ok: (x: number) => boolean, rule: string): number => numberFlag(v, name, fallback, ok, rule);
  const positiveInt = (x: number) => Number.isInteger(x) && x >= 1;

  if (v['print-reference-digest'] === true) {
    if (v['reference-text'] === undefined) throw new Error('--print-reference-digest reads --reference-text FILE');
    const positions = v.positions !== undefined ? number('positions', 0, positiveInt, 'an integer ≥ 1') : modelContext(v.model as string | undefined);
    const { referenceDigest } = await import('../../protocol/sha256.js');
    const { windowFeatures } = await import('./site.js');
    const windows = referenceWindows([readReferenceText(v['reference-text'] as string)], positions);
    process.stdout.write(`referenceSize: ${windows.count}\nreferenceDigest: ${referenceDigest(windowFeatures(windows))}\npositions: ${positions}\n`);
    return 0;
  }

  const token = (v.token as string | undefined) ?? process.env.CODISTILL_TOKEN;
  const api = v['teacher-api'] as string | undefined;
  const missing = ['server', 'session', 'reference-text', ...(api === undefined ? ['text', 'model'] : ['positions'])].filter((k) => v[k] === undefined);
  if (token === undefined) missing.push('token (or CODISTILL_TOKEN)');
  if (missing.length > 0) {
    process.stderr.write(`codistill client: missing --${missing.join(', --')}\n\n${TEXT_CLIENT_USAGE}`);
    return 2;
  }
  checkServerUrl(v.server as string);
  if (api !== undefined) return runApiTeacher(v, token!, number);
  const steps = number('steps', 20, positiveInt, 'an integer ≥ 1');
  const batchSize = number('batch-size', 8, positiveInt, 'an integer ≥ 1');
  const learningRate = number('lr', 3e-3, (x) => x > 0, 'a number > 0');
  const heldOutFraction = number('held-out', 0.1, (x) => x >= 0 && x < 1, 'a number in [0, 1)');
  const seed = number('seed', 1, (x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32, 'an integer in [0, 2^32)');
  const reconnectAttempts = number('reconnect-attempts', 30, (x) => Number.isInteger(x) && x >= 0, 'an integer ≥ 0');
  const role = (v.role as string | undefined) ?? 'participant';
  if (role !== 'participant' && role !== 'teacher' && role !== 'distiller') throw new Error(`--role must be participant, teacher or distiller; got "${role}"`);
  if (v['no-save'] === true && v.save !== undefined) throw new Error('--no-save keeps no model; drop --save');
  const session = v.session as string;
  const studentsFolder = join('students', session.replace(/[^\w.-]/g, '_'));
  if (v['no-save'] !== true) {
    if (v.save !== undefined) probeSaveDir(v.save as string);
    else probeFolder(studentsFolder);
  }

  // The data first: a missing or undecodable file is refused before the backend loads.
  const textPath = v.text as string;
  const documents = readDocuments('text', textPath);
  const referenceText = readReferenceText(v['reference-text'] as string);
  let trainDocs = documents;
  let heldOutDocs: string[] = [];
  if (v['held-out-text'] !== undefined) heldOutDocs = readDocuments('held-out-text', v['held-out-text'] as string);
  else if (heldOutFraction > 0 && documents.length >= 2) {
    const split = splitDomains([{ name: 'site', documents, source: textPath }], { heldOutFraction, seed }).domains[0]!;
    trainDocs = split.train;
    heldOutDocs = split.heldOut;
  }
  // A distiller holds no private text: all of --text is its held-out text.
  if (role === 'distiller') {
    heldOutDocs = v['held-out-text'] === undefined ? documents : heldOutDocs;
    trainDocs = [];
  }

  const modelArg = v.model as string;
  // A teacher never trains in the session: a model built here would share untrained predictions.
  if (role === 'teacher' && isSpec(modelArg)) throw new Error(`--role teacher shares a trained model's predictions and never trains: give --model DIR (a saved language model), not ${modelArg}`);
  const backend = await selectBackend(v.backend as string | undefined);
  const warm = isSpec(modelArg) ? undefined : loadLanguageModel(modelArg);
  const model: LanguageModel = warm?.model ?? createLanguageModel(parseLmSpec(modelArg), seed);
  const positions = v.positions === undefined ? model.spec.ctx : number('positions', 0, (x) => positiveInt(x) && x <= model.spec.ctx, `an integer in [1, ${model.spec.ctx}] (the model's context)`);
  const reference = referenceWindows([referenceText], positions);
  const train: TokenSequences = toSequences(trainDocs, positions);
  const heldOut = heldOutDocs.length === 0 ? undefined : toSequences(heldOutDocs, positions);
  const site: TextSite = { model, tokenizer: BYTE_TOKENIZER, train, reference, steps, learningRate, seed };
  if (role !== 'distiller' && train.count === 0) throw new Error(`--text ${textPath}: no private text left to train on (${documents.length} documents, ${heldOutDocs.length} held out)`);
  process.stdout.write(
    `language-model ${role} on ${backend}: ${train.bytes} bytes of private text, ${heldOut === undefined ? 'none held out' : `${heldOut.bytes} held out`}, ` +
      `${reference.count} reference windows of ${positions} bytes; model ${lmSpecName(model.spec)} (${model.countParams()} parameters${warm === undefined ? '' : `, from ${modelArg}`})\n`,
  );

  let joined: { participant: string; info: SessionInfo } | undefined;
  const completed: Array<RoundResult & { bitsPerByte?: number }> = [];
  let summary: ParticipantSummary;
  try {
    summary = await runParticipant({
      url: v.server as string,
      session,
      token: token!,
      role,
      ca: v.ca === undefined ? undefined : readCa(v.ca as string),
      data: textParticipantData(site),
      epochs: 1,
      batchSize,
      reconnect: { attempts: reconnectAttempts },
      log: (line) => process.stdout.write(`${line}\n`),
      onJoined: (participant, info) => (joined = { participant, info }),
      onRound: (r) => {
        const bpb = heldOut === undefined ? undefined : bitsPerByte(model, heldOut);
        completed.push({ ...r, ...(bpb === undefined ? {} : { bitsPerByte: bpb }) });
        process.stdout.write(
          `round ${r.round}: ${r.receivedTarget ? 'learned from peers' : 'no peer target'}, loss ${r.train.loss.toFixed(4)}` +
            `${bpb === undefined ? '' : `, held-out ${bpb.toFixed(3)} bits per byte`}, ${(r.bytesUp / 1024).toFixed(1)} KiB sent, ${(r.bytesDown / 1024).toFixed(1)} KiB received\n`,
        );
      },
    });
    const out = (v.out as string | undefined) ?? `codistill-client-${summary.info.session}-${summary.participant}.json`.replace(/[^\w.-]/g, '_');
    writeFileSync(out, `${JSON.stringify({ participant: summary.participant, info: summary.info, endReason: summary.endReason, rounds: completed.map(({ evaluationProbs: _, ...r }) => r) }, null, 2)}\n`);
    process.stdout.write(`session ended: ${summary.endReason}; round log written to ${out}\n`);
    if (v['no-save'] !== true) {
      joined ??= { participant: summary.participant, info: summary.info };
      const dir = (v.save as string | undefined) ?? join(studentsFolder, joined.participant.replace(/[^\w.-]/g, '_'));
      const last = completed.at(-1)?.bitsPerByte;
      const card = saveLanguageModel(dir, model, {
        backend,
        training: {
          method: role === 'distiller' ? `distiller in ${joined.info.algorithm} session ${joined.info.session} (token-kd towards the ensemble)`
            : `${joined.info.algorithm} in session ${joined.info.session} as ${joined.participant} (${role === 'teacher' ? 'shared, never trained' : "token-ce + token-kd towards the peers' per-token target"})` +
              `${warm === undefined ? '' : `, warm-started from ${modelArg}`}`,
          steps: role === 'teacher' ? 0 : completed.reduce((a, r) => a + r.train.steps, 0),
          batchSize, learningRate, seed,
          data: { source: role === 'distiller' ? `the ensemble on --reference-text ${v['reference-text'] as string}` : `--text ${textPath}`, trainBytes: train.bytes },
        },
        metrics: last === undefined || heldOut === undefined ? {} : { heldOut: { bitsPerByte: last, bytes: heldOut.bytes } },
      });
      process.stdout.write(`language model saved to ${dir} (${card.model.parameters} parameters; model.json, card.json, README.md): codistill generate --model ${dir} --prompt TEXT\n`);
    }
  } finally {
    model.dispose();
  }
  return 0;
}

function isSpec(model: string): boolean {
  return /^(transformer|gru):/.test(model);
}

/** The context of --model, for --print-reference-digest without --positions (a saved model's is in its model.json). */
function modelContext(model: string | undefined): number {
  if (model === undefined) throw new Error('--print-reference-digest needs --positions N or --model SPEC|DIR (its context)');
  if (isSpec(model)) return parseLmSpec(model).ctx;
  const loaded = loadLanguageModel(model);
  loaded.model.dispose();
  return loaded.model.spec.ctx;
}

type NumberFlag = (name: string, fallback: number, ok: (x: number) => boolean, rule: string) => number;

/**
 * `codistill client --role teacher --teacher-api URL`: a teacher whose per-token knowledge comes
 * from an HTTP endpoint (client/lm/api-teacher.ts). Neither the bearer token nor any text is
 * logged; the endpoint is printed without its query string (where some APIs carry a key).
 */
async function runApiTeacher(v: Record<string, string | boolean | undefined>, token: string, number: NumberFlag): Promise<number> {
  const url = v['teacher-api'] as string;
  if (!/^https?:\/\//.test(url)) throw new Error(`--teacher-api must be an http(s) URL; got "${url.replace(/\?.*/, '?…')}"`);
  const role = (v.role as string | undefined) ?? 'participant';
  if (role !== 'teacher') throw new Error(`--teacher-api makes a teacher (it shares the API's predictions and never trains): give --role teacher, not ${role}`);
  for (const flag of ['model', 'text', 'held-out-text', 'save']) {
    if (v[flag] !== undefined) throw new Error(`--teacher-api: the API is the model; drop --${flag}`);
  }
  const positiveInt = (x: number) => Number.isInteger(x) && x >= 1;
  const positions = number('positions', 0, positiveInt, 'an integer ≥ 1');
  const reconnectAttempts = number('reconnect-attempts', 30, (x) => Number.isInteger(x) && x >= 0, 'an integer ≥ 0');
  const tokenFile = v['teacher-api-token-file'] as string | undefined;
  const bearer = tokenFile === undefined ? undefined : readUtf8(tokenFile).split('\n')[0]!.trim();
  const log: Array<{ round: number; shared: boolean; windows: number; requests: number; fromCache: number; error?: string }> = [];
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const teacher = new ApiTeacher({
    endpoint: url,
    ...(bearer === undefined || bearer === '' ? {} : { token: bearer }),
    topK: number('api-top-k', 10, (x) => positiveInt(x) && x <= BYTE_VOCAB, `an integer in [1, ${BYTE_VOCAB}]`),
    vocab: BYTE_VOCAB,
    maxRequests: number('api-budget', 20000, (x) => Number.isInteger(x) && x >= 0, 'an integer ≥ 0'),
    ...(v['api-cache'] === undefined ? {} : { cacheDir: v['api-cache'] as string }),
  });
  const reference = referenceWindows([readReferenceText(v['reference-text'] as string)], positions);
  const backend = await selectBackend(v.backend as string | undefined);
  // The site's model answers nothing itself: the knowledge hook asks the API each round.
  const model = answeredTeacher(apiTeacherSpec(BYTE_VOCAB, positions), [], []);
  const site: TextSite = {
    model, tokenizer: BYTE_TOKENIZER, train: toSequences([], positions), reference, steps: 0, learningRate: 0, seed: 0,
    knowledge: async (windows, temperature, round) => {
      const before = { ...teacher.counts };
      const record = () => ({ round, windows: windows.count, requests: teacher.counts.requests - before.requests, fromCache: teacher.counts.memoryHits + teacher.counts.diskHits - before.memoryHits - before.diskHits });
      try {
        const values = await apiTokenPredictions(teacher, windows, temperature);
        const r = record();
        log.push({ ...r, shared: true });
        say(`round ${round}: shared the API teacher's predictions on ${r.windows} windows (${r.requests} requests, ${r.fromCache} from the cache; ${teacher.counts.requests} of ${teacher.options.maxRequests} requests spent)`);
        return values;
      } catch (error) {
        // The round goes on without this teacher, as without any participant that misses it; the next round asks again.
        if (!(error instanceof ApiTeacherError)) throw error;
        log.push({ ...record(), shared: false, error: error.message });
        say(`round ${round}: nothing shared: ${error.message}`);
        return undefined;
      }
    },
  };
  const endpoint = new URL(url);
  say(`language-model teacher on ${backend}: the API at ${endpoint.origin}${endpoint.pathname} (top ${teacher.options.topK} per position, budget ${teacher.options.maxRequests} requests${v['api-cache'] === undefined ? '' : ', cached on disk'}), ${reference.count} reference windows of ${positions} bytes`);
  const summary = await runParticipant({
    url: v.server as string, session: v.session as string, token, role: 'teacher',
    ca: v.ca === undefined ? undefined : readCa(v.ca as string),
    data: textParticipantData(site), epochs: 1, batchSize: 1, reconnect: { attempts: reconnectAttempts }, log: say,
  });
  const out = (v.out as string | undefined) ?? `codistill-client-${summary.info.session}-${summary.participant}.json`.replace(/[^\w.-]/g, '_');
  writeFileSync(out, `${JSON.stringify({ participant: summary.participant, info: summary.info, endReason: summary.endReason, apiTeacher: { ...teacher.counts, rounds: log } }, null, 2)}\n`);
  say(`session ended: ${summary.endReason}; round log written to ${out}`);
  return 0;
}
