/**
 * `npm run bench`: every benchmark in one run, results printed as they come and written to
 * bench/RESULTS.md with a JSON copy beside it.
 *
 *   node dist/bench/run.js [--quick] [--only training,codec,…] [--backend wasm] [--out DIR] [--render-only]
 *
 * --render-only rewrites RESULTS.md from RESULTS.json without measuring anything.
 * --quick and --only write RESULTS-partial.md/.json instead, so a partial run never replaces
 * the full results.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { selectBackend } from '../client/backend.js';
import { aggregationBenchmark } from './aggregation.js';
import { bytesToAccuracyBenchmark } from './bytes-to-accuracy.js';
import { capacityBenchmark } from './capacity.js';
import { codecBenchmark } from './codec.js';
import type { Benchmark, BenchContext, Section } from './harness.js';
import { captureStockKernels } from './kernels.js';
import { machineInfo } from './machine.js';
import { predictionBenchmark } from './prediction.js';
import { renderMarkdown, renderSummary, type RunReport } from './report.js';
import { roundTimeBenchmark } from './round-time.js';
import { secureAggregationBenchmark } from './secure-aggregation.js';
import { simulationBenchmark } from './simulation.js';
import { sparseAggregationBenchmark } from './sparse-aggregation.js';
import { studentsBenchmark } from './students.js';
import { trainingBenchmark } from './training.js';
import { lmBenchmark } from './lm.js';

export const BENCHMARKS: readonly Benchmark[] = [
  trainingBenchmark,
  predictionBenchmark,
  codecBenchmark,
  aggregationBenchmark,
  sparseAggregationBenchmark,
  capacityBenchmark,
  simulationBenchmark,
  bytesToAccuracyBenchmark,
  studentsBenchmark,
  roundTimeBenchmark,
  secureAggregationBenchmark,
  lmBenchmark,
];

const USAGE = `usage: node dist/bench/run.js [--quick] [--only ${BENCHMARKS.map((b) => b.id).join(',')}] [--backend NAME] [--out DIR] [--render-only]
`;

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      backend: { type: 'string' },
      out: { type: 'string' },
      'render-only': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const only = values.only?.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const unknown = only?.filter((id) => !BENCHMARKS.some((b) => b.id === id)) ?? [];
  if (unknown.length > 0) {
    process.stderr.write(`bench: unknown benchmark ${unknown.join(', ')}\n${USAGE}`);
    return 2;
  }
  const selected = BENCHMARKS.filter((b) => only === undefined || only.includes(b.id));
  const outDir = values.out ?? fileURLToPath(new URL('../../bench/', import.meta.url));
  const partial = values.quick || only !== undefined;
  const name = partial ? 'RESULTS-partial' : 'RESULTS';
  if (values['render-only']) {
    // Rewrites the Markdown from the JSON of the last run: no measurement.
    const report = JSON.parse(readFileSync(join(outDir, `${name}.json`), 'utf8')) as RunReport;
    writeFileSync(join(outDir, `${name}.md`), renderMarkdown(report, join(outDir, 'baseline.json')));
    process.stdout.write(`${join(outDir, `${name}.md`)} rendered from ${name}.json\n`);
    return 0;
  }

  const started = performance.now();
  const stamp = () => {
    const s = Math.round((performance.now() - started) / 1000);
    return `[${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}]`;
  };
  const log = (line: string) => process.stdout.write(`${stamp()} ${line}\n`);

  // The stock wasm kernels are kept before codistill replaces them, to measure fixes against them.
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    captureStockKernels();
  } catch {
    // No wasm backend: nothing to compare against.
  }
  const backend = await selectBackend(values.backend);
  const machine = await machineInfo();
  log(`codistill bench: ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, tfjs ${machine.tfjs} on ${backend}; load ${machine.loadAverage.join(' ')}`);
  const context: BenchContext = { quick: values.quick ?? false, backend: values.backend, log };

  const report: RunReport = { machine, options: { quick: context.quick, only, backend: values.backend }, seconds: 0, sections: [] };
  const write = () => {
    report.seconds = (performance.now() - started) / 1000;
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, `${name}.json`), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(outDir, `${name}.md`), renderMarkdown(report, join(outDir, 'baseline.json')));
  };
  for (const bench of selected) {
    log(`${bench.title}`);
    const t0 = performance.now();
    const loadBefore = Number(os.loadavg()[0]!.toFixed(2));
    let section: Section;
    try {
      const result = await bench.run(context);
      section = { id: bench.id, title: bench.title, ...result, seconds: (performance.now() - t0) / 1000 };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      log(`  FAILED: ${message}`);
      section = { id: bench.id, title: bench.title, method: [], tables: [], figures: [], notes: [], seconds: (performance.now() - t0) / 1000, error: message };
    }
    section.load = [loadBefore, Number(os.loadavg()[0]!.toFixed(2))];
    report.sections.push(section);
    for (const f of section.figures) {
      log(`  = ${f.label}: ${f.value.toPrecision(4)} ${f.unit}${f.ratio !== undefined ? `, ratio ${f.ratio.toPrecision(3)}` : ''}${f.met === undefined ? '' : f.met ? ' (target met)' : ' (target MISSED)'}`);
    }
    // Written after every benchmark: a long run that is interrupted keeps what it measured.
    write();
  }
  process.stdout.write(`${renderSummary(report)}\n`);
  log(`results written to ${join(outDir, `${name}.md`)} and ${name}.json`);
  return report.sections.some((s) => s.error !== undefined) ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // socket.io clients, worker threads or tfjs timers must not keep a finished run alive.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
