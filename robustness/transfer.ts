/**
 * Other people's digits, each read by two paths: (a) the deploy path, the
 * digit written as an ordinary image file and read by exactly the code
 * `deno task infer`, the lab and the API use (`classifyFiles`); (b) the
 * model alone on the digit normalised as MNIST was (`referenceMnist`, or
 * MNIST's own pixels). Their paired difference is what preprocessing costs.
 */
import { join } from "node:path";
import { type MnistSplit, pixelsOf } from "../data/mnist.ts";
import { USPS_SIDE, uspsDigitGray, type UspsSplit } from "../data/usps.ts";
import { sharp } from "../deps.ts";
import { argmaxRows, type OnnxClassifier } from "../infer/classifier.ts";
import type { GrayImage } from "../infer/preprocess.ts";
import { referenceMnist } from "../infer/preprocess.ts";
import { classifyFiles } from "../infer/run.ts";
import {
  binomialInterval,
  discordant,
  type Interval,
  mcnemarExact,
  pairedBootstrap,
} from "../util/stats.ts";

/** A labelled set of digits that can be shown both ways. */
export interface DigitSet {
  /** Short name, used in file names ("usps", "mnist"). */
  name: string;
  count: number;
  labels: ArrayLike<number>;
  /** Digit i as a user's image file would hold it. */
  image(index: number): GrayImage;
  /** Digits [start, end) as the model reads them at best: 28×28, [0, 1], MNIST's normalisation. */
  reference(start: number, end: number): Float32Array;
  /** Digit i's own pixels and side, for pictures (ink in [0, 1]). */
  pixels(index: number): { pixels: Float32Array; side: number };
}

/** USPS digits: 16×16 PNGs of dark ink on white; reference by MNIST's normalisation. */
export function uspsDigits(split: UspsSplit, name = "usps"): DigitSet {
  const ink = (i: number) => split.ink.subarray(i * USPS_SIDE ** 2, (i + 1) * USPS_SIDE ** 2);
  return {
    name,
    count: split.count,
    labels: split.labels,
    image: (i) => uspsDigitGray(split, i),
    reference(start, end) {
      const out = new Float32Array((end - start) * 784);
      for (let i = start; i < end; i++) {
        out.set(referenceMnist(ink(i), USPS_SIDE, USPS_SIDE), (i - start) * 784);
      }
      return out;
    },
    pixels: (i) => ({ pixels: ink(i), side: USPS_SIDE }),
  };
}

/** MNIST digits saved as 28×28 PNGs of dark ink on white; the reference is MNIST's own pixels. */
export function mnistDigits(split: MnistSplit, name = "mnist"): DigitSet {
  const bytes = (i: number) => split.images.subarray(i * 784, (i + 1) * 784);
  return {
    name,
    count: split.count,
    labels: split.labels,
    image: (i) => ({ width: 28, height: 28, data: bytes(i).map((v) => 255 - v) }),
    reference: (start, end) =>
      pixelsOf(split, Array.from({ length: end - start }, (_, k) => start + k)),
    pixels: (i) => ({ pixels: Float32Array.from(bytes(i), (v) => v / 255), side: 28 }),
  };
}

/**
 * Writes every digit of `set` into `dir` as an 8-bit grayscale PNG named by
 * its label first ("5-usps-0042.png", as examples/ are labelled); returns
 * the paths in the set's order.
 */
export async function writeDigitFiles(set: DigitSet, dir: string): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const width = String(set.count - 1).length;
  const files: string[] = [];
  for (let i = 0; i < set.count; i++) {
    const { width: w, height: h, data } = set.image(i);
    const png = await sharp(data, { raw: { width: w, height: h, channels: 1 } })
      .toColourspace("b-w")
      .png()
      .toBuffer();
    const file = join(dir, `${set.labels[i]}-${set.name}-${String(i).padStart(width, "0")}.png`);
    await Deno.writeFile(file, new Uint8Array(png));
    files.push(file);
  }
  return files;
}

export interface PathScore {
  images: number;
  correct: number;
  accuracy: number;
  /** Wilson's 95% interval of the accuracy. */
  ci95: Interval;
}

export interface TwoPathScore {
  /** Through the image files, as `infer`, the lab and the API read them; refused files count as wrong. */
  deploy: PathScore & { refused: number };
  /** The model alone on the reference normalisation. */
  reference: PathScore;
  /** Deploy minus reference over the same digits: a paired bootstrap and McNemar's exact test. */
  difference: {
    value: number;
    ci95: Interval;
    mcnemar_p: number;
    only_deploy: number;
    only_reference: number;
  };
  /** Digits the deploy path gets wrong: index in the set, label, answer (-1 refused). */
  mistakes: Array<{ index: number; label: number; prediction: number }>;
  /** Every digit's deploy answer, one character each ("-" refused), in the set's order. */
  predictions: string;
  /** Deploy accuracy by thirds of the digits' stroke width and slant (where the model is the limit). */
  by_shape: ShapeBreakdown;
}

/** A digit's stroke width (pixels) and slant (x shift per row, + leaning right), in 28×28. */
export interface DigitShape {
  strokeWidth: number;
  slant: number;
}

