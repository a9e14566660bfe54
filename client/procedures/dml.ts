/**
 * Deep mutual learning across nodes (Zhang et al. 2018): share softmax(z/T) on the round's
 * reference samples; learn from private labels and the peers' aggregate on those samples,
 * loss = α·CE(y, student) + (1 − α)·T²·KL(target ‖ softmax(student/T)).
 * On language models (reference-token-predictions) the same at every position of the round's
 * reference windows, with token-CE on private text (procedures/tokens.ts).
 */
import { referenceFeatures, trainOptions, type SyncProcedure } from './procedure.js';
import { shareTokens, TokenLearner } from './tokens.js';

export const dml = (): SyncProcedure => {
  const tokens = new TokenLearner();
  return {
    mode: 'sync',
    async share(context) {
      if (context.info.knowledge === 'reference-token-predictions') return shareTokens(context);
      const values = await context.student.predict(referenceFeatures(context), context.info.temperature);
      return { values, shape: [context.round.referenceIds.length, context.info.numClasses] };
    },
    learn: async (context, target) =>
      context.info.knowledge === 'reference-token-predictions'
        ? tokens.learn(context, target)
        : context.student.train(
            { labeled: context.data.train, soft: target === null ? undefined : { x: referenceFeatures(context), probs: target.values } },
            trainOptions(context),
          ),
  };
};
