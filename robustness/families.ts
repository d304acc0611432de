/**
 * The robustness suite: families of perturbations, each a sweep of levels.
 * Geometric families use bilinear interpolation with zero fill about the
 * image centre; the identity level of each sweep is the clean image.
 */
import { type AffineParams, inverseAffine, warpAffine } from "../transforms/affine.ts";
import type { Random } from "../util/random.ts";
import { MNIST_C, MNIST_C_PREPARE } from "./corruptions.ts";
import { elasticDeform, elasticField } from "../transforms/elastic.ts";
import { clip01, gaussianBlur } from "../transforms/filters.ts";

const SIZE = 28;
const PIXELS = SIZE * SIZE;

export interface Family {
  name: string;
  /** What a level means, for tables and plot axes. */
  unit: string;
  levels: number[];
  /** The level that leaves images unchanged, if the sweep has one. */
  identity?: number;
  /** "sweep" families are plotted against their level; "mnist-c" ones form the bar chart. */
  group: "sweep" | "mnist-c";
  /**
   * Work shared by all levels and images of one run (random fields drawn
   * once per image, so a sweep scales the same perturbation).
   */
  prepare?(images: Float32Array, random: Random): unknown;
  /** Perturbs image `index` of the batch at one level. */
  apply(
    image: Float32Array,
    level: number,
    random: Random,
    prepared: unknown,
    index: number,
  ): Float32Array;
}

function range(from: number, to: number, step: number): number[] {
  const count = Math.round((to - from) / step) + 1;
  return Array.from({ length: count }, (_, i) => Math.round((from + i * step) * 1e6) / 1e6);
}

function affineFamily(
  name: string,
  unit: string,
  levels: number[],
  identity: number,
  params: (level: number) => AffineParams,
): Family {
  return {
    name,
    unit,
    levels,
    identity,
    group: "sweep",
    apply(image, level) {
      const out = new Float32Array(PIXELS);
      warpAffine(image, 0, out, 0, inverseAffine(params(level)));
      return out;
    },
  };
}

/** One `perImage(random)` result per image of the batch, drawn in order. */
function perImage<T>(images: Float32Array, random: Random, draw: (random: Random) => T): T[] {
  return Array.from({ length: images.length / PIXELS }, () => draw(random));
}

export const FAMILIES: Family[] = [
  affineFamily(
    "rotation",
    "degrees (counter-clockwise)",
    range(-60, 60, 5),
    0,
    (d) => ({ rotation: (d * Math.PI) / 180 }),
  ),
  affineFamily("shift_x", "pixels (right)", range(-6, 6, 1), 0, (s) => ({ shiftX: s })),
  affineFamily("shift_y", "pixels (down)", range(-6, 6, 1), 0, (s) => ({ shiftY: s })),
  affineFamily("zoom", "scale factor", range(0.5, 1.5, 0.1), 1, (z) => ({ zoom: z })),
  affineFamily("shear", "horizontal shear", range(-0.6, 0.6, 0.2), 0, (k) => ({ shear: k })),
  {
    name: "elastic",
    unit: "displacement scale alpha (sigma 4)",
    levels: [0, 20, 40, 60, 80],
    identity: 0,
    group: "sweep",
    prepare: (images, random) => perImage(images, random, elasticField),
    apply: (image, level, _random, fields, index) =>
      elasticDeform(image, level, (fields as Float32Array[])[index]),
  },
  {
    name: "gaussian_noise",
    unit: "noise standard deviation",
    levels: [0, 0.1, 0.2, 0.3, 0.4],
    identity: 0,
    group: "sweep",
    prepare: (images, random) =>
      perImage(images, random, (r) => Float32Array.from({ length: PIXELS }, () => r.normal())),
    apply: (image, level, _random, noise, index) => {
      const pattern = (noise as Float32Array[])[index];
      return image.map((v, i) => clip01(v + level * pattern[i]));
    },
  },
  {
    name: "gaussian_blur",
    unit: "blur sigma (pixels)",
    levels: [0, 0.5, 1, 1.5, 2],
    identity: 0,
    group: "sweep",
    apply: (image, level) => gaussianBlur(image, level),
  },
  ...Object.entries(MNIST_C).map(([name, corrupt]): Family => ({
    name: `mnist_c/${name}`,
    unit: "MNIST-C severity",
    levels: [1],
    group: "mnist-c",
    prepare: MNIST_C_PREPARE[name] ? (_images, random) => MNIST_C_PREPARE[name](random) : undefined,
    apply: (image, _level, random, shared) => corrupt(image, random, shared),
  })),
];

export function familyByName(name: string): Family | undefined {
  return FAMILIES.find((family) => family.name === name);
}

/**
 * Perturbs a batch (count × 784) at one level; each image draws from
 * `random` in turn. `prepared` is what `family.prepare` gave for this batch.
 */
export function perturbBatch(
  family: Family,
  images: Float32Array,
  level: number,
  random: Random,
  prepared?: unknown,
): Float32Array {
  const out = new Float32Array(images.length);
  for (let offset = 0, index = 0; offset < images.length; offset += PIXELS, index++) {
    out.set(
      family.apply(images.subarray(offset, offset + PIXELS), level, random, prepared, index),
      offset,
    );
  }
  return out;
}
