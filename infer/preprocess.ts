/**
 * MNIST-style preprocessing of a person's digit image, as pure functions on
 * grayscale pixels: ink made bright on dark, background removed, cropped to
 * the ink, fit into 20×20 keeping the aspect ratio, placed in a 28×28
 * frame with its centre of mass at the centre (as LeCun et al. prepared
 * MNIST), and soft strokes brought to MNIST's saturated core.
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

/**
 * The longer side an image needs to hold a digit. Only the longer side: a
 * crop tight to a "1" may be a few pixels wide.
 */
export const MIN_SIDE = 8;
const FIT = 20;
const FRAME = 28;
/** Where MNIST puts a digit's centre of mass, in pixel coordinates (x and y). */
export const MNIST_CENTRE = 14;
/**
 * Ink fainter than this after the strongest is scaled to 1 is dropped: what
 * the noise floor left of paper texture and JPEG ringing. Chosen on USPS
 * training digits, MNIST training digits saved as images and the people-like
 * set (0.15 before cost the improved model 0.1 point on MNIST as images).
 */
const INK_FLOOR = 0.05;
/**
 * A picture whose strongest ink stands less than this above the paper is
 * blank (one value, or a difference of a few grey levels): about 8 of 255.
 */
const MIN_CONTRAST = 0.03;

/**
 * Quantiles of values in [low, high], to within (high − low) / 8192 (the
 * lower edge of a value's bin); values outside are not counted. A
 * histogram, not a sort: a 12-megapixel photo stays fast and small.
 */
class BinnedValues {
  static readonly BINS = 8192;
  readonly #counts = new Uint32Array(BinnedValues.BINS);
  readonly #scale: number;
  #total = 0;

  constructor(readonly low: number, readonly high: number) {
    this.#scale = high > low ? BinnedValues.BINS / (high - low) : 0;
  }

  add(value: number): void {
    if (value < this.low || value > this.high) return;
    this.#counts[Math.min(BinnedValues.BINS - 1, Math.floor((value - this.low) * this.#scale))]++;
    this.#total++;
  }

