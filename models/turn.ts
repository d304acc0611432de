/**
 * The angle network: a small CNN that reads how far a digit is turned from
 * the way people write it (radians, counter-clockwise), so that a classifier
 * can be handed the digit turned back. It knows nothing of its training or of
 * the turn itself (export/turned.ts puts the two around a classifier).
 */
import { tf } from "../deps_tfjs.ts";
import { IMAGE_SIZE } from "./shapes.ts";

/** The name its files and metrics go by (models/turn/, metrics/turn_training.json). */
export const TURN_MODEL_NAME = "turn";

/**
 * Conv(32) → pool → Conv(64) → pool → Conv(64) → Dense(128) → Dense(1),
 * ReLU between: about 6 M multiply-adds, a quarter of the VGG's, sized so
 * that eight epochs train in minutes on one thread.
 */
export function buildTurnNetwork(name = TURN_MODEL_NAME): tf.LayersModel {
  const conv = (filters: number, first = false) =>
    tf.layers.conv2d({
      ...(first ? { inputShape: [IMAGE_SIZE, IMAGE_SIZE, 1] } : {}),
      filters,
      kernelSize: 3,
      padding: "same",
      activation: "relu",
    });
  return tf.sequential({
    name,
    layers: [
      conv(32, true),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      conv(64),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      conv(64),
      tf.layers.flatten(),
      tf.layers.dense({ units: 128, activation: "relu" }),
      tf.layers.dense({ units: 1 }),
    ],
  });
}
