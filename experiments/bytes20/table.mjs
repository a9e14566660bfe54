// The table and the plots of experiments/bytes20/RESULTS.md, from the runs' result.json files:
//   npm run build && node experiments/bytes20/table.mjs
// writes experiments/bytes20/table.md (every run, every seed, and the mean per model) and
// experiments/bytes20/accuracy-vs-bytes-<model>.svg (report.ts's own accuracy-vs-bytes chart, as
// experiments/bytes/table.mjs draws it), FedAvg's line beside the distiller's and the participants'.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { accuracyCurves, accuracyVsBytesSpec, groupByAlgorithm, readResults, renderSvg } from '../../dist/simulations/report.js';

const here = dirname(fileURLToPath(import.meta.url));
const MiB = 2 ** 20;
const SWEEPS = [
  ['fedavg', 'FedAvg (global model)'],
  ['dml', 'DML + distiller, top-1 uint8 both ways'],
  ['sampling', 'the same, half the participants a round'],
  ['rows', 'the same, 500 of the 1,000 reference rows a round'],
  ['fedavg-sampled', 'FedAvg, half the participants a round (global model)'],
];
const FEDAVG_SWEEPS = new Set(['fedavg', 'fedavg-sampled']);

/**
 * With sampling, FedAvg's global model after a round is what that round's sampled participants
 * hold (their target): its held-out and personalised accuracy are theirs, not the mean over
 * participants that sat the round out with an older global model. They must agree to the digit.
 */
function globalModelRow(row) {
  if (row.sampled === undefined) return row;
  const held = row.sampled.map((i) => row.accuracy[i]);
  if (held.some((a) => a !== held[0])) throw new Error(`round ${row.round}: the sampled participants' accuracies differ (${held.join(', ')}): they should hold one global model`);
  return { ...row, meanAccuracy: held[0], meanPersonalized: mean(row.sampled.map((i) => row.personalized[i])) };
}

/** Every finished run: { sweep, model, seed, result, manifest }. */
const runs = [];
for (const [sweep] of SWEEPS) {
  const dir = join(here, sweep);
  if (!existsSync(dir)) continue;
  for (const point of readdirSync(dir).sort()) {
    const path = join(dir, point, 'result.json');
    if (!existsSync(path)) continue;
    const result = JSON.parse(readFileSync(path, 'utf8'));
    const manifest = JSON.parse(readFileSync(join(dir, point, 'manifest.json'), 'utf8'));
    runs.push({ sweep, path, model: result.options.model, seed: result.options.seed, result, manifest });
  }
}

const pct = (x) => (x === undefined ? '–' : (100 * x).toFixed(1));
const fmtMiB = (b) => `${(b / MiB).toFixed(3)} MiB`;
const mean = (xs) => xs.reduce((a, x) => a + x, 0) / xs.length;
const sd = (xs) => (xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)) : 0);
const ms = (xs) => (xs.length === 0 ? '–' : xs.length === 1 ? `${(100 * xs[0]).toFixed(1)} (n = 1)` : `${(100 * mean(xs)).toFixed(1)} ± ${(100 * sd(xs)).toFixed(1)}`);
const models = [...new Set(runs.map((r) => r.model))].sort();

const md = [];
md.push('| model | run | seed | held-out % (FedAvg: global model; DML: participants\' mean) | personalised % | distiller held-out % | FedAvg held-out % (same seed) | bytes up | bytes down | total | FedAvg total ÷ this | s / round | distiller ≥ FedAvg | participants ≥ FedAvg |');
md.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const model of models) {
  const fedavg = Object.fromEntries(runs.filter((r) => r.sweep === 'fedavg' && r.model === model).map((r) => [r.seed, r.result.runs[0]]));
  const fedavgBytes = Object.values(fedavg).map((run) => run.totalBytes.up + run.totalBytes.down);
  for (const [sweep, label] of SWEEPS) {
    const rows = runs.filter((r) => r.sweep === sweep && r.model === model).sort((a, b) => a.seed - b.seed).map(({ seed, result }) => {
      const run = result.runs[0];
      const base = fedavg[seed];
      const last = sweep === 'fedavg-sampled' ? globalModelRow(run.rows.at(-1)) : run.final;
      return {
        seed, heldOut: last.meanAccuracy, personalised: last.meanPersonalized, distiller: run.final.distillerAccuracy,
        up: run.totalBytes.up, down: run.totalBytes.down, bytes: run.totalBytes.up + run.totalBytes.down,
        secondsPerRound: mean(run.rows.map((row) => row.seconds)), fedavg: base?.final.meanAccuracy,
        fedavgBytes: base === undefined ? undefined : base.totalBytes.up + base.totalBytes.down,
      };
    });
    const verdict = (x, f) => (x === undefined || f === undefined ? '–' : x >= f ? 'yes' : 'no');
    const ratio = (f, b) => (f === undefined ? '–' : `${(f / b).toFixed(f / b < 10 && f !== b ? 1 : 0)}×`);
    for (const r of rows) {
      md.push(`| ${model} | ${label} | ${r.seed} | ${pct(r.heldOut)} | ${pct(r.personalised)} | ${pct(r.distiller)} | ${pct(r.fedavg)} | ${fmtMiB(r.up)} | ${fmtMiB(r.down)} | ${fmtMiB(r.bytes)} | ${ratio(r.fedavgBytes, r.bytes)} | ${r.secondsPerRound.toFixed(1)} | ${FEDAVG_SWEEPS.has(sweep) ? '–' : verdict(r.distiller, r.fedavg)} | ${sweep === 'fedavg' ? '–' : verdict(r.heldOut, r.fedavg)} |`);
    }
    if (rows.length > 1) {
      const pick = (f) => rows.map(f).filter((x) => x !== undefined);
      const count = (f) => `${rows.filter((r) => r.fedavg !== undefined && f(r) >= r.fedavg).length} of ${rows.filter((r) => r.fedavg !== undefined).length}`;
      md.push(`| **${model}** | **${label}, mean** | n = ${rows.length} | ${ms(pick((r) => r.heldOut))} | ${ms(pick((r) => r.personalised))} | ${ms(pick((r) => r.distiller))} | ${ms(pick((r) => r.fedavg))} | ${fmtMiB(mean(pick((r) => r.up)))} | ${fmtMiB(mean(pick((r) => r.down)))} | ${fmtMiB(mean(pick((r) => r.bytes)))} | ${fedavgBytes.length === 0 ? '–' : ratio(mean(fedavgBytes), mean(pick((r) => r.bytes)))} | ${mean(pick((r) => r.secondsPerRound)).toFixed(1)} | ${FEDAVG_SWEEPS.has(sweep) ? '–' : count((r) => r.distiller)} | ${sweep === 'fedavg' ? '–' : count((r) => r.heldOut)} |`);
    }
  }
}