/**
 * Stroke width and slant of a normalised 28×28 digit (ink in [0, 1]): width
 * is the inked area over half its perimeter (pixels above 0.5; a stroke of
 * width w and length L has area wL and perimeter about 2L), slant the
 * regression of x on y over the ink (negated so that a digit leaning right,
 * top to the right, is positive).
 */
export function digitShape(digit: Float32Array, side = 28): DigitShape {
  let area = 0, perimeter = 0, mass = 0, mx = 0, my = 0;
  const inked = (x: number, y: number) =>
    x >= 0 && y >= 0 && x < side && y < side && digit[y * side + x] > 0.5;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const v = digit[y * side + x];
      mass += v;
      mx += v * x;
      my += v * y;
      if (!inked(x, y)) continue;
      area++;
      for (const [dx, dy] of [[1, 0], [-1, 0], [0, 1], [0, -1]]) {
        if (!inked(x + dx, y + dy)) perimeter++;
      }
    }
  }
  if (mass === 0 || area === 0) return { strokeWidth: 0, slant: 0 };
  mx /= mass;
  my /= mass;
  let sxy = 0, syy = 0;
  for (let i = 0; i < digit.length; i++) {
    const dx = (i % side) - mx, dy = Math.floor(i / side) - my;
    sxy += digit[i] * dx * dy;
    syy += digit[i] * dy * dy;
  }
  return { strokeWidth: area / (perimeter / 2), slant: syy > 0 ? -sxy / syy : 0 };
}

/** Accuracy in each third of the digits sorted by a measure: thinnest to thickest, most upright to most slanted. */
export interface ShapeBreakdown {
  stroke_width: Array<{ from: number; to: number; images: number; accuracy: number }>;
  abs_slant: Array<{ from: number; to: number; images: number; accuracy: number }>;
}

export function shapeBreakdown(
  shapes: DigitShape[],
  right: boolean[],
): ShapeBreakdown {
  const thirds = (measure: (shape: DigitShape) => number) => {
    const order = shapes.map((shape, i) => ({ value: measure(shape), right: right[i] }))
      .sort((a, b) => a.value - b.value);
    return [0, 1, 2].map((third) => {
      const part = order.slice(
        Math.floor((third * order.length) / 3),
        Math.floor(((third + 1) * order.length) / 3),
      );
      return {
        from: part[0]?.value ?? 0,
        to: part.at(-1)?.value ?? 0,
        images: part.length,
        accuracy: part.filter((p) => p.right).length / Math.max(1, part.length),
      };
    });
  };
  return {
    stroke_width: thirds((shape) => shape.strokeWidth),
    abs_slant: thirds((shape) => Math.abs(shape.slant)),
  };
}

/** The paired bootstrap's seed and resamples, recorded with the scores. */
export const TRANSFER_BOOTSTRAP = { seed: 1, resamples: 2000 };

function pathScore(correct: boolean[]): PathScore {
  const right = correct.filter(Boolean).length;
  return {
    images: correct.length,
    correct: right,
    accuracy: right / correct.length,
    ci95: binomialInterval(right, correct.length),
  };
}

/** One model on `set` by both paths; `files` are `writeDigitFiles`' paths for the set. */
export async function scoreTwoPaths(
  classifier: OnnxClassifier,
  set: DigitSet,
  files: string[],
): Promise<TwoPathScore> {
  if (files.length !== set.count) {
    throw new RangeError(`${set.name} has ${set.count} digits but ${files.length} files.`);
  }
  const results = await classifyFiles(classifier, files);
  const deployAnswers = results.map((r) => ("prediction" in r ? r.prediction : -1));
  const reference = set.reference(0, set.count);
  const referenceAnswers = argmaxRows(await classifier.predict(reference));
  const deployRight = deployAnswers.map((p, i) => p === set.labels[i]);
  const referenceRight = Array.from(referenceAnswers, (p, i) => p === set.labels[i]);
  const { onlyA, onlyB } = discordant(deployRight, referenceRight);
  const { difference, ci95 } = pairedBootstrap(
    deployRight,
    referenceRight,
    TRANSFER_BOOTSTRAP.seed,
    TRANSFER_BOOTSTRAP.resamples,
  );
  return {
    deploy: { ...pathScore(deployRight), refused: deployAnswers.filter((p) => p < 0).length },
    reference: pathScore(referenceRight),
    difference: {
      value: difference,
      ci95,
      mcnemar_p: mcnemarExact(onlyA, onlyB),
      only_deploy: onlyA,
      only_reference: onlyB,
    },
    mistakes: deployAnswers.flatMap((prediction, index) =>
      prediction === set.labels[index] ? [] : [{ index, label: set.labels[index], prediction }]
    ),
    predictions: deployAnswers.map((p) => (p < 0 ? "-" : String(p))).join(""),
    by_shape: shapeBreakdown(
      Array.from(
        { length: set.count },
        (_, i) => digitShape(reference.subarray(i * 784, (i + 1) * 784)),
      ),
      deployRight,
    ),
  };
}
