/**
 * Co-distillation (Anil et al. 2018, §2, Algorithm 1): train continuously on private data;
 * every `exchangeEvery` local steps, push this student's predictions on the next reference
 * shard and pull the others' ensemble on it; after `burnInSteps`, every step adds the
 * distillation term towards that (stale) ensemble:
 *   α·CE(y, z) + (1 − α)·T²·KL(ensemble ‖ softmax(z/T)).
 * The paper exchanges checkpoints and recomputes teachers' predictions locally; exchanging the
 * predictions themselves keeps data and weights home, at the price of teaching on the shard's
 * samples only.
 */
import { shardIds } from '../../protocol/index.js';
import { subset } from '../data/dataset.js';
import { SeededRandom } from '../data/random.js';
import type { SoftTargets, TrainResult } from '../student.js';
import { combined, referenceFeatures, trainOptions, type AsyncProcedure } from './procedure.js';

export const codistillation = (): AsyncProcedure => ({
  mode: 'async',
  async run(context, channel) {
    const { info, student, data } = context;
    const settings = info.async!;
    const train = data.train;
    const periodSamples = settings.exchangeEvery * context.batchSize;
    const order = Array.from({ length: train.y.length }, (_, i) => i);
    const random = new SeededRandom(train.y.length);
    let steps = 0;
    let exchanges = 0;
    let teacher: SoftTargets | undefined;
    let taught = false;
    for (let checkpoint = 1; checkpoint <= info.rounds; checkpoint++) {
      let result: TrainResult = { loss: Number.NaN, steps: 0, samples: 0, ms: 0 };
      for (let epoch = 0; epoch < context.epochs; epoch++) {
        random.shuffle(order);
        for (let start = 0; start < order.length; start += periodSamples) {
          const soft = steps >= settings.burnInSteps ? teacher : undefined;
          taught ||= soft !== undefined;
          const period = await student.train(
            { labeled: subset(train, order.slice(start, start + periodSamples)), soft },
            { ...trainOptions(context), epochs: 1 },
          );
          result = combined(result, period);
          steps += period.steps;
          // Exchange on the next shard in turn: push ours, pull the others' fresh ensemble.
          const shard = exchanges++ % settings.shards;
          const x = referenceFeatures(context, shardIds(info.referenceSize, settings.shards, shard));
          await channel.push(shard, steps, await student.predict(x, info.temperature));
          const ensemble = await channel.pull(shard);
          teacher = ensemble === null ? undefined : { x, probs: ensemble.values };
        }
      }
      await channel.checkpoint(checkpoint, result, taught);
    }
  },
});
