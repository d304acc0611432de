/**
 * The metrics files the report is made from, read and checked: a missing
 * optional file is skipped, a malformed one is named in one sentence.
 */
import { join, relative } from "node:path";
import { TURNED_MODEL_NAME } from "../util/results_dir.ts";
import { exists } from "../util/files.ts";

export type { EpochRecord } from "../train/records.ts";
import type { EpochRecord } from "../train/records.ts";

export interface TrainingMetrics {
  model: string;
  history: EpochRecord[];
  test_accuracy: number;
  test_loss: number;
  test_accuracy_augmented: number;
  train_seconds: number;
  seed: number;
  command: string;
  date: string;
  data: { train: number; validation: number; test: number };
  parameters?: { total: number };
  /** The training engine ("native" or "wasm"), and what the native one's convolutions ran on. */
  engine?: string;
  convolutions?: string;
  /** The training augmentation (null: none), for the report's list of counterparts. */
  config?: { augmentation?: Record<string, unknown> | null; recipeName?: string };
}

export interface TestSetMetrics {
  accuracy: number;
  images_per_s: number;
  confusion: number[][];
  samples: Array<{ index: number; label: number; prediction: number; confidence: number }>;
  confident_mistakes: Array<
    { index: number; label: number; prediction: number; confidence: number }
  >;
  /** Every test image's predicted digit, in order (for paired tests). */
  predictions?: string;
}

/** One model's per-family means in a robustness file. */
export type RobustnessSummary = RobustnessMetrics["models"][string]["summary"];

export interface RobustnessMetrics {
  models: Record<string, {
    clean: number;
    clean_mean_confidence: number;
    families: Record<string, Array<{ level: number; accuracy: number; mean_confidence: number }>>;
    summary: {
      families: Record<string, number>;
      mnist_c_mean: number | null;
      worst: { family: string; level: number; accuracy: number } | null;
    };
  }>;
  families: Record<string, { unit: string; levels: number[]; group: "sweep" | "mnist-c" }>;
  /** Each pair of models on each family ("mnist_c": the corruptions' mean), image by image. */
  paired?: {
    bootstrap: { seed: number; resamples: number };
    comparisons: Array<{
      a: string;
      b: string;
      family: string;
      difference: number;
      ci95: { low: number; high: number };
    }>;
  };
  config: { images: number; seed: number };
  command: string;
}

export interface BenchMetrics {
  train?: Record<string, number>;
  infer_tfjs?: Record<string, number>;
  infer_onnx?: Record<string, number>;
  multiply_adds?: Record<string, number>;
  parameters?: Record<string, number>;
  command?: string;
}

export type { SeedsSummary } from "../train/seeds.ts";
import type { SeedsSummary } from "../train/seeds.ts";

export interface HandwritingScoreMetrics {
  images: number;
  accuracy: number;
  by_source: Record<string, { images: number; accuracy: number }>;
}

/** A set of digits read two ways (robustness/transfer.ts writes it). */
export interface TwoPathMetrics {
  deploy: { images: number; correct: number; accuracy: number; refused: number };
  reference: { images: number; correct: number; accuracy: number };
  difference: {
    value: number;
    ci95: { low: number; high: number };
    mcnemar_p: number;
    only_deploy: number;
    only_reference: number;
  };
  mistakes: Array<{ index: number; label: number; prediction: number }>;
  /** Deploy accuracy by thirds of stroke width and |slant| (absent in older files). */
  by_shape?: Record<
    "stroke_width" | "abs_slant",
    Array<{ from: number; to: number; images: number; accuracy: number }>
  >;
}

export interface HandwritingMetrics {
  command: string;
  images: number;
  folders: string[];
  /** What the two paths were run on (absent in files written before USPS was added). */
  two_paths?: {
    usps: { split: string; digits: number; source: string };
    mnist_as_images?: { digits: number; source: string };
  };
  models: Record<
    string,
    {
      saturated: HandwritingScoreMetrics;
      plain: HandwritingScoreMetrics;
      usps?: TwoPathMetrics;
      mnist_as_images?: TwoPathMetrics;
    }
  >;
}

export interface BatchNormShiftMetrics {
  command: string;
  images: { estimate: number; evaluate: number };
  models: Record<
    string,
    Array<{ family: string; level: number; shipped: number; adapted: number }>
  >;
}

