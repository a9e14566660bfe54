// The cost of the top-k spread rule alone, without HTTP: bits per byte on the mixed held-out
// fortunes (en, 100 kB, seed 1, ctx 32) of the teacher's full distribution and of its top-k rows
// with the remaining mass spread evenly (protocol/sparse.ts expandTopK), each position with its
// real history; the mean tail mass and how often the next byte falls outside the top k.
// Run from the repository after `npx tsc -p .`: node experiments/lm/topk-spread.mjs
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../dist/client/backend.js';
import { loadLanguageModel } from '../../dist/client/student-io/index.js';
import { loadFortuneDomains, splitDomains, toSequences } from '../../dist/client/data/text.js';
await selectBackend('wasm');
const { model } = loadLanguageModel('experiments/lm/api-local/teacher');
const splits = splitDomains(loadFortuneDomains(['en']), { heldOutFraction: 0.1, seed: 1, maxBytesPerDomain: 100000 });
const d = toSequences(splits.mixedHeldOut, 32);
const lp = tf.tidy(() => tf.logSoftmax(model.logits(tf.tensor2d(d.inputs, [d.count, 32], 'int32')))).arraySync();
for (const k of [5, 10, 20]) {
  let full = 0, spread = 0, tail = 0, n = 0, outside = 0;
  for (let r = 0; r < d.count; r++) for (let j = 0; j < 32; j++) {
    if (d.mask[r*32+j] === 0) continue;
    const row = lp[r][j]; const y = d.targets[r*32+j];
    const sorted = row.map((v,i)=>[v,i]).sort((a,b)=>b[0]-a[0]).slice(0,k);
    const topMass = sorted.reduce((a,[v])=>a+Math.exp(v),0);
    const inTop = sorted.find(([v,i])=>i===y);
    full += -row[y]; n++; tail += 1-topMass;
    if (inTop) spread += -row[y]; else { outside++; spread += -Math.log((1-topMass)/(257-k)); }
  }
  console.log(`k=${k}: full ${(full/n/Math.LN2).toFixed(3)} bpb, top-k spread ${(spread/n/Math.LN2).toFixed(3)} bpb, mean tail mass ${(tail/n).toFixed(3)}, targets outside top-k ${(outside/n*100).toFixed(1)}%`);
}
