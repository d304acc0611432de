/**
 * The deployment face: everything that runs trained models as ONNX, without
 * TensorFlow.js. Use this in services that only classify or evaluate.
 *
 * ```ts
 * import { OnnxClassifier, readGray, toMnist } from "./deploy.ts";
 * const classifier = await OnnxClassifier.load("results/models/improved.onnx");
 * const probabilities = await classifier.predict(toMnist(await readGray("digit.png")));
 * ```
 */
export {
  DataError,
  loadMnist,
  type Mnist,
  type MnistSplit,
  pixelsOf,
  subset,
} from "./data/mnist.ts";
export {
  argmaxRows,
  detectLayout,
  type InputLayout,
  ModelError,
  OnnxClassifier,
  rowsAreProbabilities,
  softmaxRows,
} from "./infer/classifier.ts";
export { collectImages, ImageError, readGray, writeMnistPng } from "./infer/images.ts";
export { type GrayImage, PreprocessError, toMnist } from "./infer/preprocess.ts";
export { classifyFiles, evaluateOnSplit, type FileResult, topK } from "./infer/run.ts";
export { MNIST_C } from "./robustness/corruptions.ts";
export { evaluateRobustness, type ModelRobustness, summarize } from "./robustness/evaluate.ts";
export { FAMILIES, type Family, familyByName, perturbBatch } from "./robustness/families.ts";
export { type AffineParams, inverseAffine, warpAffine, warpBatch } from "./transforms/affine.ts";
export { Random } from "./util/random.ts";
