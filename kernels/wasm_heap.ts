/**
 * Direct access to the wasm backend's heap, for kernels written in TypeScript
 * that read and write tensors in place instead of copying through JS arrays.
 *
 * The heap's views go stale whenever wasm memory grows (every allocation may
 * grow it), so always take `heap(backend)` after the last `makeOutput`.
 */
import type { BackendWasm, tf } from "../deps_tfjs.ts";

export type TensorInfo = tf.TensorInfo;

export function heap(backend: BackendWasm): Float32Array {
  // The emscripten module has HEAPF32; tfjs's typings leave it out.
  return (backend.wasm as unknown as { HEAPF32: Float32Array }).HEAPF32;
}

/** Index of a tensor's first element in `heap(backend)`. */
export function heapIndex(backend: BackendWasm, tensor: TensorInfo): number {
  const data = backend.dataIdMap.get(tensor.dataId);
  if (data === undefined) throw new Error("Tensor is not on the wasm backend.");
  return data.memoryOffset / Float32Array.BYTES_PER_ELEMENT;
}

/** A kernel function as registered by the wasm backend. */
export type WasmKernelFunc = (args: {
  inputs: Record<string, TensorInfo>;
  backend: BackendWasm;
  attrs?: Record<string, unknown>;
}) => TensorInfo;

/**
 * Kernels we call from our own kernels: the backend's originals, captured
 * before any replacement is registered.
 */
export interface WasmKernels {
  conv2d: WasmKernelFunc;
  batchMatMul: WasmKernelFunc;
  transpose: WasmKernelFunc;
}

export function sizeOf(shape: readonly number[]): number {
  let size = 1;
  for (const dim of shape) size *= dim;
  return size;
}
