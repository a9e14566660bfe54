/**
 * FedMD (Li & Wang 2019): share class scores (logits) on the round's public samples; learn by
 * *digesting* the consensus — fitting the logits to it by mean absolute error, as the authors'
 * code does — then *revisiting* the private data, in that order. The paper's initial transfer
 * learning (Algorithm 1: train on the labelled public set, then on the private data) runs once
 * before round 1 when the participant is given the reference labels and pretrainOnReference
 * (client/participant.ts); a reference set without labels skips it.
 */
import { combined, referenceFeatures, trainOptions, type SyncProcedure } from './procedure.js';

export const fedmd = (): SyncProcedure => ({
  mode: 'sync',
  async share(context) {
    const values = await context.student.logits(referenceFeatures(context));
    return { values, shape: [context.round.referenceIds.length, context.info.numClasses] };
  },
  async learn(context, target) {
    const revisit = () => context.student.train({ labeled: context.data.train }, trainOptions(context, 1));
    if (target === null) return revisit();
    const digest = await context.student.matchLogits(referenceFeatures(context), target.values, {
      epochs: context.epochs, batchSize: context.batchSize,
    });
    return combined(digest, await revisit());
  },
});
