// The tables and the plot of experiments/bytes/RESULTS.md, from the runs' result.json files and
// FedAvg's three runs in experiments/algorithms/comparison (same setting, not rerun):
//   npm run build && node experiments/bytes/table.mjs
// writes experiments/bytes/table.md (every point, every seed) and experiments/bytes/accuracy-vs-bytes.svg
// (drawn with simulations/report.ts's own accuracy-vs-bytes chart).
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { accuracyCurves, accuracyVsBytesSpec, groupByAlgorithm, readResults, renderSvg } from '../../dist/simulations/report.js';

const here = dirname(fileURLToPath(import.meta.url));
const fedavgDir = join(here, '../algorithms/comparison');
const MiB = 2 ** 20;

/** Every point folder with a result.json: [sweep folder, point id, path]. */
const points = [];
// Dense float32 DML with its distiller in the same setting: experiments/distiller's runs (not rerun).
const sources = [['dense', join(here, '../distiller/with-distiller')], ...['combined', 'dtype', 'topk', 'target-topk', 'rows', 'rounds', 'wide'].map((s) => [s, join(here, s)])];
for (const [sweep, dir] of sources) {
  if (!existsSync(dir)) continue;
  for (const point of readdirSync(dir).sort()) {
    if (sweep === 'dense' && !point.startsWith('algorithm=dml,')) continue;
    const path = join(dir, point, 'result.json');
    if (existsSync(path)) points.push({ sweep, point, path });
  }
}
const fedavg = [1, 2, 3].map((seed) => JSON.parse(readFileSync(join(fedavgDir, `algorithm=fedavg,seed=${seed}`, 'result.json'), 'utf8')));
const fedavgBySeed = Object.fromEntries(fedavg.map((r) => [r.options.seed, r.runs[0]]));
const fedavgBytes = fedavg.reduce((a, r) => a + r.runs[0].totalBytes.up + r.runs[0].totalBytes.down, 0) / 3;

/** A point's lever, in words, from its config. */
function lever(o) {
  const parts = [];
  if (o.uploadTopK !== undefined) parts.push(`top-${o.uploadTopK} up`);
  if (o.targetTopK !== undefined) parts.push(`top-${o.targetTopK} down`);
  if (o.uploadDtype === 'uint8') parts.push('uint8 up');
  if (o.targetDtype === 'uint8') parts.push('uint8 down');
  if (o.referencePerRound < o.referenceSize) parts.push(`${o.referencePerRound} rows/round`);
  if (o.rounds !== 10) parts.push(`${o.rounds} rounds × ${o.epochs} epochs`);
  return parts.join(' + ') || 'dense float32';
}

const pct = (x) => (x === undefined ? '–' : (100 * x).toFixed(1));
const rows = [];
const groups = new Map();
for (const { path } of points) {
  const result = JSON.parse(readFileSync(path, 'utf8'));
  const o = result.options;
  const run = result.runs[0];
  const f = run.final;
  const base = fedavgBySeed[o.seed];
  const bytes = run.totalBytes.up + run.totalBytes.down;
  const name = lever(o);
  const row = {
    name, seed: o.seed, heldOut: f.meanAccuracy, personalised: f.meanPersonalized, distiller: f.distillerAccuracy,
    up: run.totalBytes.up, down: run.totalBytes.down, bytes, fedavg: base.final.meanAccuracy,
    fedavgBytes: base.totalBytes.up + base.totalBytes.down, commit: JSON.parse(readFileSync(join(dirname(path), 'manifest.json'), 'utf8')).code,
  };
  rows.push(row);
  if (!groups.has(name)) groups.set(name, []);
  groups.get(name).push(row);
}

