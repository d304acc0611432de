/**
 * Several exported classifiers as one ONNX model: every member's graph
 * inside one graph on a shared input, and the mean of their probabilities as
 * the output (ONNX Mean). One file, one InferenceSession, usable wherever a
 * single model is.
 */
import { onnx, type OnnxTypes } from "../deps.ts";
import { predictOnce } from "../infer/classifier.ts";
import { writeFileAtomic } from "../util/files.ts";
import { EXPORTER_VERSION, PRODUCER_NAME } from "./convert.ts";
import {
  dataInputs,
  decodeModel,
  EmbedError,
  embedGraph,
  inputDims as dimensionsOf,
  metadataOf,
  opsetOf,
} from "./onnx_embed.ts";
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
    return decodeModel(member.bytes, `Member ${member.name}`);
  } catch (error) {
    throw error instanceof EmbedError ? new EnsembleError(error.message) : error;
  }
}

function dimsOf(info: OnnxTypes.IValueInfoProto | undefined): string {
  return JSON.stringify(dimensionsOf(info).map((dim) => typeof dim === "string" ? "N" : dim));
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
    const inputs = dataInputs(model.graph ?? {});
    if (inputs.length === 1 && dimsOf(inputs[0]) !== inputDims) {
      throw new EnsembleError(
        `Members take different inputs: ${members[0].name} ${inputDims}, ${name} ${
          dimsOf(inputs[0])
        } (export them with the same --layout).`,
      );
    }
    try {
      opset = Math.max(opset, opsetOf(model, `Member ${name}`));
      outputs.push(
        embedGraph(model, name, "input", nodes, initializers, {
          probabilities: true,
          what: `Member ${name}`,
        }),
      );
    } catch (error) {
      throw error instanceof EmbedError ? new EnsembleError(error.message) : error;
    }
    irVersion = Math.max(irVersion, Number(model.irVersion ?? 0));
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
  const inputShape = dimensionsOf(inputInfo);
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

/** Largest |ensemble − mean of members| over `pixels` (count × 784 in [0, 1]). */
export async function ensembleDifference(
  ensemble: Uint8Array,
  members: EnsembleMember[],
  pixels: Float32Array,
): Promise<number> {
  const together = await predictOnce(ensemble, "the ensemble", pixels);
  const mean = new Float64Array(together.length);
  for (const member of members) {
    const separately = await predictOnce(member.bytes, member.name, pixels);
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
