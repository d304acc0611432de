/**
 * The study's single-architecture target (issue 33), family by family over seeds: at
 * least 99.6% clean (mean of three seeds) with no robustness family more
 * than a point below the robust CNN. The family half is read three ways,
 * because the robust CNN's own accuracy on some families moves by more than
 * the bar between its seeds: each seed against that seed's robust CNN, the
 * mean over seeds of those differences, and the lower end of their 95% t
 * interval. Pure: it reads what withRecipeRuns gathered.
 */
import { pct, signedPoints, table } from "./format.ts";
import type { ReportInputs, RobustnessSummary } from "./inputs.ts";
import { differencesBySeed, labelOf, testAccuracyBySeed } from "./architectures.ts";
import { robustnessBySeed } from "./robust.ts";
import { type SeedSummary, summarize } from "../util/stats.ts";

/** The clean half: mean test accuracy over seeds. */
export const CLEAN_BAR = 0.996;
/** The family half: no family more than this below the robust CNN (a fraction, one point). */
export const FAMILY_BAR = -0.01;
const REFERENCE = "robust";
/** Rows that are not one architecture trained on its seeds. */
const NOT_SINGLE = new Set([REFERENCE, "ensemble", "committee"]);

export interface FamilyGap {
  family: string;
  /** Seed by seed: the model's accuracy minus the robust CNN's of the same seed. */
  bySeed: Map<number, number>;
  overSeeds: SeedSummary;
}

export interface TargetRow {
  model: string;
  seeds: number[];
  clean: SeedSummary;
  /** Every family both have on every seed, the lowest mean first. */
  gaps: FamilyGap[];
  /** Every family on every seed at or above the bar, and the clean mean at or above its bar. */
  eachSeed: boolean;
  /** Every family's mean over seeds at or above the bar, and the clean mean. */
  means: boolean;
  /** Every family's interval, and the clean accuracy's, at or above its bar at its lower end. */
  intervals: boolean;
}

/** The lower end of a summary's 95% interval (its mean where the seeds agree exactly). */
const lowerEnd = (s: SeedSummary) => s.ci95?.low ?? s.mean;

/**
 * The target's rows: every single architecture whose test accuracy and
 * robustness were measured on at least two of the robust CNN's seeds (the
 * seeds where it has both).
 */
export function targetRows(inputs: ReportInputs, rows: string[]): TargetRow[] {
  const reference = robustnessBySeed(inputs, REFERENCE);
  return rows.filter((model) => !NOT_SINGLE.has(model)).flatMap((model) => {
    const robustness = robustnessBySeed(inputs, model);
    const cleanBySeed = testAccuracyBySeed(inputs, model);
    const seeds = [...robustness.keys()]
      .filter((seed) => reference.has(seed) && cleanBySeed.has(seed))
      .sort((a, b) => a - b);
    if (seeds.length < 2) return [];
    const gaps = familyGaps(seeds, robustness, reference);
    const clean = summarize(seeds.map((seed) => cleanBySeed.get(seed)!));
    const cleanHolds = clean.mean >= CLEAN_BAR;
    return [{
      model,
      seeds,
      clean,
      gaps,
      eachSeed: cleanHolds &&
        gaps.every((gap) => [...gap.bySeed.values()].every((d) => d >= FAMILY_BAR)),
      means: cleanHolds && gaps.every((gap) => gap.overSeeds.mean >= FAMILY_BAR),
      intervals: lowerEnd(clean) >= CLEAN_BAR &&
        gaps.every((gap) => lowerEnd(gap.overSeeds) >= FAMILY_BAR),
    }];
  });
}

function familyGaps(
  seeds: number[],
  model: Map<number, RobustnessSummary>,
  reference: Map<number, RobustnessSummary>,
): FamilyGap[] {
  const families = Object.keys(reference.get(seeds[0])!.families).filter((family) =>
    seeds.every((seed) =>
      typeof model.get(seed)!.families[family] === "number" &&
      typeof reference.get(seed)!.families[family] === "number"
    )
  );
  const onSeeds = (summaries: Map<number, RobustnessSummary>, family: string) =>
    new Map(seeds.map((seed) => [seed, summaries.get(seed)!.families[family]]));
  return families.map((family) => {
    const bySeed = differencesBySeed(onSeeds(model, family), onSeeds(reference, family));
    return { family, bySeed, overSeeds: summarize([...bySeed.values()]) };
  }).sort((a, b) => a.overSeeds.mean - b.overSeeds.mean);
}