  /** The q-quantile, or undefined when no value was counted. */
  quantile(q: number): number | undefined {
    if (this.#total === 0) return undefined;
    const rank = Math.floor(q * (this.#total - 1));
    let seen = 0;
    for (let bin = 0; bin < BinnedValues.BINS; bin++) {
      seen += this.#counts[bin];
      if (seen > rank) return this.low + bin / (this.#scale || 1);
    }
    return this.high;
  }
}

/**
 * Otsu's threshold: the value that splits `values` into two classes of the
 * greatest between-class variance (on a 256-bin histogram of their range).
 */
export function otsuThreshold(values: Float32Array): number {
  let low = Infinity, high = -Infinity;
  for (const v of values) {
    low = Math.min(low, v);
    high = Math.max(high, v);
  }
  if (!(high > low)) return high;
  const bins = 256, scale = bins / (high - low);
  const counts = new Float64Array(bins);
  for (const v of values) counts[Math.min(bins - 1, Math.floor((v - low) * scale))]++;
  let total = 0, sum = 0;
  for (let b = 0; b < bins; b++) {
    total += counts[b];
    sum += b * counts[b];
  }
  let below = 0, sumBelow = 0, best = -1, bestBin = 0;
  for (let b = 0; b < bins - 1; b++) {
    below += counts[b];
    sumBelow += b * counts[b];
    const above = total - below;
    if (below === 0 || above === 0) continue;
    const difference = sumBelow / below - (sum - sumBelow) / above;
    const between = below * above * difference * difference;
    if (between > best) {
      best = between;
      bestBin = b;
    }
  }
  return low + (bestBin + 1) / scale;
}

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

/** Cells per side of the grid on which the paper's brightness is estimated. */
const PAPER_CELLS = 6;

/**
 * The paper's brightness at every pixel, in [0, 1], under uneven light: per
 * cell of a 6×6 grid, the level most of the cell sits at (its 90th
 * percentile for dark ink, 10th for light), then the paper-most value of each
 * cell's neighbours (so a cell filled by a thick stroke borrows its
 * neighbours' paper), interpolated bilinearly between cell centres.
 */
export function paperMap(image: GrayImage, darkInk: boolean): Float32Array {
  const { width, height, data } = image;
  const cellsX = Math.min(PAPER_CELLS, width), cellsY = Math.min(PAPER_CELLS, height);
  const levels = new Float32Array(cellsX * cellsY);
  for (let cy = 0; cy < cellsY; cy++) {
    for (let cx = 0; cx < cellsX; cx++) {
      const x0 = Math.floor((cx * width) / cellsX), x1 = Math.floor(((cx + 1) * width) / cellsX);
      const y0 = Math.floor((cy * height) / cellsY), y1 = Math.floor(((cy + 1) * height) / cellsY);
      const counts = new Uint32Array(256);
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) counts[data[y * width + x]]++;
      const rank = Math.floor((darkInk ? 0.9 : 0.1) * ((x1 - x0) * (y1 - y0) - 1));
      let level = 0;
      for (let seen = counts[0]; seen <= rank; seen += counts[++level]);
      levels[cy * cellsX + cx] = level / 255;
    }
  }
  const paper = new Float32Array(levels.length);
  for (let cy = 0; cy < cellsY; cy++) {
    for (let cx = 0; cx < cellsX; cx++) {
      let best = levels[cy * cellsX + cx];
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const x = cx + dx, y = cy + dy;
          if (x < 0 || y < 0 || x >= cellsX || y >= cellsY) continue;
          const v = levels[y * cellsX + x];
          best = darkInk ? Math.max(best, v) : Math.min(best, v);
        }
      }
      paper[cy * cellsX + cx] = best;
    }
  }
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const gy = Math.min(cellsY - 1, Math.max(0, ((y + 0.5) * cellsY) / height - 0.5));
    const y0 = Math.min(cellsY - 2, Math.floor(gy)), fy = cellsY > 1 ? gy - y0 : 0;
    for (let x = 0; x < width; x++) {
      const gx = Math.min(cellsX - 1, Math.max(0, ((x + 0.5) * cellsX) / width - 0.5));
      const x0 = Math.min(cellsX - 2, Math.floor(gx)), fx = cellsX > 1 ? gx - x0 : 0;
      const at = (i: number, j: number) => paper[Math.max(0, j) * cellsX + Math.max(0, i)];
      const top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx;
      const bottom = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx;
      out[y * width + x] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}

/**
 * The pixel noise of a contrast map (sensor noise, paper grain, JPEG), as a
 * standard deviation, from differences between neighbouring pixels: for
 * Gaussian noise of deviation σ, |difference| is half-normal with scale σ√2
 * and its 25th percentile is 0.3186 σ√2. Edges of strokes give large
 * differences, so a low percentile is used: up to three quarters of the
 * pairs may straddle an edge (a digit filling an 8×8 scan) and the estimate
 * still comes from the flat ones.
 */
export function noiseLevel(contrast: Float32Array, width: number, height: number): number {
  const differences = new BinnedValues(0, 2);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (x + 1 < width) differences.add(Math.abs(contrast[i + 1] - contrast[i]));
      if (y + 1 < height) differences.add(Math.abs(contrast[i + width] - contrast[i]));
    }
  }
  return (differences.quantile(0.25) ?? 0) / (0.3186 * Math.SQRT2);
}

/**
 * Whether the contrast holds a stroke rather than noise alone: somewhere the
 * mean contrast of a 3×3 neighbourhood stands above the ink floor (the
 * paper's level plus three times its noise). Noise averages away over nine
 * pixels (its deviation falls to a third, and the floor is then nine of
 * those); a stroke, even one pixel wide, keeps a third of its contrast.
 */
function hasStroke(contrast: Float32Array, width: number, height: number, floor: number): boolean {
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0, n = 0;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= width) continue;
          sum += contrast[yy * width + xx];
          n++;
        }
      }
      if (sum / n > floor) return true;
    }
  }
  return false;
}

/**
 * Ink in [0, 1], bright on dark whatever the original polarity: the paper's
 * local brightness subtracted (uneven light), contrast within three times
 * the pixel noise of the paper dropped (sensor noise, paper grain), the
 * strongest ink scaled to 1. Blank (no ink structure at all: one value, or
 * noise without a stroke) is refused.
 */
