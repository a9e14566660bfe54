/**
 * FedAvg (McMahan et al. 2017), the weights-exchanging baseline: start from the global model,
 * train locally, upload all weights with the private sample count, then take the server's
 * weighted average as the model. The accuracy a round reports is therefore the global model's.
 *
 * The global model w_t arrives as the last round's target; a participant that did not get that
 * target (with participant sampling, one that sat the round out) finds w_t in the round's
 * announcement instead (`model`), as Algorithm 1 sends w_t to each selected client.
 */
import { unpackTensor } from '../../protocol/index.js';
import { targetShape, trainOptions, type SyncProcedure } from './procedure.js';
import type { TrainResult } from '../student.js';

export const fedavg = (): SyncProcedure => {
  let lastTraining: TrainResult | undefined;
  return {
    mode: 'sync',
    async share(context) {
      const { model } = context.round;
      // Checked as a target is: this student's parameter count, finite values.
      if (model !== undefined) context.student.setWeights(unpackTensor(model, targetShape(context)));
      lastTraining = await context.student.train({ labeled: context.data.train }, trainOptions(context, 1));
      const values = context.student.getWeights();
      return { values, shape: [values.length], sampleCount: context.data.train.y.length };
    },
    async learn(context, target) {
      if (target !== null) context.student.setWeights(target.values);
      const trained = lastTraining ?? { loss: Number.NaN, steps: 0, samples: 0, ms: 0 };
      lastTraining = undefined;
      return trained;
    },
  };
};
