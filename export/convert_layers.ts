/**
 * The per-layer conversions of the exporter (export/convert.ts walks the
 * graph): each takes the converted input of a layer (a Cursor) and adds
 * the ONNX nodes that compute the layer, returning its output. Images are
 * NCHW inside the graph; BatchNormalization folds into the convolution or
 * Dense before it where the walk allows; Flatten keeps ONNX's channel-first
 * order and the following Dense's rows are permuted to match.
 */
import type { LayerJson } from "./layers_artifacts.ts";
import { type Dim, GraphBuilder } from "./onnx_graph.ts";

export class UnsupportedModelError extends Error {}

/** GELU as tfjs computes it, x · ½(1 + erf(x / √2)): opset 13 has no Gelu operator. */
export function gelu(graph: GraphBuilder, x: string, name: string): string {
  const erf = graph.node("Erf", [
    graph.node("Div", [x, graph.constant(`${name}/sqrt2`, [], [Math.SQRT2])], `${name}/scaled`),
  ], `${name}/erf`);
  const cdf = graph.node("Mul", [
    graph.node("Add", [erf, graph.constant(`${name}/one`, [], [1])], `${name}/shifted`),
    graph.constant(`${name}/half`, [], [0.5]),
  ], `${name}/cdf`);
  return graph.node("Mul", [x, cdf], name);
}

export const ACTIVATIONS = ["linear", "relu", "softmax", "gelu"];

export interface Weight {
  shape: number[];
  values: Float32Array;
}

/** A converted tensor and its shape (images NCHW, tokens [N, T, D], features [N, F]). */
export interface Cursor {
  tensor: string;
  shape: Dim[];
  /** Set after Flatten of [N, C, H, W]: the next Dense must permute its rows. */
  flattenedFrom?: [number, number, number];
}

export const unsupported = (layer: LayerJson, why: string) =>
  new UnsupportedModelError(
    `Layer "${layer.config.name}" (${layer.class_name}) cannot be exported: ${why}.`,
  );

function pair(value: unknown, fallback: number): [number, number] {
  if (value === undefined || value === null) return [fallback, fallback];
  if (typeof value === "number") return [value, value];
  const [a, b] = value as number[];
  return [a, b ?? a];
}

