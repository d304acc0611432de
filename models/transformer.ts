/**
 * A small vision transformer: the image cut into non-overlapping patches
 * (a strided convolution embeds each as a token), a learned position
 * embedding, pre-norm encoder blocks (x + attention(LayerNorm(x)), then
 * x + MLP(LayerNorm(x)) with GELU), a final LayerNorm, the mean over tokens
 * and Dense(10) softmax.
 */
import { tf } from "../deps_tfjs.ts";
import { MultiHeadSelfAttention, PositionEmbedding } from "./attention_layers.ts";
import { IMAGE_SIZE, NUM_CLASSES } from "./shapes.ts";

export interface TransformerOptions {
  kind: "transformer";
  /** Side of the square patches; IMAGE_SIZE must divide by it. */
  patch: number;
  /** Token width. */
  width: number;
  /** Encoder blocks. */
  depth: number;
  heads: number;
  /** Hidden units of each block's MLP. */
  mlp: number;
}

type Symbolic = tf.SymbolicTensor;

const apply = (layer: tf.layers.Layer, x: Symbolic | Symbolic[]) => layer.apply(x) as Symbolic;

function encoderBlock(x: Symbolic, options: TransformerOptions, name: string): Symbolic {
  const norm1 = apply(tf.layers.layerNormalization({ name: `${name}_norm1` }), x);
  const attended = apply(
    new MultiHeadSelfAttention({ heads: options.heads, name: `${name}_attention` }),
    norm1,
  );
  const x1 = apply(tf.layers.add({ name: `${name}_add1` }), [x, attended]);
  const norm2 = apply(tf.layers.layerNormalization({ name: `${name}_norm2` }), x1);
  const hidden = apply(
    tf.layers.dense({ units: options.mlp, activation: "gelu", name: `${name}_mlp1` }),
    norm2,
  );
  const back = apply(tf.layers.dense({ units: options.width, name: `${name}_mlp2` }), hidden);
  return apply(tf.layers.add({ name: `${name}_add2` }), [x1, back]);
}

export function buildTransformer(options: TransformerOptions, name: string): tf.LayersModel {
  if (IMAGE_SIZE % options.patch !== 0) {
    throw new Error(`Patches of ${options.patch} px do not tile a ${IMAGE_SIZE} px image.`);
  }
  const side = IMAGE_SIZE / options.patch;
  const input = tf.input({ shape: [IMAGE_SIZE, IMAGE_SIZE, 1], name: "image" });
  const patches = apply(
    tf.layers.conv2d({
      filters: options.width,
      kernelSize: options.patch,
      strides: options.patch,
      name: "patches",
    }),
    input,
  );
  const tokens = apply(
    tf.layers.reshape({ targetShape: [side * side, options.width], name: "tokens" }),
    patches,
  );
  let x = apply(new PositionEmbedding({ name: "positions" }), tokens);
  for (let b = 0; b < options.depth; b++) x = encoderBlock(x, options, `block${b + 1}`);
  const normed = apply(tf.layers.layerNormalization({ name: "norm" }), x);
  const pooled = apply(tf.layers.globalAveragePooling1d({ name: "pool" }), normed);
  const output = apply(
    tf.layers.dense({ units: NUM_CLASSES, activation: "softmax", name: "classes" }),
    pooled,
  );
  return tf.model({ inputs: input, outputs: output, name });
}
