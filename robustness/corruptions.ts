/**
 * The 15 corruptions of MNIST-C (Mu and Gilmer, 2019), each at the severity
 * its published dataset uses, written in TypeScript from the paper's
 * definitions. One image in, one image out, values in [0, 1]; all
 * randomness comes from the given generator.
 *
 * Where the original relies on a library routine (ImageMagick's motion blur,
 * skimage's Canny), the routine is re-implemented from its definition; the
 * results are close to, not bit-identical with, the published images.
 */
import type { Random } from "../util/random.ts";
import { type InverseAffine, warpAffine } from "../transforms/affine.ts";
import { clip01, gaussianBlur } from "../transforms/filters.ts";

const SIZE = 28;
const PIXELS = SIZE * SIZE;
const CENTRE = 13.5;

export type Corruption = (image: Float32Array, random: Random, shared?: unknown) => Float32Array;

function map(image: Float32Array, f: (value: number, index: number) => number): Float32Array {
  const out = new Float32Array(PIXELS);
  for (let i = 0; i < PIXELS; i++) out[i] = f(image[i], i);
  return out;
}

function randomSign(random: Random): number {
  return random.next() < 0.5 ? -1 : 1;
}

/** Knuth's Poisson sampler (small means only, as here: at most 3). */
function poisson(random: Random, mean: number): number {
  const limit = Math.exp(-mean);
  let k = 0;
  let p = random.next();
  while (p > limit) {
    k++;
    p *= random.next();
  }
  return k;
}

/** Applies an inverse map [[a, b], [d, e]] about the centre (13.5, 13.5), plus a shift. */
function warpAboutCentre(
  image: Float32Array,
  a: number,
  b: number,
  d: number,
  e: number,
  tx = 0,
  ty = 0,
) {
  const matrix: InverseAffine = [
    a,
    b,
    CENTRE * (1 - a - b) + tx,
    d,
    e,
    CENTRE * (1 - d - e) + ty,
  ];
  const out = new Float32Array(PIXELS);
  warpAffine(image, 0, out, 0, matrix);
  return out;
}

export const shotNoise: Corruption = (image, random) => {
  const photons = 3;
  return map(image, (v) => clip01(poisson(random, v * photons) / photons));
};

export const impulseNoise: Corruption = (image, random) => {
  const amount = 0.17;
  return map(image, (v) => (random.next() < amount ? (random.next() < 0.5 ? 0 : 1) : v));
};

export const glassBlur: Corruption = (image, random) => {
  const sigma = 0.7, delta = 1, passes = 2;
  // The original quantises to 8 bits between its steps.
  const blurred = Uint8Array.from(gaussianBlur(image, sigma), (v) => Math.floor(clip01(v) * 255));
  for (let pass = 0; pass < passes; pass++) {
    for (let y = SIZE - delta; y > delta; y--) {
      for (let x = SIZE - delta; x > delta; x--) {
        if (random.next() < 0.5) {
          const dx = -delta + random.int(2 * delta);
          const dy = -delta + random.int(2 * delta);
          const here = y * SIZE + x;
          const there = (y + dy) * SIZE + (x + dx);
          [blurred[here], blurred[there]] = [blurred[there], blurred[here]];
        }
      }
    }
  }
  return map(gaussianBlur(Float32Array.from(blurred, (v) => v / 255), sigma), clip01);
};

