/**
 * Simulations of language models across sites (`data: { source: text }`): one participant per
 * text domain (a language of Debian's fortunes), each training a small causal Transformer on its
 * own domain's text, and — for DML — exchanging per-token distributions on a shared reference
 * text through a real coordinator (reference-token-predictions). Every round prints each
 * participant's bits per byte on its own domain's held-out text and on the mixed held-out set
 * (all domains'); the local-only baseline trains the same models from the same initial weights
 * on the same batches' schedule with token-CE alone.
 *
 * With `lm.lora` the students are LoRA adapters (client/lm/lora.ts) on one frozen base: the base is
 * trained once, with token-CE on the shared reference text, saved in `<out>/base/` and named by its
 * digest; each site loads it from there (refused if its digest differs) and adds its own adapters,
 * and only the adapters train. DML then exchanges per-token predictions as without LoRA; FedAvg
 * (`algorithm: fedavg`) exchanges the adapters themselves through the coordinator. The frozen
 * base's bits per byte are reported beside the runs, as the floor any adapter must beat.
 *
 * Runs in this process (the participants share its tfjs, one at a time), not on the worker pool.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { selectBackend } from '../client/backend.js';
import { loadFortuneDomains, splitDomains, toSequences, type TokenSequences } from '../client/data/text.js';
import { createLoraModel, LoraLanguageModel, loraSpecName, type LoraSpec } from '../client/lm/lora.js';
import { createLanguageModel, lmSpecName, parseLmSpec, type LanguageModel, type LmSpec } from '../client/lm/model.js';
import { referenceWindows, textParticipantData, tokenizerIdentity, type TextSite } from '../client/lm/site.js';
import { BYTE_TOKENIZER, encodeText } from '../client/lm/tokenizer.js';
import { bitsPerByte, trainLanguageModel } from '../client/lm/train.js';
import { runParticipant } from '../client/participant.js';
import { codeProvenance, saveLanguageModel } from '../client/student-io/index.js';
import { languageModelDigest, loadLanguageModel, saveLoraAdapters } from '../client/student-io/lm-store.js';
import { ALGORITHM_DEFAULTS, STRATEGIES } from '../server/strategies/index.js';
import { Coordinator } from '../server/coordinator.js';
import { DEFAULT_ASYNC, type SessionConfig } from '../server/session-config.js';
import type { Progress, SimulationOptions } from './simulate.js';
import type { LmSettings, TextSource } from './text-options.js';

export type { LmSettings, TextSource };

/** The text source: fortune languages, read from `root` (Debian's /usr/share/games/fortunes when omitted). */
export interface TextRow {
  round: number;
  participant: string;
  domain: string;
  ownBitsPerByte: number;
  mixedBitsPerByte: number;
  trainLoss: number;
  receivedTarget: boolean;
  bytesUp: number;
  bytesDown: number;
}

export interface TextRun {
  algorithm: string;
  rows: TextRow[];
  final: { meanOwn: number; meanMixed: number; perParticipant: Array<{ participant: string; domain: string; own: number; mixed: number }> };
  totalBytes: { up: number; down: number };
  seconds: number;
}

export interface TextSimulationResult {
  kind: 'text-sessions';
  options: SimulationOptions;
  model: string;
  parameters: number;
  positions: number;
  data: { domains: string[]; trainBytes: Record<string, number>; heldOutBytes: Record<string, number>; mixedHeldOutBytes: number; referenceWindows: number };
  runs: TextRun[];
  /** With lm.lora: the frozen base every site adapts, and its own bits per byte (no adapter). */
  lora?: LoraReport;
  /** With the baseline: the issue's goal, read off the last round (mixed ≥ 10 % lower, own ≤ 2 % higher, as means over participants). */
  goal?: { mixedImprovementPct: number; ownChangePct: number; met: boolean };
  startedAt: string;
  seconds: number;
  /** The code that ran: its commit and whether the work tree differed from it (read at start). */
  code: { codistill: string; commit: string | null; dirty: boolean | null; tfjs: string };
}

