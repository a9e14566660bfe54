/**
 * Floating-point work of the students' layers, and the backend's own matmul speed, so that a
 * training step can be judged as a share of what the backend can do at best.
 */
import * as tf from '@tensorflow/tfjs';
import { fmt, type Table } from './harness.js';

export interface ModelFlops {
  /** Multiply-adds ×2 of one row's forward pass through the dense and convolution layers. */
  forward: number;
  /** Forward, plus the weight gradient of every layer, plus the input gradient of every layer but the first. */
  training: number;
}

/**
 * Counts 2·(multiply-adds) of the layers that carry weights: dense 2·in·out, convolution
 * 2·outH·outW·kh·kw·cin·cout per row. Pooling, activations, the loss and the optimizer are
 * elementwise and left out, so the achieved rate is a lower bound on the work actually done.
 * Backward: dW costs what the forward product costs; dX too, except for the first layer, whose
 * input gradient tfjs never computes (the input is not a variable).
 */
export function modelFlops(model: tf.LayersModel): ModelFlops {
  let forward = 0;
  let inputGradients = 0;
  let first = true;
  for (const layer of model.layers) {
    const kernel = layer.getWeights()[0];
    if (kernel === undefined) continue;
    let flops = 0;
    const className = layer.getClassName();
    if (className === 'Dense') {
      const [inputs, units] = kernel.shape as [number, number];
      flops = 2 * inputs * units;
    } else if (className === 'Conv2D') {
      const [kh, kw, cin, cout] = kernel.shape as [number, number, number, number];
      const out = layer.outputShape as number[];
      flops = 2 * out[1]! * out[2]! * kh * kw * cin * cout;
    } else {
      continue;
    }
    forward += flops;
    if (!first) inputGradients += flops;
    first = false;
  }
  return { forward, training: 2 * forward + inputGradients };
}

/** GFLOP/s of tf.matMul(a, b, transposeA, transposeB) for [m,k]·[k,n], best of a few timed batches. */
export function matmulGflops(m: number, k: number, n: number, transposeA = false, transposeB = false, batchMs = 200): number {
  const a = tf.randomNormal(transposeA ? [k, m] : [m, k], 0, 1, 'float32', 1);
  const b = tf.randomNormal(transposeB ? [n, k] : [k, n], 0, 1, 'float32', 2);
  // Not tf.tidy(() => …dataSync()): tidy walks a returned typed array element by element.
  const once = () => {
    const c = tf.matMul(a, b, transposeA, transposeB);
    c.dataSync();
    c.dispose();
  };
  try {
    for (let i = 0; i < 2; i++) once();
    let best = 0;
    for (let batch = 0; batch < 3; batch++) {
      let calls = 0;
      const started = performance.now();
      let elapsed = 0;
      do {
        once();
        calls++;
        elapsed = performance.now() - started;
      } while (elapsed < batchMs);
      best = Math.max(best, (2 * m * k * n * calls) / elapsed / 1e6);
    }
    return best;
  } finally {
    a.dispose();
    b.dispose();
  }
}

export interface MatmulPeak {
  gflops: number;
  shape: string;
  table: Table;
}

/** The backend's best plain (untransposed) matmul rate over a few large square products. */
export function matmulPeak(log: (line: string) => void): MatmulPeak {
  const rows: Array<[string, number]> = [];
  for (const size of [256, 512, 1024]) {
    const g = matmulGflops(size, size, size);
    rows.push([`${size}×${size}·${size}×${size}`, g]);
    log(`  matmul ${size}³: ${fmt(g)} GFLOP/s`);
  }
  const best = rows.reduce((a, b) => (b[1] > a[1] ? b : a));
  return {
    gflops: best[1],
    shape: best[0],
    table: {
      caption: `Backend matmul peak on ${tf.getBackend()} (plain A·B, best of 3 timed batches each)`,
      columns: ['product', 'GFLOP/s'],
      rows: rows.map(([s, g]) => [s, fmt(g)]),
    },
  };
}