/** TensorFlow's "same" padding: [before, after] for one spatial axis. */
function samePadding(size: number, kernel: number, stride: number, dilation = 1): [number, number] {
  const effective = (kernel - 1) * dilation + 1;
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + effective - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

function outputSize(
  size: number,
  kernel: number,
  stride: number,
  pads: [number, number],
  dilation = 1,
) {
  return Math.floor((size + pads[0] + pads[1] - ((kernel - 1) * dilation + 1)) / stride) + 1;
}

function checkChannelsLast(layer: LayerJson) {
  const format = layer.config.data_format;
  if (format !== undefined && format !== "channelsLast" && format !== "channels_last") {
    throw unsupported(layer, `data format ${format} (only channels-last is supported)`);
  }
}

/** The Keras activation of a layer option or Activation layer. */
export function activationOf(layer: LayerJson): string {
  const activation = (layer.config.activation as string | undefined) ?? "linear";
  if (!ACTIVATIONS.includes(activation)) {
    throw unsupported(layer, `activation "${activation}" (supported: ${ACTIVATIONS.join(", ")})`);
  }
  return activation;
}

export class Converter {
  readonly graph = new GraphBuilder();
  #weights: Map<string, Weight>;

  constructor(weights: Map<string, Weight>) {
    this.#weights = weights;
  }

  weight(layer: LayerJson, name: string): Weight {
    const weight = this.#weights.get(`${layer.config.name}/${name}`);
    if (!weight) {
      throw unsupported(layer, `its weight "${name}" is missing from the weights manifest`);
    }
    return weight;
  }

  activation(cursor: Cursor, activation: string, layerName: string, rank: number): Cursor {
    if (activation === "relu") {
      return { ...cursor, tensor: this.graph.node("Relu", [cursor.tensor], layerName) };
    }
    if (activation === "gelu") {
      return { ...cursor, tensor: gelu(this.graph, cursor.tensor, layerName) };
    }
    if (activation === "softmax") {
      if (rank !== 2) {
        throw new UnsupportedModelError(
          `Layer "${layerName}" applies softmax to a rank-${rank} tensor; only [N, classes] is supported.`,
        );
      }
      return {
        ...cursor,
        tensor: this.graph.node("Softmax", [cursor.tensor], layerName, { axis: -1 }),
      };
    }
    return cursor;
  }

  /**
   * BatchNorm parameters as a per-channel affine map y = scale·x + shift.
   * Computed in float64 so that folding adds no rounding of its own.
   */
  batchNormAffine(
    layer: LayerJson,
    channels: number,
  ): { scale: Float64Array; shift: Float64Array } {
    const epsilon = (layer.config.epsilon as number | undefined) ?? 1e-3;
    const axis = (layer.config.axis as number | number[] | undefined) ?? -1;
    if (
      Array.isArray(axis)
        ? axis.length !== 1 || (axis[0] !== -1 && axis[0] !== 3)
        : axis !== -1 && axis !== 3 && axis !== 1
    ) {
      throw unsupported(
        layer,
        `normalisation axis ${JSON.stringify(axis)} (only the channel axis is supported)`,
      );
    }
    const gamma = layer.config.scale === false ? undefined : this.weight(layer, "gamma").values;
    const beta = layer.config.center === false ? undefined : this.weight(layer, "beta").values;
    const mean = this.weight(layer, "moving_mean").values;
    const variance = this.weight(layer, "moving_variance").values;
    if (mean.length !== channels) {
      throw unsupported(layer, `${mean.length} statistics for ${channels} channels`);
    }
    const scale = new Float64Array(channels);
    const shift = new Float64Array(channels);
    for (let c = 0; c < channels; c++) {
      scale[c] = (gamma ? gamma[c] : 1) / Math.sqrt(variance[c] + epsilon);
      shift[c] = (beta ? beta[c] : 0) - mean[c] * scale[c];
    }
    return { scale, shift };
  }

  conv2d(layer: LayerJson, cursor: Cursor, foldedNorm?: LayerJson): Cursor {
    const inChannels = this.imageInput(layer, cursor)[1];
    const kernel = this.weight(layer, "kernel");
    const [kh, kw, kin, kout] = kernel.shape;
    if (kin !== inChannels) {
      throw unsupported(layer, `its kernel takes ${kin} channels but its input has ${inChannels}`);
    }
    // [kh, kw, in, out] → [out, in, kh, kw], in float64 until folding is done.
    const weights = new Float64Array(kout * kin * kh * kw);
    for (let y = 0; y < kh; y++) {
      for (let x = 0; x < kw; x++) {
        for (let i = 0; i < kin; i++) {
          for (let o = 0; o < kout; o++) {
            weights[((o * kin + i) * kh + y) * kw + x] =
              kernel.values[((y * kw + x) * kin + i) * kout + o];
          }
        }
      }
    }
    return this.convolution(layer, cursor, weights, [kout, kin, kh, kw], 1, foldedNorm);
  }

  /** A depthwise convolution: ONNX Conv with one group per input channel. */
  depthwiseConv2d(layer: LayerJson, cursor: Cursor, foldedNorm?: LayerJson): Cursor {
    const inChannels = this.imageInput(layer, cursor)[1];
    const kernel = this.weight(layer, "depthwise_kernel");
    const [kh, kw, channels, multiplier] = kernel.shape;
    if (channels !== inChannels) {
      throw unsupported(
        layer,
        `its kernel takes ${channels} channels but its input has ${inChannels}`,
      );
    }
    // [kh, kw, C, M] → [C·M, 1, kh, kw]: output channel c·M + m filters input channel c.
    const outputs = channels * multiplier;
    const weights = new Float64Array(outputs * kh * kw);
    for (let y = 0; y < kh; y++) {
      for (let x = 0; x < kw; x++) {
        for (let o = 0; o < outputs; o++) {
          weights[(o * kh + y) * kw + x] = kernel.values[(y * kw + x) * outputs + o];
        }
      }
    }
    return this.convolution(layer, cursor, weights, [outputs, 1, kh, kw], channels, foldedNorm);
  }

  imageInput(layer: LayerJson, cursor: Cursor): [Dim, number, number, number] {
    checkChannelsLast(layer);
    if (cursor.shape.length !== 4) {
      throw unsupported(layer, `its input has rank ${cursor.shape.length}, not 4`);
    }
    return cursor.shape as [Dim, number, number, number];
  }

  /** An ONNX Conv with weights [out, in / group, kh, kw] (BatchNorm folded in if given). */
  convolution(
    layer: LayerJson,
    cursor: Cursor,
    weights: Float64Array,
    [kout, kin, kh, kw]: number[],
    group: number,
    foldedNorm?: LayerJson,
  ): Cursor {
    const [, , height, width] = cursor.shape as [Dim, number, number, number];
    const [sh, sw] = pair(layer.config.strides, 1);
    const [dh, dw] = pair(layer.config.dilation_rate, 1);
    const padding = layer.config.padding ?? "valid";
    if (padding !== "same" && padding !== "valid") throw unsupported(layer, `padding "${padding}"`);
    const padsH: [number, number] = padding === "same" ? samePadding(height, kh, sh, dh) : [0, 0];
    const padsW: [number, number] = padding === "same" ? samePadding(width, kw, sw, dw) : [0, 0];
    let bias: Float64Array | undefined = layer.config.use_bias === false
      ? undefined
      : Float64Array.from(this.weight(layer, "bias").values);
    if (foldedNorm) bias = this.fold(foldedNorm, weights, bias, kout, kin * kh * kw);
    const name = layer.config.name;
    const inputs = [
      cursor.tensor,
      this.graph.constant(`${name}/kernel`, [kout, kin, kh, kw], Float32Array.from(weights)),
      ...(bias ? [this.graph.constant(`${name}/bias`, [kout], Float32Array.from(bias))] : []),
    ];
    const tensor = this.graph.node("Conv", inputs, name, {
      kernel_shape: [kh, kw],
      strides: [sh, sw],
      dilations: [dh, dw],
      pads: [padsH[0], padsW[0], padsH[1], padsW[1]],
      ...(group > 1 ? { group } : {}),
    });
    const shape: Dim[] = [
      cursor.shape[0],
      kout,
      outputSize(height, kh, sh, padsH, dh),
      outputSize(width, kw, sw, padsW, dw),
    ];
    return this.activation({ tensor, shape }, activationOf(layer), name, 4);
  }

  /**
   * Folds BatchNorm into weights laid out [out][fanIn] (scaled in place);
   * returns the new bias.
   */
  fold(
    norm: LayerJson,
    weights: Float64Array,
    bias: Float64Array | undefined,
    outputs: number,
    fanIn: number,
  ): Float64Array {
    const { scale, shift } = this.batchNormAffine(norm, outputs);
    const folded = new Float64Array(outputs);
    for (let o = 0; o < outputs; o++) {
      for (let k = 0; k < fanIn; k++) weights[o * fanIn + k] *= scale[o];
      folded[o] = (bias ? bias[o] : 0) * scale[o] + shift[o];
    }
    return folded;
  }

  dense(layer: LayerJson, cursor: Cursor, foldedNorm?: LayerJson): Cursor {
    const rank = cursor.shape.length;
    if (rank !== 2 && rank !== 3) {
      throw unsupported(
        layer,
        `its input has rank ${rank}; add a Flatten layer before it`,
      );
    }
    if (rank === 3 && foldedNorm) throw unsupported(foldedNorm, "BatchNormalization of tokens");
    const kernel = this.weight(layer, "kernel");
    const [inputs, units] = kernel.shape;
    if (inputs !== cursor.shape[rank - 1]) {
      throw unsupported(
        layer,
        `its kernel takes ${inputs} features but its input has ${cursor.shape[rank - 1]}`,
      );
    }
    // Stored [out][in] while folding; ONNX Gemm gets it back as [in, out].
    const weights = new Float64Array(units * inputs);
    const rowOf = this.flattenOrder(cursor, inputs);
    for (let k = 0; k < inputs; k++) {
      const from = rowOf(k);
      for (let o = 0; o < units; o++) weights[o * inputs + k] = kernel.values[from * units + o];
    }
    let bias: Float64Array | undefined = layer.config.use_bias === false
      ? undefined
      : Float64Array.from(this.weight(layer, "bias").values);
    if (foldedNorm) bias = this.fold(foldedNorm, weights, bias, units, inputs);
    const name = layer.config.name;
    const gemmWeights = new Float32Array(inputs * units);
    for (let k = 0; k < inputs; k++) {
      for (let o = 0; o < units; o++) gemmWeights[k * units + o] = weights[o * inputs + k];
    }
    const operands = [
      cursor.tensor,
      this.graph.constant(`${name}/kernel`, [inputs, units], gemmWeights),
      ...(bias ? [this.graph.constant(`${name}/bias`, [units], Float32Array.from(bias))] : []),
    ];
    // Gemm takes matrices only; tokens [N, T, D] go through MatMul and Add.
    const tensor = !bias
      ? this.graph.node("MatMul", operands, name)
      : rank === 2
      ? this.graph.node("Gemm", operands, name)
      : this.graph.node("Add", [
        this.graph.node("MatMul", operands.slice(0, 2), `${name}/product`),
        operands[2],
      ], name);
    return this.activation(
      { tensor, shape: [...cursor.shape.slice(0, -1), units] },
      activationOf(layer),
      name,
      rank,
    );
  }

  /**
   * Maps an ONNX feature index (channel-first flatten) to the tfjs kernel
   * row (channel-last flatten) that belongs to it.
   */
  flattenOrder(cursor: Cursor, features: number): (k: number) => number {
    if (!cursor.flattenedFrom) return (k) => k;
    const [channels, height, width] = cursor.flattenedFrom;
    if (channels * height * width !== features) return (k) => k;
    return (k) => {
      const c = Math.floor(k / (height * width));
      const rest = k % (height * width);
      const y = Math.floor(rest / width);
      const x = rest % width;
      return (y * width + x) * channels + c;
    };
  }

  batchNorm(layer: LayerJson, cursor: Cursor): Cursor {
    if (cursor.flattenedFrom) throw unsupported(layer, "BatchNormalization right after Flatten");
    const channels = cursor.shape[1] as number;
    const { scale, shift } = this.batchNormAffine(layer, channels);
    const name = layer.config.name;
    // y = scale·x + shift, broadcast over the channel axis (1 in NCHW and [N, C]).
    const dims = cursor.shape.length === 4 ? [channels, 1, 1] : [channels];
    const scaled = this.graph.node("Mul", [
      cursor.tensor,
      this.graph.constant(`${name}/scale`, dims, Float32Array.from(scale)),
    ], `${name}/scaled`);
    const tensor = this.graph.node("Add", [
      scaled,
      this.graph.constant(`${name}/shift`, dims, Float32Array.from(shift)),
    ], name);
    return { ...cursor, tensor };
  }

  maxPool(layer: LayerJson, cursor: Cursor): Cursor {
    checkChannelsLast(layer);
    if (cursor.shape.length !== 4) {
      throw unsupported(layer, `its input has rank ${cursor.shape.length}, not 4`);
    }
    const [batch, channels, height, width] = cursor.shape as [Dim, number, number, number];
    const [kh, kw] = pair(layer.config.pool_size, 2);
    const [sh, sw] = pair(layer.config.strides ?? layer.config.pool_size, 2);
    const padding = layer.config.padding ?? "valid";
    if (padding !== "same" && padding !== "valid") throw unsupported(layer, `padding "${padding}"`);
    const padsH: [number, number] = padding === "same" ? samePadding(height, kh, sh) : [0, 0];
    const padsW: [number, number] = padding === "same" ? samePadding(width, kw, sw) : [0, 0];
    const tensor = this.graph.node("MaxPool", [cursor.tensor], layer.config.name, {
      kernel_shape: [kh, kw],
      strides: [sh, sw],
      pads: [padsH[0], padsW[0], padsH[1], padsW[1]],
    });
    return {
      tensor,
      shape: [batch, channels, outputSize(height, kh, sh, padsH), outputSize(width, kw, sw, padsW)],
    };
  }

  flatten(layer: LayerJson, cursor: Cursor, nextIsDense: boolean): Cursor {
    if (cursor.shape.length !== 4) return cursor;
    const [batch, channels, height, width] = cursor.shape as [Dim, number, number, number];
    let input = cursor.tensor;
    // Without a Dense to absorb the order, restore tfjs's channel-last order.
    if (!nextIsDense) {
      input = this.graph.node("Transpose", [input], `${layer.config.name}/nhwc`, {
        perm: [0, 2, 3, 1],
      });
    }
    const tensor = this.graph.node("Flatten", [input], layer.config.name, { axis: 1 });
    return {
      tensor,
      shape: [batch, channels * height * width],
      flattenedFrom: nextIsDense ? [channels, height, width] : undefined,
    };
  }

  globalAveragePool2d(layer: LayerJson, cursor: Cursor): Cursor {
    const [batch, channels] = this.imageInput(layer, cursor);
    const tensor = this.graph.node("ReduceMean", [cursor.tensor], layer.config.name, {
      axes: [2, 3],
      keepdims: 0,
    });
    return { tensor, shape: [batch, channels] };
  }

  add(layer: LayerJson, operands: Cursor[]): Cursor {
    const [first] = operands;
    const dims = JSON.stringify(first.shape);
    for (const operand of operands) {
      if (JSON.stringify(operand.shape) !== dims || operand.flattenedFrom) {
        throw unsupported(
          layer,
          `its inputs differ in shape (${dims}, ${JSON.stringify(operand.shape)})`,
        );
      }
    }
    const tensor = this.graph.node(
      operands.length === 2 ? "Add" : "Sum",
      operands.map((operand) => operand.tensor),
      layer.config.name,
    );
    return { tensor, shape: first.shape };
  }

  /**
   * tfjs's Reshape of the tensor as tfjs lays it out: images go back to
   * NHWC first, and a rank-4 result comes back to NCHW.
   */
  reshape(layer: LayerJson, cursor: Cursor): Cursor {
    const target = [...(layer.config.target_shape as number[] | undefined) ?? []];
    const name = layer.config.name;
    const layoutShape = cursor.shape.length === 4
      ? [cursor.shape[0], cursor.shape[2], cursor.shape[3], cursor.shape[1]]
      : cursor.shape;
    const size = layoutShape.slice(1).reduce((a: number, b) => a * (b as number), 1);
    const known = target.reduce((a, b) => (b === -1 ? a : a * b), 1);
    const free = target.indexOf(-1);
    if (free >= 0) target[free] = size / known;
    if (target.length === 0 || target.reduce((a, b) => a * b, 1) !== size) {
      throw unsupported(
        layer,
        `target shape ${JSON.stringify(layer.config.target_shape)} for ${size} values`,
      );
    }
    let input = cursor.tensor;
    if (cursor.shape.length === 4) {
      input = this.graph.node("Transpose", [input], `${name}/nhwc`, { perm: [0, 2, 3, 1] });
    }
    let tensor = this.graph.node("Reshape", [
      input,
      this.graph.constantInt64(`${name}/shape`, [0, ...target]),
    ], name);
    let shape: Dim[] = [cursor.shape[0], ...target];
    if (target.length === 3) {
      tensor = this.graph.node("Transpose", [tensor], `${name}/nchw`, { perm: [0, 3, 1, 2] });
      shape = [cursor.shape[0], target[2], target[0], target[1]];
    }
    return { tensor, shape };
  }
}
