// Why class knowledge does not reach the classes a participant never holds: for each finished run
// of fedproto or fedhkd, loads every participant's final student (students/pN, saved by the run),
// rebuilds the run's data split and partition, and measures on the held-out test set
//   - head: the student's own classifier, on test digits of classes it holds many, few or no private digits of;
//   - nearest prototype: FedProto's inference — the class of the nearest global prototype, the
//     count-weighted mean over holders of each holder's mean representation of its private digits
//     (what the last round's target held, recomputed from the final students);
//   - own centroids: the same with the participant's own per-class centroids of the *test* digits
//     (an oracle: how separable the classes it holds no digit of are in its representation space at all).
// Run after `npm run build`:  node experiments/no-public-data/alignment.mjs RUN_DIR [RUN_DIR …] > alignment.md
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { selectBackend } from '../../dist/client/backend.js';
import { loadStudent } from '../../dist/client/student-io/store.js';
import { Student } from '../../dist/client/student.js';
import { prepareData } from '../../dist/simulations/simulate.js';

await selectBackend('wasm');
const C = 10;
const pct = (n, d) => (d === 0 ? '—' : `${((100 * n) / d).toFixed(1)}`);
// Test digits fall in three groups per participant, by how many private digits of their class it holds:
// many (≥ 20), few (1–19) or none. Each cell is an accuracy over the digits of that group, all participants pooled.
const GROUPS = ['many', 'few', 'none'];
const groupOf = (n) => (n >= 20 ? 'many' : n > 0 ? 'few' : 'none');
console.log('| run | share of test digits many / few / none % | head: many / few / none % | nearest global prototype: many / few / none % | own test centroids: none % |');
console.log('|---|---|---|---|---|');
for (const dir of process.argv.slice(2)) {
  const options = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const data = prepareData({ ...options, data: options.data }, { line() {} });
  const students = [];
  for (let i = 0; i < options.participants; i++) {
    const { model } = await loadStudent(join(dir, 'students', `p${i}`));
    students.push(new Student(model, { sampleShape: [28, 28, 1], numClasses: C, learningRate: 1e-3, seed: 0 }));
  }
  const D = students[0].representationWidth;
  // Each participant's per-class mean representation of its private digits, and the global prototypes.
  const global = new Float64Array(C * D);
  const counts = new Array(C).fill(0);
  for (let i = 0; i < students.length; i++) {
    const { x, y } = data.trainSets[i];
    const { representations } = await students[i].representations(x);
    for (let n = 0; n < y.length; n++) for (let j = 0; j < D; j++) global[y[n] * D + j] += representations[n * D + j];
    for (let n = 0; n < y.length; n++) counts[y[n]]++;
  }
  for (let k = 0; k < C; k++) for (let j = 0; j < D; j++) global[k * D + j] /= Math.max(counts[k], 1);
  const tally = { ownUnseen: [0, 0] };
  for (const g of GROUPS) [tally[`head-${g}`], tally[`proto-${g}`]] = [[0, 0], [0, 0]];
  const nearest = (centres, valid, r, n) => {
    let best = -1;
    let bestDistance = Infinity;
    for (let k = 0; k < C; k++) {
      if (!valid[k]) continue;
      let distance = 0;
      for (let j = 0; j < D; j++) distance += (r[n * D + j] - centres[k * D + j]) ** 2;
      if (distance < bestDistance) [best, bestDistance] = [k, distance];
    }
    return best;
  };
  for (let i = 0; i < students.length; i++) {
    const group = data.labelMatrix[i].map(groupOf);
    const { x, y } = data.test;
    const { representations, logits } = await students[i].representations(x);
    const own = new Float64Array(C * D);
    const ownCounts = new Array(C).fill(0);
    for (let n = 0; n < y.length; n++) {
      ownCounts[y[n]]++;
      for (let j = 0; j < D; j++) own[y[n] * D + j] += representations[n * D + j];
    }
    for (let k = 0; k < C; k++) for (let j = 0; j < D; j++) own[k * D + j] /= Math.max(ownCounts[k], 1);
    const everywhere = new Array(C).fill(true);
    for (let n = 0; n < y.length; n++) {
      let argmax = 0;
      for (let k = 1; k < C; k++) if (logits[n * C + k] > logits[n * C + argmax]) argmax = k;
      const g = group[y[n]];
      tally[`head-${g}`][0] += argmax === y[n] ? 1 : 0;
      tally[`head-${g}`][1]++;
      tally[`proto-${g}`][0] += nearest(global, counts.map((c) => c > 0), representations, n) === y[n] ? 1 : 0;
      tally[`proto-${g}`][1]++;
      if (g === 'none') {
        tally.ownUnseen[0] += nearest(own, everywhere, representations, n) === y[n] ? 1 : 0;
        tally.ownUnseen[1]++;
      }
    }
  }
  const cell = ([a, b]) => pct(a, b);
  const all = GROUPS.reduce((t, g) => t + tally[`head-${g}`][1], 0);
  const row = (kind) => GROUPS.map((g) => cell(tally[`${kind}-${g}`])).join(' / ');
  console.log(`| ${dir.split('/').filter(Boolean).slice(-1)[0]} | ${GROUPS.map((g) => pct(tally[`head-${g}`][1], all)).join(' / ')} | ${row('head')} | ${row('proto')} | ${cell(tally.ownUnseen)} |`);
  for (const s of students) s.dispose();
}
