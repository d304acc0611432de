/**
 * A classifier behind a learned turn, as one ONNX model: the angle network
 * reads how far the digit is turned, the digit is turned back inside the
 * graph (GridSample, bilinear, zeros outside, as transforms/affine.ts
 * warps), and the classifier reads it. Like a spatial transformer, with its
 * localisation network trained on known turns rather than through the
 * classifier. Same input and output as any exported classifier, so every
 * command that runs one runs this.
 */
import { onnx, type OnnxTypes, ort } from "../deps.ts";
import { predictOnce } from "../infer/classifier.ts";
import { turnEach } from "../transforms/augment.ts";
import { writeFileAtomic } from "../util/files.ts";
import { EXPORTER_VERSION, PRODUCER_NAME } from "./convert.ts";
import {
  dataInputs,
  decodeModel,
  EmbedError,
  embedGraph,
  inputDims,
  metadataOf,
  opsetOf,
} from "./onnx_embed.ts";
import { GraphBuilder, tensorValueInfo } from "./onnx_graph.ts";

/** Below this read angle a digit is classified as it is: the classifier reads small turns itself. */
export const DEFAULT_GATE_DEGREES = 20;

/**
 * What is classified: "gate", the digit turned back when its read angle is
 * beyond the gate; "confident", a digit beyond the gate both as it is and
 * turned back, keeping the read whose top probability is higher (a digit
 * under the gate is read as it is).
 */
export const TURN_PICKS = ["gate", "confident"] as const;
export type TurnPick = typeof TURN_PICKS[number];

export interface TurnSettings {
  gateDegrees: number;
  pick: TurnPick;
}

/** GridSample arrived in opset 16. */
const TURN_OPSET = 16;

/** Largest difference allowed between the model's output and the pieces run one by one. */
export const TURNED_TOLERANCE = 1e-4;

/** Digits whose read angle is this close to the gate (radians) are left out of the check. */
const GATE_MARGIN = 1e-3;

export class TurnedError extends Error {}

function checked<T>(f: () => T): T {
  try {
    return f();
  } catch (error) {
    throw error instanceof EmbedError ? new TurnedError(error.message) : error;
  }
}

/**
 * The sampling grid of GridSample (align_corners 0) that turns each digit
 * back by its angle θ: output pixel p reads c + R(θ)(p − c), which in the
 * grid's [−1, 1] units is (2/size)·R(θ)(p − c), since c = (size − 1)/2.
 */
function gridOffsets(size: number): { dx: Float32Array; dy: Float32Array } {
  const centre = (size - 1) / 2;
  const dx = new Float32Array(size * size);
  const dy = new Float32Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      dx[y * size + x] = (x - centre) * 2 / size;
      dy[y * size + x] = (y - centre) * 2 / size;
    }
  }
  return { dx, dy };
}

