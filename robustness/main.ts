/**
 * deno task eval:robustness [--model FILE.onnx]... [--family NAME]... [--limit N] [--seed N] [--out DIR]
 *
 * How accuracy holds up under rotation, shift, zoom, shear, elastic
 * deformation, noise, blur and the MNIST-C corruptions, for every model
 * given (ONNX, through ONNX Runtime: ours or any other MNIST classifier).
 */
import { join } from "node:path";
import { VERSIONS } from "../deps.ts";
import {
  loadMnist,
  MAX_VALIDATION_SIZE,
  type MnistSplit,
  splitTrainValidation,
  subset,
  VALIDATION_SIZE,
} from "../data/mnist.ts";
import { classifierFiles, OnnxClassifier } from "../infer/classifier.ts";
import { commandLine, intFlag, parseFlags, runMain, UsageError } from "../util/cli.ts";
import { listModels } from "../util/results_dir.ts";
import { writeJsonAtomic } from "../util/files.ts";
import { distinctModelNames } from "../util/model_names.ts";
import { Random } from "../util/random.ts";
import { evaluateRobustness, type NamedClassifier, summarize } from "./evaluate.ts";
import { compareFamilies, PAIRED_BOOTSTRAP } from "./paired.ts";
import { progressBar } from "./progress.ts";
import { levelSeed } from "./perturb.ts";
import { FAMILIES, type Family } from "./families.ts";
import { writeExamplesGrid, writeRobustnessPlots } from "./plots.ts";

const HELP = `Evaluate MNIST classifiers (ONNX) on perturbed and corrupted digits.

Usage: deno task eval:robustness [flags]

Flags:
  --model FILE.onnx   a model to evaluate (repeatable; default: every .onnx in DIR/models/)
  --family NAME       restrict the suite (repeatable); "mnist_c" selects all 15 MNIST-C corruptions
  --limit N           use the first N images of the split (default all)
  --seed N            seed of the random perturbations (default 0)
  --split S           test (default) or validation: the 6,000 training images that training
                      with --split-seed held out, for choosing recipes without the test set;
                      sweep families unless --family names MNIST-C's (their corruption
                      functions on the validation digits; MNIST-C itself is test images), no plots
  --validation N      with --split validation: the N images a run trained with --validation N
                      held out (default 6000; the robust recipe holds out 500)
  --split-seed N      the training seed whose validation images --split validation takes
                      (default 42)
  --out DIR           reads DIR/models/, writes DIR/metrics/robustness.json (with --split
                      validation: robustness_validation.json) and DIR/plots/ (default results/)
  --help              show this help

Families: ${FAMILIES.map((f) => f.name).join(", ")}`;

function selectFamilies(requested: string[]): Family[] {
  if (requested.length === 0) return FAMILIES;
  const selected = new Set<Family>();
  for (const name of requested) {
    const matches = name === "mnist_c"
      ? FAMILIES.filter((f) => f.group === "mnist-c")
      : FAMILIES.filter((f) => f.name === name || f.name === `mnist_c/${name}`);
    if (matches.length === 0) {
      throw new UsageError(
        `Unknown family "${name}"; known families: mnist_c, ${
          FAMILIES.map((f) => f.name).join(", ")
        }.`,
      );
    }
    for (const family of matches) selected.add(family);
  }
  return FAMILIES.filter((family) => selected.has(family));
}

/** Refuses a split other than test or validation. */
function checkSplit(split: string): void {
  if (split !== "test" && split !== "validation") {
    throw new UsageError(`--split takes test or validation, not "${split}".`);
  }
}

/** The images to perturb: the test set, or one training seed's validation images. */
async function evaluationImages(
  split: string,
  splitSeed: number,
  validationSize: number,
): Promise<MnistSplit> {
  const { train, test } = await loadMnist();
  return split === "test"
    ? test
    : splitTrainValidation(train, splitSeed, undefined, validationSize).validation;
}

