/**
 * Chooses the tfjs backend a participant computes on.
 *
 * Automatic order: tfjs-node-gpu → tfjs-node → wasm → cpu. The native bindings are optional peers
 * that a site installs itself (they download libtensorflow at install time), so each is tried by
 * dynamic import; wasm ships with codistill and runs everywhere; cpu is the pure-JS last resort.
 */
import * as tf from '@tensorflow/tfjs';
import { registerMissingKernels } from './kernels/index.js';

export const BACKENDS = ['node-gpu', 'node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

interface Candidate {
  /** The package whose import registers the backend (none for cpu, which tfjs always has). */
  module?: string;
  /** The name tfjs registers the backend under. */
  tfName: string;
}

const CANDIDATES: Record<BackendName, Candidate> = {
  'node-gpu': { module: '@tensorflow/tfjs-node-gpu', tfName: 'tensorflow' },
  node: { module: '@tensorflow/tfjs-node', tfName: 'tensorflow' },
  wasm: { module: '@tensorflow/tfjs-backend-wasm', tfName: 'wasm' },
  cpu: { tfName: 'cpu' },
};

async function tryBackend(name: BackendName): Promise<string | undefined> {
  const candidate = CANDIDATES[name];
  if (candidate.module !== undefined) {
    try {
      await import(candidate.module);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return `${candidate.module} is not installed`;
      return `${candidate.module} failed to load: ${(error as Error).message}`;
    }
  }
  registerMissingKernels();
  // setBackend resolves false (and logs) when the backend fails to initialise.
  const ok = await tf.setBackend(candidate.tfName).catch(() => false);
  if (!ok) return `the ${name} backend failed to initialise`;
  await tf.ready();
  return undefined;
}

/**
 * Selects and initialises a backend; returns its name. With `forced`, that backend or a clear
 * error; without, the first that works in the automatic order.
 */
export async function selectBackend(forced?: string): Promise<BackendName> {
  if (forced !== undefined) {
    if (!(BACKENDS as readonly string[]).includes(forced)) {
      throw new Error(`unknown backend "${forced}"; choose one of ${BACKENDS.join(', ')}`);
    }
    const problem = await tryBackend(forced as BackendName);
    if (problem !== undefined) {
      const hint = CANDIDATES[forced as BackendName].module;
      throw new Error(`backend "${forced}" is not available: ${problem}${hint ? ` (install it with: npm install ${hint})` : ''}`);
    }
    return forced as BackendName;
  }
  const problems: string[] = [];
  for (const name of BACKENDS) {
    const problem = await tryBackend(name);
    if (problem === undefined) return name;
    problems.push(problem);
  }
  throw new Error(`no tfjs backend could start: ${problems.join('; ')}`);
}
