/**
 * Conv2DBackpropFilter for the wasm backend, which tfjs 4.22 does not ship: without it no
 * convolutional model can train on wasm ("Kernel 'Conv2DBackpropFilter' not registered").
 *
 * Stride 1: the wasm backend ships the 3-D filter gradient (Conv3DBackpropFilterV2, in C++). A
 * 2-D convolution over NHWC is the 3-D one over N·1·H·W·C with a filter of depth 1, and the two
 * layouts are the same bytes, so we run the 3-D kernel on depth-1 views of x and dy (same
 * dataId, new shape: no copy) and view its [1, kh, kw, ci, co] result as [kh, kw, ci, co].
 *
 * Other strides: that C++ kernel is wrong for strides > 1 in tfjs 4.22 (so is its input
 * gradient; test/client/backend.test.ts compares against the cpu backend), so we compute
 *   dW[i, j, c, o] = Σ_{b, y, x} X[b, y·sh + i − top, x·sw + j − left, c] · dY[b, y, x, o]
 * directly in JS. Explicit padding also takes this path.
 */
import {
  backend_util,
  Conv2DBackpropFilter,
  Conv3DBackpropFilterV2,
  getKernel,
  type KernelConfig,
  type NamedAttrMap,
  type TensorInfo,
} from '@tensorflow/tfjs';
import { readFloat32, type WasmBackendLike } from './wasm-heap.js';

type Pad = 'valid' | 'same' | number | backend_util.ExplicitPadding;
type Shape4 = [number, number, number, number];

interface Attrs {
  strides: number | [number, number];
  pad: Pad;
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: Shape4;
}

function viaConv3d(x: TensorInfo, dy: TensorInfo, attrs: Attrs, backend: unknown): TensorInfo | undefined {
  const conv3d = getKernel(Conv3DBackpropFilterV2, 'wasm');
  if (conv3d === undefined) return undefined;
  const depthOne = (t: TensorInfo): TensorInfo => ({ dataId: t.dataId, dtype: t.dtype, shape: [t.shape[0]!, 1, ...t.shape.slice(1)] });
  const result = conv3d.kernelFunc({
    inputs: { x: depthOne(x), dy: depthOne(dy) },
    backend: backend as never,
    attrs: { strides: [1, 1, 1], pad: attrs.pad, filterShape: [1, ...attrs.filterShape] } as unknown as NamedAttrMap,
  }) as TensorInfo;
  return { dataId: result.dataId, dtype: result.dtype, shape: [...attrs.filterShape] };
}

/** The direct sum, for any stride and padding. Loops ordered so the innermost runs over contiguous channels. */
export function conv2dFilterGradient(x: Float32Array, dy: Float32Array, info: backend_util.Conv2DInfo): Float32Array {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const { top, left } = info.padInfo;
  const dw = new Float32Array(filterHeight * filterWidth * inChannels * outChannels);
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        const dyBase = ((b * outHeight + oy) * outWidth + ox) * outChannels;
        for (let i = 0; i < filterHeight; i++) {
          const iy = oy * strideHeight + i - top;
          if (iy < 0 || iy >= inHeight) continue;
          for (let j = 0; j < filterWidth; j++) {
            const ix = ox * strideWidth + j - left;
            if (ix < 0 || ix >= inWidth) continue;
            const xBase = ((b * inHeight + iy) * inWidth + ix) * inChannels;
            const wBase = (i * filterWidth + j) * inChannels * outChannels;
            for (let c = 0; c < inChannels; c++) {
              const xv = x[xBase + c]!;
              if (xv === 0) continue;
              const row = wBase + c * outChannels;
              for (let o = 0; o < outChannels; o++) dw[row + o]! += xv * dy[dyBase + o]!;
            }
          }
        }
      }
    }
  }
  return dw;
}

function conv2dBackpropFilterWasm(args: { inputs: { x?: TensorInfo; dy?: TensorInfo }; backend: unknown; attrs?: NamedAttrMap }): TensorInfo {
  const { x, dy } = args.inputs;
  const attrs = args.attrs as unknown as Attrs;
  if (x === undefined || dy === undefined) throw new Error('Conv2DBackpropFilter (wasm): inputs x and dy are required');
  if (attrs.dataFormat === 'NCHW') {
    throw new Error('Conv2DBackpropFilter (wasm): only NHWC is supported; build the model with dataFormat channelsLast');
  }
  const strides = typeof attrs.strides === 'number' ? [attrs.strides, attrs.strides] : attrs.strides;
  const plainPad = attrs.pad === 'same' || attrs.pad === 'valid' || (typeof attrs.pad === 'number' && attrs.dimRoundingMode === undefined);
  if (strides[0] === 1 && strides[1] === 1 && plainPad) {
    const native = viaConv3d(x, dy, attrs, args.backend);
    if (native !== undefined) return native;
  }
  const backend = args.backend as WasmBackendLike;
  const info = backend_util.computeConv2DInfo(x.shape as Shape4, attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  const dw = conv2dFilterGradient(readFloat32(backend, x), readFloat32(backend, dy), info);
  return backend.makeOutput([...attrs.filterShape], 'float32', undefined, dw);
}

export const wasmConv2DBackpropFilter: KernelConfig = {
  kernelName: Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2dBackpropFilterWasm as unknown as KernelConfig['kernelFunc'],
};
