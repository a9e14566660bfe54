import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { hintLoss } from './features.js';
import { DistillError, type LossInputs, type LossMethod } from './types.js';
import { featureOf, parseParams } from './params.js';

const schema = z
  .object({
    /** The student's guided layer. */
    student: z.string().min(1),
    /** The teacher's hint layer. */
    teacher: z.string().min(1),
    /** Non-linearity on the regressor's output: the paper requires the hint layer's own (ReLU here). */
    activation: z.enum(['relu', 'linear']).default('relu'),
    /** Seeds the regressor's initial weights. */
    seed: z.number().int().min(0).default(0),
  })
  .strict();

/** A variable holding `initial`'s values; `initial` is disposed (the variable keeps its own reference to the data). */
function variableFrom(initial: tf.Tensor): tf.Variable {
  const v = tf.variable(initial);
  initial.dispose();
  return v;
}

/**
 * FitNets hints, Romero et al. (2015), §2.2: the student's guided layer v_g, passed through a
 * learned regressor r, should predict the teacher's hint layer u_h:
 *   L_HT(W_Guided, W_r) = ½ ‖u_h(x) − r(v_g(x); W_r)‖²   (features.ts hintLoss; batch mean).
 * The regressor is trained with the student and discarded afterwards. As in the paper it is
 * convolutional for feature maps — a k_h × k_w valid convolution with k = N_g − N_h + 1 per
 * spatial axis, so that a larger guided map shrinks to the hint's size (1×1 when they match) —
 * and, for vectors (MLP layers), fully connected: the paper starts from a fully connected
 * regressor and turns to the convolutional one only to save parameters on feature maps. Its
 * output goes through the hint layer's non-linearity
 * ("u_h and r must have the same non-linearity"). RepDistiller's ConvReg, which many later
 * comparisons use, adds BatchNorm before the ReLU; that is not in the paper.
 *
 * The paper trains in two stages — hints first (stage 1: the layers up to the guided one, and
 * the regressor), then the whole student with KD (stage 2); the fitnets recipe in client/distill/recipes.ts
 * does that. As one term of a weighted sum it gives the one-stage variant.
 */
export class FitNetsMethod implements LossMethod {
  readonly name = 'fitnets';
  readonly needsTeacher = true;
  readonly teacherFeatures: readonly string[];
  readonly guided: string;
  readonly hint: string;
  private readonly activation: 'relu' | 'linear';
  private readonly seed: number;
  private kernel: tf.Variable | undefined;
  private bias: tf.Variable | undefined;

  constructor(params?: Record<string, unknown>) {
    const p = parseParams(this.name, schema, params);
    this.guided = p.student;
    this.hint = p.teacher;
    this.activation = p.activation;
    this.seed = p.seed;
    this.teacherFeatures = [p.teacher];
  }

  /** Builds the regressor from the shapes of the guided and hint layers in a probe batch. */
  prepare(inputs: LossInputs): void {
    if (this.kernel !== undefined) return;
    if (inputs.teacher === undefined) throw new DistillError('E_CONFIG', 'loss "fitnets" needs a teacher');
    const s = featureOf(inputs.student.features, this.guided, 'student', this.name) as tf.Tensor;
    const t = featureOf(inputs.teacher.features, this.hint, 'teacher', this.name) as tf.Tensor;
    let kernelShape: number[];
    if (s.rank === 4 && t.rank === 4) {
      const [, hs, ws, cs] = s.shape as number[];
      const [, ht, wt, ct] = t.shape as number[];
      if (hs! < ht! || ws! < wt!) {
        throw new DistillError('E_SHAPE', `loss "fitnets": the guided layer "${this.guided}" (${hs}×${ws}) is smaller than the hint "${this.hint}" (${ht}×${wt}); a valid convolution can only shrink it`);
      }
      kernelShape = [hs! - ht! + 1, ws! - wt! + 1, cs!, ct!];
    } else if (s.rank === 2 && t.rank === 2) {
      kernelShape = [s.shape[1]!, t.shape[1]!];
    } else {
      throw new DistillError('E_SHAPE', `loss "fitnets": guided [${s.shape.join(', ')}] and hint [${t.shape.join(', ')}] must both be feature maps or both vectors`);
    }
    const outChannels = kernelShape[kernelShape.length - 1]!;
    this.kernel = variableFrom(tf.initializers.glorotUniform({ seed: this.seed }).apply(kernelShape));
    this.bias = variableFrom(tf.zeros([outChannels]));
  }

  /** r(v_g): the regressor applied to the student's guided features. */
  regress(guided: tf.Tensor): tf.Tensor {
    if (this.kernel === undefined || this.bias === undefined) {
      throw new DistillError('E_CONFIG', 'loss "fitnets": the regressor is not built; call prepare() with a probe batch before training');
    }
    const kernel = this.kernel;
    const bias = this.bias;
    return tf.tidy(() => {
      const linear = guided.rank === 4
        ? tf.add(tf.conv2d(guided as tf.Tensor4D, kernel as tf.Tensor4D, 1, 'valid'), bias)
        : tf.add(tf.matMul(guided as tf.Tensor2D, kernel as tf.Tensor2D), bias);
      return this.activation === 'relu' ? tf.relu(linear) : linear;
    });
  }

  compute(inputs: LossInputs): tf.Scalar {
    if (inputs.teacher === undefined) throw new DistillError('E_CONFIG', 'loss "fitnets" needs a teacher');
    const s = featureOf(inputs.student.features, this.guided, 'student', this.name) as tf.Tensor;
    const t = featureOf(inputs.teacher.features, this.hint, 'teacher', this.name) as tf.Tensor;
    return tf.tidy(() => hintLoss(this.regress(s), t));
  }

  variables(): tf.Variable[] {
    return this.kernel === undefined || this.bias === undefined ? [] : [this.kernel, this.bias];
  }

  dispose(): void {
    this.kernel?.dispose();
    this.bias?.dispose();
    this.kernel = undefined;
    this.bias = undefined;
  }
}
