/**
 * One optimisation step and batched evaluation: the inner loops of training,
 * free of files, flags and printing.
 */
import { tf } from "../deps_tfjs.ts";
import { type MnistSplit, pixelsOf } from "../data/mnist.ts";
import { NUM_CLASSES } from "../models/architectures.ts";
import type { FlatAdam } from "./adam.ts";

/**
 * Categorical cross-entropy on probabilities. Keras clips them to [ε, 1−ε];
 * adding ε instead has the same effect at 0 but lets a NaN through, so that
 * a diverging run is caught rather than hidden by the clip.
 */
export function crossEntropy(
  labels: tf.Tensor1D,
  probabilities: tf.Tensor,
  soft?: SoftTargets,
): tf.Scalar {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(labels, NUM_CLASSES);
    // Cross-entropy is linear in its targets: mixing the targets mixes the losses.
    const targets = soft
      ? tf.add(
        tf.mul(oneHot, 1 - soft.weight),
        tf.mul(tf.tensor2d(soft.probabilities, [labels.size, NUM_CLASSES]), soft.weight),
      )
      : oneHot;
    const logProbabilities = tf.log(tf.add(probabilities, 1e-7));
    return tf.neg(tf.mean(tf.sum(tf.mul(targets, logProbabilities), -1)));
  });
}

/**
 * Targets a teacher gives a batch (distillation): its class probabilities
 * (count × 10) and their weight against the labels, from 0 (labels only) to 1.
 */
export interface SoftTargets {
  probabilities: Float32Array;
  weight: number;
}

/** A batch's soft targets: the teachers' mean probabilities at `weight` (none without teachers). */
export function teacherTargets(
  teachers: tf.LayersModel[] | undefined,
  weight: number,
  pixels: Float32Array,
): SoftTargets | undefined {
  return teachers && { probabilities: teacherProbabilities(teachers, pixels), weight };
}

/** The mean of the teachers' class probabilities for a batch of pixels, in inference mode. */
export function teacherProbabilities(
  teachers: tf.LayersModel[],
  pixels: Float32Array,
): Float32Array {
  return tf.tidy(() => {
    const x = tf.tensor4d(pixels, [pixels.length / 784, 28, 28, 1]);
    const each = teachers.map((teacher) => teacher.apply(x, { training: false }) as tf.Tensor);
    return tf.div(tf.addN(each), teachers.length).dataSync() as Float32Array;
  });
}

function countCorrect(labels: tf.Tensor1D, probabilities: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(probabilities, -1), labels), "int32")));
}

export interface StepResult {
  loss: number;
  correct: number;
}

export interface ShardGradients extends StepResult {
  /** The trainable weights' gradients, concatenated in `model.trainableWeights` order. */
  gradients: Float32Array;
  /** Summed (not mean) loss over the shard. */
  lossSum: number;
}

function trainableVariables(model: tf.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((weight) => weight.read() as tf.Variable);
}

/**
 * The value of `loss` (built inside the call) and its gradients with respect
 * to the model's trainable weights, concatenated in `model.trainableWeights`
 * order, into `out` when given (its size must match), else a new array.
 */
export function flatGradients(
  model: tf.LayersModel,
  loss: () => tf.Scalar,
  out?: Float32Array,
): { value: number; gradients: Float32Array } {
  const variables = trainableVariables(model);
  const { value, grads } = tf.tidy(() => tf.variableGrads(loss, variables));
  const size = variables.reduce((sum, v) => sum + v.size, 0);
  if (out && out.length !== size) {
    tf.dispose([value, ...Object.values(grads)]);
    throw new Error(`The model has ${size} trainable values, not ${out.length}.`);
  }
  const gradients = out ?? new Float32Array(size);
  let offset = 0;
  for (const variable of variables) {
    gradients.set(grads[variable.name].dataSync() as Float32Array, offset);
    offset += variable.size;
  }
  const result = { value: value.dataSync()[0], gradients };
  tf.dispose([value, ...Object.values(grads)]);
  return result;
}

/**
 * Gradients of (summed loss over this shard) / `batchSize`: one worker's part
 * of a step whose batch of `batchSize` images is split between workers, so
 * that the parts add up to the gradient of the whole batch's mean loss.
 * They are written into `out` when given (a training worker's buffer shared
 * with the run), else into a new array.
 */
