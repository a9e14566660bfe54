/**
 * `codistill client`: a participant on a site's own data, with no code to write. The data stay
 * on the machine; only what the session's algorithm exchanges (predictions, class logits, or
 * weights for FedAvg) leaves it.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { SessionInfo } from '../protocol/index.js';
import { selectBackend } from './backend.js';
import { loadCsv } from './data/csv.js';
import { subset, type LabeledDataset } from './data/dataset.js';
import { loadIdxDataset, loadIdxFolder, readIdxFile } from './data/idx.js';
import { splitDataset } from './data/mnist.js';
import { createModel, isModelName, type ModelName } from './models.js';
import { runParticipant, type ParticipantSummary, type RoundResult } from './participant.js';
import { Student } from './student.js';
import { loadStudent, preprocessingOf, probeFolder, probeSaveDir, QUANTIZATIONS, saveStudent, type CardFacts, type Quantization } from './student-io/index.js';
import { numberFlag } from './flags.js';

const USAGE = `usage: codistill client --server URL --session ID --data PATH --model NAME|DIR|model.json [options]
       codistill client --partition PLAN#i [--server URL] [options]
  --partition PLAN#i    member i of a plan written by codistill simulate --plan PLAN: its shard, the test set
                        it evaluates on, the reference set, model, role, token, seed, epochs, batch size and
                        learning rate, the session and the coordinator's URL — every one of them still
                        overridden by its own flag; the round log and student go to PLAN/<member>/
  --server URL          the coordinator, e.g. https://coordinator.example.org:8080
  --session ID          the session to join
  --token TOKEN         this participant's token (or set CODISTILL_TOKEN, which keeps it out of shell history)
  --data PATH           private data: a CSV file with a header and a label column, or an IDX folder (MNIST family)
  --label COLUMN        the CSV label column [label]
  --reference PATH      the session's shared reference set: an IDX images file or a CSV (its label column is
                        read only for --pretrain-on-reference)
  --pretrain-on-reference N  FedMD's transfer learning before round 1: N epochs on the labelled reference set,
                        then N on the private data; needs the reference labels — the CSV's label column,
                        or --reference-labels for an IDX reference [0: off]
  --reference-labels FILE    the IDX labels file of an IDX --reference (for --pretrain-on-reference)
  --model NAME|DIR|FILE mlp | mlp:H1[,H2…] | cnn (built here), or a saved student to start from: its folder (model.json,
                        weights, card.json, as --save writes it) or any tfjs layers model.json
  --classes N           the session's number of classes, for a model built here [learned from the session:
                        a site whose data lacks the highest classes still joins]
  --class-names A,B,…   for a CSV whose labels are names: the session's classes in order, so that every
                        site numbers them alike [the names in this file, sorted — the same at every site
                        only if every site holds every class; a saved student's card names them too]
  --epochs N            local epochs per round [1]
  --batch-size N        [32]
  --lr X                Adam learning rate [0.001]
  --validation F        share of the private data held out to report accuracy on, when the data has no test split [0.1]
  --ca FILE             PEM certificate authority to trust for an https:// coordinator (e.g. its self-signed certificate)
  --role ROLE           participant | teacher (contributes predictions, never trains) | distiller (holds no
                        private data, contributes nothing, and learns one global student from the ensemble
                        of every participant's predictions on the reference set; needs --reference, and
                        its --data serves only as its validation set and to fix the input shape: all of
                        it is held out, --validation is ignored) [participant]
  --backend NAME        node-gpu | node | wasm | cpu [automatic]
  --seed N              shuffling, validation split and weight initialisation [1]
  --privacy-noise Z     differential privacy on the uploads: clip, add Gaussian noise σ = Z·C, and report
                        the (ε, δ) spent to the coordinator every round (off unless given; see README, Privacy)
  --privacy-clip C      L2 clipping bound of each uploaded prediction row (FD: of each sample's logits) [1]
  --privacy-delta D     the δ at which the spent ε is reported [1e-5]
  --privacy-seed N      seed of the noise, for reproducible tests only — a known seed lets anyone
                        subtract the noise [drawn from the operating system]
  --reconnect-attempts N  how often to try to reach the coordinator again after the link drops or it restarts,
                        waiting 0.5 s, then up to 5 s between tries [30: about two minutes]
  --out FILE            this participant's round log [codistill-client-<session>-<participant>.json]
  --save DIR            where the trained student goes, as a tfjs layers model with its card
                        [students/<session>/<participant>/]; the folder is checked before training starts
  --no-save             keep no student
  --quantize D          save the student's weights as float16 | uint8 (tfjs-converter's quantisation) [float32]
  --checkpoint-every N  also save the student every N rounds (the same folder; the last save wins)
A language-model site (a session with tokenizer and positions) gives --text FILE instead of --data: below.
`;

/** A plan's shared part (PLAN/plan.json), as simulations/plan.ts writes it. */
export interface PlanFile {
  format: typeof PLAN_FORMAT;
  session: string;
  algorithm: string;
  /** The coordinator's URL the plan was written for; --server overrides it. */
  server: string;
  numClasses: number;
  sampleShape: number[];
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** IDX files relative to the plan: the shared reference set's features, the held-out test pair's prefix in `test`. */
  reference: string;
  test: string;
  /** What u8 features were divided by before the plan saved them as float32 (255 for the MNIST family). */
  u8Divisor: number;
  /** Every member, by index: the folder holding its participant.json (and shard). */
  members: Array<{ index: number; id: string; role: string; model: string; folder: string; group?: number }>;
}

