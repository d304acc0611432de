/**
 * The ablation study: train every variant with the same seed, data, epochs
 * and schedule, export each to ONNX, then measure all of them on the same
 * perturbed test images. Progress is kept in metrics/ablation.json after
 * every variant, and each training run keeps its checkpoints, so an
 * interrupted ablation resumes where it stopped.
 */
import { join } from "node:path";
import { VERSIONS } from "../deps.ts";
import { type Mnist, pixelsOf, subset } from "../data/mnist.ts";
import { exportModel } from "../export/export_model.ts";
import { OnnxClassifier } from "../infer/classifier.ts";
import { evaluateRobustness, type SuiteProgress, summarize } from "../robustness/evaluate.ts";
import { FAMILIES } from "../robustness/families.ts";
import { type Metrics, outputPaths, type TrainHooks, trainModel } from "../train/run.ts";
import { exists, writeJsonAtomic } from "../util/files.ts";
import type {
  AblationFile,
  AblationSettings,
  VariantResult,
  VariantRobustness,
} from "./results.ts";
import { ROTATION_SWEEP, type Variant } from "./variants.ts";

export type { AblationFile, AblationSettings, VariantResult, VariantRobustness };

export class AblationError extends Error {}

export interface AblationHooks {
  /** Called before each variant's training (or its resumption). */
  variant?(variant: Variant, index: number, total: number, resumed: boolean): TrainHooks;
  skipped?(variant: Variant): void;
  robustness?(variants: string[]): SuiteProgress;
}

export function ablationPaths(outDir: string) {
  return {
    file: join(outDir, "metrics", "ablation.json"),
    runs: join(outDir, "ablation"),
    onnx: (name: string) => join(outDir, "ablation", "onnx", `${name}.onnx`),
  };
}

const ROBUSTNESS_FAMILIES = FAMILIES.filter((family) =>
  ["rotation", "shift_x", "shift_y"].includes(family.name) || family.group === "mnist-c"
);

/** The settings that must not change between a run and its resumption. */
function sameSettings(a: AblationSettings, b: AblationSettings): boolean {
  const keys = [
    "seed",
    "limit",
    "epochs",
    "batchSize",
    "learningRate",
    "learningRateDecay",
  ] as const;
  return keys.every((key) => a[key] === b[key]) && a.evalImages === b.evalImages;
}

/** A variant's training metrics if its run already finished with these settings. */
async function finishedRun(path: string, settings: AblationSettings): Promise<Metrics | undefined> {
  if (!(await exists(path))) return undefined;
  const metrics = JSON.parse(await Deno.readTextFile(path)) as Metrics;
  const done = metrics.history?.length === settings.epochs && metrics.seed === settings.seed &&
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
  },
): Promise<AblationFile> {
  const { outDir, variants, settings, hooks = {} } = options;
  const paths = ablationPaths(outDir);
  const previous = await readAblation(paths.file);
  if (previous && !sameSettings(previous.settings, settings)) {
    throw new AblationError(
      `${paths.file} holds an ablation with other settings (${
        JSON.stringify(previous.settings)
      }): rerun with the same flags to resume it, or choose another --out.`,
    );
  }
  const file: AblationFile = previous ?? {
    command: options.command,
    date: new Date().toISOString(),
    settings,
    versions: { deno: Deno.version.deno, ...VERSIONS },
    rotation_sweep: ROTATION_SWEEP,
    variants: [],
  };
  const save = async () => {
    file.date = new Date().toISOString();
    file.variants.sort((a, b) =>
      variants.findIndex((v) => v.name === a.name) - variants.findIndex((v) => v.name === b.name)
    );
    await writeJsonAtomic(paths.file, file);
  };
  const verification = pixelsOf(data.test, Array.from({ length: 256 }, (_, i) => i));

  for (const [index, variant] of variants.entries()) {
    if (file.variants.some((result) => result.name === variant.name)) {
      hooks.skipped?.(variant);
      continue;
    }
    const runPaths = outputPaths(paths.runs, variant.name);
    // Trained before the ablation was interrupted, or mid-way through training.
    const finished = await finishedRun(runPaths.metrics, settings);
    const resume = !finished && await exists(runPaths.checkpoint);
    const metrics = finished ?? (await trainModel(data, {
      config: {
        ...settings,
        model: variant.name,
        architecture: variant.architecture,
        augment: variant.augmentation !== null,
        ...(variant.augmentation ? { augmentation: variant.augmentation } : {}),
      },
      outDir: paths.runs,
      command: options.command,
      resume,
      hooks: hooks.variant?.(variant, index, variants.length, resume),
    })).metrics;
    await exportModel({
      modelDir: runPaths.modelDir,
      onnxPath: paths.onnx(variant.name),
      layout: "nhwc",
      verificationPixels: verification,
      metricsPath: runPaths.metrics,
    });
    const last = metrics.history.at(-1)!;
    file.variants.push({
      name: variant.name,
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
    // A finished variant's checkpoint is no longer needed for resuming.
    await Deno.remove(runPaths.checkpoint).catch(() => {});
  }

  // All variants on the same perturbed images, each perturbation made once.
  const pending = file.variants.filter((result) => result.robustness === null);
  if (pending.length > 0) {
    const models = [];
    try {
      for (const result of pending) {
        models.push({
          name: result.name,
          classifier: await OnnxClassifier.load(paths.onnx(result.name)),
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
        hooks.robustness?.(pending.map((result) => result.name)),
      );
      for (const result of pending) {
        const means = summarize(results[result.name], ROBUSTNESS_FAMILIES);
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
  }
  return file;
}
