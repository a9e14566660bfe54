/**
 * CodistillAdam for the wasm backend: one Adam step for a float32 variable in one SIMD pass
 * (wasm-adam.wat), run directly on the backend's heap — the tiny module imports the backend's own
 * WebAssembly.Memory, so tensors are addressed by their heap offsets and nothing is copied.
 * client/optimizer.ts runs it; tfjs has no such kernel, so this one has its own name.
 *
 * Inputs x (the variable), g (its gradient), m and v (the optimizer's moments); the output is the
 * new x, in a tensor of its own like any kernel's. m and v are updated in place: they belong to the
 * optimizer alone and never meet another kernel, so no one else can see them change.
 */
import type { DataId, KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';
import { WASM_BASE64 } from './wasm-adam.wasm.js';

export const ADAM_KERNEL = 'CodistillAdam';

/** The step's constants, each a float32 as tfjs would hold it in a scalar tensor. */
export interface AdamAttrs {
  beta1: number;
  beta2: number;
  oneMinusBeta1: number;
  oneMinusBeta2: number;
  /** 1 − β₁ᵗ and 1 − β₂ᵗ. */
  correction1: number;
  correction2: number;
  epsilon: number;
  /** −learning rate. */
  step: number;
}

/** The WebAssembly API used here (the project's typings have no DOM library, where it is declared). */
interface WebAssemblyApi {
  Memory: abstract new (...args: never[]) => object;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const { WebAssembly } = globalThis as unknown as { WebAssembly: WebAssemblyApi };

/** The parts of tfjs-backend-wasm's BackendWasm used here (the class is not exported). */
interface BackendWasm {
  wasm: { asm?: { memory?: unknown } };
  dataIdMap: { get(dataId: DataId): { memoryOffset: number | null } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
}

type AdamExport = (
  x: number, g: number, m: number, v: number, out: number, n: number,
  b1: number, b2: number, o1: number, o2: number, c1: number, c2: number, eps: number, step: number,
) => void;

/** The module bound to the running backend's memory; undefined where that cannot be done. */
let bound: { backend: BackendWasm; adam: AdamExport } | undefined;

/** Binds the module to the backend's memory; tfjs calls this whenever the wasm backend is set up. */
function setup(backend: unknown): void {
  bound = undefined;
  const wasmBackend = backend as BackendWasm;
  const memory = wasmBackend.wasm.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) return;
  try {
    const bytes = Uint8Array.from(atob(WASM_BASE64), (c) => c.charCodeAt(0));
    const adam = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports.adam as AdamExport;
    bound = { backend: wasmBackend, adam };
  } catch {
    // A build whose memory is shared (threads) or an engine without SIMD: optimizer.ts keeps tfjs's Adam.
  }
}

/** Whether the kernel can run on the backend that was set up last (the optimizer falls back to tfjs's Adam otherwise). */
export function wasmAdamReady(backend: unknown): boolean {
  return bound !== undefined && bound.backend === backend;
}

function adam(args: { inputs: { x?: TensorInfo; g?: TensorInfo; m?: TensorInfo; v?: TensorInfo }; backend: unknown; attrs?: NamedAttrMap }): TensorInfo {
  const { x, g, m, v } = args.inputs;
  if (x === undefined || g === undefined || m === undefined || v === undefined) throw new Error(`${ADAM_KERNEL} (wasm): inputs x, g, m and v are required`);
  if (bound === undefined || bound.backend !== args.backend) throw new Error(`${ADAM_KERNEL} (wasm): the module is not bound to this backend's memory`);
  const size = x.shape.reduce((a, b) => a * b, 1);
  for (const [name, t] of Object.entries({ x, g, m, v })) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.dtype !== 'float32' || n !== size) throw new Error(`${ADAM_KERNEL} (wasm): ${name} should hold ${size} float32 values; it holds ${n} ${t.dtype}`);
  }
  const { backend } = bound;
  const out = backend.makeOutput([...x.shape], 'float32');
  // Offsets after the allocation: no allocation happens between here and the call.
  const offset = (t: TensorInfo): number => {
    const at = backend.dataIdMap.get(t.dataId)?.memoryOffset;
    if (at == null) throw new Error(`${ADAM_KERNEL} (wasm): a tensor has no data on the wasm heap (disposed?)`);
    return at;
  };
  const k = args.attrs as unknown as AdamAttrs;
  bound.adam(offset(x), offset(g), offset(m), offset(v), offset(out), size,
    k.beta1, k.beta2, k.oneMinusBeta1, k.oneMinusBeta2, k.correction1, k.correction2, k.epsilon, k.step);
  return out;
}

export const wasmAdam: KernelConfig = {
  kernelName: ADAM_KERNEL,
  backendName: 'wasm',
  setupFunc: setup as KernelConfig['setupFunc'],
  kernelFunc: adam as unknown as KernelConfig['kernelFunc'],
};
