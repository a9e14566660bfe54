/**
 * `codistill client`: a participant on a site's own data, with no code to write. The data stay
 * on the machine; only what the session's algorithm exchanges (predictions, class logits, or
 * weights for FedAvg) leaves it.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from './backend.js';
import { loadCsv } from './data/csv.js';
import { subset, type LabeledDataset } from './data/dataset.js';
import { loadIdxFolder, readIdxFile } from './data/idx.js';
import { splitDataset } from './data/mnist.js';
import { createModel, MODELS, type ModelName } from './models.js';
import { runParticipant } from './participant.js';
import { Student } from './student.js';

const USAGE = `usage: codistill client --server URL --session ID --data PATH --model NAME|model.json [options]
  --server URL          the coordinator, e.g. https://coordinator.example.org:8080
  --session ID          the session to join
  --token TOKEN         this participant's token (or set CODISTILL_TOKEN, which keeps it out of shell history)
  --data PATH           private data: a CSV file with a header and a label column, or an IDX folder (MNIST family)
  --label COLUMN        the CSV label column [label]
  --reference PATH      the session's shared reference set: an IDX images file or a CSV (its label column, if any, is ignored)
  --model NAME|FILE     mlp | cnn, or a tfjs Layers model.json (with its weight files beside it)
  --epochs N            local epochs per round [1]
  --batch-size N        [32]
  --lr X                Adam learning rate [0.001]
  --validation F        share of the private data held out to report accuracy on, when the data has no test split [0.1]
  --ca FILE             PEM certificate authority to trust for an https:// coordinator (e.g. its self-signed certificate)
  --role ROLE           participant | teacher (contributes predictions, never trains) [participant]
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
  --out FILE            this participant's round log [codistill-client-<session>.json]
`;

/** Private data from a CSV file or an IDX folder, with its own test split if the source has one. */
function loadPrivateData(path: string, label: string | undefined): { train: LabeledDataset; test?: LabeledDataset } {
  let isFolder: boolean;
  try {
    isFolder = statSync(path).isDirectory();
  } catch {
    throw new Error(`--data ${path}: no such file or folder`);
  }
  if (isFolder) {
    const folder = loadIdxFolder(path);
    return { train: folder.train, test: folder.test };
  }
  return { train: loadCsv(path, { label }) };
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

/** A tfjs Layers model from model.json and its weight files, read from disk without tfjs-node. */
async function loadModelFile(path: string): Promise<tf.LayersModel> {
  let artifacts: { modelTopology: object; weightsManifest: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }> };
  try {
    artifacts = JSON.parse(readFileSync(path, 'utf8')) as typeof artifacts;
  } catch (error) {
    throw new Error(`--model ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not a tfjs model.json (${(error as Error).message})`}`);
  }
  const buffers = artifacts.weightsManifest.flatMap((group) => group.paths.map((p) => readFileSync(join(dirname(path), p))));
  const weightData = new Uint8Array(buffers.reduce((a, b) => a + b.byteLength, 0));
  let offset = 0;
  for (const b of buffers) {
    weightData.set(b, offset);
    offset += b.byteLength;
  }
  return tf.loadLayersModel(tf.io.fromMemory({
    modelTopology: artifacts.modelTopology,
    weightSpecs: artifacts.weightsManifest.flatMap((g) => g.weights),
    weightData: weightData.buffer,
  }));
}

function readCa(path: string): string {
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
        ['server', 'session', 'token', 'ca', 'data', 'label', 'reference', 'model', 'epochs', 'batch-size', 'lr', 'validation', 'role', 'backend', 'seed', 'out',
          'reconnect-attempts', 'privacy-noise', 'privacy-clip', 'privacy-delta', 'privacy-seed']
          .map((name) => [name, { type: 'string' as const }]),
      ),
      help: { type: 'boolean' },
    },
  });
  const v = values as Record<string, string | boolean | undefined>;
  if (v.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  const token = (v.token as string | undefined) ?? process.env.CODISTILL_TOKEN;
  const missing = ['server', 'session', 'data', 'model'].filter((k) => v[k] === undefined);
  if (token === undefined) missing.push('token (or CODISTILL_TOKEN)');
  if (missing.length > 0) {
    process.stderr.write(`codistill client: missing --${missing.join(', --')}\n\n${USAGE}`);
    return 2;
  }
  const number = (name: string, fallback: number, ok: (x: number) => boolean, rule: string) => {
    const raw = v[name] as string | undefined;
    if (raw === undefined) return fallback;
    const x = Number(raw);
    if (!Number.isFinite(x) || !ok(x)) throw new Error(`--${name} must be ${rule}; got "${raw}"`);
    return x;
  };
  const positiveInt = (x: number) => Number.isInteger(x) && x >= 1;
  const epochs = number('epochs', 1, positiveInt, 'an integer ≥ 1');
  const batchSize = number('batch-size', 32, positiveInt, 'an integer ≥ 1');
  const learningRate = number('lr', 1e-3, (x) => x > 0, 'a number > 0');
  const validation = number('validation', 0.1, (x) => x >= 0 && x < 1, 'a number in [0, 1)');
  const seed = number('seed', 1, (x) => Number.isInteger(x) && x >= 0, 'an integer ≥ 0');
  const reconnectAttempts = number('reconnect-attempts', 30, (x) => Number.isInteger(x) && x >= 0, 'an integer ≥ 0');
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
  if (role !== 'participant' && role !== 'teacher') throw new Error(`--role must be participant or teacher; got "${role}"`);

  const backend = await selectBackend(v.backend as string | undefined);
  const data = loadPrivateData(v.data as string, v.label as string | undefined);
  let { train } = data;
  let evaluation = data.test;
  if (evaluation === undefined && validation > 0) {
    const split = splitDataset(train, { test: Math.max(1, Math.round(validation * train.y.length)), reference: 0 }, seed);
    evaluation = split.test;
    train = subset(train, split.indices.pool);
  }
  const sampleSize = train.sampleShape.reduce((a, b) => a * b, 1);
  const reference = v.reference === undefined ? undefined : loadReference(v.reference as string, v.label as string | undefined, sampleSize);
  const modelArg = v.model as string;
  const model = (MODELS as readonly string[]).includes(modelArg)
    ? createModel({ name: modelArg as ModelName, inputShape: train.sampleShape, numClasses: train.numClasses, seed })
    : await loadModelFile(modelArg);
  const outputs = (model.outputs[0]?.shape.at(-1) ?? 0) as number;
  if (outputs !== train.numClasses) {
    throw new Error(`--model ${modelArg} outputs ${outputs} classes; the data at --data has ${train.numClasses}`);
  }
  const student = new Student(model, { sampleShape: train.sampleShape, numClasses: train.numClasses, learningRate, seed });
  process.stdout.write(
    `participant on ${backend}: ${train.y.length} private samples (${evaluation?.y.length ?? 0} held out for validation), ` +
      `${reference === undefined ? 'no reference set' : `${reference.length / sampleSize} reference samples`}, model ${modelArg} (${model.countParams()} parameters)\n`,
  );
  const summary = await runParticipant({
    url: v.server as string,
    session: v.session as string,
    token: token!,
    student,
    role,
    ca: v.ca === undefined ? undefined : readCa(v.ca as string),
    data: { train, reference },
    evaluation,
    epochs,
    batchSize,
    reconnect: { attempts: reconnectAttempts },
    ...(privacy === undefined ? {} : { privacy }),
    log: (line) => process.stdout.write(`${line}\n`),
    onRound: (r) =>
      process.stdout.write(
        `round ${r.round}: ${r.receivedTarget ? 'learned from peers' : 'no peer target'}, loss ${r.train.loss.toFixed(4)}` +
          `${r.accuracy === undefined ? '' : `, validation accuracy ${(100 * r.accuracy).toFixed(1)}%`}, ${(r.bytesUp / 1024).toFixed(1)} KiB sent, ${(r.bytesDown / 1024).toFixed(1)} KiB received` +
          `${r.privacy === undefined ? '' : `, privacy spent ε = ${r.privacy.epsilon.toFixed(3)} at δ = ${r.privacy.delta} (ρ = ${r.privacy.rho.toFixed(4)} after ${r.privacy.releases} noisy uploads)`}\n`,
      ),
  });
  const out = (v.out as string | undefined) ?? `codistill-client-${summary.info.session}.json`;
  writeFileSync(out, `${JSON.stringify({ participant: summary.participant, info: summary.info, endReason: summary.endReason, rounds: summary.rounds.map(({ evaluationProbs: _, ...r }) => r) }, null, 2)}\n`);
  const spent = summary.rounds.at(-1)?.privacy;
  process.stdout.write(`session ended: ${summary.endReason}${spent === undefined ? '' : `; privacy spent ε = ${spent.epsilon.toFixed(3)} at δ = ${spent.delta}`}; round log written to ${out}\n`);
  student.dispose();
  return 0;
}
