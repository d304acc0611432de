/**
 * The ablation study: train every variant with the same seeds, data, epochs
 * and schedule, export each run to ONNX, then measure each seed's runs on the
 * same perturbed test images, and summarise each variant over its seeds.
 * Seeds run one after another: all variants of a seed are trained, then
 * measured, before the next seed starts, so an interrupted study already
 * holds whole seeds. Progress is kept in metrics/ablation.json after every
 * run, and each training run keeps its checkpoints, so an interrupted
 * ablation resumes where it stopped.
 */
import { join } from "node:path";
import { VERSIONS } from "../deps.ts";
import { type Mnist, pixelsOf, subset } from "../data/mnist.ts";
import { exportModel } from "../export/export_model.ts";
import { argmaxRows, OnnxClassifier } from "../infer/classifier.ts";
import { evaluateRobustness, type SuiteProgress, summarize } from "../robustness/evaluate.ts";
import { FAMILIES } from "../robustness/families.ts";
import {
  type Metrics,
  outputPaths,
  type TrainConfig,
  type TrainHooks,
  trainModel,
} from "../train/run.ts";
import type { GridClient } from "../grid/queue.ts";
import { runId, type RunSpec, writeFiles } from "../grid/spec.ts";
import { exists, writeJsonAtomic } from "../util/files.ts";
import { summarize as summarizeSeeds } from "../util/stats.ts";
import {
  type AblationFile,
  type AblationSettings,
  measureOf,
  runsOf,
  seedsOf,
  SPREAD_MEASURES,
  type VariantResult,
  type VariantRobustness,
} from "./results.ts";
import { ROTATION_SWEEP, type Variant } from "./variants.ts";

export type { AblationFile, AblationSettings, VariantResult, VariantRobustness };

export class AblationError extends Error {}

export interface AblationHooks {
  /** Called before each run's training (or its resumption); `index` counts runs over all seeds. */
  variant?(
    variant: Variant,
    index: number,
    total: number,
    resumed: boolean,
    seed: number,
  ): TrainHooks;
  skipped?(variant: Variant, seed: number): void;
  /** Called before waiting for a run a grid's worker trains (`queue`). */
  queued?(variant: Variant, index: number, total: number, seed: number): void;
  /** The queue's progress lines. */
  say?(line: string): void;
  robustness?(variants: string[]): SuiteProgress;
}

export function ablationPaths(outDir: string) {
  return {
    file: join(outDir, "metrics", "ablation.json"),
    runs: join(outDir, "ablation"),
    onnx: (name: string, seed: number) =>
      join(outDir, "ablation", "onnx", `${name}-seed${seed}.onnx`),
    /** Each seed's training runs have their own folder. */
    seedRuns: (seed: number) => join(outDir, "ablation", `seed-${seed}`),
  };
}

const ROBUSTNESS_FAMILIES = FAMILIES.filter((family) =>
  ["rotation", "shift_x", "shift_y"].includes(family.name) || family.group === "mnist-c"
);

/**
 * The settings that must not change between a run and its resumption; the
 * seed list may (runs are kept per variant and seed).
 */
function sameSettings(a: AblationSettings, b: AblationSettings): boolean {
  const keys = [
    "limit",
    "epochs",
    "batchSize",
    "learningRate",
    "learningRateDecay",
  ] as const;
  return keys.every((key) => a[key] === b[key]) && a.evalImages === b.evalImages;
}

/** A variant's training metrics if its run already finished with these settings. */
async function finishedRun(
  path: string,
  modelDir: string,
  settings: AblationSettings,
  seed: number,
): Promise<Metrics | undefined> {
  // Metrics are committed, trained models are not: without its model a run is trained again.
  if (!(await exists(path)) || !(await exists(join(modelDir, "model.json")))) return undefined;
  const metrics = JSON.parse(await Deno.readTextFile(path)) as Metrics;
  const done = metrics.history?.length === settings.epochs && metrics.seed === seed &&
    metrics.config?.limit === settings.limit;
  return done ? metrics : undefined;
}

async function readAblation(path: string): Promise<AblationFile | undefined> {
  if (!(await exists(path))) return undefined;
  try {
    const file = JSON.parse(await Deno.readTextFile(path)) as AblationFile;
    if (!Array.isArray(file.variants) || typeof file.settings !== "object") throw new Error();
    return file;
  } catch {
    throw new AblationError(
      `${path} is not an ablation results file; move it away or choose another --out.`,
    );
  }
}

