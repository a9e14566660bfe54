/**
 * One thread of the parallel-ceiling probe (bench/parallel-probe.ts): a simulated participant's
 * round, over and over, with no coordinator — train one epoch on private MNIST rows with soft
 * targets (the default simulation's batch and loss), then predict the reference and test rows.
 * Starts its backend and warms up, says 'ready', and on 'go' runs `units` rounds and reports
 * how long they took.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { selectBackend } from '../client/backend.js';
import { subset } from '../client/data/dataset.js';
import { loadMnist } from '../client/data/mnist.js';
import { createModel } from '../client/models.js';
import { Student } from '../client/student.js';
import { DEFAULT_OPTIONS } from '../simulations/simulate.js';
import { softPredictions } from './harness.js';

export interface ProbeStart {
  backend?: string;
  /** Private samples per round; the reference and test sets are the default simulation's sizes. */
  samples: number;
  seed: number;
}
export type ProbeMessage = { type: 'ready' } | { type: 'done'; ms: number } | { type: 'error'; message: string };

const post = (m: ProbeMessage) => parentPort!.postMessage(m);

async function main(start: ProbeStart): Promise<void> {
  await selectBackend(start.backend);
  const all = loadMnist();
  const rows = (from: number, count: number) => subset(all, Array.from({ length: count }, (_, i) => from + i));
  const train = rows(0, start.samples);
  const reference = rows(start.samples, DEFAULT_OPTIONS.referenceSize);
  const test = rows(start.samples + DEFAULT_OPTIONS.referenceSize, DEFAULT_OPTIONS.testSize);
  const soft = { x: reference.x, probs: softPredictions(DEFAULT_OPTIONS.referenceSize, all.numClasses, start.seed) };
  const student = new Student(createModel({ name: DEFAULT_OPTIONS.model, inputShape: all.sampleShape, numClasses: all.numClasses, seed: start.seed }), {
    sampleShape: all.sampleShape, numClasses: all.numClasses, learningRate: DEFAULT_OPTIONS.learningRate, seed: start.seed,
  });
  const round = async () => {
    await student.train({ labeled: train, soft }, { epochs: 1, batchSize: DEFAULT_OPTIONS.batchSize, alpha: 0.5, temperature: 3 });
    await student.predict(reference.x, 3);
    await student.evaluate(test);
  };
  await round(); // warm-up
  post({ type: 'ready' });
  parentPort!.on('message', (units: number) => {
    void (async () => {
      const started = performance.now();
      for (let u = 0; u < units; u++) await round();
      post({ type: 'done', ms: performance.now() - started });
    })();
  });
}

main(workerData as ProbeStart).catch((error: unknown) => post({ type: 'error', message: error instanceof Error ? error.message : String(error) }));
