/**
 * Copying an exported classifier's graph into a larger graph (an ensemble,
 * a classifier behind a learned turn): its tensors and nodes renamed under a
 * prefix, its input wired to a tensor of the host graph.
 */
import { onnx, type OnnxTypes } from "../deps.ts";

export class EmbedError extends Error {}

/** `bytes` as an ONNX model, or one sentence naming `what` is not one. */
export function decodeModel(bytes: Uint8Array, what: string): OnnxTypes.ModelProto {
  try {
    return onnx.ModelProto.decode(bytes);
  } catch {
    throw new EmbedError(`${what} is not an ONNX model: its bytes do not decode as one.`);
  }
}

/** A graph's inputs that are not initializers (older exporters list weights as inputs too). */
export function dataInputs(graph: OnnxTypes.IGraphProto): OnnxTypes.IValueInfoProto[] {
  const weights = new Set((graph.initializer ?? []).map((init) => init.name));
  return (graph.input ?? []).filter((input) => !weights.has(input.name));
}

/** An input's dimensions: numbers, and "N" for a named (dynamic) one. */
export function inputDims(info: OnnxTypes.IValueInfoProto | undefined): Array<number | string> {
  return (info?.type?.tensorType?.shape?.dim ?? []).map((dim) =>
    dim.dimParam ? dim.dimParam : Number(dim.dimValue ?? 0)
  );
}

export function metadataOf(model: OnnxTypes.ModelProto): Record<string, string> {
  return Object.fromEntries((model.metadataProps ?? []).map((p) => [p.key ?? "", p.value ?? ""]));
}

/** The highest default-domain opset a model imports; other domains are refused by name. */
export function opsetOf(model: OnnxTypes.ModelProto, what: string): number {
  let opset = 0;
  for (const entry of model.opsetImport ?? []) {
    if (entry.domain && entry.domain !== "ai.onnx") {
      throw new EmbedError(`${what} uses operator domain ${entry.domain}.`);
    }
    opset = Math.max(opset, Number(entry.version ?? 0));
  }
  return opset;
}

/**
 * Appends `model`'s graph to `nodes` and `initializers`, every name
 * prefixed by `<prefix>/` and its one input read from `input`; returns the
 * name of its output. With `probabilities`, an output that is not already
 * probabilities (a final Softmax, or named "probabilities") gets a Softmax.
 */
export function embedGraph(
  model: OnnxTypes.ModelProto,
  prefix: string,
  input: string,
  nodes: OnnxTypes.INodeProto[],
  initializers: OnnxTypes.ITensorProto[],
  options: { probabilities?: boolean; what?: string } = {},
): string {
  const graph = model.graph;
  const inputs = dataInputs(graph ?? {});
  if (!graph || inputs.length !== 1 || (graph.output ?? []).length !== 1) {
    throw new EmbedError(
      `${options.what ?? prefix} must have one input and one output, as a model exported here has.`,
    );
  }
  const inputName = inputs[0].name!;
  const rename = (tensor: string) =>
    tensor === "" ? "" : tensor === inputName ? input : `${prefix}/${tensor}`;
  for (const initializer of graph.initializer ?? []) {
    initializers.push({ ...initializer, name: rename(initializer.name!) });
  }
  for (const node of graph.node ?? []) {
    nodes.push({
      ...node,
      name: `${prefix}/${node.name ?? node.opType}`,
      input: (node.input ?? []).map(rename),
      output: (node.output ?? []).map(rename),
    });
  }
  const outputName = graph.output![0].name!;
  if (!options.probabilities) return rename(outputName);
  const producer = (graph.node ?? []).find((node) => node.output?.includes(outputName));
  if (outputName === "probabilities" || producer?.opType === "Softmax") return rename(outputName);
  const softmax = `${prefix}/probabilities`;
  nodes.push({
    opType: "Softmax",
    name: `${prefix}/softmax`,
    input: [rename(outputName)],
    output: [softmax],
    attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: -1 }],
  });
  return softmax;
}
