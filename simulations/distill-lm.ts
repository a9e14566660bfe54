/**
 * `codistill distill-lm`: offline distillation of a byte-level language model into a smaller one
 * (client/lm/distill.ts): the small model alone, word-level KD and sequence-level KD, measured in
 * bits per byte on each domain's held-out text and the mixed held-out set.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { selectBackend } from '../client/backend.js';
import { readFileSync } from 'node:fs';
import { loadFortuneDomains, loadTextFiles, splitDomains, toSequences, FORTUNE_DOMAINS, type TextDomain, type TextSplits, type TokenSequences } from '../client/data/text.js';
import { answeredTeacher, ApiTeacher, plannedTrainingRows, rowWindow } from '../client/lm/api-teacher.js';
import type { LanguageModel } from '../client/lm/model.js';
import { LM_DISTILL_METHODS, runLmDistillation, type LmDistillMethod, type LmDistillOptions } from '../client/lm/distill.js';
import { LM_NAMES_HELP, parseLmSpec } from '../client/lm/model.js';
import { loadLanguageModel, probeSaveDir, saveLanguageModel } from '../client/student-io/index.js';

export const DEFAULT_LM_DISTILL: LmDistillOptions = {
  teacher: 'transformer:d=64,l=3,h=4,ctx=64',
  student: 'transformer:d=32,l=2,h=4,ctx=64',
  methods: [...LM_DISTILL_METHODS],
  teacherSteps: 800,
  steps: 300,
  batchSize: 16,
  learningRate: 3e-3,
  seed: 1,
  temperature: 2,
  alpha: 0.5,
  sequenceSamples: 4096,
  sequenceTemperature: 1,
  sequenceTopK: 0,
  sequenceData: 'mixed',
};

const D = DEFAULT_LM_DISTILL;
const USAGE = `usage: codistill distill-lm [options]

Trains a teacher language model on text split by domain, then a smaller student three ways —
alone, word-level KD (the teacher's distribution at every position) and sequence-level KD (on
text the teacher wrote) — and reports bits per byte on held-out text, per domain and mixed.
Prints progress; writes results.json and the models (model.json + weights + card) under --out.

options:
  --data fortunes[:LANGS]   Debian's fortunes, one domain per language (${Object.entries(FORTUNE_DOMAINS).map(([k, v]) => `${k}: ${v.package}`).join(', ')});
                            LANGS a comma list [fortunes: every installed language]
  --text FILE               a UTF-8 file as one domain (documents separated by blank lines); repeatable
  --max-bytes-per-domain N  keep at most N bytes of each domain [100000]
  --held-out-fraction X     each domain's documents held out [0.1]
  --teacher NAME            ${LM_NAMES_HELP} [${D.teacher}]
  --teacher-model DIR       a saved teacher instead of training one; with --teacher-steps N, trained N more steps
  --teacher-api URL         a teacher behind HTTP (codistill serve-lm, or an API answering as it does): its top-k
                            log-probabilities per position are the word-level KD targets (alone and word only)
  --teacher-api-token-file F   its bearer token (the file's first line; never logged)
  --api-top-k K             tokens per position asked for; the rest of the mass is spread evenly [10]
  --api-budget N            the most HTTP requests (retries count); past it the run stops with E_BUDGET [20000]
  --api-cache DIR           keep answers on disk: the same window is never asked twice, across runs
  --student NAME            [${D.student}]
  --methods LIST            comma list of ${LM_DISTILL_METHODS.join(', ')} [all; alone,word with --teacher-api]
  --teacher-steps N         [${D.teacherSteps}]
  --steps N                 each student's steps [${D.steps}]
  --batch-size N            sequences per step [${D.batchSize}]
  --lr X                    Adam learning rate [${D.learningRate}]
  --temperature T           word-level KD temperature [${D.temperature}]
  --alpha X                 word-level KD: weight of the next-byte cross-entropy, the KL gets 1 − X [${D.alpha}]
  --seq-samples N           sequence-level KD: sequences the teacher writes [${D.sequenceSamples}]
  --seq-temperature T       their sampling temperature; 0 is greedy (from BOS every greedy sequence is the same) [${D.sequenceTemperature}]
  --seq-top-k K             sample among the K likeliest bytes; 0: all [${D.sequenceTopK}]
  --seq-data mixed|generated   train on the real text plus the teacher's, or the teacher's alone [${D.sequenceData}]
  --seed N                  split, initial weights, batches, samples [${D.seed}]
  --backend NAME            node-gpu | node | wasm | cpu [automatic]
  --out DIR                 results.json, teacher/ and students/METHOD/ [results/distill-lm-<time>]
`;

function int(flag: string, raw: string | undefined, fallback: number, min = 1): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new Error(`E_CONFIG: --${flag} must be an integer ≥ ${min}; got "${raw}"`);
  return v;
}
function real(flag: string, raw: string | undefined, fallback: number, ok: (x: number) => boolean, rule: string): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || !ok(v)) throw new Error(`E_CONFIG: --${flag} must be ${rule}; got "${raw}"`);
  return v;
}

export async function runDistillLmCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  let options: LmDistillOptions;
  let domains: TextDomain[];
  let values: Record<string, string | string[] | undefined>;
  let out: string;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: Object.fromEntries(
        ['data', 'max-bytes-per-domain', 'held-out-fraction', 'teacher', 'teacher-model', 'student', 'methods', 'teacher-steps', 'steps', 'batch-size', 'lr', 'temperature', 'alpha', 'seq-samples', 'seq-temperature', 'seq-top-k', 'seq-data', 'seed', 'backend', 'out', 'teacher-api', 'teacher-api-token-file', 'api-top-k', 'api-budget', 'api-cache']
          .map((k) => [k, { type: 'string' as const }])
          .concat([['text', { type: 'string' as const, multiple: true } as never]]),
      ),
      strict: true,
    }) as { values: Record<string, string | string[] | undefined> });
    const s = (k: string) => values[k] as string | undefined;
    // An API teacher cannot write text: without --methods it runs the methods it can.
    const methods = (s('methods') ?? (s('teacher-api') === undefined ? LM_DISTILL_METHODS.join(',') : 'alone,word')).split(',').map((m) => m.trim());
    for (const m of methods) if (!(LM_DISTILL_METHODS as readonly string[]).includes(m)) throw new Error(`E_CONFIG: --methods: unknown method "${m}"; choose among ${LM_DISTILL_METHODS.join(', ')}`);
    const seqData = s('seq-data') ?? D.sequenceData;
    if (seqData !== 'mixed' && seqData !== 'generated') throw new Error(`E_CONFIG: --seq-data must be mixed or generated; got "${seqData}"`);
    options = {
      teacher: s('teacher') ?? D.teacher,
      student: s('student') ?? D.student,
      methods: methods as LmDistillMethod[],
      teacherSteps: int('teacher-steps', s('teacher-steps'), D.teacherSteps),
      steps: int('steps', s('steps'), D.steps),
      batchSize: int('batch-size', s('batch-size'), D.batchSize),
      learningRate: real('lr', s('lr'), D.learningRate, (x) => x > 0, 'a positive number'),
      seed: int('seed', s('seed'), D.seed, 0),
      temperature: real('temperature', s('temperature'), D.temperature, (x) => x > 0, 'a positive number'),
      alpha: real('alpha', s('alpha'), D.alpha, (x) => x >= 0 && x <= 1, 'in [0, 1]'),
      sequenceSamples: int('seq-samples', s('seq-samples'), D.sequenceSamples),
      sequenceTemperature: real('seq-temperature', s('seq-temperature'), D.sequenceTemperature, (x) => x >= 0, 'a number ≥ 0'),
      sequenceTopK: int('seq-top-k', s('seq-top-k'), D.sequenceTopK, 0),
      sequenceData: seqData,
    };
    parseLmSpec(options.teacher);
    if (s('teacher-api') !== undefined) {
      const url = s('teacher-api')!;
      if (!/^https?:\/\//.test(url)) throw new Error(`E_CONFIG: --teacher-api must be an http(s) URL; got "${url}"`);
      if (s('teacher-model') !== undefined) throw new Error('E_CONFIG: give --teacher-api or --teacher-model, not both');
      if (options.methods.includes('sequence')) throw new Error('E_CONFIG: an API teacher gives distributions, not text: with --teacher-api use --methods alone,word');
      int('api-top-k', s('api-top-k'), 10);
      int('api-budget', s('api-budget'), 20000, 0);
    }
    parseLmSpec(options.student);
    const texts = (values.text as string[] | undefined) ?? [];
    const data = s('data') ?? (texts.length > 0 ? undefined : 'fortunes');
    domains = [...(data === undefined ? [] : loadData(data)), ...loadTextFiles(texts)];
    out = s('out') ?? join('results', `distill-lm-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    probeSaveDir(join(out, 'teacher'));
  } catch (error) {
    process.stderr.write(`codistill distill-lm: ${(error as Error).message}\n`);
    return 2;
  }
  const s = (k: string) => values[k] as string | undefined;
  const backend = await selectBackend(s('backend'));
  const maxBytes = int('max-bytes-per-domain', s('max-bytes-per-domain'), 100_000);
  const splits = splitDomains(domains, { heldOutFraction: real('held-out-fraction', s('held-out-fraction'), 0.1, (x) => x > 0 && x < 1, 'in (0, 1)'), seed: options.seed, maxBytesPerDomain: maxBytes });
  const say = (line: string) => process.stdout.write(`${line}\n`);
  say(`backend ${backend}; domains ${splits.domains.map((d) => `${d.name} (${d.train.length} train / ${d.heldOut.length} held-out documents)`).join(', ')}`);
  let api: { teacher: ApiTeacher; model: LanguageModel } | undefined;
  if (s('teacher-api') !== undefined) {
    try {
      api = await askApiTeacher(s, options, splits, say);
    } catch (error) {
      process.stderr.write(`codistill distill-lm: ${(error as Error).message}\n`);
      return 1;
    }
  }
  const loadedTeacher = s('teacher-model') === undefined ? undefined : loadLanguageModel(s('teacher-model')!);
  const teacherModel = loadedTeacher?.model;
  const source = domains.map((d) => d.source).join(' + ');
  mkdirSync(out, { recursive: true });
  const continueTeacher = teacherModel !== undefined && s('teacher-steps') !== undefined;
  const result = runLmDistillation(options, splits, {
    say,
    teacherModel,
    ...(api === undefined ? {} : { answeredTeacher: api.model }),
    continueTeacher,
    trained: (role, model, r) => {
      if (role === 'teacher' && ((teacherModel !== undefined && !continueTeacher) || api !== undefined)) return;
      const dir = role === 'teacher' ? join(out, 'teacher') : join(out, 'students', role);
      saveLanguageModel(dir, model, {
        backend,
        training: {
          method: role === 'teacher' || role === 'alone' ? 'token-ce' : role === 'word' ? `word-level KD (token-kd, T=${options.temperature}, alpha=${options.alpha})` : `sequence-level KD (${options.sequenceSamples} teacher samples, T=${options.sequenceTemperature}, ${options.sequenceData})`,
          steps: role === 'teacher' ? options.teacherSteps + (continueTeacher ? loadedTeacher?.card?.training.steps ?? 0 : 0) : options.steps,
          batchSize: options.batchSize,
          learningRate: options.learningRate,
          seed: options.seed,
          data: { source, trainBytes: r.trainBytes },
          ...(role === 'teacher' || role === 'alone' ? {} : { teacher: api === undefined ? options.teacher : `API teacher (top-${api.teacher.options.topK})` }),
        },
        metrics: { heldOut: { bitsPerByte: r.heldOut.mixed, bytes: r.heldOut.bytes }, perDomain: r.heldOut.perDomain },
      });
      say(`  saved ${dir}`);
    },
  });
  teacherModel?.dispose();
  api?.model.dispose();
  const apiFacts = api === undefined ? {} : { apiTeacher: { endpoint: api.teacher.options.endpoint, topK: api.teacher.options.topK, budget: api.teacher.options.maxRequests, ...api.teacher.counts } };
  const file = join(out, 'results.json');
  writeFileSync(file, `${JSON.stringify({ command: `codistill distill-lm ${argv.join(' ')}`, options, maxBytesPerDomain: maxBytes, backend, ...apiFacts, ...result }, null, 2)}\n`);
  say(`gap recovered (mixed held-out): ${Object.entries(result.gapRecovered).map(([k, v]) => `${k} ${(100 * v!).toFixed(1)}%`).join(', ') || 'n/a (no alone baseline)'}`);
  say(`results written to ${file}`);
  return 0;
}

/**
 * Asks the API teacher about every window it will be needed for: the training rows the students
 * will draw (plannedTrainingRows: the same seed, steps and batch size as trainLanguageModel) and
 * every held-out window (to measure the teacher as the students are measured).
 */
