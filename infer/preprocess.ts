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
      const values: number[] = [];
      const x0 = Math.floor((cx * width) / cellsX), x1 = Math.floor(((cx + 1) * width) / cellsX);
      const y0 = Math.floor((cy * height) / cellsY), y1 = Math.floor(((cy + 1) * height) / cellsY);
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) values.push(data[y * width + x]);
      values.sort((a, b) => a - b);
      const at = Math.floor((darkInk ? 0.9 : 0.1) * (values.length - 1));
      levels[cy * cellsX + cx] = values[at] / 255;
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
 * Ink in [0, 1], bright on dark whatever the original polarity: the paper's
 * local brightness subtracted (uneven light), contrast below three times the
 * paper's noise dropped (sensor noise, paper grain), the strongest ink
 * scaled to 1.
 */
export function inkMap(image: GrayImage): Float32Array {
  const darkInk = backgroundLevel(image) > 0.5;
  const paper = paperMap(image, darkInk);
  const contrast = new Float32Array(image.width * image.height);
  for (let i = 0; i < contrast.length; i++) {
    const value = image.data[i] / 255;
    contrast[i] = darkInk ? paper[i] - value : value - paper[i];
  }
  // Most pixels are paper: the spread of their contrast about its median is the noise.
  const centre = median(Array.from(contrast));
  const noise = 1.4826 * median(Array.from(contrast, (v) => Math.abs(v - centre)));
  const floor = Math.max(0, centre) + 3 * noise;
  const ink = new Float32Array(contrast.length);
  let strongest = 0;
  for (let i = 0; i < ink.length; i++) {
    ink[i] = contrast[i] > floor ? contrast[i] : 0;
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

/** Share of the ink's mass that may lie outside the crop (stray specks, not strokes). */
const STRAY_MASS = 0.01;

/**
 * The box holding the ink, trimmed on each side while the trimmed rows or
 * columns hold less than half of STRAY_MASS of it: a speck of noise far
 * from the digit does not stretch the crop.
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
  const span = (mass: Float64Array): [number, number] => {
    const budget = (STRAY_MASS / 2) * total;
    let first = 0, last = mass.length - 1, cut = 0;
    while (first < last && (mass[first] === 0 || cut + mass[first] < budget)) cut += mass[first++];
    cut = 0;
    while (last > first && (mass[last] === 0 || cut + mass[last] < budget)) cut += mass[last--];
    return [first, last];
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
  const ink = Array.from(frame).filter((v) => v > 0.1).sort((a, b) => b - a);
  if (ink.length === 0) return frame.slice();
  const core = ink[Math.min(ink.length - 1, Math.floor(share * ink.length))];
  if (core >= 0.9) return frame.slice();
  const haze = core * hazeFraction;
  return frame.map((v) => Math.min(1, Math.max(0, (v - haze) / (core - haze))));
}

export interface MnistOptions {
  /** Stretch soft strokes to MNIST's saturated core (default true). */
  saturate?: boolean;
}

/** A person's digit as the 28×28 [0, 1] image an MNIST model expects. */
export function toMnist(image: GrayImage, options: MnistOptions = {}): Float32Array {
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
  return options.saturate === false ? frame : saturateStrokes(frame);
}
