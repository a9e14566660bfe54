/**
 * Offline distillation of a language model into a smaller one, on text split by domain:
 *
 *  - `alone`: the small model trained on the text by itself (token-ce), the baseline;
 *  - `word`: word-level KD (Kim & Rush 2016, §3.1): on the same text, the student matches the
 *    teacher's distribution at every position, α·token-CE + (1 − α)·T²·KL(teacher ‖ student);
 *  - `sequence`: sequence-level KD (Kim & Rush 2016, §3.2): the teacher writes text (sampled, or
 *    greedy at temperature 0, from BOS: the LM analogue of decoding each source) and the student
 *    is trained with token-ce on it, together with the real text (the paper's students also see
 *    the original data when fine-tuned; `sequenceData: 'generated'` gives its plain form).
 *
 * Every student starts from the same initial weights and draws the same batches (same seed);
 * all are measured in bits per byte on each domain's held-out text and on the mixed set.
 */
import { bytesToSequences, toSequences, type TextSplits, type TokenSequences } from '../data/text.js';
import { continueBatch } from './generate.js';
import { createLanguageModel, lmSpecName, type LanguageModel } from './model.js';
import { BOS } from './tokenizer.js';
import { bitsPerByte, trainLanguageModel } from './train.js';

export const LM_DISTILL_METHODS = ['alone', 'word', 'sequence'] as const;
export type LmDistillMethod = (typeof LM_DISTILL_METHODS)[number];

export interface LmDistillOptions {
  teacher: string;
  student: string;
  methods: LmDistillMethod[];
  teacherSteps: number;
  steps: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  /** Word-level KD. */
  temperature: number;
  alpha: number;
  /** Sequence-level KD: how many sequences the teacher writes, at what sampling temperature (0: greedy) and top-k. */
  sequenceSamples: number;
  sequenceTemperature: number;
  sequenceTopK: number;
  sequenceData: 'mixed' | 'generated';
}

export interface Evaluation {
  mixed: number;
  /** Bytes of the mixed held-out text. */
  bytes: number;
  perDomain: Record<string, number>;
}

export interface LmDistillResult {
  teacher: { architecture: string; parameters: number; heldOut: Evaluation; seconds: number };
  students: Array<{ method: LmDistillMethod; architecture: string; parameters: number; heldOut: Evaluation; seconds: number; trainBytes: number }>;
  /** Share of the (alone − teacher) mixed bits-per-byte gap each KD student recovers. */
  gapRecovered: Partial<Record<LmDistillMethod, number>>;
}

export interface LmDistillHooks {
  say: (line: string) => void;
  /** A teacher trained before (its spec must match options.teacher's vocabulary); else trained here. */
  teacherModel?: LanguageModel;
  /**
   * A teacher known only by its answers (an API teacher: client/lm/api-teacher.ts answeredTeacher)
   * on the training rows the students will draw and on the held-out text: not trained here, and
   * word-level KD only (sequence-level KD would need it to write text).
   */
  answeredTeacher?: LanguageModel;
  /** Train the given teacherModel for options.teacherSteps more steps before distilling. */
  continueTeacher?: boolean;
  /** Called with each trained model (teacher first), e.g. to save it; the model is disposed after. */
  trained?: (role: 'teacher' | LmDistillMethod, model: LanguageModel, result: { heldOut: Evaluation; trainBytes: number }) => void;
}

export function evaluateLm(model: LanguageModel, splits: TextSplits): Evaluation {
  const ctx = model.spec.ctx;
  const perDomain: Record<string, number> = {};
  for (const d of splits.domains) perDomain[d.name] = bitsPerByte(model, toSequences(d.heldOut, ctx));
  const mixed = toSequences(splits.mixedHeldOut, ctx);
  return { mixed: bitsPerByte(model, mixed), bytes: mixed.bytes, perDomain };
}

const format = (e: Evaluation) => `mixed ${e.mixed.toFixed(3)} bpb (${Object.entries(e.perDomain).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')})`;

