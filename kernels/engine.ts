/**
 * The training engine: tfjs's wasm backend with our kernels, and where the
 * native library can be built and opened, its kernels registered over the
 * heavy ones (NATIVE_KERNELS). Both engines sit behind
 * this one choice; models, tape, optimiser and workers are the same.
 */
import { tf } from "../deps_tfjs.ts";
import { UsageError } from "../util/cli.ts";
import { register, registerTrainingKernels, useWasmBackend } from "./backend.ts";
import { fusedMatMul } from "./fused_matmul.ts";
import { type AdamUpdate, adamUpdateJs } from "./adam_update.ts";
import {
  cString,
  loadNativeEngine,
  NATIVE_INSTALL_COMMAND,
  type NativeLibrary,
  NativeSettingError,
  NativeUnavailable,
} from "./native/library.ts";
import {
  nativeBatchMatMul,
  nativeBatchNormTrain,
  nativeBatchNormTrainGrad,
  nativeConv2d,
  nativeConv2dBackpropFilter,
  nativeConv2dBackpropInput,
  nativeDepthwise,
  nativeMaxPoolGrad,
  nativeReduceLeading,
  nativeReluGrad,
} from "./native/kernels.ts";
import { RELU_GRAD } from "./relu_grad.ts";
import {
  BATCH_NORM_TRAIN,
  BATCH_NORM_TRAIN_GRAD,
  batchNormTrain,
  batchNormTrainGrad,
} from "./batch_norm.ts";
import type { WasmKernelFunc } from "./wasm_heap.ts";
import { usePlainInference } from "./training_layers.ts";

export type EngineName = "native" | "wasm";
export type EngineChoice = EngineName | "auto";
export const ENGINE_CHOICES: readonly EngineChoice[] = ["auto", "native", "wasm"];

/** The kernels the native engine takes over from the wasm one. */
export const NATIVE_KERNELS = [
  "Conv2D",
  "Conv2DBackpropFilter",
  "Conv2DBackpropInput",
  "DepthwiseConv2dNative",
  "DepthwiseConv2dNativeBackpropInput",
  "DepthwiseConv2dNativeBackpropFilter",
  "BatchMatMul",
  "_FusedMatMul",
  "MaxPoolGrad",
  "Sum",
  "Mean",
  RELU_GRAD,
  BATCH_NORM_TRAIN,
  BATCH_NORM_TRAIN_GRAD,
] as const;

/** A forced engine that cannot run here. */
export class EngineError extends Error {}

export interface EngineInfo {
  engine: EngineName;
  /** The native engine's BLAS library and the CPU kernel set it chose. */
  blas?: string;
  blasCore?: string;
  /** What the native engine's convolutions run on: "oneDNN 2.6" or "im2col + BLIS". */
  convolutions?: string;
  /** Why the native engine was not used, when "auto" fell back to wasm. */
  fallback?: string;
}

let active: EngineInfo | undefined;
let activeAdam: AdamUpdate = adamUpdateJs;
let activeNative: NativeLibrary | undefined;

function registerNativeKernels(native: NativeLibrary): void {
  const wasm = (name: string) =>
    tf.getKernel(name, "wasm")!.kernelFunc as unknown as WasmKernelFunc;
  const wasmMatMul = wasm("BatchMatMul");
  const [wasmSum, wasmMean] = [wasm("Sum"), wasm("Mean")];
  register("Conv2D", nativeConv2d(native));
  register("Conv2DBackpropFilter", nativeConv2dBackpropFilter(native));
  register("Conv2DBackpropInput", nativeConv2dBackpropInput(native));
  for (
    const [name, kind] of [
      ["DepthwiseConv2dNative", "forward"],
      ["DepthwiseConv2dNativeBackpropInput", "input"],
      ["DepthwiseConv2dNativeBackpropFilter", "filter"],
    ] as const
  ) {
    register(name, nativeDepthwise(native, kind, wasm(name)));
  }
  const nativeMatMul = nativeBatchMatMul(native, wasmMatMul);
  register("BatchMatMul", nativeMatMul);
  // The wasm engine's fused product (registered first) takes the cases this one leaves.
  register(
    "_FusedMatMul",
    fusedMatMul(nativeMatMul as unknown as WasmKernelFunc, wasm("_FusedMatMul")),
  );
  register("MaxPoolGrad", nativeMaxPoolGrad(native));
  register(RELU_GRAD, nativeReluGrad(native));
  register("Sum", nativeReduceLeading(native, false, wasmSum));
  register("Mean", nativeReduceLeading(native, true, wasmMean));
  register(BATCH_NORM_TRAIN, nativeBatchNormTrain(native));
  register(BATCH_NORM_TRAIN_GRAD, nativeBatchNormTrainGrad(native));
}

