/**
 * tfjs layers model → ONNX, as a pure function of the model's topology and
 * weights. Sequential models and functional graphs (skip connections) alike:
 * layers are converted in the model's topological order, each from the
 * converted outputs of the layers it takes.
 *
 * Inside the graph, images are NCHW (ONNX's Conv and MaxPool layout); an
 * NHWC input is transposed once at the start. BatchNormalization that
 * directly follows a convolution or Dense without activation, and is its
 * only consumer, is folded into its weights (exact up to float rounding);
 * elsewhere it becomes a per-channel Mul and Add. The conversions of image
 * layers are in export/convert_layers.ts, those of token tensors
 * [batch, tokens, width], which keep tfjs's layout, in export/convert_tokens.ts.
 */
import { onnx, type OnnxTypes } from "../deps.ts";
import type { LayerJson, LayersArtifacts } from "./layers_artifacts.ts";
import { type Dim, tensorValueInfo } from "./onnx_graph.ts";
import {
  activationOf,
  Converter,
  type Cursor,
  unsupported,
  UnsupportedModelError,
} from "./convert_layers.ts";
import {
  globalAveragePool1d,
  layerNormalization,
  positionEmbedding,
  selfAttention,
} from "./convert_tokens.ts";

export { UnsupportedModelError };

export const EXPORTER_VERSION = "1.0.0";
export const PRODUCER_NAME = "mnist-cnn-robustness";
export const OPSET = 13;

export type Layout = "nhwc" | "nchw";

export const SUPPORTED_LAYERS = [
  "InputLayer",
  "Conv2D",
  "DepthwiseConv2D",
  "BatchNormalization",
  "LayerNormalization",
  "Activation",
  "MaxPooling2D",
  "GlobalAveragePooling2D",
  "GlobalAveragePooling1D",
  "Dropout",
  "Flatten",
  "Reshape",
  "Dense",
  "Add",
  "MultiHeadSelfAttention",
  "PositionEmbedding",
] as const;

export interface ExportOptions {
  layout: Layout;
  /** Extra `metadata_props` entries (values are stringified as JSON unless strings). */
  metadata?: Record<string, unknown>;
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

/** The layers each layer takes its input from (a Sequential model: the one before it). */
function inboundLayers(layers: LayerJson[]): Map<string, string[]> {
  const inbound = new Map<string, string[]>();
  layers.forEach((layer, i) => {
    const nodes = layer.inbound_nodes;
    if (Array.isArray(nodes) && nodes.length > 1) {
      throw new UnsupportedModelError(
        `Layer "${layer.config.name}" is used more than once; shared layers are not supported.`,
      );
    }
    const node = Array.isArray(nodes) ? nodes[0] : undefined;
    if (Array.isArray(node)) {
      inbound.set(
        layer.config.name,
        node.map((entry) => {
          const [name, nodeIndex] = entry as [string, number];
          if (nodeIndex !== 0) {
            throw new UnsupportedModelError(
              `Layer "${layer.config.name}" takes a shared layer's output; shared layers are not supported.`,
            );
          }
          return name;
        }),
      );
    } else if (i > 0) {
      inbound.set(layer.config.name, [layers[i - 1].config.name]);
    } else {
      inbound.set(layer.config.name, []);
    }
  });
  return inbound;
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
  }
  const [height, width, channels] = inputShapeOf(layers);
  const converter = new Converter(artifacts.weights);
  const graph = converter.graph;
  const inputName = graph.name("input");
  const inputDims: Dim[] = options.layout === "nhwc"
    ? ["N", height, width, channels]
    : ["N", channels, height, width];
  const input: Cursor = {
    tensor: options.layout === "nhwc"
      ? graph.node("Transpose", [inputName], "input_nchw", { perm: [0, 3, 1, 2] })
      : inputName,
    shape: ["N", channels, height, width],
  };

  const inbound = inboundLayers(layers);
  const consumers = new Map<string, LayerJson[]>();
  for (const layer of layers) {
    for (const from of inbound.get(layer.config.name)!) {
      consumers.set(from, [...consumers.get(from) ?? [], layer]);
    }
  }
  const onlyConsumer = (layer: LayerJson) => {
    const taking = consumers.get(layer.config.name) ?? [];
    return taking.length === 1 ? taking[0] : undefined;
  };
  // Each converted layer's output; Dropout and InputLayer pass theirs through.
  const outputs = new Map<string, Cursor>();
  const folded = new Set<string>();
  for (const layer of layers) {
    const name = layer.config.name;
    if (folded.has(name)) continue;
    const from = inbound.get(name)!.map((source) => {
      const cursor = outputs.get(source);
      if (!cursor) {
        throw new UnsupportedModelError(
          `Layer "${name}" takes "${source}", which the model does not define before it.`,
        );
      }
      return cursor;
    });
    const cursor = from[0] ?? input;
    if (from.length > 1 && layer.class_name !== "Add") {
      throw unsupported(layer, `it takes ${from.length} inputs`);
    }
    const next = onlyConsumer(layer);
    const foldable = next?.class_name === "BatchNormalization" &&
      ["Conv2D", "DepthwiseConv2D", "Dense"].includes(layer.class_name) &&
      activationOf(layer) === "linear" && cursor.shape.length !== 3;
    const norm = foldable ? next : undefined;
    let result: Cursor;
    switch (layer.class_name) {
      case "InputLayer":
      case "Dropout":
        result = cursor;
        break;
      case "Conv2D":
        result = converter.conv2d(layer, cursor, norm);
        break;
      case "DepthwiseConv2D":
        result = converter.depthwiseConv2d(layer, cursor, norm);
        break;
      case "Dense":
        result = converter.dense(layer, cursor, norm);
        break;
      case "BatchNormalization":
        result = converter.batchNorm(layer, cursor);
        break;
      case "LayerNormalization":
        result = layerNormalization(converter, layer, cursor);
        break;
      case "Activation":
        result = converter.activation(cursor, activationOf(layer), name, cursor.shape.length);
        break;
      case "MaxPooling2D":
        result = converter.maxPool(layer, cursor);
        break;
      case "GlobalAveragePooling2D":
        result = converter.globalAveragePool2d(layer, cursor);
        break;
      case "GlobalAveragePooling1D":
        result = globalAveragePool1d(converter, layer, cursor);
        break;
      case "Flatten":
        result = converter.flatten(layer, cursor, next?.class_name === "Dense");
        break;
      case "Reshape":
        result = converter.reshape(layer, cursor);
        break;
      case "Add":
        result = converter.add(layer, from);
        break;
      case "MultiHeadSelfAttention":
        result = selfAttention(converter, layer, cursor);
        break;
      case "PositionEmbedding":
        result = positionEmbedding(converter, layer, cursor);
        break;
      default:
        throw unsupported(layer, "the exporter has no conversion for it");
    }
    outputs.set(name, result);
    if (norm) {
      folded.add(norm.config.name);
      outputs.set(norm.config.name, result);
    }
  }
  const outputLayer = artifacts.outputLayer ?? layers.at(-1)?.config.name;
  const cursor = outputLayer === undefined ? undefined : outputs.get(outputLayer);
  if (!cursor) {
    throw new UnsupportedModelError(
      `The model's output layer "${outputLayer}" is not in its layer list.`,
    );
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
