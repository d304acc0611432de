/**
 * A depthwise-separable CNN (MobileNet-style): a full 3×3 stem convolution,
 * then stages of separable blocks — a 3×3 depthwise convolution (one filter
 * per channel) and a 1×1 pointwise convolution that mixes channels, each
 * followed by BatchNorm and ReLU — every stage starting with a 2×2 max pool;
 * global average pooling and Dense(10) softmax close it. A separable block
 * costs 9·C + C·C' multiply-adds a pixel where a full 3×3 conv costs 9·C·C'.
 */
import { tf } from "../deps_tfjs.ts";
import { IMAGE_SIZE, NUM_CLASSES } from "./shapes.ts";

export interface SeparableOptions {
  kind: "separable";
  /** Filters of the stem convolution at 28×28. */
  stem: number;
  /** Pointwise filters of each separable block, stage by stage. */
  stages: readonly (readonly number[])[];
}

const bnRelu = (): tf.layers.Layer[] => [
  tf.layers.batchNormalization(),
  tf.layers.activation({ activation: "relu" }),
];

export function buildSeparable(options: SeparableOptions, name: string): tf.LayersModel {
  const stages = options.stages.flatMap((stage) => [
    tf.layers.maxPooling2d({ poolSize: 2 }),
    ...stage.flatMap((filters) => [
      tf.layers.depthwiseConv2d({ kernelSize: 3, padding: "same", useBias: false }),
      ...bnRelu(),
      tf.layers.conv2d({ filters, kernelSize: 1, useBias: false }),
      ...bnRelu(),
    ]),
  ]);
  return tf.sequential({
    name,
    layers: [
      tf.layers.conv2d({
        inputShape: [IMAGE_SIZE, IMAGE_SIZE, 1],
        filters: options.stem,
        kernelSize: 3,
        padding: "same",
        useBias: false,
      }),
      ...bnRelu(),
      ...stages,
      tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({ units: NUM_CLASSES, activation: "softmax" }),
    ],
  });
}
