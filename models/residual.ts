/**
 * A small residual CNN (ResNet-style): a stem convolution, then stages of
 * residual blocks (3×3 conv → BatchNorm → ReLU → 3×3 conv → BatchNorm, added
 * to the block's input, then ReLU), each stage after the first starting with
 * a 2×2 max pool; a block that changes the width adds a 1×1 projection of its
 * input instead. Global average pooling and Dense(10) softmax close it.
 */
import { tf } from "../deps_tfjs.ts";
import { IMAGE_SIZE, NUM_CLASSES } from "./shapes.ts";

export interface ResidualOptions {
  kind: "residual";
  /** Filters of the stem convolution at 28×28. */
  stem: number;
  /** Filters of each residual block, stage by stage; every stage starts with a 2×2 max pool. */
  stages: readonly (readonly number[])[];
}

type Symbolic = tf.SymbolicTensor;

function convBn(x: Symbolic, filters: number, kernelSize: number, name: string): Symbolic {
  const conv = tf.layers.conv2d({
    filters,
    kernelSize,
    padding: "same",
    useBias: false,
    name: `${name}_conv`,
  }).apply(x) as Symbolic;
  return tf.layers.batchNormalization({ name: `${name}_bn` }).apply(conv) as Symbolic;
}

const relu = (x: Symbolic, name: string) =>
  tf.layers.activation({ activation: "relu", name }).apply(x) as Symbolic;

function residualBlock(x: Symbolic, filters: number, name: string): Symbolic {
  const inputFilters = x.shape[3];
  const branch = convBn(
    relu(convBn(x, filters, 3, `${name}_a`), `${name}_a_relu`),
    filters,
    3,
    `${name}_b`,
  );
  const shortcut = inputFilters === filters ? x : convBn(x, filters, 1, `${name}_project`);
  const sum = tf.layers.add({ name: `${name}_add` }).apply([branch, shortcut]) as Symbolic;
  return relu(sum, `${name}_relu`);
}

export function buildResidual(options: ResidualOptions, name: string): tf.LayersModel {
  const input = tf.input({ shape: [IMAGE_SIZE, IMAGE_SIZE, 1], name: "image" });
  let x = relu(convBn(input, options.stem, 3, "stem"), "stem_relu");
  options.stages.forEach((stage, s) => {
    x = tf.layers.maxPooling2d({ poolSize: 2, name: `stage${s + 1}_pool` }).apply(x) as Symbolic;
    stage.forEach((filters, b) => {
      x = residualBlock(x, filters, `stage${s + 1}_block${b + 1}`);
    });
  });
  const pooled = tf.layers.globalAveragePooling2d({ name: "pool" }).apply(x) as Symbolic;
  const output = tf.layers.dense({ units: NUM_CLASSES, activation: "softmax", name: "classes" })
    .apply(pooled) as Symbolic;
  return tf.model({ inputs: input, outputs: output, name });
}
