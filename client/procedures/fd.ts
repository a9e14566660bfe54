/**
 * Federated distillation, FD (Jeong et al. 2018): share the mean logit vector of each class over
 * the private data, [C, C], with the per-class counts. Learn on private data with
 * α·CE(y, z) + (1 − α)·T²·KL(softmax(t_y / T) ‖ softmax(z / T)), where t_y is the others'
 * mean logit vector for the sample's own label y — for the classes some peer holds.
 */
import { subset } from '../data/dataset.js';
import { trainOptions, type SyncProcedure } from './procedure.js';

export const fd = (): SyncProcedure => ({
  mode: 'sync',
  async share(context) {
    const { train } = context.data;
    const C = context.info.numClasses;
    const logits = await context.student.logits(train.x);
    const sums = new Float64Array(C * C);
    const labelCounts = new Array<number>(C).fill(0);
    for (let i = 0; i < train.y.length; i++) {
      const y = train.y[i]!;
      labelCounts[y]!++;
      for (let k = 0; k < C; k++) sums[y * C + k]! += logits[i * C + k]!;
    }
    const values = new Float32Array(C * C);
    for (let c = 0; c < C; c++) if (labelCounts[c]! > 0) for (let k = 0; k < C; k++) values[c * C + k] = sums[c * C + k]! / labelCounts[c]!;
    return { values, shape: [C, C], labelCounts, sampleCount: train.y.length, records: { values: logits, labels: train.y } };
  },
  async learn(context, target) {
    const { train } = context.data;
    if (target === null) return context.student.train({ labeled: train }, trainOptions(context, 1));
    const C = context.info.numClasses;
    const T = context.info.temperature;
    // The soft target of class c: softmax(t_c / T), for the classes some peer holds.
    const classProbs = new Float32Array(C * C);
    for (let c = 0; c < C; c++) {
      const row = target.values.subarray(c * C, (c + 1) * C);
      const max = Math.max(...row);
      let sum = 0;
      for (let k = 0; k < C; k++) sum += classProbs[c * C + k] = Math.exp((row[k]! - max) / T);
      for (let k = 0; k < C; k++) classProbs[c * C + k]! /= sum;
    }
    const taught = [...train.y.keys()].filter((i) => (target.counts?.[train.y[i]!] ?? 0) > 0);
    const soft = subset(train, taught);
    const probs = new Float32Array(taught.length * C);
    taught.forEach((i, row) => probs.set(classProbs.subarray(train.y[i]! * C, (train.y[i]! + 1) * C), row * C));
    return context.student.train({ labeled: train, soft: { x: soft.x, probs } }, trainOptions(context));
  },
});
