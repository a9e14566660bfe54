/**
 * FedAvg (McMahan et al. 2017), the weights-exchanging baseline: start from the global model,
 * train locally, upload all weights with the private sample count, then take the server's
 * weighted average as the model. The accuracy a round reports is therefore the global model's.
 *
 * The global model w_t arrives as the last round's target; a participant that did not get that
 * target (with participant sampling, one that sat the round out) finds w_t in the round's
 * announcement instead (`model`), as Algorithm 1 sends w_t to each selected client.
 *
 * A language-model site (data.text) trains its model's trainable weights on its own text with
 * token-CE (the local-only schedule: client/lm/train.ts, batches seeded by site and round; a fresh Adam each round) and
 * exchanges those: for a LoRA model, only its adapters, so the frozen base never travels.
 */
import { unpackTensor } from '../../protocol/index.js';
import { flatWeights, setFlatWeights } from '../lm/model.js';
import { trainLanguageModelYielding } from '../lm/train.js';
import { targetShape, trainOptions, type RoundContext, type SyncProcedure } from './procedure.js';
import type { TrainResult } from '../student.js';

async function trainText(context: RoundContext): Promise<TrainResult> {
  const site = context.data.text!;
  const began = performance.now();
  const losses = await trainLanguageModelYielding(site.model, site.train, {
    steps: site.steps, batchSize: context.batchSize, learningRate: site.learningRate, seed: site.seed * 100 + context.round.round, loss: [{ name: 'token-ce', weight: 1 }],
  });
  return { loss: losses.reduce((a, b) => a + b, 0) / Math.max(1, losses.length), steps: site.steps, samples: site.steps * context.batchSize, ms: performance.now() - began };
}

export const fedavg = (): SyncProcedure => {
  let lastTraining: TrainResult | undefined;
  return {
    mode: 'sync',
    async share(context) {
      const { model } = context.round;
      const text = context.data.text;
      if (model !== undefined) {
        // Checked as a target is: this student's (trainable) parameter count, finite values.
        const global = unpackTensor(model, targetShape(context));
        if (text !== undefined) setFlatWeights(text.model, global);
        else context.student.setWeights(global);
      }
      if (text !== undefined) {
        lastTraining = await trainText(context);
        const values = flatWeights(text.model);
        return { values, shape: [values.length], sampleCount: text.train.count };
      }
      lastTraining = await context.student.train({ labeled: context.data.train }, trainOptions(context, 1));
      const values = context.student.getWeights();
      return { values, shape: [values.length], sampleCount: context.data.train.y.length };
    },
    async learn(context, target) {
      if (target !== null) {
        if (context.data.text !== undefined) setFlatWeights(context.data.text.model, target.values);
        else context.student.setWeights(target.values);
      }
      const trained = lastTraining ?? { loss: Number.NaN, steps: 0, samples: 0, ms: 0 };
      lastTraining = undefined;
      return trained;
    },
  };
};
