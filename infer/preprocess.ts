/**
 * MNIST-style preprocessing of a person's digit image, as pure functions on
 * grayscale pixels: ink made bright on dark, background removed, cropped to
 * the ink, fit into 20×20 keeping the aspect ratio, and placed in a 28×28
 * frame with its centre of mass at the centre (as LeCun et al. prepared
 * MNIST).
 */

export interface GrayImage {
  width: number;
  height: number;
  /** Row-major, 0 (black) to 255 (white). */
  data: Uint8Array;
}

export class PreprocessError extends Error {}

/**
 * Decoded pixels (1 to 4 channels: gray, gray + alpha, RGB, RGBA) as 8-bit
 * gray, transparency flattened onto white and colour weighted as Rec. 601
 * luma. The one conversion behind `deno task infer` (pixels from sharp) and
 * the digit lab (pixels from a canvas), so both feed `toMnist` the same bytes.
 */
export function grayFromPixels(
  pixels: ArrayLike<number>,
  width: number,
  height: number,
  channels: number,
): GrayImage {
  if (!(channels >= 1 && channels <= 4) || pixels.length !== width * height * channels) {
    throw new PreprocessError(
      `has ${pixels.length} values for ${width}x${height} pixels of ${channels} channels`,
    );
  }
  const data = new Uint8Array(width * height);
  const hasAlpha = channels === 2 || channels === 4;
  for (let i = 0, p = 0; i < data.length; i++, p += channels) {
    const luma = channels >= 3
      ? 0.299 * pixels[p] + 0.587 * pixels[p + 1] + 0.114 * pixels[p + 2]
      : pixels[p];
    const alpha = hasAlpha ? pixels[p + channels - 1] / 255 : 1;
    data[i] = Math.round(luma * alpha + 255 * (1 - alpha));
  }
  return { width, height, data };
}

export const MIN_SIDE = 8;
const FIT = 20;
const FRAME = 28;
/** Ink fainter than this (after normalising the strongest ink to 1) is noise. */
const INK_FLOOR = 0.15;
/** A picture whose ink contrast is below this is blank. */
const MIN_CONTRAST = 0.1;

function median(values: number[]): number {
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** The border's median brightness in [0, 1]: the paper (or screen) behind the digit. */
export function backgroundLevel(image: GrayImage): number {
  const { width, height, data } = image;
  const border: number[] = [];
  for (let x = 0; x < width; x++) border.push(data[x], data[(height - 1) * width + x]);
  for (let y = 1; y < height - 1; y++) border.push(data[y * width], data[y * width + width - 1]);
  return median(border) / 255;
}

/**
 * Ink in [0, 1], bright on dark whatever the original polarity, with the
 * background subtracted and the strongest ink scaled to 1.
 */
export function inkMap(image: GrayImage): Float32Array {
  const background = backgroundLevel(image);
  const darkInk = background > 0.5;
  const ink = new Float32Array(image.width * image.height);
  let strongest = 0;
  for (let i = 0; i < ink.length; i++) {
    const value = image.data[i] / 255;
    const contrast = darkInk ? background - value : value - background;
    ink[i] = Math.max(0, contrast);
    strongest = Math.max(strongest, ink[i]);
  }
  if (strongest < MIN_CONTRAST) throw new PreprocessError("has no ink: the image is blank");
  for (let i = 0; i < ink.length; i++) {
    const value = ink[i] / strongest;
    ink[i] = value < INK_FLOOR ? 0 : value;
  }
  return ink;
}

interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

function inkBox(ink: Float32Array, width: number, height: number): Box {
  let left = width, right = -1, top = height, bottom = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (ink[y * width + x] > 0) {
        left = Math.min(left, x);
        right = Math.max(right, x);
        top = Math.min(top, y);
        bottom = Math.max(bottom, y);
      }
    }
  }
  return { left, top, width: right - left + 1, height: bottom - top + 1 };
}

/**
 * Resamples a region of `src` to outWidth × outHeight: area averaging when
 * shrinking (anti-aliased, like MNIST's own preparation), bilinear when
 * enlarging.
 */
