/**
 * One optimisation step and batched evaluation: the inner loops of training,
 * free of files, flags and printing.
 */
import { tf } from "../deps_tfjs.ts";
import { type MnistSplit, pixelsOf } from "../data/mnist.ts";
import { NUM_CLASSES } from "../models/architectures.ts";

/**
 * Categorical cross-entropy on probabilities. Keras clips them to [ε, 1−ε];
 * adding ε instead has the same effect at 0 but lets a NaN through, so that
 * a diverging run is caught rather than hidden by the clip.
 */
export function crossEntropy(labels: tf.Tensor1D, probabilities: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(labels, NUM_CLASSES);
    const logProbabilities = tf.log(tf.add(probabilities, 1e-7));
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, logProbabilities), -1)));
  });
}

function countCorrect(labels: tf.Tensor1D, probabilities: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(probabilities, -1), labels), "int32")));
}

export interface StepResult {
  loss: number;
  correct: number;
}

/** One training step on a batch of pixels in [0, 1] (count × 784). */
export function trainStep(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  pixels: Float32Array,
  labels: Uint8Array,
): StepResult {
  const count = labels.length;
  let correct: tf.Scalar | undefined;
  const loss = tf.tidy(() => {
    const x = tf.tensor4d(pixels, [count, 28, 28, 1]);
    const y = tf.tensor1d(Int32Array.from(labels), "int32");
    return optimizer.minimize(() => {
      const probabilities = model.apply(x, { training: true }) as tf.Tensor;
      correct = tf.keep(countCorrect(y, probabilities));
      return crossEntropy(y, probabilities);
    }, true) as tf.Scalar;
  });
  const result = { loss: loss.dataSync()[0], correct: correct!.dataSync()[0] };
  loss.dispose();
  correct!.dispose();
  return result;
}

export interface Evaluation {
  loss: number;
  accuracy: number;
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
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < split.count; start += batchSize) {
    const end = Math.min(split.count, start + batchSize);
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
    loss.dispose();
    right.dispose();
  }
  return { loss: lossSum / split.count, accuracy: correct / split.count };
}
