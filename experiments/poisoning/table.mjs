// The RESULTS.md tables of the poisoning experiment, from the run folders the sweeps wrote:
//   node experiments/poisoning/table.mjs
// Reads <sweep>/<point>/result.json for the clean and attacked sweeps of every seed found and
// prints Markdown. Every accuracy is the final-round held-out accuracy, averaged over the
// *honest* participants only (RunResult.hostile lists who was left out).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const DIR = new URL('.', import.meta.url).pathname;
const AGGREGATORS = ['mean', 'median', 'trimmed-mean'];
const ATTACKS = ['flipped', 'random', 'scaled'];

/** Every finished point of a sweep folder, as { values, run }. */
function points(sweep) {
  const dir = join(DIR, sweep);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => existsSync(join(dir, name, 'result.json')))
    .map((name) => {
      const result = JSON.parse(readFileSync(join(dir, name, 'result.json'), 'utf8'));
      return { options: result.options, run: result.runs[0] };
    });
}

/** The tables of one setting, from its sweep folders (clean and attacked, any seeds). */
function tables(title, sweeps) {
  const runs = sweeps.flatMap(points);
  if (runs.length === 0) return [];
  const find = (seed, aggregator, kind, f) =>
    runs.find((r) => r.options.seed === seed && r.options.aggregator === aggregator && (f === 0 ? r.options.attack === undefined : r.options.attack?.kind === kind && r.options.attack?.participants === f));
  const seedList = [...new Set(runs.map((r) => r.options.seed))].sort((a, b) => a - b);
  const seedCount = seedList.length;
  const lines = [
    `### ${title}`,
    '',
    `Final held-out accuracy (%) of the honest participants, seed${seedList.length > 1 ? 's' : ''} ${seedList.join(', ')}` +
      `${seedList.length > 1 ? ' (mean over seeds)' : ''}; in brackets the change against the clean run of the same aggregator, ` +
      'scored on the same honest participants.',
    '',
    '| attack | hostile | mean | median | trimmed mean (β = 0.34) |',
    '|---|---|---|---|---|',
  ];
  const cell = (cells) => {
    if (cells.length === 0) return '—';
    const acc = stat(cells.map((c) => c.acc));
    const delta = stat(cells.map((c) => c.acc - c.clean));
    const sign = Math.abs(delta.m) < 0.0005 ? "±" : delta.m > 0 ? "+" : "−";
    return `${pct(acc.m)}${acc.n > 1 ? ` ± ${pct(acc.sd)}` : ''} (${sign}${pct(Math.abs(delta.m))})${acc.n < seedCount ? ` [seed ${cells.map((c) => c.seed).join(', ')}]` : ''}`;
  };
  lines.push(`| none (clean) | 0 | ${AGGREGATORS.map((a) => {
    const xs = seedList.map((s) => find(s, a, undefined, 0)).filter(Boolean).map((r) => r.run.final.meanAccuracy);
    if (xs.length === 0) return '—';
    const { m, sd, n } = stat(xs);
    return `${pct(m)}${n > 1 ? ` ± ${pct(sd)}` : ''}`;
  }).join(' | ')} |`);
  for (const kind of ATTACKS) {
    for (const f of [2, 3]) {
      const row = AGGREGATORS.map((aggregator) => {
        const cells = [];
        // Only seeds that have this attack: a seed run for fewer attacks adds to those alone.
        for (const seed of seedList) {
          const attacked = find(seed, aggregator, kind, f);
          const clean = find(seed, aggregator, kind, 0);
          if (attacked === undefined || clean === undefined) continue;
          const honest = attacked.run.rows.at(-1).accuracy.map((_, i) => i).filter((i) => !attacked.run.hostile.includes(i));
          cells.push({ seed, acc: attacked.run.final.meanAccuracy, clean: over(clean.run, honest) });
        }
        return cell(cells);
      });
      if (row.every((c) => c === '—')) continue;
      lines.push(`| ${kind}${kind === 'scaled' ? ' (logits ×100: over-sharpened softmax)' : ''} | ${f} | ${row.join(' | ')} |`);
    }
  }
  lines.push('', 'Clean runs scored on the honest participants of each attack (the reference of the brackets above):', '');
  lines.push('| seed | participants scored | mean | median | trimmed mean |', '|---|---|---|---|---|');
  for (const seed of seedList) {
    for (const f of [0, 2, 3]) {
      const any = f === 0 ? undefined : runs.find((r) => r.options.seed === seed && r.options.attack?.participants === f);
      if (f > 0 && any === undefined) continue;
      const cleanRuns = AGGREGATORS.map((a) => find(seed, a, undefined, 0));
      if (cleanRuns.some((r) => r === undefined)) continue;
      const n = cleanRuns[0].run.participants;
      const honest = Array.from({ length: n }, (_, i) => i).filter((i) => !(any?.run.hostile ?? []).includes(i));
      lines.push(`| ${seed} | ${f === 0 ? `all ${n}` : `${honest.length} (without ${any.run.hostile.map((i) => `p${i}`).join(', ')})`} | ${cleanRuns.map((r) => pct(over(r.run, honest))).join(' | ')} |`);
    }
  }
  lines.push('');
  return lines;
}

/** Final accuracy of the given participants in a run. */
const over = (run, indices) => indices.reduce((a, i) => a + run.rows.at(-1).accuracy[i], 0) / indices.length;
const pct = (x) => (100 * x).toFixed(1);
const stat = (xs) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1)) : 0;
  return { m, sd, n: xs.length };
};

const lines = [
  ...tables('Dirichlet(α = 0.1) label skew, seed 1 (base.yaml: clean/, attacked/)', ['clean', 'attacked']),
  ...tables('Dirichlet(α = 0.1) label skew, seed 2: clean and 3 flipped only (clean-seed2/, attacked-seed2/)', ['clean-seed2', 'attacked-seed2']),
  ...tables('IID partition, seed 1: 3 hostile only (base-iid.yaml: clean-iid/, attacked-iid/)', ['clean-iid', 'attacked-iid']),
];
process.stdout.write(`${lines.join('\n')}`);
