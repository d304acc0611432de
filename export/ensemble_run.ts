/**
 * `deno task export --ensemble ...`: the ensemble of named models, or of
 * the members chosen on validation digits, written as DIR/models/ensemble.onnx.
 */
import { basename, dirname, join } from "node:path";
import { type Mnist, pixelsOf, splitTrainValidation, VALIDATION_SIZE } from "../data/mnist.ts";
import { OnnxClassifier } from "../infer/classifier.ts";
import { UsageError } from "../util/cli.ts";
import { exists, writeJsonAtomic } from "../util/files.ts";
import { type FileName, foldersToTellApart, qualifiedName } from "../util/model_names.ts";
import { listModels } from "../util/results_dir.ts";
import { Random } from "../util/random.ts";
import { augmentBatch, ROBUST_AUGMENTATION } from "../transforms/augment.ts";
import { type Choice, chooseMembers } from "./ensemble_choice.ts";
import { type EnsembleMember, exportEnsemble } from "./ensemble.ts";

export const ENSEMBLE_NAME = "ensemble";

/** What `--choose-on` may name: the validation digits alone, or with corrupted copies. */
export const CHOICE_SETS = ["clean+corrupted", "clean"] as const;
export type ChoiceSet = typeof CHOICE_SETS[number];

/** Seed of the corrupted copies of the validation digits the choice may score. */
export const CHOICE_CORRUPTION_SEED = 6011;

/**
 * The validation digits the log loss is taken on: as they are, and for
 * "clean+corrupted" followed by a copy of each under the robust recipe's
 * augmentation (geometry and the appearance families), fixed by
 * CHOICE_CORRUPTION_SEED. A network trained on clean digits alone scores
 * best on clean ones (seed 42's clean-recipe VGG network: validation log loss 0.0010
 * against the robust CNN's 0.0034) yet reads 66% of MNIST-C.
 */
export function choiceDigits(
  pixels: Float32Array,
  labels: Uint8Array,
  set: ChoiceSet,
): { pixels: Float32Array; labels: Uint8Array } {
  if (set === "clean") return { pixels, labels };
  const corrupted = augmentBatch(pixels, new Random(CHOICE_CORRUPTION_SEED), ROBUST_AUGMENTATION);
  const both = new Float32Array(pixels.length * 2);
  both.set(pixels);
  both.set(corrupted, pixels.length);
  const bothLabels = new Uint8Array(labels.length * 2);
  bothLabels.set(labels);
  bothLabels.set(labels, labels.length);
  return { pixels: both, labels: bothLabels };
}

interface Candidate {
  name: string;
  path: string;
}

/** `DIR/models/<name>.onnx` for a name, the path itself for a file ending in .onnx. */
function resolveMember(resultsDir: string, given: string): Candidate {
  return given.endsWith(".onnx")
    ? { name: basename(given, ".onnx"), path: given }
    : { name: given, path: join(resultsDir, "models", `${given}.onnx`) };
}

/**
 * Where a candidate's training metrics are: beside its run's models/ folder
 * (RUN/metrics/<name>_metrics.json for RUN/models/<name>.onnx), so that a
 * candidate may come from another run's folder.
 */
function metricsOf(candidate: Candidate): string {
  const name = basename(candidate.path, ".onnx");
  return join(dirname(dirname(candidate.path)), "metrics", `${name}_metrics.json`);
}

/**
 * Members given as files of the same name (robust.onnx of seeds 42 and 43)
 * are named by their run's folders too, as few as tell them apart
 * ("seed-43/robust"; "clean/seeds/seed-43/vgg" beside
 * "results/seeds/seed-43/vgg"): names prefix each member's tensors in the
 * merged graph, and key the choice's scores.
 */
export function distinctNames(candidates: Candidate[]): Candidate[] {
  // The folders above each file, nearest first, without the models/ folders.
  const files: FileName[] = candidates.map(({ name, path }) => ({
    plain: name,
    folders: dirname(path).split(/[\\/]/)
      .filter((part) => part !== "" && part !== "." && part !== "models").reverse(),
  }));
  return candidates.map((candidate, i) => ({
    ...candidate,
    name: qualifiedName(files[i], foldersToTellApart(files, i) ?? files[i].folders.length),
  }));
}

