/**
 * Why does the improved model collapse under noise, blur and brightness?
 * One explanation is covariate shift at its BatchNorm layers: the moving
 * means and variances were measured on clean (only geometrically augmented)
 * digits, and a corruption moves every layer's activations away from them.
 * If that is the cause, re-estimating the statistics on corrupted images,
 * without labels and without touching a weight, restores most of the
 * accuracy (Schneider et al., 2020, "Improving robustness against common
 * corruptions by covariate shift adaptation").
 *
 * The experiment: the test set split in two halves; each corruption applied
 * to both; statistics re-estimated on the first half, accuracy read on the
 * second, against the model as shipped on the same second half. Clean images
 * run through the same procedure as the control.
 */
import { tf } from "../deps_tfjs.ts";
import { type MnistSplit, pixelsOf } from "../data/mnist.ts";
import type { Family } from "../robustness/families.ts";
import { perturbLevels } from "../robustness/perturb.ts";
import { keepingStatistics, setExactStatistics } from "../train/batch_norm_stats.ts";
import { evaluate } from "../train/steps.ts";
import { Random } from "../util/random.ts";

export interface ShiftResult {
  family: string;
  level: number;
  /** Accuracy on the evaluation half with the statistics the model shipped with. */
  shipped: number;
  /** Accuracy on the same images after re-estimating on the other (corrupted) half. */
  adapted: number;
}

/** The clean control of the experiment's table. */
export const CLEAN = "clean";

/**
 * For each family's chosen level (and the clean images), the model's
 * accuracy on the second half of `split` before and after its BatchNorm
 * statistics are re-estimated on the first half under the same corruption.
 */
export function batchNormShift(
  model: tf.LayersModel,
  split: MnistSplit,
  families: Array<{ family: Family; level: number }>,
  seed: number,
  onResult?: (result: ShiftResult) => void,
): ShiftResult[] {
  const half = Math.floor(split.count / 2);
  const clean = pixelsOf(split, Array.from({ length: split.count }, (_, i) => i));
  const evaluationHalf = (pixels: Float32Array): MnistSplit => ({
    count: split.count - half,
    labels: split.labels.subarray(half),
    // evaluate() reads 8-bit pixels; corrupted images are re-quantised to them.
    images: Uint8Array.from(pixels.subarray(half * 784), (v) => Math.round(v * 255)),
  });
  const results: ShiftResult[] = [];
  const run = (family: string, level: number, pixels: Float32Array) => {
    const target = evaluationHalf(pixels);
    const shipped = evaluate(model, target).accuracy;
    const adapted = keepingStatistics(model, () => {
      setExactStatistics(model, pixels.subarray(0, half * 784), new Random(seed));
      return evaluate(model, target).accuracy;
    });
    const result = { family, level, shipped, adapted };
    results.push(result);
    onResult?.(result);
  };
  run(CLEAN, 0, clean);
  for (const { family, level } of families) {
    // One level of the family; its random fields are drawn as the suite draws them.
    const only = { ...family, levels: [level], identity: undefined };
    for (const perturbed of perturbLevels(clean, [only], seed)) {
      run(family.name, level, perturbed.images ?? clean);
    }
  }
  return results;
}
