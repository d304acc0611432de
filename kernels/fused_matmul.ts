/**
 * A dense layer's product with its bias and ReLU (tfjs's `_FusedMatMul`) as
 * the registered BatchMatMul followed by one pass over the output. The wasm
 * backend's own fused kernel packs the weight matrix anew at every call
 * (XNNPACK), which made the improved model's two bias-free dense products
 * 11% of a training step's time; the product through our BatchMatMul (native,
 * or the wasm engine's transposed form) does not. Other activations, PReLU
 * weights and a bias that is not one value per output column go to the
 * backend's kernel.
 */
import { heap, heapIndex, sizeOf, type TensorInfo, type WasmKernelFunc } from "./wasm_heap.ts";
import type { BackendWasm } from "../deps_tfjs.ts";

export interface FusedMatMulArgs {
  inputs: { a: TensorInfo; b: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo };
  backend: BackendWasm;
  attrs: { transposeA: boolean; transposeB: boolean; activation?: string; leakyreluAlpha?: number };
}

export function fusedMatMul(matMul: WasmKernelFunc, fallback: WasmKernelFunc) {
  return (args: FusedMatMulArgs): TensorInfo => {
    const { inputs: { a, b, bias, preluActivationWeights }, backend, attrs } = args;
    const activation = attrs.activation ?? "linear";
    const columns = attrs.transposeB ? b.shape.at(-2)! : b.shape.at(-1)!;
    if (
      preluActivationWeights !== undefined || (activation !== "linear" && activation !== "relu") ||
      (bias !== undefined && sizeOf(bias.shape) !== columns)
    ) {
      return fallback(args as Parameters<WasmKernelFunc>[0]);
    }
    const product = matMul({
      inputs: { a, b },
      backend,
      attrs: { transposeA: attrs.transposeA, transposeB: attrs.transposeB },
    });
    if (bias === undefined && activation === "linear") return product;
    // The product is this kernel's own new tensor: bias and ReLU go in place.
    const memory = heap(backend);
    const out = heapIndex(backend, product);
    const biasAt = bias === undefined ? -1 : heapIndex(backend, bias);
    const size = sizeOf(product.shape);
    const relu = activation === "relu";
    for (let row = 0; row < size; row += columns) {
      for (let j = 0; j < columns; j++) {
        let value = memory[out + row + j];
        if (biasAt >= 0) value += memory[biasAt + j];
        memory[out + row + j] = relu && value < 0 ? 0 : value;
      }
    }
    return product;
  };
}
