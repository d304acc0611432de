/**
 * Tile by block copies. The BatchNorm gradient tiles per-channel vectors over
 * whole activations; the backend's element-wise kernel is slow at that.
 */
import type { BackendWasm } from "../deps_tfjs.ts";
import { heap, heapIndex, sizeOf, type TensorInfo } from "./wasm_heap.ts";

/** Repeats `block` elements at `start` until `total` elements are filled. */
function repeatBlock(mem: Float32Array, start: number, block: number, total: number) {
  let filled = block;
  while (filled < total) {
    const chunk = Math.min(filled, total - filled);
    mem.copyWithin(start + filled, start, start + chunk);
    filled += chunk;
  }
}

export function tile(args: {
  inputs: { x: TensorInfo };
  backend: BackendWasm;
  attrs: { reps: number[] };
}): TensorInfo {
  const { inputs: { x }, backend, attrs: { reps } } = args;
  if (x.dtype !== "float32" && x.dtype !== "int32") {
    throw new Error(`Tile supports float32 and int32 tensors, got ${x.dtype}.`);
  }
  const inShape = x.shape;
  const outShape = inShape.map((dim, axis) => dim * reps[axis]);
  const out = backend.makeOutput(outShape, x.dtype);
  if (sizeOf(outShape) === 0) return out;
  // int32 and float32 are both 4-byte words: copying through the float view
  // moves the bits unchanged.
  const mem = heap(backend);
  const src = heapIndex(backend, x);
  const dst = heapIndex(backend, out);
  const rank = inShape.length;
  const inStrides = inShape.map((_, axis) => sizeOf(inShape.slice(axis + 1)));
  const outStrides = outShape.map((_, axis) => sizeOf(outShape.slice(axis + 1)));

  // Fill out[axis...] from x[axis...], innermost axes first, then repeat the
  // filled block along this axis.
  const fill = (axis: number, from: number, to: number) => {
    const inner = outStrides[axis];
    if (axis === rank - 1) {
      mem.copyWithin(to, from, from + inShape[axis]);
    } else {
      for (let i = 0; i < inShape[axis]; i++) {
        fill(axis + 1, from + i * inStrides[axis], to + i * inner);
      }
    }
    repeatBlock(mem, to, inShape[axis] * inner, outShape[axis] * inner);
  };
  if (rank === 0) mem[dst] = mem[src];
  else fill(0, src, dst);
  return out;
}
