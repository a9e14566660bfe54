/**
 * `codistill distill`: local distillation in one process on the embedded MNIST digits — a
 * teacher and a student (or generations, or a multi-branch student), one method per run, or an
 * experiment config that repeats a run over several seeds and writes a results table.
 *
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { selectBackend } from '../client/backend.js';
import {
  DISTILL_METHODS,
  RECIPES,
  defaultDistillOptions,
  runDistillation,
  type DistillMethod,
  type DistillOptions,
  type DistillReport,
} from '../client/distill/index.js';
import { DistillError, type LossTermConfig } from '../client/losses/index.js';
import { probeSaveDir, QUANTIZATIONS, StudentFileError, type Quantization } from '../client/student-io/index.js';
import { keepStudent, saveDistilledStudent, takeSaveFlags } from './distill-student.js';

const USAGE = `usage: codistill distill --method METHOD [options]
       codistill distill --config FILE

Trains a teacher and a student on the embedded MNIST digits (10,000; by default 8,000 train /
2,000 test) in this process, prints progress per epoch, and writes the results as JSON.

methods:
${DISTILL_METHODS.map((method) => `  ${method.padEnd(9)} ${RECIPES[method].summary}`).join('\n')}
Every method but ban also trains the student on labels alone, with the same data, initial
weights, sample order and number of passes (the baseline); ban's generation 0 is that.

options (defaults depend on the method; \`--method M --help\` prints them):
  --teacher ARCH          teacher layers: d512,d512 (MLP), c8,p2,c16,p2,d64 (CNN), aliases mlp, cnn
  --student ARCH          student layers (ban: every generation's; one: split into shared + branch)
  --teacher-epochs N
  --epochs N              student epochs (ban: per generation; fitnets: stage 2)
  --hint-epochs N         fitnets stage 1
  --hint S:T              fitnets guided (student) and hint (teacher) layers
  --pairs S:T[,S:T…]      at/nst feature-map pairs, e.g. conv1:conv1,conv2:conv2
  --generations N         ban: generations after generation 0
  --branches N            one
  --shared-layers N       one: leading layers of --student shared by the branches
  --gate KIND             one: fc | fc-bn-relu (the paper's)
  --temperature T
  --alpha X               weight of the hard-label term in Hinton's objective, in [0, 1]
  --beta X                at: β (each pair weighted β/2 ÷ H·W); nst: λ (weight λ/2)
  --loss JSON             the student's loss instead: [{"name":"kd","weight":1,"params":{…}}, …]
  --train-size N          [8000]
  --test-size N           [2000]
  --batch-size N          [64]
  --lr X                  Adam learning rate [0.001]
  --seed N                data split, initial weights, sample order [1]
  --no-baseline           skip the labels-only student
  --backend NAME          node-gpu | node | wasm | cpu [automatic]
  --out FILE              results JSON [results/distill-<method>-<time>.json]
  --config FILE           run an experiment: a method and options over several seeds, with its
                          results JSON and RESULTS.md written beside the config
  --save DIR              where the distilled student goes, a tfjs layers model with its card
                          [beside --out: results/distill-<method>-<time>-student/]; not with --config
  --no-save               keep no student
  --quantize D            save the student's weights as float16 | uint8 [float32]
`;

function number(flag: string, raw: string | undefined, check: (x: number) => boolean, rule: string): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || !check(value)) throw new DistillError('E_CONFIG', `--${flag} must be ${rule}; got "${raw}"`);
  return value;
}
const positiveInt = (x: number) => Number.isInteger(x) && x >= 1;
const nonNegativeInt = (x: number) => Number.isInteger(x) && x >= 0;

function pair(flag: string, raw: string): { student: string; teacher: string } {
  const [student, teacher, extra] = raw.split(':');
  if (!student || !teacher || extra !== undefined) throw new DistillError('E_CONFIG', `--${flag} takes STUDENT:TEACHER feature names, e.g. conv2:conv2; got "${raw}"`);
  return { student, teacher };
}

/** Command-line options → DistillOptions (the method's defaults, overridden flag by flag). */
export function parseDistillArgs(args: string[]): { options: DistillOptions; out?: string; backend?: string; help: boolean } | { config: string; backend?: string } {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      method: { type: 'string' },
      teacher: { type: 'string' },
      student: { type: 'string' },
      'teacher-epochs': { type: 'string' },
      epochs: { type: 'string' },
      'hint-epochs': { type: 'string' },
      hint: { type: 'string' },
      pairs: { type: 'string' },
      generations: { type: 'string' },
      branches: { type: 'string' },
      'shared-layers': { type: 'string' },
      gate: { type: 'string' },
      temperature: { type: 'string' },
      alpha: { type: 'string' },
      beta: { type: 'string' },
      loss: { type: 'string' },
      'train-size': { type: 'string' },
      'test-size': { type: 'string' },
      'batch-size': { type: 'string' },
      lr: { type: 'string' },
      seed: { type: 'string' },
      'no-baseline': { type: 'boolean' },
      backend: { type: 'string' },
      out: { type: 'string' },
      config: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.config !== undefined) {
    const others = Object.keys(values).filter((k) => k !== 'config' && k !== 'backend');
    if (others.length > 0) throw new DistillError('E_CONFIG', `--config takes its options from the file; remove ${others.map((k) => `--${k}`).join(', ')}`);
    return { config: values.config, backend: values.backend };
  }
  if (values.method === undefined) {
    if (values.help === true) return { options: defaultDistillOptions('kd'), help: true };
    throw new DistillError('E_CONFIG', `--method is required: one of ${DISTILL_METHODS.join(', ')} (or --config FILE)`);
  }
  if (!(DISTILL_METHODS as readonly string[]).includes(values.method)) {
    throw new DistillError('E_CONFIG', `--method must be one of ${DISTILL_METHODS.join(', ')}; got "${values.method}"`);
  }
  const method = values.method as DistillMethod;
  const o: DistillOptions = defaultDistillOptions(method);
  const set = <K extends keyof DistillOptions>(key: K, value: DistillOptions[K] | undefined) => {
    if (value !== undefined) o[key] = value;
  };
  set('teacher', values.teacher);
  set('student', values.student);
  set('teacherEpochs', number('teacher-epochs', values['teacher-epochs'], positiveInt, 'an integer ≥ 1'));
  set('epochs', number('epochs', values.epochs, positiveInt, 'an integer ≥ 1'));
  set('hintEpochs', number('hint-epochs', values['hint-epochs'], positiveInt, 'an integer ≥ 1'));
  if (values.hint !== undefined) o.hint = pair('hint', values.hint);
  if (values.pairs !== undefined) o.pairs = values.pairs.split(',').map((p) => pair('pairs', p));
  set('generations', number('generations', values.generations, positiveInt, 'an integer ≥ 1'));
  set('branches', number('branches', values.branches, (x) => Number.isInteger(x) && x >= 2, 'an integer ≥ 2'));
  set('sharedLayers', number('shared-layers', values['shared-layers'], positiveInt, 'an integer ≥ 1'));
  if (values.gate !== undefined) {
    if (values.gate !== 'fc' && values.gate !== 'fc-bn-relu') throw new DistillError('E_CONFIG', `--gate must be one of fc, fc-bn-relu; got "${values.gate}"`);
    o.gate = values.gate;
  }
  set('temperature', number('temperature', values.temperature, (x) => x > 0, 'a number > 0'));
  set('alpha', number('alpha', values.alpha, (x) => x >= 0 && x <= 1, 'a number in [0, 1]'));
  set('beta', number('beta', values.beta, (x) => x >= 0, 'a number ≥ 0'));
  if (values.loss !== undefined) o.loss = parseLossJson(values.loss);
  set('trainSize', number('train-size', values['train-size'], positiveInt, 'an integer ≥ 1'));
  set('testSize', number('test-size', values['test-size'], positiveInt, 'an integer ≥ 1'));
  set('batchSize', number('batch-size', values['batch-size'], positiveInt, 'an integer ≥ 1'));
  set('learningRate', number('lr', values.lr, (x) => x > 0, 'a number > 0'));
  set('seed', number('seed', values.seed, (x) => nonNegativeInt(x) && x < 2 ** 20, 'an integer in [0, 2^20)'));
  if (values['no-baseline'] === true) o.baseline = false;
  return { options: o, out: values.out, backend: values.backend, help: values.help === true };
}

