/**
 * The resume check shared by the training and engine tests: a run stopped
 * and resumed ends exactly where the same run trained straight ends.
 */
import assert from "node:assert/strict";
import type { Mnist } from "../data/mnist.ts";
import { type TrainConfig, trainModel } from "../train/run.ts";
import { tempDir } from "./temp_dir.ts";

/**
 * Trains `epochs` epochs straight, and elsewhere `stopAt` epochs then
 * `--resume` to `epochs`; asserts that both end with the same last epoch
 * and test loss. `inResumedRun` runs before the folders are removed.
 */
export async function resumeMatchesStraight(
  data: Mnist,
  config: (epochs: number) => TrainConfig,
  epochs: number,
  stopAt: number,
  inResumedRun?: (outDir: string) => Promise<void>,
) {
  await using straightTemp = await tempDir("mnist-train-test-");
  await using resumedTemp = await tempDir("mnist-train-test-");
  const [straight, resumed] = [straightTemp.path, resumedTemp.path];
  const reference = await trainModel(data, {
    config: config(epochs),
    outDir: straight,
    command: "a",
  });
  await trainModel(data, { config: config(stopAt), outDir: resumed, command: "first" });
  const continued = await trainModel(data, {
    config: config(epochs),
    outDir: resumed,
    command: "second",
    resume: true,
  });
  assert.equal(continued.metrics.history.length, epochs);
  const last = epochs - 1;
  assert.equal(continued.metrics.history[last].loss, reference.metrics.history[last].loss);
  assert.equal(continued.metrics.history[last].val_loss, reference.metrics.history[last].val_loss);
  assert.equal(continued.metrics.test_loss, reference.metrics.test_loss);
  await inResumedRun?.(resumed);
  return { reference, continued };
}