export interface LoraReport {
  spec: string;
  /** Trainable (and, under FedAvg, exchanged) parameters per site. */
  adapterParameters: number;
  base: {
    dir: string;
    /** sha256 of its weights file: what every site checks before adapting it. */
    digest: string;
    parameters: number;
    steps: number;
    learningRate: number;
    trainSeconds: number;
    final: { meanOwn: number; meanMixed: number; perParticipant: Array<{ participant: string; domain: string; own: number; mixed: number }> };
  };
}

/** The frozen base as shipped: where it is saved and the digest the sites check. */
interface ShippedBase {
  dir: string;
  digest: string;
  lora: LoraSpec;
}

export interface Prepared {
  domains: string[];
  /** Each site's sequences, and the documents they were cut from (a plan writes these: simulations/plan.ts). */
  sites: Array<{ domain: string; train: TokenSequences; heldOut: TokenSequences; documents: { train: string[]; heldOut: string[] } }>;
  mixed: TokenSequences;
  reference: TokenSequences;
  /** The shared reference text's documents; the windows are cut from them joined by newlines (referenceWindows). */
  referenceDocuments: string[];
  result: TextSimulationResult['data'];
}

export function prepare(options: SimulationOptions, source: TextSource, lm: LmSettings, positions: number): Prepared {
  const split = splitDomains(loadFortuneDomains(source.domains, source.root), { heldOutFraction: lm.heldOutFraction, seed: options.seed, maxBytesPerDomain: lm.maxBytesPerDomain });
  const referenceDocs: string[][] = [];
  const sites = split.domains.map((d) => {
    // The first documents of the (shuffled) training part go to the shared reference text: disjoint from every held-out set and every site's private text.
    let bytes = 0;
    let n = 0;
    while (n < d.train.length - 1 && bytes < lm.referenceBytesPerDomain) bytes += encodeText(d.train[n++]!).length;
    referenceDocs.push(d.train.slice(0, n));
    return { domain: d.name, trainDocs: d.train.slice(n), heldOutDocs: d.heldOut };
  });
  // Interleaved by domain, so that any run of windows mixes the languages.
  const mixedReference: string[] = [];
  for (let i = 0; i < Math.max(...referenceDocs.map((r) => r.length)); i++) for (const docs of referenceDocs) if (i < docs.length) mixedReference.push(docs[i]!);
  const reference = referenceWindows(mixedReference, positions);
  const prepared = sites.map((s) => ({ domain: s.domain, train: toSequences(s.trainDocs, positions), heldOut: toSequences(s.heldOutDocs, positions), documents: { train: s.trainDocs, heldOut: s.heldOutDocs } }));
  const mixed = toSequences(split.mixedHeldOut, positions);
  return {
    domains: sites.map((s) => s.domain),
    sites: prepared,
    mixed,
    reference,
    referenceDocuments: mixedReference,
    result: {
      domains: sites.map((s) => s.domain),
      trainBytes: Object.fromEntries(prepared.map((s) => [s.domain, s.train.bytes])),
      heldOutBytes: Object.fromEntries(prepared.map((s) => [s.domain, s.heldOut.bytes])),
      mixedHeldOutBytes: mixed.bytes,
      referenceWindows: reference.count,
    },
  };
}

const modelSeed = (seed: number, i: number) => seed * 1000 + i + 1;

/**
 * Runs the text experiment. With `output.students`, each site's language model of the algorithm
 * under study is saved there (`<participant>/`: model.json, weights, card with the tokenizer and
 * its bits per byte), as `simulate` keeps a classifier's students; the baseline's are not kept.
 */
