/**
 * The deployment face: everything that runs trained models as ONNX, without
 * TensorFlow.js. Use this in services that only classify or evaluate; the
 * digit lab's server (`createLab`) is one such service.
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
  loadUsps,
  loadUspsTest,
  loadUspsTrain,
  parseUspsGzip,
  type Usps,
  uspsDigitGray,
  type UspsSplit,
} from "./data/usps.ts";
export {
  argmaxRows,
  detectLayout,
  type InputLayout,
  ModelError,
  OnnxClassifier,
  onnxMetadata,
  rowsAreProbabilities,
  softmaxRows,
} from "./infer/classifier.ts";
export {
  collectImages,
  decodeGray,
  decodeGrayWithSharp,
  ImageError,
  readGray,
  writeMnistPng,
} from "./infer/images.ts";
export {
  grayFromPixels,
  type GrayImage,
  inkMap,
  type MnistOptions,
  noiseLevel,
  paperMap,
  PreprocessError,
  referenceMnist,
  saturateStrokes,
  toMnist,
} from "./infer/preprocess.ts";
export {
  classifyFiles,
  evaluateOnSplit,
  type FileResult,
  labelFromFileName,
  labelledAccuracy,
  topK,
} from "./infer/run.ts";
export {
  HANDWRITING_SETS,
  type HandwritingScore,
  labelledImages,
  scoreHandwriting,
} from "./robustness/handwriting.ts";
export {
  binomialInterval,
  holdsZero,
  mcnemarExact,
  pairedBootstrap,
  summarize as summarizeSeeds,
} from "./util/stats.ts";
export { MNIST_C } from "./robustness/corruptions.ts";
export { type CaptureCase, captureCases } from "./robustness/capture_cases.ts";
export {
  type DigitSet,
  mnistDigits,
  scoreTwoPaths,
  type TwoPathScore,
  uspsDigits,
  writeDigitFiles,
} from "./robustness/transfer.ts";
export { evaluateRobustness, type ModelRobustness, summarize } from "./robustness/evaluate.ts";
export { FAMILIES, type Family, familyByName, perturbBatch } from "./robustness/families.ts";
export { type AffineParams, inverseAffine, warpAffine, warpBatch } from "./transforms/affine.ts";
export { Random } from "./util/random.ts";
export { type Bend, BEND_CONTROLS, bendDigit, NO_BEND } from "./lab/bend.ts";
export { createLab, type Lab, type LabOptions } from "./serve/app.ts";
export { PredictionBatcher } from "./serve/batcher.ts";
