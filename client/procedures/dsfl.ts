/**
 * DS-FL (Itahara et al. 2021): share probabilities on unlabeled open data; learn by distilling
 * towards the server's ERA-sharpened global labels on that open data, then by a local update on
 * private labels. The paper's round is [local update, predict, aggregate, distill]; ours is
 * [predict, aggregate, distill, local update] — the same cycle, so the model that predicts in
 * round r+1 has had round r's distillation and local update, as in the paper.
 */
import { combined, referenceFeatures, trainOptions, type SyncProcedure } from './procedure.js';

export const dsfl = (): SyncProcedure => ({
  mode: 'sync',
  async share(context) {
    const values = await context.student.predict(referenceFeatures(context), context.info.temperature);
    return { values, shape: [context.round.referenceIds.length, context.info.numClasses] };
  },
  async learn(context, target) {
    const local = () => context.student.train({ labeled: context.data.train }, trainOptions(context, 1));
    if (target === null) return local();
    const distilled = await context.student.train({ soft: { x: referenceFeatures(context), probs: target.values } }, trainOptions(context, 0));
    return combined(distilled, await local());
  },
});
