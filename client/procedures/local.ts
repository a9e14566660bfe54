/** The local-only baseline: share nothing, train on private labels alone. */
import { trainOptions, type SyncProcedure } from './procedure.js';

export const local = (): SyncProcedure => ({
  mode: 'sync',
  share: async () => undefined,
  learn: (context) => context.student.train({ labeled: context.data.train }, trainOptions(context, 1)),
});
