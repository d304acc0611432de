/**
 * tfjs layers model → ONNX, as a pure function of the model's topology and
 * weights.
 *
 * Inside the graph, images are NCHW (ONNX's Conv and MaxPool layout); an
 * NHWC input is transposed once at the start. BatchNormalization that
 * directly follows a Conv2D or Dense without activation is folded into its
 * weights (exact up to float rounding); elsewhere it becomes a per-channel
 * Mul and Add. Flatten keeps ONNX's channel-first order and the
 * following Dense's rows are permuted to match, so no transpose is needed.
 */
import { onnx, type OnnxTypes } from "../deps.ts";
import type { LayerJson, LayersArtifacts } from "./layers_artifacts.ts";
import { type Dim, GraphBuilder, tensorValueInfo } from "./onnx_graph.ts";

export const EXPORTER_VERSION = "1.0.0";
export const PRODUCER_NAME = "mnist-cnn-robustness";
export const OPSET = 13;

export type Layout = "nhwc" | "nchw";

export const SUPPORTED_LAYERS = [
  "InputLayer",
  "Conv2D",
  "BatchNormalization",
  "Activation",
  "MaxPooling2D",
  "Dropout",
  "Flatten",
  "Dense",
] as const;

export class UnsupportedModelError extends Error {}

export interface ExportOptions {
  layout: Layout;
  /** Extra `metadata_props` entries (values are stringified as JSON unless strings). */
  metadata?: Record<string, unknown>;
}

interface Weight {
  shape: number[];
  values: Float32Array;
}

/** Where the converter is: the current tensor and its shape (NCHW or [N, F]). */
interface Cursor {
  tensor: string;
  shape: Dim[];
  /** Set after Flatten of [N, C, H, W]: the next Dense must permute its rows. */
  flattenedFrom?: [number, number, number];
}

const unsupported = (layer: LayerJson, why: string) =>
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
function activationOf(layer: LayerJson): string {
  const activation = (layer.config.activation as string | undefined) ?? "linear";
  if (!["linear", "relu", "softmax"].includes(activation)) {
    throw unsupported(layer, `activation "${activation}" (supported: linear, relu, softmax)`);
  }
  return activation;
}

