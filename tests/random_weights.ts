import { tf } from "../deps_tfjs.ts";
import type { Random } from "../util/random.ts";

/**
 * Random weights everywhere (positive variances), so that an export is
 * tested on weights with no structure for a mistake to hide in.
 */
export function randomizeWeights(model: tf.LayersModel, random: Random): void {
  model.setWeights(model.weights.map((weight) => {
    const size = weight.shape.reduce((a, b) => a! * b!, 1)!;
    const values = Float32Array.from(
      { length: size },
      () => weight.name.includes("variance") ? random.uniform(0.5, 2) : random.uniform(-0.5, 0.5),
    );
    return tf.tensor(values, weight.shape as number[]);
  }));
}
