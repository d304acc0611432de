/**
 * The statistics behind "is this difference real?": summaries over seeds,
 * binomial intervals for one run's accuracy, McNemar's exact test and a
 * paired bootstrap for two models on the same images. Pure functions.
 */
import { Random } from "./random.ts";

export interface Interval {
  low: number;
  high: number;
}

export interface SeedSummary {
  n: number;
  mean: number;
  /** Sample standard deviation (n − 1); 0 for one value. */
  std: number;
  /** 95% Student-t interval for the mean (null for fewer than two values). */
  ci95: Interval | null;
}

/**
 * Whether values over seeds spread at all. Accuracies move in steps of one
 * test image, so seeds can agree exactly (up to float rounding); a zero
 * spread gives a zero-width interval, which says nothing about the noise.
 */
export function hasSpread(summary: SeedSummary): boolean {
  return summary.std >= 1e-9;
}

/** Two-sided 97.5% quantiles of Student's t for 1 to 30 degrees of freedom. */
const T975 = [
  12.706,
  4.303,
  3.182,
  2.776,
  2.571,
  2.447,
  2.365,
  2.306,
  2.262,
  2.228,
  2.201,
  2.179,
  2.16,
  2.145,
  2.131,
  2.12,
  2.11,
  2.101,
  2.093,
  2.086,
  2.08,
  2.074,
  2.069,
  2.064,
  2.06,
  2.056,
  2.052,
  2.048,
  2.045,
  2.042,
];

export function tQuantile975(degrees: number): number {
  return degrees <= T975.length ? T975[degrees - 1] : 1.96;
}

export function summarize(values: number[]): SeedSummary {
  const n = values.length;
  if (n === 0) throw new RangeError("Cannot summarise no values.");
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / (n - 1)) : 0;
  const half = n > 1 ? tQuantile975(n - 1) * std / Math.sqrt(n) : 0;
  return { n, mean, std, ci95: n > 1 ? { low: mean - half, high: mean + half } : null };
}

/** Wilson's 95% score interval for `successes` out of `trials`. */
export function binomialInterval(successes: number, trials: number, z = 1.959964): Interval {
  if (trials <= 0 || successes < 0 || successes > trials) {
    throw new RangeError(
      `Need 0 <= successes <= trials and trials > 0, got ${successes}/${trials}.`,
    );
  }
  const p = successes / trials;
  const z2 = z * z;
  const centre = (p + z2 / (2 * trials)) / (1 + z2 / trials);
  const half = (z / (1 + z2 / trials)) *
    Math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials));
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

/** log(n choose k), by summing logs (exact enough for n up to millions). */
function logChoose(n: number, k: number): number {
  k = Math.min(k, n - k);
  let sum = 0;
  for (let i = 1; i <= k; i++) sum += Math.log(n - k + i) - Math.log(i);
  return sum;
}

/**
 * McNemar's exact test: `onlyA` images only model A got right, `onlyB` only
 * B. Two-sided p-value of the binomial test of onlyA against Bin(onlyA +
 * onlyB, 1/2): 2 · P(X ≤ min), capped at 1; 1 when the models never disagree.
 */
export function mcnemarExact(onlyA: number, onlyB: number): number {
  const n = onlyA + onlyB;
  if (n === 0) return 1;
  const k = Math.min(onlyA, onlyB);
  let tail = 0;
  for (let i = 0; i <= k; i++) tail += Math.exp(logChoose(n, i) - n * Math.LN2);
  return Math.min(1, 2 * tail);
}

/** Images each model got right that the other did not (same images, same order). */
export function discordant(
  correctA: ArrayLike<boolean>,
  correctB: ArrayLike<boolean>,
): { onlyA: number; onlyB: number } {
  if (correctA.length !== correctB.length) {
    throw new RangeError(
      `Paired results need the same images: ${correctA.length} vs ${correctB.length}.`,
    );
  }
  let onlyA = 0, onlyB = 0;
  for (let i = 0; i < correctA.length; i++) {
    if (correctA[i] && !correctB[i]) onlyA++;
    else if (correctB[i] && !correctA[i]) onlyB++;
  }
  return { onlyA, onlyB };
}

/**
 * 95% percentile interval of accuracy(A) − accuracy(B) by resampling the
 * images with replacement (both models on the same resample), seeded.
 */
export function pairedBootstrap(
  correctA: ArrayLike<boolean>,
  correctB: ArrayLike<boolean>,
  seed: number,
  resamples = 2000,
): { difference: number; ci95: Interval } {
  discordant(correctA, correctB);
  const delta = Int8Array.from(
    { length: correctA.length },
    (_, i) => Number(correctA[i]) - Number(correctB[i]),
  );
  return bootstrapMean(delta, seed, resamples);
}

/**
 * The mean of per-image paired differences (A's score minus B's on the same
 * image) and its 95% percentile interval from resampling images with
 * replacement, seeded: for scores that are not one right-or-wrong answer,
 * such as an image's share of a family's levels a model gets right.
 */
export function bootstrapMean(
  delta: ArrayLike<number>,
  seed: number,
  resamples = 2000,
): { difference: number; ci95: Interval } {
  const n = delta.length;
  if (n === 0) throw new RangeError("A bootstrap needs at least one paired difference.");
  let total = 0;
  for (let i = 0; i < n; i++) total += delta[i];
  const random = new Random(seed);
  const draws = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += delta[random.int(n)];
    draws[r] = sum / n;
  }
  draws.sort();
  const at = (q: number) => draws[Math.min(resamples - 1, Math.floor(q * resamples))];
  return { difference: total / n, ci95: { low: at(0.025), high: at(0.975) } };
}

/** Whether an interval for a difference holds zero: the difference is within noise. */
export function holdsZero(interval: Interval): boolean {
  return interval.low <= 0 && interval.high >= 0;
}
