import assert from "node:assert/strict";
import { tf } from "../deps_tfjs.ts";
import { useWasmBackend } from "../kernels/backend.ts";
import { buildModel, MODEL_NAMES } from "../models/architectures.ts";

await useWasmBackend();

function parameterCounts(model: tf.LayersModel) {
  const count = (weights: tf.LayerVariable[]) =>
    weights.reduce((sum, w) => sum + w.shape.reduce((a, b) => a! * b!, 1)!, 0);
  return {
    trainable: count(model.trainableWeights),
    nonTrainable: count(model.nonTrainableWeights),
  };
}

Deno.test("baseline: layers and 421,642 parameters", () => {
  const model = buildModel("baseline");
  // Conv 3·3·1·32+32, Conv 3·3·32·64+64, Dense 3136·128+128, Dense 128·10+10.
  const expected = (9 * 32 + 32) + (9 * 32 * 64 + 64) + (3136 * 128 + 128) + (128 * 10 + 10);
  assert.equal(expected, 421642);
  assert.deepEqual(parameterCounts(model), { trainable: expected, nonTrainable: 0 });
  assert.deepEqual(
    model.layers.map((layer) => layer.getClassName()),
    ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"],
  );
  model.dispose();
});

Deno.test("improved: BatchNorm without biases, dropout, 421,866 trainable + 448 moving statistics", () => {
  const model = buildModel("improved");
  const weights = 9 * 32 + 9 * 32 * 64 + 3136 * 128 + (128 * 10 + 10);
  const batchNormChannels = 32 + 64 + 128;
  assert.deepEqual(parameterCounts(model), {
    trainable: weights + 2 * batchNormChannels,
    nonTrainable: 2 * batchNormChannels,
  });
  assert.equal(weights + 2 * batchNormChannels, 421866);
  assert.deepEqual(
    model.layers.map((layer) => layer.getClassName()),
    [
      "Conv2D",
      "BatchNormalization",
      "Activation",
      "MaxPooling2D",
      "Dropout",
      "Conv2D",
      "BatchNormalization",
      "Activation",
      "MaxPooling2D",
      "Dropout",
      "Flatten",
      "Dense",
      "BatchNormalization",
      "Activation",
      "Dropout",
      "Dense",
    ],
  );
  const rates = model.layers.filter((l) => l.getClassName() === "Dropout")
    .map((l) => (l.getConfig() as { rate: number }).rate);
  assert.deepEqual(rates, [0.25, 0.25, 0.5]);
  for (const layer of model.layers.slice(0, -1)) {
    if (["Conv2D", "Dense"].includes(layer.getClassName())) {
      assert.equal((layer.getConfig() as { useBias: boolean }).useBias, false);
    }
  }
  model.dispose();
});

Deno.test("robust: blocks Conv(16) | Conv(32) → Conv(32) | Conv(64) → Conv(64) → Conv(128), each BatchNorm-ReLU, pooled with dropout 0.25; no dense dropout", () => {
  const robust = buildModel("robust");
  const describe = (model: tf.LayersModel) =>
    model.layers.map((layer) => {
      const { rate, units, filters, useBias } = layer.getConfig() as Record<string, unknown>;
      return [layer.getClassName(), rate, units, filters, useBias];
    });
  const conv = (filters: number) => [
    ["Conv2D", undefined, undefined, filters, false],
    ["BatchNormalization", undefined, undefined, undefined, undefined],
    ["Activation", undefined, undefined, undefined, undefined],
  ];
  const pool = [
    ["MaxPooling2D", undefined, undefined, undefined, undefined],
    ["Dropout", 0.25, undefined, undefined, undefined],
  ];
  assert.deepEqual(describe(robust), [
    ...conv(16),
    ...pool,
    ...conv(32),
    ...conv(32),
    ...pool,
    ...conv(64),
    ...conv(64),
    ...conv(128),
    ...pool,
    ["Flatten", undefined, undefined, undefined, undefined],
    ["Dense", undefined, 128, undefined, false],
    ["BatchNormalization", undefined, undefined, undefined, undefined],
    ["Activation", undefined, undefined, undefined, undefined],
    ["Dense", undefined, 10, undefined, true],
  ]);
  // 28 → 14 → 7 → 3: the dense layer reads 3 × 3 × 128 features.
  const dense = robust.layers.find((layer) => layer.getClassName() === "Dense")!;
  assert.deepEqual(dense.getWeights()[0].shape, [3 * 3 * 128, 128]);
  assert.equal(robust.name, "robust");
  robust.dispose();
});

Deno.test("every model maps [N, 28, 28, 1] to probabilities [N, 10]", () => {
  for (const name of MODEL_NAMES) {
    const model = buildModel(name);
    const before = tf.memory().numTensors;
    const sums = tf.tidy(() => {
      const probabilities = model.predict(tf.randomUniform([3, 28, 28, 1])) as tf.Tensor;
      assert.deepEqual(probabilities.shape, [3, 10]);
      return Array.from(tf.sum(probabilities, -1).dataSync());
    });
    for (const sum of sums) assert.ok(Math.abs(sum - 1) < 1e-5);
    assert.equal(tf.memory().numTensors, before);
    model.dispose();
  }
});