/** One member's own part (PLAN/<folder>/participant.json). */
export interface PlanMember {
  index: number;
  id: string;
  role: 'participant' | 'teacher' | 'distiller';
  model: string;
  seed: number;
  token: string;
  /** A teacher's passes over its shard before round 1 (it never trains afterwards). */
  pretrainEpochs?: number;
  /** Its shard's IDX pair prefix in its folder; none for a distiller (it holds no private data). */
  train?: string;
  /** sha256 of the shard's float32 features then int32 labels, checked when it is read. */
  sha256?: string;
  samples: number;
  privacy?: { noiseMultiplier: number; clip: number; delta: number };
}

export const PLAN_FORMAT = 'codistill-plan/1';

/** sha256 of a data set's float32 features then its int32 labels: how a plan names each shard. */
export function shardDigest(d: LabeledDataset): string {
  return createHash('sha256').update(new Uint8Array(d.x.buffer, d.x.byteOffset, d.x.byteLength)).update(new Uint8Array(Int32Array.from(d.y).buffer)).digest('hex');
}

/** Reads `PLAN#i`: the plan, member i, and its data (the shard checked against its digest) with the plan's test set. */
export function readPartition(spec: string): { dir: string; plan: PlanFile; member: PlanMember; folder: string; train: LabeledDataset; test: LabeledDataset; reference: string } {
  const at = spec.lastIndexOf('#');
  const dir = at < 0 ? '' : spec.slice(0, at);
  const index = at < 0 ? Number.NaN : Number(spec.slice(at + 1));
  if (dir === '' || !Number.isInteger(index) || index < 0 || spec.slice(at + 1).trim() === '') {
    throw new Error(`--partition must be PLAN#i, a plan folder and a member index (e.g. plan#0); got "${spec}"`);
  }
  const readJson = <T>(path: string, what: string): T => {
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as T;
    } catch (error) {
      throw new Error(`--partition ${spec}: cannot read ${what} ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (write the plan with codistill simulate --plan DIR)' : (error as Error).message}`);
    }
  };
  const plan = readJson<PlanFile>(join(dir, 'plan.json'), 'the plan');
  if (plan.format !== PLAN_FORMAT) throw new Error(`--partition ${spec}: ${join(dir, 'plan.json')} is ${JSON.stringify(plan.format)}, not a ${PLAN_FORMAT} plan`);
  const entry = plan.members[index];
  if (entry === undefined) throw new Error(`--partition ${spec}: the plan has members 0 to ${plan.members.length - 1}; there is no member ${index}`);
  const folder = join(dir, entry.folder);
  const member = readJson<PlanMember>(join(folder, 'participant.json'), `member ${index}'s file`);
  const idx = (prefix: string, numClasses: number) => {
    const rank = 1 + plan.sampleShape.length;
    return loadIdxDataset(`${prefix}-images-idx${rank}-ubyte`, `${prefix}-labels-idx1-ubyte`, { numClasses });
  };
  const test = idx(join(dir, plan.test), plan.numClasses);
  let train: LabeledDataset;
  if (member.train === undefined) train = subset(test, []);
  else {
    train = idx(join(folder, member.train), plan.numClasses);
    const digest = shardDigest(train);
    if (digest !== member.sha256) throw new Error(`E_DATA: --partition ${spec}: the shard in ${folder} has sha256 ${digest.slice(0, 16)}…; the plan wrote ${member.sha256?.slice(0, 16)}… (a partial or altered copy?)`);
  }
  return { dir, plan, member, folder, train, test, reference: join(dir, plan.reference) };
}

