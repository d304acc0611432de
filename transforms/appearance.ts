/**
 * Training-time appearance jitter for the robust model: generic families of
 * perturbation, each drawn at a random strength per image, so the network
 * sees pens, scanners, light and noise it will meet after deployment.
 * Written for training; the robustness suite's corruptions are a test and
 * are not imported here (tests/architecture_test.ts checks it).
 *
 * Pure functions on 28×28 images in [0, 1], ink bright on dark.
 */
import type { Random } from "../util/random.ts";
import { elasticDeform, elasticField } from "./elastic.ts";
import { clip01, gaussianBlur } from "./filters.ts";

const SIZE = 28;
const PIXELS = SIZE * SIZE;

/** Largest strength of each family; a family at 0 is off. */
export interface AppearanceJitter {
  /** Share of images that keep their clean appearance (geometry still applies). */
  cleanShare: number;
  /**
   * Most families applied to one of the other images: each gets between 1
   * and this many, drawn at random (a short chain, as in AugMix), so that
   * strong perturbations rarely compound into an unreadable digit.
   */
  chain: number;
  /** Elastic deformation: largest alpha (field smoothed with sigma 4). */
  elastic: number;
  /** Pen width: one 3×3 dilation or erosion, or the stroke's outline (dilation minus erosion). */
  stroke: boolean;
  /** Gaussian blur: largest sigma in pixels. */
  blur: number;
  /** Grey ink: smallest factor the ink is scaled by. */
  contrast: number;
  /** Gamma: largest |ln gamma|. */
  gamma: number;
  /** Brightness: largest offset added to every pixel. */
  brightness: number;
  /** Uneven light: largest amplitude of a smooth random field added to the image. */
  illumination: number;
  /** Gaussian noise: largest standard deviation. */
  noise: number;
  /** Salt-and-pepper noise: largest share of pixels set to 0 or 1. */
  impulse: number;
  /** Random erasing: largest side of a rectangle (fraction of the image) filled or inverted. */
  erasing: number;
}

/** No appearance change: the improved model's augmentation is geometry only. */
export const NO_JITTER: AppearanceJitter = {
  cleanShare: 1,
  chain: 0,
  elastic: 0,
  stroke: false,
  blur: 0,
  contrast: 1,
  gamma: 0,
  brightness: 0,
  illumination: 0,
  noise: 0,
  impulse: 0,
  erasing: 0,
};

/** Grey-level morphology with a 3×3 square: max (dilation) or min (erosion). */
export function morph(image: Float32Array, op: "dilate" | "erode"): Float32Array {
  const out = new Float32Array(PIXELS);
  const dilate = op === "dilate";
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      let value = dilate ? 0 : 1;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          // Outside the frame is background (0).
          const v = yy < 0 || yy >= SIZE || xx < 0 || xx >= SIZE ? 0 : image[yy * SIZE + xx];
          value = dilate ? Math.max(value, v) : Math.min(value, v);
        }
      }
      out[y * SIZE + x] = value;
    }
  }
  return out;
}

/** A smooth random field in [0, 1]: a 4×4 grid of uniform values, bilinearly upsampled. */
export function smoothField(random: Random, grid = 4): Float32Array {
  const knots = Float32Array.from({ length: grid * grid }, () => random.next());
  const out = new Float32Array(PIXELS);
  const scale = (grid - 1) / (SIZE - 1);
  for (let y = 0; y < SIZE; y++) {
    const gy = y * scale, y0 = Math.min(grid - 2, Math.floor(gy)), fy = gy - y0;
    for (let x = 0; x < SIZE; x++) {
      const gx = x * scale, x0 = Math.min(grid - 2, Math.floor(gx)), fx = gx - x0;
      const k = y0 * grid + x0;
      const top = knots[k] + (knots[k + 1] - knots[k]) * fx;
      const bottom = knots[k + grid] + (knots[k + grid + 1] - knots[k + grid]) * fx;
      out[y * SIZE + x] = top + (bottom - top) * fy;
    }
  }
  return out;
}

/** Fills (or inverts) a random rectangle of sides up to `largest` of the image. */
function erase(image: Float32Array, random: Random, largest: number): void {
  const side = () => 2 + random.int(Math.max(1, Math.round(largest * SIZE) - 1));
  const width = side(), height = side();
  const left = random.int(SIZE - width + 1), top = random.int(SIZE - height + 1);
  const invert = random.next() < 0.5;
  const fill = random.next();
  for (let y = top; y < top + height; y++) {
    for (let x = left; x < left + width; x++) {
      const i = y * SIZE + x;
      image[i] = invert ? 1 - image[i] : fill;
    }
  }
}

/**
 * One image (784 values) under random appearance jitter. Families run in a
 * fixed order, shape before ink before light before sensor noise, as a
 * photographed page would pass through them.
 */
export function jitterAppearance(
  image: Float32Array,
  random: Random,
  jitter: AppearanceJitter,
): Float32Array {
  if (random.next() < jitter.cleanShare || jitter.chain < 1) return image;
  const enabled = [
    jitter.elastic > 0,
    jitter.stroke,
    jitter.blur > 0,
    jitter.contrast < 1,
    jitter.gamma > 0,
    jitter.brightness > 0,
    jitter.illumination > 0,
    jitter.noise > 0,
    jitter.impulse > 0,
    jitter.erasing > 0,
  ].flatMap((on, family) => on ? [family] : []);
  // The chain's families, drawn without repetition, then run in the fixed order.
  const chosen = new Set<number>();
  const length = Math.min(enabled.length, 1 + random.int(jitter.chain));
  while (chosen.size < length) chosen.add(enabled[random.int(enabled.length)]);
  let family = 0;
  const pick = () => chosen.has(family++);
  let out = image;
  if (pick()) {
    out = elasticDeform(out, random.uniform(0, jitter.elastic), elasticField(random));
  }
  if (pick()) {
    const kind = random.int(3);
    if (kind === 2) {
      const outer = morph(out, "dilate"), inner = morph(out, "erode");
      out = outer.map((v, i) => v - inner[i]);
    } else {
      out = morph(out, kind === 0 ? "dilate" : "erode");
    }
  }
  if (pick()) out = gaussianBlur(out, random.uniform(0.3, jitter.blur));
  out = out === image ? image.slice() : out;
  if (pick()) {
    const factor = random.uniform(jitter.contrast, 1);
    for (let i = 0; i < PIXELS; i++) out[i] *= factor;
  }
  if (pick()) {
    const gamma = Math.exp(random.uniform(-jitter.gamma, jitter.gamma));
    for (let i = 0; i < PIXELS; i++) out[i] = clip01(out[i]) ** gamma;
  }
  if (pick()) {
    const offset = random.uniform(0, jitter.brightness);
    for (let i = 0; i < PIXELS; i++) out[i] += offset;
  }
  if (pick()) {
    const amplitude = random.uniform(0, jitter.illumination);
    const field = smoothField(random);
    for (let i = 0; i < PIXELS; i++) out[i] += amplitude * field[i];
  }
  if (pick()) {
    const sigma = random.uniform(0, jitter.noise);
    for (let i = 0; i < PIXELS; i++) out[i] += sigma * random.normal();
  }
  if (pick()) {
    const share = random.uniform(0, jitter.impulse);
    for (let i = 0; i < PIXELS; i++) {
      if (random.next() < share) out[i] = random.next() < 0.5 ? 0 : 1;
    }
  }
  if (pick()) erase(out, random, jitter.erasing);
  for (let i = 0; i < PIXELS; i++) out[i] = clip01(out[i]);
  return out;
}
