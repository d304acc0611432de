/**
 * What a model costs per image: multiply-adds of its convolutions, dense
 * layers and attention, counted from the layers' shapes (BatchNorm folds
 * into the convolutions at export; pooling, activations and normalisation
 * are left out as a few operations per value).
 */
import type { tf } from "../deps_tfjs.ts";

const product = (dims: readonly (number | null)[]) =>
  dims.reduce((a: number, b) => a * (b ?? 1), 1);

function shapeOf(shape: tf.Shape | tf.Shape[]): (number | null)[] {
  return (Array.isArray(shape[0]) ? shape[0] : shape) as (number | null)[];
}

/** Multiply-adds of one layer for one image. */
export function layerMultiplyAdds(layer: tf.layers.Layer): number {
  const output = shapeOf(layer.outputShape);
  const kernel = layer.getWeights()[0]?.shape;
  switch (layer.getClassName()) {
    case "Conv2D": {
      // Output positions × kernel size × input channels × filters.
      const [kh, kw, cin, cout] = kernel!;
      return product(output.slice(1, 3)) * kh * kw * cin * cout;
    }
    case "DepthwiseConv2D": {
      const [kh, kw, channels, multiplier] = kernel!;
      return product(output.slice(1, 3)) * kh * kw * channels * multiplier;
    }
    case "Dense": {
      const [inputs, units] = kernel!;
      return product(output.slice(1, -1)) * inputs * units;
    }
    case "MultiHeadSelfAttention": {
      // Four width × width projections a token, and q·kᵀ and weights·v over all token pairs.
      const [, tokens, width] = output as number[];
      return 4 * tokens * width * width + 2 * tokens * tokens * width;
    }
    default:
      return 0;
  }
}

export function multiplyAdds(model: tf.LayersModel): number {
  return model.layers.reduce((sum, layer) => sum + layerMultiplyAdds(layer), 0);
}
