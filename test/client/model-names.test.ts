/** Model names: mlp and cnn, and an MLP with its hidden sizes (mlp:100 is the field's 784-100-10). */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { createModel, isModelName } from '../../client/models.js';

describe('model names', () => {
  it('mlp:H1,H2… builds dense layers of those sizes; mlp keeps 256,128', () => {
    const shape = (name: Parameters<typeof createModel>[0]['name']) => {
      const model = createModel({ name, inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
      const units = model.layers.filter((l) => l.getClassName() === 'Dense').map((l) => (l.getConfig() as { units: number }).units);
      const parameters = model.countParams();
      model.dispose();
      return { units, parameters };
    };
    expect(shape('mlp:100')).toEqual({ units: [100, 10], parameters: 784 * 100 + 100 + 100 * 10 + 10 });
    expect(shape('mlp:64,32').units).toEqual([64, 32, 10]);
    expect(shape('mlp').units).toEqual([256, 128, 10]);
    expect(tf.memory().numTensors).toBe(0);
  });

  it('refuses what is not a model', () => {
    for (const good of ['mlp', 'cnn', 'mlp:100', 'mlp:512,256']) expect(isModelName(good), good).toBe(true);
    for (const bad of ['mlp:', 'mlp:0', 'mlp:abc', 'mlp:1,,2', 'cnn:3', 'resnet', 'constructor']) expect(isModelName(bad), bad).toBe(false);
    expect(() => createModel({ name: 'resnet' as 'mlp', inputShape: [4], numClasses: 2, seed: 1 })).toThrow(/unknown model "resnet"; choose mlp \| mlp:H1\[,H2…\] \| cnn/);
  });
});
