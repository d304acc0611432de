/**
 * tfjs kernels for the wasm backend that run in the native library: the
 * convolution and the depthwise one (forward and both gradients; depthwise
 * on oneDNN only), batched matrix products, the
 * max-pool gradient, ReLU's gradient, Sum and Mean over leading axes, and
 * training-mode BatchNorm both ways.
 * Tensors stay in the wasm backend's memory; the native code reads and
 * writes them there through views, so nothing is copied.
 */
import { type BackendWasm, tf } from "../../deps_tfjs.ts";
import { heap, heapIndex, sizeOf, type TensorInfo, type WasmKernelFunc } from "../wasm_heap.ts";
import type { NativeLibrary } from "./library.ts";
import { type ConvAttrs, convInfo, type Shape4 } from "../conv2d_grads.ts";
import type { MaxPoolGradArgs } from "../max_pool_grad.ts";
import type { BatchNormTrainArgs, BatchNormTrainGradArgs } from "../batch_norm.ts";
import type { MatMulArgs } from "../matmul.ts";
import { leadingAxesCount, type ReduceArgs } from "../reduce.ts";
import type { ReluGradArgs } from "../relu_grad.ts";
import { type DepthwiseAttrs, depthwiseInfo } from "../depthwise_grads.ts";

/** The geometry the C side reads: n h w cin fh fw cout oh ow sh sw dh dw padTop padLeft. */
function geometry(
  kernel: string,
  inputShape: Shape4,
  filterShape: Shape4,
  attrs: ConvAttrs,
): { info: tf.backend_util.Conv2DInfo; packed: Int32Array<ArrayBuffer> } {
  const info = convInfo(kernel, inputShape, filterShape, attrs);
  return { info, packed: packGeometry(info) };
}

function packGeometry(info: tf.backend_util.Conv2DInfo): Int32Array<ArrayBuffer> {
  return Int32Array.from([
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.filterHeight,
    info.filterWidth,
    info.outChannels,
    info.outHeight,
    info.outWidth,
    info.strideHeight,
    info.strideWidth,
    info.dilationHeight,
    info.dilationWidth,
    info.padInfo.top,
    info.padInfo.left,
  ]);
}

/** A tensor's elements as a view of wasm memory (take views after the last allocation). */
function view(backend: BackendWasm, tensor: TensorInfo): Float32Array<ArrayBuffer> {
  const start = heapIndex(backend, tensor);
  return heap(backend).subarray(start, start + sizeOf(tensor.shape)) as Float32Array<ArrayBuffer>;
}

function check(status: number, kernel: string): void {
  if (status !== 0) throw new Error(`The native ${kernel} ran out of memory.`);
}

export function nativeConv2d(native: NativeLibrary) {
  return (args: {
    inputs: { x: TensorInfo; filter: TensorInfo };
    backend: BackendWasm;
    attrs: ConvAttrs;
  }): TensorInfo => {
    const { inputs: { x, filter }, backend, attrs } = args;
    const { info, packed } = geometry("Conv2D", x.shape as Shape4, filter.shape as Shape4, attrs);
    const y = backend.makeOutput(info.outShape, "float32");
    check(
      native.conv2d_forward(view(backend, x), view(backend, filter), view(backend, y), packed),
      "convolution",
    );
    return y;
  };
}

export function nativeConv2dBackpropFilter(native: NativeLibrary) {
  return (args: {
    inputs: { x: TensorInfo; dy: TensorInfo };
    backend: BackendWasm;
    attrs: ConvAttrs & { filterShape: Shape4 };
  }): TensorInfo => {
    const { inputs: { x, dy }, backend, attrs } = args;
    const { packed } = geometry(
      "Conv2DBackpropFilter",
      x.shape as Shape4,
      attrs.filterShape,
      attrs,
    );
    const dw = backend.makeOutput([...attrs.filterShape], "float32");
    check(
      native.conv2d_backprop_filter(view(backend, x), view(backend, dy), view(backend, dw), packed),
      "filter gradient",
    );
    return dw;
  };
}

