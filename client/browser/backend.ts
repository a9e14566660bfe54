/**
 * The tfjs backend of the browser participant: wasm (with codistill's own kernels, as in Node)
 * → webgl → cpu. The Node order (backend.ts) starts with native bindings a browser cannot load,
 * and finds backends by dynamic import of a package name, which a bundle cannot resolve at run
 * time; here the wasm backend is bundled and its binaries are fetched from the coordinator.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { registerMissingKernels } from '../kernels/index.js';

export const BROWSER_BACKENDS = ['wasm', 'webgl', 'cpu'] as const;
export type BrowserBackend = (typeof BROWSER_BACKENDS)[number];

/**
 * Starts the first backend that works, or the one named by `forced`. `wasmBase` is the URL of
 * the folder holding tfjs-backend-wasm*.wasm (the build copies them to the page's wasm/).
 */
export async function selectBrowserBackend(wasmBase: string, forced?: BrowserBackend): Promise<{ backend: BrowserBackend; problems: string[] }> {
  setWasmPaths(wasmBase);
  registerMissingKernels();
  const problems: string[] = [];
  for (const name of forced === undefined ? BROWSER_BACKENDS : [forced]) {
    // setBackend resolves false when initialisation fails (no WebGL context, a wasm fetch refused).
    const ok = await tf.setBackend(name).catch((error: unknown) => {
      problems.push(`${name}: ${(error as Error).message}`);
      return false;
    });
    if (ok) {
      await tf.ready();
      return { backend: name, problems };
    }
    problems.push(`${name} did not start`);
  }
  throw new Error(`no tfjs backend could start in this browser: ${problems.join('; ')}`);
}