class Converter {
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
    checkChannelsLast(layer);
    if (cursor.shape.length !== 4) {
      throw unsupported(layer, `its input has rank ${cursor.shape.length}, not 4`);
    }
    const [, inChannels, height, width] = cursor.shape as [Dim, number, number, number];
    const kernel = this.weight(layer, "kernel");
    const [kh, kw, kin, kout] = kernel.shape;
    if (kin !== inChannels) {
      throw unsupported(layer, `its kernel takes ${kin} channels but its input has ${inChannels}`);
    }
    const [sh, sw] = pair(layer.config.strides, 1);
    const [dh, dw] = pair(layer.config.dilation_rate, 1);
    const padding = layer.config.padding ?? "valid";
    if (padding !== "same" && padding !== "valid") throw unsupported(layer, `padding "${padding}"`);
    const padsH: [number, number] = padding === "same" ? samePadding(height, kh, sh, dh) : [0, 0];
    const padsW: [number, number] = padding === "same" ? samePadding(width, kw, sw, dw) : [0, 0];

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
    if (cursor.shape.length !== 2) {
      throw unsupported(
        layer,
        `its input has rank ${cursor.shape.length}; add a Flatten layer before it`,
      );
    }
    const kernel = this.weight(layer, "kernel");
    const [inputs, units] = kernel.shape;
    if (inputs !== cursor.shape[1]) {
      throw unsupported(
        layer,
        `its kernel takes ${inputs} features but its input has ${cursor.shape[1]}`,
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
    const tensor = bias
      ? this.graph.node("Gemm", operands, name)
      : this.graph.node("MatMul", operands, name);
    return this.activation(
      { tensor, shape: [cursor.shape[0], units] },
      activationOf(layer),
      name,
      2,
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
}

function inputShapeOf(layers: LayerJson[]): number[] {
  const first = layers[0]?.config as {
    batch_input_shape?: (number | null)[];
    batchInputShape?: (number | null)[];
  };
  const shape = first?.batch_input_shape ?? first?.batchInputShape;
  if (!shape || shape.length !== 4 || shape.slice(1).some((dim) => typeof dim !== "number")) {
    throw new UnsupportedModelError(
      `The model's input shape is ${
        JSON.stringify(shape)
      }; the exporter needs images [batch, height, width, channels].`,
    );
  }
  return shape.slice(1) as number[];
}

/** Builds the ONNX model for `artifacts`; throws UnsupportedModelError for what it cannot export. */
export function convertToOnnx(
  artifacts: LayersArtifacts,
  options: ExportOptions,
): OnnxTypes.ModelProto {
  const layers = artifacts.layers;
  for (const layer of layers) {
    if (!(SUPPORTED_LAYERS as readonly string[]).includes(layer.class_name)) {
      throw new UnsupportedModelError(
        `Layer "${layer.config.name}" (${layer.class_name}) is not supported by the ONNX exporter; supported layers: ${
          SUPPORTED_LAYERS.join(", ")
        }.`,
      );
    }
    if (Array.isArray(layer.inbound_nodes) && layer.inbound_nodes.length > 1) {
      throw new UnsupportedModelError(
        `Layer "${layer.config.name}" is used more than once; only single chains of layers are supported.`,
      );
    }
  }
  const [height, width, channels] = inputShapeOf(layers);
  const converter = new Converter(artifacts.weights);
  const graph = converter.graph;
  const inputName = graph.name("input");
  const inputDims: Dim[] = options.layout === "nhwc"
    ? ["N", height, width, channels]
    : ["N", channels, height, width];
  let cursor: Cursor = {
    tensor: options.layout === "nhwc"
      ? graph.node("Transpose", [inputName], "input_nchw", { perm: [0, 3, 1, 2] })
      : inputName,
    shape: ["N", channels, height, width],
  };

  // Layers that matter at inference (Dropout and InputLayer do nothing there).
  const active = layers.filter((layer) =>
    layer.class_name !== "Dropout" && layer.class_name !== "InputLayer"
  );
  for (let i = 0; i < active.length; i++) {
    const layer = active[i];
    const next = active[i + 1];
    const foldable = next?.class_name === "BatchNormalization" &&
      (layer.class_name === "Conv2D" || layer.class_name === "Dense") &&
      activationOf(layer) === "linear";
    const folded = foldable ? next : undefined;
    switch (layer.class_name) {
      case "Conv2D":
        cursor = converter.conv2d(layer, cursor, folded);
        break;
      case "Dense":
        cursor = converter.dense(layer, cursor, folded);
        break;
      case "BatchNormalization":
        cursor = converter.batchNorm(layer, cursor);
        break;
      case "Activation":
        cursor = converter.activation(
          cursor,
          activationOf(layer),
          layer.config.name,
          cursor.shape.length,
        );
        break;
      case "MaxPooling2D":
        cursor = converter.maxPool(layer, cursor);
        break;
      case "Flatten":
        cursor = converter.flatten(layer, cursor, next?.class_name === "Dense");
        break;
    }
    if (folded) i++;
  }
  if (cursor.shape.length !== 2) {
    throw new UnsupportedModelError(
      `The model's output has rank ${cursor.shape.length}; a classifier's output is [batch, classes].`,
    );
  }
  const last = graph.nodes.at(-1);
  const output = last?.opType === "Softmax" ? "probabilities" : "logits";
  if (last?.output?.[0] === cursor.tensor) last.output[0] = output;
  else graph.node("Identity", [cursor.tensor], output, {}, output);

  const metadata = Object.entries(options.metadata ?? {}).map(([key, value]) => ({
    key,
    value: typeof value === "string" ? value : JSON.stringify(value),
  }));
  return onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: "", version: OPSET }],
    producerName: PRODUCER_NAME,
    producerVersion: EXPORTER_VERSION,
    modelVersion: 1,
    docString: `${artifacts.name}, exported from a tfjs layers model`,
    graph: {
      name: artifacts.name,
      node: graph.nodes,
      initializer: graph.initializers,
      input: [tensorValueInfo(inputName, inputDims)],
      output: [tensorValueInfo(output, cursor.shape)],
    },
    metadataProps: metadata,
  });
}

export function encodeOnnx(model: OnnxTypes.ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}
