/**
 * Conversions for a transformer's layers, on tokens [batch, tokens, width]
 * in tfjs's own layout: LayerNormalization, GELU, self-attention, the
 * position embedding and the mean over tokens. ONNX opset 13 has no
 * LayerNormalization operator, so it is spelled out in the operators it
 * has (ReduceMean, Sub, Sqrt, ...), as tfjs computes it.
 */
import type { LayerJson } from "./layers_artifacts.ts";
import type { Dim } from "./onnx_graph.ts";
import { type Converter, type Cursor, unsupported } from "./convert_layers.ts";

function tokens(layer: LayerJson, cursor: Cursor): [Dim, number, number] {
  if (cursor.shape.length !== 3 || cursor.flattenedFrom) {
    throw unsupported(
      layer,
      `its input has shape ${JSON.stringify(cursor.shape)}, not tokens [batch, tokens, width]`,
    );
  }
  return cursor.shape as [Dim, number, number];
}

/** (x − mean) / √(variance + ε) · γ + β over the last axis. */
export function layerNormalization(converter: Converter, layer: LayerJson, cursor: Cursor): Cursor {
  const rank = cursor.shape.length;
  const axis = layer.config.axis as number | number[] | undefined;
  const axes = Array.isArray(axis) ? axis : [axis ?? -1];
  if (rank === 4 || cursor.flattenedFrom) {
    throw unsupported(layer, "LayerNormalization of images (only tokens or features)");
  }
  if (axes.length !== 1 || (axes[0] !== -1 && axes[0] !== rank - 1)) {
    throw unsupported(layer, `normalisation axis ${JSON.stringify(axis)} (only the last axis)`);
  }
  const graph = converter.graph;
  const name = layer.config.name;
  const width = cursor.shape[rank - 1] as number;
  const epsilon = (layer.config.epsilon as number | undefined) ?? 1e-3;
  const mean = graph.node("ReduceMean", [cursor.tensor], `${name}/mean`, {
    axes: [-1],
    keepdims: 1,
  });
  const centred = graph.node("Sub", [cursor.tensor, mean], `${name}/centred`);
  const variance = graph.node(
    "ReduceMean",
    [graph.node("Mul", [centred, centred], `${name}/squared`)],
    `${name}/variance`,
    { axes: [-1], keepdims: 1 },
  );
  const deviation = graph.node("Sqrt", [
    graph.node("Add", [variance, graph.constant(`${name}/epsilon`, [], [epsilon])], `${name}/eps`),
  ], `${name}/deviation`);
  let tensor = graph.node("Div", [centred, deviation], `${name}/normalised`);
  if (layer.config.scale !== false) {
    const gamma = converter.weight(layer, "gamma");
    tensor = graph.node(
      "Mul",
      [tensor, graph.constant(`${name}/gamma`, [width], gamma.values)],
      `${name}/scaled`,
    );
  }
  if (layer.config.center !== false) {
    const beta = converter.weight(layer, "beta");
    tensor = graph.node(
      "Add",
      [tensor, graph.constant(`${name}/beta`, [width], beta.values)],
      name,
    );
  }
  return { tensor, shape: cursor.shape };
}

/** The mean over tokens: [batch, tokens, width] → [batch, width]. */
export function globalAveragePool1d(
  converter: Converter,
  layer: LayerJson,
  cursor: Cursor,
): Cursor {
  const [batch, , width] = tokens(layer, cursor);
  const format = layer.config.data_format;
  if (format !== undefined && format !== "channelsLast" && format !== "channels_last") {
    throw unsupported(layer, `data format ${format} (only channels-last is supported)`);
  }
  const tensor = converter.graph.node("ReduceMean", [cursor.tensor], layer.config.name, {
    axes: [1],
    keepdims: 0,
  });
  return { tensor, shape: [batch, width] };
}

/** Adds the learned [tokens, width] embedding to every image's tokens. */
export function positionEmbedding(converter: Converter, layer: LayerJson, cursor: Cursor): Cursor {
  const [, count, width] = tokens(layer, cursor);
  const embedding = converter.weight(layer, "embedding");
  if (embedding.shape[0] !== count || embedding.shape[1] !== width) {
    throw unsupported(
      layer,
      `an embedding of ${embedding.shape.join("×")} for ${count}×${width} tokens`,
    );
  }
  const name = layer.config.name;
  const tensor = converter.graph.node("Add", [
    cursor.tensor,
    converter.graph.constant(`${name}/embedding`, [count, width], embedding.values),
  ], name);
  return { tensor, shape: cursor.shape };
}

/**
 * Multi-head self-attention (models/attention_layers.ts): projections to
 * queries, keys and values, split into heads [N, H, T, depth], softmax of
 * q·kᵀ/√depth over the keys, the heads merged back and projected.
 */
export function selfAttention(converter: Converter, layer: LayerJson, cursor: Cursor): Cursor {
  const [, count, width] = tokens(layer, cursor);
  const heads = layer.config.heads as number;
  if (!Number.isInteger(heads) || heads < 1 || width % heads !== 0) {
    throw unsupported(layer, `${heads} heads for tokens of width ${width}`);
  }
  const depth = width / heads;
  const graph = converter.graph;
  const name = layer.config.name;
  const project = (part: string, x: string) => {
    const kernel = converter.weight(layer, `${part}_kernel`);
    const bias = converter.weight(layer, `${part}_bias`);
    return graph.node("Add", [
      graph.node("MatMul", [
        x,
        graph.constant(`${name}/${part}_kernel`, [width, width], kernel.values),
      ], `${name}/${part}_product`),
      graph.constant(`${name}/${part}_bias`, [width], bias.values),
    ], `${name}/${part}`);
  };
  const headShape = graph.constantInt64(`${name}/head_shape`, [0, count, heads, depth]);
  // [N, T, D] → [N, T, H, depth] → `perm`.
  const split = (part: string, perm: number[]) =>
    graph.node(
      "Transpose",
      [
        graph.node("Reshape", [project(part, cursor.tensor), headShape], `${name}/${part}_heads`),
      ],
      `${name}/${part}_split`,
      { perm },
    );
  const query = split("query", [0, 2, 1, 3]);
  const keyT = split("key", [0, 2, 3, 1]);
  const value = split("value", [0, 2, 1, 3]);
  const scores = graph.node("Mul", [
    graph.node("MatMul", [query, keyT], `${name}/scores`),
    graph.constant(`${name}/scale`, [], [1 / Math.sqrt(depth)]),
  ], `${name}/scaled_scores`);
  const weights = graph.node("Softmax", [scores], `${name}/weights`, { axis: -1 });
  const attended = graph.node("MatMul", [weights, value], `${name}/attended`);
  const merged = graph.node("Reshape", [
    graph.node("Transpose", [attended], `${name}/merge`, { perm: [0, 2, 1, 3] }),
    graph.constantInt64(`${name}/token_shape`, [0, count, width]),
  ], `${name}/merged`);
  return { tensor: project("output", merged), shape: cursor.shape };
}
