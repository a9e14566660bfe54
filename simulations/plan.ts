/**
 * A simulation larger than one machine: `codistill simulate --plan DIR` writes, without training,
 * everything a run needs — the coordinator's session file, every member's shard, the test set it
 * evaluates on, the shared reference set, and one launch line per member — so that any scheduler
 * (a Slurm array, a Kubernetes Indexed Job, plain ssh) starts `codistill client --partition DIR#i`
 * on other machines against one `codistill server --config DIR/session.json`.
 *
 * The split, partition, seeds, tokens' roles and session settings are the in-process
 * simulation's (prepareData, runMembers, simulationSession), and features are saved as float32
 * IDX, so a planned run computes what `simulate` computes with the same config: the same
 * accuracies and ensemble digests, bit for bit, on the same backend (test/simulations/plan.test.ts).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PLAN_FORMAT, shardDigest, type PlanFile, type PlanMember } from '../client/cli.js';
import type { LabeledDataset } from '../client/data/dataset.js';
import { referenceDigest } from '../protocol/sha256.js';
import { documentsJsonLines, TEXT_PLAN_FORMAT, type TextPlanFile, type TextPlanMember } from '../client/lm/site-cli.js';
import { parseLmSpec } from '../client/lm/model.js';
import { tokenizerIdentity, windowFeatures } from '../client/lm/site.js';
import { BYTE_TOKENIZER } from '../client/lm/tokenizer.js';
import { readSessionConfig } from '../server/cli.js';
import { checkSessionConfig, DEFAULT_ASYNC } from '../server/session-config.js';
import { ALGORITHM_DEFAULTS, STRATEGIES } from '../server/strategies/index.js';
import { teacherEpochs } from './groups.js';
import { prepare as prepareText } from './text-sessions.js';
import type { TextSource } from './text-options.js';
import { algorithmSettings, CENTRALIZED, distillerModel, distillerRefusal, prepareData, runMembers, simulationSession, type Progress, type SimulationOptions } from './simulate.js';

export interface PlanSettings {
  /** The coordinator's URL the launch lines name (each client may still be given --server). */
  server: string;
}

export interface WrittenPlan {
  dir: string;
  session: string;
  members: number;
  files: string[];
}

/** IDX dtype codes (client/data/idx-format.ts): float32 features, u8 or int32 labels. */
const IDX_F32 = 0x0d;
const IDX_U8 = 0x08;
const IDX_I32 = 0x0c;

/** An IDX file of float32 values, big-endian as the format has it, with `shape` [n, ...sample]. */
function writeIdxF32(path: string, values: Float32Array, shape: number[]): void {
  const header = 4 + 4 * shape.length;
  const bytes = Buffer.alloc(header + 4 * values.length);
  bytes.writeUInt32BE((IDX_F32 << 8) | shape.length, 0);
  shape.forEach((d, i) => bytes.writeUInt32BE(d, 4 + 4 * i));
  for (let i = 0; i < values.length; i++) bytes.writeFloatBE(values[i]!, header + 4 * i);
  writeFileSync(path, bytes);
}

function writeIdxLabels(path: string, labels: Int32Array, numClasses: number): void {
  const wide = numClasses > 256;
  const bytes = Buffer.alloc(8 + labels.length * (wide ? 4 : 1));
  bytes.writeUInt32BE(((wide ? IDX_I32 : IDX_U8) << 8) | 1, 0);
  bytes.writeUInt32BE(labels.length, 4);
  labels.forEach((y, i) => (wide ? bytes.writeInt32BE(y, 8 + 4 * i) : bytes.writeUInt8(y, 8 + i)));
  writeFileSync(path, bytes);
}

/** `<prefix>-images-idxR-ubyte` and `<prefix>-labels-idx1-ubyte`, as loadIdxDataset reads them back. */
function writeIdxPair(prefix: string, d: LabeledDataset): string[] {
  const images = `${prefix}-images-idx${1 + d.sampleShape.length}-ubyte`;
  const labels = `${prefix}-labels-idx1-ubyte`;
  writeIdxF32(images, d.x, [d.y.length, ...d.sampleShape]);
  writeIdxLabels(labels, d.y, d.numClasses);
  return [images, labels];
}

/** Makes `dir`, which must be new or empty, readable by its owner only (tokens go inside). */
function openPlanFolder(dir: string): void {
  mkdirSync(dir, { recursive: true });
  if (readdirSync(dir).length > 0) throw new Error(`--plan ${dir} is not empty: a plan holds tokens and shards of one run; give a new folder`);
  chmodSync(dir, 0o700);
}