/** Private data from a CSV file or an IDX folder, with its own test split if the source has one. */
function loadPrivateData(path: string, label: string | undefined, numClasses?: number, classNames?: readonly string[]): { train: LabeledDataset; test?: LabeledDataset; u8Divisor: number; classNames?: string[] } {
  let isFolder: boolean;
  try {
    isFolder = statSync(path).isDirectory();
  } catch {
    throw new Error(`--data ${path}: no such file or folder`);
  }
  if (isFolder) {
    // The IDX loader divides u8 images by 255 (card.ts, Preprocessing).
    const folder = loadIdxFolder(path, numClasses === undefined ? {} : { numClasses });
    return { train: folder.train, test: folder.test, u8Divisor: 255 };
  }
  const csv = loadCsv(path, { label, ...(numClasses === undefined ? {} : { numClasses }), ...(classNames === undefined ? {} : { classNames }) });
  return { train: csv, u8Divisor: csv.preprocessing.divisor, ...(csv.classNames === undefined ? {} : { classNames: csv.classNames }) };
}

/** Reference features from an IDX images file or a CSV (labels, if present, dropped). */
function loadReference(path: string, label: string | undefined, sampleSize: number): Float32Array {
  let features: Float32Array;
  if (/\.csv(\.gz)?$/i.test(path)) {
    features = loadCsv(path, { label }).x;
  } else {
    const idx = readIdxFile(path);
    const scale = idx.dtype === 'u8' ? 1 / 255 : 1;
    features = Float32Array.from(idx.data as ArrayLike<number>, (v) => v * scale);
  }
  if (features.length % sampleSize !== 0) {
    throw new Error(`--reference ${path}: ${features.length} values are not a whole number of samples of ${sampleSize} features (the private data's)`);
  }
  return features;
}

/**
 * The reference set's labels, for FedMD's transfer learning, where they are public: a CSV
 * reference's label column (named as the private data's), or an IDX labels file beside an IDX
 * reference. String labels are numbered as the private data's classes.
 */
function loadReferenceLabels(path: string, label: string | undefined, labelsPath: string | undefined, rows: number, classNames: string[] | undefined): Int32Array {
  let labels: Int32Array;
  if (/\.csv(\.gz)?$/i.test(path)) {
    if (labelsPath !== undefined) throw new Error(`--reference-labels is for an IDX reference; the CSV ${path} carries its labels in its label column`);
    try {
      labels = loadCsv(path, { label, ...(classNames === undefined ? {} : { classNames }) }).y;
    } catch (error) {
      throw new Error(`--pretrain-on-reference needs the reference set's labels: ${(error as Error).message}`);
    }
  } else {
    if (labelsPath === undefined) throw new Error(`--pretrain-on-reference needs the reference set's labels: give the IDX labels file of ${path} with --reference-labels FILE`);
    const idx = readIdxFile(labelsPath);
    if (idx.shape.length !== 1 || idx.dtype === 'f32' || idx.dtype === 'f64') throw new Error(`--reference-labels ${labelsPath}: expected an IDX labels file (integers [n]); got ${idx.dtype} [${idx.shape.join(', ')}]`);
    labels = Int32Array.from(idx.data as ArrayLike<number>);
  }
  if (labels.length !== rows) throw new Error(`--pretrain-on-reference: the reference set holds ${rows} samples but ${labels.length} labels`);
  return labels;
}

export function readCa(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new Error(`--ca ${path}: cannot read the file`);
  }
}

