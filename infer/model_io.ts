/**
 * What an MNIST classifier's tensors look like, as pure functions shared by
 * ONNX Runtime on the server (classifier.ts) and onnxruntime-web in the
 * digit lab: the input layouts a model may ask for, and how its outputs
 * become probabilities.
 */

export type InputLayout = "nhwc" | "nchw" | "flat";
export const INPUT_LAYOUTS: readonly InputLayout[] = ["nhwc", "nchw", "flat"];

const PIXELS = 28 * 28;

/** The input tensor's dimensions for `count` images in `layout`. */
export function dimsFor(layout: InputLayout, count: number): number[] {
  if (layout === "nhwc") return [count, 28, 28, 1];
  if (layout === "nchw") return [count, 1, 28, 28];
  return [count, PIXELS];
}

/** The layout a model's input shape asks for, or undefined if it cannot take a 28×28 image. */
export function detectLayout(shape: ReadonlyArray<number | string>): InputLayout | undefined {
  const fixed = (dim: number | string | undefined, size: number) => dim === size;
  if (shape.length === 4 && fixed(shape[1], 28) && fixed(shape[2], 28) && fixed(shape[3], 1)) {
    return "nhwc";
  }
  if (shape.length === 4 && fixed(shape[1], 1) && fixed(shape[2], 28) && fixed(shape[3], 28)) {
    return "nchw";
  }
  if (shape.length === 2 && fixed(shape[1], PIXELS)) return "flat";
  return undefined;
}

/** Whether every row is a probability distribution (in [0, 1], summing to 1). */
export function rowsAreProbabilities(values: Float32Array, classes: number): boolean {
  for (let base = 0; base < values.length; base += classes) {
    let sum = 0;
    for (let c = 0; c < classes; c++) {
      const value = values[base + c];
      if (!(value >= 0 && value <= 1)) return false;
      sum += value;
    }
    if (Math.abs(sum - 1) > 1e-3) return false;
  }
  return true;
}

/** Softmax of each row (numerically stable). */
export function softmaxRows(values: Float32Array, classes: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let base = 0; base < values.length; base += classes) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, values[base + c]);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += out[base + c] = Math.exp(values[base + c] - max);
    for (let c = 0; c < classes; c++) out[base + c] /= sum;
  }
  return out;
}

/** Index of the largest value in each row of 10. */
export function argmaxRows(probabilities: Float32Array, classes = 10): Uint8Array {
  const rows = probabilities.length / classes;
  const out = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) {
      if (probabilities[r * classes + c] > probabilities[r * classes + best]) best = c;
    }
    out[r] = best;
  }
  return out;
}
