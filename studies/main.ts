/**
 * deno task study:batchnorm [--model DIR]... [--limit N] [--out DIR]
 *
 * The BatchNorm covariate-shift experiment of studies/batch_norm_shift.ts on
 * trained tfjs models; writes DIR/metrics/batchnorm_shift.json for the report.
 */
import { basename } from "node:path";
import { join } from "node:path";
import { VERSIONS } from "../deps.ts";
import { loadTestSet, subset } from "../data/mnist.ts";
import { sayFallback, useEngine } from "../kernels/engine.ts";
import { loadLayersModel } from "../models/layers_io.ts";
import { FAMILIES } from "../robustness/families.ts";
import { commandLine, intFlag, parseFlags, runMain, UsageError } from "../util/cli.ts";
import { exists, writeJsonAtomic } from "../util/files.ts";
import { listModels } from "../util/results_dir.ts";
import { batchNormShift, type ShiftResult } from "./batch_norm_shift.ts";

const HELP = `Test whether BatchNorm statistics explain a model's collapse under corruptions.

Usage: deno task study:batchnorm [flags]

For each MNIST-C corruption and the noise and blur sweeps at a strong level:
accuracy on the second half of the test set with the model's own BatchNorm
statistics, and after re-estimating them (no labels) on the corrupted first half.

Flags:
  --model DIR    a tfjs model folder (repeatable; default: those in DIR/models/ with BatchNorm)
  --limit N      use the first N test images (default 10,000)
  --seed N       seed of the corruptions, as in eval:robustness (default 0)
  --out DIR      results folder (default results/): writes DIR/metrics/batchnorm_shift.json
  --help         show this help`;

/** The sweeps' strong levels: where the improved model had collapsed. */
const SWEEP_LEVELS: Record<string, number> = { gaussian_noise: 0.3, gaussian_blur: 1.5 };

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    model: { type: "string", multiple: true },
    limit: { type: "string" },
    seed: { type: "string" },
    out: { type: "string", default: "results" },
    help: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const limit = intFlag(values.limit, "limit", 10000, 2, 10000);
  const seed = intFlag(values.seed, "seed", 0, 0, 2 ** 31 - 1);
  const dirs = values.model?.length ? values.model : await listModels(values.out!, "tfjs");
  const families = FAMILIES.flatMap((family) =>
    family.group === "mnist-c"
      ? [{ family, level: family.levels[0] }]
      : family.name in SWEEP_LEVELS
      ? [{ family, level: SWEEP_LEVELS[family.name] }]
      : []
  );
  const engine = await useEngine("auto");
  const test = await loadTestSet();
  const split = limit < test.count
    ? subset(test, Array.from({ length: limit }, (_, i) => i))
    : test;
  const models: Record<string, ShiftResult[]> = {};
  for (const dir of dirs) {
    if (!(await exists(join(dir, "model.json")))) {
      throw new UsageError(
        `${dir} holds no tfjs model (no model.json): pass a folder written by deno task train:<model>.`,
      );
    }
    const model = await loadLayersModel(dir);
    try {
      if (!model.layers.some((layer) => layer.getClassName() === "BatchNormalization")) {
        if (values.model?.length) {
          throw new UsageError(`${dir} has no BatchNorm layer to re-estimate.`);
        }
        continue;
      }
      const name = basename(dir);
      sayFallback(engine);
      console.log(
        `${name}: accuracy as shipped -> with statistics re-estimated on corrupted images`,
      );
      models[name] = batchNormShift(model, split, families, seed, (r) =>
        console.log(
          `  ${r.family.padEnd(24)} ${(r.shipped * 100).toFixed(1).padStart(5)}% -> ${
            (r.adapted * 100).toFixed(1).padStart(5)
          }%`,
        ));
    } finally {
      model.dispose();
    }
  }
  const path = join(values.out!, "metrics", "batchnorm_shift.json");
  await writeJsonAtomic(path, {
    command: commandLine("deno task study:batchnorm", args),
    date: new Date().toISOString(),
    seed,
    versions: { deno: Deno.version.deno, ...VERSIONS },
    images: {
      estimate: Math.floor(split.count / 2),
      evaluate: split.count - Math.floor(split.count / 2),
    },
    models,
  });
  console.log(`metrics: ${path}`);
}

if (import.meta.main) await runMain(() => main(Deno.args));