export function nativeConv2dBackpropInput(native: NativeLibrary) {
  return (args: {
    inputs: { dy: TensorInfo; filter: TensorInfo };
    backend: BackendWasm;
    attrs: ConvAttrs & { inputShape: Shape4 };
  }): TensorInfo => {
    const { inputs: { dy, filter }, backend, attrs } = args;
    const { packed } = geometry(
      "Conv2DBackpropInput",
      attrs.inputShape,
      filter.shape as Shape4,
      attrs,
    );
    const dx = backend.makeOutput([...attrs.inputShape], "float32");
    check(
      native.conv2d_backprop_input(
        view(backend, dy),
        view(backend, filter),
        view(backend, dx),
        packed,
      ),
      "input gradient",
    );
    return dx;
  };
}

/**
 * The depthwise convolution (forward, input or filter gradient) on oneDNN;
 * where the library cannot take it (built without oneDNN, convolutions on
 * im2col, or a shape oneDNN refuses) the wasm engine's kernel, `fallback`.
 */
export function nativeDepthwise(
  native: NativeLibrary,
  kind: "forward" | "input" | "filter",
  fallback: WasmKernelFunc,
) {
  return (args: {
    inputs: Record<string, TensorInfo>;
    backend: BackendWasm;
    attrs: DepthwiseAttrs & { inputShape?: Shape4; filterShape?: Shape4 };
  }): TensorInfo => {
    const { inputs, backend, attrs } = args;
    const xShape = kind === "input" ? attrs.inputShape! : inputs.x.shape as Shape4;
    const filterShape = kind === "filter" ? attrs.filterShape! : inputs.filter.shape as Shape4;
    const info = depthwiseInfo(xShape, filterShape, attrs);
    const packed = packGeometry(info);
    const out = backend.makeOutput(
      kind === "forward" ? info.outShape : kind === "input" ? [...xShape] : [...filterShape],
      "float32",
    );
    // The C side's operands: (x, filter), (dy, filter) or (x, dy).
    const [first, second] = kind === "forward"
      ? [inputs.x, inputs.filter]
      : kind === "input"
      ? [inputs.dy, inputs.filter]
      : [inputs.x, inputs.dy];
    const run = {
      forward: native.depthwise_forward,
      input: native.depthwise_backprop_input,
      filter: native.depthwise_backprop_filter,
    }[kind];
    const status = run(view(backend, first), view(backend, second), view(backend, out), packed);
    if (status === 1) {
      backend.disposeData(out.dataId);
      return fallback(args as unknown as Parameters<WasmKernelFunc>[0]);
    }
    check(status, "depthwise convolution");
    return out;
  };
}

/** BatchMatMul; batch shapes other than equal or one of them 1 go to `fallback`. */
export function nativeBatchMatMul(native: NativeLibrary, fallback: WasmKernelFunc) {
  return (args: MatMulArgs): TensorInfo => {
    const { inputs: { a, b }, backend, attrs } = args;
    const [m, k] = attrs.transposeA ? a.shape.slice(-2).reverse() : a.shape.slice(-2);
    const n = attrs.transposeB ? b.shape.at(-2)! : b.shape.at(-1)!;
    const batchA = sizeOf(a.shape.slice(0, -2));
    const batchB = sizeOf(b.shape.slice(0, -2));
    const sameBatchShape = a.shape.length === b.shape.length &&
      a.shape.slice(0, -2).every((d, i) => d === b.shape[i]);
    if (!sameBatchShape && batchA !== 1 && batchB !== 1) return fallback(args);
    const outerShape = batchA >= batchB ? a.shape.slice(0, -2) : b.shape.slice(0, -2);
    const c = backend.makeOutput([...outerShape, m, n], "float32");
    native.batch_matmul(
      view(backend, a),
      view(backend, b),
      view(backend, c),
      Math.max(batchA, batchB),
      batchA,
      batchB,
      m,
      n,
      k,
      attrs.transposeA ? 1 : 0,
      attrs.transposeB ? 1 : 0,
    );
    return c;
  };
}

