import * as tf from '@tensorflow/tfjs';
import { stackedDistillationLoss } from './logits.js';
import { NO_PARAMS, ParameterFreeMethod } from './parameter-free.js';
import { DistillError, type LossInputs } from './types.js';

/**
 * A federated participant's objective towards its peers, the one every algorithm that
 * distils trains on (DML's loss, Zhang et al. 2018, across nodes):
 *   α · CE(y, z) on the private rows + (1 − α) · T² · (1/S) Σ KL(target ‖ softmax(z/T)) on the S
 *   reference rows the peers' target covers,
 * computed in one pass over the stacked rows by logits.ts's stackedDistillationLoss (its
 * doc gives the derivation; test/client/losses.test.ts checks it against distillationLoss). α
 * and T are the session's and the target is already folded into `inputs.peers` by the student
 * (logits.ts stackTargets), so the term has no params. Without reference rows it is the task
 * cross-entropy alone; without private rows, the KD term alone.
 */
export class PeerDistillationMethod extends ParameterFreeMethod {
  constructor(params?: Record<string, unknown>) {
    super('peers', false, NO_PARAMS, params);
  }

  compute(inputs: LossInputs): tf.Scalar {
    if (inputs.peers === undefined) {
      throw new DistillError('E_CONFIG', 'loss "peers" distils towards the peers\' target: it belongs to a federated participant\'s objective (client/student.ts); offline distillation has no peers');
    }
    return stackedDistillationLoss(inputs.peers.logits, inputs.peers.target);
  }
}
