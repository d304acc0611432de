/**
 * Runs the robustness suite: every family and level perturbs the test
 * images once, and every model classifies the same perturbed images.
 */
import { type MnistSplit, pixelsOf } from "../data/mnist.ts";
import { argmaxRows, type OnnxClassifier } from "../infer/classifier.ts";
import { Random } from "../util/random.ts";
import { type Family, perturbBatch } from "./families.ts";

export interface LevelResult {
  level: number;
  accuracy: number;
  mean_confidence: number;
}

export interface ModelRobustness {
  clean: number;
  clean_confidence: number;
  families: Record<string, LevelResult[]>;
}

/** Accuracy and mean top-1 probability of predictions against labels. */
export function score(
  probabilities: Float32Array,
  labels: Uint8Array,
): { accuracy: number; confidence: number } {
  const predictions = argmaxRows(probabilities);
  let correct = 0, confidence = 0;
  for (let i = 0; i < labels.length; i++) {
    if (predictions[i] === labels[i]) correct++;
    confidence += probabilities[i * 10 + predictions[i]];
  }
  return { accuracy: correct / labels.length, confidence: confidence / labels.length };
}

/** A seed for one family and level, independent of which other families run. */
export function levelSeed(seed: number, family: string, levelIndex: number): number {
  let hash = (seed ^ 0x9e3779b9) >>> 0;
  for (const char of `${family}#${levelIndex}`) {
    hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
  }
  return hash;
}

export interface SuiteProgress {
  start?(total: number): void;
  step?(family: string, level: number): void;
  done?(): void;
}

export interface NamedClassifier {
  name: string;
  classifier: OnnxClassifier;
}

const BATCH = 1000;

export async function evaluateRobustness(
  models: NamedClassifier[],
  test: MnistSplit,
  families: Family[],
  seed: number,
  progress: SuiteProgress = {},
): Promise<Record<string, ModelRobustness>> {
  const clean = pixelsOf(test, Array.from({ length: test.count }, (_, i) => i));
  const results: Record<string, ModelRobustness> = {};
  for (const { name, classifier } of models) {
    const scored = score(await classifier.predict(clean, BATCH), test.labels);
    results[name] = { clean: scored.accuracy, clean_confidence: scored.confidence, families: {} };
  }
  progress.start?.(families.reduce((sum, family) => sum + family.levels.length, 0));
  for (const family of families) {
    for (const model of models) results[model.name].families[family.name] = [];
    const prepared = family.prepare?.(clean, new Random(levelSeed(seed, family.name, -1)));
    for (const [index, level] of family.levels.entries()) {
      const isIdentity = level === family.identity;
      const images = isIdentity ? clean : perturbBatch(
        family,
        clean,
        level,
        new Random(levelSeed(seed, family.name, index)),
        prepared,
      );
      for (const { name, classifier } of models) {
        const { accuracy, confidence } = isIdentity
          ? { accuracy: results[name].clean, confidence: results[name].clean_confidence }
          : score(await classifier.predict(images, BATCH), test.labels);
        results[name].families[family.name].push({ level, accuracy, mean_confidence: confidence });
      }
      progress.step?.(family.name, level);
    }
  }
  progress.done?.();
  return results;
}

export interface Summary {
  clean: number;
  families: Record<string, number>;
  mnist_c_mean: number | null;
  worst: { family: string; level: number; accuracy: number } | null;
}

/** Per model: mean accuracy per family, mean over MNIST-C, and the worst case. */
export function summarize(result: ModelRobustness, families: Family[]): Summary {
  const means: Record<string, number> = {};
  let worst: Summary["worst"] = null;
  const mnistC: number[] = [];
  for (const family of families) {
    const levels = result.families[family.name] ?? [];
    if (levels.length === 0) continue;
    means[family.name] = levels.reduce((sum, l) => sum + l.accuracy, 0) / levels.length;
    if (family.group === "mnist-c") mnistC.push(means[family.name]);
    for (const l of levels) {
      if (!worst || l.accuracy < worst.accuracy) {
        worst = { family: family.name, level: l.level, accuracy: l.accuracy };
      }
    }
  }
  return {
    clean: result.clean,
    families: means,
    mnist_c_mean: mnistC.length ? mnistC.reduce((a, b) => a + b) / mnistC.length : null,
    worst,
  };
}
