/**
 * The distiller (issue 14 §5, issue 16 §3): one global student per session, learnt from the
 * ensemble alone. It holds no private data and shares nothing; each round the coordinator sends
 * it the ensemble of every contribution on the round's reference samples, and it fits its student
 * to that ensemble on those samples by Hinton's KD at the session temperature with no task term:
 *   loss = T² · (1/N) Σ_n KL(q_n ‖ softmax(z_n / T)),  q = the ensemble (α = 0).
 * This is FedDF's server step (Lin et al. 2020, "Ensemble Distillation for Robust Model Fusion in
 * Federated Learning"): there the server distils the clients' ensemble into the global model on
 * unlabeled data; here a participant process does it, so the coordinator still never trains.
 * FedDF starts each round's distillation from the clients' averaged weights; there are no weights
 * to average here, so the distiller continues from its own student of the previous round, for the
 * participant's epochs over the round's reference rows.
 */
import { referenceFeatures, trainOptions, type RoundContext, type SyncProcedure } from './procedure.js';
import { TokenLearner } from './tokens.js';

/**
 * Each row of logits z, [rows, C], as probabilities softmax(z / T) — what a FedMD session's mean
 * logits become before KD. Shifted by the row's maximum, so large logits do not overflow.
 */
export function softmaxRows(logits: Float32Array, numClasses: number, temperature: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let row = 0; row < logits.length; row += numClasses) {
    let max = -Infinity;
    for (let k = 0; k < numClasses; k++) max = Math.max(max, logits[row + k]! / temperature);
    let sum = 0;
    for (let k = 0; k < numClasses; k++) sum += out[row + k] = Math.exp(logits[row + k]! / temperature - max);
    for (let k = 0; k < numClasses; k++) out[row + k]! /= sum;
  }
  return out;
}

/** The ensemble as probabilities: predictions are already softmax(z/T) (DML's mean, DS-FL's ERA); FedMD's mean logits are converted here. */
function ensembleProbabilities(context: RoundContext, values: Float32Array): Float32Array {
  const { knowledge, numClasses, temperature } = context.info;
  if (knowledge === 'reference-predictions') return values;
  if (knowledge === 'reference-logits') return softmaxRows(values, numClasses, temperature);
  throw new Error(`session ${context.info.session} exchanges ${knowledge}: a distiller learns only from an ensemble on the reference set`);
}

export const distiller = (): SyncProcedure => {
  // On language models: one global LM, by token-KD towards the ensemble at every position of the round's windows.
  const tokens = new TokenLearner();
  return {
    mode: 'sync',
    // A distiller contributes nothing (the coordinator would refuse its upload).
    share: () => Promise.resolve(undefined),
    async learn(context, target) {
      // The coordinator sends a distiller a target only when there is an ensemble; without one there is nothing to learn.
      if (target === null) return { loss: 0, steps: 0, samples: 0, ms: 0 };
      if (context.info.knowledge === 'reference-token-predictions') return tokens.learn(context, target, 0);
      const probs = ensembleProbabilities(context, target.values);
      return context.student.train({ soft: { x: referenceFeatures(context), probs } }, trainOptions(context, 0));
    },
  };
};