/** Why `options` cannot be planned, or undefined. */
export function planRefusal(options: SimulationOptions): string | undefined {
  if (options.algorithm === CENTRALIZED) return 'centralized pools every shard into one process: there is nothing to spread over machines';
  if (options.attack !== undefined) return 'attacks are simulated in process (simulations/attacks.ts); codistill client sends honest uploads only';
  if (options.data?.source === 'text' && options.algorithm === 'local') return 'local-only language models exchange nothing: there is no session to plan (run simulate)';
  return undefined;
}

/**
 * Writes the plan of `options` (the algorithm under study; the local-only baseline is a plan of
 * its own, --algorithm local) into `dir`, which must be empty or new.
 */
export function writePlan(options: SimulationOptions, dir: string, settings: PlanSettings, progress: Progress): WrittenPlan {
  const refusal = planRefusal(options);
  if (refusal !== undefined) throw new Error(`--plan: ${refusal}`);
  openPlanFolder(dir);
  if (options.data?.source === 'text') return writeTextPlan(options, dir, settings, progress);

  const data = prepareData(options, progress);
  const { algorithm, settings: session } = algorithmSettings(options);
  const members = runMembers(options);
  const distiller = distillerModel(options);
  if (distiller !== undefined) {
    const why = distillerRefusal(options.algorithm);
    if (why !== undefined) throw new Error(why);
  }
  const token = () => randomBytes(24).toString('hex');
  const entries: Array<Omit<PlanMember, 'samples'> & { folder: string; shard?: LabeledDataset; group?: number }> = [
    ...members.map((m) => ({
      index: m.index, id: m.id, role: m.role, model: m.model, group: m.group, seed: options.seed * 1000 + m.index, token: token(), folder: m.id, shard: data.trainSets[m.index]!,
      ...(m.role === 'teacher' ? { pretrainEpochs: teacherEpochs(options) } : {}),
    })),
    ...(distiller === undefined ? [] : [{ index: members.length, id: 'distiller', role: 'distiller' as const, model: distiller, seed: options.seed * 1000 + members.length, token: token(), folder: 'distiller' }]),
  ];
  const config = simulationSession(options, algorithm, session, data, entries.map((e) => ({ id: e.id, token: e.token, ...(e.role === 'participant' ? {} : { role: e.role }) })));
  const files: string[] = [];
  const write = (name: string, text: string, secret = false) => {
    const path = join(dir, name);
    writeFileSync(path, text, secret ? { mode: 0o600 } : {});
    files.push(path);
  };

  const sessionFile = { ...config, referenceDigest: referenceDigest(data.reference.x) };
  write('session.json', `${JSON.stringify(sessionFile, null, 2)}\n`, true);
  const referenceName = `reference-images-idx${1 + data.reference.sampleShape.length}-ubyte`;
  writeIdxF32(join(dir, referenceName), data.reference.x, [data.reference.y.length, ...data.reference.sampleShape]);
  mkdirSync(join(dir, 'test'));
  files.push(join(dir, referenceName), ...writeIdxPair(join(dir, 'test', 't10k'), data.test));

  const plan: PlanFile & { seed: number; partitionHash: string; config: SimulationOptions } = {
    format: PLAN_FORMAT,
    session: config.id,
    algorithm: options.algorithm,
    server: settings.server,
    numClasses: data.test.numClasses,
    sampleShape: data.test.sampleShape,
    epochs: options.epochs,
    batchSize: options.batchSize,
    learningRate: options.learningRate,
    u8Divisor: data.u8Divisor,
    reference: referenceName,
    test: join('test', 't10k'),
    members: entries.map((e) => ({ index: e.index, id: e.id, role: e.role, model: e.model, folder: e.folder, ...(e.group === undefined ? {} : { group: e.group }) })),
    seed: options.seed,
    partitionHash: data.partitionHash,
    config: options,
  };
  write('plan.json', `${JSON.stringify(plan, null, 2)}\n`);
  for (const { shard, folder, group: _, ...entry } of entries) {
    mkdirSync(join(dir, folder), { mode: 0o700 });
    const member: PlanMember = {
      ...entry,
      samples: shard?.y.length ?? 0,
      ...(shard === undefined ? {} : { train: 'train', sha256: shardDigest(shard) }),
      ...(options.privacy === undefined || entry.role === 'distiller' ? {} : { privacy: options.privacy }),
    };
    if (shard !== undefined) files.push(...writeIdxPair(join(dir, folder, 'train'), shard));
    write(join(folder, 'participant.json'), `${JSON.stringify(member, null, 2)}\n`, true);
  }

  const line = (i: number) => `codistill client --partition ${dir}#${i} --server ${settings.server}`;
  write('launch.txt', `${entries.map((_, i) => line(i)).join('\n')}\n`);
  write('README.txt', planReadme(dir, settings.server, entries.length, config.id, options));
  progress.line(`plan written to ${dir}/: session ${config.id} (${options.algorithm}, ${options.rounds} rounds), ${entries.length} members (${entries.map((e) => `${e.id} ${e.model}${e.role === 'participant' ? '' : ` ${e.role}`}`).join(', ')})`);
  progress.line(`start: codistill server --config ${join(dir, 'session.json')}; then each line of ${join(dir, 'launch.txt')} (see ${join(dir, 'README.txt')})`);
  return { dir, session: config.id, members: entries.length, files };
}

