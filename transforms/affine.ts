/**
 * Affine warps of 28×28 images on plain Float32Arrays: bilinear
 * interpolation, zero fill outside the image. Pure TypeScript, shared by
 * training-time augmentation and the robustness suite (which must not depend
 * on tfjs).
 *
 * Coordinates are pixel centres, x to the right and y down; the image centre
 * is ((size-1)/2, (size-1)/2) = (13.5, 13.5) for MNIST.
 */

/**
 * Maps an output pixel (x, y) to the input point it samples:
 * [a, b, c, d, e, f] reads input (a·x + b·y + c, d·x + e·y + f).
 */
export type InverseAffine = readonly [number, number, number, number, number, number];

/** What an affine transform does to the digit, applied in this order about the centre. */
export interface AffineParams {
  /** Counter-clockwise on screen, in radians. */
  rotation?: number;
  /** Scale factor: above 1 enlarges the digit. */
  zoom?: number;
  /** Horizontal shear: x moves by shear·(y − centre), about the centre. */
  shear?: number;
  /** Shift in pixels, right and down. */
  shiftX?: number;
  shiftY?: number;
}

/**
 * The inverse map for `params`: the forward map is
 * p = c + S·Z·R·(q − c) + t, so q = c + R⁻¹·Z⁻¹·S⁻¹·(p − c − t).
 */
export function inverseAffine(params: AffineParams, size = 28): InverseAffine {
  const { rotation = 0, zoom = 1, shear = 0, shiftX = 0, shiftY = 0 } = params;
  if (!(zoom > 0)) throw new RangeError(`Zoom must be positive, got ${zoom}.`);
  const centre = (size - 1) / 2;
  const cos = Math.cos(rotation);
  const sin = Math.sin(rotation);
  // R (counter-clockwise on screen, y down) = [[cos, sin], [-sin, cos]];
  // R⁻¹ = [[cos, -sin], [sin, cos]]; S⁻¹ = [[1, -shear], [0, 1]].
  const m00 = cos / zoom;
  const m01 = (-cos * shear - sin) / zoom;
  const m10 = sin / zoom;
  const m11 = (-sin * shear + cos) / zoom;
  const px = -centre - shiftX;
  const py = -centre - shiftY;
  return [
    m00,
    m01,
    centre + m00 * px + m01 * py,
    m10,
    m11,
    centre + m10 * px + m11 * py,
  ];
}

/** Bilinear sample of `image` at (x, y), zero outside. */
export function sampleBilinear(
  image: Float32Array,
  offset: number,
  size: number,
  x: number,
  y: number,
): number {
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const fx = x - x0;
  const fy = y - y0;
  const at = (xi: number, yi: number) =>
    xi >= 0 && xi < size && yi >= 0 && yi < size ? image[offset + yi * size + xi] : 0;
  const top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx;
  const bottom = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx;
  return top * (1 - fy) + bottom * fy;
}

/**
 * Warps one size×size image from `src` (at `srcOffset`) into `dst` (at
 * `dstOffset`).
 */
export function warpAffine(
  src: Float32Array,
  srcOffset: number,
  dst: Float32Array,
  dstOffset: number,
  matrix: InverseAffine,
  size = 28,
): void {
  const [a, b, c, d, e, f] = matrix;
  const last = size - 1;
  let out = dstOffset;
  for (let y = 0; y < size; y++) {
    let sx = b * y + c;
    let sy = e * y + f;
    for (let x = 0; x < size; x++, sx += a, sy += d) {
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      if (x0 >= 0 && y0 >= 0 && x0 < last && y0 < last) {
        // All four neighbours inside: the common case, without bounds checks.
        const fx = sx - x0;
        const fy = sy - y0;
        const i = srcOffset + y0 * size + x0;
        const top = src[i] + (src[i + 1] - src[i]) * fx;
        const bottom = src[i + size] + (src[i + size + 1] - src[i + size]) * fx;
        dst[out++] = top + (bottom - top) * fy;
      } else if (x0 < -1 || y0 < -1 || x0 > last || y0 > last) {
        dst[out++] = 0;
      } else {
        dst[out++] = sampleBilinear(src, srcOffset, size, sx, sy);
      }
    }
  }
}

/** Warps every image of a batch with the same transform. */
export function warpBatch(
  images: Float32Array,
  params: AffineParams,
  size = 28,
): Float32Array {
  const matrix = inverseAffine(params, size);
  const pixels = size * size;
  const out = new Float32Array(images.length);
  for (let offset = 0; offset < images.length; offset += pixels) {
    warpAffine(images, offset, out, offset, matrix, size);
  }
  return out;
}
