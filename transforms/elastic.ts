/**
 * Elastic deformation (Simard et al., 2003) of 28×28 images: a random
 * displacement field, smoothed, scaled by alpha. Shared by training-time
 * augmentation and the robustness suite's elastic sweep.
 */
import type { Random } from "../util/random.ts";
import { gaussianBlur } from "./filters.ts";

const SIZE = 28;
const PIXELS = SIZE * SIZE;

/**
 * Displacement fields for elastic deformation (Simard et al., 2003): per
 * pixel uniform in [−1, 1], smoothed with a Gaussian of sigma 4; x then y.
 */
export function elasticField(random: Random, sigma = 4): Float32Array {
  const field = new Float32Array(2 * PIXELS);
  for (let axis = 0; axis < 2; axis++) {
    const noise = Float32Array.from({ length: PIXELS }, () => random.uniform(-1, 1));
    field.set(gaussianBlur(noise, sigma, SIZE, 0, "reflect"), axis * PIXELS);
  }
  return field;
}

/** Moves every pixel by alpha × field (bilinear, zero fill). */
export function elasticDeform(
  image: Float32Array,
  alpha: number,
  field: Float32Array,
): Float32Array {
  const out = new Float32Array(PIXELS);
  const at = (
    x: number,
    y: number,
  ) => (x >= 0 && x < SIZE && y >= 0 && y < SIZE ? image[y * SIZE + x] : 0);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const i = y * SIZE + x;
      const sx = x + alpha * field[i], sy = y + alpha * field[PIXELS + i];
      const x0 = Math.floor(sx), y0 = Math.floor(sy), fx = sx - x0, fy = sy - y0;
      out[i] = (at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx) * (1 - fy) +
        (at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx) * fy;
    }
  }
  return out;
}
