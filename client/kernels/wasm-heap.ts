/** The two wasm-backend calls our JS kernels need, typed narrowly (the backend's class is not exported). */
import type { DataId, TensorInfo } from '@tensorflow/tfjs';

export interface WasmBackendLike {
  /** A copy of a tensor's values out of the wasm heap. */
  readSync(dataId: DataId): ArrayLike<number>;
  /** Allocates an output tensor on the wasm heap and writes values into it. */
  makeOutput(shape: number[], dtype: 'float32', memoryOffset: undefined, values: Float32Array): TensorInfo;
}

export function readFloat32(backend: WasmBackendLike, t: TensorInfo): Float32Array {
  const values = backend.readSync(t.dataId);
  return values instanceof Float32Array ? values : Float32Array.from(values);
}
