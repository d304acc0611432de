/**
 * The ablation's variants: what the improved model adds to the baseline,
 * one part at a time, and how strong its rotation augmentation should be.
 * Every variant trains with the same seed, data, epochs and schedule.
 */
import { ARCHITECTURES, type CnnOptions } from "../models/architectures.ts";
import { type AugmentRanges, TRAINING_AUGMENTATION } from "../transforms/augment.ts";
import type { Recipe } from "../train/recipes.ts";

export interface Variant {
  name: string;
  description: string;
  architecture: CnnOptions;
  /** Training-time augmentation (null: none). */
  augmentation: AugmentRanges | null;
}

const baseline = ARCHITECTURES.baseline;
const improved = ARCHITECTURES.improved;
const withRotation = (degrees: number): AugmentRanges => ({
  ...TRAINING_AUGMENTATION,
  rotation: degrees / 360,
});

export const VARIANTS: Variant[] = [
  { name: "baseline", description: "baseline", architecture: baseline, augmentation: null },
  {
    name: "baseline_bn",
    description: "baseline + BatchNorm",
    architecture: { ...baseline, batchNorm: true },
    augmentation: null,
  },
  {
    name: "baseline_dropout",
    description: "baseline + dropout (0.25 / 0.25 / 0.5)",
    architecture: { ...baseline, convDropout: 0.25, denseDropout: 0.5 },
    augmentation: null,
  },
  {
    name: "baseline_augment",
    description: "baseline + augmentation",
    architecture: baseline,
    augmentation: TRAINING_AUGMENTATION,
  },
  {
    name: "improved",
    description: "improved (BatchNorm + dropout + augmentation, rotation 36°)",
    architecture: improved,
    augmentation: TRAINING_AUGMENTATION,
  },
  {
    name: "improved_conv_dropout",
    description: "improved, dropout in the conv blocks only",
    architecture: { ...improved, denseDropout: 0 },
    augmentation: TRAINING_AUGMENTATION,
  },
  {
    name: "improved_dense_dropout",
    description: "improved, dropout in the dense block only",
    architecture: { ...improved, convDropout: 0 },
    augmentation: TRAINING_AUGMENTATION,
  },
  {
    name: "improved_rotation_0",
    description: "improved, rotation 0° (translation and zoom only)",
    architecture: improved,
    augmentation: withRotation(0),
  },
  {
    name: "improved_rotation_10",
    description: "improved, rotation 10°",
    architecture: improved,
    augmentation: withRotation(10),
  },
  {
    name: "improved_rotation_20",
    description: "improved, rotation 20°",
    architecture: improved,
    augmentation: withRotation(20),
  },
];

/** The rotation sweep, in degrees: the 36° point is the improved model itself. */
export const ROTATION_SWEEP: Array<{ variant: string; degrees: number }> = [
  { variant: "improved_rotation_0", degrees: 0 },
  { variant: "improved_rotation_10", degrees: 10 },
  { variant: "improved_rotation_20", degrees: 20 },
  { variant: "improved", degrees: 36 },
];

/**
 * The one schedule every variant trains with: shorter than the models' own
 * recipes, so that ten runs fit in about an hour on two cores.
 */
export const ABLATION_SCHEDULE: Recipe = {
  epochs: 6,
  batchSize: 64,
  learningRate: 1e-3,
  learningRateDecay: 0.75,
  weightAverageDecay: 0,
};

export function variantByName(name: string): Variant | undefined {
  return VARIANTS.find((variant) => variant.name === name);
}
