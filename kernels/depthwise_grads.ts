/**
 * Gradients of the depthwise convolution, which the wasm backend lacks
 * (tfjs's `wasm` has the forward kernel only). Written as direct loops over
 * the wasm heap, NHWC with the channels (and their multipliers) innermost:
 * a depthwise layer does 9 multiply-adds a channel a pixel. The input's
 * gradient at stride 1 is itself a depthwise convolution, of the output's
 * gradient with the filter turned by 180°, and goes to the backend's own
 * (XNNPACK) forward kernel: several times faster than the loops.
 */
import { type BackendWasm, tf } from "../deps_tfjs.ts";
import { heap, heapIndex, sizeOf, type TensorInfo, type WasmKernelFunc } from "./wasm_heap.ts";

export interface DepthwiseAttrs {
  strides: number | [number, number];
  dilations: number | [number, number];
  pad: "valid" | "same" | number;
  dimRoundingMode?: "floor" | "round" | "ceil";
}

type Shape4 = [number, number, number, number];

/** The depthwise convolution's geometry as tfjs computes it (NHWC). */
export function depthwiseInfo(xShape: Shape4, filterShape: Shape4, attrs: DepthwiseAttrs) {
  return tf.backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    true,
  );
}

/**
 * Visits every (output cell, filter tap) pair whose input pixel lies inside
 * the image, with the heap offsets of the output cell's first channel, the
 * input pixel's first channel and the tap's first filter value.
 */
function forEachTap(
  info: ReturnType<typeof depthwiseInfo>,
  visit: (dyAt: number, xAt: number, wAt: number) => void,
): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const { dilationHeight, dilationWidth } = info;
  const top = info.padInfo.top, left = info.padInfo.left;
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let fy = 0; fy < filterHeight; fy++) {
        const iy = oy * strideHeight - top + fy * dilationHeight;
        if (iy < 0 || iy >= inHeight) continue;
        for (let ox = 0; ox < outWidth; ox++) {
          const dyAt = ((b * outHeight + oy) * outWidth + ox) * outChannels;
          for (let fx = 0; fx < filterWidth; fx++) {
            const ix = ox * strideWidth - left + fx * dilationWidth;
            if (ix < 0 || ix >= inWidth) continue;
            visit(
              dyAt,
              ((b * inHeight + iy) * inWidth + ix) * inChannels,
              (fy * filterWidth + fx) * outChannels,
            );
          }
        }
      }
    }
  }
}

type BackpropInputArgs = {
  inputs: { dy: TensorInfo; filter: TensorInfo };
  backend: BackendWasm;
  attrs: DepthwiseAttrs & { inputShape: Shape4 };
};

/** The input's gradient: by the forward kernel where the stride is 1, else by loops. */
export function depthwiseBackpropInput(forward: WasmKernelFunc) {
  return (args: BackpropInputArgs): TensorInfo => {
    const { inputs: { filter }, attrs } = args;
    const info = depthwiseInfo(attrs.inputShape, filter.shape as Shape4, attrs);
    const plain = info.strideHeight === 1 && info.strideWidth === 1 &&
      info.dilationHeight === 1 && info.dilationWidth === 1 &&
      info.outChannels === info.inChannels;
    return plain ? byFlippedFilter(forward, args, info) : byLoops(args, info);
  };
}

/** dx = depthwise(dy, filter turned by 180°), padded so that every tap lands as in the forward pass. */
function byFlippedFilter(
  forward: WasmKernelFunc,
  { inputs: { dy, filter }, backend, attrs }: BackpropInputArgs,
  info: ReturnType<typeof depthwiseInfo>,
): TensorInfo {
  const { filterHeight: fh, filterWidth: fw, inChannels: channels } = info;
  const flipped = backend.makeOutput(filter.shape, "float32");
  const mem = heap(backend);
  const from = heapIndex(backend, filter);
  const to = heapIndex(backend, flipped);
  for (let y = 0; y < fh; y++) {
    for (let x = 0; x < fw; x++) {
      const source = from + ((fh - 1 - y) * fw + (fw - 1 - x)) * channels;
      mem.copyWithin(to + (y * fw + x) * channels, source, source + channels);
    }
  }
  const { top, bottom, left, right } = info.padInfo;
  const dx = forward({
    inputs: { x: dy, filter: flipped },
    backend,
    attrs: {
      strides: 1,
      dilations: 1,
      pad: [[0, 0], [fh - 1 - top, fh - 1 - bottom], [fw - 1 - left, fw - 1 - right], [0, 0]],
      dataFormat: "NHWC",
      dimRoundingMode: undefined,
    },
  });
  backend.disposeData(flipped.dataId);
  if (sizeOf(dx.shape) !== sizeOf(attrs.inputShape)) {
    throw new Error("DepthwiseConv2dNativeBackpropInput produced a gradient of the wrong shape.");
  }
  return dx;
}

