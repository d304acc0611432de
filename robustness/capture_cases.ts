/**
 * Hard-but-real ways a person's digit reaches the deploy path, made from an
 * MNIST digit: a crop tight to the ink, ink touching the frame's edges,
 * low-resolution scans (8 to 24 px, as stored or upscaled and blurred by a
 * viewer), faint or low-contrast ink, light ink on a dark screen. Each is an
 * ordinary 8-bit image; none of them is blank. Pure functions; the tests
 * hold `toMnist` to a floor on them and to zero refusals.
 */
import type { Box, GrayImage } from "../infer/preprocess.ts";
import { inkExtent, resample } from "../infer/preprocess.ts";
import { gaussianBlur } from "../transforms/filters.ts";

export interface CaptureCase {
  kind: string;
  image: GrayImage;
}

/** The side lengths of the low-resolution scans. */
export const SCAN_SIDES = [8, 12, 16, 24];

const SIDE = 28;

/** Ink (0 to 1) as an 8-bit image: paper at `paper`, full ink at `ink` (0 black, 255 white). */
export function paintInk(
  ink: Float32Array,
  width: number,
  height: number,
  paper = 255,
  full = 0,
): GrayImage {
  return {
    width,
    height,
    data: Uint8Array.from(ink, (v) => Math.round(paper + (full - paper) * Math.min(1, v))),
  };
}

/** The box of a digit's ink (pixels above 0), in 28×28. */
export function inkBounds(digit: Float32Array, size = SIDE): Box {
  const box = inkExtent(digit, size, size);
  if (!box) throw new RangeError("The digit has no ink to make cases from.");
  return box;
}

/** The pixels of `box` (which may reach past the frame: paper there), as a new image. */
function crop(digit: Float32Array, box: Box, size = SIDE): Float32Array {
  const out = new Float32Array(box.width * box.height);
  for (let y = 0; y < box.height; y++) {
    for (let x = 0; x < box.width; x++) {
      const sx = box.left + x, sy = box.top + y;
      if (sx >= 0 && sy >= 0 && sx < size && sy < size) {
        out[y * box.width + x] = digit[sy * size + sx];
      }
    }
  }
  return out;
}

/** A square box about the ink, `margin` pixels wider than its longer side on each side. */
function squareAbout(box: Box, margin: number): Box {
  const side = Math.max(box.width, box.height) + 2 * margin;
  return {
    left: box.left + Math.floor((box.width - side) / 2),
    top: box.top + Math.floor((box.height - side) / 2),
    width: side,
    height: side,
  };
}

/** The ink of a 28×28 digit (0 to 1), shown every hard-but-real way. */
export function captureCases(digit: Float32Array): CaptureCase[] {
  const bounds = inkBounds(digit);
  const cases: CaptureCase[] = [];
  const add = (
    kind: string,
    ink: Float32Array,
    width: number,
    height: number,
    paper = 255,
    full = 0,
  ) => cases.push({ kind, image: paintInk(ink, width, height, paper, full) });

  // Frame-filling: the crop ends where the ink does, on every side or some.
  add("tight crop", crop(digit, bounds), bounds.width, bounds.height);
  const margin = 4;
  const touching = (left: boolean, top: boolean, right: boolean, bottom: boolean): Box => {
    const x0 = bounds.left - (left ? 0 : margin), y0 = bounds.top - (top ? 0 : margin);
    const x1 = bounds.left + bounds.width + (right ? 0 : margin);
    const y1 = bounds.top + bounds.height + (bottom ? 0 : margin);
    return { left: x0, top: y0, width: x1 - x0, height: y1 - y0 };
  };
  for (
    const [kind, box] of [
      ["touches the left edge", touching(true, false, false, false)],
      ["touches top and bottom", touching(false, true, false, true)],
      ["touches three edges", touching(true, true, true, false)],
    ] as const
  ) {
    add(kind, crop(digit, box), box.width, box.height);
  }

  // Low-resolution scans: the digit with a 1-px margin shrunk to side × side,
  // as stored, then enlarged fourfold as a viewer would (bilinear), then blurred.
  const square = squareAbout(bounds, 1);
  const squareInk = crop(digit, square);
  for (const side of SCAN_SIDES) {
    const small = resample(squareInk, square.width, { ...square, left: 0, top: 0 }, side, side);
    add(`${side} px scan`, small, side, side);
    const large = resample(
      small,
      side,
      { left: 0, top: 0, width: side, height: side },
      4 * side,
      4 * side,
    );
    add(`${side} px scan enlarged`, large, 4 * side, 4 * side);
    add(`${side} px scan enlarged, blurred`, gaussianBlur(large, 2, 4 * side), 4 * side, 4 * side);
  }

  // Faint ink: pencil on white (a fifth of black's contrast), and grey ink on grey paper.
  add("faint pencil", digit, SIDE, SIDE, 255, 205);
  add("grey on grey", digit, SIDE, SIDE, 150, 110);
  // Light ink on a dark screen, framed tight.
  const screen = squareAbout(bounds, 0);
  add("light on dark", crop(digit, screen), screen.width, screen.height, 0, 255);
  return cases;
}