/** One extra seed's run of a model: what its own results folder holds. */
export interface SeedRunMetrics {
  seed: number;
  robustness?: RobustnessMetrics;
  handwriting?: HandwritingMetrics;
}

export type { AblationFile } from "../ablation/results.ts";
import type { AblationFile } from "../ablation/results.ts";

export interface ReportInputs {
  training: Record<string, TrainingMetrics>;
  testSets: Record<string, TestSetMetrics>;
  robustness?: RobustnessMetrics;
  bench?: BenchMetrics;
  ablation?: AblationFile;
  /** Multi-seed summaries by model (`<model>_seeds.json`). */
  seeds: Record<string, SeedsSummary>;
  /** For each model with seeds: every seed's robustness and handwriting metrics, when evaluated. */
  seedRuns: Record<string, SeedRunMetrics[]>;
  handwriting?: HandwritingMetrics;
  batchNormShift?: BatchNormShiftMetrics;
  /** The ensemble's test-set metrics (`ensemble_test.json`) in each seed's results folder. */
  ensembleRuns: Array<{ seed: number; test: TestSetMetrics }>;
  /**
   * Classifiers behind a learned turn (`export --turned`), seed by seed, by
   * row key (withRecipeRuns): "turned" where the angle network trained in the
   * same folder, "turned:RECIPE" for a named recipe's run with a turn in front.
   */
  turnedRuns?: Record<string, TurnedRunMetrics[]>;
}

/** The key a turned model's files go by: models/turned.onnx, metrics/turned_test.json. */
export const TURNED_KEY = TURNED_MODEL_NAME;

/** What `train:turn` writes beside its angle network. */
const TURN_TRAINING_FILE = "turn_training.json";

/** Whether a row key names a classifier behind a learned turn ("turned", "turned:mild-shift"). */
export function isTurnedKey(key: string): boolean {
  return key.split(":")[0] === TURNED_KEY;
}

/** One seed of a turned model: its test set and, when evaluated, robustness and handwriting. */
export interface TurnedRunMetrics {
  seed: number;
  test: TestSetMetrics;
  robustness?: RobustnessMetrics;
  handwriting?: HandwritingMetrics;
}

export class MetricsError extends Error {}

async function readJson<T>(
  path: string,
  check: (value: Record<string, unknown>) => string | undefined,
): Promise<T> {
  let value: unknown;
  try {
    value = JSON.parse(await Deno.readTextFile(path));
  } catch (error) {
    if (error instanceof SyntaxError) {
      throw new MetricsError(`Metrics file ${path} is not valid JSON.`);
    }
    throw new MetricsError(`Metrics file ${path} cannot be read: ${(error as Error).message}`);
  }
  const problem = typeof value === "object" && value !== null
    ? check(value as Record<string, unknown>)
    : "it is not a JSON object";
  if (problem) throw new MetricsError(`Metrics file ${path} is malformed: ${problem}.`);
  return value as T;
}

const isNumber = (value: unknown) => typeof value === "number" && Number.isFinite(value);

function checkTraining(value: Record<string, unknown>): string | undefined {
  if (!Array.isArray(value.history) || value.history.length === 0) {
    return "it has no per-epoch history";
  }
  for (const key of ["test_accuracy", "test_loss", "test_accuracy_augmented"]) {
    if (!isNumber(value[key])) return `"${key}" is missing or not a number`;
  }
  const bad = (value.history as Record<string, unknown>[]).findIndex((record) =>
    !["loss", "accuracy", "val_loss", "val_accuracy"].every((key) => isNumber(record[key]))
  );
  return bad >= 0
    ? `epoch record ${bad + 1} lacks loss, accuracy, val_loss or val_accuracy`
    : undefined;
}

function checkTestSet(value: Record<string, unknown>): string | undefined {
  const confusion = value.confusion as unknown[];
  if (!Array.isArray(confusion) || confusion.length !== 10) {
    return "it has no 10x10 confusion matrix";
  }
  if (!Array.isArray(value.samples)) return "it has no sample predictions";
  return isNumber(value.accuracy) ? undefined : `"accuracy" is missing or not a number`;
}

