/**
 * The models under a results folder (DIR/models/): tfjs model folders for
 * the exporter, ONNX files for inference and robustness evaluation.
 */
import { join } from "node:path";
import { UsageError } from "./cli.ts";
import { exists } from "./files.ts";

export type ModelKind = "tfjs" | "onnx";

/**
 * The name a classifier behind a learned turn goes by in a results folder of
 * its own (models/turned.onnx, metrics/turned_test.json), and as a report row.
 */
export const TURNED_MODEL_NAME = "turned";

const HINTS: Record<ModelKind, { missing: string; empty: string }> = {
  tfjs: {
    missing: "train a model first (deno task train:baseline) or pass --model DIR",
    empty: "holds no tfjs model folders (with a model.json)",
  },
  onnx: {
    missing: "export models first (deno task export) or pass --model FILE.onnx",
    empty: "holds no .onnx models: run deno task export first",
  },
};

/** Paths of the models of one kind in DIR/models/, sorted; a usage error when there are none. */
export async function listModels(resultsDir: string, kind: ModelKind): Promise<string[]> {
  const dir = join(resultsDir, "models");
  if (!(await exists(dir))) {
    throw new UsageError(`There is no ${dir} folder: ${HINTS[kind].missing}.`);
  }
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    const matches = kind === "onnx"
      ? entry.isFile && entry.name.endsWith(".onnx")
      : entry.isDirectory && (await exists(join(path, "model.json")));
    if (matches) found.push(path);
  }
  if (found.length === 0) throw new UsageError(`${dir} ${HINTS[kind].empty}.`);
  return found.sort();
}