export async function runAblation(
  data: Mnist,
  options: {
    outDir: string;
    variants: Variant[];
    settings: AblationSettings;
    command: string;
    hooks?: AblationHooks;
    /** Train the runs as jobs on a grid's queue (`deno task worker`s) instead of here. */
    queue?: GridClient;
  },
): Promise<AblationFile> {
  const { outDir, variants, settings, hooks = {}, queue } = options;
  const paths = ablationPaths(outDir);
  const previous = await readAblation(paths.file);
  if (previous && !sameSettings(previous.settings, settings)) {
    throw new AblationError(
      `${paths.file} holds an ablation with other settings (${
        JSON.stringify(previous.settings)
      }): rerun with the same flags to resume it, or choose another --out.`,
    );
  }
  const seeds = seedsOf(settings);
  const file: AblationFile = {
    command: options.command,
    date: new Date().toISOString(),
    settings: { ...settings, seed: seeds[0], seeds },
    versions: { deno: Deno.version.deno, ...VERSIONS },
    rotation_sweep: ROTATION_SWEEP,
    variants: [],
    // Runs of an earlier invocation with the same settings are kept, whatever its seeds.
    runs: previous ? runsOf(previous) : [],
  };
  const runs = file.runs!;
  const order = (r: VariantResult) =>
    seeds.indexOf(r.seed!) * variants.length + variants.findIndex((v) => v.name === r.name);
  const save = async () => {
    file.date = new Date().toISOString();
    runs.sort((a, b) => order(a) - order(b));
    Object.assign(file, summarizeVariants(variants, runs.filter((r) => seeds.includes(r.seed!))));
    await writeJsonAtomic(paths.file, file);
  };
  const verification = pixelsOf(data.test, Array.from({ length: 256 }, (_, i) => i));

  // The images the runs' test accuracy was measured on: with --limit, the first ones.
  const scored = Math.min(settings.limit ?? data.test.count, data.test.count);
  const testPixels = pixelsOf(data.test, Array.from({ length: scored }, (_, i) => i));
  /**
   * The answers on the test set (for paired tests between variants) and the
   * robustness of every run of `forSeeds` that lacks them, all variants on
   * the same perturbed images, each perturbation made once. Runs of an
   * earlier version of the ablation may lack the answers; without their
   * ONNX file (not committed) they keep lacking them.
   */
  const measure = async (forSeeds: number[]) => {
    for (const result of runs) {
      const onnx = paths.onnx(result.name, result.seed!);
      if (
        !forSeeds.includes(result.seed!) || result.predictions !== undefined ||
        !(await exists(onnx))
      ) continue;
      result.predictions = await predictionsOf(onnx, testPixels);
      await save();
    }
    const pending = runs.filter((result) =>
      result.robustness === null && forSeeds.includes(result.seed!)
    );
    if (pending.length === 0) return;
    const models = [];
    try {
      for (const result of pending) {
        models.push({
          name: `${result.name}-seed${result.seed}`,
          classifier: await OnnxClassifier.load(paths.onnx(result.name, result.seed!)),
        });
      }
      const images = Array.from(
        { length: Math.min(settings.evalImages, data.test.count) },
        (_, i) => i,
      );
      const results = await evaluateRobustness(
        models,
        subset(data.test, images),
        ROBUSTNESS_FAMILIES,
        0,
        hooks.robustness?.(models.map((model) => model.name)),
      );
      for (const result of pending) {
        const means = summarize(results[`${result.name}-seed${result.seed}`], ROBUSTNESS_FAMILIES);
        result.robustness = {
          rotation: means.families.rotation,
          shift: (means.families.shift_x + means.families.shift_y) / 2,
          mnist_c: means.mnist_c_mean!,
        };
      }
    } finally {
      for (const { classifier } of models) await classifier.release();
    }
    await save();
  };

  const total = seeds.length * variants.length;
  // A run trained but not yet measured whose model is gone (a fresh clone of an interrupted
  // study) cannot be measured: it is trained again.
  for (const result of [...runs]) {
    if (
      result.robustness === null && seeds.includes(result.seed!) &&
      !(await exists(paths.onnx(result.name, result.seed!)))
    ) {
      runs.splice(runs.indexOf(result), 1);
    }
  }
  const runConfig = (variant: Variant, seed: number): TrainConfig => ({
    ...settings,
    seed,
    model: variant.name,
    architecture: variant.architecture,
    augment: variant.augmentation !== null,
    ...(variant.augmentation ? { augmentation: variant.augmentation } : {}),
  });
  const done = (variant: Variant, seed: number) =>
    runs.some((result) => result.name === variant.name && result.seed === seed);
  // On a queue, every run still to train is queued at once, so that every worker has work.
  const jobs = new Map<string, RunSpec>();
  if (queue) {
    for (const seed of seeds) {
      for (const variant of variants) {
        const runPaths = outputPaths(paths.seedRuns(seed), variant.name);
        if (
          done(variant, seed) ||
          await finishedRun(runPaths.metrics, runPaths.modelDir, settings, seed)
        ) continue;
        const config = runConfig(variant, seed);
        jobs.set(`${variant.name}/${seed}`, {
          id: await runId("ablation", paths.seedRuns(seed), config),
          root: outDir,
          title: `${variant.name} seed ${seed}`,
          config,
          outDir: paths.seedRuns(seed),
          command: options.command,
          onnxPath: paths.onnx(variant.name, seed),
        });
      }
    }
    await queue.submit([...jobs.values()]);
  }
  for (const [seedIndex, seed] of seeds.entries()) {
    for (const [variantIndex, variant] of variants.entries()) {
      if (done(variant, seed)) {
        hooks.skipped?.(variant, seed);
        continue;
      }
      const runsDir = paths.seedRuns(seed);
      const runPaths = outputPaths(runsDir, variant.name);
      const index = seedIndex * variants.length + variantIndex;
      const job = jobs.get(`${variant.name}/${seed}`);
      // A queued run is the job's: a worker on this machine writes its metrics in place
      // before its ONNX file, so finding them here does not mean the run is done.
      const finished = job
        ? undefined
        : await finishedRun(runPaths.metrics, runPaths.modelDir, settings, seed);
      // Trained before the ablation was interrupted, or mid-way through training.
      const resume = !job && !finished && await exists(runPaths.checkpoint);
      let metrics: Metrics;
      if (job && queue) {
        hooks.queued?.(variant, index, total, seed);
        const result = await queue.following(queue.result(job), (line) => hooks.say?.(line));
        await writeFiles(outDir, result.files);
        metrics = result.metrics;
      } else if (finished) {
        metrics = finished;
      } else {
        metrics = (await trainModel(data, {
          config: runConfig(variant, seed),
          outDir: runsDir,
          command: options.command,
          resume,
          hooks: hooks.variant?.(variant, index, total, resume, seed),
        })).metrics;
      }
      if (!job) {
        await exportModel({
          modelDir: runPaths.modelDir,
          onnxPath: paths.onnx(variant.name, seed),
          layout: "nhwc",
          verificationPixels: verification,
          metricsPath: runPaths.metrics,
        });
      }
      const last = metrics.history.at(-1)!;
      runs.push({
        name: variant.name,
        seed,
        description: variant.description,
        architecture: variant.architecture,
        augmentation: variant.augmentation,
        test_accuracy: metrics.test_accuracy,
        test_loss: metrics.test_loss,
        test_accuracy_augmented: metrics.test_accuracy_augmented,
        train_val_gap: last.accuracy - last.val_accuracy,
        epochs_to_99: metrics.history.find((r) => r.val_accuracy >= 0.99)?.epoch ?? null,
        history: metrics.history.map(({ epoch, loss, accuracy, val_loss, val_accuracy }) => ({
          epoch,
          loss,
          accuracy,
          val_loss,
          val_accuracy,
        })),
        train_seconds: metrics.train_seconds,
        robustness: null,
      });
      await save();
      // A finished run's checkpoint is no longer needed for resuming.
      await Deno.remove(runPaths.checkpoint).catch(() => {});
    }
    // Each seed is measured as soon as its variants are trained, so an interrupted study
    // keeps whole seeds, which need nothing uncommitted (models, ONNX files) to be reported.
    await measure([seed]);
  }

  await save();
  return file;
}

