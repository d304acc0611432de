/**
 * The backend's matrix product is about 10x slower with a transposed operand
 * than without. An explicit transpose (a cheap memory pass) followed by the
 * untransposed product is much faster.
 */
import type { BackendWasm } from "../deps_tfjs.ts";
import type { TensorInfo, WasmKernels } from "./wasm_heap.ts";

function transposeLastTwo(
  kernels: WasmKernels,
  backend: BackendWasm,
  x: TensorInfo,
): TensorInfo {
  const rank = x.shape.length;
  const perm = [...Array(rank).keys()];
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return kernels.transpose({ inputs: { x }, backend, attrs: { perm } });
}

export function batchMatMul(kernels: WasmKernels) {
  return (args: {
    inputs: { a: TensorInfo; b: TensorInfo };
    backend: BackendWasm;
    attrs: { transposeA: boolean; transposeB: boolean };
  }): TensorInfo => {
    const { inputs: { a, b }, backend, attrs } = args;
    if (!attrs.transposeA && !attrs.transposeB) {
      return kernels.batchMatMul(args);
    }
    const left = attrs.transposeA ? transposeLastTwo(kernels, backend, a) : a;
    const right = attrs.transposeB ? transposeLastTwo(kernels, backend, b) : b;
    const product = kernels.batchMatMul({
      inputs: { a: left, b: right },
      backend,
      attrs: { transposeA: false, transposeB: false },
    });
    if (left !== a) backend.disposeData(left.dataId);
    if (right !== b) backend.disposeData(right.dataId);
    return product;
  };
}
