/**
 * Several exported classifiers as one ONNX model: every member's graph
 * inside one graph on a shared input, and the mean of their probabilities as
 * the output (ONNX Mean). One file, one InferenceSession, usable wherever a
 * single model is.
 */
import { onnx, type OnnxTypes } from "../deps.ts";
import { OnnxClassifier } from "../infer/classifier.ts";
import { writeFileAtomic } from "../util/files.ts";
import { EXPORTER_VERSION, PRODUCER_NAME } from "./convert.ts";
import { tensorValueInfo } from "./onnx_graph.ts";

/** Largest difference allowed between the ensemble's output and its members' mean. */
export const ENSEMBLE_TOLERANCE = 1e-5;

export class EnsembleError extends Error {}

export interface EnsembleMember {
  /** The member's name inside the graph (its tensors are prefixed with it). */
  name: string;
  bytes: Uint8Array;
}

function decode(member: EnsembleMember): OnnxTypes.ModelProto {
  try {
    return onnx.ModelProto.decode(member.bytes);
  } catch {
    throw new EnsembleError(
      `Member ${member.name} is not an ONNX model: its bytes do not decode as one.`,
    );
  }
}

function dimsOf(info: OnnxTypes.IValueInfoProto | undefined): string {
  const dims = info?.type?.tensorType?.shape?.dim ?? [];
  return JSON.stringify(dims.map((dim) => dim.dimParam ? "N" : Number(dim.dimValue ?? 0)));
}

/** A graph's inputs that are not initializers (older exporters list weights as inputs too). */
function dataInputs(graph: OnnxTypes.IGraphProto): OnnxTypes.IValueInfoProto[] {
  const weights = new Set((graph.initializer ?? []).map((init) => init.name));
  return (graph.input ?? []).filter((input) => !weights.has(input.name));
}

function metadataOf(model: OnnxTypes.ModelProto): Record<string, string> {
  return Object.fromEntries((model.metadataProps ?? []).map((p) => [p.key ?? "", p.value ?? ""]));
}

/**
 * The ensemble of `members` (at least two). Each member's graph is copied
 * with its tensor and node names prefixed by `<name>/`, its input replaced
 * by the shared one; a member whose output is not already probabilities
 * (a final Softmax, or an output named "probabilities") gets a Softmax.
 */
