/**
 * Simulations of language models across sites (`data: { source: text }`): one participant per
 * text domain (a language of Debian's fortunes), each training a small causal Transformer on its
 * own domain's text, and — for DML — exchanging per-token distributions on a shared reference
 * text through a real coordinator (reference-token-predictions). Every round prints each
 * participant's bits per byte on its own domain's held-out text and on the mixed held-out set
 * (all domains'); the local-only baseline trains the same models from the same initial weights
 * on the same batches' schedule with token-CE alone.
 *
 * Runs in this process (the participants share its tfjs, one at a time), not on the worker pool.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { selectBackend } from '../client/backend.js';
import { loadFortuneDomains, splitDomains, toSequences, type TokenSequences } from '../client/data/text.js';
import { createLanguageModel, lmSpecName, parseLmSpec, type LanguageModel } from '../client/lm/model.js';
import { referenceWindows, textParticipantData, tokenizerIdentity, type TextSite } from '../client/lm/site.js';
import { BYTE_TOKENIZER, encodeText } from '../client/lm/tokenizer.js';
import { bitsPerByte, trainLanguageModel } from '../client/lm/train.js';
import { runParticipant } from '../client/participant.js';
import { saveLanguageModel } from '../client/student-io/index.js';
import { ALGORITHM_DEFAULTS } from '../server/strategies/index.js';
import { Coordinator } from '../server/coordinator.js';
import type { SessionConfig } from '../server/session-config.js';
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
  /** With the baseline: the issue's goal, read off the last round (mixed ≥ 10 % lower, own ≤ 2 % higher, as means over participants). */
  goal?: { mixedImprovementPct: number; ownChangePct: number; met: boolean };
  startedAt: string;
  seconds: number;
}

interface Prepared {
  domains: string[];
  sites: Array<{ domain: string; train: TokenSequences; heldOut: TokenSequences }>;
  mixed: TokenSequences;
  reference: TokenSequences;
  result: TextSimulationResult['data'];
}

function prepare(options: SimulationOptions, source: TextSource, lm: LmSettings, positions: number): Prepared {
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
  const prepared = sites.map((s) => ({ domain: s.domain, train: toSequences(s.trainDocs, positions), heldOut: toSequences(s.heldOutDocs, positions) }));
  const mixed = toSequences(split.mixedHeldOut, positions);
  return {
    domains: sites.map((s) => s.domain),
    sites: prepared,
    mixed,
    reference,
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
  for (const algorithm of algorithms) {
    const models = data.sites.map((_, i) => createLanguageModel(spec, modelSeed(options.seed, i)));
    parameters = models[0]!.countParams();
    try {
      const run = algorithm === 'local' ? runLocal(options, lm, data, models, progress) : await runSession(algorithm, options, lm, data, models, positions, progress);
      runs.push(run);
      if (output.students !== undefined && algorithm === options.algorithm) {
        saveSiteModels(output.students, algorithm, options, lm, data, models, run, backend);
        progress.line(`students saved to ${output.students}/ (${run.final.perParticipant.map((p) => p.participant).join(', ')}): model.json, weights, card.json, README.md each`);
      }
    } finally {
      for (const m of models) m.dispose();
    }
  }
  const result: TextSimulationResult = { kind: 'text-sessions', options, model: lmSpecName(spec), parameters, positions, data: data.result, runs, startedAt, seconds: 0 };
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

/** Each site's model after the run, with a card saying how it was trained and what it reached. */
function saveSiteModels(dir: string, algorithm: string, options: SimulationOptions, lm: LmSettings, data: Prepared, models: LanguageModel[], run: TextRun, backend: string): void {
  models.forEach((model, i) => {
    const site = data.sites[i]!;
    const reached = run.final.perParticipant.find((p) => p.participant === `p${i}`)!;
    saveLanguageModel(join(dir, reached.participant), model, {
      backend,
      training: {
        method: algorithm === 'local' ? 'token-ce (local only)' : `${algorithm} across ${models.length} sites (token-ce + token-kd towards the peers' per-token target)`,
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
    tokenizer: tokenizerIdentity(BYTE_TOKENIZER), positions,
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
  const lines = [`${result.model} (${result.parameters} parameters), ${result.positions} positions, ${result.options.rounds} rounds × ${result.options.lm!.steps} steps, seed ${result.options.seed}, ${result.seconds.toFixed(0)} s`];
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
