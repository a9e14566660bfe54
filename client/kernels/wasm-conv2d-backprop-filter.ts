/**
 * Conv2DBackpropFilter for the wasm backend, which tfjs 4.22 does not ship: without it no
 * convolutional model can train on wasm ("Kernel 'Conv2DBackpropFilter' not registered").
 *
 * Stride 1 (every convolution of client/models.ts): the filter gradient is itself a
 * convolution, with batch and channels trading places:
 *   dW[i, j, c, o] = Σ_{b, y, x} X[b, y + i − top, x + j − left, c] · dY[b, y, x, o]
 *                  = conv2d(X as [C, H, W, B], dY as [OH, OW, B, O])[c, i, j, o]
 * with the forward pass's padding around H and W. So we transpose X and dY with the wasm
 * Transpose kernel, run the backend's own Conv2D (XNNPACK's SIMD indirect GEMM) and transpose its
 * [C, FH, FW, O] result to [FH, FW, C, O]. This replaced a depth-1 view onto the C++
 * Conv3DBackpropFilterV2, a scalar loop: on the CNN's two layers at batch 128, 170 → 44 ms and
 * 636 → 26 ms per call on the 2-core benchmark machine (the whole CNN step: bench/RESULTS.md,
 * training). The sums run in XNNPACK's order, so float32 rounding differs in the last bits;
 * test/client/backend.test.ts and kernels-conv2d-backprop-filter.test.ts compare with the cpu
 * backend.
 *
 * Other strides (that 3-D C++ kernel is also wrong for strides > 1 in tfjs 4.22): we compute
 *   dW[i, j, c, o] = Σ_{b, y, x} X[b, y·sh + i − top, x·sw + j − left, c] · dY[b, y, x, o]
 * directly in JS.
 */
import { backend_util, Conv2D, Conv2DBackpropFilter, Transpose, type KernelConfig, type NamedAttrMap, type TensorInfo } from '@tensorflow/tfjs';
import { readFloat32, runWasmKernel, type WasmBackendLike } from './wasm-heap.js';

type Pad = 'valid' | 'same' | number | backend_util.ExplicitPadding;
type Shape4 = [number, number, number, number];

interface Attrs {
  strides: number | [number, number];
  pad: Pad;
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: Shape4;
}

/** Stride 1: the gradient as a forward convolution of the transposed operands (see the top of the file). */
function viaForwardConv(x: TensorInfo, dy: TensorInfo, attrs: Attrs, backend: WasmBackendLike): TensorInfo | undefined {
  const info = backend_util.computeConv2DInfo(x.shape as Shape4, attrs.filterShape, 1, 1, attrs.pad, attrs.dimRoundingMode);
  const { top, bottom, left, right } = info.padInfo;
  // The swapped convolution's output is (H + top + bottom − OH + 1) × (W + left + right − OW + 1) = FH × FW.
  if (info.inHeight + top + bottom - info.outHeight + 1 !== info.filterHeight || info.inWidth + left + right - info.outWidth + 1 !== info.filterWidth) {
    return undefined;
  }
  const temporaries: TensorInfo[] = [];
  try {
    const xT = runWasmKernel(Transpose, { x }, { perm: [3, 1, 2, 0] }, backend); // [C, H, W, B]
    temporaries.push(xT);
    const dyT = runWasmKernel(Transpose, { x: dy }, { perm: [1, 2, 0, 3] }, backend); // [OH, OW, B, O]
    temporaries.push(dyT);
    const swapped = runWasmKernel(
      Conv2D,
      { x: xT, filter: dyT },
      { strides: [1, 1], pad: [[0, 0], [top, bottom], [left, right], [0, 0]], dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined },
      backend,
    ); // [C, FH, FW, O]
    temporaries.push(swapped);
    const dw = runWasmKernel(Transpose, { x: swapped }, { perm: [1, 2, 0, 3] }, backend); // [FH, FW, C, O]
    return { dataId: dw.dataId, dtype: dw.dtype, shape: [...attrs.filterShape] };
  } finally {
    for (const t of temporaries) backend.disposeData(t.dataId);
  }
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
  const backend = args.backend as WasmBackendLike;
  if (strides[0] === 1 && strides[1] === 1) {
    const native = viaForwardConv(x, dy, attrs, backend);
    if (native !== undefined) return native;
  }
  const info = backend_util.computeConv2DInfo(x.shape as Shape4, attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  const dw = conv2dFilterGradient(readFloat32(backend, x), readFloat32(backend, dy), info);
  return backend.makeOutput([...attrs.filterShape], 'float32', undefined, dw);
}

export const wasmConv2DBackpropFilter: KernelConfig = {
  kernelName: Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2dBackpropFilterWasm as unknown as KernelConfig['kernelFunc'],
};
