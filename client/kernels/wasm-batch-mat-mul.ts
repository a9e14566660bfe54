/**
 * BatchMatMul for the wasm backend, with transposed operands transposed explicitly first.
 *
 * tfjs 4.22's C++ BatchMatMul is fast only for plain A·B (it hands that case to XNNPACK); with
 * transposeA or transposeB it falls back to a scalar loop some 10–50× slower (on the 2-core
 * benchmark machine: 1024³ at 17–23 GFLOP/s plain, 0.3–1.7 GFLOP/s transposed; the MLP's own
 * products are in bench/RESULTS.md, training). Every backward pass of a dense layer asks for
 * exactly those cases, dX = dY·Wᵀ (transposeB) and dW = Xᵀ·dY (transposeA), so a stock MLP
 * trains at a fraction of the backend's matmul speed. Transposing an operand
 * costs one pass over its m·k values; the product costs m·k·n multiply-adds, so we transpose
 * with the wasm Transpose kernel and always call the C++ kernel in its fast, untransposed form.
 * Results are the same products, summed in XNNPACK's order instead of the loop's (float32
 * rounding may differ in the last bits; test/client/kernels-batch-mat-mul.test.ts compares
 * with the cpu backend).
 */
import {
  BatchMatMul,
  broadcast_util,
  getKernel,
  Transpose,
  util,
  type DataId,
  type KernelConfig,
  type NamedAttrMap,
  type TensorInfo,
} from '@tensorflow/tfjs';

/** The parts of tfjs-backend-wasm's BackendWasm this kernel uses (the class is not exported). */
interface BackendWasm {
  wasm: { cwrap(name: string, returns: null, args: string[]): (...args: unknown[]) => void };
  dataIdMap: { get(dataId: DataId): { id: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  disposeData(dataId: DataId): boolean;
}

type CppBatchMatMul = (
  aId: number, aShape: Uint8Array, aRank: number,
  bId: number, bShape: Uint8Array, bRank: number,
  transposeA: boolean, transposeB: boolean, outId: number,
) => void;

let cppBatchMatMul: CppBatchMatMul | undefined;

/** Binds the backend's C++ BatchMatMul; tfjs calls this whenever the wasm backend is set. */
function setup(backend: unknown): void {
  cppBatchMatMul = (backend as BackendWasm).wasm.cwrap(BatchMatMul, null, [
    'number', 'array', 'number', // a: id, shape, rank
    'number', 'array', 'number', // b: id, shape, rank
    'number', 'number', // transposeA, transposeB
    'number', // out id
  ]) as unknown as CppBatchMatMul;
}

const shapeBytes = (shape: readonly number[]) => new Uint8Array(new Int32Array(shape).buffer);

function dataIndex(backend: BackendWasm, t: TensorInfo): number {
  const entry = backend.dataIdMap.get(t.dataId);
  if (entry === undefined) throw new Error('BatchMatMul (wasm): an input tensor has no data on the wasm heap (disposed?)');
  return entry.id;
}

/** [batch, r, c] → [batch, c, r] with the wasm Transpose kernel; the caller disposes the result. */
function swapLastTwo(t: TensorInfo, backend: BackendWasm): TensorInfo {
  const transpose = getKernel(Transpose, 'wasm');
  if (transpose === undefined) throw new Error('BatchMatMul (wasm): the wasm Transpose kernel is not registered');
  return transpose.kernelFunc({ inputs: { x: t }, backend: backend as never, attrs: { perm: [0, 2, 1] } as unknown as NamedAttrMap }) as TensorInfo;
}

function batchMatMul(args: { inputs: { a?: TensorInfo; b?: TensorInfo }; backend: unknown; attrs?: NamedAttrMap }): TensorInfo {
  const { a, b } = args.inputs;
  if (a === undefined || b === undefined) throw new Error('BatchMatMul (wasm): inputs a and b are required');
  const { transposeA, transposeB } = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
  const backend = args.backend as BackendWasm;
  if (cppBatchMatMul === undefined) throw new Error('BatchMatMul (wasm): the kernel was not set up; select the wasm backend first');
  if (a.dtype !== 'float32' || b.dtype !== 'float32') {
    throw new Error(`BatchMatMul (wasm): only float32 is supported; got ${a.dtype} and ${b.dtype}`);
  }
  // Shapes exactly as the stock kernel computes them (tfjs-backend-wasm/src/kernels/BatchMatMul.ts).
  const aRank = a.shape.length;
  const bRank = b.shape.length;
  const innerA = transposeA ? a.shape[aRank - 2]! : a.shape[aRank - 1]!;
  const innerB = transposeB ? b.shape[bRank - 1]! : b.shape[bRank - 2]!;
  const outerA = transposeA ? a.shape[aRank - 1]! : a.shape[aRank - 2]!;
  const outerB = transposeB ? b.shape[bRank - 2]! : b.shape[bRank - 1]!;
  const batchA = util.sizeFromShape(a.shape.slice(0, -2));
  const batchB = util.sizeFromShape(b.shape.slice(0, -2));
  const outShape = broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)).concat([outerA, outerB]);
  util.assert(
    innerA === innerB,
    () => `Error in matMul: inner shapes (${innerA}) and (${innerB}) of Tensors with shapes ${a.shape} and ${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
  );

  // Rank-3 views of the same data (no copy), then the transposes that make the product A·B.
  const temporaries: TensorInfo[] = [];
  let a3: TensorInfo = { dataId: a.dataId, dtype: a.dtype, shape: transposeA ? [batchA, innerA, outerA] : [batchA, outerA, innerA] };
  let b3: TensorInfo = { dataId: b.dataId, dtype: b.dtype, shape: transposeB ? [batchB, outerB, innerB] : [batchB, innerB, outerB] };
  try {
    if (transposeA) temporaries.push((a3 = swapLastTwo(a3, backend)));
    if (transposeB) temporaries.push((b3 = swapLastTwo(b3, backend)));
    const out = backend.makeOutput([Math.max(batchA, batchB), outerA, outerB], 'float32');
    cppBatchMatMul(
      dataIndex(backend, a3), shapeBytes(a3.shape), 3,
      dataIndex(backend, b3), shapeBytes(b3.shape), 3,
      false, false, dataIndex(backend, out),
    );
    out.shape = outShape;
    return out;
  } finally {
    for (const t of temporaries) backend.disposeData(t.dataId);
  }
}

export const wasmBatchMatMul: KernelConfig = {
  kernelName: BatchMatMul,
  backendName: 'wasm',
  setupFunc: setup as KernelConfig['setupFunc'],
  kernelFunc: batchMatMul as unknown as KernelConfig['kernelFunc'],
};
