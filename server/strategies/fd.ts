/**
 * Federated distillation, FD (Jeong et al. 2018, "Communication-Efficient On-Device Machine
 * Learning: Federated Distillation and Augmentation under Non-IID Private Data", §2): each
 * participant sends its mean logit vector per class over its private data, [C, C], with how
 * many samples it holds per class. For participant i and class c the teacher is the mean of
 * the *other* participants' class-c vectors — (Σ_j F_j,c − F_i,c)/(K − 1) in the paper — taken
 * here over the others that hold class c at all (a participant with no class-c sample has no
 * class-c mean to give). No reference set is needed: a few hundred bytes per round.
 */
import type { Aggregate, Contribution, Strategy, StrategySettings } from './strategy.js';

export function fd(settings: StrategySettings): Strategy {
  const C = settings.numClasses;
  return {
    name: 'fd',
    knowledge: 'class-logits',
    configureRound: () => ({ referenceIds: [] }),
    aggregate(contributions, learners): Aggregate {
      const targets = new Map(learners.map((p) => [p, classTeacher(contributions.filter((c) => c.participant !== p), C)]));
      return { targets, ensemble: classTeacher(contributions, C)?.values ?? null };
    },
  };
}

/** Per class, the mean of the class-c logit vectors of the contributors holding class c. */
function classTeacher(contributions: readonly Contribution[], C: number) {
  if (contributions.length === 0) return null;
  const sum = new Float64Array(C * C);
  const holders = new Array<number>(C).fill(0);
  const counts = new Array<number>(C).fill(0);
  for (const { values, labelCounts } of contributions) {
    for (let c = 0; c < C; c++) {
      const n = labelCounts![c]!;
      if (n === 0) continue;
      holders[c]!++;
      counts[c]! += n;
      for (let k = 0; k < C; k++) sum[c * C + k]! += values[c * C + k]!;
    }
  }
  const values = new Float32Array(C * C);
  for (let c = 0; c < C; c++) {
    if (holders[c] === 0) continue;
    for (let k = 0; k < C; k++) values[c * C + k] = sum[c * C + k]! / holders[c]!;
  }
  return { values, shape: [C, C], counts };
}