async function askApiTeacher(s: (k: string) => string | undefined, options: LmDistillOptions, splits: TextSplits, say: (line: string) => void) {
  const spec = parseLmSpec(options.student);
  const tokenFile = s('teacher-api-token-file');
  const token = tokenFile === undefined ? undefined : readFileSync(tokenFile, 'utf8').split('\n')[0]!.trim();
  const teacher = new ApiTeacher({
    endpoint: s('teacher-api')!,
    ...(token === undefined || token === '' ? {} : { token }),
    topK: int('api-top-k', s('api-top-k'), 10),
    vocab: spec.vocab,
    maxRequests: int('api-budget', s('api-budget'), 20000, 0),
    ...(s('api-cache') === undefined ? {} : { cacheDir: s('api-cache')! }),
    say,
  });
  const train = toSequences(splits.domains.flatMap((d) => d.train), spec.ctx);
  const asked: Array<{ data: TokenSequences; row: number }> = [];
  if (options.methods.includes('word')) for (const row of plannedTrainingRows(train.count, options.steps, options.batchSize, options.seed)) asked.push({ data: train, row });
  for (const d of splits.domains) {
    const held = toSequences(d.heldOut, spec.ctx);
    for (let row = 0; row < held.count; row++) asked.push({ data: held, row });
  }
  say(`API teacher: asking about ${asked.length} windows (top-${teacher.options.topK}, budget ${teacher.options.maxRequests} requests${s('api-cache') === undefined ? '' : `, cache ${s('api-cache')}`})`);
  const answers = await teacher.topKMany(asked.map(({ data, row }) => rowWindow(data, row)));
  return { teacher, model: answeredTeacher(spec, asked, answers) };
}

function loadData(spec: string): TextDomain[] {
  const [kind, langs] = spec.split(':');
  if (kind !== 'fortunes') throw new Error(`E_CONFIG: --data must be fortunes or fortunes:LANGS; got "${spec}" (use --text FILE for your own text)`);
  if (langs === undefined) {
    // Every language whose package is installed; English (fortunes-min) at least.
    const installed = Object.keys(FORTUNE_DOMAINS).filter((l) => {
      try {
        loadFortuneDomains([l]);
        return true;
      } catch {
        return false;
      }
    });
    return loadFortuneDomains(installed.length > 0 ? installed : ['en']);
  }
  return loadFortuneDomains(langs.split(',').map((l) => l.trim()));
}
