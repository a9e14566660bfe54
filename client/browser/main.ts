/**
 * The browser participant page: the person picks their files and token, and the page runs the
 * same participant as `codistill client` — runParticipant, the session's procedure, the Student —
 * on a tfjs backend of the browser, talking to the coordinator that served the page.
 */
import * as tf from '@tensorflow/tfjs';
import type { SessionInfo } from '../../protocol/index.js';
import { subset } from '../data/dataset.js';
import { SeededRandom } from '../data/random.js';
import { createModel, type ModelName } from '../models.js';
import { PROTOCOL_VERSION } from '../../protocol/index.js';
import { runParticipant, type RoundResult } from '../participant.js';
import { Student } from '../student.js';
import { preprocessingOf } from '../student-io/card.js';
import { cardFor, modelArtifacts, studentFiles } from '../student-io/model-files.js';
import { zipStored } from '../student-io/zip.js';
import { selectBrowserBackend } from './backend.js';
import { fileBytes, readPrivateData, readReference } from './files.js';

/** Share of the private data held out to report accuracy on, as the Node client's --validation. */
const VALIDATION_SHARE = 0.1;
const SEED = 1;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const form = $<HTMLFormElement>('join-form');
const errorBox = $<HTMLDivElement>('error');
const statusLine = $<HTMLDivElement>('status');
const logBox = $<HTMLDivElement>('log');
const roundsBody = $<HTMLTableElement>('rounds').tBodies[0]!;

const kib = (bytes: number) => (bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(2)} MiB`);
const percent = (x: number | undefined) => (x === undefined ? '–' : `${(100 * x).toFixed(1)}%`);

function log(line: string): void {
  logBox.textContent += `${new Date().toLocaleTimeString()} ${line}\n`;
  logBox.scrollTop = logBox.scrollHeight;
}

function setStatus(text: string, state: string): void {
  statusLine.textContent = text;
  document.body.dataset.state = state;
}

function showError(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  errorBox.textContent = message;
  errorBox.classList.add('shown');
  setStatus('Stopped: see the message on the left.', 'error');
  log(`error: ${message}`);
}

/** What the session's knowledge kind means, said plainly: the page's promise about what leaves. */
function describeShare(info: SessionInfo): string {
  const never = 'never your files, labels or features';
  switch (info.knowledge) {
    case 'reference-predictions':
      return `this page shares its model's soft predictions, softmax(z/T) at T = ${info.temperature}, on the reference samples each round names (of the session's ${info.referenceSize}, as ${info.uploadDtype}) — ${never}, and never the model's weights.`;
    case 'reference-token-predictions':
      return `this page shares its language model's next-token distributions, softmax(z/T) at T = ${info.temperature}, at every position of the shared reference windows each round names — ${never}, and never the model's weights.`;
    case 'reference-logits':
      return `this page shares its model's logits on the reference samples each round names (of the session's ${info.referenceSize}, as ${info.uploadDtype}) — ${never}, and never the model's weights.`;
    case 'class-logits':
      return `this page shares its model's mean logits per class over your data, and how many samples of each class you have — ${never}.`;
    case 'weights':
      return `this session is the FedAvg baseline: this page shares its model's weights and your sample count — ${never}.`;
    case 'class-representations':
      return `this page shares its model's mean internal representation per class over your data (prototypes), and how many samples of each class you have — ${never}.`;
    case 'class-hyper-knowledge':
      return `this page shares its model's mean internal representation and mean soft prediction per class over your data, and how many samples of each class you have — ${never}.`;
    case 'none':
      return 'this session exchanges nothing: the page trains on your data alone and reports its accuracy.';
  }
}

/**
 * The reference set: the file the person picked, else the coordinator's for this session (on the
 * participant token), else none — fine for algorithms without one (fd, fedavg, local); the
 * session's procedure says so clearly when it needs one.
 */
