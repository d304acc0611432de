/**
 * The models the lab serves: every ONNX file in a folder, loaded once into
 * ONNX Runtime behind a batcher, with what the lab shows about each (layout,
 * metadata, test accuracy and most confident test mistakes from the metrics
 * files beside the models).
 */
import { basename, join } from "node:path";
import { classifierFiles, type InputLayout, OnnxClassifier } from "../infer/classifier.ts";
import { UsageError } from "../util/cli.ts";
import { exists } from "../util/files.ts";
import { PredictionBatcher } from "./batcher.ts";

export interface ConfidentMistake {
  index: number;
  label: number;
  prediction: number;
  confidence: number;
}

export interface ServedModel {
  name: string;
  file: string;
  layout: InputLayout;
  inputName: string;
  metadata: Record<string, unknown>;
  /** From metrics/NAME_test.json (`deno task infer --test-set --metrics`), else the ONNX metadata. */
  testAccuracy?: number;
  mistakes: ConfidentMistake[];
  classifier: OnnxClassifier;
  batcher: PredictionBatcher;
}

function parseValues(metadata: Record<string, string>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(metadata).map(([key, value]) => {
      try {
        return [key, JSON.parse(value)];
      } catch {
        return [key, value];
      }
    }),
  );
}

async function readTestMetrics(
  path: string,
): Promise<{ accuracy?: number; mistakes: ConfidentMistake[] }> {
  try {
    const metrics = JSON.parse(await Deno.readTextFile(path));
    return {
      accuracy: typeof metrics.accuracy === "number" ? metrics.accuracy : undefined,
      mistakes: Array.isArray(metrics.confident_mistakes) ? metrics.confident_mistakes : [],
    };
  } catch {
    return { mistakes: [] };
  }
}

/**
 * Loads every `.onnx` file in `modelsDir` (sorted by name). `metricsDir`
 * holds the optional `NAME_test.json` files. A missing or empty folder is a
 * usage error naming it.
 */
export async function loadServedModels(
  modelsDir: string,
  metricsDir: string,
  options: { threads?: number; maxBatch?: number } = {},
): Promise<ServedModel[]> {
  if (!(await exists(modelsDir))) {
    throw new UsageError(
      `The models folder ${modelsDir} does not exist: export models first (deno task export) or pass --models DIR.`,
    );
  }
  const files: string[] = [];
  for await (const entry of Deno.readDir(modelsDir)) {
    if (entry.isFile && entry.name.endsWith(".onnx")) files.push(join(modelsDir, entry.name));
  }
  if (files.length === 0) {
    throw new UsageError(`${modelsDir} holds no .onnx models: run deno task export first.`);
  }
  const models: ServedModel[] = [];
  // An angle network (train:turn) may sit beside the turned model it serves: left out.
  for (const file of await classifierFiles(files.sort())) {
    const name = basename(file, ".onnx");
    const classifier = await OnnxClassifier.load(file, {
      threads: options.threads,
      spinning: false,
    });
    const metadata = parseValues(classifier.info.metadata);
    const test = await readTestMetrics(join(metricsDir, `${name}_test.json`));
    const training = metadata.training_metrics as { test_accuracy?: number } | undefined;
    models.push({
      name,
      file,
      layout: classifier.info.layout,
      inputName: classifier.info.inputName,
      metadata,
      testAccuracy: test.accuracy ?? training?.test_accuracy,
      mistakes: test.mistakes,
      classifier,
      batcher: new PredictionBatcher((pixels) => classifier.predict(pixels), options.maxBatch),
    });
  }
  if (models.length === 0) throw new UsageError(`${modelsDir} holds no classifiers to serve.`);
  return models;
}