const md = [];
md.push('| lever(s) | seed | DML held-out % | DML personalised % | distiller held-out % | FedAvg held-out % (same seed) | bytes up | bytes down | total | FedAvg total ÷ this | DML ≥ FedAvg | distiller ≥ FedAvg |');
md.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
const fmtMiB = (b) => `${(b / MiB).toFixed(3)} MiB`;
for (const [name, rs] of groups) {
  for (const r of rs.sort((a, b) => a.seed - b.seed)) {
    md.push(`| ${name} | ${r.seed} | ${pct(r.heldOut)} | ${pct(r.personalised)} | ${pct(r.distiller)} | ${pct(r.fedavg)} | ${fmtMiB(r.up)} | ${fmtMiB(r.down)} | ${fmtMiB(r.bytes)} | ${(r.fedavgBytes / r.bytes).toFixed(0)}× | ${r.heldOut >= r.fedavg ? 'yes' : 'no'} | ${r.distiller >= r.fedavg ? 'yes' : 'no'} |`);
  }
  if (rs.length > 1) {
    const mean = (pick) => rs.reduce((a, r) => a + pick(r), 0) / rs.length;
    const sd = (pick) => Math.sqrt(rs.reduce((a, r) => a + (pick(r) - mean(pick)) ** 2, 0) / (rs.length - 1));
    const ms = (pick) => `${(100 * mean(pick)).toFixed(1)} ± ${(100 * sd(pick)).toFixed(1)}`;
    md.push(`| **${name}, mean** | n = ${rs.length} | ${ms((r) => r.heldOut)} | ${ms((r) => r.personalised)} | ${ms((r) => r.distiller)} | ${ms((r) => r.fedavg)} | ${fmtMiB(mean((r) => r.up))} | ${fmtMiB(mean((r) => r.down))} | ${fmtMiB(mean((r) => r.bytes))} | ${(fedavgBytes / mean((r) => r.bytes)).toFixed(0)}× | ${rs.filter((r) => r.heldOut >= r.fedavg).length} of ${rs.length} | ${rs.filter((r) => r.distiller >= r.fedavg).length} of ${rs.length} |`);
  }
}
const commits = [...new Set(rows.map((r) => `${r.commit.commit.slice(0, 7)}${r.commit.dirty ? ' (dirty)' : ' (clean)'}`))];
md.push('', `FedAvg: ${fmtMiB(fedavgBytes)} per run (mean of seeds 1–3, experiments/algorithms/comparison). "dense float32": experiments/distiller/with-distiller. Runs from commit(s) ${commits.join(', ')}.`);
writeFileSync(join(here, 'table.md'), `${md.join('\n')}\n`);

/** A legend-sized name: k↑/k↓ for top-k up/down, u8 for uint8 both ways. */
function short(o) {
  const rows = o.referencePerRound < o.referenceSize ? ` ${o.referencePerRound} rows` : '';
  return `k=${o.uploadTopK}↑${o.targetTopK}↓${o.uploadDtype === 'uint8' && o.targetDtype === 'uint8' ? ' u8' : ''}${rows}`;
}

// The plot: held-out accuracy against cumulative bytes for the combined points (participants'
// mean, and their distiller), FedAvg's line beside them — report.ts's chart, relabelled runs.
const reportRuns = [];
for (const { sweep, path } of points) {
  if (sweep !== 'combined' && sweep !== 'dense') continue;
  const result = JSON.parse(readFileSync(path, 'utf8'));
  for (const run of readResults([path])) reportRuns.push({ ...run, algorithm: `dml ${sweep === 'dense' ? 'dense' : short(result.options)}` });
}
for (const seed of [1, 2, 3]) for (const run of readResults([join(fedavgDir, `algorithm=fedavg,seed=${seed}`, 'result.json')])) reportRuns.push(run);
const curves = accuracyCurves(groupByAlgorithm(reportRuns));
// The distillers: the same bytes per round, the distiller's accuracy in place of the participants' mean.
const distillerRuns = reportRuns
  .filter((run) => run.algorithm.startsWith('dml') && run.rows.every((row) => typeof row.distillerAccuracy === 'number'))
  .map((run) => ({ ...run, algorithm: run.algorithm.replace('dml', 'distiller'), rows: run.rows.map((row) => ({ ...row, meanAccuracy: row.distillerAccuracy })) }));
const distillerCurves = accuracyCurves(groupByAlgorithm(distillerRuns));
const all = [...curves, ...distillerCurves];
const names = [...new Set(all.map((p) => p.algorithm))];
writeFileSync(join(here, 'accuracy-vs-bytes.svg'), await renderSvg(accuracyVsBytesSpec(all, names)));
console.log(`${rows.length} runs in ${groups.size} points → experiments/bytes/table.md, experiments/bytes/accuracy-vs-bytes.svg`);
