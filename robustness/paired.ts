/**
 * Paired comparisons of models on the robustness suite: every model saw the
 * same perturbed images, so a difference between two models on a family is
 * tested image by image. An image's score is the share of the family's
 * levels a model gets it right at (for MNIST-C's mean, the share over the
 * corruptions), and a paired bootstrap over test images gives the interval
 * of the family's mean difference.
 */
import { bootstrapMean, type Interval } from "../util/stats.ts";
import type { ModelRobustness } from "./evaluate.ts";
import type { Family } from "./families.ts";

export interface FamilyComparison {
  /** Model a minus model b. */
  a: string;
  b: string;
  /** A family's name, or "mnist_c" for the mean over the MNIST-C corruptions measured. */
  family: string;
  difference: number;
  ci95: Interval;
}

/** The bootstrap's seed and resamples, recorded with the comparisons. */
export const PAIRED_BOOTSTRAP = { seed: 1, resamples: 2000 };

/** Per image, the share of a group of families' levels a model gets right. */
function shareRight(result: ModelRobustness, families: Family[]): Float64Array {
  const count = result.levelsRight[families[0].name].length;
  const share = new Float64Array(count);
  // Each family weighs the same, as in the MNIST-C mean: its levels share its weight.
  for (const family of families) {
    const right = result.levelsRight[family.name];
    const weight = 1 / (family.levels.length * families.length);
    for (let i = 0; i < count; i++) share[i] += right[i] * weight;
  }
  return share;
}

/**
 * Every pair of models (in the order given) on every family measured and
 * on the MNIST-C mean.
 */
export function compareFamilies(
  results: Record<string, ModelRobustness>,
  families: Family[],
  bootstrap = PAIRED_BOOTSTRAP,
): FamilyComparison[] {
  const names = Object.keys(results);
  const groups: Array<[string, Family[]]> = families.map((f) => [f.name, [f]]);
  const mnistC = families.filter((f) => f.group === "mnist-c");
  if (mnistC.length > 1) groups.push(["mnist_c", mnistC]);
  const comparisons: FamilyComparison[] = [];
  for (const [name, group] of groups) {
    const shares = names.map((model) => shareRight(results[model], group));
    for (let i = 0; i < names.length; i++) {
      for (let j = i + 1; j < names.length; j++) {
        const delta = shares[i].map((value, k) => value - shares[j][k]);
        const { difference, ci95 } = bootstrapMean(delta, bootstrap.seed, bootstrap.resamples);
        comparisons.push({ a: names[i], b: names[j], family: name, difference, ci95 });
      }
    }
  }
  return comparisons;
}