async function referenceFrom(session: string, token: string, picked: File | undefined): Promise<{ bytes: Uint8Array; name: string } | undefined> {
  if (picked !== undefined) return { bytes: await fileBytes(picked.name, picked), name: picked.name };
  const response = await fetch(`/reference/${encodeURIComponent(session)}`, { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' });
  const text = response.ok ? '' : (await response.text()).trim();
  if (response.status === 401) throw new Error(`E_AUTH: the coordinator refused this token (${text.replace(/^E_AUTH: /, '')}); check the token the operator gave you`);
  if (response.status === 404) {
    log(`no reference set: ${text}`);
    return undefined;
  }
  if (!response.ok) throw new Error(text || `the coordinator answered ${response.status} for the reference set`);
  const name = decodeURIComponent(response.headers.get('x-codistill-file') ?? 'reference');
  return { bytes: await fileBytes(name, await response.blob()), name };
}

async function join(): Promise<void> {
  const value = (id: string) => $<HTMLInputElement>(id).value.trim();
  const session = value('session');
  const token = value('token');
  const numClasses = Number(value('classes'));
  const imageSide = Number(value('side'));
  const epochs = Number(value('epochs'));
  const learningRate = Number(value('lr'));
  const model = value('model') as ModelName;
  if (!/^[A-Za-z0-9._:-]+$/.test(session)) throw new Error('the session id has letters, digits and . _ : - only');
  if (token === '') throw new Error('enter your participant token');
  if (!(Number.isInteger(numClasses) && numClasses >= 2)) throw new Error('classes must be an integer ≥ 2 (the session\'s number of classes)');
  if (!(Number.isInteger(epochs) && epochs >= 1)) throw new Error('epochs per round must be an integer ≥ 1');
  if (!(learningRate > 0)) throw new Error('the learning rate must be a number > 0');

  $('keep').hidden = true;
  setStatus('Reading your files (in this page only)…', 'reading');
  // Files picked one by one, else a picked folder (whose subfolders name the classes).
  const picked = [...($<HTMLInputElement>('data').files ?? [])];
  const files = picked.length > 0 ? picked : [...($<HTMLInputElement>('data-folder').files ?? [])];
  const data = await readPrivateData(files, { label: value('label') || 'label', numClasses, imageSide });
  log(`private data: ${data.description}`);
  // A CSV row of side² values is an image to the CNN; the MLP takes the flat row.
  let sampleShape = data.sampleShape;
  const side = Math.round(Math.sqrt(data.x.length / data.y.length));
  if (model === 'cnn' && sampleShape.length === 1) {
    if (side * side !== sampleShape[0]) throw new Error(`the cnn model needs square images; your rows have ${sampleShape[0]} features`);
    sampleShape = [side, side, 1];
  }
  const sampleSize = sampleShape.reduce((a, b) => a * b, 1);

  const held = Math.max(1, Math.round(VALIDATION_SHARE * data.y.length));
  if (data.y.length < 2) throw new Error('the private data needs at least 2 samples (some are held out to measure accuracy)');
  const order = new SeededRandom(SEED).shuffle(Array.from({ length: data.y.length }, (_, i) => i));
  const shaped = { ...data, sampleShape };
  const evaluation = subset(shaped, order.slice(0, held));
  const train = subset(shaped, order.slice(held));

  setStatus('Loading the reference set…', 'reading');
  const referenceFile = $<HTMLInputElement>('reference').files?.[0];
  const source = await referenceFrom(session, token, referenceFile);
  const reference = source === undefined ? undefined : readReference(source.bytes, source.name, sampleSize, value('label') || 'label');
  if (source !== undefined) log(`reference set: ${source.name}, ${reference!.samples} samples${referenceFile === undefined ? ' (from the coordinator)' : ' (picked)'}`);

  setStatus('Starting tfjs…', 'starting');
  const { backend, problems } = await selectBrowserBackend(new URL('wasm/', location.href).href);
  log(`tfjs backend: ${backend}${problems.length > 0 ? ` (${problems.join('; ')})` : ''}`);
  document.body.dataset.backend = backend;

  const student = new Student(createModel({ name: model, inputShape: sampleShape, numClasses, seed: SEED }), { sampleShape, numClasses, learningRate, seed: SEED });
  let sent = 0;
  let received = 0;
  setStatus(`Connecting to ${location.host}…`, 'connecting');
  const summary = await runParticipant({
    url: location.origin,
    session,
    token,
    student,
    data: { train, reference: reference?.features },
    evaluation,
    epochs,
    batchSize: 32,
    log,
    onJoined: (participant, info) => {
      $('shares').textContent = `As ${participant} in ${info.session} (${info.algorithm}, ${info.rounds} rounds), ${describeShare(info)}`;
      setStatus(`Joined ${info.session} as ${participant} on ${backend}: ${train.y.length} private samples, ${evaluation.y.length} held out. Waiting for a round…`, 'joined');
      document.body.dataset.participant = participant;
    },
    onRound: (r: RoundResult) => {
      sent += r.bytesUp;
      received += r.bytesDown;
      const row = roundsBody.insertRow();
      row.dataset.round = String(r.round);
      if (r.accuracy !== undefined) row.dataset.accuracy = String(r.accuracy);
      row.dataset.bytesUp = String(r.bytesUp);
      row.dataset.tensors = String(r.numTensors);
      for (const cell of [String(r.round), r.receivedTarget ? 'yes' : 'no', r.train.loss.toFixed(4), percent(r.accuracy), kib(r.bytesUp), kib(r.bytesDown), `${(r.train.ms / 1000).toFixed(1)} s`]) {
        row.insertCell().textContent = cell;
      }
      $('fig-round').textContent = String(r.round);
      $('fig-accuracy').textContent = percent(r.accuracy);
      $('fig-sent').textContent = kib(sent);
      $('fig-received').textContent = kib(received);
      setStatus(`Round ${r.round} done: validation accuracy ${percent(r.accuracy)}. Waiting for the next round…`, 'running');
    },
  });
  // Which Adam trained it: the fused wasm kernel, or tfjs's where that kernel cannot bind (client/optimizer.ts).
  document.body.dataset.fusedAdam = String(student.fusedOptimizer);
  try {
    offerStudent(student, {
      participant: summary.participant,
      session: summary.info.session,
      algorithm: summary.info.algorithm,
      rounds: summary.rounds.length,
      accuracy: summary.rounds.at(-1)?.accuracy,
      validation: evaluation.y.length,
      fromCsv: files.length === 1 && /\.csv(\.gz)?$/i.test(files[0]!.name),
      classNames: data.classNames?.length === numClasses ? data.classNames : undefined,
      train,
      epochs,
      learningRate,
      model,
      backend,
    });
  } finally {
    student.dispose();
  }
  setStatus(`Session ended: ${summary.endReason}.`, 'ended');
  log(`session ended: ${summary.endReason}`);
}

/** The object URL of the student on offer, released when a later session replaces it. */
let offered: string | undefined;

/**
 * Keeps the trained student for the person: a zip of its folder as `codistill client --save`
 * writes it (model.json, weights, card.json, README.md), built now, downloaded on a click.
 */
function offerStudent(
  student: Student,
  run: {
    participant: string; session: string; algorithm: string; rounds: number; accuracy?: number; validation: number; fromCsv: boolean;
    classNames?: string[]; train: { x: Float32Array; y: Int32Array }; epochs: number; learningRate: number; model: string; backend: string;
  },
): void {
  const source = run.fromCsv ? 'a CSV file picked in the browser page' : 'images picked in the browser page (grey levels 0–255)';
  const card = cardFor(student.model, {
    task: 'classification',
    classes: { count: student.numClasses, ...(run.classNames === undefined ? {} : { names: run.classNames }) },
    input: { shape: student.sampleShape, dtype: 'float32', preprocessing: preprocessingOf(run.train.x, run.fromCsv ? 1 : 255, source) },
    architecture: run.model,
    training: {
      session: run.session, participant: run.participant, algorithm: run.algorithm, role: 'participant', rounds: run.rounds, epochs: run.epochs, batchSize: 32,
      learningRate: run.learningRate, trainSamples: run.train.y.length, data: { source, hash: 'not computed in the browser' }, seed: SEED,
    },
    metrics: run.accuracy === undefined ? {} : { validation: { accuracy: run.accuracy, samples: run.validation } },
    backend: run.backend,
  }, { codistill: `browser participant page (protocol ${PROTOCOL_VERSION})`, commit: null, dirty: null, tfjs: tf.version.tfjs, runtime: `browser: ${navigator.userAgent}` });
  const folder = `student-${run.session}-${run.participant}`.replace(/[^\w.-]/g, '_');
  const { files } = studentFiles(modelArtifacts(student.model), card, { convertedBy: 'codistill browser participant page' });
  const zip = zipStored(new Map([...files].map(([name, bytes]) => [`${folder}/${name}`, bytes])));
  if (offered !== undefined) URL.revokeObjectURL(offered);
  const url = URL.createObjectURL(new Blob([zip], { type: 'application/zip' }));
  offered = url;
  const button = $<HTMLButtonElement>('download');
  button.onclick = () => {
    const link = document.createElement('a');
    link.href = url;
    link.download = `${folder}.zip`;
    link.click();
  };
  $('keep').hidden = false;
  log(`your student is ready to download: ${folder}.zip (${kib(zip.byteLength)}; model.json, weights, card.json, README.md)`);
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  errorBox.classList.remove('shown');
  errorBox.textContent = '';
  const button = $<HTMLButtonElement>('join');
  button.disabled = true;
  join().catch(showError).finally(() => {
    button.disabled = false;
  });
});
document.body.dataset.state = 'ready';
