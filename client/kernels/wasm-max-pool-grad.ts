/**
 * MaxPoolGrad for the wasm backend. tfjs 4.22's C++ kernel drops the gradient of some pooling
 * windows (on a [2,8,8,3] input, 2×2 windows, 90 of 96 windows receive their gradient; the cpu
 * backend, which we match, routes every one), so a max-pooling CNN would train on wrong
 * gradients. We replace it with the direct rule: each window's dY goes to the first position
 * of its maximum, as the cpu backend does.
 */
import { backend_util, MaxPoolGrad, type KernelConfig, type NamedAttrMap, type TensorInfo } from '@tensorflow/tfjs';
import { readFloat32, type WasmBackendLike } from './wasm-heap.js';

interface Attrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

export function maxPoolGradient(x: Float32Array, dy: Float32Array, info: backend_util.Conv2DInfo): Float32Array {
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
  const { effectiveFilterHeight: fh, effectiveFilterWidth: fw, strideHeight, strideWidth } = info;
  const { dilationHeight, dilationWidth } = info;
  const { top, left } = info.padInfo;
  const dx = new Float32Array(x.length);
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        for (let c = 0; c < channels; c++) {
          let best = -Infinity;
          let at = -1;
          for (let i = 0; i < fh; i += dilationHeight) {
            const iy = oy * strideHeight - top + i;
            if (iy < 0 || iy >= inHeight) continue;
            for (let j = 0; j < fw; j += dilationWidth) {
              const ix = ox * strideWidth - left + j;
              if (ix < 0 || ix >= inWidth) continue;
              const index = ((b * inHeight + iy) * inWidth + ix) * channels + c;
              if (x[index]! > best) {
                best = x[index]!;
                at = index;
              }
            }
          }
          if (at >= 0) dx[at]! += dy[((b * outHeight + oy) * outWidth + ox) * channels + c]!;
        }
      }
    }
  }
  return dx;
}

function maxPoolGradWasm(args: { inputs: { dy?: TensorInfo; input?: TensorInfo }; backend: unknown; attrs?: NamedAttrMap }): TensorInfo {
  const { dy, input } = args.inputs;
  if (dy === undefined || input === undefined) throw new Error('MaxPoolGrad (wasm): inputs dy and input are required');
  const attrs = args.attrs as unknown as Attrs;
  const backend = args.backend as WasmBackendLike;
  const info = backend_util.computePool2DInfo(
    input.shape as [number, number, number, number], attrs.filterSize, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode,
  );
  const dx = maxPoolGradient(readFloat32(backend, input), readFloat32(backend, dy), info);
  return backend.makeOutput([...input.shape], 'float32', undefined, dx);
}

export const wasmMaxPoolGrad: KernelConfig = {
  kernelName: MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: maxPoolGradWasm as unknown as KernelConfig['kernelFunc'],
};