/** The one-graph model: `angle` (an angle network) and `classifier`, both exported here. */
export function mergeTurned(
  classifierBytes: Uint8Array,
  angleBytes: Uint8Array,
  settings: TurnSettings,
  name = "turned",
  command?: string,
): OnnxTypes.ModelProto {
  const classifier = checked(() => decodeModel(classifierBytes, "The classifier"));
  const angle = checked(() => decodeModel(angleBytes, "The angle network"));
  const shape = inputDims(dataInputs(classifier.graph ?? {})[0]);
  const angleShape = inputDims(dataInputs(angle.graph ?? {})[0]);
  const size = 28;
  const layout = JSON.stringify(shape.slice(1));
  if (layout !== JSON.stringify([size, size, 1]) && layout !== JSON.stringify([1, size, size])) {
    throw new TurnedError(
      `The classifier takes ${JSON.stringify(shape)}, not 28×28 digits of one channel.`,
    );
  }
  if (JSON.stringify(angleShape.slice(1)) !== layout) {
    throw new TurnedError(
      `The angle network takes ${JSON.stringify(angleShape)} and the classifier ${
        JSON.stringify(shape)
      } (export them with the same --layout).`,
    );
  }
  // Refused here, by name, rather than by ONNX Runtime once the graph is built.
  const outputs = (model: OnnxTypes.ModelProto) =>
    inputDims(model.graph?.output?.[0]).slice(1).join("×");
  if (outputs(classifier) !== "10") {
    throw new TurnedError(
      `The classifier gives ${outputs(classifier) || "no"} values a digit, not 10 class scores.`,
    );
  }
  if (outputs(angle) !== "1") {
    throw new TurnedError(
      `The angle network gives ${outputs(angle) || "no"} values a digit, not one angle.`,
    );
  }
  const opset = Math.max(
    TURN_OPSET,
    checked(() => opsetOf(classifier, "The classifier")),
    checked(() => opsetOf(angle, "The angle network")),
  );
  const g = new GraphBuilder();
  const read = checked(() =>
    embedGraph(angle, "angle", "input", g.nodes, g.initializers, { what: "The angle network" })
  );
  // The turn: the read angle beyond the gate, else none.
  const gate = g.constant("turn/gate", [], [settings.gateDegrees * Math.PI / 180]);
  const beyond = g.node("Greater", [g.node("Abs", [read], "turn/abs"), gate], "turn/beyond");
  const theta = g.node("Where", [beyond, read, g.constant("turn/zero", [], [0])], "turn/theta");
  const perDigit = g.constantInt64("turn/per_digit", [-1, 1, 1]);
  const cos = g.node("Reshape", [g.node("Cos", [theta], "turn/cos"), perDigit], "turn/cos3");
  const sin = g.node("Reshape", [g.node("Sin", [theta], "turn/sin"), perDigit], "turn/sin3");
  const { dx, dy } = gridOffsets(size);
  const dxName = g.constant("turn/dx", [size, size], dx);
  const dyName = g.constant("turn/dy", [size, size], dy);
  const term = (a: string, b: string) => g.node("Mul", [a, b], "turn/term");
  const gx = g.node("Add", [term(cos, dxName), term(sin, dyName)], "turn/gx");
  const gy = g.node("Sub", [term(cos, dyName), term(sin, dxName)], "turn/gy");
  const last = g.constantInt64("turn/last_axis", [3]);
  const grid = g.node(
    "Concat",
    [g.node("Unsqueeze", [gx, last], "turn/gx4"), g.node("Unsqueeze", [gy, last], "turn/gy4")],
    "turn/grid",
    { axis: 3 },
  );
  // One channel: NHWC and NCHW hold the same bytes, so a reshape is the transpose.
  const nchw = g.node(
    "Reshape",
    ["input", g.constantInt64("turn/nchw", [-1, 1, size, size])],
    "turn/nchw_input",
  );
  const sampled = g.node("GridSample", [nchw, grid], "turn/sampled", {
    mode: "bilinear",
    padding_mode: "zeros",
    align_corners: 0,
  });
  const turned = g.node(
    "Reshape",
    [sampled, g.constantInt64("turn/as_input", [-1, ...shape.slice(1) as number[]])],
    "turn/turned",
  );
  if (settings.pick === "gate") {
    const probabilities = checked(() =>
      embedGraph(classifier, "classifier", turned, g.nodes, g.initializers, {
        probabilities: true,
        what: "The classifier",
      })
    );
    g.node("Identity", [probabilities], "output", {}, "probabilities");
  } else {
    // One batch: every digit as it is, then only those beyond the gate turned back (under the
    // gate the turned digit is the digit), so upright digits cost one classifier pass, not two.
    const rows = g.node("Reshape", [
      g.node("NonZero", [
        g.node("Reshape", [beyond, g.constantInt64("pick/flat_mask", [-1])], "pick/mask"),
      ], "pick/nonzero"),
      g.constantInt64("pick/rows_shape", [-1]),
    ], "pick/rows");
    const both = g.node(
      "Concat",
      ["input", g.node("Gather", [turned, rows], "pick/turned_rows", { axis: 0 })],
      "pick/batch",
      { axis: 0 },
    );
    const probabilities = checked(() =>
      embedGraph(classifier, "classifier", both, g.nodes, g.initializers, {
        probabilities: true,
        what: "The classifier",
      })
    );
    const count = g.node("Slice", [
      g.node("Shape", ["input"], "pick/input_shape"),
      g.constantInt64("pick/zero", [0]),
      g.constantInt64("pick/one", [1]),
    ], "pick/count");
    const batchAxis = g.constantInt64("pick/batch_axis", [0]);
    const asIs = g.node(
      "Slice",
      [probabilities, g.constantInt64("pick/start", [0]), count, batchAxis],
      "pick/as_is",
    );
    const back = g.node(
      "Slice",
      [probabilities, count, g.constantInt64("pick/end", [2 ** 30]), batchAxis],
      "pick/back",
    );
    const asIsRows = g.node("Gather", [asIs, rows], "pick/as_is_rows", { axis: 0 });
    const top = (p: string) => g.node("ReduceMax", [p], "pick/top", { axes: [1], keepdims: 1 });
    const surer = g.node("Greater", [top(back), top(asIsRows)], "pick/surer");
    const chosen = g.node("Where", [surer, back, asIsRows], "pick/chosen");
    const at = g.node("Unsqueeze", [rows, g.constantInt64("pick/last", [1])], "pick/at");
    g.node("ScatterND", [asIs, at, chosen], "output", {}, "probabilities");
  }
  const first = metadataOf(classifier);
  const angleTraining = metadataOf(angle).training_metrics;
  const entries: Record<string, unknown> = {
    model_name: name,
    ...(first.preprocessing ? { preprocessing: first.preprocessing } : {}),
    ...(first.class_labels ? { class_labels: first.class_labels } : {}),
    turn: {
      gate_degrees: settings.gateDegrees,
      pick: settings.pick,
      classifier: first.model_name,
      ...(first.training_metrics
        ? { classifier_training: JSON.parse(first.training_metrics) }
        : {}),
      ...(angleTraining ? { angle_training: JSON.parse(angleTraining) } : {}),
    },
    ...(command ? { command } : {}),
    exporter: `${PRODUCER_NAME} turned ${EXPORTER_VERSION}`,
    exported: new Date().toISOString(),
  };
  return onnx.ModelProto.create({
    irVersion: Math.max(8, Number(classifier.irVersion ?? 0), Number(angle.irVersion ?? 0)),
    opsetImport: [{ domain: "", version: opset }],
    producerName: PRODUCER_NAME,
    producerVersion: EXPORTER_VERSION,
    modelVersion: 1,
    docString: `${first.model_name ?? "a classifier"} reading digits turned back by an angle ` +
      `network (gate ${settings.gateDegrees}°, pick ${settings.pick})`,
    graph: {
      name,
      node: g.nodes,
      initializer: g.initializers,
      input: [tensorValueInfo("input", shape)],
      output: [tensorValueInfo("probabilities", [shape[0], 10])],
    },
    metadataProps: Object.entries(entries).map(([key, value]) => ({
      key,
      value: typeof value === "string" ? value : JSON.stringify(value),
    })),
  });
}

