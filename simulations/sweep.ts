/**
 * `codistill sweep FILE`: a grid over any experiment fields, each point run as its own
 * `codistill simulate` process, several at once, with progress. A point whose result.json
 * exists is not run again, so an interrupted sweep resumes where it stopped. At the end the
 * points are grouped by every grid field but the seed into one table (mean ± SD over seeds).
 *
 *   name: temperature                       # the sweep's folder name
 *   base: ../configs/dml.yaml               # a config file (relative to this file) or fields
 *   grid: { temperature: [1, 3], seed: [1, 2, 3], partition.alpha: [0.1, 1] }
 *   parallel: 2                             # processes at once (default: the machine's cores)
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readConfigFile, validateExperiment } from './config.js';
import { meanWithSpread } from './metrics.js';
import { DEFAULT_OPTIONS, type Progress, type SimulationResult } from './simulate.js';

export interface SweepPoint {
  id: string;
  values: Record<string, unknown>;
  config: Record<string, unknown>;
  dir: string;
}

/** Sets `path` (dotted for nested fields, e.g. partition.alpha) in a copy of `target`. */
function withField(target: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const [head, ...rest] = path.split('.');
  const copy = { ...target };
  copy[head!] = rest.length === 0 ? value : withField((target[head!] as Record<string, unknown> | undefined) ?? {}, rest.join('.'), value);
  return copy;
}

/** Every combination of the grid, validated before anything runs. */
export function expandSweep(path: string): { name: string; points: SweepPoint[]; parallel: number; dir: string } {
  const sweep = readConfigFile(path);
  const problems: string[] = [];
  if (typeof sweep.name !== 'string' || !/^[\w.-]+$/.test(sweep.name)) problems.push('name: must be a folder name (letters, digits, . _ -)');
  const grid = sweep.grid as Record<string, unknown> | undefined;
  if (typeof grid !== 'object' || grid === null || Object.keys(grid).length === 0) problems.push('grid: must map fields to lists of values');
  else for (const [field, values] of Object.entries(grid)) if (!Array.isArray(values) || values.length === 0) problems.push(`grid.${field}: must be a non-empty list`);
  const parallel = sweep.parallel ?? availableParallelism();
  if (!Number.isInteger(parallel) || (parallel as number) < 1) problems.push(`parallel: must be an integer ≥ 1 (got ${JSON.stringify(parallel)})`);
  for (const key of Object.keys(sweep)) if (!['name', 'base', 'grid', 'parallel'].includes(key)) problems.push(`unknown field "${key}" (allowed: name, base, grid, parallel)`);
  if (problems.length > 0) throw new Error(`invalid sweep ${path}:\n  ${problems.join('\n  ')}`);

  const base = typeof sweep.base === 'string'
    ? readConfigFile(isAbsolute(sweep.base) ? sweep.base : join(dirname(path), sweep.base))
    : ((sweep.base ?? {}) as Record<string, unknown>);
  const dir = join(dirname(path), sweep.name as string);
  let combos: Array<Record<string, unknown>> = [{}];
  for (const [field, values] of Object.entries(grid!)) combos = combos.flatMap((c) => (values as unknown[]).map((v) => ({ ...c, [field]: v })));
  const points = combos.map((values) => {
    const id = Object.entries(values).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(',').replace(/[^\w.,=-]/g, '_');
    let config: Record<string, unknown> = { ...DEFAULT_OPTIONS, ...base, baseline: false };
    for (const [field, value] of Object.entries(values)) config = withField(config, field, value);
    const pointDir = join(dir, id);
    config.referencePerRound ??= config.referenceSize;
    config.out = pointDir;
    validateExperiment(config, `${path}, point ${id}`);
    return { id, values, config, dir: pointDir };
  });
  return { name: sweep.name as string, points, parallel: parallel as number, dir };
}

const CLI = fileURLToPath(new URL('./cli.js', import.meta.url));

function runPoint(point: SweepPoint): Promise<{ ok: boolean; seconds: number }> {
  mkdirSync(point.dir, { recursive: true });
  const input = join(point.dir, 'sweep-point.json');
  writeFileSync(input, `${JSON.stringify(point.config, null, 2)}\n`);
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'simulate', '--config', input], { stdio: ['ignore', 'pipe', 'pipe'] });
    const log: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => log.push(b));
    child.stderr.on('data', (b: Buffer) => log.push(b));
    child.on('close', (code) => {
      writeFileSync(join(point.dir, 'log.txt'), Buffer.concat(log));
      resolve({ ok: code === 0, seconds: (performance.now() - started) / 1000 });
    });
  });
}

