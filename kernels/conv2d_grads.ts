/**
 * Convolution gradients for the wasm backend.
 *
 * The backend has no Conv2DBackpropFilter at all, and its Conv2DBackpropInput
 * is about 12x slower than a forward convolution. Both are rewritten here as
 * the backend's fast XNNPACK kernels (matrix product, forward convolution).
 */
import { type BackendWasm, tf } from "../deps_tfjs.ts";
import { heap, heapIndex, sizeOf, type TensorInfo, type WasmKernels } from "./wasm_heap.ts";

export interface ConvAttrs {
  strides: number | [number, number];
  pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
  dataFormat: "NHWC" | "NCHW";
  dimRoundingMode?: "floor" | "round" | "ceil";
  dilations?: number | [number, number];
}

export type Shape4 = [number, number, number, number];

/** The convolution's geometry, for NHWC data (all our kernels support). */
export function convInfo(
  kernel: string,
  inputShape: Shape4,
  filterShape: Shape4,
  attrs: ConvAttrs,
) {
  if (attrs.dataFormat !== "NHWC") {
    throw new Error(`${kernel} supports only NHWC data, got ${attrs.dataFormat}.`);
  }
  return tf.backend_util.computeConv2DInfo(
    inputShape,
    filterShape,
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    "channelsLast",
  );
}

/**
 * dW = im2col(x)ᵀ · dy. The transposed patch matrix [fh·fw·cin, n·oh·ow] is
 * written straight into wasm memory so that the product is an untransposed
 * matmul, the only fast one in the backend.
 */
export function conv2dBackpropFilter(kernels: WasmKernels) {
  return (args: {
    inputs: { x: TensorInfo; dy: TensorInfo };
    backend: BackendWasm;
    attrs: ConvAttrs & { filterShape: [number, number, number, number] };
  }): TensorInfo => {
    const { inputs: { x, dy }, backend, attrs } = args;
    const info = convInfo("Conv2DBackpropFilter", x.shape as Shape4, attrs.filterShape, attrs);
    const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth } = info;
    const { filterHeight, filterWidth, outChannels } = info;
    const { strideHeight, strideWidth, dilationHeight, dilationWidth } = info;
    const padTop = info.padInfo.top;
    const padLeft = info.padInfo.left;
    const rows = filterHeight * filterWidth * inChannels;
    const cols = batchSize * outHeight * outWidth;

    // Channels-first copy of x, so that every patch row below reads memory
    // contiguously.
    const xChannelsFirst = kernels.transpose({
      inputs: { x },
      backend,
      attrs: { perm: [3, 0, 1, 2] },
    });
    const patches = backend.makeOutput([rows, cols], "float32");
    const mem = heap(backend);
    const xBase = heapIndex(backend, xChannelsFirst);
    let out = heapIndex(backend, patches);
    const imageStride = inHeight * inWidth;
    const channelStride = batchSize * imageStride;
    for (let fy = 0; fy < filterHeight; fy++) {
      for (let fx = 0; fx < filterWidth; fx++) {
        // Output columns whose input column lies inside the image.
        const offset = fx * dilationWidth - padLeft;
        const oxStart = Math.min(outWidth, Math.max(0, Math.ceil(-offset / strideWidth)));
        const oxEnd = Math.max(
          oxStart,
          Math.min(outWidth, Math.floor((inWidth - 1 - offset) / strideWidth) + 1),
        );
        for (let c = 0; c < inChannels; c++) {
          for (let b = 0; b < batchSize; b++) {
            const imageBase = xBase + c * channelStride + b * imageStride;
            for (let oy = 0; oy < outHeight; oy++) {
              const iy = oy * strideHeight - padTop + fy * dilationHeight;
              if (iy < 0 || iy >= inHeight) {
                mem.fill(0, out, out + outWidth);
                out += outWidth;
                continue;
              }
              const rowBase = imageBase + iy * inWidth + offset;
              for (let ox = 0; ox < oxStart; ox++) mem[out++] = 0;
              for (let ox = oxStart; ox < oxEnd; ox++) {
                mem[out++] = mem[rowBase + ox * strideWidth];
              }
              for (let ox = oxEnd; ox < outWidth; ox++) mem[out++] = 0;
            }
          }
        }
      }
    }
    backend.disposeData(xChannelsFirst.dataId);
    const dy2d = { ...dy, shape: [cols, outChannels] };
    const product = kernels.batchMatMul({
      inputs: { a: patches, b: dy2d },
      backend,
      attrs: { transposeA: false, transposeB: false },
    });
    backend.disposeData(patches.dataId);
    return { ...product, shape: [...attrs.filterShape] };
  };
}