function planReadme(dir: string, server: string, n: number, session: string, options: SimulationOptions): string {
  const port = new URL(server).port || (server.startsWith('https') ? '443' : '80');
  return `A codistill plan: session ${session} (${options.algorithm}, ${options.rounds} rounds, seed ${options.seed}), ${n} members.
Written by codistill simulate --plan; nothing here has trained yet. The folder holds tokens:
copy it only to machines that run this session's members, and keep it unreadable to others.

  session.json          the coordinator's session (every member's token, the reference set's digest)
  plan.json             the shared settings and the list of members (index, id, role, model, folder)
  <member>/             each member's shard (float32 IDX), participant.json (token, model, seed);
                        its round log (rounds.json) and trained student (student/) are written here
  test/                 the held-out test set every member reports its accuracy on
  reference-images-…    the shared reference set
  launch.txt            one line per member: line i+1 starts member i

1. The coordinator, on a machine every member can reach (here ${server}):

     codistill server --config ${dir}/session.json --host 0.0.0.0 --port ${port} --out ${dir}/history.json

   (over a network you do not trust, add --tls-cert/--tls-key and use https:// below.)

2. The ${n} members, each one process, with the plan folder at the same path on its machine
   (a shared file system, or a copy). --server overrides the URL the plan was written with.

   Slurm (an array of ${n} tasks):
     sbatch --array=0-${n - 1} --cpus-per-task=1 --wrap 'codistill client --partition ${dir}#$SLURM_ARRAY_TASK_ID --server ${server}'

   Kubernetes (an Indexed Job: completionMode: Indexed, completions: ${n}, parallelism: ${n}):
     command: ["sh", "-c", "codistill client --partition ${dir}#$JOB_COMPLETION_INDEX --server ${server}"]

   ssh (host names in hosts.txt, one per member):
     paste -d' ' hosts.txt ${dir}/launch.txt | while read host cmd; do ssh -n "$host" "$cmd" & done; wait

The session starts once all ${n} have joined and ends after round ${options.rounds}; the coordinator
writes history.json, each member its rounds.json. With the same backend everywhere, the accuracies
and ensemble digests equal those of codistill simulate with the same config.
`;
}

/**
 * The plan of a text config (data: { source: text }): the session file of per-token knowledge
 * (tokenizer, positions, the reference windows' count and digest), the shared reference text, and
 * per site its private and held-out text (.jsonl, a document per line) — the split,
 * reference text and seeds of `simulate` on the same config (text-sessions.ts prepare, modelSeed) —
 * with one `codistill client --partition DIR#i` line per site.
 */
