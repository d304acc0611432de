/**
 * Gradients of the depthwise convolution, which the wasm backend lacks
 * (tfjs's `wasm` has the forward kernel only). Written as direct loops over
 * the wasm heap, NHWC with the channels (and their multipliers) innermost:
 * a depthwise layer does 9 multiply-adds a channel a pixel, little enough
 * that plain loops keep up with the rest of a step.
 */
import { type BackendWasm, tf } from "../deps_tfjs.ts";
import { heap, heapIndex, sizeOf, type TensorInfo } from "./wasm_heap.ts";

interface DepthwiseAttrs {
  strides: number | [number, number];
  dilations: number | [number, number];
  pad: "valid" | "same" | number;
  dimRoundingMode?: "floor" | "round" | "ceil";
}

type Shape4 = [number, number, number, number];

function convInfo(xShape: Shape4, filterShape: Shape4, attrs: DepthwiseAttrs) {
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
  info: ReturnType<typeof convInfo>,
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

export function depthwiseBackpropInput(args: {
  inputs: { dy: TensorInfo; filter: TensorInfo };
  backend: BackendWasm;
  attrs: DepthwiseAttrs & { inputShape: Shape4 };
}): TensorInfo {
  const { inputs: { dy, filter }, backend, attrs } = args;
  const info = convInfo(attrs.inputShape, filter.shape as Shape4, attrs);
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
  const info = convInfo(x.shape as Shape4, attrs.filterShape, attrs);
  const channels = info.inChannels;
  const multiplier = info.outChannels / channels;
  const dw = backend.makeOutput(attrs.filterShape, "float32");
  const mem = heap(backend);
  const dwBase = heapIndex(backend, dw);
  const dyBase = heapIndex(backend, dy);
  const xBase = heapIndex(backend, x);
  mem.fill(0, dwBase, dwBase + sizeOf(attrs.filterShape));
  forEachTap(info, (dyAt, xAt, wAt) => {
    const d = dyBase + dyAt, i = xBase + xAt, w = dwBase + wAt;
    if (multiplier === 1) {
      for (let c = 0; c < channels; c++) mem[w + c] += mem[d + c] * mem[i + c];
      return;
    }
    for (let c = 0, o = 0; c < channels; c++) {
      const value = mem[i + c];
      for (let m = 0; m < multiplier; m++, o++) mem[w + o] += mem[d + o] * value;
    }
  });
  return dw;
}
