/**
 * Training-mode fast paths for two tfjs layers, installed over their `call`
 * so that model definitions stay plain tfjs layers (saved, loaded and
 * exported as such) while training runs faster:
 *
 * - BatchNormalization: our fused kernels (kernels/batch_norm.ts) instead
 *   of tfjs's `moments` + `batchNorm` graph; same outputs, same moving-average
 *   update.
 * - Conv2D: plain conv2d (+ bias, + activation) instead of tfjs's fused
 *   op, whose custom gradient always computes the input's gradient too: for
 *   the first layer that is the image's, which nothing needs.
 * - Both in inference too on the native engine (`usePlainInference`), where
 *   only the plain ops are native.
 * - LayerNormalization: broadcasting ops instead of tfjs's, which tiles the
 *   moments and the gain and bias to the input's shape: the gradient of a
 *   Tile is a Slice and an Add per repetition, 3,136 of each for the gain of
 *   a [64, 49, 64] input (a transformer step spent 5 s in them).
 * - Dropout: the keep mask drawn with Math.random (seeded per run) in one
 *   pass, instead of tfjs's per-element `seedrandom` generator followed by
 *   add, floor and divide kernels; same rule (keep with probability 1 − rate,
 *   scale kept units by 1/(1 − rate)), different draws.
 *
 * The Conv2D and Dropout paths are plain tfjs ops and serve every backend
 * (so the cpu backend draws the same dropout masks in tests); the
 * BatchNormalization one in training needs the wasm kernels. Anything else
 * (inference elsewhere, other axes, noise shapes, fixed seeds) goes to the
 * layer's own `call`.
 */
import { tf } from "../deps_tfjs.ts";
import { batchNormTraining, registerBatchNormKernels } from "./batch_norm.ts";

type Call = (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor;

interface BatchNormLayer {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: tf.LayerVariable;
  beta: tf.LayerVariable;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
}

interface ConvLayer {
  rank: number;
  kernel: tf.LayerVariable;
  bias: tf.LayerVariable | null;
  strides: [number, number];
  padding: "same" | "valid";
  dataFormat: string;
  dilationRate: [number, number];
  activation: { apply(x: tf.Tensor): tf.Tensor };
}

interface LayerNormLayer {
  axis: number | number[];
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: tf.LayerVariable | null;
  beta: tf.LayerVariable | null;
}

interface DropoutLayer {
  rate: number;
  noiseShape?: number[];
  seed?: number;
}

let installed = false;
let plainInference = false;

/**
 * Whether Conv2D and BatchNormalization layers take plain ops in inference
 * too: conv2d (+ bias, + activation), and the moving statistics folded into
 * one scale and shift. The native engine turns it on: tfjs's fused ops would
 * run on the wasm engine's own kernels, which made a teacher's forward pass
 * slower than the student's whole training step (train --teacher).
 */
export function usePlainInference(on: boolean): void {
  plainInference = on;
}

function layerPrototype(layer: tf.layers.Layer): { call: Call } {
  return Object.getPrototypeOf(layer) as { call: Call };
}

function singleInput(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor | undefined {
  if (!Array.isArray(inputs)) return inputs;
  return inputs.length === 1 ? inputs[0] : undefined;
}

function isFloat(input: tf.Tensor | undefined): input is tf.Tensor {
  return input !== undefined && input.dtype === "float32";
}

/** A keep mask of `shape`: 1/(1 − rate) with probability 1 − rate, else 0. */
export function dropoutMask(shape: number[], rate: number): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const keep = 1 / (1 - rate);
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) values[i] = Math.random() >= rate ? keep : 0;
  return tf.tensor(values, shape);
}