export async function simulateText(options: SimulationOptions, progress: Progress, output: { students?: string } = {}): Promise<TextSimulationResult> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const code = codeProvenance(); // before the run: the code that runs is the code at hand now
  const source = options.data as TextSource;
  const lm = options.lm!;
  const backend = await selectBackend(options.backend);
  const spec = parseLmSpec(lm.model);
  const positions = spec.ctx;
  const data = prepare(options, source, lm, positions);
  progress.line(
    `text: ${data.domains.length} sites (${data.domains.map((d) => `${d} ${data.result.trainBytes[d]} B`).join(', ')}), ` +
      `reference ${data.reference.count} windows of ${positions} bytes, mixed held-out ${data.mixed.bytes} B; model ${lmSpecName(spec)}, backend ${backend}`,
  );
  const algorithms = options.baseline && options.algorithm !== 'local' ? [options.algorithm, 'local'] : [options.algorithm];
  const runs: TextRun[] = [];
  let parameters = 0;
  let lora: LoraReport | undefined;
  let shipped: ShippedBase | undefined;
  if (lm.lora !== undefined) {
    ({ report: lora, shipped } = trainBase(options, lm, spec, data, backend, progress));
  }
  for (const algorithm of algorithms) {
    // FedAvg starts every site from one model, the server's w₀ (McMahan et al. 2017, Algorithm 1);
    // the others from a seed per site. The batches are seeded per site either way.
    const initSeed = (i: number) => modelSeed(options.seed, algorithm === 'fedavg' ? 0 : i);
    const models = data.sites.map((_, i) => (shipped === undefined ? createLanguageModel(spec, initSeed(i)) : adaptBase(shipped, initSeed(i))));
    parameters = models[0]!.countParams();
    try {
      const run = algorithm === 'local' ? runLocal(options, lm, data, models, progress) : await runSession(algorithm, options, lm, data, models, positions, progress);
      runs.push(run);
      if (output.students !== undefined && algorithm === options.algorithm) {
        saveSiteModels(output.students, algorithm, options, lm, data, models, run, backend);
        const files = lm.lora === undefined ? 'model.json, weights, card.json, README.md each' : `adapters.json and adapters.bin each (the base: ${lora!.base.dir})`;
        progress.line(`students saved to ${output.students}/ (${run.final.perParticipant.map((p) => p.participant).join(', ')}): ${files}`);
      }
    } finally {
      for (const m of models) disposeSiteModel(m);
    }
  }
  const result: TextSimulationResult = { kind: 'text-sessions', options, model: lmSpecName(spec), parameters, positions, data: data.result, runs, ...(lora === undefined ? {} : { lora }), startedAt, seconds: 0, code };
  const studied = runs.find((r) => r.algorithm !== 'local');
  const local = runs.find((r) => r.algorithm === 'local');
  if (studied !== undefined && local !== undefined) {
    const mixedImprovementPct = (100 * (local.final.meanMixed - studied.final.meanMixed)) / local.final.meanMixed;
    const ownChangePct = (100 * (studied.final.meanOwn - local.final.meanOwn)) / local.final.meanOwn;
    result.goal = { mixedImprovementPct, ownChangePct, met: mixedImprovementPct >= 10 && ownChangePct <= 2 };
  }
  result.seconds = (performance.now() - started) / 1000;
  return result;
}

/**
 * The frozen base: a model seeded by the run, trained with token-CE on the shared reference text
 * (public to every site) and saved in `<out>/base/` with its card — or, with `base.from`, a base
 * saved by an earlier run (the same seed's reference text), used where it is. Its digest is what
 * the sites check.
 */