async function readMembers(candidates: Candidate[]): Promise<EnsembleMember[]> {
  return await Promise.all(candidates.map(async ({ name, path }) => {
    if (!(await exists(path))) {
      throw new UsageError(
        `Ensemble member ${path} does not exist: export it first (deno task export).`,
      );
    }
    return { name, bytes: await Deno.readFile(path) };
  }));
}

/** The seed and held-out digits a candidate's training run recorded. */
async function trainingSplit(candidate: Candidate) {
  const { name } = candidate;
  const path = metricsOf(candidate);
  let metrics: { seed?: number; config?: { validation?: number; limit?: number } };
  try {
    metrics = JSON.parse(await Deno.readTextFile(path));
  } catch {
    throw new UsageError(
      `Choosing members needs each candidate's training metrics, and ${path} cannot be read; name the members instead (--ensemble a,b,c).`,
    );
  }
  if (metrics.config?.limit) {
    throw new UsageError(
      `Candidate ${name} trained on --limit ${metrics.config.limit} images; it is a probe, not a candidate.`,
    );
  }
  return { seed: metrics.seed ?? 42, validation: metrics.config?.validation ?? VALIDATION_SIZE };
}

/** The exported models in DIR/models/ with a training run's metrics (ensembles have none). */
async function trainedModels(resultsDir: string): Promise<Candidate[]> {
  const models = (await listModels(resultsDir, "onnx"))
    .map((path) => ({ name: basename(path, ".onnx"), path }));
  const trained = await Promise.all(
    models.map(({ name }) => exists(join(resultsDir, "metrics", `${name}_metrics.json`))),
  );
  return models.filter((_, i) => trained[i]);
}

/**
 * Chooses members among `names` (default: every model in DIR/models with
 * a training run's metrics) on the validation digits none of them trained on: candidates of
 * one seed hold out the last digits of the same order, so the smallest
 * held-out set is among all of theirs.
 */
export async function chooseOnValidation(
  resultsDir: string,
  data: Mnist,
  names?: string[],
  set: ChoiceSet = "clean+corrupted",
): Promise<Choice & { seed: number; validationImages: number; chosen: Candidate[] }> {
  const candidates = names
    ? distinctNames(names.map((name) => resolveMember(resultsDir, name)))
    : await trainedModels(resultsDir);
  const given = candidates.map(({ name }) => name);
  if (new Set(given).size < given.length) {
    throw new UsageError(`--candidates names a model twice: ${given.join(", ")}.`);
  }
  const splits = await Promise.all(candidates.map(trainingSplit));
  const seeds = new Set(splits.map((split) => split.seed));
  if (seeds.size > 1) {
    throw new UsageError(
      `The candidates trained with different seeds (${
        [...seeds].join(", ")
      }), so no validation digits are held out by all of them.`,
    );
  }
  const seed = splits[0].seed;
  const validationImages = Math.min(...splits.map((split) => split.validation));
  const { validation } = splitTrainValidation(data.train, seed, undefined, validationImages);
  const { pixels, labels } = choiceDigits(
    pixelsOf(validation, Array.from({ length: validation.count }, (_, i) => i)),
    validation.labels,
    set,
  );
  const probabilities = new Map<string, Float32Array>();
  for (const candidate of candidates) {
    const classifier = await OnnxClassifier.load(candidate.path);
    try {
      probabilities.set(candidate.name, await classifier.predict(pixels));
    } finally {
      await classifier.release();
    }
  }
  const choice = chooseMembers(probabilities, labels);
  const chosen = choice.members.map((name) => candidates.find((c) => c.name === name)!);
  return { ...choice, seed, validationImages, chosen };
}