export const motionBlur: Corruption = (image, random) => {
  // ImageMagick's motion blur: a one-sided Gaussian-weighted streak of
  // `radius` pixels in the direction `angle`.
  const radius = 10, sigma = 3;
  const angle = (random.uniform(-45, 45) * Math.PI) / 180;
  const weights = Array.from(
    { length: radius + 1 },
    (_, k) => Math.exp(-(k * k) / (2 * sigma * sigma)),
  );
  const total = weights.reduce((a, b) => a + b);
  const dx = Math.cos(angle), dy = Math.sin(angle);
  const out = new Float32Array(PIXELS);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      let sum = 0;
      for (let k = 0; k <= radius; k++) {
        const sx = Math.round(x - k * dx), sy = Math.round(y - k * dy);
        // Pixels beyond the edge repeat the edge, as ImageMagick's default virtual pixels do.
        const cx = Math.min(SIZE - 1, Math.max(0, sx)), cy = Math.min(SIZE - 1, Math.max(0, sy));
        sum += weights[k] * image[cy * SIZE + cx];
      }
      out[y * SIZE + x] = clip01(sum / total);
    }
  }
  return out;
};

export const shear: Corruption = (image, random) => {
  const amount = 0.4 * randomSign(random);
  // skimage's AffineTransform(shear=c): [[1, -sin c], [0, cos c]] as the inverse map.
  return warpAboutCentre(image, 1, -Math.sin(amount), 0, Math.cos(amount));
};

export const scale: Corruption = (image) => {
  const factor = 1 / 0.7;
  return warpAboutCentre(image, factor, 0, 0, factor);
};

export const rotate: Corruption = (image, random) => {
  const angle = 0.4 * randomSign(random);
  const cos = Math.cos(angle), sin = Math.sin(angle);
  return warpAboutCentre(image, cos, -sin, sin, cos);
};

/** Adds `amount` to every pixel (MNIST-C's brightness: HSV value + amount on a gray image). */
export function brighten(image: Float32Array, amount: number): Float32Array {
  return map(image, (v) => clip01(v + amount));
}

export const brightness: Corruption = (image) => brighten(image, 0.5);

export const translate: Corruption = (image, random) => {
  const shift = 3;
  return warpAboutCentre(image, 1, 0, 0, 1, shift * randomSign(random), shift * randomSign(random));
};

/** Inverts the `columns` leftmost and rightmost columns (MNIST-C's stripe inverts 7 on each side). */
export function invertSideColumns(image: Float32Array, columns: number): Float32Array {
  return map(image, (v, i) => (i % SIZE < columns || i % SIZE >= SIZE - columns ? 1 - v : v));
}

export const stripe: Corruption = (image) => invertSideColumns(image, 7);

/** Diamond-square plasma fractal on a mapSize² torus (a power of 2), normalised to [0, 1]. */
export function plasmaFractal(random: Random, decay: number, mapSize = 256): Float32Array {
  const grid = new Float32Array(mapSize * mapSize);
  const mask = mapSize - 1;
  const at = (y: number, x: number) => ((y & mask) * mapSize) + (x & mask);
  let wibble = 100;
  for (let step = mapSize; step >= 2; step /= 2, wibble /= decay) {
    const half = step / 2;
    // Squares: the centre of each square is the mean of its corners, plus noise.
    for (let y = 0; y < mapSize; y += step) {
      for (let x = 0; x < mapSize; x += step) {
        const mean = (grid[at(y, x)] + grid[at(y, x + step)] + grid[at(y + step, x)] +
          grid[at(y + step, x + step)]) / 4;
        grid[at(y + half, x + half)] = mean + wibble * (2 * random.next() - 1);
      }
    }
    // Diamonds: edge midpoints from their four neighbours, plus noise.
    for (let y = 0; y < mapSize; y += half) {
      for (let x = (y / half) % 2 === 0 ? half : 0; x < mapSize; x += step) {
        const mean = (grid[at(y - half, x)] + grid[at(y + half, x)] + grid[at(y, x - half)] +
          grid[at(y, x + half)]) / 4;
        grid[at(y, x)] = mean + wibble * (2 * random.next() - 1);
      }
    }
  }
  let min = Infinity, max = -Infinity;
  for (const v of grid) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  for (let i = 0; i < grid.length; i++) grid[i] = (grid[i] - min) / (max - min);
  return grid;
}

/** Plasma maps shared by the images of one run (see `fog`). */
export const FOG_MAPS = 64;