function trainBase(options: SimulationOptions, lm: LmSettings, spec: LmSpec, data: Prepared, backend: string, progress: Progress): { report: LoraReport; shipped: ShippedBase } {
  const base = lm.base!;
  const began = performance.now();
  let model: LanguageModel;
  let dir: string;
  let steps = 0;
  let learningRate = base.learningRate ?? options.learningRate;
  if (base.from !== undefined) {
    dir = base.from;
    const loaded = loadLanguageModel(dir);
    model = loaded.model;
    if (lmSpecName(model.spec) !== lmSpecName(spec)) {
      model.dispose();
      throw new Error(`E_MODEL: the base in ${dir} is ${lmSpecName(model.spec)}; lm.model is ${lmSpecName(spec)}`);
    }
    steps = loaded.card?.training.steps ?? 0;
    learningRate = loaded.card?.training.learningRate ?? Number.NaN;
  } else {
    dir = join(options.out, 'base');
    const seed = options.seed * 1000;
    steps = base.steps!;
    model = createLanguageModel(spec, seed);
    trainLanguageModel(model, data.reference, {
      steps, batchSize: options.batchSize, learningRate, seed, loss: [{ name: 'token-ce', weight: 1 }], progressEvery: Math.max(1, Math.ceil(steps / 5)),
      onProgress: (step, loss) => progress.line(`base: step ${step}/${steps} on the reference text, token-CE ${loss.toFixed(3)}`),
    });
  }
  try {
    const trainSeconds = base.from === undefined ? (performance.now() - began) / 1000 : 0;
    const perParticipant = data.sites.map((site, i) => ({ participant: `p${i}`, domain: site.domain, ...evaluate(model, site.heldOut, data.mixed) }));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const final = { meanOwn: mean(perParticipant.map((p) => p.own)), meanMixed: mean(perParticipant.map((p) => p.mixed)), perParticipant };
    if (base.from === undefined) {
      saveLanguageModel(dir, model, {
        backend,
        training: {
          method: 'token-ce on the shared reference text (the frozen base of LoRA students)', steps, batchSize: options.batchSize, learningRate, seed: options.seed * 1000,
          data: { source: `the reference text of ${data.domains.join(', ')}`, trainBytes: data.reference.bytes },
        },
        metrics: { heldOut: { bitsPerByte: final.meanMixed, bytes: data.mixed.bytes }, perDomain: Object.fromEntries(perParticipant.map((p) => [p.domain, p.own])) },
      });
    }
    const digest = languageModelDigest(model);
    const loraSpec: LoraSpec = { ...lm.lora!, targets: [...lm.lora!.targets] };
    const adapterParameters = adapterCount(model, loraSpec);
    progress.line(
      `base: ${lmSpecName(spec)} (${model.countParams()} parameters) ${base.from === undefined ? `trained ${steps} steps in ${trainSeconds.toFixed(0)} s, saved to` : 'loaded from'} ${dir} (${digest}); ` +
        `own ${final.meanOwn.toFixed(3)} bpb, mixed ${final.meanMixed.toFixed(3)} bpb; LoRA ${loraSpecName(loraSpec)}: ${adapterParameters} trainable parameters per site`,
    );
    return {
      report: { spec: loraSpecName(loraSpec), adapterParameters, base: { dir, digest, parameters: model.countParams(), steps, learningRate, trainSeconds, final } },
      shipped: { dir, digest, lora: loraSpec },
    };
  } finally {
    model.dispose();
  }
}

function adapterCount(base: LanguageModel, spec: LoraSpec): number {
  const probe = createLoraModel(base, spec, 0);
  const n = probe.countParams();
  probe.dispose();
  return n;
}

/** A site's LoRA student: the shipped base, loaded from its folder and checked against the digest the session names, plus new adapters. */
function adaptBase(shipped: ShippedBase, seed: number): LanguageModel {
  const { model: base } = loadLanguageModel(shipped.dir);
  const digest = languageModelDigest(base);
  if (digest !== shipped.digest) {
    base.dispose();
    throw new Error(`E_MODEL: the base in ${shipped.dir} has digest ${digest}; the session names ${shipped.digest}`);
  }
  return createLoraModel(base, shipped.lora, seed);
}

/** Frees a site's model and, for a LoRA student, the base it loaded (each site has its own copy). */
function disposeSiteModel(model: LanguageModel): void {
  model.dispose();
  if (model instanceof LoraLanguageModel) model.base.dispose();
}

/** Each site's model after the run, with a card saying how it was trained and what it reached. */
function saveSiteModels(dir: string, algorithm: string, options: SimulationOptions, lm: LmSettings, data: Prepared, models: LanguageModel[], run: TextRun, backend: string): void {
  models.forEach((model, i) => {
    const site = data.sites[i]!;
    const reached = run.final.perParticipant.find((p) => p.participant === `p${i}`)!;
    if (model instanceof LoraLanguageModel) {
      // Only the adapters: the base is saved once, in <out>/base/, and named by digest in adapters.json.
      saveLoraAdapters(join(dir, reached.participant), model, { training: `${algorithm} across ${models.length} sites; ${site.domain}: own ${reached.own.toFixed(3)} bpb, mixed ${reached.mixed.toFixed(3)} bpb` });
      return;
    }
    saveLanguageModel(join(dir, reached.participant), model, {
      backend,
      training: {
        method: algorithm === 'local' ? 'token-ce (local only)'
          : algorithm === 'fedavg' ? `fedavg across ${models.length} sites (token-ce locally, weights averaged each round)`
          : `${algorithm} across ${models.length} sites (token-ce + token-kd towards the peers' per-token target)`,
        steps: options.rounds * lm.steps,
        batchSize: options.batchSize,
        learningRate: options.learningRate,
        seed: modelSeed(options.seed, i),
        data: { source: `text domain ${site.domain}`, trainBytes: site.train.bytes },
      },
      metrics: { heldOut: { bitsPerByte: reached.mixed, bytes: data.mixed.bytes }, perDomain: { [site.domain]: reached.own } },
    });
  });
}