export async function runEnsembleExport(options: {
  resultsDir: string;
  ensemble: string;
  candidates?: string[];
  /** `--choose-on`: the digits the choice scores (default clean+corrupted). */
  chooseOn?: string;
  /** The file's name in DIR/models/ (default ENSEMBLE_NAME). */
  name?: string;
  data: Mnist;
  verificationPixels: Float32Array;
  command: string;
}): Promise<void> {
  const { resultsDir, data } = options;
  const fileName = options.name ?? ENSEMBLE_NAME;
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(fileName)) {
    throw new UsageError(
      `--name must be letters, digits, "-" or "_" (a file name in ${resultsDir}/models/), got "${fileName}".`,
    );
  }
  let chosen: Candidate[];
  let choice: Awaited<ReturnType<typeof chooseOnValidation>> | undefined;
  const chooseOn = options.chooseOn ?? CHOICE_SETS[0];
  if (!(CHOICE_SETS as readonly string[]).includes(chooseOn)) {
    throw new UsageError(
      `--choose-on must be ${CHOICE_SETS.join(" or ")}, got "${options.chooseOn}".`,
    );
  }
  if (options.ensemble === "auto") {
    choice = await chooseOnValidation(
      resultsDir,
      data,
      options.candidates,
      chooseOn as ChoiceSet,
    );
    const percent = (x: number) => `${(x * 100).toFixed(2)}%`;
    console.log(
      `validation digits held out by every candidate (seed ${choice.seed}): ${choice.validationImages}, ${
        chooseOn === "clean" ? "as they are" : "as they are and corrupted"
      }`,
    );
    for (const candidate of choice.candidates) {
      console.log(
        `  ${candidate.members[0]}: log loss ${candidate.logLoss.toFixed(4)}, accuracy ${
          percent(candidate.accuracy)
        }`,
      );
    }
    for (const step of choice.steps) {
      console.log(
        `  ensemble ${step.members.join(" + ")}: log loss ${step.logLoss.toFixed(4)}, accuracy ${
          percent(step.accuracy)
        }`,
      );
    }
    chosen = choice.chosen;
  } else {
    if (options.candidates) throw new UsageError("--candidates goes with --ensemble auto.");
    if (options.chooseOn) throw new UsageError("--choose-on goes with --ensemble auto.");
    const names = options.ensemble.split(",").map((name) => name.trim())
      .filter((name) => name !== "");
    if (names.length < 2) {
      throw new UsageError(
        `--ensemble needs two or more members (names in ${resultsDir}/models/ or .onnx files) or "auto", got "${options.ensemble}".`,
      );
    }
    chosen = distinctNames(names.map((name) => resolveMember(resultsDir, name)));
  }
  const members = await readMembers(chosen);
  const names = chosen.map(({ name }) => name);
  const onnxPath = join(resultsDir, "models", `${fileName}.onnx`);
  const started = performance.now();
  const result = await exportEnsemble({
    members,
    onnxPath,
    verificationPixels: options.verificationPixels,
    metadata: {
      // Its own name, as a single model's metadata carries (the API lists it so).
      model_name: fileName,
      command: options.command,
      ...(choice
        ? {
          chosen_on: `${choice.validationImages} validation digits of seed ${choice.seed}${
            chooseOn === "clean" ? "" : ", as they are and corrupted"
          }`,
        }
        : {}),
    },
  });
  console.log(
    `${names.join(" + ")} -> ${onnxPath} (${(result.bytes / 1024).toFixed(0)} KiB, ${
      ((performance.now() - started) / 1000).toFixed(1)
    } s): on ${result.images} test images, largest |p_ensemble - mean p_members| = ${
      result.maxAbsDifference.toExponential(2)
    }`,
  );
  // Which files went in: a committee's members are otherwise in its ONNX metadata only.
  await writeJsonAtomic(join(resultsDir, "metrics", `${fileName}_members.json`), {
    command: options.command,
    date: new Date().toISOString(),
    members: chosen.map(({ name, path }) => ({ name, file: path })),
    verification: {
      images: result.images,
      max_abs_difference: result.maxAbsDifference,
    },
  });
  if (choice) {
    await writeJsonAtomic(join(resultsDir, "metrics", "ensemble_choice.json"), {
      command: options.command,
      date: new Date().toISOString(),
      seed: choice.seed,
      validation_images: choice.validationImages,
      criterion: "log loss of the mean probabilities, greedy forward selection",
      digits: chooseOn === "clean"
        ? "the validation digits as they are"
        : `the validation digits as they are, and a copy of each under the robust recipe's augmentation (seed ${CHOICE_CORRUPTION_SEED})`,
      candidates: choice.candidates,
      steps: choice.steps,
      members: choice.members,
    });
  }
}
