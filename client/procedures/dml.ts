/**
 * Deep mutual learning across nodes (Zhang et al. 2018): share softmax(z/T) on the round's
 * reference samples; learn from private labels and the peers' mean on those samples,
 * loss = α·CE(y, student) + (1 − α)·T²·KL(target ‖ softmax(student/T)).
 */
import { referenceFeatures, type Procedure } from './procedure.js';

export const dml: Procedure = {
  share: (context) => context.student.predict(referenceFeatures(context), context.info.temperature),
  learn: (context, target) =>
    context.student.train(
      context.data.train,
      target === null ? undefined : { x: referenceFeatures(context), probs: target },
      { epochs: context.epochs, batchSize: context.batchSize, alpha: context.info.alpha, temperature: context.info.temperature },
    ),
};