function evaluate(model: LanguageModel, own: TokenSequences, mixed: TokenSequences) {
  return { own: bitsPerByte(model, own), mixed: bitsPerByte(model, mixed) };
}

function finish(algorithm: string, rows: TextRow[], began: number): TextRun {
  const last = Math.max(...rows.map((r) => r.round));
  const finalRows = rows.filter((r) => r.round === last);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    algorithm,
    rows,
    final: {
      meanOwn: mean(finalRows.map((r) => r.ownBitsPerByte)),
      meanMixed: mean(finalRows.map((r) => r.mixedBitsPerByte)),
      perParticipant: finalRows.map((r) => ({ participant: r.participant, domain: r.domain, own: r.ownBitsPerByte, mixed: r.mixedBitsPerByte })),
    },
    totalBytes: { up: rows.reduce((a, r) => a + r.bytesUp, 0), down: rows.reduce((a, r) => a + r.bytesDown, 0) },
    seconds: (performance.now() - began) / 1000,
  };
}

function say(progress: Progress, algorithm: string, row: TextRow): void {
  progress.line(
    `${algorithm} round ${row.round} ${row.participant} (${row.domain}): own ${row.ownBitsPerByte.toFixed(3)} bpb, mixed ${row.mixedBitsPerByte.toFixed(3)} bpb, ` +
      `loss ${row.trainLoss.toFixed(3)}, up ${(row.bytesUp / 1024).toFixed(0)} KiB, down ${(row.bytesDown / 1024).toFixed(0)} KiB`,
  );
}

/** The local-only baseline: each site trains on its own text with token-CE, `steps` per round, nothing exchanged. */
function runLocal(options: SimulationOptions, lm: LmSettings, data: Prepared, models: LanguageModel[], progress: Progress): TextRun {
  const began = performance.now();
  const rows: TextRow[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    data.sites.forEach((site, i) => {
      const losses = trainLanguageModel(models[i]!, site.train, {
        steps: lm.steps, batchSize: options.batchSize, learningRate: options.learningRate, seed: modelSeed(options.seed, i) * 100 + round, loss: [{ name: 'token-ce', weight: 1 }],
      });
      const { own, mixed } = evaluate(models[i]!, site.heldOut, data.mixed);
      const row: TextRow = {
        round, participant: `p${i}`, domain: site.domain, ownBitsPerByte: own, mixedBitsPerByte: mixed,
        trainLoss: losses.reduce((a, b) => a + b, 0) / losses.length, receivedTarget: false, bytesUp: 0, bytesDown: 0,
      };
      rows.push(row);
      say(progress, 'local', row);
    });
  }
  return finish('local', rows, began);
}

