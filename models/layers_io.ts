/**
 * Saving and loading tfjs layers models as `model.json` + `weights.bin` (the
 * standard format `tf.loadLayersModel` reads). tfjs has no file system
 * handler without tfjs-node, so this is ours.
 */
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { tf } from "../deps_tfjs.ts";
import { writeDirAtomic } from "../util/files.ts";
// Registers the layers of our own, so models that use them load.
import "./attention_layers.ts";

export const MODEL_JSON = "model.json";
export const WEIGHTS_BIN = "weights.bin";

/** Writes the model into `dir` (replaced whole, never half-written). */
export async function saveLayersModel(model: tf.LayersModel, dir: string): Promise<void> {
  await writeDirAtomic(dir, async (temporary) => {
    await model.save(tf.io.withSaveHandler(async (artifacts) => {
      const weightsManifest = [{
        paths: [WEIGHTS_BIN],
        weights: artifacts.weightSpecs ?? [],
      }];
      const modelJson = {
        modelTopology: artifacts.modelTopology,
        format: "layers-model",
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
        weightsManifest,
      };
      const weights = artifacts.weightData as ArrayBuffer;
      await Deno.writeFile(join(temporary, WEIGHTS_BIN), new Uint8Array(weights));
      await Deno.writeTextFile(join(temporary, MODEL_JSON), JSON.stringify(modelJson));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }));
  });
}

/** Loads `dir/model.json` (and its weights) as a layers model. */
export function loadLayersModel(dir: string): Promise<tf.LayersModel> {
  return tf.loadLayersModel(pathToFileURL(join(resolve(dir), MODEL_JSON)).href);
}