export function nativeMaxPoolGrad(native: NativeLibrary) {
  return (args: MaxPoolGradArgs): TensorInfo => {
    const { inputs: { dy, input }, backend, attrs } = args;
    const info = tf.backend_util.computePool2DInfo(
      input.shape as Shape4,
      attrs.filterSize,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    const packed = Int32Array.from([
      info.batchSize,
      info.inHeight,
      info.inWidth,
      info.inChannels,
      info.outHeight,
      info.outWidth,
      info.filterHeight,
      info.filterWidth,
      info.strideHeight,
      info.strideWidth,
      info.padInfo.top,
      info.padInfo.left,
    ]);
    const dx = backend.makeOutput(input.shape, "float32");
    native.max_pool_grad(view(backend, input), view(backend, dy), view(backend, dx), packed);
    return dx;
  };
}

export function nativeReluGrad(native: NativeLibrary) {
  return (args: ReluGradArgs): TensorInfo => {
    const { inputs: { dy, y }, backend } = args;
    const dx = backend.makeOutput(dy.shape, "float32");
    native.relu_grad(view(backend, dy), view(backend, y), view(backend, dx), sizeOf(dy.shape));
    return dx;
  };
}

/** Sum or Mean over leading axes; any other reduction goes to `fallback`. */
export function nativeReduceLeading(
  native: NativeLibrary,
  mean: boolean,
  fallback: WasmKernelFunc,
) {
  return (args: ReduceArgs): TensorInfo => {
    const { inputs: { x }, backend, attrs } = args;
    const reduced = leadingAxesCount(attrs.axis, x.shape.length);
    if (x.dtype !== "float32" || reduced <= 0) return fallback(args);
    const rows = sizeOf(x.shape.slice(0, reduced));
    const outShape = attrs.keepDims
      ? x.shape.map((dim, axis) => (axis < reduced ? 1 : dim))
      : x.shape.slice(reduced);
    const out = backend.makeOutput(outShape, "float32");
    native.sum_rows(
      view(backend, x),
      view(backend, out),
      rows,
      sizeOf(outShape),
      mean ? 1 / rows : 1,
    );
    return out;
  };
}

/** Training-mode BatchNorm forward (kernels/batch_norm.ts's contract): y, mean, variance. */
export function nativeBatchNormTrain(native: NativeLibrary) {
  return (args: BatchNormTrainArgs): TensorInfo[] => {
    const { inputs: { x, gamma, beta }, backend, attrs: { epsilon } } = args;
    const channels = x.shape[x.shape.length - 1];
    const y = backend.makeOutput(x.shape, "float32");
    const mean = backend.makeOutput([channels], "float32");
    const variance = backend.makeOutput([channels], "float32");
    check(
      native.batch_norm_train(
        view(backend, x),
        view(backend, gamma),
        view(backend, beta),
        view(backend, y),
        view(backend, mean),
        view(backend, variance),
        sizeOf(x.shape) / channels,
        channels,
        epsilon,
      ),
      "BatchNorm",
    );
    return [y, mean, variance];
  };
}

/** Its gradient: dx, dgamma, dbeta. */
export function nativeBatchNormTrainGrad(native: NativeLibrary) {
  return (args: BatchNormTrainGradArgs): TensorInfo[] => {
    const { inputs: { dy, x, gamma, mean, variance }, backend, attrs: { epsilon } } = args;
    const channels = x.shape[x.shape.length - 1];
    const dx = backend.makeOutput(x.shape, "float32");
    const dGamma = backend.makeOutput([channels], "float32");
    const dBeta = backend.makeOutput([channels], "float32");
    check(
      native.batch_norm_train_grad(
        view(backend, dy),
        view(backend, x),
        view(backend, gamma),
        view(backend, mean),
        view(backend, variance),
        view(backend, dx),
        view(backend, dGamma),
        view(backend, dBeta),
        sizeOf(x.shape) / channels,
        channels,
        epsilon,
      ),
      "BatchNorm gradient",
    );
    return [dx, dGamma, dBeta];
  };
}
