/**
 * `codistill compare CONFIG`: every algorithm of a config on the same data, wire and metrics,
 * over several seeds, into one table (Markdown) and one results file (JSON) kept beside the
 * config. The same config reproduces the same table (up to timing) on the same backend.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describePartition } from '../client/data/partition.js';
import { DEFAULT_OPTIONS, prepareData, runAlgorithm, writeResult, type Progress, type RunResult, type SimulationOptions } from './simulate.js';

export interface CompareConfig {
  /** Shown as the table's title. */
  title: string;
  algorithms: string[];
  seeds: number[];
  /** Simulation options shared by every run (seed and algorithm are set per run). */
  simulation: Partial<Omit<SimulationOptions, 'seed' | 'algorithm' | 'baseline' | 'out'>>;
}

export interface CompareResult {
  config: CompareConfig;
  runs: Array<RunResult & { seed: number; partitionHash: string }>;
  table: TableRow[];
  startedAt: string;
  seconds: number;
}

export interface TableRow {
  algorithm: string;
  heldOut: Stat;
  personalized: Stat;
  ensemble: Stat;
  /** Envelope bytes per participant per round, each direction, and in total over a run. */
  bytesPerParticipantRound: { up: number; down: number };
  bytesPerRun: number;
  seconds: number;
}

export interface Stat {
  mean: number;
  /** Sample standard deviation over seeds (0 for one seed). */
  sd: number;
  min: number;
  max: number;
}

function stat(xs: number[]): Stat {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, sd, min: Math.min(...xs), max: Math.max(...xs) };
}

export function readCompareConfig(path: string): CompareConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`cannot read the compare config ${path}: ${(error as Error).message}`);
  }
  const c = raw as Partial<CompareConfig>;
  const problems: string[] = [];
  if (typeof c.title !== 'string') problems.push('title must be a string');
  if (!Array.isArray(c.algorithms) || c.algorithms.length === 0) problems.push('algorithms must be a non-empty array of names');
  if (!Array.isArray(c.seeds) || c.seeds.length === 0 || !c.seeds.every((s) => Number.isInteger(s) && s >= 0)) {
    problems.push('seeds must be a non-empty array of integers ≥ 0');
  }
  if (typeof c.simulation !== 'object' || c.simulation === null) problems.push('simulation must be an object of simulate options');
  if (problems.length > 0) throw new Error(`invalid compare config ${path}: ${problems.join('; ')}`);
  return c as CompareConfig;
}

export async function compare(config: CompareConfig, progress: Progress): Promise<CompareResult> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const runs: CompareResult['runs'] = [];
  const total = config.seeds.length * config.algorithms.length;
  for (const seed of config.seeds) {
    const options: SimulationOptions = { ...DEFAULT_OPTIONS, ...config.simulation, seed, algorithm: config.algorithms[0]!, baseline: false, out: '' };
    const data = prepareData(options, progress);
    for (const algorithm of config.algorithms) {
      progress.line(`\n=== run ${runs.length + 1}/${total}: ${algorithm}, seed ${seed}`);
      const run = await runAlgorithm({ ...options, algorithm }, data, progress);
      runs.push({ ...run, seed, partitionHash: data.partitionHash });
    }
  }
  const table = config.algorithms.map((algorithm): TableRow => {
    const mine = runs.filter((r) => r.algorithm === algorithm);
    const rounds = mine[0]!.rows.length;
    const perParticipantRound = (bytes: number, r: RunResult) => bytes / (r.participants * rounds);
    return {
      algorithm,
      heldOut: stat(mine.map((r) => r.final.meanAccuracy)),
      personalized: stat(mine.map((r) => r.final.meanPersonalized)),
      ensemble: stat(mine.map((r) => r.final.ensembleAccuracy)),
      bytesPerParticipantRound: {
        up: stat(mine.map((r) => perParticipantRound(r.totalBytes.up, r))).mean,
        down: stat(mine.map((r) => perParticipantRound(r.totalBytes.down, r))).mean,
      },
      bytesPerRun: stat(mine.map((r) => r.totalBytes.up + r.totalBytes.down)).mean,
      seconds: stat(mine.map((r) => r.seconds)).mean,
    };
  });
  return { config, runs, table, startedAt, seconds: (performance.now() - started) / 1000 };
}

const pct = (s: Stat) => `${(100 * s.mean).toFixed(1)} ± ${(100 * s.sd).toFixed(1)}`;

function bytes(n: number): string {
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(2)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n.toFixed(0)} B`;
}

export function formatTable(result: CompareResult, configPath: string): string {
  const { config } = result;
  const s = { ...DEFAULT_OPTIONS, ...config.simulation };
  const partition = describePartition(s.partition);
  const lines = [
    `# ${config.title}`,
    '',
    `Produced by \`node dist/simulations/cli.js compare ${configPath}\` from [${configPath.split('/').pop()}](${configPath.split('/').pop()}), ` +
      `${result.startedAt.slice(0, 10)}, in ${(result.seconds / 60).toFixed(0)} minutes on ${result.runs[0]?.backend ?? '?'}.`,
    '',
    `MNIST from the \`mnist\` package: ${s.testSize} held-out test digits, ${s.referenceSize} reference digits (unlabeled for ` +
      `the participants), the rest split over ${s.participants} participants by ${partition}. Model ${s.model}, ${s.rounds} rounds, ` +
      `${s.epochs} local epoch(s) per round, batch ${s.batchSize}, Adam ${s.learningRate}. Seeds ${config.seeds.join(', ')}: mean ± sample SD.`,
    '',
    '- **held-out**: accuracy on the balanced held-out test set, mean over participants (global accuracy).',
    "- **personalised**: each participant's per-class test accuracy weighted by its own label distribution, mean over participants.",
    '- **ensemble**: accuracy of the mean of all participants\' predictions.',
    '- **bytes**: msgpack envelope bytes counted by the coordinator (uploads and reports up; round announcements and targets down).',
    '',
    '| algorithm | held-out % | personalised % | ensemble % | up / participant / round | down / participant / round | total per run | time / run |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const row of result.table) {
    lines.push(
      `| ${row.algorithm} | ${pct(row.heldOut)} | ${pct(row.personalized)} | ${pct(row.ensemble)} | ${bytes(row.bytesPerParticipantRound.up)} | ` +
        `${bytes(row.bytesPerParticipantRound.down)} | ${bytes(row.bytesPerRun)} | ${row.seconds.toFixed(0)} s |`,
    );
  }
  lines.push('', '## Per seed', '', '| algorithm | seed | held-out % | personalised % | ensemble % | partition hash |', '|---|---|---|---|---|---|');
  for (const r of result.runs) {
    lines.push(
      `| ${r.algorithm} | ${r.seed} | ${(100 * r.final.meanAccuracy).toFixed(1)} | ${(100 * r.final.meanPersonalized).toFixed(1)} | ` +
        `${(100 * r.final.ensembleAccuracy).toFixed(1)} | ${r.partitionHash.slice(0, 12)} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export async function runCompareCommand(configPath: string, progress: Progress): Promise<{ json: string; markdown: string }> {
  const config = readCompareConfig(configPath);
  const result = await compare(config, progress);
  const dir = dirname(configPath);
  const json = join(dir, 'results.json');
  const markdown = join(dir, 'RESULTS.md');
  writeResult(result, json);
  const table = formatTable(result, configPath);
  writeFileSync(markdown, table);
  progress.line(`\n${table}`);
  return { json, markdown };
}