function percent(value: number | null | undefined): string {
  return value === null || value === undefined ? "-" : `${(value * 100).toFixed(1)}%`;
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    model: { type: "string", multiple: true },
    family: { type: "string", multiple: true },
    limit: { type: "string" },
    seed: { type: "string" },
    split: { type: "string", default: "test" },
    "split-seed": { type: "string" },
    validation: { type: "string" },
    out: { type: "string", default: "results" },
    help: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const split = values.split!;
  // Validation images take the sweeps unless MNIST-C's corruptions are asked for by name:
  // MNIST-C itself is test images, and its figures elsewhere are the test set's.
  const families = values.family
    ? selectFamilies(values.family)
    : FAMILIES.filter((f) => split !== "validation" || f.group === "sweep");
  const limit = intFlag(values.limit, "limit", 10000, 1, 10000);
  const splitSeed = intFlag(values["split-seed"], "split-seed", 42, 0, 2 ** 31 - 1);
  checkSplit(split);
  if (values.validation !== undefined && split !== "validation") {
    throw new UsageError(
      "--validation goes with --split validation: the test set is always whole.",
    );
  }
  const validationSize = intFlag(
    values.validation,
    "validation",
    VALIDATION_SIZE,
    1,
    MAX_VALIDATION_SIZE,
  );
  const seed = intFlag(values.seed, "seed", 0, 0, 2 ** 31 - 1);
  const outDir = values.out!;
  const files = values.model?.length
    ? values.model
    : await classifierFiles(await listModels(outDir, "onnx"));

  const names = distinctModelNames(files);
  const models: NamedClassifier[] = [];
  try {
    for (const [i, file] of files.entries()) {
      models.push({ name: names[i], classifier: await OnnxClassifier.load(file) });
    }
    const pool = await evaluationImages(split, splitSeed, validationSize);
    const images = limit < pool.count
      ? subset(pool, Array.from({ length: limit }, (_, i) => i))
      : pool;
    const described = split === "test" ? "test images" : `validation images (seed ${splitSeed})`;
    const levels = families.reduce((sum, f) => sum + f.levels.length, 0);
    console.log(
      `Evaluating ${
        models.map((m) => m.name).join(", ")
      } on ${images.count} ${described}, ${families.length} families, ${levels} levels (seed ${seed}).`,
    );
    const started = performance.now();
    const results = await evaluateRobustness(models, images, families, seed, progressBar());
    const seconds = (performance.now() - started) / 1000;

    const summaries = Object.fromEntries(
      Object.entries(results).map(([name, r]) => [name, summarize(r, families)]),
    );
    const nameWidth = Math.max(14, ...names.map((name) => name.length + 1));
    console.log(
      `\n${"model".padEnd(nameWidth)}${"clean".padStart(8)}${
        families.filter((f) => f.group === "sweep").map((f) => f.name.padStart(15)).join("")
      }${"MNIST-C".padStart(10)}  worst case`,
    );
    for (const [name, s] of Object.entries(summaries)) {
      const sweeps = families.filter((f) => f.group === "sweep").map((f) =>
        percent(s.families[f.name]).padStart(15)
      ).join("");
      const worst = s.worst
        ? `${percent(s.worst.accuracy)} (${s.worst.family} ${s.worst.level})`
        : "-";
      console.log(
        `${name.padEnd(nameWidth)}${percent(s.clean).padStart(8)}${sweeps}${
          percent(s.mnist_c_mean).padStart(10)
        }  ${worst}`,
      );
    }
    console.log(
      `(sweep columns: mean accuracy over the family's levels; ${seconds.toFixed(0)} s in all)`,
    );

    const comparing = performance.now();
    const paired = compareFamilies(results, families);
    console.log(
      `paired bootstraps of ${paired.length} model differences: ${
        ((performance.now() - comparing) / 1000).toFixed(0)
      } s`,
    );
    const metricsPath = join(
      outDir,
      "metrics",
      split === "test" ? "robustness.json" : "robustness_validation.json",
    );
    await writeJsonAtomic(metricsPath, {
      models: Object.fromEntries(
        Object.entries(results).map(([name, r]) => [name, {
          file: files[models.findIndex((m) => m.name === name)],
          clean: r.clean,
          clean_mean_confidence: r.clean_confidence,
          families: r.families,
          summary: summaries[name],
        }]),
      ),
      families: Object.fromEntries(
        families.map((f) => [f.name, { unit: f.unit, levels: f.levels, group: f.group }]),
      ),
      // Each pair of models on each family, image by image (robustness/paired.ts).
      paired: { bootstrap: PAIRED_BOOTSTRAP, comparisons: paired },
      config: {
        split,
        ...(split === "validation" ? { split_seed: splitSeed, held_out: validationSize } : {}),
        images: images.count,
        seed,
        interpolation: "bilinear, zero fill",
      },
      seconds,
      command: commandLine("deno task eval:robustness", args),
      date: new Date().toISOString(),
      versions: { deno: Deno.version.deno, ...VERSIONS },
    });
    if (split !== "test") {
      console.log(`written: ${metricsPath}`);
      return;
    }
    const plotsDir = join(outDir, "plots");
    const plots = await writeRobustnessPlots(results, families, plotsDir);
    // The first test digit under every level; MNIST-C's corruptions share one row.
    const clean = Float32Array.from(images.images.subarray(0, 784), (v) => v / 255);
    const tiles = (family: Family) => {
      const prepared = family.prepare?.(clean, new Random(levelSeed(seed, family.name, -1)));
      return family.levels.map((level, index) => ({
        label: family.group === "mnist-c" ? family.name.replace("mnist_c/", "") : String(level),
        pixels: family.apply(
          clean,
          level,
          new Random(levelSeed(seed, family.name, index)),
          prepared,
          0,
        ),
      }));
    };
    const mnistC = families.filter((f) => f.group === "mnist-c");
    const grid = join(plotsDir, "robustness_examples.png");
    await writeExamplesGrid([
      ...families.filter((f) => f.group === "sweep").map((f) => ({
        title: f.name,
        images: tiles(f),
      })),
      ...(mnistC.length ? [{ title: "MNIST-C", images: mnistC.flatMap(tiles) }] : []),
    ], grid);
    console.log(`written: ${metricsPath}, ${[...plots, grid].join(", ")}`);
  } finally {
    for (const { classifier } of models) await classifier.release();
  }
}

if (import.meta.main) await runMain(() => main(Deno.args));