function checkAblation(value: Record<string, unknown>): string | undefined {
  if (typeof value.settings !== "object" || value.settings === null) return `it has no "settings"`;
  if (!Array.isArray(value.variants)) return `it has no "variants" list`;
  const bad = (value.variants as Record<string, unknown>[]).findIndex((variant) =>
    typeof variant.name !== "string" || !isNumber(variant.test_accuracy)
  );
  return bad >= 0 ? `variant ${bad + 1} lacks a name or a test accuracy` : undefined;
}

function checkSeeds(value: Record<string, unknown>): string | undefined {
  if (!Array.isArray(value.runs) || value.runs.length === 0) return `it has no "runs"`;
  return typeof value.summary === "object" && value.summary !== null
    ? undefined
    : `it has no "summary"`;
}

function checkModels(value: Record<string, unknown>): string | undefined {
  return typeof value.models === "object" && value.models !== null
    ? undefined
    : `it has no "models"`;
}

function checkRobustness(value: Record<string, unknown>): string | undefined {
  if (typeof value.models !== "object" || value.models === null) return `it has no "models"`;
  if (typeof value.families !== "object" || value.families === null) return `it has no "families"`;
  const config = value.config as { images?: unknown } | undefined;
  if (typeof config?.images !== "number") return `it has no "config" with the number of images`;
  const paired = value.paired as { comparisons?: unknown } | undefined;
  if (paired !== undefined && !Array.isArray(paired?.comparisons)) {
    return `its "paired" has no list of comparisons`;
  }
  return undefined;
}

/** Reads DIR/*_metrics.json, *_test.json, robustness.json, ablation.json and bench.json. */
export async function readMetrics(dir: string): Promise<ReportInputs> {
  if (!(await exists(dir))) {
    throw new MetricsError(
      `There is no metrics folder ${dir}: train a model first (deno task train:baseline).`,
    );
  }
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) if (entry.isFile) names.push(entry.name);
  names.sort();
  const inputs: ReportInputs = {
    training: {},
    testSets: {},
    seeds: {},
    seedRuns: {},
    ensembleRuns: [],
  };
  for (const name of names) {
    const path = join(dir, name);
    if (name.endsWith("_seeds.json")) {
      inputs.seeds[name.replace(/_seeds\.json$/, "")] = await readJson(path, checkSeeds);
    } else if (name.endsWith("_metrics.json")) {
      inputs.training[name.replace(/_metrics\.json$/, "")] = await readJson(path, checkTraining);
    } else if (name.endsWith("_test.json")) {
      inputs.testSets[name.replace(/_test\.json$/, "")] = await readJson(path, checkTestSet);
    } else if (name === "robustness.json") {
      inputs.robustness = await readJson(path, checkRobustness);
    } else if (name === "ablation.json") {
      inputs.ablation = await readJson(path, checkAblation);
    } else if (name === "bench.json") {
      inputs.bench = await readJson(path, () => undefined);
    } else if (name === "handwriting.json") {
      inputs.handwriting = await readJson(path, checkModels);
    } else if (name === "batchnorm_shift.json") {
      inputs.batchNormShift = await readJson(path, checkModels);
    }
  }
  // Each seed's own results folder, named relative to this one's parent (DIR/..).
  const seedMetricsDir = (summary: SeedsSummary, runDir: string) =>
    join(dir, "..", relative(summary.runs[0].dir, runDir), "metrics");
  const seedDirs = new Map<number, string>();
  for (const summary of Object.values(inputs.seeds)) {
    for (const run of summary.runs) seedDirs.set(run.seed, seedMetricsDir(summary, run.dir));
  }
  for (const [seed, metrics] of [...seedDirs].sort((a, b) => a[0] - b[0])) {
    const path = join(metrics, "ensemble_test.json");
    if (await exists(path)) {
      inputs.ensembleRuns.push({ seed, test: await readJson(path, checkTestSet) });
    }
  }
  for (const [model, summary] of Object.entries(inputs.seeds)) {
    inputs.seedRuns[model] = [];
    for (const run of summary.runs) {
      const metrics = seedMetricsDir(summary, run.dir);
      const optional = async <T>(
        file: string,
        check: (v: Record<string, unknown>) => string | undefined,
      ) =>
        await exists(join(metrics, file))
          ? await readJson<T>(join(metrics, file), check)
          : undefined;
      inputs.seedRuns[model].push({
        seed: run.seed,
        robustness: await optional<RobustnessMetrics>("robustness.json", checkRobustness),
        handwriting: await optional<HandwritingMetrics>("handwriting.json", checkModels),
      });
    }
  }
  if (Object.keys(inputs.training).length === 0) {
    throw new MetricsError(`${dir} holds no <model>_metrics.json files: train a model first.`);
  }
  return inputs;
}