export function prepareFog(random: Random): Float32Array[] {
  return Array.from({ length: FOG_MAPS }, () => plasmaFractal(random, 1.4));
}

/**
 * MNIST-C draws a fresh 256×256 plasma map per image and keeps its top-left
 * 28×28. A 256×256 map per image costs more than everything else in the
 * suite, so each image takes a 28×28 window of one of 64 maps made per run,
 * at a random offset aligned to the 32-pixel grid of the fractal (so the
 * window's statistics match the original's corner).
 */
export const fog: Corruption = (image, random, shared) => {
  const strength = 3;
  const maps = (shared as Float32Array[] | undefined) ?? prepareFog(random);
  const plasma = maps[random.int(maps.length)];
  const top = 32 * random.int(7), left = 32 * random.int(7);
  let peak = 0;
  for (const v of image) peak = Math.max(peak, v);
  return map(image, (v, i) => {
    const fogValue = plasma[(top + Math.floor(i / SIZE)) * 256 + left + (i % SIZE)];
    return clip01(((v + strength * fogValue) * peak) / (peak + strength));
  });
};

export const spatter: Corruption = (image, random) => {
  const [mean, spread, blur, threshold, maskBlur] = [0.65, 0.3, 1, 0.65, 1.5];
  const liquid = gaussianBlur(
    Float32Array.from({ length: PIXELS }, () => mean + spread * random.normal()),
    blur,
  );
  const mask = gaussianBlur(liquid.map((v) => (v > threshold ? 1 : 0)), maskBlur).map((
    v,
  ) => (v < 0.8 ? 0 : v));
  const mud = 63 / 255;
  return map(image, (v, i) => clip01(v * (1 - mask[i]) + mud * mask[i]));
};

/**
 * A line from column c0 (row r0) to column c1 (row r1), drawn by vertical
 * distance d as log(1 − d/2.3) + 1: about 2.3 pixels wide, only between c0 and c1.
 */
export function lineFromPoints(c0: number, r0: number, c1: number, r1: number): Float32Array {
  const out = new Float32Array(PIXELS);
  if (c1 === c0) return out;
  const slope = (r1 - r0) / (c1 - c0);
  const left = Math.floor(c0), right = Math.ceil(c1);
  for (let r = 0; r < SIZE; r++) {
    for (let c = Math.max(0, left); c < Math.min(SIZE, right); c++) {
      const distance = Math.min(Math.abs(r - (slope * (c - c0) + r0)), 2.3 - 1e-10);
      out[r * SIZE + c] = clip01(Math.log(1 - distance / 2.3) + 1);
    }
  }
  return out;
}

export const dottedLine: Corruption = (image, random) => {
  const line = lineFromPoints(0, random.int(27), 27, random.int(27));
  // Every other 2-pixel run of columns is removed, starting with columns 0-1.
  return map(image, (v, i) => clip01(v + (Math.floor((i % SIZE) / 2) % 2 === 0 ? 0 : line[i])));
};

export const zigzag: Corruption = (image, random) => {
  const length = 2, amplitude = 2, c0 = 2, c1 = 25;
  const r0 = random.int(27);
  const r1 = r0 - 5 + random.int(10);
  const theta = Math.atan((r1 - r0) / (c1 - c0));
  const span = (c1 - c0) / Math.cos(theta);
  // Zigzag corners along a horizontal line, then rotated by theta.
  const points: Array<[number, number]> = [[0, 0]];
  let lastRow = 0;
  for (let i = 0; i <= Math.floor((span - length) / (2 * length)); i++) {
    lastRow = (i % 2 === 0 ? 1 : -1) * amplitude;
    points.push([(2 * i + 1) * length, lastRow]);
  }
  const fullPeriods = 2 * length * Math.floor(span / (2 * length));
  if (span !== fullPeriods) points.push([span, lastRow / (2 * (span - fullPeriods))]);
  const cos = Math.cos(theta), sin = Math.sin(theta);
  const rotated = points.map(([c, r]) => [c * cos - r * sin + c0, c * sin + r * cos + r0]);
  let out: Float32Array = image.slice();
  for (let i = 1; i < rotated.length; i++) {
    const line = lineFromPoints(rotated[i - 1][0], rotated[i - 1][1], rotated[i][0], rotated[i][1]);
    out = map(out, (v, j) => clip01(v + line[j]));
  }
  return out;
};

