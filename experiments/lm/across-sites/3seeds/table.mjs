// The 3-seed table of experiments/lm/RESULTS.md ("Across sites", 3 seeds) from seed1/…/seed3/result.json:
// per seed the last round's means over the four sites, then mean ± SD over the seeds (SD with n − 1).
// Run: node experiments/lm/across-sites/3seeds/table.mjs > experiments/lm/across-sites/3seeds/table.md
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = import.meta.dirname;
const seeds = [1, 2, 3].filter((s) => existsSync(join(dir, `seed${s}`, 'result.json')));
const results = seeds.map((s) => JSON.parse(readFileSync(join(dir, `seed${s}`, 'result.json'), 'utf8')));
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs) => (xs.length < 2 ? Number.NaN : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));
const f = (x, d = 3) => x.toFixed(d);
const pm = (xs, d = 3) => `${f(mean(xs), d)} ± ${f(sd(xs), d)}`;

const rows = results.map((r, i) => {
  const dml = r.runs.find((x) => x.algorithm === 'dml').final;
  const local = r.runs.find((x) => x.algorithm === 'local').final;
  return { seed: seeds[i], dmlOwn: dml.meanOwn, dmlMixed: dml.meanMixed, localOwn: local.meanOwn, localMixed: local.meanMixed, mixedPct: r.goal.mixedImprovementPct, ownPct: r.goal.ownChangePct, met: r.goal.met };
});
console.log('| seed | local-only own | local-only mixed | DML own | DML mixed | mixed: DML lower by | own: DML higher by | goal |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) {
  console.log(`| ${r.seed} | ${f(r.localOwn)} | ${f(r.localMixed)} | ${f(r.dmlOwn)} | ${f(r.dmlMixed)} | ${f(r.mixedPct, 1)} % | ${r.ownPct >= 0 ? '+' : ''}${f(r.ownPct, 1)} % | ${r.met ? 'met' : 'not met'} |`);
}
const col = (k) => rows.map((r) => r[k]);
console.log(`| mean ± SD (${rows.length} seeds) | ${pm(col('localOwn'))} | ${pm(col('localMixed'))} | ${pm(col('dmlOwn'))} | ${pm(col('dmlMixed'))} | ${pm(col('mixedPct'), 1)} % | ${pm(col('ownPct'), 1)} % | met on ${rows.filter((r) => r.met).length} of ${rows.length} |`);