function parseLossJson(raw: string): LossTermConfig[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new DistillError('E_CONFIG', `--loss is not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(parsed) || parsed.some((t) => typeof t !== 'object' || t === null || typeof (t as { name?: unknown }).name !== 'string')) {
    throw new DistillError('E_CONFIG', '--loss must be a JSON list of {"name", "weight", "params"} terms');
  }
  return parsed as LossTermConfig[];
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/** The closing lines of a run: errors out of the test set for every model, and the gain. */
export function formatDistillSummary(report: DistillReport): string {
  const n = report.data.test;
  const lines = [`\nsummary: test errors out of ${n} (${report.method}, seed ${report.options.seed}, ${report.seconds.toFixed(0)} s on ${report.backend})`];
  const row = (label: string, architecture: string, errors: number, accuracy: number) =>
    lines.push(`  ${label.padEnd(34)} ${String(errors).padStart(5)}   ${pct(accuracy).padStart(7)}   ${architecture}`);
  if (report.generations !== undefined) {
    report.generations.forEach((g, i) => row(`generation ${i}${i === 0 ? ' (labels)' : ''}`, g.architecture, g.errors, g.accuracy));
    for (const e of report.ensembles ?? []) row(`ensemble of ${e.members.length === 1 ? e.members[0] : `${e.members[0]}…${e.members.at(-1)!.replace('generation ', '')}`}`, '', e.errors, e.accuracy);
    return lines.join('\n');
  }
  if (report.teacher !== undefined) row('teacher', report.teacher.architecture, report.teacher.errors, report.teacher.accuracy);
  if (report.baseline !== undefined) row('student on labels alone', report.baseline.architecture, report.baseline.errors, report.baseline.accuracy);
  report.student.branches?.forEach((b, i) => row(`ONE branch ${i}`, '', b.errors, b.accuracy));
  row(report.method === 'one' ? 'ONE ensemble (gated)' : `student distilled (${report.method})`, report.student.architecture, report.student.errors, report.student.accuracy);
  if (report.baseline !== undefined) {
    const fewer = report.baseline.errors - report.student.errors;
    const subject = report.method === 'one' ? 'the gated ensemble' : 'distillation';
    lines.push(`  ${subject} ${fewer >= 0 ? 'removed' : 'added'} ${Math.abs(fewer)} errors relative to the baseline (${report.baseline.errors} → ${report.student.errors})`);
  }
  return lines.join('\n');
}

function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

// ---------------------------------------------------------------- experiments (--config)

/** One experiment = one config file: a method, its options, the seeds, and where results go. */
export interface DistillExperimentConfig {
  name: string;
  description?: string;
  /** Printed at the end of RESULTS.md: what earlier runs showed, caveats. */
  notes?: string;
  method: DistillMethod;
  seeds: number[];
  /** Overrides of the method's defaults (DistillOptions without method and seed). */
  options?: Partial<Omit<DistillOptions, 'method' | 'seed'>>;
  /** Paths relative to the config file. */
  results: string;
  report: string;
}

export interface SeriesSummary {
  label: string;
  /** Errors out of the test set, per seed in config order. */
  errors: number[];
  mean: number;
  /** Sample standard deviation over seeds. */
  sd: number;
  min: number;
  max: number;
}

export interface DistillExperimentResult {
  config: DistillExperimentConfig;
  command: string;
  backend: string;
  /** The source the run was built from, when git can tell: results move when kernels change. */
  revision?: { commit: string; dirty: boolean };
  testSize: number;
  series: SeriesSummary[];
  /** Baseline errors minus distilled errors, per seed (positive: distillation helped). */
  improvement?: SeriesSummary;
  runs: DistillReport[];
  startedAt: string;
  seconds: number;
}

export function readExperimentConfig(path: string): DistillExperimentConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new DistillError('E_CONFIG', `cannot read experiment config ${path}: ${(error as Error).message}`);
  }
  const c = parsed as Partial<DistillExperimentConfig>;
  if (typeof c.name !== 'string' || c.name.length === 0) throw new DistillError('E_CONFIG', `${path}: "name" must be a non-empty string`);
  if (typeof c.method !== 'string' || !(DISTILL_METHODS as readonly string[]).includes(c.method)) {
    throw new DistillError('E_CONFIG', `${path}: "method" must be one of ${DISTILL_METHODS.join(', ')}`);
  }
  if (!Array.isArray(c.seeds) || c.seeds.length === 0 || !c.seeds.every((s) => Number.isInteger(s) && s >= 0 && s < 2 ** 20)) {
    throw new DistillError('E_CONFIG', `${path}: "seeds" must be a non-empty list of integers in [0, 2^20)`);
  }
  if (c.notes !== undefined && typeof c.notes !== 'string') throw new DistillError('E_CONFIG', `${path}: "notes" must be a string`);
  if (typeof c.results !== 'string' || typeof c.report !== 'string') throw new DistillError('E_CONFIG', `${path}: "results" and "report" must be paths relative to the config`);
  if (c.options !== undefined) {
    const known = new Set(Object.keys(defaultDistillOptions(c.method)).concat('sharedLayers', 'loss'));
    const unknown = Object.keys(c.options).filter((k) => !known.has(k) || k === 'method' || k === 'seed');
    if (unknown.length > 0) throw new DistillError('E_CONFIG', `${path}: unknown option(s) ${unknown.join(', ')}`);
  }
  return c as DistillExperimentConfig;
}

function series(label: string, errors: number[]): SeriesSummary {
  const mean = errors.reduce((a, b) => a + b, 0) / errors.length;
  const sd = errors.length > 1 ? Math.sqrt(errors.reduce((a, e) => a + (e - mean) ** 2, 0) / (errors.length - 1)) : 0;
  return { label, errors, mean, sd, min: Math.min(...errors), max: Math.max(...errors) };
}

/** The errors a report holds, by label, in table order. */
function errorsOf(report: DistillReport): Array<[string, number]> {
  const rows: Array<[string, number]> = [];
  if (report.generations !== undefined) {
    report.generations.forEach((g, i) => rows.push([`generation ${i}${i === 0 ? ' (labels)' : ''} — ${g.architecture}`, g.errors]));
    for (const e of report.ensembles ?? []) rows.push([`ensemble of ${e.members.join(', ')}`, e.errors]);
    return rows;
  }
  if (report.teacher !== undefined) rows.push([`teacher — ${report.teacher.architecture}`, report.teacher.errors]);
  if (report.baseline !== undefined) rows.push([`student on labels alone — ${report.baseline.architecture}`, report.baseline.errors]);
  report.student.branches?.forEach((b, i) => rows.push([`ONE branch ${i}`, b.errors]));
  rows.push([`${report.method === 'one' ? 'ONE gated ensemble' : `student distilled (${report.method})`} — ${report.student.architecture}`, report.student.errors]);
  return rows;
}

/** HEAD's commit and whether the working tree differs from it; undefined outside a git checkout. */
function gitRevision(cwd: string): { commit: string; dirty: boolean } | undefined {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return { commit: git('rev-parse', 'HEAD'), dirty: git('status', '--porcelain', '--untracked-files=no').length > 0 };
  } catch {
    return undefined;
  }
}

export async function runExperiment(configPath: string, backendName: string | undefined, line: (text: string) => void): Promise<DistillExperimentResult> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const config = readExperimentConfig(configPath);
  const backend = await selectBackend(backendName);
  const runs: DistillReport[] = [];
  for (const seed of config.seeds) {
    const options: DistillOptions = { ...defaultDistillOptions(config.method), ...config.options, method: config.method, seed };
    line(`\n=== ${config.name}: ${config.method}, seed ${seed} ===`);
    const report = await runDistillation(options, { line }, backend);
    line(formatDistillSummary(report));
    runs.push(report);
  }
  const labels = errorsOf(runs[0]!).map(([label]) => label);
  const table = labels.map((label, i) => series(label, runs.map((r) => errorsOf(r)[i]![1])));
  const result: DistillExperimentResult = {
    config,
    command: `codistill distill --config ${relative(process.cwd(), configPath) || configPath}`,
    backend,
    revision: gitRevision(dirname(configPath)),
    testSize: runs[0]!.data.test,
    series: table,
    runs,
    startedAt,
    seconds: (performance.now() - started) / 1000,
  };
  if (runs.every((r) => r.baseline !== undefined)) {
    result.improvement = series('baseline errors − distilled errors', runs.map((r) => r.baseline!.errors - r.student.errors));
  }
  return result;
}

const fmt = (x: number, digits = 1) => x.toFixed(digits);

/** Mean test errors over seeds at four points of training, baseline against distilled student: did they converge? */
function learningCurves(runs: readonly DistillReport[]): string[] {
  const epochs = Math.min(...runs.map((r) => Math.min(r.baseline?.history.length ?? 0, r.student.history.length)));
  if (epochs === 0 || runs.some((r) => r.baseline!.history.some((h) => h.errors === undefined))) return [];
  const points = [...new Set([1, 2, 3, 4].map((k) => Math.max(1, Math.round((k * epochs) / 4))))];
  const meanAt = (pick: (r: DistillReport) => ModelHistory, epoch: number) => runs.reduce((a, r) => a + pick(r)[epoch - 1]!.errors!, 0) / runs.length;
  return [
    `Mean test errors over the seeds during training (monitoring only; the table above is the last epoch):`,
    '',
    `| after epoch | ${points.join(' | ')} |`,
    `|---|${points.map(() => '---:').join('|')}|`,
    `| student on labels alone | ${points.map((e) => fmt(meanAt((r) => r.baseline!.history, e))).join(' | ')} |`,
    `| student distilled | ${points.map((e) => fmt(meanAt((r) => r.student.history, e))).join(' | ')} |`,
  ];
}
type ModelHistory = DistillReport['student']['history'];

/** RESULTS.md for an experiment: what ran, the table, the per-seed comparison. */
export function formatExperimentReport(result: DistillExperimentResult): string {
  const { config } = result;
  const first = result.runs[0]!;
  const o = first.options;
  const seeds = config.seeds;
  const out: string[] = [];
  out.push(`# ${config.name}`, '');
  if (config.description !== undefined) out.push(config.description, '');
  const configPath = result.command.replace(/^codistill distill --config /, '');
  out.push(
    `Produced by \`${result.command}\` (the same as \`node dist/simulations/cli.js distill --config ${configPath}\` after \`npm run build\`), ` +
      `on the ${result.backend} backend in ${fmt(result.seconds / 60)} minutes, started ${result.startedAt}` +
      `${result.revision === undefined ? '' : `, from commit ${result.revision.commit.slice(0, 12)}${result.revision.dirty ? ' with uncommitted changes' : ''}`}. The config is \`config.json\` beside this file; ` +
      `every run's options, per-epoch history and test errors are in \`${config.results}\`.`,
    '',
    `Data: the embedded MNIST digits (10,000), split per seed into ${o.trainSize} training and ${result.testSize} test samples (the split, the initial weights and the sample order all follow the seed). ` +
      `Errors are counted on the ${result.testSize} test samples, after the last epoch — nothing is selected on the test set.`,
    '',
  );
  if (first.teacher !== undefined && first.method !== 'ban') {
    out.push(
      `Teacher ${first.teacher.architecture} (${first.teacher.parameters.toLocaleString('en-US')} parameters), ${o.teacherEpochs} epochs on labels. ` +
        `Student ${first.student.architecture} (${first.student.parameters.toLocaleString('en-US')} parameters), ${first.student.stages.map((s) => `${s.epochs} epochs of ${s.loss.map((t) => `${t.weight}·${t.name}${t.params ? JSON.stringify(t.params) : ''}`).join(' + ')}`).join(', then ')}; ` +
        `the baseline is the same student (same initial weights and sample order) trained on labels alone for the same number of passes. Adam, learning rate ${o.learningRate}, batch ${o.batchSize}.`,
      '',
    );
  }
  const header = `| | ${seeds.map((s) => `seed ${s}`).join(' | ')} | mean ± sd | min–max |`;
  out.push(`Test errors out of ${result.testSize}:`, '', header, `|---|${seeds.map(() => '---:').join('|')}|---:|---:|`);
  for (const s of result.series) out.push(`| ${s.label} | ${s.errors.join(' | ')} | ${fmt(s.mean)} ± ${fmt(s.sd)} | ${s.min}–${s.max} |`);
  if (result.improvement !== undefined) {
    const imp = result.improvement;
    out.push(`| **${imp.label}** | ${imp.errors.join(' | ')} | ${fmt(imp.mean)} ± ${fmt(imp.sd)} | ${imp.min}–${imp.max} |`);
    const better = imp.errors.filter((e) => e > 0).length;
    const baseline = result.series.find((s) => s.label.startsWith('student on labels alone'))!;
    out.push(
      '',
      `The distilled student made fewer test errors than the labels-only student in ${better} of ${seeds.length} seeds; ` +
        `on average ${fmt(imp.mean)} fewer (${fmt((100 * imp.mean) / baseline.mean)}% of the baseline's ${fmt(baseline.mean)}), ` +
        `spread ${fmt(imp.sd)} (sample sd over seeds); for comparison, the baseline's own errors vary by ${fmt(baseline.sd)} (sd) from seed to seed.`,
    );
    out.push('', ...learningCurves(result.runs));
  }
  out.push(
    '',
    ...(config.notes === undefined ? [] : ['## Notes', '', config.notes, '']),
    `For scale: Hinton, Vinyals & Dean (2015, §3) report 146 test errors for a 784-800-800-10 net trained on labels and 74 for the same net distilled at T = 20 from a 1200-1200 teacher (67 errors; dropout, and inputs jittered by up to two pixels), on all 60,000 MNIST training images; here the data, the nets and the training are far smaller.`,
    '',
  );
  return out.join('\n');
}

// ---------------------------------------------------------------- the command

export async function runDistillCommand(args: string[]): Promise<number> {
  const out = (text: string) => process.stdout.write(`${text}\n`);
  let parsed: ReturnType<typeof parseDistillArgs>;
  let keep: ReturnType<typeof takeSaveFlags>;
  try {
    keep = takeSaveFlags(args);
    parsed = parseDistillArgs(keep.rest);
  } catch (error) {
    process.stderr.write(`codistill distill: ${(error as Error).message}\n`);
    return 2;
  }
  try {
    if ('config' in parsed) {
      const configPath = resolve(parsed.config);
      const result = await runExperiment(configPath, parsed.backend, out);
      const base = dirname(configPath);
      const resultsPath = join(base, result.config.results);
      const reportPath = join(base, result.config.report);
      writeJson(resultsPath, result);
      mkdirSync(dirname(reportPath), { recursive: true });
      writeFileSync(reportPath, formatExperimentReport(result));
      out(`\n${formatExperimentReport(result)}`);
      out(`results written to ${relative(process.cwd(), resultsPath)} and ${relative(process.cwd(), reportPath)}`);
      return 0;
    }
    if (parsed.help) {
      process.stdout.write(USAGE);
      if (args.includes('--method')) out(`\ndefaults for --method ${parsed.options.method}:\n${JSON.stringify(parsed.options, null, 2)}`);
      return 0;
    }
    const path = parsed.out ?? `results/distill-${parsed.options.method}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
    const studentDir = keep.noSave ? undefined : (keep.save ?? path.replace(/\.json$/, '') + '-student');
    if (keep.quantize !== undefined && !(QUANTIZATIONS as readonly string[]).includes(keep.quantize)) throw new DistillError('E_CONFIG', `--quantize must be one of ${QUANTIZATIONS.join(', ')}; got "${keep.quantize}"`);
    if (studentDir !== undefined) probeSaveDir(studentDir);
    const backend = await selectBackend(parsed.backend);
    const { hooks, kept } = keepStudent();
    const report = await runDistillation(parsed.options, { line: out }, backend, hooks);
    out(formatDistillSummary(report));
    writeJson(path, report);
    out(`results written to ${path}`);
    if (studentDir !== undefined) out(await saveDistilledStudent(report, parsed.options, kept.student, studentDir, backend, keep.quantize as Quantization | undefined));
    return 0;
  } catch (error) {
    process.stderr.write(`codistill distill: ${(error as Error).message}\n`);
    return error instanceof DistillError || error instanceof StudentFileError ? 2 : 1;
  }
}