/**
 * The seeds of a turned model's results folder (`export --turned`): its own
 * metrics/ and each seeds/seed-N/metrics/ with a turned_test.json, the seed
 * read from the angle network's turn_training.json; the lowest seed first.
 */
export async function readTurnedRuns(runDir: string): Promise<TurnedRunMetrics[]> {
  const dirs = [join(runDir, "metrics")];
  const seedsDir = join(runDir, "seeds");
  if (await exists(seedsDir)) {
    for await (const entry of Deno.readDir(seedsDir)) {
      if (entry.isDirectory) dirs.push(join(seedsDir, entry.name, "metrics"));
    }
  }
  const runs: TurnedRunMetrics[] = [];
  for (const dir of dirs) {
    const testPath = join(dir, `${TURNED_KEY}_test.json`);
    if (!(await exists(testPath))) continue;
    const training = await readJson<{ seed: number }>(
      await seedSource(dir),
      (value) => isNumber(value.seed) ? undefined : `"seed" is missing or not a number`,
    );
    const optional = async <T>(
      file: string,
      check: (v: Record<string, unknown>) => string | undefined,
    ) => await exists(join(dir, file)) ? await readJson<T>(join(dir, file), check) : undefined;
    runs.push({
      seed: training.seed,
      test: await readJson(testPath, checkTestSet),
      robustness: await optional<RobustnessMetrics>("robustness.json", checkRobustness),
      handwriting: await optional<HandwritingMetrics>("handwriting.json", checkModels),
    });
  }
  return runs.sort((a, b) => a.seed - b.seed);
}

/**
 * The metrics file that names a turned model's seed: the angle network's
 * where it trained in the folder, else the classifier's run trained there.
 */
async function seedSource(metricsDir: string): Promise<string> {
  const angle = join(metricsDir, TURN_TRAINING_FILE);
  if (await exists(angle)) return angle;
  for await (const entry of Deno.readDir(metricsDir)) {
    if (entry.isFile && entry.name.endsWith("_metrics.json")) return join(metricsDir, entry.name);
  }
  throw new MetricsError(
    `${metricsDir} has a turned model's test set but neither ${TURN_TRAINING_FILE} nor a classifier's *_metrics.json to name its seed.`,
  );
}

/** The row key of a model trained on a named recipe: "vgg:clean". */
export function recipeKey(model: string, recipe: string): string {
  return `${model}:${recipe}`;
}

/** The architecture behind a row key ("vgg" for "vgg:clean"). */
export function architectureOfKey(key: string): string {
  return key.split(":")[0];
}

/** Whether a row key names a run on a named recipe ("vgg:clean", not "vgg"). */
export function isRecipeKey(key: string): boolean {
  return key.includes(":");
}

/** The named recipe behind a row key ("clean" for "vgg:clean" and for "turned:vgg-gap:clean"). */
export function recipeOfKey(key: string): string {
  return key.split(":").at(-1)!;
}

/**
 * The architecture whose runs on named recipes, and turned models in front
 * of them, the report names by their recipe alone (every such run was the
 * VGG's before another architecture trained on a recipe).
 */
export const RECIPE_ARCHITECTURE = "vgg";

/**
 * The row key of a turned model in front of a named recipe's run: the VGG's
 * "turned:mild-shift" (the keys before other classifiers had turns), another
 * architecture's "turned:vgg-gap:mild".
 */
export function turnedKeyOf(classifierKey: string): string {
  return architectureOfKey(classifierKey) === RECIPE_ARCHITECTURE
    ? recipeKey(TURNED_KEY, recipeOfKey(classifierKey))
    : recipeKey(TURNED_KEY, classifierKey);
}

