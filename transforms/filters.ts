/**
 * Image filters on 28×28 (or any square) Float32Array images: the building
 * blocks of training-time augmentation and of the robustness suite. Pure functions.
 */

/** A normalised 1-D Gaussian kernel, truncated at `truncate` standard deviations. */
export function gaussianKernel(sigma: number, truncate = 4): Float32Array {
  const radius = Math.max(1, Math.ceil(truncate * sigma));
  const kernel = new Float32Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) {
    sum += kernel[i + radius] = Math.exp(-(i * i) / (2 * sigma * sigma));
  }
  for (let i = 0; i < kernel.length; i++) kernel[i] /= sum;
  return kernel;
}

/** Index into [0, size) for an out-of-range one: "reflect" (mirror about the edge) or "nearest". */
function boundary(i: number, size: number, mode: "reflect" | "nearest"): number {
  if (mode === "nearest") return Math.min(size - 1, Math.max(0, i));
  // scipy's "reflect": (d c b a | a b c d | d c b a)
  const period = 2 * size;
  let j = ((i % period) + period) % period;
  if (j >= size) j = period - 1 - j;
  return j;
}

/**
 * Separable Gaussian blur of one size×size image (from `src` at `offset`).
 * Edges follow scipy/skimage's default "nearest" mode unless told otherwise.
 */
export function gaussianBlur(
  src: Float32Array,
  sigma: number,
  size = 28,
  offset = 0,
  mode: "reflect" | "nearest" = "nearest",
  truncate = 4,
): Float32Array {
  const out = new Float32Array(size * size);
  if (sigma <= 0) {
    out.set(src.subarray(offset, offset + size * size));
    return out;
  }
  const kernel = gaussianKernel(sigma, truncate);
  const taps = kernel.length;
  const radius = (taps - 1) / 2;
  // Border pixels are looked up once per line into a padded copy, so the
  // inner loops are plain multiply-adds.
  const padIndex = Int32Array.from(
    { length: size + 2 * radius },
    (_, i) => boundary(i - radius, size, mode),
  );
  const line = new Float32Array(size + 2 * radius);
  const rows = new Float32Array(size * size);
  for (let y = 0; y < size; y++) {
    const base = offset + y * size;
    for (let i = 0; i < line.length; i++) line[i] = src[base + padIndex[i]];
    for (let x = 0; x < size; x++) {
      let sum = 0;
      for (let k = 0; k < taps; k++) sum += kernel[k] * line[x + k];
      rows[y * size + x] = sum;
    }
  }
  for (let x = 0; x < size; x++) {
    for (let i = 0; i < line.length; i++) line[i] = rows[padIndex[i] * size + x];
    for (let y = 0; y < size; y++) {
      let sum = 0;
      for (let k = 0; k < taps; k++) sum += kernel[k] * line[y + k];
      out[y * size + x] = sum;
    }
  }
  return out;
}

export function clip01(value: number): number {
  return value < 0 ? 0 : value > 1 ? 1 : value;
}