/** Installs the fast paths (idempotent). */
export function installTrainingLayers(): void {
  if (installed) return;
  installed = true;
  registerBatchNormKernels();

  const batchNorm = layerPrototype(tf.layers.batchNormalization({}));
  const batchNormCall = batchNorm.call;
  batchNorm.call = function (this: BatchNormLayer, inputs, kwargs) {
    const input = singleInput(inputs);
    const lastAxis = input && (this.axis === -1 || this.axis === input.rank - 1);
    if (
      !kwargs?.training && plainInference && isFloat(input) && lastAxis && this.center && this.scale
    ) {
      return tf.tidy(() => {
        const deviation = tf.rsqrt(tf.add(this.movingVariance.read(), this.epsilon));
        const scale = tf.mul(this.gamma.read(), deviation);
        const shift = tf.sub(this.beta.read(), tf.mul(this.movingMean.read(), scale));
        return tf.add(tf.mul(input, scale), shift);
      });
    }
    if (
      !kwargs?.training || !isFloat(input) || tf.getBackend() !== "wasm" || !lastAxis ||
      !this.center || !this.scale
    ) {
      return batchNormCall.call(this, inputs, kwargs);
    }
    return tf.tidy(() => {
      const [normalised, mean, variance] = batchNormTraining(
        input,
        this.gamma.read(),
        this.beta.read(),
        this.epsilon,
      );
      // The layer's own update: moving ← moving − (moving − batch)·(1 − momentum).
      const updates: Array<[tf.LayerVariable, tf.Tensor]> = [
        [this.movingMean, mean],
        [this.movingVariance, variance],
      ];
      for (const [moving, batch] of updates) {
        const current = moving.read();
        moving.write(tf.sub(current, tf.mul(tf.sub(current, batch), 1 - this.momentum)));
      }
      return normalised;
    });
  };

  const conv = layerPrototype(tf.layers.conv2d({ filters: 1, kernelSize: 1 }));
  const convCall = conv.call;
  conv.call = function (this: ConvLayer, inputs, kwargs) {
    const input = singleInput(inputs);
    if (
      !(kwargs?.training || plainInference) || !isFloat(input) || this.rank !== 2 ||
      input.rank !== 4 || this.dataFormat !== "channelsLast"
    ) {
      return convCall.call(this, inputs, kwargs);
    }
    return tf.tidy(() => {
      let output: tf.Tensor = tf.conv2d(
        input as tf.Tensor4D,
        this.kernel.read() as tf.Tensor4D,
        this.strides,
        this.padding,
        "NHWC",
        this.dilationRate,
      );
      if (this.bias) output = tf.add(output, this.bias.read());
      return this.activation.apply(output);
    });
  };

  const layerNorm = layerPrototype(tf.layers.layerNormalization({}));
  const layerNormCall = layerNorm.call;
  layerNorm.call = function (this: LayerNormLayer, inputs, kwargs) {
    const input = singleInput(inputs);
    const axes = Array.isArray(this.axis) ? this.axis : [this.axis];
    const lastAxisOnly = input !== undefined && axes.length === 1 &&
      (axes[0] === -1 || axes[0] === input.rank - 1);
    if (!kwargs?.training || !isFloat(input) || !lastAxisOnly) {
      return layerNormCall.call(this, inputs, kwargs);
    }
    return tf.tidy(() => {
      const centred = tf.sub(input, tf.mean(input, -1, true));
      const variance = tf.mean(tf.square(centred), -1, true);
      let output = tf.mul(centred, tf.rsqrt(tf.add(variance, this.epsilon)));
      if (this.scale && this.gamma) output = tf.mul(output, this.gamma.read());
      if (this.center && this.beta) output = tf.add(output, this.beta.read());
      return output;
    });
  };

  const dropout = layerPrototype(tf.layers.dropout({ rate: 0.5 }));
  const dropoutCall = dropout.call;
  dropout.call = function (this: DropoutLayer, inputs, kwargs) {
    const input = singleInput(inputs);
    if (
      !kwargs?.training || !isFloat(input) || !(this.rate > 0 && this.rate < 1) ||
      this.noiseShape != null || this.seed != null
    ) {
      return dropoutCall.call(this, inputs, kwargs);
    }
    return tf.tidy(() => tf.mul(input, dropoutMask(input.shape, this.rate)));
  };
}