/** An ONNX model's answers as one digit per image. */
async function predictionsOf(onnx: string, pixels: Float32Array): Promise<string> {
  const classifier = await OnnxClassifier.load(onnx);
  try {
    return argmaxRows(await classifier.predict(pixels, 256)).join("");
  } finally {
    await classifier.release();
  }
}

/**
 * Each variant's runs summarised: `variants` holds every measure's mean over
 * seeds (the first seed's history and epochs to 99%), `spread` the mean,
 * deviation and 95% interval of each measure.
 */
export function summarizeVariants(
  variants: Variant[],
  runs: VariantResult[],
): Pick<AblationFile, "variants" | "spread"> {
  const spread: NonNullable<AblationFile["spread"]> = {};
  const means: VariantResult[] = [];
  for (const variant of variants) {
    const own = runs.filter((r) => r.name === variant.name);
    if (own.length === 0) continue;
    const mean = (of: (r: VariantResult) => number) =>
      own.reduce((sum, r) => sum + of(r), 0) / own.length;
    const measured = own.every((r) => r.robustness !== null);
    spread[variant.name] = Object.fromEntries(
      SPREAD_MEASURES.flatMap((measure) => {
        const values = own.map((r) => measureOf(r, measure));
        return values.every((v): v is number => v !== undefined)
          ? [[measure, summarizeSeeds(values)]]
          : [];
      }),
    );
    const { seed: _seed, predictions: _predictions, ...first } = own[0];
    means.push({
      ...first,
      test_accuracy: mean((r) => r.test_accuracy),
      test_loss: mean((r) => r.test_loss),
      test_accuracy_augmented: mean((r) => r.test_accuracy_augmented),
      train_val_gap: mean((r) => r.train_val_gap),
      train_seconds: mean((r) => r.train_seconds),
      robustness: measured
        ? {
          rotation: mean((r) => r.robustness!.rotation),
          shift: mean((r) => r.robustness!.shift),
          mnist_c: mean((r) => r.robustness!.mnist_c),
        }
        : null,
    });
  }
  return { variants: means, spread };
}