// The same DML runs against FedAvg with half the participants a round (its client fraction C = 0.5),
// seed by seed: the distiller's held-out accuracy against that global model's, and the bytes ratio.
const sampledBar = runs.filter((r) => r.sweep === 'fedavg-sampled');
if (sampledBar.length > 0) {
  md.push('', '### Against FedAvg with half the participants a round', '');
  md.push('| model | run | FedAvg ½ held-out % (seeds 1, 2, 3) | distiller held-out % (seeds 1, 2, 3) | distiller − FedAvg ½ (points) | FedAvg ½ total | this total | FedAvg ½ ÷ this | distiller ≥ FedAvg ½ |');
  md.push('|---|---|---|---|---|---|---|---|---|');
  for (const model of models) {
    const bar = Object.fromEntries(sampledBar.filter((r) => r.model === model).map((r) => {
      const run = r.result.runs[0];
      return [r.seed, { heldOut: globalModelRow(run.rows.at(-1)).meanAccuracy, bytes: run.totalBytes.up + run.totalBytes.down }];
    }));
    for (const [sweep, label] of SWEEPS.filter(([s]) => !FEDAVG_SWEEPS.has(s))) {
      const mine = runs.filter((r) => r.sweep === sweep && r.model === model && bar[r.seed] !== undefined).sort((a, b) => a.seed - b.seed);
      if (mine.length === 0) continue;
      const distiller = mine.map((r) => r.result.runs[0].final.distillerAccuracy);
      const fed = mine.map((r) => bar[r.seed].heldOut);
      const bytes = mine.map((r) => r.result.runs[0].totalBytes.up + r.result.runs[0].totalBytes.down);
      const fedBytes = mine.map((r) => bar[r.seed].bytes);
      const list = (xs) => `${ms(xs)} (${xs.map(pct).join(', ')})`;
      md.push(`| ${model} | ${label} | ${list(fed)} | ${list(distiller)} | ${distiller.map((d, i) => `${d >= fed[i] ? '+' : '−'}${Math.abs(100 * (d - fed[i])).toFixed(1)}`).join(', ')} | ${fmtMiB(mean(fedBytes))} | ${fmtMiB(mean(bytes))} | ${(mean(fedBytes) / mean(bytes)).toFixed(0)}× | ${distiller.filter((d, i) => d >= fed[i]).length} of ${mine.length} |`);
    }
  }
}
const commits = [...new Set(runs.map((r) => `${r.manifest.code.commit.slice(0, 7)}${r.manifest.code.dirty ? ' (dirty)' : ' (clean)'}`))];
md.push('', `${runs.length} runs, from commit(s) ${commits.join(', ')}. s / round: the mean of the rounds' wall time on a loaded 2-core machine.`);
writeFileSync(join(here, 'table.md'), `${md.join('\n')}\n`);

// One plot per model: held-out accuracy against cumulative bytes (log), per round, mean over seeds.
// Every DML curve is top-1 uint8 both ways; legends are cut past ~15 characters, hence the short
// names: ½ = half the participants a round, R500 = 500 reference rows a round. The distiller is
// drawn with the same bytes and its own accuracy in place of the participants' mean.
const files = [];
for (const model of models) {
  const reportRuns = [];
  for (const r of runs.filter((x) => x.model === model)) {
    const name = { fedavg: 'fedavg', dml: 'dml', sampling: 'dml ½', rows: 'dml R500', 'fedavg-sampled': 'fedavg ½' }[r.sweep];
    for (const run of readResults([r.path])) {
      // FedAvg ½'s curve is its global model's (the sampled participants'), as its row in the table.
      reportRuns.push({ ...run, algorithm: name, ...(r.sweep === 'fedavg-sampled' ? { rows: run.rows.map(globalModelRow) } : {}) });
      if (!FEDAVG_SWEEPS.has(r.sweep)) reportRuns.push({ ...run, algorithm: name.replace('dml', 'distiller'), rows: run.rows.map((row) => ({ ...row, meanAccuracy: row.distillerAccuracy })) });
    }
  }
  const curves = accuracyCurves(groupByAlgorithm(reportRuns));
  const names = [...new Set(curves.map((p) => p.algorithm))];
  const file = `accuracy-vs-bytes-${model.replace(/[^\w.-]/g, '_')}.svg`;
  writeFileSync(join(here, file), await renderSvg(accuracyVsBytesSpec(curves, names)));
  files.push(file);
}
console.log(`${runs.length} runs → experiments/bytes20/table.md, ${files.map((f) => `experiments/bytes20/${f}`).join(', ')}`);
