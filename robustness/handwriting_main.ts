/**
 * deno task eval:handwriting [--model FILE.onnx]... [--out DIR] [FOLDER...]
 *
 * Every model's accuracy on people-like digits, with MNIST preprocessing
 * with and without stroke saturation; writes DIR/metrics/handwriting.json.
 */
import { basename, join } from "node:path";
import { VERSIONS } from "../deps.ts";
import { OnnxClassifier } from "../infer/classifier.ts";
import { SATURATED_SHARE } from "../infer/preprocess.ts";
import { commandLine, parseFlags, runMain, UsageError } from "../util/cli.ts";
import { writeJsonAtomic } from "../util/files.ts";
import { listModels } from "../util/results_dir.ts";
import {
  HANDWRITING_SETS,
  HandwritingError,
  type HandwritingScore,
  labelledImages,
  scoreHandwriting,
} from "./handwriting.ts";

const HELP = `Score ONNX models on people-like digits (labelled by file name).

Usage: deno task eval:handwriting [flags] [FOLDER...]

Folders default to ${HANDWRITING_SETS.join(" and ")}; each file name starts
with its digit and a dash (7-chalk.png).

Flags:
  --model FILE.onnx   a model to score (repeatable; default: every .onnx in DIR/models/)
  --out DIR           reads DIR/models/, writes DIR/metrics/handwriting.json (default results/)
  --help              show this help`;

function percent(value: number): string {
  return `${(value * 100).toFixed(1)}%`;
}

export async function main(args: string[]): Promise<void> {
  const { values, positionals } = parseFlags(args, {
    model: { type: "string", multiple: true },
    out: { type: "string", default: "results" },
    help: { type: "boolean", default: false },
  }, true);
  if (values.help) {
    console.log(HELP);
    return;
  }
  const folders = positionals.length > 0 ? positionals : HANDWRITING_SETS;
  let files: string[];
  try {
    files = await labelledImages(folders);
  } catch (error) {
    if (error instanceof HandwritingError) throw new UsageError(error.message);
    throw error;
  }
  const modelFiles = values.model?.length ? values.model : await listModels(values.out!, "onnx");
  const models: Record<
    string,
    { file: string; saturated: HandwritingScore; plain: HandwritingScore }
  > = {};
  console.log(
    `Scoring ${modelFiles.length} models on ${files.length} images from ${folders.join(", ")}.`,
  );
  for (const file of modelFiles) {
    const classifier = await OnnxClassifier.load(file);
    try {
      const name = basename(file).replace(/\.onnx$/, "");
      const saturated = await scoreHandwriting(classifier, files, true);
      const plain = await scoreHandwriting(classifier, files, false);
      models[name] = { file, saturated, plain };
      const sources = Object.entries(saturated.by_source)
        .map(([source, s]) => `${source} ${percent(s.accuracy)} of ${s.images}`).join(", ");
      console.log(
        `${name}: ${percent(saturated.accuracy)} with stroke saturation ` +
          `(${percent(plain.accuracy)} without); ${sources}`,
      );
    } finally {
      await classifier.release();
    }
  }
  const path = join(values.out!, "metrics", "handwriting.json");
  await writeJsonAtomic(path, {
    command: commandLine("deno task eval:handwriting", args),
    date: new Date().toISOString(),
    versions: { deno: Deno.version.deno, ...VERSIONS },
    folders,
    images: files.length,
    saturated_share: SATURATED_SHARE,
    models,
  });
  console.log(`metrics: ${path}`);
}

if (import.meta.main) await runMain(() => main(Deno.args));
