/**
 * Repeated runs of one recipe over consecutive seeds: where each seed's run
 * lives, and the summary of them all (`<model>_seeds.json`) that the report
 * reads (pure: the report imports its types). The first seed's run is the
 * study's headline model (DIR/models/); the others go to DIR/seeds/seed-N/,
 * with the same layout.
 */
import { join } from "node:path";
import { binomialInterval, type Interval, type SeedSummary, summarize } from "../util/stats.ts";
import type { EpochRecord } from "./records.ts";

/** What a seed's summary needs of a run's metrics (train/run.ts's Metrics has it all). */
export interface RunMetrics {
  seed: number;
  data: { test: number };
  history: EpochRecord[];
  test_accuracy: number;
  test_accuracy_augmented: number;
  train_seconds: number;
  wall_seconds: number;
  engine: string;
  command: string;
}

/** The results folder of `seed` in a study whose first seed is `firstSeed`. */
export function seedRunDir(outDir: string, firstSeed: number, seed: number): string {
  return seed === firstSeed ? outDir : join(outDir, "seeds", `seed-${seed}`);
}

export function seedsSummaryPath(outDir: string, model: string): string {
  return join(outDir, "metrics", `${model}_seeds.json`);
}

export interface SeedRun {
  seed: number;
  /** The run's results folder. */
  dir: string;
  test_accuracy: number;
  test_images: number;
  /** Wilson 95% interval of this run's test accuracy. */
  test_ci95: Interval;
  test_accuracy_augmented: number;
  validation_accuracy: number;
  train_seconds: number;
  wall_seconds: number;
  engine: string;
  command: string;
}

export interface SeedsSummary {
  model: string;
  command: string;
  date: string;
  seeds: number[];
  runs: SeedRun[];
  summary: Record<"test_accuracy" | "test_accuracy_augmented" | "validation_accuracy", SeedSummary>;
}

export function seedRun(metrics: RunMetrics, dir: string): SeedRun {
  const images = metrics.data.test;
  const last = metrics.history[metrics.history.length - 1];
  return {
    seed: metrics.seed,
    dir,
    test_accuracy: metrics.test_accuracy,
    test_images: images,
    test_ci95: binomialInterval(Math.round(metrics.test_accuracy * images), images),
    test_accuracy_augmented: metrics.test_accuracy_augmented,
    validation_accuracy: last?.val_accuracy ?? NaN,
    train_seconds: metrics.train_seconds,
    wall_seconds: metrics.wall_seconds,
    engine: metrics.engine,
    command: metrics.command,
  };
}

export function summarizeSeeds(
  model: string,
  command: string,
  runs: SeedRun[],
  date = new Date().toISOString(),
): SeedsSummary {
  const over = (key: "test_accuracy" | "test_accuracy_augmented" | "validation_accuracy") =>
    summarize(runs.map((run) => run[key]));
  return {
    model,
    command,
    date,
    seeds: runs.map((run) => run.seed),
    runs,
    summary: {
      test_accuracy: over("test_accuracy"),
      test_accuracy_augmented: over("test_accuracy_augmented"),
      validation_accuracy: over("validation_accuracy"),
    },
  };
}

/** The parts of a run's configuration that make it the same recipe: what the model is and how it learns. */
const RECIPE_KEYS = [
  "architecture",
  "augment",
  "augmentation",
  "batchSize",
  "learningRate",
  "learningRateDecay",
  "weightAverageDecay",
  "weightAverageStart",
  "finish",
  "distillation",
] as const;

/** JSON with object keys sorted, so that equal settings compare equal whatever their order. */
function canonical(value: unknown): string {
  // A setting left out and one written as null are the same setting.
  return JSON.stringify(
    value ?? null,
    (_key, v) =>
      v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
        : v,
  );
}

/**
 * Whether a run's config (from its metrics or its checkpoint) is the recipe of
 * `current`: under --resume a seed is read or continued only then, so a changed
 * architecture or augmentation is retrained instead of being summarised with
 * the new runs.
 */
export function sameRecipe(finished: object, current: object): boolean {
  const of = (config: object, key: string) => (config as Record<string, unknown>)[key];
  return RECIPE_KEYS.every((key) => canonical(of(finished, key)) === canonical(of(current, key)));
}

/**
 * A recipe's finishing stage, as far as comparing runs needs it (recipes.ts
 * holds the whole; the report reads this module and stays clear of training).
 */
interface WithFinish {
  finish?: { fromEpoch: number };
}

/**
 * Whether a run of `epochsDone` epochs is the start of `current`, whose
 * finishing stage it lacks or trained with other settings: the recipes agree
 * on everything else and neither's stage had begun, so every epoch it trained
 * is one `current` trains alike and resuming it gives the run `current` gives.
 */
export function beginsRecipe<Config extends WithFinish>(
  config: Config,
  epochsDone: number,
  current: WithFinish,
): boolean {
  const ahead = (finish?: { fromEpoch: number }) =>
    finish === undefined || epochsDone < finish.fromEpoch;
  return current.finish !== undefined && canonical(config.finish) !== canonical(current.finish) &&
    ahead(config.finish) && ahead(current.finish) &&
    sameRecipe({ ...config, finish: current.finish }, current);
}