export function shardGradients(
  model: tf.LayersModel,
  pixels: Float32Array,
  labels: Uint8Array,
  batchSize: number,
  out?: Float32Array,
  soft?: SoftTargets,
): ShardGradients {
  const count = labels.length;
  let correct: tf.Scalar | undefined;
  let value: number;
  let gradients: Float32Array;
  try {
    ({ value, gradients } = flatGradients(model, () => {
      const x = tf.tensor4d(pixels, [count, 28, 28, 1]);
      const y = tf.tensor1d(Int32Array.from(labels), "int32");
      const probabilities = model.apply(x, { training: true }) as tf.Tensor;
      correct = tf.keep(countCorrect(y, probabilities));
      return tf.mul(crossEntropy(y, probabilities, soft), count / batchSize) as tf.Scalar;
    }, out));
  } catch (error) {
    correct?.dispose();
    throw error;
  }
  const result = {
    gradients,
    lossSum: value * batchSize,
    loss: value * batchSize / count,
    correct: correct!.dataSync()[0],
  };
  correct!.dispose();
  return result;
}

/** One training step on a batch of pixels in [0, 1] (count × 784). */
export function trainStep(
  model: tf.LayersModel,
  optimizer: FlatAdam,
  pixels: Float32Array,
  labels: Uint8Array,
  soft?: SoftTargets,
): StepResult {
  const { gradients, loss, correct } = shardGradients(
    model,
    pixels,
    labels,
    labels.length,
    undefined,
    soft,
  );
  optimizer.apply(gradients);
  return { loss, correct };
}

export interface Evaluation {
  loss: number;
  accuracy: number;
}

/** Sums of an evaluation over some batches of a split, to be combined exactly. */
export interface EvaluationSums {
  lossSum: number;
  correct: number;
  count: number;
}

/** Number of evaluation batches of a split. */
export function evaluationBatches(split: MnistSplit, batchSize = 256): number {
  return Math.ceil(split.count / batchSize);
}

/**
 * Loss sum and correct count over batches [fromBatch, toBatch) of a split,
 * in inference mode. The core of `evaluate`, and what a training worker
 * computes for its share of the validation set.
 */
export function evaluateBatches(
  model: tf.LayersModel,
  split: MnistSplit,
  fromBatch: number,
  toBatch: number,
  batchSize = 256,
  transform?: (pixels: Float32Array) => Float32Array,
): EvaluationSums {
  let lossSum = 0;
  let correct = 0;
  let count = 0;
  for (let batch = fromBatch; batch < toBatch; batch++) {
    const start = batch * batchSize;
    const end = Math.min(split.count, start + batchSize);
    if (end <= start) break;
    const indices = Array.from({ length: end - start }, (_, i) => start + i);
    let pixels = pixelsOf(split, indices);
    if (transform) pixels = transform(pixels);
    const [loss, right] = tf.tidy(() => {
      const x = tf.tensor4d(pixels, [end - start, 28, 28, 1]);
      const y = tf.tensor1d(Int32Array.from(split.labels.subarray(start, end)), "int32");
      const probabilities = model.predict(x) as tf.Tensor;
      return [crossEntropy(y, probabilities), countCorrect(y, probabilities)];
    });
    lossSum += loss.dataSync()[0] * (end - start);
    correct += right.dataSync()[0];
    count += end - start;
    loss.dispose();
    right.dispose();
  }
  return { lossSum, correct, count };
}

/** Adds up sums taken over consecutive parts of a split, in order. */
export function combineEvaluations(parts: EvaluationSums[]): Evaluation {
  let lossSum = 0, correct = 0, count = 0;
  for (const part of parts) {
    lossSum += part.lossSum;
    correct += part.correct;
    count += part.count;
  }
  return { loss: lossSum / count, accuracy: correct / count };
}

/**
 * Loss and accuracy over a whole split, in inference mode. `transform`
 * (for the augmented test set) maps each batch's pixels first.
 */
export function evaluate(
  model: tf.LayersModel,
  split: MnistSplit,
  batchSize = 256,
  transform?: (pixels: Float32Array) => Float32Array,
): Evaluation {
  return combineEvaluations([
    evaluateBatches(model, split, 0, evaluationBatches(split, batchSize), batchSize, transform),
  ]);
}
