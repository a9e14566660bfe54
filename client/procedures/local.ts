/** The local-only baseline: share nothing, train on private labels alone. */
import type { Procedure } from './procedure.js';

export const local: Procedure = {
  share: async () => undefined,
  learn: (context) =>
    context.student.train(context.data.train, undefined, {
      epochs: context.epochs,
      batchSize: context.batchSize,
      alpha: 1,
      temperature: context.info.temperature,
    }),
};
