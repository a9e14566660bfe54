/**
 * Conv2DBackpropInput for the wasm backend, as a forward convolution where it can be one.
 *
 * tfjs 4.22's C++ Conv2DBackpropInput is a scalar loop. With stride 1 the input gradient is the
 * "full" convolution of dY with the filter turned by 180° and its channels swapped:
 *   dX[b, u, v, c] = Σ_{i, j, o} dY[b, u + top − i, v + left − j, o] · W[i, j, c, o]
 *                  = conv2d(dY padded by (FH − 1 − top, FH − 1 − bottom) × (FW − 1 − left, FW − 1 − right),
 *                           W'[i, j, o, c] = W[FH − 1 − i, FW − 1 − j, c, o])[b, u, v, c],
 * which the backend's own Conv2D runs through XNNPACK's SIMD indirect GEMM: on the CNN's second
 * layer at batch 128, 190 → 34 ms per call on the 2-core benchmark machine (the whole CNN step:
 * bench/RESULTS.md, training). W' is small (FH·FW·C·O values) and is built in JS. Anything
 * else — strides > 1, NCHW, a padding wider than the filter — goes to the backend's own C++
 * kernel, bound here exactly as tfjs-backend-wasm binds it.
 * test/client/kernels-conv2d-backprop-input.test.ts compares both paths with the cpu backend.
 */
import { backend_util, Conv2D, Conv2DBackpropInput, util, type DataId, type KernelConfig, type NamedAttrMap, type TensorInfo } from '@tensorflow/tfjs';
import { readFloat32, runWasmKernel, type WasmBackendLike } from './wasm-heap.js';

type Shape4 = [number, number, number, number];

interface Attrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape: Shape4;
}

interface BackendWasm extends WasmBackendLike {
  wasm: { cwrap(name: string, returns: null, args: string[]): (...args: number[]) => void };
  dataIdMap: { get(dataId: DataId): { id: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32', memoryOffset?: undefined, values?: Float32Array): TensorInfo;
}

let cppConv2DBackpropInput: ((...args: number[]) => void) | undefined;

/** Binds the backend's C++ kernel for the cases the forward convolution does not cover. */
function setup(backend: unknown): void {
  cppConv2DBackpropInput = (backend as BackendWasm).wasm.cwrap(Conv2DBackpropInput, null, new Array<string>(27).fill('number'));
}

/** W [FH, FW, C, O] → W' [FH, FW, O, C] with W'[i, j, o, c] = W[FH − 1 − i, FW − 1 − j, c, o]. */
export function turnedFilter(w: Float32Array, [fh, fw, c, o]: Shape4): Float32Array {
  const out = new Float32Array(w.length);
  for (let i = 0; i < fh; i++) {
    for (let j = 0; j < fw; j++) {
      const from = ((fh - 1 - i) * fw + (fw - 1 - j)) * c * o;
      const to = (i * fw + j) * o * c;
      for (let ci = 0; ci < c; ci++) for (let oi = 0; oi < o; oi++) out[to + oi * c + ci] = w[from + ci * o + oi]!;
    }
  }
  return out;
}

function viaForwardConv(dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo, backend: BackendWasm): TensorInfo | undefined {
  const { filterHeight: fh, filterWidth: fw } = info;
  const { top, bottom, left, right } = info.padInfo;
  const pads = [fh - 1 - top, fh - 1 - bottom, fw - 1 - left, fw - 1 - right];
  if (pads.some((p) => p < 0)) return undefined;
  const turned = backend.makeOutput([fh, fw, info.outChannels, info.inChannels], 'float32', undefined, turnedFilter(readFloat32(backend, filter), filter.shape as Shape4));
  try {
    const dx = runWasmKernel(
      Conv2D,
      { x: dy, filter: turned },
      { strides: [1, 1], pad: [[0, 0], [pads[0], pads[1]], [pads[2], pads[3]], [0, 0]], dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined },
      backend,
    );
    if (!util.arraysEqual(dx.shape, info.inShape)) {
      backend.disposeData(dx.dataId);
      return undefined;
    }
    return dx;
  } finally {
    backend.disposeData(turned.dataId);
  }
}

/** The backend's own C++ kernel, called exactly as tfjs-backend-wasm 4.22's kernels/Conv2DBackpropInput.js calls it. */
function viaCpp(dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo, backend: BackendWasm): TensorInfo {
  if (cppConv2DBackpropInput === undefined) throw new Error('Conv2DBackpropInput (wasm): the kernel was not set up; select the wasm backend first');
  const channelsLast = info.dataFormat === 'channelsLast';
  const dx = util.computeStrides(info.inShape);
  const dyStrides = util.computeStrides(dy.shape);
  const [f0, f1, f2] = util.computeStrides(filter.shape) as [number, number, number];
  const out = backend.makeOutput(info.inShape, 'float32');
  const id = (t: TensorInfo) => backend.dataIdMap.get(t.dataId)!.id;
  cppConv2DBackpropInput(
    id(dy), id(filter), info.batchSize, info.filterHeight, info.filterWidth, info.inHeight, info.inWidth, info.inChannels,
    info.outHeight, info.outWidth, info.outChannels, info.strideHeight, info.strideWidth,
    info.filterHeight - 1 - info.padInfo.top, info.filterWidth - 1 - info.padInfo.left, f0, f1, f2,
    dx[0]!, channelsLast ? dx[1]! : dx[2]!, channelsLast ? dx[2]! : 1, channelsLast ? 1 : dx[1]!,
    dyStrides[0]!, channelsLast ? dyStrides[1]! : dyStrides[2]!, channelsLast ? dyStrides[2]! : 1, channelsLast ? 1 : dyStrides[1]!,
    id(out),
  );
  return out;
}

function conv2dBackpropInputWasm(args: { inputs: { dy?: TensorInfo; filter?: TensorInfo }; backend: unknown; attrs?: NamedAttrMap }): TensorInfo {
  const { dy, filter } = args.inputs;
  if (dy === undefined || filter === undefined) throw new Error('Conv2DBackpropInput (wasm): inputs dy and filter are required');
  const attrs = args.attrs as unknown as Attrs;
  const backend = args.backend as BackendWasm;
  const info = backend_util.computeConv2DInfo(
    attrs.inputShape, filter.shape as Shape4, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false,
    backend_util.convertConv2DDataFormat(attrs.dataFormat ?? 'NHWC'),
  );
  if (info.strideHeight === 1 && info.strideWidth === 1 && info.dataFormat === 'channelsLast') {
    const dx = viaForwardConv(dy, filter, info, backend);
    if (dx !== undefined) return dx;
  }
  return viaCpp(dy, filter, info, backend);
}

export const wasmConv2DBackpropInput: KernelConfig = {
  kernelName: Conv2DBackpropInput,
  backendName: 'wasm',
  setupFunc: setup as KernelConfig['setupFunc'],
  kernelFunc: conv2dBackpropInputWasm as unknown as KernelConfig['kernelFunc'],
};
