/**
 * The training engine's backend: tfjs `wasm` (XNNPACK, SIMD) with our kernels
 * registered over the ones it lacks and the ones that are slow for training.
 * Each replacement is checked against the tfjs `cpu` backend in
 * tests/kernels_test.ts.
 */
import { type BackendWasm, setWasmPaths, tf, TFJS_WASM_DIST_URL } from "../deps_tfjs.ts";
import { conv2dBackpropFilter, conv2dBackpropInput } from "./conv2d_grads.ts";
import { depthwiseBackpropFilter, depthwiseBackpropInput } from "./depthwise_grads.ts";
import { fusedMatMul } from "./fused_matmul.ts";
import { batchMatMul } from "./matmul.ts";
import { maxPoolGrad } from "./max_pool_grad.ts";
import { mean, sum } from "./reduce.ts";
import { installReluGradient, RELU_GRAD } from "./relu_grad.ts";
import { tile } from "./tile.ts";
import { installTrainingLayers } from "./training_layers.ts";
import type { WasmKernelFunc, WasmKernels } from "./wasm_heap.ts";

/** Kernels the wasm backend lacks, which training needs. */
export const ADDED_KERNELS = [
  "DepthwiseConv2dNativeBackpropInput",
  "DepthwiseConv2dNativeBackpropFilter",
] as const;

export const REPLACED_KERNELS = [
  "Identity",
  "Cast",
  "Conv2DBackpropFilter",
  "Conv2DBackpropInput",
  "BatchMatMul",
  "MaxPoolGrad",
  "Tile",
  "Sum",
  "Mean",
] as const;

function original(name: string): WasmKernelFunc {
  const config = tf.getKernel(name, "wasm");
  if (config === undefined) throw new Error(`The wasm backend has no ${name} kernel.`);
  return config.kernelFunc as unknown as WasmKernelFunc;
}

let originals:
  | WasmKernels
    & Record<
      | "conv2dBackpropInput"
      | "sum"
      | "mean"
      | "fusedMatMul"
      | "identity"
      | "cast"
      | "depthwise",
      WasmKernelFunc
    >
  | undefined;

/** Registers a kernel for the wasm backend, replacing any registered under that name. */
export function register(name: string, kernelFunc: unknown): void {
  if (tf.getKernel(name, "wasm") !== undefined) tf.unregisterKernel(name, "wasm");
  tf.registerKernel({
    kernelName: name,
    backendName: "wasm",
    kernelFunc: kernelFunc as tf.KernelFunc,
  });
}

/** Registers our kernels over the wasm backend's (idempotent). */
export function registerTrainingKernels(): void {
  originals ??= {
    conv2d: original("Conv2D"),
    batchMatMul: original("BatchMatMul"),
    transpose: original("Transpose"),
    conv2dBackpropInput: original("Conv2DBackpropInput"),
    sum: original("Sum"),
    mean: original("Mean"),
    fusedMatMul: original("_FusedMatMul"),
    identity: original("Identity"),
    cast: original("Cast"),
    depthwise: original("DepthwiseConv2dNative"),
  };
  // The forward kernels too: the native engine registers over them, and a
  // switch back to wasm must find the backend's own.
  register("Conv2D", originals.conv2d);
  register("DepthwiseConv2dNative", originals.depthwise);
  register("Conv2DBackpropFilter", conv2dBackpropFilter(originals));
  register(
    "Conv2DBackpropInput",
    conv2dBackpropInput(originals, originals.conv2dBackpropInput as (a: unknown) => tf.TensorInfo),
  );
  const matMul = batchMatMul(originals);
  register("BatchMatMul", matMul);
  register(
    "_FusedMatMul",
    fusedMatMul(matMul as unknown as WasmKernelFunc, originals.fusedMatMul),
  );
  register("MaxPoolGrad", maxPoolGrad);
  register("Identity", sharedIdentity(originals.identity));
  register("Cast", sharedCast(originals.cast));
  register("Tile", tile);
  register("Sum", sum(originals.sum));
  register("Mean", mean(originals.mean));
  register(
    "DepthwiseConv2dNativeBackpropInput",
    depthwiseBackpropInput(originals.depthwise),
  );
  register("DepthwiseConv2dNativeBackpropFilter", depthwiseBackpropFilter);
  // Only the native engine has a one-pass ReLU gradient; in wasm a loop over
  // the heap was slower than tfjs's three kernels, which Relu's gradient
  // then uses.
  if (tf.getKernel(RELU_GRAD, "wasm") !== undefined) tf.unregisterKernel(RELU_GRAD, "wasm");
}

/**
 * Identity without a copy. The backend copies the whole tensor (98 times in
 * an improved-model training step, the tape's pass-through gradients among
 * them); tensors are immutable and every kernel here writes only its own new
 * outputs, so sharing the data with a reference count, as the backend's
 * Reshape does, gives the same tensor.
 */
function sharedIdentity(copy: WasmKernelFunc) {
  return (args: { inputs: { x: tf.TensorInfo }; backend: BackendWasm }): tf.TensorInfo => {
    const { inputs: { x }, backend } = args;
    if (x.dtype === "string") return copy(args);
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

/**
 * Cast to the tensor's own dtype without a copy, as Identity: tfjs's
 * gradients cast their operands to float32 whatever they are (a multiply's
 * gradient does, 16 full-size copies in a robust-model step).
 */
function sharedCast(cast: WasmKernelFunc) {
  return (
    args: { inputs: { x: tf.TensorInfo }; backend: BackendWasm; attrs: { dtype: string } },
  ): tf.TensorInfo => {
    const { inputs: { x }, backend, attrs } = args;
    if (x.dtype !== attrs.dtype || x.dtype === "string") return cast(args);
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

let ready: Promise<void> | undefined;

/**
 * Makes `wasm` the active tfjs backend, with SIMD and our kernels. Safe to
 * call more than once.
 */
export function useWasmBackend(): Promise<void> {
  ready ??= (async () => {
    // tfjs thinks Deno is Node and would print an "install tfjs-node" banner
    // on stdout; PROD silences it (and skips debug-only checks).
    tf.env().set("PROD", true);
    setWasmPaths(TFJS_WASM_DIST_URL);
    if (!(await tf.setBackend("wasm"))) {
      throw new Error("The tfjs wasm backend failed to start.");
    }
    await tf.ready();
    registerTrainingKernels();
    installTrainingLayers();
    installReluGradient();
  })();
  return ready;
}

/** The active backend, as the wasm backend class (for our kernels' tests). */
export function wasmBackend(): BackendWasm {
  return tf.backend() as unknown as BackendWasm;
}
