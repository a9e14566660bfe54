// Step 1 of the top-k study (issue 17): how much of a byte distribution the top k carry at T = 1
// and T = 2, and how far a top-k row's completion is from the dense row it stands for, with the
// remaining mass spread evenly (protocol/sparse.ts expandTopK) or filled in proportion to another
// model's own distribution (the "student tail"). Two short runs (no weights are committed in
// experiments/lm/): the peer, transformer:d=32,l=2,h=4,ctx=32 as in lm-dml.yaml, 400 steps on all
// four languages; the learner, the same model 400 steps on English only — a learner that does not
// know three of the peer's languages, the hard case for the student tail. Windows: 256 of the
// mixed held-out fortunes' 32-byte windows, evenly spaced over the four languages (50 kB per
// language, seed 1: held out for both).
// Run from the repository after `npx tsc -p .`: node experiments/lm/topk/tail-mass.mjs
import * as tf from '@tensorflow/tfjs';
import { writeFileSync } from 'node:fs';
import { selectBackend } from '../../../dist/client/backend.js';
import { createLanguageModel } from '../../../dist/client/lm/model.js';
import { trainLanguageModel } from '../../../dist/client/lm/train.js';
import { loadFortuneDomains, splitDomains, toSequences } from '../../../dist/client/data/text.js';
await selectBackend('wasm');
const splits = splitDomains(loadFortuneDomains(['en', 'de', 'it', 'es']), { heldOutFraction: 0.1, seed: 1, maxBytesPerDomain: 50000 });
const C = 32, V = 257, spec = 'transformer:d=32,l=2,h=4,ctx=32';
const train = (docs, seed) => {
  const m = createLanguageModel(spec, seed);
  trainLanguageModel(m, toSequences(docs, C), { steps: 400, batchSize: 8, learningRate: 3e-3, seed, loss: [{ name: 'token-ce', weight: 1 }], progressEvery: 100,
    onProgress: (step, loss) => console.log(`  step ${step}: token-CE ${loss.toFixed(3)}`) });
  return m;
};
console.log('peer: all four languages'); const peer = train(splits.domains.flatMap((s) => s.train), 1);
console.log('learner: English only'); const learner = train(splits.domains[0].train, 2);
const all = toSequences(splits.mixedHeldOut, C);
const rows = Math.min(all.count, 256);
const pick = Array.from({ length: rows }, (_, i) => Math.floor(i * all.count / rows));
const d = { inputs: new Int32Array(rows * C), mask: new Float32Array(rows * C) };
pick.forEach((r, i) => { d.inputs.set(all.inputs.subarray(r * C, (r + 1) * C), i * C); d.mask.set(all.mask.subarray(r * C, (r + 1) * C), i * C); });
const x = tf.tensor2d(d.inputs, [rows, C], 'int32');
const zPeer = peer.logits(x), zLearner = learner.logits(x);
const lines = [];
for (const T of [1, 2]) {
  const p = tf.softmax(tf.div(zPeer, T)).dataSync(), s = tf.softmax(tf.div(zLearner, T)).dataSync();
  for (const k of [8, 32]) {
    let mass = 0, klUniform = 0, klStudent = 0, klLearner = 0, n = 0;
    for (let r = 0; r < rows * C; r++) {
      if (d.mask[r] === 0) continue;
      const row = p.subarray(r * V, (r + 1) * V), srow = s.subarray(r * V, (r + 1) * V);
      const top = Array.from(row, (v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, k);
      const inTop = new Uint8Array(V); let m = 0;
      for (const [v, i] of top) { inTop[i] = 1; m += v; }
      let sOut = 0; for (let j = 0; j < V; j++) if (!inTop[j]) sOut += srow[j];
      const rest = Math.max(0, 1 - m);
      for (let j = 0; j < V; j++) {
        const q = row[j]; if (q <= 0) continue;
        const u = inTop[j] ? q : rest / (V - k);
        const t = inTop[j] ? q : rest * srow[j] / sOut;
        klUniform += q * Math.log(q / u); klStudent += q * Math.log(q / t); klLearner += q * Math.log(q / srow[j]);
      }
      mass += m; n++;
    }
    const bits = (v) => (v / n / Math.LN2).toFixed(3);
    lines.push(`T=${T} k=${k}: top-k mass ${(mass / n).toFixed(3)}; KL(dense ‖ completion) bits/token: uniform tail ${bits(klUniform)}, learner tail ${bits(klStudent)}; KL(dense ‖ learner) ${bits(klLearner)} (${n} positions)`);
    console.log(lines.at(-1));
  }
}
writeFileSync('experiments/lm/topk/tail-mass.txt', lines.join('\n') + '\n');
