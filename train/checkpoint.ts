/**
 * A training checkpoint in one file, so that it is replaced atomically: a
 * JSON header (run state, tensor names and shapes) followed by the raw
 * tensor data (model weights, then optimizer state).
 *
 * Layout: "MNISTCK1" | header length (uint32 LE) | header JSON | data.
 */
import { tf } from "../deps_tfjs.ts";
import { writeFileAtomic } from "../util/files.ts";
import type { WeightAverage } from "./weight_average.ts";

const MAGIC = "MNISTCK1";

type NamedTensor = { name: string; tensor: tf.Tensor };

/** What a checkpoint needs of an optimizer (tfjs's and train/adam.ts's both have it). */
export interface OptimizerState {
  getWeights(): Promise<NamedTensor[]>;
}

interface TensorEntry {
  name: string;
  shape: number[];
  dtype: "float32" | "int32";
}

export interface Checkpoint<State> {
  state: State;
  /** In `model.getWeights()` order. */
  weights: tf.Tensor[];
  /** As `optimizer.getWeights()` returns them. */
  optimizer: NamedTensor[];
  /** Averaged trainable weights, when the run keeps them. */
  averages: tf.Tensor[];
}

export class CheckpointError extends Error {}

/** A run's state as checkpoint bytes (also how training workers exchange it). */
export async function encodeCheckpoint<State>(
  model: tf.LayersModel,
  optimizer: OptimizerState,
  state: State,
  averages: tf.Tensor[] = [],
): Promise<Uint8Array> {
  const modelWeights = model.getWeights();
  const named: Array<
    { group: "model" | "optimizer" | "average"; name: string; tensor: tf.Tensor }
  > = [
    ...model.weights.map((weight, i) => ({
      group: "model" as const,
      name: weight.name,
      tensor: modelWeights[i],
    })),
    ...(await optimizer.getWeights()).map(({ name, tensor }) => ({
      group: "optimizer" as const,
      name,
      tensor,
    })),
    ...averages.map((tensor, i) => ({ group: "average" as const, name: `average_${i}`, tensor })),
  ];
  const entries = named.map(({ group, name, tensor }) => ({
    group,
    name,
    shape: tensor.shape,
    dtype: tensor.dtype as "float32" | "int32",
  }));
  const chunks = named.map(({ tensor }) => new Uint8Array(tensor.dataSync().slice().buffer));
  // Optimizers hand out new tensors for (some of) their state.
  tf.dispose(named.filter(({ tensor }) => !(tensor instanceof tf.Variable)).map((n) => n.tensor));
  const header = new TextEncoder().encode(JSON.stringify({ state, tensors: entries }));
  const dataLength = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const bytes = new Uint8Array(MAGIC.length + 4 + header.length + dataLength);
  bytes.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(bytes.buffer).setUint32(MAGIC.length, header.length, true);
  bytes.set(header, MAGIC.length + 4);
  let offset = MAGIC.length + 4 + header.length;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/** What training workers exchange with the run besides tensors. */
export interface ReplicaState {
  averageUpdates?: number;
  /** 0 when the run keeps no weight average. */
  averageDecay: number;
}

/** A replica's whole state (weights, optimizer, weight average) as checkpoint bytes. */
export function encodeReplica(
  model: tf.LayersModel,
  optimizer: OptimizerState,
  average?: WeightAverage,
): Promise<Uint8Array> {
  const state: ReplicaState = {
    averageUpdates: average?.updates,
    averageDecay: average?.decay ?? 0,
  };
  return encodeCheckpoint(model, optimizer, state, average?.tensors());
}

export async function saveCheckpoint<State>(
  path: string,
  model: tf.LayersModel,
  optimizer: OptimizerState,
  state: State,
  averages: tf.Tensor[] = [],
): Promise<void> {
  await writeFileAtomic(path, await encodeCheckpoint(model, optimizer, state, averages));
}

export async function loadCheckpoint<State>(path: string): Promise<Checkpoint<State>> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new CheckpointError(`Nothing to resume: there is no checkpoint at ${path}.`);
    }
    throw error;
  }
  return decodeCheckpoint(bytes, path);
}

function corruption(source: string) {
  return (why: string) => new CheckpointError(`Checkpoint ${source} is corrupt: ${why}.`);
}

/** The header of checkpoint bytes (the run's state and its tensors' layout), and where data starts. */
function decodeHeader<State>(bytes: Uint8Array, source: string) {
  const corrupt = corruption(source);
  if (new TextDecoder().decode(bytes.subarray(0, MAGIC.length)) !== MAGIC) {
    throw corrupt("it does not start with the checkpoint signature");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(MAGIC.length, true);
  const dataStart = MAGIC.length + 4 + headerLength;
  if (dataStart > bytes.length) throw corrupt("its header is truncated");
  try {
    const header: { state: State; tensors: Array<TensorEntry & { group: string }> } = JSON.parse(
      new TextDecoder().decode(bytes.subarray(MAGIC.length + 4, dataStart)),
    );
    return { header, dataStart };
  } catch {
    throw corrupt("its header is not valid JSON");
  }
}

/** What a checkpoint file says of its run without reading its tensors into memory. */
export interface CheckpointSummary<State> {
  state: State;
  /** Shapes of the model's weights, in `model.getWeights()` order. */
  modelShapes: number[][];
}

export async function readCheckpointSummary<State>(
  path: string,
): Promise<CheckpointSummary<State>> {
  const { header } = decodeHeader<State>(await Deno.readFile(path), path);
  return {
    state: header.state,
    modelShapes: header.tensors.filter((t) => t.group === "model").map((t) => t.shape),
  };
}

/** Parses checkpoint bytes; `source` names them in errors. */
export function decodeCheckpoint<State>(bytes: Uint8Array, source: string): Checkpoint<State> {
  const corrupt = corruption(source);
  const { header, dataStart } = decodeHeader<State>(bytes, source);
  const weights: tf.Tensor[] = [];
  const optimizer: NamedTensor[] = [];
  const averages: tf.Tensor[] = [];
  let offset = dataStart;
  for (const entry of header.tensors) {
    const size = entry.shape.reduce((a, b) => a * b, 1);
    const end = offset + size * 4;
    if (end > bytes.length) throw corrupt("its tensor data is truncated");
    const raw = bytes.slice(offset, end).buffer;
    const values = entry.dtype === "int32" ? new Int32Array(raw) : new Float32Array(raw);
    const tensor = tf.tensor(values, entry.shape, entry.dtype);
    if (entry.group === "model") weights.push(tensor);
    else if (entry.group === "average") averages.push(tensor);
    else optimizer.push({ name: entry.name, tensor });
    offset = end;
  }
  if (offset !== bytes.length) throw corrupt("it has trailing bytes");
  return { state: header.state, weights, optimizer, averages };
}
