/**
 * The BatchNorm covariate-shift study: re-estimation happens on one half and
 * is read on the other, leaves the model as it was, and leaks no tensors.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { tf } from "../deps_tfjs.ts";
import { loadTestSet, subset } from "../data/mnist.ts";
import { useWasmBackend } from "../kernels/backend.ts";
import { loadLayersModel } from "../models/layers_io.ts";
import { familyByName } from "../robustness/families.ts";
import { evaluate } from "../train/steps.ts";
import { batchNormShift, CLEAN } from "../studies/batch_norm_shift.ts";

const ROOT = new URL("..", import.meta.url).pathname;

Deno.test("re-estimated statistics: clean control unchanged, brightness recovered, model restored", async () => {
  await useWasmBackend();
  const model = await loadLayersModel(join(ROOT, "results/models/improved"));
  const test = await loadTestSet();
  const split = subset(test, Array.from({ length: 600 }, (_, i) => i));
  const before = evaluate(model, split).accuracy;
  const tensors = tf.memory().numTensors;
  const results = batchNormShift(
    model,
    split,
    [{ family: familyByName("mnist_c/brightness")!, level: 1 }],
    0,
  );
  assert.equal(tf.memory().numTensors, tensors, "the study leaked tensors");
  assert.deepEqual(results.map((r) => r.family), [CLEAN, "mnist_c/brightness"]);
  const [clean, brightness] = results;
  // Re-estimating on clean digits is the control: it must not change much.
  assert.ok(Math.abs(clean.adapted - clean.shipped) < 0.02, JSON.stringify(clean));
  // The committed improved model collapses under brightness and recovers with its statistics re-estimated.
  assert.ok(
    brightness.shipped < 0.5 && brightness.adapted > brightness.shipped + 0.3,
    JSON.stringify(brightness),
  );
  // The model's own statistics are back in place afterwards.
  assert.equal(evaluate(model, split).accuracy, before);
  model.dispose();
});