export async function runClientCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      ...Object.fromEntries(
        ['partition', 'server', 'session', 'token', 'ca', 'data', 'label', 'reference', 'reference-labels', 'pretrain-on-reference', 'model', 'epochs', 'batch-size', 'lr', 'validation', 'role', 'backend', 'seed', 'out',
          'reconnect-attempts', 'privacy-noise', 'privacy-clip', 'privacy-delta', 'privacy-seed', 'classes', 'class-names', 'save', 'quantize', 'checkpoint-every']
          .map((name) => [name, { type: 'string' as const }]),
      ),
      help: { type: 'boolean' },
      'no-save': { type: 'boolean' },
    },
  });
  const v = values as Record<string, string | boolean | undefined>;
  if (v.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  const part = typeof v.partition === 'string' ? readPartition(v.partition) : undefined;
  if (part !== undefined) planDefaults(v, part);
  const token = (v.token as string | undefined) ?? part?.member.token ?? process.env.CODISTILL_TOKEN;
  const missing = ['server', 'session', 'data', 'model'].filter((k) => v[k] === undefined && !(k === 'data' && part !== undefined));
  if (token === undefined) missing.push('token (or CODISTILL_TOKEN)');
  if (missing.length > 0) {
    process.stderr.write(`codistill client: missing --${missing.join(', --')}\n\n${USAGE}`);
    return 2;
  }
  checkServerUrl(v.server as string);
  const number = (name: string, fallback: number, ok: (x: number) => boolean, rule: string): number => numberFlag(v, name, fallback, ok, rule);
  const positiveInt = (x: number) => Number.isInteger(x) && x >= 1;
  const epochs = number('epochs', 1, positiveInt, 'an integer ≥ 1');
  const batchSize = number('batch-size', 32, positiveInt, 'an integer ≥ 1');
  const learningRate = number('lr', 1e-3, (x) => x > 0, 'a number > 0');
  const validation = number('validation', 0.1, (x) => x >= 0 && x < 1, 'a number in [0, 1)');
  const seed = number('seed', 1, (x) => Number.isInteger(x) && x >= 0, 'an integer ≥ 0');
  const reconnectAttempts = number('reconnect-attempts', 30, (x) => Number.isInteger(x) && x >= 0, 'an integer ≥ 0');
  const pretrainOnReference = number('pretrain-on-reference', 0, (x) => Number.isInteger(x) && x >= 0, 'an integer ≥ 0');
  if (pretrainOnReference > 0 && v.reference === undefined) throw new Error('--pretrain-on-reference trains on the labelled reference set: give it with --reference PATH');
  if (v['reference-labels'] !== undefined && pretrainOnReference === 0) throw new Error('--reference-labels is read only for --pretrain-on-reference N');
  const privacyFlags = ['privacy-clip', 'privacy-delta', 'privacy-seed'].filter((k) => v[k] !== undefined);
  if (v['privacy-noise'] === undefined && privacyFlags.length > 0) {
    throw new Error(`--${privacyFlags[0]} needs --privacy-noise Z, which turns differential privacy on`);
  }
  const privacy = v['privacy-noise'] === undefined ? undefined : {
    noiseMultiplier: number('privacy-noise', 1, (x) => x > 0, 'a number > 0'),
    clip: number('privacy-clip', 1, (x) => x > 0, 'a number > 0'),
    delta: number('privacy-delta', 1e-5, (x) => x > 0 && x < 1, 'a number in (0, 1)'),
    ...(v['privacy-seed'] === undefined ? {} : { seed: number('privacy-seed', 0, (x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32, 'an integer in [0, 2^32)') }),
  };
  const role = (v.role as string | undefined) ?? 'participant';
  if (role !== 'participant' && role !== 'teacher' && role !== 'distiller') throw new Error(`--role must be participant, teacher or distiller; got "${role}"`);
  const distiller = role === 'distiller';
  if (distiller && v.reference === undefined) throw new Error('--role distiller learns on the session\'s reference set: give it with --reference PATH');
  if (distiller && privacy !== undefined) throw new Error('--role distiller uploads nothing: --privacy-noise has nothing to protect');

  const classesFlag = v.classes === undefined ? undefined : number('classes', 0, (x) => Number.isInteger(x) && x >= 2, 'an integer ≥ 2');
  const quantize = v.quantize as string | undefined;
  if (quantize !== undefined && !(QUANTIZATIONS as readonly string[]).includes(quantize)) throw new Error(`--quantize must be one of ${QUANTIZATIONS.join(', ')}; got "${quantize}"`);
  const checkpointEvery = v['checkpoint-every'] === undefined ? undefined : number('checkpoint-every', 0, positiveInt, 'an integer ≥ 1');
  if (v['no-save'] === true && (v.save !== undefined || quantize !== undefined || checkpointEvery !== undefined)) {
    throw new Error(`--no-save keeps no student; drop --${v.save !== undefined ? 'save' : quantize !== undefined ? 'quantize' : 'checkpoint-every'}`);
  }
  const session = v.session as string;
  // Where the student goes, checked now: a folder that cannot be written is refused before training.
  const studentsFolder = join('students', session.replace(/[^\w.-]/g, '_'));
  if (v['no-save'] !== true) {
    if (v.save !== undefined) probeSaveDir(v.save as string);
    else probeFolder(studentsFolder);
  }
  const saveDir = (participant: string) => (v.save as string | undefined) ?? join(studentsFolder, participant.replace(/[^\w.-]/g, '_'));

  const backend = await selectBackend(v.backend as string | undefined);
  const modelArg = v.model as string;
  const builtHere = isModelName(modelArg);
  // A saved student fixes the classes and the input; a model built here takes them from the session.
  const warm = builtHere ? undefined : await loadStudent(modelArg);
  if (warm !== undefined && classesFlag !== undefined && classesFlag !== warm.numClasses) {
    warm.model.dispose();
    throw new Error(`--classes ${classesFlag}, but the model at --model ${modelArg} outputs ${warm.numClasses} classes`);
  }
  const classNames = typeof v['class-names'] === 'string' ? (v['class-names'] as string).split(',').map((s) => s.trim()) : warm?.card?.classes.names;
  if (classNames !== undefined && (classNames.some((n) => n === '') || new Set(classNames).size !== classNames.length)) {
    throw new Error(`--class-names must list distinct, non-empty names separated by commas; got "${String(v['class-names'])}"`);
  }
  const data = part !== undefined && v.data === undefined
    ? { train: part.train, test: part.test, u8Divisor: part.plan.u8Divisor }
    : loadPrivateData(v.data as string, v.label as string | undefined, classesFlag ?? classNames?.length ?? warm?.numClasses, classNames);
  const dataName = v.data === undefined && part !== undefined ? `--partition ${v.partition as string}` : `--data ${v.data as string}`;
  let { train } = data;
  let evaluation = data.test;
  const dataHash = createHash('sha256').update(new Uint8Array(train.x.buffer, train.x.byteOffset, train.x.byteLength)).update(new Uint8Array(train.y.buffer, train.y.byteOffset, train.y.byteLength)).digest('hex').slice(0, 16);
  const inputShape = warm?.inputShape ?? train.sampleShape;
  if (warm !== undefined) {
    const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
    if (size(train.sampleShape) !== size(inputShape)) {
      warm.model.dispose();
      throw new Error(`E_SHAPE: --data ${v.data as string} holds samples of shape [${train.sampleShape.join(', ')}]; the model at --model ${modelArg} takes [${inputShape.join(', ')}]`);
    }
    const divisor = warm.card?.input.preprocessing.u8Divisor;
    if (divisor !== undefined && divisor !== data.u8Divisor) {
      process.stderr.write(`warning: the student at ${modelArg} was trained on data scaled ${warm.card!.input.preprocessing.description}; --data ${v.data as string} is ${data.u8Divisor === 1 ? 'used as it is' : `divided by ${data.u8Divisor}`}\n`);
    }
  }
  if (distiller) {
    // A distiller holds no private data: all of --data is its validation set.
    evaluation ??= train;
    train = subset(train, []);
  } else if (evaluation === undefined && validation > 0) {
    const split = splitDataset(train, { test: Math.max(1, Math.round(validation * train.y.length)), reference: 0 }, seed);
    evaluation = split.test;
    train = subset(train, split.indices.pool);
  }
  const sampleSize = train.sampleShape.reduce((a, b) => a * b, 1);
  const reference = v.reference === undefined ? undefined : loadReference(v.reference as string, v.label as string | undefined, sampleSize);
  const referenceLabels = pretrainOnReference === 0 ? undefined
    : loadReferenceLabels(v.reference as string, v.label as string | undefined, v['reference-labels'] as string | undefined, reference!.length / sampleSize, data.classNames);
  /** The data as the session numbers its classes: labels must lie below numClasses. */
  const withClasses = (d: LabeledDataset, numClasses: number): LabeledDataset => ({ ...d, sampleShape: inputShape, numClasses });
  const studentFor = (numClasses: number) => {
    const model = warm?.model ?? createModel({ name: modelArg as ModelName, inputShape, numClasses, seed });
    return new Student(model, { sampleShape: inputShape, numClasses, learningRate, seed });
  };
  // Built once the session has said how many classes it has (unless --classes or a saved student fixed them):
  // a site whose data lacks the highest classes still outputs all of them.
  let student: Student | undefined;
  const known = classesFlag ?? warm?.numClasses;
  const build = (numClasses: number) => {
    student = studentFor(numClasses);
    process.stdout.write(
      `${role} on ${backend}: ${distiller ? `no private data (${evaluation?.y.length ?? 0} samples of --data for validation)` : `${train.y.length} private samples (${evaluation?.y.length ?? 0} held out for validation)`}, ` +
        `${reference === undefined ? 'no reference set' : `${reference.length / sampleSize} reference samples`}, model ${modelArg} (${student.model.countParams()} parameters, ${numClasses} classes${warm === undefined ? '' : ', warm start'})\n`,
    );
    return student;
  };
  if (known !== undefined) build(known);

  let joined: { participant: string; info: SessionInfo } | undefined;
  const completed: RoundResult[] = [];
  const facts = (status: string): CardFacts => {
    const last = completed.at(-1);
    return {
      task: 'classification',
      classes: { count: student!.numClasses, ...(data.classNames === undefined || data.classNames.length !== student!.numClasses ? {} : { names: data.classNames }) },
      // A distiller trained on the reference set: that is the input its student has seen.
      input: { shape: inputShape, dtype: 'float32', preprocessing: distiller ? preprocessingOf(reference!, data.u8Divisor, `--reference ${v.reference as string}`) : preprocessingOf(train.x, data.u8Divisor, dataName) },
      architecture: builtHere ? modelArg : `${warm!.card?.model.architecture ?? 'custom model.json'} (warm-started from ${modelArg})`,
      training: {
        session: joined?.info.session ?? session, participant: joined?.participant, algorithm: joined?.info.algorithm, role, rounds: completed.length,
        epochs, batchSize, learningRate, trainSamples: train.y.length,
        data: { source: distiller ? `the ensemble on --reference ${v.reference as string}; ${dataName} for validation only` : dataName, hash: `sha256:${dataHash}` }, seed,
        ...(status === 'final' ? {} : { status }),
      },
      metrics: last?.accuracy === undefined || evaluation === undefined ? {} : { validation: { accuracy: last.accuracy, samples: evaluation.y.length } },
      backend,
    };
  };
  const save = (status: string) => {
    const dir = saveDir(joined!.participant);
    const saved = saveStudent(dir, student!.model, facts(status), quantize === undefined ? {} : { quantize: quantize as Quantization });
    return saved;
  };

  const participate = () => runParticipant({
    url: v.server as string,
    session,
    token: token!,
    student: student ?? ((info) => build(info.numClasses)),
    role,
    ca: v.ca === undefined ? undefined : readCa(v.ca as string),
    data: { train: withClasses(train, known ?? train.numClasses), reference, ...(referenceLabels === undefined ? {} : { referenceLabels }) },
    ...(pretrainOnReference === 0 ? {} : { pretrainOnReference }),
    evaluation: evaluation === undefined ? undefined : withClasses(evaluation, known ?? train.numClasses),
    epochs,
    batchSize,
    reconnect: { attempts: reconnectAttempts },
    ...(privacy === undefined ? {} : { privacy }),
    log: (line) => process.stdout.write(`${line}\n`),
    onJoined: (participant, info) => (joined = { participant, info }),
    onRound: (r) => {
      completed.push(r);
      if (r.sampled === false) {
        process.stdout.write(`round ${r.round}: not sampled: sat it out${r.accuracy === undefined ? '' : `, validation accuracy ${(100 * r.accuracy).toFixed(1)}%`}\n`);
        return;
      }
      process.stdout.write(
        `round ${r.round}: ${r.receivedTarget ? 'learned from peers' : 'no peer target'}, loss ${r.train.loss.toFixed(4)}` +
          `${r.accuracy === undefined ? '' : `, validation accuracy ${(100 * r.accuracy).toFixed(1)}%`}, ${(r.bytesUp / 1024).toFixed(1)} KiB sent, ${(r.bytesDown / 1024).toFixed(1)} KiB received` +
          `${r.privacy === undefined ? '' : `, privacy spent ε = ${r.privacy.epsilon.toFixed(3)} at δ = ${r.privacy.delta} (ρ = ${r.privacy.rho.toFixed(4)} after ${r.privacy.releases} noisy uploads)`}\n`,
      );
      if (checkpointEvery !== undefined && v['no-save'] !== true && r.round % checkpointEvery === 0) {
        // A snapshot between two rounds (saveStudent reads the weights synchronously); a failed one costs this checkpoint only.
        try {
          process.stdout.write(`checkpoint after round ${r.round}: student saved to ${save(`checkpoint after round ${r.round}`).dir}\n`);
        } catch (error) {
          process.stderr.write(`checkpoint after round ${r.round} not saved: ${(error as Error).message}\n`);
        }
      }
    },
  });

  let summary: ParticipantSummary;
  try {
    const pretrain = part?.member.pretrainEpochs;
    if (role === 'teacher' && pretrain !== undefined && student !== undefined) {
      // As the simulation's teacher: its task loss on its own shard, before round 1 (simulations/groups.ts, teacherEpochs).
      const trained = await student.train({ labeled: train }, { epochs: pretrain, batchSize, alpha: 1, temperature: 1 });
      process.stdout.write(`teacher: trained ${pretrain} epochs on its shard before joining (loss ${trained.loss.toFixed(4)})\n`);
    }
    summary = await participate();
    const out = (v.out as string | undefined) ?? `codistill-client-${summary.info.session}-${summary.participant}.json`.replace(/[^\w.-]/g, '_');
    writeFileSync(out, `${JSON.stringify({ participant: summary.participant, info: summary.info, endReason: summary.endReason, rounds: summary.rounds.map(({ evaluationProbs: _, ...r }) => r) }, null, 2)}\n`);
    const spent = summary.rounds.at(-1)?.privacy;
    process.stdout.write(`session ended: ${summary.endReason}${spent === undefined ? '' : `; privacy spent ε = ${spent.epsilon.toFixed(3)} at δ = ${spent.delta}`}; round log written to ${out}\n`);
    if (v['no-save'] !== true) {
      joined ??= { participant: summary.participant, info: summary.info };
      const saved = save('final');
      process.stdout.write(`student saved to ${saved.dir} (${saved.card.weights.dtype} weights, ${saved.weightBytes.toLocaleString('en-US')} bytes; model.json, card.json, README.md)\n`);
    }
  } finally {
    student?.dispose();
  }
  return 0;
}

/**
 * A plan member's settings, each under its flag's name, where the command line left the flag
 * out: explicit flags override the plan.
 */
function planDefaults(v: Record<string, string | boolean | undefined>, part: ReturnType<typeof readPartition>): void {
  const { plan, member, folder } = part;
  const defaults: Record<string, string> = {
    server: plan.server, session: plan.session, model: member.model, role: member.role, seed: String(member.seed),
    epochs: String(plan.epochs), 'batch-size': String(plan.batchSize), lr: String(plan.learningRate), classes: String(plan.numClasses),
    reference: part.reference, out: join(folder, 'rounds.json'),
  };
  if (v['no-save'] !== true) defaults.save = join(folder, 'student');
  if (member.privacy !== undefined && v['privacy-noise'] === undefined) {
    Object.assign(defaults, { 'privacy-noise': String(member.privacy.noiseMultiplier), 'privacy-clip': String(member.privacy.clip), 'privacy-delta': String(member.privacy.delta) });
  }
  for (const [flag, value] of Object.entries(defaults)) v[flag] ??= value;
}

/**
 * The coordinator's address as a site types it: http(s)://host[:port] and nothing else. A
 * malformed one (a trailing colon, a path, another scheme) made socket.io retry for minutes
 * instead of failing once with a message.
 */
export function checkServerUrl(server: string): void {
  let url: URL | undefined;
  try {
    url = new URL(server);
  } catch {
    url = undefined;
  }
  const port = /^[a-z]+:\/\/(?:\[[^\]]+\]|[^/:]+)(?::(\d{1,5}))?\/?$/i.exec(server);
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || port === null || (port[1] !== undefined && !(Number(port[1]) >= 1 && Number(port[1]) <= 65535))) {
    throw new Error(`--server ${JSON.stringify(server)} is not a coordinator address: give https://HOST:PORT (or http:// on a closed network), e.g. https://coordinator.example.org:8443`);
  }
}