function writeTextPlan(options: SimulationOptions, dir: string, settings: PlanSettings, progress: Progress): WrittenPlan {
  const lm = options.lm!;
  const positions = parseLmSpec(lm.model).ctx;
  const data = prepareText(options, options.data as TextSource, lm, positions);
  const defaults = ALGORITHM_DEFAULTS[options.algorithm]!;
  const files: string[] = [];
  const write = (name: string, text: string, secret = false) => {
    const path = join(dir, name);
    writeFileSync(path, text, secret ? { mode: 0o600 } : {});
    files.push(path);
  };
  const members: TextPlanMember[] = data.sites.map((site, i) => ({
    index: i, id: `p${i}`, role: 'participant', token: randomBytes(24).toString('hex'), seed: options.seed * 1000 + i + 1, domain: site.domain, text: 'text.jsonl', heldOut: 'held-out.jsonl',
  }));
  const asynchronous = STRATEGIES[options.algorithm]?.mode === 'async';
  const session = `text-${options.algorithm}-${options.seed}`;
  // The session file as an operator writes it (codistill server --config); the coordinator fills the algorithm's defaults.
  const sessionFile = {
    id: session, algorithm: options.algorithm, rounds: options.rounds, participants: members.map((m) => ({ id: m.id, token: m.token })),
    numClasses: BYTE_TOKENIZER.vocabSize, referenceSize: data.reference.count, referenceDigest: referenceDigest(windowFeatures(data.reference)),
    ...(asynchronous ? { async: { ...DEFAULT_ASYNC, ...options.async } } : { referencePerRound: Math.min(options.referencePerRound, data.reference.count) }),
    temperature: options.temperature ?? defaults.temperature, alpha: options.alpha ?? defaults.alpha, aggregator: options.aggregator,
    uploadDtype: options.uploadDtype, targetDtype: options.targetDtype, uploadTopK: options.uploadTopK, targetTopK: options.targetTopK,
    onRoundFailure: 'stop', seed: options.seed, maxMessageBytes: 16 << 20, tokenizer: tokenizerIdentity(BYTE_TOKENIZER), positions,
  };
  write('session.json', `${JSON.stringify(sessionFile, null, 2)}\n`, true);
  checkSessionConfig(readSessionConfig(join(dir, 'session.json')));
  // The reference windows are cut from these bytes exactly: no newline after the last document.
  write('reference.txt', data.referenceDocuments.join('\n'));
  const plan: TextPlanFile & { seed: number; config: SimulationOptions } = {
    format: TEXT_PLAN_FORMAT, session, algorithm: options.algorithm, server: settings.server, model: lm.model, positions, steps: lm.steps,
    batchSize: options.batchSize, learningRate: options.learningRate, reference: 'reference.txt',
    members: members.map((m) => ({ index: m.index, id: m.id, role: m.role, folder: m.id, domain: m.domain })), seed: options.seed, config: options,
  };
  write('plan.json', `${JSON.stringify(plan, null, 2)}\n`);
  members.forEach((member, i) => {
    mkdirSync(join(dir, member.id), { mode: 0o700 });
    write(join(member.id, member.text), documentsJsonLines(data.sites[i]!.documents.train));
    write(join(member.id, member.heldOut), documentsJsonLines(data.sites[i]!.documents.heldOut));
    write(join(member.id, 'participant.json'), `${JSON.stringify(member, null, 2)}\n`, true);
  });
  const line = (i: number) => `codistill client --partition ${dir}#${i} --server ${settings.server}`;
  write('launch.txt', `${members.map((_, i) => line(i)).join('\n')}\n`);
  write('README.txt', textPlanReadme(dir, settings.server, members.length, session, options));
  progress.line(`plan written to ${dir}/: session ${session} (${options.algorithm}, ${options.rounds} rounds), ${members.length} language-model sites (${members.map((m) => `${m.id} ${m.domain}`).join(', ')}), ${data.reference.count} reference windows of ${positions} bytes`);
  progress.line(`start: codistill server --config ${join(dir, 'session.json')}; then each line of ${join(dir, 'launch.txt')} (see ${join(dir, 'README.txt')})`);
  return { dir, session, members: members.length, files };
}

function textPlanReadme(dir: string, server: string, n: number, session: string, options: SimulationOptions): string {
  const port = new URL(server).port || (server.startsWith('https') ? '443' : '80');
  return `A codistill plan of language models: session ${session} (${options.algorithm}, ${options.rounds} rounds, seed ${options.seed}),
${n} sites, model ${options.lm!.model}. Written by codistill simulate --plan; nothing here has trained yet.
The folder holds tokens: copy it only to machines that run this session's sites.

  session.json          the coordinator's session (tokens, tokenizer, positions, the reference windows' digest)
  plan.json             the shared settings and the list of sites (index, id, domain, folder)
  reference.txt         the shared reference text, cut into windows of the session's positions
  <site>/               text.jsonl (its private text, a document per line), held-out.jsonl,
                        participant.json (token, seed);
                        its round log (rounds.json) and language model (student/) are written here
  launch.txt            one line per site: line i+1 starts site i

1. The coordinator, on a machine every site can reach (here ${server}):

     codistill server --config ${dir}/session.json --host 0.0.0.0 --port ${port} --out ${dir}/history.json

2. The ${n} sites, each one process, with the plan folder at the same path on its machine:

     sbatch --array=0-${n - 1} --cpus-per-task=1 --wrap 'codistill client --partition ${dir}#$SLURM_ARRAY_TASK_ID --server ${server}'
   or each line of launch.txt (ssh, a Kubernetes Indexed Job with $JOB_COMPLETION_INDEX).

Each site prints its bits per byte on its held-out text every round and saves its model in
<site>/student/ (codistill generate --model ${dir}/p0/student --prompt TEXT). With the same backend
everywhere, the bits per byte equal those of codistill simulate with the same config.
`;
}
