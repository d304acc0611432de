/**
 * Inference over files and over the MNIST test set, as library functions.
 */
import { basename, extname, join } from "node:path";
import { type MnistSplit, pixelsOf } from "../data/mnist.ts";
import { argmaxRows, type OnnxClassifier } from "./classifier.ts";
import { collectImages, ImageError, readGray, writeMnistPng } from "./images.ts";
import { type MnistOptions, PreprocessError, toMnist } from "./preprocess.ts";

export interface Candidate {
  digit: number;
  probability: number;
}

export type FileResult =
  | {
    file: string;
    prediction: number;
    confidence: number;
    top: Candidate[];
    preprocessed?: string;
  }
  | { file: string; error: string };

/** The k most probable digits of one row of probabilities. */
export function topK(probabilities: Float32Array, k = 3): Candidate[] {
  return Array.from(probabilities, (probability, digit) => ({ digit, probability }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, k);
}

/** Classifies image files (folders walked); a bad file gets its own error and the rest go on. */
export async function classifyFiles(
  classifier: OnnxClassifier,
  paths: string[],
  options: { savePreprocessedDir?: string; preprocess?: MnistOptions } = {},
): Promise<FileResult[]> {
  const files = await collectImages(paths);
  const results: FileResult[] = [];
  const ready: Array<{ index: number; pixels: Float32Array }> = [];
  const used = new Set<string>();
  for (const file of files) {
    try {
      const pixels = toMnist(await readGray(file), options.preprocess);
      ready.push({ index: results.length, pixels });
      results.push({ file, prediction: -1, confidence: 0, top: [] });
    } catch (error) {
      if (!(error instanceof ImageError || error instanceof PreprocessError)) throw error;
      results.push({ file, error: `${file} ${error.message}.` });
    }
  }
  if (ready.length === 0) return results;
  const batch = new Float32Array(ready.length * 784);
  ready.forEach(({ pixels }, i) => batch.set(pixels, i * 784));
  const probabilities = await classifier.predict(batch);
  for (const [i, { index, pixels }] of ready.entries()) {
    const row = probabilities.subarray(i * 10, (i + 1) * 10);
    const top = topK(row);
    const result: FileResult = {
      file: files[index],
      prediction: top[0].digit,
      confidence: top[0].probability,
      top,
    };
    if (options.savePreprocessedDir) {
      let name = basename(files[index], extname(files[index]));
      for (let n = 2; used.has(name); n++) {
        name = `${basename(files[index], extname(files[index]))}-${n}`;
      }
      used.add(name);
      result.preprocessed = join(options.savePreprocessedDir, `${name}.png`);
      await writeMnistPng(pixels, result.preprocessed);
    }
    results[index] = result;
  }
  return results;
}

/** The digit a file name starts with ("7-chalk.png" → 7), the labelling of examples/. */
export function labelFromFileName(file: string): number | undefined {
  const match = basename(file).match(/^([0-9])-/);
  return match ? Number(match[1]) : undefined;
}

/** Accuracy over the results whose file names carry a label (undefined when none do). */
export function labelledAccuracy(
  results: FileResult[],
): { correct: number; labelled: number } | undefined {
  let correct = 0, labelled = 0;
  for (const result of results) {
    const label = labelFromFileName(result.file);
    if (label === undefined) continue;
    labelled++;
    if ("prediction" in result && result.prediction === label) correct++;
  }
  return labelled > 0 ? { correct, labelled } : undefined;
}

export interface TestSetResult {
  images: number;
  accuracy: number;
  images_per_s: number;
  /** confusion[label][prediction] counts. */
  confusion: number[][];
  /** The first test images, and the most confident mistakes: what a reader looks at. */
  samples: Prediction[];
  confident_mistakes: Prediction[];
  /** Every image's predicted digit, one character each, in test-set order: for paired tests. */
  predictions: string;
}

export interface Prediction {
  index: number;
  label: number;
  prediction: number;
  confidence: number;
}

/** Accuracy, speed, confusion matrix and sample predictions on a split (timed: ONNX Runtime only). */
export async function evaluateOnSplit(
  classifier: OnnxClassifier,
  split: MnistSplit,
  batchSize = 256,
  sampleCount = 24,
): Promise<TestSetResult> {
  const pixels = pixelsOf(split, Array.from({ length: split.count }, (_, i) => i));
  await classifier.predict(pixels.subarray(0, Math.min(split.count, batchSize) * 784), batchSize);
  const started = performance.now();
  const probabilities = await classifier.predict(pixels, batchSize);
  const seconds = (performance.now() - started) / 1000;
  const predictions = argmaxRows(probabilities);
  const confusion = Array.from({ length: 10 }, () => Array(10).fill(0));
  const all: Prediction[] = [];
  let correct = 0;
  for (let i = 0; i < split.count; i++) {
    const label = split.labels[i];
    const prediction = predictions[i];
    confusion[label][prediction]++;
    if (prediction === label) correct++;
    all.push({ index: i, label, prediction, confidence: probabilities[i * 10 + prediction] });
  }
  return {
    images: split.count,
    accuracy: correct / split.count,
    images_per_s: split.count / seconds,
    confusion,
    samples: all.slice(0, sampleCount),
    confident_mistakes: all.filter((p) => p.prediction !== p.label)
      .sort((a, b) => b.confidence - a.confidence)
      .slice(0, sampleCount),
    predictions: Array.from(predictions).join(""),
  };
}
