/**
 * Co-distillation (Anil et al. 2018, §2, Algorithm 1): train continuously on private data;
 * every `exchangeEvery` local steps, push this student's predictions on the next reference
 * shard and pull the others' ensemble on it; after `burnInSteps`, every step adds the
 * distillation term towards that (stale) ensemble:
 *   α·CE(y, z) + (1 − α)·T²·KL(ensemble ‖ softmax(z/T)).
 * The paper exchanges checkpoints and recomputes teachers' predictions locally; exchanging the
 * predictions themselves keeps data and weights home, at the price of teaching on the shard's
 * samples only.
 *
 * On language models (reference-token-predictions) the same per token: the private loss is
 * token-CE on the site's text, the shards are runs of reference windows, and the distillation
 * term is T²·KL(ensemble ‖ softmax(z/T)) at every position of the last pulled shard's windows —
 * Anil et al.'s own setting (language models), with predictions exchanged instead of checkpoints.
 */
import { shardIds } from '../../protocol/index.js';
import { subset } from '../data/dataset.js';
import { SeededRandom } from '../data/random.js';
import { selectSequences, type TokenSequences } from '../data/text-sequences.js';
import type { SoftTargets, TrainResult } from '../student.js';
import { combined, referenceFeatures, trainOptions, type AsyncChannel, type AsyncProcedure, type RoundContext } from './procedure.js';
import { textSite, TokenLearner, tokenPredictions } from './tokens.js';

export const codistillation = (): AsyncProcedure => ({
  mode: 'async',
  async run(context, channel) {
    if (context.info.knowledge === 'reference-token-predictions') return runOnTokens(context, channel);
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

/** Co-distillation of a language-model site: `steps` per checkpoint, an exchange every `exchangeEvery` of them. */
async function runOnTokens(context: RoundContext, channel: AsyncChannel): Promise<void> {
  const { info } = context;
  const settings = info.async!;
  const site = textSite(context);
  const learner = new TokenLearner();
  let steps = 0;
  let exchanges = 0;
  let teacher: { windows: TokenSequences; target: Float32Array } | undefined;
  let taught = false;
  for (let checkpoint = 1; checkpoint <= info.rounds; checkpoint++) {
    let result: TrainResult = { loss: Number.NaN, steps: 0, samples: 0, ms: 0 };
    for (let done = 0; done < site.steps; ) {
      const n = Math.min(settings.exchangeEvery, site.steps - done);
      const soft = steps >= settings.burnInSteps ? teacher : undefined;
      taught ||= soft !== undefined;
      const period = await learner.train(site, { ...soft, alpha: info.alpha, temperature: info.temperature, batchSize: context.batchSize, steps: n });
      result = combined(result, period);
      steps += n;
      done += n;
      // Exchange on the next shard in turn: push ours, pull the others' fresh ensemble.
      const shard = exchanges++ % settings.shards;
      const windows = selectSequences(site.reference, shardIds(info.referenceSize, settings.shards, shard));
      await channel.push(shard, steps, tokenPredictions(site, windows, info.temperature));
      const ensemble = await channel.pull(shard);
      teacher = ensemble === null ? undefined : { windows, target: ensemble.values };
    }
    await channel.checkpoint(checkpoint, result, taught);
  }
}