export function inkMap(image: GrayImage): Float32Array {
  const { width, height } = image;
  const darkInk = backgroundLevel(image) > 0.5;
  const paper = paperMap(image, darkInk);
  const contrast = new Float32Array(width * height);
  let strongest = 0;
  for (let i = 0; i < contrast.length; i++) {
    const value = image.data[i] / 255;
    contrast[i] = darkInk ? paper[i] - value : value - paper[i];
    strongest = Math.max(strongest, contrast[i]);
  }
  // Paper is the lower class of Otsu's split (whatever share of the frame the
  // digit fills); its median is the paper's own level, and its spread below
  // the median (the side away from ink, so a blurred stroke's halo does not
  // count), at least the pixel noise, covers what the paper map left of
  // uneven light.
  const split = otsuThreshold(contrast);
  const paperContrast = new BinnedValues(-1, 1);
  for (const v of contrast) if (v <= split) paperContrast.add(v);
  const paperLevel = paperContrast.quantile(0.5) ?? 0;
  const lowerQuartile = paperContrast.quantile(0.25) ?? paperLevel;
  const spread = (paperLevel - lowerQuartile) / 0.6745;
  // Pixel noise from neighbours' differences, unless the paper's own spread
  // says it is less: in a small frame filled with ink most neighbours
  // straddle an edge. (Otsu cuts pure noise at its middle, and the lower
  // half's spread measured this way is 0.706 of the whole.)
  const noise = Math.min(noiseLevel(contrast, width, height), spread / 0.706);
  const floor = Math.max(0, paperLevel) + 3 * Math.max(noise, spread);
  if (strongest - paperLevel < MIN_CONTRAST || !hasStroke(contrast, width, height, floor)) {
    throw new PreprocessError("has no ink: the image is blank");
  }
  const ink = new Float32Array(contrast.length);
  let top = 0;
  for (let i = 0; i < ink.length; i++) {
    ink[i] = contrast[i] > floor ? contrast[i] - Math.max(0, paperLevel) : 0;
    top = Math.max(top, ink[i]);
  }
  for (let i = 0; i < ink.length; i++) {
    const value = ink[i] / top;
    ink[i] = value < INK_FLOOR ? 0 : value;
  }
  return ink;
}

export interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Share of the ink's mass that may lie outside the crop (stray specks, not strokes). */
const STRAY_MASS = 0.01;

/**
 * The box holding the ink, less specks apart from the digit: on each side,
 * runs of rows or columns cut off from the rest by an empty one, while they
 * hold less than half of STRAY_MASS of the ink. A speck of noise far from
 * the digit does not stretch the crop; the digit's faint edge is kept.
 */
function inkBox(ink: Float32Array, width: number, height: number): Box {
  const rows = new Float64Array(height), columns = new Float64Array(width);
  let total = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = ink[y * width + x];
      rows[y] += v;
      columns[x] += v;
      total += v;
    }
  }
  const budget = (STRAY_MASS / 2) * total;
  // From one end: past empty lines, a run of inked lines that holds less than
  // the budget and ends in an empty line is a speck apart from the digit and
  // is skipped; the first other run is where the digit starts. A digit's own
  // faint edge touches the digit, so it stays (as MNIST's box keeps it).
  const start = (mass: Float64Array, from: number, step: number): number => {
    const inside = (i: number) => i >= 0 && i < mass.length;
    let at = from, cut = 0;
    for (;;) {
      while (inside(at) && mass[at] === 0) at += step;
      let end = at, run = 0;
      while (inside(end) && mass[end] > 0) run += mass[end], end += step;
      if (!inside(end) || cut + run >= budget) return at;
      cut += run;
      at = end;
    }
  };
  const span = (mass: Float64Array): [number, number] => {
    const first = start(mass, 0, 1), last = start(mass, mass.length - 1, -1);
    return first <= last ? [first, last] : [0, mass.length - 1];
  };
  const [left, right] = span(columns);
  const [top, bottom] = span(rows);
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

/**
 * Share of a digit's ink (pixels above 0.1) that `saturateStrokes` brings to
 * at least 0.9. In MNIST's test set that share runs from 0.22 (1st
 * percentile) to 0.72 (99th), median 0.50: a pen stroke is saturated in the
 * middle with soft edges. Chosen on examples/handwriting/ (README, "People's
 * digits").
 */
export const SATURATED_SHARE = 0.35;
/** Ink below this fraction of the core level is haze, set to 0. */
export const HAZE = 1 / 3;

/**
 * Soft, grey strokes (a pencil, a low-resolution scan, a thin line shrunk
 * into 20×20) made to look like MNIST's: when less than SATURATED_SHARE of
 * the ink reaches 0.9, ink is stretched linearly so that share reaches 1 and
 * faint haze below a third of that level goes to 0. A digit already as
 * saturated as MNIST's is returned unchanged.
 */