/**
 * The families on which the robust CNN's own seeds differ by more than the
 * bar, widest first: where a seed-by-seed reading measures the reference's
 * luck as much as the model's.
 */
export function referenceSpread(inputs: ReportInputs, seeds: number[]) {
  const reference = robustnessBySeed(inputs, REFERENCE);
  const present = seeds.filter((seed) => reference.has(seed));
  if (present.length < 2) return [];
  return Object.keys(reference.get(present[0])!.families).flatMap((family) => {
    const values = present.map((seed) => reference.get(seed)!.families[family]);
    if (values.some((v) => typeof v !== "number")) return [];
    const low = Math.min(...values), high = Math.max(...values);
    return high - low > -FAMILY_BAR ? [{ family, low, high }] : [];
  }).sort((a, b) => (b.high - b.low) - (a.high - a.low));
}

const interval = (s: SeedSummary, format: (v: number) => string) =>
  s.ci95 ? `${format(s.ci95.low)} to ${format(s.ci95.high)}` : "one seed";

/** How many family-and-seed misses a row names before counting the rest. */
const SHOWN_UNDER = 3;

const yesNo = (held: boolean) => held ? "met" : "not met";

export function targetMarkdown(inputs: ReportInputs, rows: string[]): string | undefined {
  const measured = targetRows(inputs, rows);
  if (measured.length === 0) return undefined;
  const allSeeds = [...new Set(measured.flatMap((row) => row.seeds))].sort((a, b) => a - b);
  const spread = referenceSpread(inputs, allSeeds);
  const body = measured.map((row) => {
    const worst = row.gaps[0];
    const under = row.gaps.flatMap((gap) =>
      [...gap.bySeed].filter(([, d]) => d < FAMILY_BAR).map(([seed, d]) =>
        `${gap.family} on ${seed} (${signedPoints(d)})`
      )
    );
    return [
      labelOf(row.model),
      row.seeds.join(", "),
      `${pct(row.clean.mean)} (${interval(row.clean, (v) => pct(v))})`,
      worst
        ? `${worst.family} ${signedPoints(worst.overSeeds.mean)} (${
          interval(worst.overSeeds, (v) => signedPoints(v))
        }; seeds ${[...worst.bySeed.values()].map((d) => signedPoints(d)).join(", ")})`
        : "–",
      under.length === 0
        ? "none"
        : under.length <= SHOWN_UNDER
        ? under.join("; ")
        : `${under.slice(0, SHOWN_UNDER).join("; ")} and ${under.length - SHOWN_UNDER} more`,
      yesNo(row.eachSeed),
      yesNo(row.means),
      yesNo(row.intervals),
    ];
  });
  return [
    "### The single-architecture target, family by family over seeds",
    "",
    `The target: one architecture at ${
      pct(CLEAN_BAR, 1)
    } or more clean (mean of three seeds) with ` +
    `no robustness family more than ${-FAMILY_BAR * 100} point below the robust CNN. Each family ` +
    "(every sweep and every MNIST-C corruption) is a model's seed against the robust CNN of the same " +
    "seed, read three ways: **each seed** (every family on every seed within the bar), **means** " +
    "(every family's mean over the seeds within it) and **intervals** (the lower end of every " +
    "family's 95% t interval over the seeds within it, and of the clean accuracy's above " +
    `${pct(CLEAN_BAR, 1)}). Every row that is one architecture with its robustness measured on ` +
    "two seeds or more; clean accuracy over the same seeds, with its 95% t interval.",
    "",
    table(
      [
        "model",
        "seeds",
        "clean test (95% interval)",
        "lowest family, mean − robust CNN, points (95% interval; each seed)",
        "below the bar on a seed",
        "each seed",
        "means",
        "intervals",
      ],
      body,
    ),
    "",
    ...(spread.length
      ? [
        "The robust CNN's own seeds differ by more than the bar on " +
        spread.map(({ family, low, high }) => `${family} (${pct(low)} to ${pct(high)})`).join(
          ", ",
        ) +
        ": seed by seed, those families measure the reference's draw as much as the model's.",
        "",
      ]
      : []),
  ].join("\n");
}
