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
import { drawPenMark, randomPenMark } from "./pen_marks.ts";

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
  /** Stray pen marks over the digit (pen_marks.ts): largest number of marks (0: off). */
  marks: number;
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
  marks: 0,
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

/** Adds `value(i)` to every pixel, in place. */
function addEach(image: Float32Array, value: (i: number) => number): Float32Array {
  for (let i = 0; i < PIXELS; i++) image[i] += value(i);
  return image;
}

/**
 * The families, in the fixed order they run: shape before ink before light
 * before sensor noise, as a photographed page would pass through them. Each
 * is on when its strength allows and maps a working copy of the image (in
 * place or to a new array), drawing its strength from `random`.
 */
const FAMILIES: Array<{
  on(jitter: AppearanceJitter): boolean;
  apply(image: Float32Array, random: Random, jitter: AppearanceJitter): Float32Array;
}> = [
  {
    on: (j) => j.elastic > 0,
    apply: (image, random, j) =>
      elasticDeform(image, random.uniform(0, j.elastic), elasticField(random)),
  },
  {
    on: (j) => j.stroke,
    apply: (image, random) => {
      const kind = random.int(3);
      if (kind !== 2) return morph(image, kind === 0 ? "dilate" : "erode");
      const inner = morph(image, "erode");
      return morph(image, "dilate").map((v, i) => v - inner[i]);
    },
  },
  {
    on: (j) => j.marks > 0,
    apply: (image, random, j) => {
      const count = 1 + random.int(j.marks);
      for (let m = 0; m < count; m++) image = drawPenMark(image, randomPenMark(random));
      return image;
    },
  },
  {
    on: (j) => j.blur > 0,
    apply: (image, random, j) => gaussianBlur(image, random.uniform(0.3, j.blur)),
  },
  {
    on: (j) => j.contrast < 1,
    apply: (image, random, j) => {
      const factor = random.uniform(j.contrast, 1);
      return image.map((v) => v * factor);
    },
  },
  {
    on: (j) => j.gamma > 0,
    apply: (image, random, j) => {
      const gamma = Math.exp(random.uniform(-j.gamma, j.gamma));
      return image.map((v) => clip01(v) ** gamma);
    },
  },
  {
    on: (j) => j.brightness > 0,
    apply: (image, random, j) => {
      const offset = random.uniform(0, j.brightness);
      return addEach(image, () => offset);
    },
  },
  {
    on: (j) => j.illumination > 0,
    apply: (image, random, j) => {
      const amplitude = random.uniform(0, j.illumination);
      const field = smoothField(random);
      return addEach(image, (i) => amplitude * field[i]);
    },
  },
  {
    on: (j) => j.noise > 0,
    apply: (image, random, j) => {
      const sigma = random.uniform(0, j.noise);
      return addEach(image, () => sigma * random.normal());
    },
  },
  {
    on: (j) => j.impulse > 0,
    apply: (image, random, j) => {
      const share = random.uniform(0, j.impulse);
      for (let i = 0; i < PIXELS; i++) {
        if (random.next() < share) image[i] = random.next() < 0.5 ? 0 : 1;
      }
      return image;
    },
  },
  {
    on: (j) => j.erasing > 0,
    apply: (image, random, j) => {
      erase(image, random, j.erasing);
      return image;
    },
  },
];

/**
 * One image (784 values) under random appearance jitter: the clean image
 * itself for `cleanShare` of the draws, otherwise a chain of 1 to `chain`
 * enabled families, drawn without repetition and run in FAMILIES' order.
 */
export function jitterAppearance(
  image: Float32Array,
  random: Random,
  jitter: AppearanceJitter,
): Float32Array {
  if (random.next() < jitter.cleanShare || jitter.chain < 1) return image;
  const enabled = FAMILIES.filter((family) => family.on(jitter));
  const chosen = new Set<(typeof FAMILIES)[number]>();
  const length = Math.min(enabled.length, 1 + random.int(jitter.chain));
  while (chosen.size < length) chosen.add(enabled[random.int(enabled.length)]);
  let out: Float32Array = image.slice();
  for (const family of FAMILIES) if (chosen.has(family)) out = family.apply(out, random, jitter);
  return out.map(clip01);
}
