// The top-k table of experiments/lm/RESULTS.md ("Top-k both ways"): per run, the last round's mean
// bits per byte over the four sites (own held-out, mixed held-out), the bytes every participant
// received and sent over the 12 rounds (envelopes, as the participants count them: rounds.jsonl
// bytesUp / bytesDown), and each against the dense run of the same temperature; then the mixed
// figure round by round.
// Run from the repository: node experiments/lm/topk/summary.mjs > experiments/lm/topk/summary.md
import { existsSync, readFileSync } from 'node:fs';
const RUNS = [
  // The dense T = 2 run is the committed one (5ff5c63): rerun at 2b90a06 its 48 rows were bit-identical.
  ['dense, T = 2', 'experiments/lm/across-sites/seed1-dense-r12-yield', null],
  ['top-k 8 up, dense down, uniform tail, T = 2', 'experiments/lm/across-sites/seed1-topk8-r12', 'dense, T = 2'],
  ['top-k 8 both ways, uniform tail, T = 2', 'experiments/lm/topk/seed1-topk8-both-uniform-r12', 'dense, T = 2'],
  ['top-k 8 both ways, student tail, T = 2', 'experiments/lm/topk/seed1-topk8-both-student-r12', 'dense, T = 2'],
  ['dense, T = 1', 'experiments/lm/topk/seed1-dense-T1-r12', null],
  ['top-k 8 both ways, uniform tail, T = 1', 'experiments/lm/topk/seed1-topk8-both-uniform-T1-r12', 'dense, T = 1'],
  ['top-k 8 both ways, student tail, T = 1', 'experiments/lm/topk/seed1-topk8-both-student-T1-r12', 'dense, T = 1'],
  // Seed 2 at T = 2: the dense run is the 3-seed one (from 7e827ec; 46 of 48 site-rounds, two links lost under load).
  ['seed 2: dense, T = 2', 'experiments/lm/across-sites/3seeds/seed2', null],
  ['seed 2: top-k 8 both ways, student tail, T = 2', 'experiments/lm/topk/seed2-topk8-both-student-r12', 'seed 2: dense, T = 2'],
  ['seed 2: dense, T = 1', 'experiments/lm/topk/seed2-dense-T1-r12', null],
  ['seed 2: top-k 8 both ways, student tail, T = 1', 'experiments/lm/topk/seed2-topk8-both-student-T1-r12', 'seed 2: dense, T = 1'],
];
const stats = new Map();
console.log('| run | own bpb | mixed bpb | mixed vs dense | site-rounds | bytes up | bytes down | fewer bytes up / down than dense |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const [name, dir, against] of RUNS) {
  if (!existsSync(`${dir}/rounds.jsonl`)) { console.log(`| ${name} | (not run) | | | | | | |`); continue; }
  const rows = readFileSync(`${dir}/rounds.jsonl`, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.algorithm === 'dml');
  const last = Math.max(...rows.map((r) => r.round));
  const end = rows.filter((r) => r.round === last);
  const mean = (f) => end.reduce((a, r) => a + f(r), 0) / end.length;
  const s = { own: mean((r) => r.ownBitsPerByte), mixed: mean((r) => r.mixedBitsPerByte), up: rows.reduce((a, r) => a + r.bytesUp, 0), down: rows.reduce((a, r) => a + r.bytesDown, 0), taught: rows.filter((r) => r.receivedTarget).length, all: new Set(rows.map((r) => r.participant)).size * last };
  s.byRound = [1, 2, 3, 6, 9, 12].map((k) => { const at = rows.filter((r) => r.round === k); return at.reduce((a, r) => a + r.mixedBitsPerByte, 0) / at.length; });
  stats.set(name, s);
  const d = against === null ? undefined : stats.get(against);
  const rel = d === undefined ? '—' : `${((s.mixed / d.mixed - 1) * 100).toFixed(2)} %`;
  const fewer = d === undefined ? '—' : `${(d.up / s.up).toFixed(1)}× / ${(d.down / s.down).toFixed(1)}×`;
  console.log(`| ${name} | ${s.own.toFixed(3)} | ${s.mixed.toFixed(3)} | ${rel} | ${s.taught} of ${s.all} | ${s.up.toLocaleString('en')} | ${s.down.toLocaleString('en')} | ${fewer} |`);
}
console.log('\nMixed held-out bits per byte after rounds 1, 2, 3, 6, 9, 12 (mean over the sites):\n');
console.log('| run | 1 | 2 | 3 | 6 | 9 | 12 |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const [name, s] of stats) console.log(`| ${name} | ${s.byRound.map((v) => v.toFixed(3)).join(' | ')} |`);