/**
 * dx as a forward convolution of dy with the filter turned 180° and its in
 * and out channels swapped (stride 1 only; other strides use the original).
 */
export function conv2dBackpropInput(
  kernels: WasmKernels,
  original: (args: unknown) => TensorInfo,
) {
  return (args: {
    inputs: { dy: TensorInfo; filter: TensorInfo };
    backend: BackendWasm;
    attrs: ConvAttrs & { inputShape: [number, number, number, number] };
  }): TensorInfo => {
    const { inputs: { dy, filter }, backend, attrs } = args;
    const info = convInfo("Conv2DBackpropInput", attrs.inputShape, filter.shape as Shape4, attrs);
    if (
      info.strideHeight !== 1 || info.strideWidth !== 1 ||
      info.dilationHeight !== 1 || info.dilationWidth !== 1
    ) {
      return original(args);
    }
    const { filterHeight: fh, filterWidth: fw, inChannels, outChannels } = info;
    if (inChannels < 4) return inputGradientByColumns(kernels, backend, dy, filter, info);
    const flipped = backend.makeOutput([fh, fw, outChannels, inChannels], "float32");
    const mem = heap(backend);
    const src = heapIndex(backend, filter);
    const dst = heapIndex(backend, flipped);
    for (let y = 0; y < fh; y++) {
      for (let x = 0; x < fw; x++) {
        const from = src + ((fh - 1 - y) * fw + (fw - 1 - x)) * inChannels * outChannels;
        const to = dst + (y * fw + x) * outChannels * inChannels;
        for (let ci = 0; ci < inChannels; ci++) {
          for (let co = 0; co < outChannels; co++) {
            mem[to + co * inChannels + ci] = mem[from + ci * outChannels + co];
          }
        }
      }
    }
    const { top, bottom, left, right } = info.padInfo;
    const dx = kernels.conv2d({
      inputs: { x: dy, filter: flipped },
      backend,
      attrs: {
        strides: 1,
        dilations: 1,
        pad: [[0, 0], [fh - 1 - top, fh - 1 - bottom], [
          fw - 1 - left,
          fw - 1 - right,
        ], [0, 0]],
        dataFormat: "NHWC",
        dimRoundingMode: undefined,
      },
    });
    backend.disposeData(flipped.dataId);
    if (sizeOf(dx.shape) !== sizeOf(attrs.inputShape)) {
      throw new Error("Conv2DBackpropInput produced a gradient of the wrong shape.");
    }
    return dx;
  };
}

/**
 * dx = col2im(dy · Wᵀ), for inputs with very few channels (the image itself),
 * where a convolution with one or two output channels wastes XNNPACK.
 */
function inputGradientByColumns(
  kernels: WasmKernels,
  backend: BackendWasm,
  dy: TensorInfo,
  filter: TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth } = info;
  const { filterHeight, filterWidth, outChannels } = info;
  const patchSize = filterHeight * filterWidth * inChannels;
  const positions = batchSize * outHeight * outWidth;
  const filterT = kernels.transpose({
    inputs: { x: { ...filter, shape: [patchSize, outChannels] } },
    backend,
    attrs: { perm: [1, 0] },
  });
  const columns = kernels.batchMatMul({
    inputs: { a: { ...dy, shape: [positions, outChannels] }, b: filterT },
    backend,
    attrs: { transposeA: false, transposeB: false },
  });
  backend.disposeData(filterT.dataId);
  const dx = backend.makeOutput(
    [batchSize, inHeight, inWidth, inChannels],
    "float32",
  );
  const mem = heap(backend);
  const dxBase = heapIndex(backend, dx);
  let at = heapIndex(backend, columns);
  mem.fill(0, dxBase, dxBase + sizeOf(dx.shape));
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        for (let fy = 0; fy < filterHeight; fy++) {
          const iy = oy * info.strideHeight - padTop + fy * info.dilationHeight;
          for (let fx = 0; fx < filterWidth; fx++) {
            const ix = ox * info.strideWidth - padLeft + fx * info.dilationWidth;
            const inside = iy >= 0 && iy < inHeight && ix >= 0 && ix < inWidth;
            const to = dxBase + ((b * inHeight + iy) * inWidth + ix) * inChannels;
            for (let c = 0; c < inChannels; c++, at++) {
              if (inside) mem[to + c] += mem[at];
            }
          }
        }
      }
    }
  }
  backend.disposeData(columns.dataId);
  return dx;
}