/** The algorithm under study through a real coordinator on 127.0.0.1, one participant per site. */
async function runSession(algorithm: string, options: SimulationOptions, lm: LmSettings, data: Prepared, models: LanguageModel[], positions: number, progress: Progress): Promise<TextRun> {
  const began = performance.now();
  const defaults = ALGORITHM_DEFAULTS[algorithm]!;
  const ids = data.sites.map((_, i) => `p${i}`);
  const config: SessionConfig = {
    id: `text-${algorithm}`, algorithm, rounds: options.rounds, participants: ids.map((id) => ({ id, token: `token-${id}-${Math.random()}` })),
    minParticipants: ids.length, numClasses: BYTE_TOKENIZER.vocabSize, referenceSize: data.reference.count,
    referencePerRound: Math.min(options.referencePerRound, data.reference.count), temperature: options.temperature ?? defaults.temperature, alpha: options.alpha ?? defaults.alpha,
    uploadDtype: options.uploadDtype, targetDtype: options.targetDtype, uploadTopK: options.uploadTopK, targetTopK: options.targetTopK, sparseTail: options.sparseTail, aggregator: options.aggregator,
    // Training rounds on a shared, loaded machine are slow: the deadlines only catch a stuck run.
    roundTimeoutMs: 3_600_000, trainTimeoutMs: 3_600_000, onRoundFailure: 'stop', seed: options.seed, maxMessageBytes: 16 << 20,
    // Per-token sessions name the tokenizer and window length; FedAvg's exchange weights, which carry no tokens.
    ...(STRATEGIES[algorithm]!.perToken === true ? { tokenizer: tokenizerIdentity(BYTE_TOKENIZER), positions } : {}),
    ...(options.async === undefined ? {} : { async: { ...DEFAULT_ASYNC, ...options.async } }),
  };
  const coordinator = await Coordinator.start();
  const rows: TextRow[] = [];
  try {
    const session = coordinator.createSession(config);
    const ended = new Promise((resolve) => session.once('end', resolve));
    await Promise.all(
      data.sites.map((site, i) => {
        const text: TextSite = { model: models[i]!, tokenizer: BYTE_TOKENIZER, train: site.train, reference: data.reference, steps: lm.steps, learningRate: options.learningRate, seed: modelSeed(options.seed, i) };
        return runParticipant({
          url: coordinator.url, session: config.id, token: (config.participants[i] as { token: string }).token, data: textParticipantData(text),
          epochs: 1, batchSize: options.batchSize,
          onRound: (r) => {
            const { own, mixed } = evaluate(models[i]!, site.heldOut, data.mixed);
            const row: TextRow = {
              round: r.round, participant: ids[i]!, domain: site.domain, ownBitsPerByte: own, mixedBitsPerByte: mixed,
              trainLoss: r.train.loss, receivedTarget: r.receivedTarget, bytesUp: r.bytesUp, bytesDown: r.bytesDown,
            };
            rows.push(row);
            say(progress, algorithm, row);
          },
        });
      }),
    );
    await ended;
  } finally {
    await coordinator.close();
  }
  rows.sort((a, b) => a.round - b.round || a.participant.localeCompare(b.participant));
  return finish(algorithm, rows, began);
}

export function formatTextSummary(result: TextSimulationResult): string {
  const lines = [`${result.model} (${result.parameters} ${result.lora === undefined ? '' : 'adapter '}parameters), ${result.positions} positions, ${result.options.rounds} rounds × ${result.options.lm!.steps} steps, seed ${result.options.seed}, ${result.seconds.toFixed(0)} s`];
  if (result.lora !== undefined) {
    const b = result.lora.base;
    lines.push(`base   mean own ${b.final.meanOwn.toFixed(3)} bpb, mixed ${b.final.meanMixed.toFixed(3)} bpb (frozen, ${b.parameters} parameters, ${b.steps} steps on the reference text, ${b.digest.slice(0, 19)}…); LoRA ${result.lora.spec}`);
  }
  for (const run of result.runs) {
    lines.push(`${run.algorithm.padEnd(6)} mean own ${run.final.meanOwn.toFixed(3)} bpb, mixed ${run.final.meanMixed.toFixed(3)} bpb; bytes up ${run.totalBytes.up}, down ${run.totalBytes.down}; ` +
      run.final.perParticipant.map((p) => `${p.domain} ${p.own.toFixed(3)}/${p.mixed.toFixed(3)}`).join(', '));
  }
  if (result.goal !== undefined) {
    lines.push(`goal (mixed ≥ 10 % lower, own ≤ 2 % higher than local-only): mixed ${result.goal.mixedImprovementPct.toFixed(1)} % lower, own ${result.goal.ownChangePct >= 0 ? '+' : ''}${result.goal.ownChangePct.toFixed(1)} % — ${result.goal.met ? 'met' : 'not met'}`);
  }
  return lines.join('\n');
}

/** result.json, rounds.jsonl (one line per participant and round) and config.json in `dir`. */
export function writeTextOutputs(result: TextSimulationResult, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const files = { result: join(dir, 'result.json'), rounds: join(dir, 'rounds.jsonl'), config: join(dir, 'config.json') };
  writeFileSync(files.result, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(files.rounds, result.runs.flatMap((run) => run.rows.map((row) => JSON.stringify({ algorithm: run.algorithm, seed: result.options.seed, ...row }))).join('\n') + '\n');
  writeFileSync(files.config, `${JSON.stringify(result.options, null, 2)}\n`);
  return Object.values(files);
}