/** The classifier's row key behind a turned row on a named recipe ("vgg:mild-shift"). */
export function classifierOfTurnedKey(key: string): string {
  const rest = key.split(":").slice(1);
  return rest.length === 1 ? recipeKey(RECIPE_ARCHITECTURE, rest[0]) : rest.join(":");
}

/**
 * Runs on a named recipe (`train --recipe NAME --out DIR/SUB`) live in a
 * results folder of their own, one level below DIR. Their models join
 * `inputs` under recipe keys ("vgg:clean"), with their seeds, test-set,
 * robustness and handwriting metrics, in a copy of `inputs` (row keys are
 * not file names, so the plots keep to `inputs`); a folder's models trained
 * on their own recipe are left out.
 */
export async function withRecipeRuns(
  given: ReportInputs,
  resultsDir: string,
): Promise<ReportInputs> {
  const inputs: ReportInputs = {
    ...given,
    training: { ...given.training },
    testSets: { ...given.testSets },
    seeds: { ...given.seeds },
    seedRuns: { ...given.seedRuns },
    ...(given.robustness
      ? { robustness: { ...given.robustness, models: { ...given.robustness.models } } }
      : {}),
    ...(given.handwriting
      ? { handwriting: { ...given.handwriting, models: { ...given.handwriting.models } } }
      : {}),
  };
  for await (const entry of Deno.readDir(resultsDir)) {
    const metricsDir = join(resultsDir, entry.name, "metrics");
    if (!entry.isDirectory || !(await exists(metricsDir))) continue;
    const turned = await exists(join(metricsDir, `${TURNED_KEY}_test.json`));
    // The angle network's own folder holds no classifier run.
    const angleHere = turned && await exists(join(metricsDir, TURN_TRAINING_FILE));
    const recipeRuns = angleHere ? [] : await addRecipeRuns(inputs, metricsDir);
    if (!turned) continue;
    if (!angleHere && recipeRuns.length !== 1) {
      // Which row would it be? Taking "turned" would replace the angle network's own.
      throw new MetricsError(
        `${join(resultsDir, entry.name)} holds a turned model's test set beside ${
          recipeRuns.length === 0
            ? "no run on a named recipe"
            : `runs on ${recipeRuns.length} named recipes (${recipeRuns.join(", ")})`
        }, so the report cannot tell which row it is: keep a turned model beside its angle network's run or one named recipe's run.`,
      );
    }
    const key = angleHere ? TURNED_KEY : turnedKeyOf(recipeRuns[0]);
    const runs = await readTurnedRuns(join(resultsDir, entry.name));
    const first = runs[0];
    inputs.turnedRuns = { ...inputs.turnedRuns, [key]: runs };
    inputs.testSets[key] = first.test;
    const robustness = first.robustness?.models[TURNED_KEY];
    if (robustness && inputs.robustness) inputs.robustness.models[key] = robustness;
    const handwriting = first.handwriting?.models[TURNED_KEY];
    if (handwriting && inputs.handwriting) inputs.handwriting.models[key] = handwriting;
  }
  return inputs;
}

/**
 * The runs on named recipes in one results folder's metrics, added to
 * `inputs` under recipe keys; returns those keys ("vgg:mild").
 */
async function addRecipeRuns(inputs: ReportInputs, metricsDir: string): Promise<string[]> {
  let runs: ReportInputs;
  try {
    runs = await readMetrics(metricsDir);
  } catch (error) {
    if (error instanceof MetricsError && !/holds no/.test(error.message)) throw error;
    return [];
  }
  const keys: string[] = [];
  for (const [model, training] of Object.entries(runs.training)) {
    const recipe = training.config?.recipeName;
    if (!recipe) continue;
    const key = recipeKey(model, recipe);
    keys.push(key);
    inputs.training[key] = training;
    if (runs.seeds[model]) inputs.seeds[key] = runs.seeds[model];
    if (runs.seedRuns[model]) inputs.seedRuns[key] = runs.seedRuns[model];
    if (runs.testSets[model]) inputs.testSets[key] = runs.testSets[model];
    const robustness = runs.robustness?.models[model];
    if (robustness && inputs.robustness) inputs.robustness.models[key] = robustness;
    const handwriting = runs.handwriting?.models[model];
    if (handwriting && inputs.handwriting) inputs.handwriting.models[key] = handwriting;
  }
  return keys;
}
