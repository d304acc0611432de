/**
 * ReLU's gradient in one pass: dx = dy where the output is positive, else 0.
 * tfjs differentiates Relu as mul(dy, cast(step(x))): three kernels and two
 * temporary tensors per ReLU (a robust-model step has seven). The gradient
 * is registered for every backend; where this kernel is not registered (the
 * wasm engine, where a loop over the heap in TypeScript was slower than
 * tfjs's three kernels, and the cpu backend of the tests' references) it
 * is tfjs's formula. The native engine's kernel is kernels/native/kernels.ts's.
 */
import { type BackendWasm, tf } from "../deps_tfjs.ts";
import type { TensorInfo } from "./wasm_heap.ts";

export const RELU_GRAD = "MnistReluGrad";

export interface ReluGradArgs {
  inputs: { dy: TensorInfo; y: TensorInfo };
  backend: BackendWasm;
}

/**
 * Relu's gradient from its output (y > 0 exactly where x > 0), through
 * RELU_GRAD where the active backend has it. Saving y instead of x lets the
 * tape keep the tensor the next layer holds anyway.
 */
export function installReluGradient(): void {
  tf.registerGradient({
    kernelName: "Relu",
    outputsToSave: [true],
    gradFunc: (dy, saved) => {
      const [y] = saved;
      return {
        x: () =>
          tf.getKernel(RELU_GRAD, tf.getBackend()) !== undefined
            ? tf.engine().runKernel(RELU_GRAD, { dy: dy as tf.Tensor, y }) as tf.Tensor
            : tf.mul(dy as tf.Tensor, tf.cast(tf.step(y), "float32")),
      };
    },
  });
}