/**
 * Starts the engine asked for: "auto" takes the native one when it can be
 * built here and falls back to wasm otherwise (saying why in `fallback`);
 * "native" throws EngineError when it cannot. A meaningless setting
 * (MNIST_CONVOLUTIONS) throws EngineError either way. May be called again to switch.
 */
export async function useEngine(choice: EngineChoice = "auto"): Promise<EngineInfo> {
  await useWasmBackend();
  // Back to the wasm engine's own kernels first, so switching either way is clean.
  registerTrainingKernels();
  register(BATCH_NORM_TRAIN, batchNormTrain);
  register(BATCH_NORM_TRAIN_GRAD, batchNormTrainGrad);
  activeAdam = adamUpdateJs;
  activeNative = undefined;
  usePlainInference(false);
  if (choice === "wasm") return active = { engine: "wasm" };
  try {
    const native = await loadNativeEngine();
    registerNativeKernels(native.symbols);
    activeAdam = nativeAdamUpdate(native.symbols);
    activeNative = native.symbols;
    usePlainInference(true);
    return active = {
      engine: "native",
      blas: native.blas,
      blasCore: native.blasCore,
      convolutions: native.convolutions,
    };
  } catch (error) {
    if (error instanceof NativeSettingError) throw new EngineError(error.message);
    if (!(error instanceof NativeUnavailable)) throw error;
    if (choice === "native") {
      throw new EngineError(
        `The native engine cannot run here: ${error.message}; install it with: ${NATIVE_INSTALL_COMMAND}.`,
      );
    }
    return active = {
      engine: "wasm",
      fallback:
        `The native engine is not available (${error.message}), so training runs on the wasm engine; for the native one: ${NATIVE_INSTALL_COMMAND}.`,
    };
  }
}

export type ConvolutionLibrary = "onednn" | "im2col";

/**
 * Runs the native engine's convolutions in this thread on oneDNN (where the
 * library was built with it) or on im2col and the BLAS; returns what they
 * run on now. The tests check both paths; MNIST_CONVOLUTIONS chooses for
 * every thread when it loads the engine.
 */
export function useConvolutions(library: ConvolutionLibrary): string {
  if (!activeNative) throw new EngineError("The native engine is not running.");
  const convolutions = cString(
    activeNative.engine_set_convolutions(library === "onednn" ? 1 : 0),
  );
  if (active) active.convolutions = convolutions;
  return convolutions;
}

/** The optimizer's update loop on the engine started last. */
export function adamUpdate(): AdamUpdate {
  return activeAdam;
}

function nativeAdamUpdate(native: NativeLibrary): AdamUpdate {
  return (weights, gradients, m, v, c) =>
    native.adam_update(
      weights as Float32Array<ArrayBuffer>,
      gradients as Float32Array<ArrayBuffer>,
      m as Float32Array<ArrayBuffer>,
      v as Float32Array<ArrayBuffer>,
      weights.length,
      c.beta1,
      c.beta2,
      c.stepSize,
      c.secondCorrection,
      c.epsilon,
    );
}

/** The engine started last, with its libraries (wasm if none was started through useEngine). */
export function activeEngineInfo(): EngineInfo {
  return active ?? { engine: "wasm" };
}

/** The engine started last (wasm if none was started through useEngine). */
export function activeEngine(): EngineName {
  return activeEngineInfo().engine;
}

/** The value of an --engine flag (default "auto"). */
export function engineFlag(value: string | undefined): EngineChoice {
  if (value === undefined) return "auto";
  if (!ENGINE_CHOICES.includes(value as EngineChoice)) {
    throw new UsageError(`--engine must be one of ${ENGINE_CHOICES.join(", ")}, got "${value}".`);
  }
  return value as EngineChoice;
}

let fallbackSaid = false;

/**
 * Says a fallback to the wasm engine in one line on stderr, once per
 * process. Commands call it when the work begins, after every flag and
 * input was accepted, so that a refused command is still one sentence.
 */
export function sayFallback(info: EngineInfo): void {
  if (!info.fallback || fallbackSaid) return;
  fallbackSaid = true;
  console.error(`note: ${info.fallback}`);
}
