/**
 * Reads a tfjs layers model from disk (model.json + weight files) without
 * tfjs, checking everything a converter relies on: the JSON, the manifest,
 * and that the weight bytes match the shapes.
 */
import { join } from "node:path";

export interface LayerJson {
  class_name: string;
  config: Record<string, unknown> & { name: string };
  inbound_nodes?: unknown[];
}

export interface LayersArtifacts {
  /** The model's name from its topology. */
  name: string;
  /** Layers in order (a Sequential model's chain, or a functional model's in topological order). */
  layers: LayerJson[];
  /** Functional models: the layer whose output is the model's (Sequential: the last layer). */
  outputLayer?: string;
  weights: Map<string, { shape: number[]; values: Float32Array }>;
}

export class ModelFileError extends Error {}

interface WeightSpec {
  name: string;
  shape: number[];
  dtype?: string;
}

async function readOrExplain(path: string, what: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new ModelFileError(`${what} ${path} does not exist.`);
    }
    if (error instanceof Deno.errors.IsADirectory) {
      throw new ModelFileError(`${what} ${path} is a folder, not a file.`);
    }
    throw new ModelFileError(`${what} ${path} cannot be read: ${(error as Error).message}`);
  }
}

/** The layer list of a Sequential or functional model, and a functional model's output layer. */
function layerList(
  topology: Record<string, unknown>,
  path: string,
): { name: string; layers: LayerJson[]; outputLayer?: string } {
  const modelConfig = (topology.model_config ?? topology) as {
    class_name?: string;
    config?: unknown;
  };
  const config = modelConfig.config as
    | { name?: string; layers?: LayerJson[]; output_layers?: unknown[][] }
    | undefined;
  if (!config || !Array.isArray(config.layers)) {
    throw new ModelFileError(`${path} has no layer list in its modelTopology.`);
  }
  if (
    modelConfig.class_name !== "Sequential" && modelConfig.class_name !== "Model" &&
    modelConfig.class_name !== "Functional"
  ) {
    throw new ModelFileError(
      `${path} holds a ${modelConfig.class_name} model; only Sequential and functional models are supported.`,
    );
  }
  const outputs = config.output_layers;
  if (Array.isArray(outputs) && outputs.length > 1) {
    throw new ModelFileError(
      `${path} has ${outputs.length} outputs; a classifier has one.`,
    );
  }
  const outputLayer = Array.isArray(outputs?.[0]) ? String(outputs[0][0]) : undefined;
  return { name: config.name ?? "model", layers: config.layers, outputLayer };
}

export async function readLayersArtifacts(dir: string): Promise<LayersArtifacts> {
  const modelPath = join(dir, "model.json");
  try {
    const info = await Deno.stat(dir);
    if (!info.isDirectory) {
      throw new ModelFileError(`${dir} is not a folder with a tfjs model.json.`);
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new ModelFileError(`Model folder ${dir} does not exist.`);
    }
    throw error;
  }
  const text = new TextDecoder().decode(await readOrExplain(modelPath, "tfjs model file"));
  let json: {
    format?: string;
    modelTopology?: Record<string, unknown>;
    weightsManifest?: Array<{ paths: string[]; weights: WeightSpec[] }>;
  };
  try {
    json = JSON.parse(text);
  } catch {
    throw new ModelFileError(`${modelPath} is not valid JSON.`);
  }
  if (typeof json !== "object" || json === null || !json.modelTopology) {
    throw new ModelFileError(`${modelPath} is not a tfjs layers model (it has no modelTopology).`);
  }
  if (json.format && json.format !== "layers-model") {
    throw new ModelFileError(
      `${modelPath} is a tfjs ${json.format}; the exporter takes layers models.`,
    );
  }
  if (!Array.isArray(json.weightsManifest)) {
    throw new ModelFileError(`${modelPath} has no weightsManifest.`);
  }
  const { name, layers, outputLayer } = layerList(json.modelTopology, modelPath);
  const weights = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const group of json.weightsManifest) {
    const chunks = await Promise.all(
      group.paths.map((file) => readOrExplain(join(dir, file), "weights file")),
    );
    const bytes = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
    let at = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, at);
      at += chunk.length;
    }
    const needed = group.weights.reduce(
      (sum, spec) => sum + 4 * spec.shape.reduce((a, b) => a * b, 1),
      0,
    );
    if (bytes.length !== needed) {
      throw new ModelFileError(
        `${
          group.paths.map((file) => join(dir, file)).join(", ")
        } holds ${bytes.length} bytes, but the shapes in ${modelPath} need ${needed}: the weights do not match the model.`,
      );
    }
    let offset = 0;
    for (const spec of group.weights) {
      if (spec.dtype && spec.dtype !== "float32") {
        throw new ModelFileError(
          `Weight ${spec.name} in ${modelPath} is ${spec.dtype}; only float32 weights are supported.`,
        );
      }
      const size = spec.shape.reduce((a, b) => a * b, 1);
      const values = new Float32Array(bytes.slice(offset, offset + size * 4).buffer);
      weights.set(spec.name, { shape: spec.shape, values });
      offset += size * 4;
    }
  }
  return { name, layers, outputLayer, weights };
}