export function saturateStrokes(
  frame: Float32Array,
  share = SATURATED_SHARE,
  hazeFraction = HAZE,
): Float32Array {
  const levels = strokeLevels(frame, share, hazeFraction);
  if (!levels) return frame.slice();
  const { core, haze } = levels;
  return frame.map((v) => Math.min(1, Math.max(0, (v - haze) / (core - haze))));
}

/**
 * The levels `saturateStrokes` stretches between: the core (the ink at the
 * `share` rank, brought to 1) and the haze below which ink goes to 0;
 * undefined when the digit is already as saturated as MNIST's.
 */
export function strokeLevels(
  frame: Float32Array,
  share = SATURATED_SHARE,
  hazeFraction = HAZE,
): { core: number; haze: number } | undefined {
  const ink = Array.from(frame).filter((v) => v > 0.1).sort((a, b) => b - a);
  if (ink.length === 0) return undefined;
  const core = ink[Math.min(ink.length - 1, Math.floor(share * ink.length))];
  return core >= 0.9 ? undefined : { core, haze: core * hazeFraction };
}

export interface MnistOptions {
  /** Stretch soft strokes to MNIST's saturated core (default true). */
  saturate?: boolean;
}

/**
 * The ink inside `box`, scaled into a 20×20 box keeping its aspect ratio and
 * placed in a 28×28 frame with its centre of mass at the centre: MNIST's own
 * normalisation (LeCun et al.).
 */
export function fitToFrame(ink: Float32Array, width: number, box: Box): Float32Array {
  const scale = FIT / Math.max(box.width, box.height);
  const outWidth = Math.max(1, Math.round(box.width * scale));
  const outHeight = Math.max(1, Math.round(box.height * scale));
  const patch = resample(ink, width, box, outWidth, outHeight);
  const [cx, cy] = centreOfMass(patch, outWidth);
  // MNIST's digits have their centre of mass at pixel (14, 14), within half a
  // pixel (the mean over the training set is 14.00, 14.00), not at the frame's
  // middle (13.5): centred at 13.5, half of all digits sat a pixel off.
  const offsetX = Math.round(MNIST_CENTRE - cx);
  const offsetY = Math.round(MNIST_CENTRE - cy);
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

/**
 * The reference normalisation for digits whose ink is already known (a data
 * set's own values, 0 paper to 1 ink): the box of every non-zero pixel, fit
 * and centred by `fitToFrame`, no other step. What a model reads at best;
 * the deploy path (`toMnist` on an image file) is measured against it.
 */
export function referenceMnist(ink: Float32Array, width: number, height: number): Float32Array {
  const box = inkExtent(ink, width, height);
  return box ? fitToFrame(ink, width, box) : new Float32Array(FRAME * FRAME);
}

/** The box of every pixel above 0, or undefined when there is none. */
export function inkExtent(ink: Float32Array, width: number, height: number): Box | undefined {
  let left = width, right = -1, top = height, bottom = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (ink[y * width + x] <= 0) continue;
      left = Math.min(left, x);
      right = Math.max(right, x);
      top = Math.min(top, y);
      bottom = Math.max(bottom, y);
    }
  }
  return right < 0 ? undefined : { left, top, width: right - left + 1, height: bottom - top + 1 };
}

/** A person's digit as the 28×28 [0, 1] image an MNIST model expects. */
export function toMnist(image: GrayImage, options: MnistOptions = {}): Float32Array {
  if (Math.max(image.width, image.height) < MIN_SIDE) {
    throw new PreprocessError(
      `is ${image.width}x${image.height} pixels, too small to hold a digit (at least ${MIN_SIDE} pixels on its longer side)`,
    );
  }
  const ink = inkMap(image);
  const fit = (map: Float32Array) =>
    fitToFrame(map, image.width, inkBox(map, image.width, image.height));
  const frame = fit(ink);
  const levels = options.saturate === false ? undefined : strokeLevels(frame);
  if (!levels) return frame;
  // The haze saturation clears is not part of the digit: cropped again
  // without it, the digit the model sees fills the 20×20 box as MNIST's do
  // (a blurred stroke's halo would otherwise shrink it).
  return saturateStrokes(fit(ink.map((v) => (v < levels.haze ? 0 : v))));
}
