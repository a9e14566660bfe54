#!/usr/bin/env node
/** The `codistill` command. */
import { parseArgs } from 'node:util';
import { MODELS, type ModelName } from '../client/models.js';
import { WIRE_DTYPES, type WireDtype } from '../protocol/index.js';
import { AGGREGATOR_NAMES } from '../server/aggregators/index.js';
import { STRATEGIES } from '../server/strategies/index.js';
import { runCompareCommand } from './compare.js';
import { CENTRALIZED, DEFAULT_OPTIONS, formatSummary, simulate, writeResult, type SimulationOptions } from './simulate.js';

const USAGE = `usage: codistill <command> [options]

commands:
  simulate   run a coordinator and N participants (worker threads) on this machine, over
             loopback sockets, on the embedded MNIST data; then the local-only baseline
  compare CONFIG
             run every algorithm of a JSON config over its seeds; writes results.json and
             RESULTS.md beside the config (see experiments/)

simulate options (defaults in brackets):
  --algorithm NAME          ${[...Object.keys(STRATEGIES), CENTRALIZED].join(' | ')} [${DEFAULT_OPTIONS.algorithm}]
  --participants N          [${DEFAULT_OPTIONS.participants}]
  --rounds N                [${DEFAULT_OPTIONS.rounds}]
  --model NAME              ${MODELS.join(' | ')} [${DEFAULT_OPTIONS.model}]
  --partition KIND          iid | dirichlet [dirichlet]
  --dirichlet-alpha A       label skew; smaller is more skewed [0.3]
  --seed N                  data split, partition and weight initialisation [${DEFAULT_OPTIONS.seed}]
  --test-size N             held-out test samples [${DEFAULT_OPTIONS.testSize}]
  --reference-size N        shared reference samples [${DEFAULT_OPTIONS.referenceSize}]
  --reference-per-round N   reference samples each round [${DEFAULT_OPTIONS.referencePerRound}]
  --epochs N                local epochs per round [${DEFAULT_OPTIONS.epochs}]
  --batch-size N            [${DEFAULT_OPTIONS.batchSize}]
  --lr X                    Adam learning rate [${DEFAULT_OPTIONS.learningRate}]
  --alpha X                 weight of the task loss; distillation gets 1 − alpha [the algorithm's]
  --temperature T           [the algorithm's]
  --aggregator NAME         ${AGGREGATOR_NAMES.join(' | ')} [the algorithm's]
  --upload-dtype D          ${WIRE_DTYPES.join(' | ')} [${DEFAULT_OPTIONS.uploadDtype}]
  --backend NAME            node-gpu | node | wasm | cpu [automatic]
  --workers N               worker threads to spread participants over [one per participant]
  --no-baseline             skip the local-only baseline run
  --out FILE                results JSON [results/simulate-<time>.json]
`;

function number(flag: string, raw: string | undefined, fallback: number, check: (x: number) => boolean, rule: string): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || !check(value)) throw new Error(`--${flag} must be ${rule}; got "${raw}"`);
  return value;
}
const positiveInt = (x: number) => Number.isInteger(x) && x >= 1;
const inUnit = (x: number) => x >= 0 && x <= 1;

function oneOf<T extends string>(flag: string, raw: string | undefined, fallback: T, allowed: readonly T[]): T {
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new Error(`--${flag} must be one of ${allowed.join(', ')}; got "${raw}"`);
  return raw as T;
}

