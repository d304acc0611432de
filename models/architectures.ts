/**
 * The two CNNs of the study, as tfjs layers models. They know nothing of
 * kernels, data or training.
 */
import { tf } from "../deps_tfjs.ts";

export const MODEL_NAMES = ["baseline", "improved"] as const;
export type ModelName = typeof MODEL_NAMES[number];

export const IMAGE_SIZE = 28;
export const NUM_CLASSES = 10;
const INPUT_SHAPE = [IMAGE_SIZE, IMAGE_SIZE, 1];

/** Conv(32) ReLU, pool, Conv(64) ReLU, pool, Dense(128) ReLU, Dense(10). */
export function buildBaseline(): tf.LayersModel {
  return tf.sequential({
    name: "baseline",
    layers: [
      tf.layers.conv2d({
        inputShape: INPUT_SHAPE,
        filters: 32,
        kernelSize: 3,
        padding: "same",
        activation: "relu",
      }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 64, kernelSize: 3, padding: "same", activation: "relu" }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 128, activation: "relu" }),
      tf.layers.dense({ units: NUM_CLASSES, activation: "softmax" }),
    ],
  });
}

/**
 * The baseline with BatchNorm after each bias-free conv and dense layer, and
 * dropout after each block. Augmentation is a training concern, not a layer.
 */
export function buildImproved(): tf.LayersModel {
  const convBlock = (filters: number, first: boolean) => [
    tf.layers.conv2d({
      ...(first ? { inputShape: INPUT_SHAPE } : {}),
      filters,
      kernelSize: 3,
      padding: "same",
      useBias: false,
    }),
    tf.layers.batchNormalization(),
    tf.layers.activation({ activation: "relu" }),
    tf.layers.maxPooling2d({ poolSize: 2 }),
    tf.layers.dropout({ rate: 0.25 }),
  ];
  return tf.sequential({
    name: "improved",
    layers: [
      ...convBlock(32, true),
      ...convBlock(64, false),
      tf.layers.flatten(),
      tf.layers.dense({ units: 128, useBias: false }),
      tf.layers.batchNormalization(),
      tf.layers.activation({ activation: "relu" }),
      tf.layers.dropout({ rate: 0.5 }),
      tf.layers.dense({ units: NUM_CLASSES, activation: "softmax" }),
    ],
  });
}

export function buildModel(name: ModelName): tf.LayersModel {
  return name === "baseline" ? buildBaseline() : buildImproved();
}

/** Whether a model of this name trains on augmented images. */
export function usesAugmentation(name: ModelName): boolean {
  return name === "improved";
}
