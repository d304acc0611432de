/**
 * `train --start-from`: a recipe's finishing stage begun from the saved model
 * of a finished run of its first part, instead of training that part again.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { tf } from "../deps_tfjs.ts";
import { loadMnist } from "../data/mnist.ts";
import { useWasmBackend } from "../kernels/backend.ts";
import { loadLayersModel } from "../models/layers_io.ts";
import { RECIPES } from "../train/recipes.ts";
import { defaultConfig, type TrainConfig, trainModel } from "../train/run.ts";
import { tempDir } from "./temp_dir.ts";

await useWasmBackend();
const data = await loadMnist();

/** One epoch of a first part, then (with a stage) one of the stage at `stageRate`. */
const config = (withStage: boolean, stageRate = 5e-4, seed = 7): TrainConfig => ({
  ...defaultConfig("baseline", RECIPES.baseline, seed),
  weightAverageDecay: 0,
  limit: 192,
  workers: 1,
  ...(withStage
    ? {
      epochs: 2,
      recipeName: "with-stage",
      finish: { fromEpoch: 2, learningRate: stageRate, learningRateDecay: 0.5, augmentation: null },
    }
    : { epochs: 1, recipeName: "first-part" }),
});

async function trainableWeights(dir: string): Promise<Float32Array[]> {
  const model = await loadLayersModel(dir);
  try {
    return model.trainableWeights.map((weight) => weight.read().dataSync() as Float32Array);
  } finally {
    model.dispose();
  }
}

Deno.test("--start-from trains the stage only, from the first part's saved weights, and records where it began", async () => {
  await using sourceTemp = await tempDir("mnist-start-from-");
  await using stageTemp = await tempDir("mnist-start-from-");
  await using otherTemp = await tempDir("mnist-start-from-");
  const source = await trainModel(data, {
    config: config(false),
    outDir: sourceTemp.path,
    command: "first part",
  });
  // The saved model is what the stage begins from, not weights it could
  // have trained itself: swap in another seed's.
  const other = await trainModel(data, {
    config: config(false, 0, 8),
    outDir: otherTemp.path,
    command: "other",
  });
  await Deno.remove(source.modelDir, { recursive: true });
  await Deno.rename(other.modelDir, source.modelDir);
  const tensors = tf.memory().numTensors;
  // At a learning rate of 0 the stage leaves the weights it began from as they were.
  const stage = await trainModel(data, {
    config: config(true, 0),
    outDir: stageTemp.path,
    command: "stage",
    startFrom: sourceTemp.path,
  });
  assert.equal(tf.memory().numTensors, tensors, "no tensors left behind");
  assert.deepEqual(stage.metrics.history[0], source.metrics.history[0], "the first part's epoch");
  assert.equal(stage.metrics.history.length, 2);
  assert.equal(stage.metrics.history[1].learning_rate, 0);
  assert.deepEqual(stage.metrics.started_from, {
    folder: sourceTemp.path,
    command: "first part",
    date: source.metrics.date,
    epochs: 1,
  });
  assert.deepEqual(
    await trainableWeights(stage.modelDir),
    await trainableWeights(source.modelDir),
    "the stage began from the saved weights",
  );
  const written = JSON.parse(await Deno.readTextFile(stage.metricsPath));
  assert.equal(written.started_from.folder, sourceTemp.path);
});

Deno.test("--start-from refuses a folder that is not the recipe's first part, in one sentence", async () => {
  await using sourceTemp = await tempDir("mnist-start-from-");
  await using stageTemp = await tempDir("mnist-start-from-");
  const folder = sourceTemp.path;
  const start = (asked: TrainConfig) =>
    trainModel(data, {
      config: asked,
      outDir: stageTemp.path,
      command: "stage",
      startFrom: folder,
    });
  await assert.rejects(() => start(config(true)), {
    message: `--start-from ${folder}: there is no finished baseline run here (no ${
      join(folder, "metrics", "baseline_metrics.json")
    }).`,
  });
  await trainModel(data, { config: config(false), outDir: folder, command: "first part" });
  await assert.rejects(() => start(config(true, 5e-4, 8)), {
    message: `--start-from ${folder}: its run has seed 7, this one 8.`,
  });
  await assert.rejects(() => start({ ...config(true), limit: 256 }), {
    message: `--start-from ${folder}: its run has --limit 192, this one 256.`,
  });
  await assert.rejects(() => start({ ...config(true), learningRate: 2e-3 }), {
    message:
      `--start-from ${folder}: its run (first-part, 1 epochs) is not the first 1 epochs of with-stage.`,
  });
  await assert.rejects(() => start(config(false)), {
    message: "--start-from begins a recipe's finishing stage, and recipe first-part has none.",
  });
  assert.deepEqual([...Deno.readDirSync(stageTemp.path)], [], "nothing written");
});
