/**
 * Accuracy on people-like digits (examples/handwriting/, examples/digits/):
 * image files labelled by the first character of their names, run through
 * `deno task infer`'s preprocessing and an ONNX model, with and without
 * stroke saturation so the report can say what each part buys.
 */
import { basename } from "node:path";
import type { OnnxClassifier } from "../infer/classifier.ts";
import { collectImages } from "../infer/images.ts";
import { classifyFiles, type FileResult, labelFromFileName } from "../infer/run.ts";
import { exists } from "../util/files.ts";

export const HANDWRITING_SETS = ["examples/handwriting", "examples/digits"];

export interface HandwritingScore {
  images: number;
  correct: number;
  accuracy: number;
  /** Accuracy per source: the second part of the file name (scan, font, paper, chalk, …). */
  by_source: Record<string, { images: number; accuracy: number }>;
  /** Files the model got wrong, with what it answered. */
  mistakes: Array<{ file: string; label: number; prediction: number }>;
}

export class HandwritingError extends Error {}

/** The labelled image files of `folders`; one sentence if a file carries no label. */
export async function labelledImages(folders: string[]): Promise<string[]> {
  for (const folder of folders) {
    if (!(await exists(folder))) throw new HandwritingError(`There is no ${folder} to score.`);
  }
  const files = await collectImages(folders);
  const unlabelled = files.filter((file) => labelFromFileName(file) === undefined);
  if (unlabelled.length > 0) {
    throw new HandwritingError(
      `${unlabelled[0]} does not start with its digit and a dash (like 7-chalk.png), ` +
        `so it cannot be scored.`,
    );
  }
  if (files.length === 0) throw new HandwritingError(`No images in ${folders.join(", ")}.`);
  return files;
}

function sourceOf(file: string): string {
  return basename(file).split(/[-.]/)[1] ?? "unknown";
}

/** Scores classified files against the labels in their names. */
export function scoreResults(results: FileResult[]): HandwritingScore {
  const sources: Record<string, { images: number; correct: number }> = {};
  const mistakes: HandwritingScore["mistakes"] = [];
  let correct = 0;
  for (const result of results) {
    const label = labelFromFileName(result.file)!;
    const source = sourceOf(result.file);
    const tally = sources[source] ??= { images: 0, correct: 0 };
    tally.images++;
    const prediction = "prediction" in result ? result.prediction : -1;
    if (prediction === label) {
      correct++;
      tally.correct++;
    } else {
      mistakes.push({ file: result.file, label, prediction });
    }
  }
  return {
    images: results.length,
    correct,
    accuracy: correct / results.length,
    by_source: Object.fromEntries(
      Object.entries(sources).sort().map((
        [source, { images, correct }],
      ) => [source, { images, accuracy: correct / images }]),
    ),
    mistakes,
  };
}

/** One model on the files, with MNIST preprocessing, stroke saturation on or off. */
export async function scoreHandwriting(
  classifier: OnnxClassifier,
  files: string[],
  saturate: boolean,
): Promise<HandwritingScore> {
  return scoreResults(await classifyFiles(classifier, files, { preprocess: { saturate } }));
}