export function resample(
  src: Float32Array,
  srcWidth: number,
  box: Box,
  outWidth: number,
  outHeight: number,
): Float32Array {
  const out = new Float32Array(outWidth * outHeight);
  const sx = box.width / outWidth;
  const sy = box.height / outHeight;
  const at = (x: number, y: number) => src[(box.top + y) * srcWidth + box.left + x];
  for (let oy = 0; oy < outHeight; oy++) {
    for (let ox = 0; ox < outWidth; ox++) {
      let value: number;
      if (sx >= 1 && sy >= 1) {
        const x0 = ox * sx, x1 = x0 + sx, y0 = oy * sy, y1 = y0 + sy;
        let sum = 0;
        for (let y = Math.floor(y0); y < Math.min(box.height, Math.ceil(y1)); y++) {
          const wy = Math.min(y + 1, y1) - Math.max(y, y0);
          for (let x = Math.floor(x0); x < Math.min(box.width, Math.ceil(x1)); x++) {
            sum += at(x, y) * wy * (Math.min(x + 1, x1) - Math.max(x, x0));
          }
        }
        value = sum / (sx * sy);
      } else {
        const x = Math.min(box.width - 1, Math.max(0, (ox + 0.5) * sx - 0.5));
        const y = Math.min(box.height - 1, Math.max(0, (oy + 0.5) * sy - 0.5));
        const xi = Math.min(box.width - 2, Math.floor(x)),
          yi = Math.min(box.height - 2, Math.floor(y));
        if (box.width === 1 || box.height === 1) {
          value = at(Math.round(x), Math.round(y));
        } else {
          const fx = x - xi, fy = y - yi;
          value = (at(xi, yi) * (1 - fx) + at(xi + 1, yi) * fx) * (1 - fy) +
            (at(xi, yi + 1) * (1 - fx) + at(xi + 1, yi + 1) * fx) * fy;
        }
      }
      out[oy * outWidth + ox] = value;
    }
  }
  return out;
}

/** Centre of mass (x, y) of a patch, in its pixel coordinates. */
export function centreOfMass(patch: Float32Array, width: number): [number, number] {
  let mass = 0, cx = 0, cy = 0;
  for (let i = 0; i < patch.length; i++) {
    mass += patch[i];
    cx += patch[i] * (i % width);
    cy += patch[i] * Math.floor(i / width);
  }
  return mass > 0 ? [cx / mass, cy / mass] : [(width - 1) / 2, (patch.length / width - 1) / 2];
}

/** A person's digit as the 28×28 [0, 1] image an MNIST model expects. */
export function toMnist(image: GrayImage): Float32Array {
  if (image.width < MIN_SIDE || image.height < MIN_SIDE) {
    throw new PreprocessError(
      `is ${image.width}x${image.height} pixels, too small to hold a digit (at least ${MIN_SIDE}x${MIN_SIDE})`,
    );
  }
  const ink = inkMap(image);
  const box = inkBox(ink, image.width, image.height);
  const scale = FIT / Math.max(box.width, box.height);
  const outWidth = Math.max(1, Math.round(box.width * scale));
  const outHeight = Math.max(1, Math.round(box.height * scale));
  const patch = resample(ink, image.width, box, outWidth, outHeight);
  const [cx, cy] = centreOfMass(patch, outWidth);
  const centre = (FRAME - 1) / 2;
  const offsetX = Math.round(centre - cx);
  const offsetY = Math.round(centre - cy);
  const frame = new Float32Array(FRAME * FRAME);
  for (let y = 0; y < outHeight; y++) {
    const fy = y + offsetY;
    if (fy < 0 || fy >= FRAME) continue;
    for (let x = 0; x < outWidth; x++) {
      const fx = x + offsetX;
      if (fx >= 0 && fx < FRAME) frame[fy * FRAME + fx] = Math.min(1, patch[y * outWidth + x]);
    }
  }
  return frame;
}