export function runLmDistillation(options: LmDistillOptions, splits: TextSplits, hooks: LmDistillHooks): LmDistillResult {
  const { say } = hooks;
  const teacherSpec = createSpecProbe(options.teacher);
  const studentSpec = createSpecProbe(options.student);
  if (studentSpec.ctx > teacherSpec.ctx) throw new Error(`E_CONFIG: the student's context (${studentSpec.ctx}) is longer than the teacher's (${teacherSpec.ctx}); the teacher could not score its sequences`);
  const ctx = studentSpec.ctx;
  const realText = toSequences(splits.domains.flatMap((d) => d.train), ctx);
  const common = { batchSize: options.batchSize, learningRate: options.learningRate, progressEvery: 25 };

  if (hooks.answeredTeacher !== undefined && options.methods.includes('sequence')) {
    throw new Error('E_CONFIG: an API teacher gives distributions, not text: sequence-level KD needs a local teacher (--methods alone,word)');
  }
  let started = Date.now();
  let teacher = hooks.answeredTeacher ?? hooks.teacherModel;
  if (teacher !== undefined && hooks.continueTeacher === true) {
    // A saved teacher trained further (a fresh Adam state), e.g. when its first run was too short.
    say(`teacher ${lmSpecName(teacher.spec)} (loaded): ${options.teacherSteps} more steps on ${realText.bytes.toLocaleString('en-US')} bytes`);
    trainLanguageModel(teacher, realText, { ...common, steps: options.teacherSteps, seed: options.seed + 2000, loss: [{ name: 'token-ce', weight: 1 }], onProgress: (s, l) => say(`  teacher step ${s}/${options.teacherSteps}: loss ${l.toFixed(4)} (${(l / Math.LN2).toFixed(3)} bits/byte)`) });
  }
  if (teacher === undefined) {
    teacher = createLanguageModel(options.teacher, options.seed + 1000);
    say(`teacher ${lmSpecName(teacher.spec)}: ${teacher.countParams().toLocaleString('en-US')} parameters, ${options.teacherSteps} steps on ${realText.bytes.toLocaleString('en-US')} bytes`);
    trainLanguageModel(teacher, realText, { ...common, steps: options.teacherSteps, seed: options.seed + 1000, loss: [{ name: 'token-ce', weight: 1 }], onProgress: (s, l) => say(`  teacher step ${s}/${options.teacherSteps}: loss ${l.toFixed(4)} (${(l / Math.LN2).toFixed(3)} bits/byte)`) });
  }
  const teacherEval = evaluateLm(teacher, splits);
  const teacherResult = { architecture: hooks.answeredTeacher === undefined ? lmSpecName(teacher.spec) : 'API teacher (top-k answers)', parameters: teacher.countParams(), heldOut: teacherEval, seconds: (Date.now() - started) / 1000 };
  say(`teacher held-out: ${format(teacherEval)}`);
  hooks.trained?.('teacher', teacher, { heldOut: teacherEval, trainBytes: realText.bytes });

  const students: LmDistillResult['students'] = [];
  for (const method of options.methods) {
    started = Date.now();
    let data: TokenSequences = realText;
    if (method === 'sequence') {
      const samples = teacherSamples(teacher, options, ctx, say);
      data = bytesToSequences(options.sequenceData === 'generated' ? samples : [...splits.domains.flatMap((d) => d.train).map((t) => new TextEncoder().encode(t)), ...samples], ctx);
    }
    const student = createLanguageModel(options.student, options.seed);
    const loss = method === 'word' ? [{ name: 'token-kd', weight: 1, params: { temperature: options.temperature, alpha: options.alpha } }] : [{ name: 'token-ce', weight: 1 }];
    say(`student (${method}) ${lmSpecName(student.spec)}: ${student.countParams().toLocaleString('en-US')} parameters, ${options.steps} steps on ${data.bytes.toLocaleString('en-US')} bytes, loss ${loss.map((t) => t.name).join(' + ')}`);
    trainLanguageModel(student, data, {
      ...common,
      steps: options.steps,
      seed: options.seed,
      loss,
      ...(method === 'word' ? { teacher } : {}),
      onProgress: (s, l) => say(`  ${method} step ${s}/${options.steps}: loss ${l.toFixed(4)}`),
    });
    const heldOut = evaluateLm(student, splits);
    say(`student (${method}) held-out: ${format(heldOut)}`);
    hooks.trained?.(method, student, { heldOut, trainBytes: data.bytes });
    students.push({ method, architecture: lmSpecName(student.spec), parameters: student.countParams(), heldOut, seconds: (Date.now() - started) / 1000, trainBytes: data.bytes });
    student.dispose();
  }
  if (hooks.teacherModel === undefined && hooks.answeredTeacher === undefined) teacher.dispose();

  const alone = students.find((s) => s.method === 'alone');
  const gapRecovered: LmDistillResult['gapRecovered'] = {};
  if (alone !== undefined) {
    const gap = alone.heldOut.mixed - teacherEval.mixed;
    for (const s of students) if (s.method !== 'alone') gapRecovered[s.method] = (alone.heldOut.mixed - s.heldOut.mixed) / gap;
  }
  return { teacher: teacherResult, students, gapRecovered };
}

function createSpecProbe(name: string) {
  const model = createLanguageModel(name, 0);
  const spec = model.spec;
  model.dispose();
  return spec;
}

/** The teacher's text for sequence-level KD: `sequenceSamples` sequences of ctx bytes from BOS, 64 at a time. */
function teacherSamples(teacher: LanguageModel, options: LmDistillOptions, ctx: number, say: (line: string) => void): Uint8Array[] {
  const out: Uint8Array[] = [];
  const started = Date.now();
  for (let done = 0; done < options.sequenceSamples; done += 64) {
    const n = Math.min(64, options.sequenceSamples - done);
    const rows = continueBatch(teacher, Array.from({ length: n }, () => [BOS]), {
      maxTokens: ctx,
      temperature: options.sequenceTemperature,
      topK: options.sequenceTopK,
      seed: (options.seed + 77 * (done + 1)) >>> 0,
    });
    for (const r of rows) out.push(Uint8Array.from(r));
    say(`  teacher wrote ${done + n}/${options.sequenceSamples} sequences (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  }
  return out;
}