/** The angles (radians) an exported angle network reads for `pixels`, nhwc or nchw alike. */
export async function readAngles(bytes: Uint8Array, pixels: Float32Array): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: "all" });
  try {
    const shape = session.inputMetadata[0].isTensor ? session.inputMetadata[0].shape : [];
    const count = pixels.length / 784;
    const dims = [count, ...shape.slice(1).map(Number)];
    const out = await session.run({
      [session.inputNames[0]]: new ort.Tensor("float32", pixels, dims),
    });
    return out[session.outputNames[0]].data as Float32Array;
  } finally {
    await session.release();
  }
}

/**
 * What the turned model should give for `pixels`, computed piece by piece:
 * the angle network and the classifier each in their own session, the turn
 * in TypeScript (transforms/affine.ts). Digits read within GATE_MARGIN of
 * the gate are marked, since either side of it is right.
 */
export async function turnedReference(
  classifierBytes: Uint8Array,
  angleBytes: Uint8Array,
  settings: TurnSettings,
  pixels: Float32Array,
): Promise<{ probabilities: Float32Array; atGate: boolean[] }> {
  const angles = await readAngles(angleBytes, pixels);
  const gate = settings.gateDegrees * Math.PI / 180;
  const back = Array.from(angles, (a) => Math.abs(a) > gate ? -a : 0);
  const asIs = await predictOnce(classifierBytes, "the classifier", pixels);
  const turnedBack = await predictOnce(classifierBytes, "the classifier", turnEach(pixels, back));
  const probabilities = new Float32Array(asIs.length);
  for (let i = 0; i < angles.length; i++) {
    const row = (p: Float32Array) => p.subarray(i * 10, i * 10 + 10);
    const pick = settings.pick === "gate" ||
        Math.max(...row(turnedBack)) > Math.max(...row(asIs))
      ? row(turnedBack)
      : row(asIs);
    probabilities.set(pick, i * 10);
  }
  return {
    probabilities,
    atGate: Array.from(angles, (a) => Math.abs(Math.abs(a) - gate) < GATE_MARGIN),
  };
}

/**
 * Writes the turned model to `onnxPath` if ONNX Runtime's output equals the
 * pieces run one by one (turnedReference) within TURNED_TOLERANCE on
 * `pixels`, digits at the gate aside; otherwise nothing is written.
 */
export async function exportTurned(options: {
  classifier: Uint8Array;
  angle: Uint8Array;
  settings: TurnSettings;
  onnxPath: string;
  verificationPixels: Float32Array;
  name?: string;
  /** The command that made it, kept in the model's metadata. */
  command?: string;
}): Promise<{ bytes: number; maxAbsDifference: number; images: number; atGate: number }> {
  const model = mergeTurned(
    options.classifier,
    options.angle,
    options.settings,
    options.name,
    options.command,
  );
  const bytes = onnx.ModelProto.encode(model).finish();
  let together: Float32Array;
  try {
    together = await predictOnce(bytes, "the turned model", options.verificationPixels);
  } catch (error) {
    throw new TurnedError(`ONNX Runtime cannot run the turned model: ${(error as Error).message}`);
  }
  const reference = await turnedReference(
    options.classifier,
    options.angle,
    options.settings,
    options.verificationPixels,
  );
  let largest = 0;
  together.forEach((value, i) => {
    if (!reference.atGate[Math.floor(i / 10)]) {
      largest = Math.max(largest, Math.abs(value - reference.probabilities[i]));
    }
  });
  if (!(largest <= TURNED_TOLERANCE)) {
    throw new TurnedError(
      `The turned model's output differs from its pieces run one by one by ${
        largest.toExponential(2)
      } (limit ${TURNED_TOLERANCE}); nothing was written.`,
    );
  }
  await writeFileAtomic(options.onnxPath, bytes);
  return {
    bytes: bytes.length,
    maxAbsDifference: largest,
    images: options.verificationPixels.length / 784,
    atGate: reference.atGate.filter(Boolean).length,
  };
}
