/**
 * The improved model's training-time augmentation, as in Keras's
 * RandomRotation(0.1), RandomTranslation(0.1, 0.1) and RandomZoom(0.1): a
 * fresh random affine transform per image. Empty space is filled with zeros
 * (MNIST's background) rather than Keras's default reflection, which would
 * mirror strokes into the frame.
 */
import type { Random } from "../util/random.ts";
import { type AffineParams, inverseAffine, warpAffine } from "./affine.ts";

export interface AugmentRanges {
  /** Largest rotation, as a fraction of a full turn (0.1 = 36°). */
  rotation: number;
  /** Largest shift, as a fraction of the image size, per axis. */
  translation: number;
  /** Largest relative change of size (0.1 = from 0.9x to 1.1x). */
  zoom: number;
}

export const TRAINING_AUGMENTATION: AugmentRanges = {
  rotation: 0.1,
  translation: 0.1,
  zoom: 0.1,
};

/** Seed of the fixed augmented test set behind `test_accuracy_augmented`. */
export const AUGMENTED_TEST_SEED = 20191;

export function randomAffine(random: Random, ranges: AugmentRanges, size = 28): AffineParams {
  const turn = ranges.rotation * 2 * Math.PI;
  const shift = ranges.translation * size;
  return {
    rotation: random.uniform(-turn, turn),
    shiftX: random.uniform(-shift, shift),
    shiftY: random.uniform(-shift, shift),
    zoom: random.uniform(1 - ranges.zoom, 1 + ranges.zoom),
  };
}

/** A new array of the images, each under its own random transform. */
export function augmentBatch(
  images: Float32Array,
  random: Random,
  ranges: AugmentRanges = TRAINING_AUGMENTATION,
  size = 28,
): Float32Array {
  const pixels = size * size;
  const out = new Float32Array(images.length);
  for (let offset = 0; offset < images.length; offset += pixels) {
    const matrix = inverseAffine(randomAffine(random, ranges, size), size);
    warpAffine(images, offset, out, offset, matrix, size);
  }
  return out;
}
