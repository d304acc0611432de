/**
 * Max-pool gradient in one flat pass: each output cell sends its gradient to
 * the first maximum of its window, as the tfjs cpu backend does. The
 * backend's own kernel is several times slower.
 */
import { type BackendWasm, tf } from "../deps_tfjs.ts";
import { heap, heapIndex, type TensorInfo } from "./wasm_heap.ts";

export interface MaxPoolGradArgs {
  inputs: { dy: TensorInfo; input: TensorInfo };
  backend: BackendWasm;
  attrs: {
    filterSize: number | [number, number];
    strides: number | [number, number];
    pad: "valid" | "same" | number;
    dimRoundingMode?: "floor" | "round" | "ceil";
  };
}

export function maxPoolGrad(args: MaxPoolGradArgs): TensorInfo {
  const { inputs: { dy, input }, backend, attrs } = args;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { batchSize, inHeight, inWidth, inChannels: channels } = info;
  const { outHeight, outWidth, filterHeight, filterWidth } = info;
  const { strideHeight, strideWidth } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;

  const dx = backend.makeOutput(input.shape, "float32");
  const mem = heap(backend);
  const xBase = heapIndex(backend, input);
  const dxBase = heapIndex(backend, dx);
  let dyIndex = heapIndex(backend, dy);
  mem.fill(0, dxBase, dxBase + batchSize * inHeight * inWidth * channels);
  const rowStride = inWidth * channels;
  const isPlain2x2 = filterHeight === 2 && filterWidth === 2 && strideHeight === 2 &&
    strideWidth === 2 && padTop === 0 && padLeft === 0 && outHeight * 2 <= inHeight &&
    outWidth * 2 <= inWidth;
  if (isPlain2x2) {
    // The models' only pooling: four fixed taps, channels innermost.
    for (let b = 0; b < batchSize; b++) {
      for (let oy = 0; oy < outHeight; oy++) {
        for (let ox = 0; ox < outWidth; ox++) {
          const p00 = (b * inHeight + oy * 2) * rowStride + ox * 2 * channels;
          const p01 = p00 + channels;
          const p10 = p00 + rowStride;
          const p11 = p10 + channels;
          for (let c = 0; c < channels; c++, dyIndex++) {
            let bestAt = p00 + c;
            let best = mem[xBase + bestAt];
            const v01 = mem[xBase + p01 + c];
            if (v01 > best) {
              best = v01;
              bestAt = p01 + c;
            }
            const v10 = mem[xBase + p10 + c];
            if (v10 > best) {
              best = v10;
              bestAt = p10 + c;
            }
            if (mem[xBase + p11 + c] > best) bestAt = p11 + c;
            mem[dxBase + bestAt] += mem[dyIndex];
          }
        }
      }
    }
    return dx;
  }
  for (let b = 0; b < batchSize; b++) {
    const imageBase = b * inHeight * rowStride;
    for (let oy = 0; oy < outHeight; oy++) {
      const y0 = Math.max(0, oy * strideHeight - padTop);
      const y1 = Math.min(inHeight, oy * strideHeight - padTop + filterHeight);
      for (let ox = 0; ox < outWidth; ox++) {
        const x0 = Math.max(0, ox * strideWidth - padLeft);
        const x1 = Math.min(inWidth, ox * strideWidth - padLeft + filterWidth);
        for (let c = 0; c < channels; c++, dyIndex++) {
          let best = -Infinity;
          let bestAt = -1;
          for (let y = y0; y < y1; y++) {
            for (let x = x0; x < x1; x++) {
              const at = imageBase + y * rowStride + x * channels + c;
              const value = mem[xBase + at];
              if (value > best) {
                best = value;
                bestAt = at;
              }
            }
          }
          if (bestAt >= 0) mem[dxBase + bestAt] += mem[dyIndex];
        }
      }
    }
  }
  return dx;
}
