/**
 * The vertical slice's Conv2DBackpropFilter for wasm (commit ca1fed3, before the performance
 * work), kept here only so that the training benchmark can measure the current kernel against
 * it in the same run. Stride 1 ran on the C++ Conv3DBackpropFilterV2 over depth-1 views; other
 * strides on the JS direct sum, which the current kernel still uses.
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
import { conv2dFilterGradient } from '../client/kernels/wasm-conv2d-backprop-filter.js';
import { readFloat32, type WasmBackendLike } from '../client/kernels/wasm-heap.js';

type Shape4 = [number, number, number, number];

interface Attrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: Shape4;
}

function legacyFilterGradient(args: { inputs: { x?: TensorInfo; dy?: TensorInfo }; backend: unknown; attrs?: NamedAttrMap }): TensorInfo {
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const attrs = args.attrs as unknown as Attrs;
  const strides = typeof attrs.strides === 'number' ? [attrs.strides, attrs.strides] : attrs.strides;
  const plainPad = attrs.pad === 'same' || attrs.pad === 'valid' || (typeof attrs.pad === 'number' && attrs.dimRoundingMode === undefined);
  const conv3d = getKernel(Conv3DBackpropFilterV2, 'wasm');
  if (strides[0] === 1 && strides[1] === 1 && plainPad && conv3d !== undefined) {
    const depthOne = (t: TensorInfo): TensorInfo => ({ dataId: t.dataId, dtype: t.dtype, shape: [t.shape[0]!, 1, ...t.shape.slice(1)] });
    const result = conv3d.kernelFunc({
      inputs: { x: depthOne(x), dy: depthOne(dy) },
      backend: args.backend as never,
      attrs: { strides: [1, 1, 1], pad: attrs.pad, filterShape: [1, ...attrs.filterShape] } as unknown as NamedAttrMap,
    }) as TensorInfo;
    return { dataId: result.dataId, dtype: result.dtype, shape: [...attrs.filterShape] };
  }
  const backend = args.backend as WasmBackendLike;
  const info = backend_util.computeConv2DInfo(x.shape as Shape4, attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  return backend.makeOutput([...attrs.filterShape], 'float32', undefined, conv2dFilterGradient(readFloat32(backend, x), readFloat32(backend, dy), info));
}

export const legacyConv2DBackpropFilter: KernelConfig = {
  kernelName: Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: legacyFilterGradient as unknown as KernelConfig['kernelFunc'],
};