export function mergeEnsemble(
  members: EnsembleMember[],
  metadata: Record<string, unknown> = {},
): OnnxTypes.ModelProto {
  if (members.length < 2) {
    throw new EnsembleError(`An ensemble needs at least two members, got ${members.length}.`);
  }
  const names = new Set(members.map((member) => member.name));
  if (names.size !== members.length) {
    throw new EnsembleError(`Ensemble members need distinct names, got ${[...names].join(", ")}.`);
  }
  const models = members.map(decode);
  const inputDims = dimsOf(dataInputs(models[0].graph ?? {})[0]);
  const nodes: OnnxTypes.INodeProto[] = [];
  const initializers: OnnxTypes.ITensorProto[] = [];
  const outputs: string[] = [];
  let opset = 13;
  let irVersion = 7;
  models.forEach((model, m) => {
    const { name } = members[m];
    const graph = model.graph;
    const inputs = dataInputs(graph ?? {});
    if (!graph || inputs.length !== 1 || (graph.output ?? []).length !== 1) {
      throw new EnsembleError(
        `Member ${name} must have one input and one output, as a classifier exported here has.`,
      );
    }
    if (dimsOf(inputs[0]) !== inputDims) {
      throw new EnsembleError(
        `Members take different inputs: ${members[0].name} ${inputDims}, ${name} ${
          dimsOf(inputs[0])
        } (export them with the same --layout).`,
      );
    }
    for (const entry of model.opsetImport ?? []) {
      if (entry.domain && entry.domain !== "ai.onnx") {
        throw new EnsembleError(`Member ${name} uses operator domain ${entry.domain}.`);
      }
      opset = Math.max(opset, Number(entry.version ?? 0));
    }
    irVersion = Math.max(irVersion, Number(model.irVersion ?? 0));
    const inputName = inputs[0].name!;
    const rename = (tensor: string) =>
      tensor === "" ? "" : tensor === inputName ? "input" : `${name}/${tensor}`;
    for (const initializer of graph.initializer ?? []) {
      initializers.push({ ...initializer, name: rename(initializer.name!) });
    }
    for (const node of graph.node ?? []) {
      nodes.push({
        ...node,
        name: `${name}/${node.name ?? node.opType}`,
        input: (node.input ?? []).map(rename),
        output: (node.output ?? []).map(rename),
      });
    }
    const outputName = graph.output![0].name!;
    const producer = (graph.node ?? []).find((node) => node.output?.includes(outputName));
    const isProbability = outputName === "probabilities" || producer?.opType === "Softmax";
    if (isProbability) {
      outputs.push(rename(outputName));
    } else {
      const softmax = `${name}/probabilities`;
      nodes.push({
        opType: "Softmax",
        name: `${name}/softmax`,
        input: [rename(outputName)],
        output: [softmax],
        attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: -1 }],
      });
      outputs.push(softmax);
    }
  });
  nodes.push({ opType: "Mean", name: "ensemble/Mean", input: outputs, output: ["probabilities"] });
  const first = metadataOf(models[0]);
  const entries: Record<string, unknown> = {
    model_name: "ensemble",
    ...(first.preprocessing ? { preprocessing: first.preprocessing } : {}),
    ...(first.class_labels ? { class_labels: first.class_labels } : {}),
    ensemble_members: members.map((member, m) => ({
      name: member.name,
      ...(metadataOf(models[m]).training_metrics
        ? { training_metrics: JSON.parse(metadataOf(models[m]).training_metrics) }
        : {}),
    })),
    ...metadata,
    exporter: `${PRODUCER_NAME} ensemble ${EXPORTER_VERSION}`,
    exported: new Date().toISOString(),
  };
  const inputInfo = dataInputs(models[0].graph!)[0];
  const inputShape = (inputInfo.type?.tensorType?.shape?.dim ?? []).map((dim) =>
    dim.dimParam ? dim.dimParam : Number(dim.dimValue)
  );
  return onnx.ModelProto.create({
    irVersion,
    opsetImport: [{ domain: "", version: opset }],
    producerName: PRODUCER_NAME,
    producerVersion: EXPORTER_VERSION,
    modelVersion: 1,
    docString: `the mean of the probabilities of ${members.map((m) => m.name).join(", ")}`,
    graph: {
      name: "ensemble",
      node: nodes,
      initializer: initializers,
      input: [tensorValueInfo("input", inputShape)],
      output: [tensorValueInfo("probabilities", [inputShape[0], 10])],
    },
    metadataProps: Object.entries(entries).map(([key, value]) => ({
      key,
      value: typeof value === "string" ? value : JSON.stringify(value),
    })),
  });
}

async function probabilities(bytes: Uint8Array, name: string, pixels: Float32Array) {
  const classifier = await OnnxClassifier.fromBytes(bytes, name);
  try {
    return await classifier.predict(pixels);
  } finally {
    await classifier.release();
  }
}

/** Largest |ensemble − mean of members| over `pixels` (count × 784 in [0, 1]). */
export async function ensembleDifference(
  ensemble: Uint8Array,
  members: EnsembleMember[],
  pixels: Float32Array,
): Promise<number> {
  const together = await probabilities(ensemble, "the ensemble", pixels);
  const mean = new Float64Array(together.length);
  for (const member of members) {
    const separately = await probabilities(member.bytes, member.name, pixels);
    separately.forEach((value, i) => mean[i] += value / members.length);
  }
  let largest = 0;
  together.forEach((value, i) => largest = Math.max(largest, Math.abs(value - mean[i])));
  return largest;
}

/**
 * Writes the ensemble of `members` to `onnxPath` if ONNX Runtime's output
 * equals the mean of the members run separately within ENSEMBLE_TOLERANCE
 * on `pixels`; otherwise nothing is written.
 */
export async function exportEnsemble(options: {
  members: EnsembleMember[];
  onnxPath: string;
  verificationPixels: Float32Array;
  metadata?: Record<string, unknown>;
}): Promise<{ bytes: number; maxAbsDifference: number; images: number }> {
  const model = mergeEnsemble(options.members, options.metadata);
  const bytes = onnx.ModelProto.encode(model).finish();
  let difference: number;
  try {
    difference = await ensembleDifference(bytes, options.members, options.verificationPixels);
  } catch (error) {
    throw new EnsembleError(`ONNX Runtime cannot run the ensemble: ${(error as Error).message}`);
  }
  if (!(difference <= ENSEMBLE_TOLERANCE)) {
    throw new EnsembleError(
      `The ensemble's output differs from the mean of its members' by ${
        difference.toExponential(2)
      } (limit ${ENSEMBLE_TOLERANCE}); nothing was written.`,
    );
  }
  await writeFileAtomic(options.onnxPath, bytes);
  return {
    bytes: bytes.length,
    maxAbsDifference: difference,
    images: options.verificationPixels.length / 784,
  };
}