function byLoops(
  { inputs: { dy, filter }, backend, attrs }: BackpropInputArgs,
  info: ReturnType<typeof depthwiseInfo>,
): TensorInfo {
  const channels = info.inChannels;
  const multiplier = info.outChannels / channels;
  const dx = backend.makeOutput(attrs.inputShape, "float32");
  const mem = heap(backend);
  const dxBase = heapIndex(backend, dx);
  const dyBase = heapIndex(backend, dy);
  const wBase = heapIndex(backend, filter);
  mem.fill(0, dxBase, dxBase + sizeOf(attrs.inputShape));
  forEachTap(info, (dyAt, xAt, wAt) => {
    const d = dyBase + dyAt, x = dxBase + xAt, w = wBase + wAt;
    if (multiplier === 1) {
      for (let c = 0; c < channels; c++) mem[x + c] += mem[d + c] * mem[w + c];
      return;
    }
    for (let c = 0, o = 0; c < channels; c++) {
      let sum = 0;
      for (let m = 0; m < multiplier; m++, o++) sum += mem[d + o] * mem[w + o];
      mem[x + c] += sum;
    }
  });
  return dx;
}

export function depthwiseBackpropFilter(args: {
  inputs: { x: TensorInfo; dy: TensorInfo };
  backend: BackendWasm;
  attrs: DepthwiseAttrs & { filterShape: Shape4 };
}): TensorInfo {
  const { inputs: { x, dy }, backend, attrs } = args;
  const info = depthwiseInfo(x.shape as Shape4, attrs.filterShape, attrs);
  const channels = info.inChannels;
  const multiplier = info.outChannels / channels;
  const dw = backend.makeOutput(attrs.filterShape, "float32");
  const mem = heap(backend);
  const dwBase = heapIndex(backend, dw);
  const dyBase = heapIndex(backend, dy);
  const xBase = heapIndex(backend, x);
  if (multiplier !== 1) {
    mem.fill(0, dwBase, dwBase + sizeOf(attrs.filterShape));
    forEachTap(info, (dyAt, xAt, wAt) => {
      const d = dyBase + dyAt, i = xBase + xAt, w = dwBase + wAt;
      for (let c = 0, o = 0; c < channels; c++) {
        const value = mem[i + c];
        for (let m = 0; m < multiplier; m++, o++) mem[w + o] += mem[d + o] * value;
      }
    });
    return dw;
  }
  // One filter tap at a time, its channels' sums kept in a small array:
  // the tap's gradient is the correlation of the shifted input with dy.
  const { batchSize, inHeight, inWidth, outHeight, outWidth } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const { dilationHeight, dilationWidth } = info;
  const top = info.padInfo.top, left = info.padInfo.left;
  const sums = new Float32Array(channels);
  for (let fy = 0; fy < filterHeight; fy++) {
    for (let fx = 0; fx < filterWidth; fx++) {
      sums.fill(0);
      for (let b = 0; b < batchSize; b++) {
        for (let oy = 0; oy < outHeight; oy++) {
          const iy = oy * strideHeight - top + fy * dilationHeight;
          if (iy < 0 || iy >= inHeight) continue;
          for (let ox = 0; ox < outWidth; ox++) {
            const ix = ox * strideWidth - left + fx * dilationWidth;
            if (ix < 0 || ix >= inWidth) continue;
            const d = dyBase + ((b * outHeight + oy) * outWidth + ox) * channels;
            const i = xBase + ((b * inHeight + iy) * inWidth + ix) * channels;
            for (let c = 0; c < channels; c++) sums[c] += mem[d + c] * mem[i + c];
          }
        }
      }
      mem.set(sums, dwBase + (fy * filterWidth + fx) * channels);
    }
  }
  return dw;
}
