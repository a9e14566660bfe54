/** The wasm-backend calls our kernels need, typed narrowly (the backend's class is not exported). */
import { getKernel, type DataId, type NamedAttrMap, type TensorInfo } from '@tensorflow/tfjs';

export interface WasmBackendLike {
  /** A copy of a tensor's values out of the wasm heap. */
  readSync(dataId: DataId): ArrayLike<number>;
  /** Allocates an output tensor on the wasm heap and writes values into it. */
  makeOutput(shape: number[], dtype: 'float32', memoryOffset: undefined, values: Float32Array): TensorInfo;
  /** Frees a tensor's heap memory (or drops one reference to it). */
  disposeData(dataId: DataId): boolean;
}

export function readFloat32(backend: WasmBackendLike, t: TensorInfo): Float32Array {
  const values = backend.readSync(t.dataId);
  return values instanceof Float32Array ? values : Float32Array.from(values);
}

/** Runs one of the backend's own wasm kernels (Transpose, Conv2D, …) on tensors already on its heap. */
export function runWasmKernel(name: string, inputs: Record<string, TensorInfo>, attrs: Record<string, unknown>, backend: WasmBackendLike): TensorInfo {
  const kernel = getKernel(name, 'wasm');
  if (kernel === undefined) throw new Error(`the wasm backend has no ${name} kernel registered`);
  return kernel.kernelFunc({ inputs, backend: backend as never, attrs: attrs as NamedAttrMap }) as TensorInfo;
}
