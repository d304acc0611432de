import assert from "node:assert/strict";
import { tf } from "../deps_tfjs.ts";
import { loadTestSet, pixelsOf } from "../data/mnist.ts";
import { useWasmBackend } from "../kernels/backend.ts";
import { buildCnn } from "../models/architectures.ts";
import { setExactStatistics, STATISTICS_CHUNK, StatisticsPass } from "../train/batch_norm_stats.ts";
import { Random, withMathRandom } from "../util/random.ts";

await useWasmBackend();

Deno.test("exact BatchNorm statistics taken in chunks equal the moments of all images at once, leaking nothing", async () => {
  const architecture = { batchNorm: true, convDropout: 0, denseDropout: 0 };
  const model = buildCnn(architecture, "bn");
  // Two whole chunks and a short one.
  const count = 2 * STATISTICS_CHUNK + 88;
  const pixels = pixelsOf(await loadTestSet(), Array.from({ length: count }, (_, i) => i));
  const tensors = tf.memory().numTensors;
  setExactStatistics(model, pixels, new Random(1));
  assert.equal(tf.memory().numTensors, tensors, "the pass leaves no tensor behind");

  // The reference: every layer on all images in one batch; each BatchNorm layer's moving
  // statistics must be its input's moments (its output then uses them, as inference does).
  let x: tf.Tensor = tf.tensor4d(pixels, [count, 28, 28, 1]);
  let checked = 0;
  for (const layer of model.layers) {
    if (layer.getClassName() === "BatchNormalization") {
      const [, , movingMean, movingVariance] = layer.getWeights();
      const { mean, variance } = tf.moments(x, x.rank === 4 ? [0, 1, 2] : [0]);
      for (
        const [name, actual, expected] of [
          ["mean", movingMean, mean],
          ["variance", movingVariance, variance],
        ] as const
      ) {
        const a = actual.dataSync(), e = expected.dataSync();
        for (let c = 0; c < e.length; c++) {
          assert.ok(
            Math.abs(a[c] - e[c]) <= 1e-5 + 1e-4 * Math.abs(e[c]),
            `${layer.name} ${name}[${c}]: ${a[c]} against ${e[c]}`,
          );
        }
      }
      tf.dispose([mean, variance]);
      checked++;
    }
    const y = layer.apply(x) as tf.Tensor;
    x.dispose();
    x = y;
  }
  x.dispose();
  assert.equal(checked, 3);
  model.dispose();
});

Deno.test("keeping fewer activations and recomputing layers gives the same statistics, dropout masks included", async () => {
  // The improved model's layers: dropout after each block, so recomputation runs dropout again.
  const architecture = { batchNorm: true, convDropout: 0.25, denseDropout: 0.5 };
  const count = 2 * STATISTICS_CHUNK + 40;
  const pixels = pixelsOf(await loadTestSet(), Array.from({ length: count }, (_, i) => i));
  const statistics = (storedFloatsPerImage: number, dropoutSeed = 5) => {
    const model = withMathRandom(new Random(3), () => buildCnn(architecture, "bn"));
    const tensors = tf.memory().numTensors;
    const pass = new StatisticsPass(model, pixels, new Random(dropoutSeed), storedFloatsPerImage);
    const seen: Float32Array[] = [];
    for (let moments = pass.next(); moments; moments = pass.next()) {
      seen.push(moments.mean, moments.variance);
      pass.resume(moments);
    }
    assert.equal(tf.memory().numTensors, tensors, "the pass leaves no tensor behind");
    model.dispose();
    return seen;
  };
  // Every BatchNorm input kept (no layer runs twice) against only the 784 input pixels kept
  // (every layer before a BatchNorm recomputed for it, each dropout layer run up to three times).
  const keptAll = statistics(Infinity);
  const keptInput = statistics(784);
  assert.equal(keptAll.length, 6);
  keptAll.forEach((expected, i) => assert.deepEqual(keptInput[i], expected, `moments ${i}`));
  // Dropout does act on them: other masks give the second BatchNorm other moments.
  assert.notDeepEqual(statistics(784, 6)[2], keptAll[2]);
});