export function parseSimulateArgs(args: string[]): SimulationOptions {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      algorithm: { type: 'string' },
      participants: { type: 'string' },
      rounds: { type: 'string' },
      model: { type: 'string' },
      partition: { type: 'string' },
      'dirichlet-alpha': { type: 'string' },
      seed: { type: 'string' },
      'test-size': { type: 'string' },
      'reference-size': { type: 'string' },
      'reference-per-round': { type: 'string' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      lr: { type: 'string' },
      alpha: { type: 'string' },
      temperature: { type: 'string' },
      aggregator: { type: 'string' },
      'upload-dtype': { type: 'string' },
      backend: { type: 'string' },
      workers: { type: 'string' },
      'no-baseline': { type: 'boolean' },
      out: { type: 'string' },
    },
  });
  const d = DEFAULT_OPTIONS;
  const kind = oneOf('partition', values.partition, 'dirichlet', ['iid', 'dirichlet'] as const);
  const dirichletAlpha = number('dirichlet-alpha', values['dirichlet-alpha'], 0.3, (x) => x > 0, 'a number > 0');
  const referenceSize = number('reference-size', values['reference-size'], d.referenceSize, positiveInt, 'an integer ≥ 1');
  return {
    algorithm: oneOf('algorithm', values.algorithm, d.algorithm, [...Object.keys(STRATEGIES), CENTRALIZED]),
    participants: number('participants', values.participants, d.participants, (x) => positiveInt(x) && x >= 2, 'an integer ≥ 2'),
    rounds: number('rounds', values.rounds, d.rounds, positiveInt, 'an integer ≥ 1'),
    model: oneOf<ModelName>('model', values.model, d.model, MODELS),
    partition: kind === 'iid' ? { kind } : { kind, alpha: dirichletAlpha },
    seed: number('seed', values.seed, d.seed, (x) => Number.isInteger(x) && x >= 0 && x < 2 ** 20, 'an integer in [0, 2^20)'),
    testSize: number('test-size', values['test-size'], d.testSize, positiveInt, 'an integer ≥ 1'),
    referenceSize,
    referencePerRound: number('reference-per-round', values['reference-per-round'], referenceSize, positiveInt, 'an integer ≥ 1'),
    epochs: number('epochs', values.epochs, d.epochs, positiveInt, 'an integer ≥ 1'),
    batchSize: number('batch-size', values['batch-size'], d.batchSize, positiveInt, 'an integer ≥ 1'),
    learningRate: number('lr', values.lr, d.learningRate, (x) => x > 0, 'a number > 0'),
    alpha: values.alpha === undefined ? undefined : number('alpha', values.alpha, 0, inUnit, 'a number in [0, 1]'),
    temperature: values.temperature === undefined ? undefined : number('temperature', values.temperature, 1, (x) => x > 0, 'a number > 0'),
    aggregator: values.aggregator === undefined ? undefined : oneOf('aggregator', values.aggregator, 'mean', AGGREGATOR_NAMES),
    uploadDtype: oneOf<WireDtype>('upload-dtype', values['upload-dtype'], d.uploadDtype, WIRE_DTYPES),
    backend: values.backend,
    workers: values.workers === undefined ? undefined : number('workers', values.workers, 1, positiveInt, 'an integer ≥ 1'),
    baseline: values['no-baseline'] !== true,
    out: values.out ?? `results/simulate-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
  };
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === 'compare') {
    if (rest[0] === undefined || rest[0].startsWith('-')) {
      process.stderr.write('codistill compare: give the path of a config, e.g. experiments/algorithms/config.json\n');
      return 2;
    }
    const written = await runCompareCommand(rest[0], { line: (text) => process.stdout.write(`${text}\n`) });
    process.stdout.write(`results written to ${written.json} and ${written.markdown}\n`);
    return 0;
  }
  if (command !== 'simulate') {
    process.stderr.write(`codistill: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  let options: SimulationOptions;
  try {
    options = parseSimulateArgs(rest);
  } catch (error) {
    process.stderr.write(`codistill simulate: ${(error as Error).message}\n`);
    return 2;
  }
  const result = await simulate(options, { line: (text) => process.stdout.write(`${text}\n`) });
  process.stdout.write(`${formatSummary(result)}\n`);
  writeResult(result, options.out);
  process.stdout.write(`results written to ${options.out}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`codistill: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
