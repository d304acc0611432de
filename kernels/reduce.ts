/**
 * Sum and Mean over leading axes (all but the channels), as the BatchNorm
 * forward and backward passes reduce NHWC activations. The backend
 * transposes before it reduces; a flat pass over the rows is several times
 * faster. Other reductions use the backend's kernels.
 */
import { type BackendWasm, tf } from "../deps_tfjs.ts";
import { heap, heapIndex, sizeOf, type TensorInfo, type WasmKernelFunc } from "./wasm_heap.ts";

/** Number of leading axes reduced, or -1 when the reduction is not of that form. */
export function leadingAxesCount(axis: number | number[], rank: number): number {
  const axes = tf.util.parseAxisParam(axis, Array(rank).fill(1)).sort((a, b) => a - b);
  return axes.every((value, index) => value === index) && axes.length < rank ? axes.length : -1;
}

export interface ReduceArgs {
  inputs: { x: TensorInfo };
  backend: BackendWasm;
  attrs: { axis: number | number[]; keepDims: boolean };
}

function reduceLeading(mean: boolean, original: WasmKernelFunc) {
  return (args: ReduceArgs): TensorInfo => {
    const { inputs: { x }, backend, attrs } = args;
    const reduced = leadingAxesCount(attrs.axis, x.shape.length);
    if (x.dtype !== "float32" || reduced <= 0) return original(args);
    const rows = sizeOf(x.shape.slice(0, reduced));
    const width = sizeOf(x.shape.slice(reduced));
    const outShape = attrs.keepDims
      ? x.shape.map((dim, axis) => (axis < reduced ? 1 : dim))
      : x.shape.slice(reduced);
    const out = backend.makeOutput(outShape, "float32");
    const mem = heap(backend);
    const acc = new Float64Array(width);
    let at = heapIndex(backend, x);
    for (let row = 0; row < rows; row++) {
      for (let c = 0; c < width; c++) acc[c] += mem[at++];
    }
    const scale = mean ? 1 / rows : 1;
    const dst = heapIndex(backend, out);
    for (let c = 0; c < width; c++) mem[dst + c] = acc[c] * scale;
    return out;
  };
}

export const sum = (original: WasmKernelFunc) => reduceLeading(false, original);
export const mean = (original: WasmKernelFunc) => reduceLeading(true, original);
