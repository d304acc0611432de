/**
 * The backend's matrix product is about 10x slower with a transposed operand
 * than without. An explicit transpose (a cheap memory pass) followed by the
 * untransposed product is much faster.
 *
 * The backend also packs the right operand anew at every call; when it is
 * the larger one (a dense layer's weights, in x·W and in dy·Wᵀ), the
 * product is taken as (Bᵀ·Aᵀ)ᵀ, which packs only the small batch side.
 */
import type { BackendWasm } from "../deps_tfjs.ts";
import { sizeOf, type TensorInfo, type WasmKernels } from "./wasm_heap.ts";

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

export interface MatMulArgs {
  inputs: { a: TensorInfo; b: TensorInfo };
  backend: BackendWasm;
  attrs: { transposeA: boolean; transposeB: boolean };
}

export function batchMatMul(kernels: WasmKernels) {
  return (args: MatMulArgs): TensorInfo => {
    const { inputs: { a, b }, backend, attrs } = args;
    const [m, k] = attrs.transposeA ? a.shape.slice(-2).reverse() : a.shape.slice(-2);
    const n = attrs.transposeB ? b.shape.at(-2)! : b.shape.at(-1)!;
    const single = sizeOf(a.shape) === m * k && sizeOf(b.shape) === n * k;
    const owned: TensorInfo[] = [];
    const plain = (x: TensorInfo, rows: number, cols: number, transposed: boolean) => {
      if (!transposed) return { ...x, shape: [rows, cols] };
      const copy = transposeLastTwo(kernels, backend, { ...x, shape: [cols, rows] });
      owned.push(copy);
      return copy;
    };
    const multiply = (left: TensorInfo, right: TensorInfo) =>
      kernels.batchMatMul({
        inputs: { a: left, b: right },
        backend,
        attrs: { transposeA: false, transposeB: false },
      });
    try {
      if (single && n > m) {
        // (Bᵀ·Aᵀ)ᵀ: the backend packs Aᵀ, the smaller operand.
        const productT = multiply(
          plain(b, n, k, !attrs.transposeB),
          plain(a, k, m, !attrs.transposeA),
        );
        owned.push(productT);
        const product = transposeLastTwo(kernels, backend, { ...productT, shape: [n, m] });
        return { ...product, shape: [...a.shape.slice(0, -2), m, n] };
      }
      if (!attrs.transposeA && !attrs.transposeB) return kernels.batchMatMul(args);
      const left = attrs.transposeA ? transposeLastTwo(kernels, backend, a) : a;
      const right = attrs.transposeB ? transposeLastTwo(kernels, backend, b) : b;
      if (left !== a) owned.push(left);
      if (right !== b) owned.push(right);
      return multiply(left, right);
    } finally {
      for (const tensor of owned) backend.disposeData(tensor.dataId);
    }
  };
}
