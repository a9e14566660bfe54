/**
 * Deep mutual learning across nodes (Zhang et al. 2018): share softmax(z/T) on the round's
 * reference samples; learn from private labels and the peers' aggregate on those samples,
 * loss = α·CE(y, student) + (1 − α)·T²·KL(target ‖ softmax(student/T)).
 */
import { referenceFeatures, trainOptions, type SyncProcedure } from './procedure.js';

export const dml = (): SyncProcedure => ({
  mode: 'sync',
  async share(context) {
    const values = await context.student.predict(referenceFeatures(context), context.info.temperature);
    return { values, shape: [context.round.referenceIds.length, context.info.numClasses] };
  },
  learn: (context, target) =>
    context.student.train(
      { labeled: context.data.train, soft: target === null ? undefined : { x: referenceFeatures(context), probs: target.values } },
      trainOptions(context),
    ),
});