/**
 * Canny edges as skimage computes them by default: Gaussian smoothing
 * (sigma 1), Sobel gradients, non-maximum suppression, hysteresis between
 * 0.1 and 0.2 of the gradient scale. Edges are 1, the rest 0.
 */
export const cannyEdges: Corruption = (image) => {
  const smooth = gaussianBlur(image, 1, SIZE, 0, "nearest");
  const gx = new Float32Array(PIXELS),
    gy = new Float32Array(PIXELS),
    magnitude = new Float32Array(PIXELS);
  const px = (x: number, y: number) =>
    smooth[Math.min(SIZE - 1, Math.max(0, y)) * SIZE + Math.min(SIZE - 1, Math.max(0, x))];
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const i = y * SIZE + x;
      gx[i] = (px(x + 1, y - 1) + 2 * px(x + 1, y) + px(x + 1, y + 1) - px(x - 1, y - 1) -
        2 * px(x - 1, y) - px(x - 1, y + 1)) / 8;
      gy[i] = (px(x - 1, y + 1) + 2 * px(x, y + 1) + px(x + 1, y + 1) - px(x - 1, y - 1) -
        2 * px(x, y - 1) - px(x + 1, y - 1)) / 8;
      magnitude[i] = Math.hypot(gx[i], gy[i]);
    }
  }
  const low = 0.1 / 8, high = 0.2 / 8;
  const strong = new Uint8Array(PIXELS), weak = new Uint8Array(PIXELS);
  for (let y = 1; y < SIZE - 1; y++) {
    for (let x = 1; x < SIZE - 1; x++) {
      const i = y * SIZE + x;
      const m = magnitude[i];
      if (m < low) continue;
      // Compare with the two neighbours across the edge (gradient direction).
      const angle = ((Math.atan2(gy[i], gx[i]) * 180) / Math.PI + 180) % 180;
      const [ox, oy] = angle < 22.5 || angle >= 157.5
        ? [1, 0]
        : angle < 67.5
        ? [1, 1]
        : angle < 112.5
        ? [0, 1]
        : [-1, 1];
      if (m >= magnitude[(y + oy) * SIZE + x + ox] && m >= magnitude[(y - oy) * SIZE + x - ox]) {
        if (m >= high) strong[i] = 1;
        else weak[i] = 1;
      }
    }
  }
  // Hysteresis: weak edges survive when connected to a strong one.
  const stack = [...strong.keys()].filter((i) => strong[i]);
  while (stack.length > 0) {
    const i = stack.pop()!;
    const x = i % SIZE, y = Math.floor(i / SIZE);
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        const j = (y + dy) * SIZE + x + dx;
        if (j >= 0 && j < PIXELS && weak[j] && !strong[j]) {
          strong[j] = 1;
          stack.push(j);
        }
      }
    }
  }
  return Float32Array.from(strong);
};

/** Per-run preparation of corruptions that need it. */
export const MNIST_C_PREPARE: Record<string, (random: Random) => unknown> = { fog: prepareFog };

/** MNIST-C's corruptions by name, in the paper's order. */
export const MNIST_C: Record<string, Corruption> = {
  shot_noise: shotNoise,
  impulse_noise: impulseNoise,
  glass_blur: glassBlur,
  motion_blur: motionBlur,
  shear,
  scale,
  rotate,
  brightness,
  translate,
  stripe,
  fog,
  spatter,
  dotted_line: dottedLine,
  zigzag,
  canny_edges: cannyEdges,
};