export async function runSweepCommand(path: string, progress: Progress): Promise<number> {
  const { name, points, parallel, dir } = expandSweep(path);
  const pending = points.filter((p) => !existsSync(join(p.dir, 'result.json')));
  progress.line(`sweep ${name}: ${points.length} points, ${points.length - pending.length} already done, ${pending.length} to run, ${parallel} at a time → ${dir}`);
  const failed: string[] = [];
  let done = points.length - pending.length;
  let next = 0;
  const worker = async () => {
    while (next < pending.length) {
      const point = pending[next++]!;
      progress.line(`  start ${point.id}`);
      const { ok, seconds } = await runPoint(point);
      done++;
      if (!ok) failed.push(point.id);
      const result = ok ? readResult(point) : undefined;
      const accuracy = result?.runs[0] ? ` held-out ${(100 * result.runs[0].final.meanAccuracy).toFixed(1)}%` : '';
      progress.line(`  [${done}/${points.length}] ${ok ? 'done' : 'FAILED (see log.txt)'} ${point.id}${accuracy} in ${seconds.toFixed(0)} s`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, pending.length) }, worker));
  const table = summarize(points);
  writeFileSync(join(dir, 'sweep.md'), table.markdown);
  writeFileSync(join(dir, 'sweep.csv'), table.csv);
  progress.line(`\n${table.markdown}\nwritten ${join(dir, 'sweep.md')} and ${join(dir, 'sweep.csv')}`);
  if (failed.length > 0) {
    progress.line(`${failed.length} point(s) failed: ${failed.join('; ')} — rerun the same command to retry them`);
    return 1;
  }
  return 0;
}

function readResult(point: SweepPoint): SimulationResult | undefined {
  const file = join(point.dir, 'result.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as SimulationResult) : undefined;
}

/** Mean and sample SD over seeds. */
function stat(xs: number[]): { mean: number; sd: number; n: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { n: xs.length, mean, sd: xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1)) : 0 };
}

function bytes(n: number): string {
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(2)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n.toFixed(0)} B`;
}

/**
 * Groups points by every grid field but the seed: final held-out, personalised and ensemble
 * accuracy (mean ± sample SD over seeds), and envelope bytes per participant per round (each
 * direction) and per run, as the coordinator counted them.
 */
function summarize(points: SweepPoint[]): { markdown: string; csv: string } {
  const fields = Object.keys(points[0]?.values ?? {}).filter((f) => f !== 'seed');
  const groups = new Map<string, SimulationResult[]>();
  const csv = [['point', ...Object.keys(points[0]?.values ?? {}), 'held_out_accuracy', 'personalized_accuracy', 'ensemble_accuracy', 'bytes_up', 'bytes_down', 'seconds'].join(',')];
  for (const point of points) {
    const result = readResult(point);
    const run = result?.runs[0];
    if (result === undefined || run === undefined) continue;
    csv.push([point.id, ...Object.values(point.values).map((v) => JSON.stringify(v)), run.final.meanAccuracy, run.final.meanPersonalized, run.final.ensembleAccuracy, run.totalBytes.up, run.totalBytes.down, run.seconds.toFixed(1)].join(','));
    const key = fields.map((f) => `${f}=${typeof point.values[f] === 'string' ? point.values[f] : JSON.stringify(point.values[f])}`).join(', ') || '(all)';
    groups.set(key, [...(groups.get(key) ?? []), result]);
  }
  const pct = (xs: number[]) => meanWithSpread(stat(xs), (x) => (100 * x).toFixed(1));
  const lines = [
    '| point | seeds | held-out % | personalised % | ensemble % | up / participant / round | down / participant / round | total per run | time / run |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const [key, results] of groups) {
    const runs = results.map((r) => r.runs[0]!);
    const perParticipantRound = (f: (r: (typeof runs)[number]) => number) => stat(runs.map((r) => f(r) / (r.participants * r.rows.length))).mean;
    lines.push(
      `| ${key} | ${runs.length} | ${pct(runs.map((r) => r.final.meanAccuracy))} | ${pct(runs.map((r) => r.final.meanPersonalized))} | ` +
        `${pct(runs.map((r) => r.final.ensembleAccuracy))} | ${bytes(perParticipantRound((r) => r.totalBytes.up))} | ${bytes(perParticipantRound((r) => r.totalBytes.down))} | ` +
        `${bytes(stat(runs.map((r) => r.totalBytes.up + r.totalBytes.down)).mean)} | ${stat(runs.map((r) => r.seconds)).mean.toFixed(0)} s |`,
    );
  }
  return { markdown: `${lines.join('\n')}\n`, csv: `${csv.join('\n')}\n` };
}
