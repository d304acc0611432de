import assert from "node:assert/strict";
import { tf } from "../deps_tfjs.ts";
import { loadMnist, pixelsOf, subset } from "../data/mnist.ts";
import { useWasmBackend } from "../kernels/backend.ts";
import { ARCHITECTURES, buildCnn, buildModel, type ModelName } from "../models/architectures.ts";
import { combineMoments, setExactStatistics, withStatistics } from "../train/batch_norm_stats.ts";
import { FlatAdam } from "../train/adam.ts";
import { decodeCheckpoint, encodeReplica } from "../train/checkpoint.ts";
import { shardBounds, WorkerFailure, WorkerPool } from "../train/parallel.ts";
import { RECIPES } from "../train/recipes.ts";
import { defaultConfig, TrainingError, trainModel } from "../train/run.ts";
import { evaluate, evaluationBatches, shardGradients } from "../train/steps.ts";
import { workerStreamSeed } from "../train/worker_protocol.ts";
import { Random, withMathRandom } from "../util/random.ts";
import { tempDir } from "./temp_dir.ts";

await useWasmBackend();
const data = await loadMnist();
const split = subset(data.train, Array.from({ length: 512 }, (_, i) => i));
const SEED = 11;

function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): [number, number] {
  let worst = 0;
  let scale = 1e-12;
  for (let i = 0; i < a.length; i++) {
    worst = Math.max(worst, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(a[i]));
  }
  return [worst, scale];
}

Deno.test("shards cover the batch contiguously, sizes within one", () => {
  assert.deepEqual(shardBounds(64, 2), [[0, 32], [32, 64]]);
  assert.deepEqual(shardBounds(7, 3), [[0, 2], [2, 4], [4, 7]]);
  assert.deepEqual(shardBounds(1, 2), [[0, 0], [0, 1]]);
});

Deno.test("moving statistics go to their own variables when tfjs renamed them (a model built twice)", () => {
  // A resumed --seeds run reads the earlier seeds' models first; the second
  // residual model's variables are then named "stem_bn/moving_mean_1".
  const first = buildModel("resnet");
  const model = buildModel("resnet");
  const weights = model.getWeights().map((w) => (w.dataSync() as Float32Array).slice());
  const batchNorms = model.layers.filter((layer) => layer.getClassName() === "BatchNormalization");
  const layers = batchNorms.map((layer, i) => {
    const channels = layer.getWeights()[0].size;
    return {
      mean: new Float32Array(channels).fill(i + 1),
      variance: new Float32Array(channels).fill(-i - 1),
    };
  });
  const replaced = withStatistics(model, weights, layers);
  model.weights.forEach((weight, i) => {
    const owner = batchNorms.findIndex((layer) => layer.nonTrainableWeights.includes(weight));
    if (owner < 0) return assert.equal(replaced[i], weights[i], weight.name);
    const expected = weight.name.includes("moving_mean") ? owner + 1 : -owner - 1;
    assert.ok(replaced[i].every((v) => v === expected), weight.name);
  });
  assert.ok(model.weights.some((weight) => weight.name.endsWith("moving_mean_1")));
  first.dispose();
  model.dispose();
});

Deno.test("exact BatchNorm statistics over two workers equal this thread's; moments combine exactly", async () => {
  // Without dropout the pass is deterministic, so shares of the images must add up to the whole.
  const architecture = { batchNorm: true, convDropout: 0, denseDropout: 0 };
  const model = buildCnn(architecture, "bn");
  const pixels = pixelsOf(split, Array.from({ length: 300 }, (_, i) => i));
  const weights = model.getWeights().map((w) => (w.dataSync() as Float32Array).slice());
  const pool = await WorkerPool.start({
    name: "bn",
    architecture,
    seed: SEED,
    workers: 2,
    split,
  });
  let layers;
  try {
    layers = await pool.batchNormStatistics(weights, pixels, 5);
  } finally {
    pool.close();
  }
  setExactStatistics(model, pixels, new Random(5));
  const expected = withStatistics(model, weights, layers).map((_, i) =>
    model.getWeights()[i].dataSync() as Float32Array
  );
  assert.equal(layers.length, 3);
  for (const [i, values] of withStatistics(model, weights, layers).entries()) {
    const [worst, scale] = maxDifference(values, expected[i]);
    assert.ok(worst <= 1e-4 * scale, `weight ${i}: ${worst} of ${scale}`);
  }
  // Chan's formula: two halves' moments give the whole's.
  const whole = [1, 2, 3, 4, 10, 20];
  const moments = (values: number[]) => {
    const mean = values.reduce((a, b) => a + b) / values.length;
    const variance = values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / values.length;
    return {
      count: values.length,
      mean: Float32Array.of(mean),
      variance: Float32Array.of(variance),
    };
  };
  const combined = combineMoments([moments(whole.slice(0, 2)), moments(whole.slice(2))]);
  assert.ok(Math.abs(combined.mean[0] - moments(whole).mean[0]) < 1e-5);
  assert.ok(Math.abs(combined.variance[0] - moments(whole).variance[0]) < 1e-4);
  model.dispose();
});

Deno.test("the workers share validation: their evaluation of given weights is this thread's", async () => {
  const validation = subset(data.train, Array.from({ length: 700 }, (_, i) => 1000 + i));
  const model = buildModel("improved");
  // Weights other than the initial ones, moving BatchNorm statistics included.
  const random = new Random(3);
  model.setWeights(
    model.getWeights().map((w) =>
      tf.tidy(() =>
        tf.add(w, tf.mul(0.05, tf.randomUniform(w.shape, -1, 1, "float32", random.int(1e9))))
      )
    ),
  );
  const pool = await WorkerPool.start({
    name: "improved",
    architecture: ARCHITECTURES.improved,
    seed: SEED,
    workers: 2,
    split,
    validation,
  });
  try {
    const weights = model.getWeights().map((w) => (w.dataSync() as Float32Array).slice());
    // 700 images are 3 batches of 256: one worker takes one, the other two.
    const shared = await pool.evaluate(weights, evaluationBatches(validation));
    const here = evaluate(model, validation);
    assert.equal(shared.accuracy, here.accuracy);
    assert.ok(Math.abs(shared.loss - here.loss) < 1e-9, `${shared.loss} vs ${here.loss}`);
    assert.ok(here.accuracy > 0 && here.accuracy < 1);
  } finally {
    pool.close();
    model.dispose();
  }
});

/** Two workers holding `model`'s and `optimizer`'s state, at epoch 0. */
async function replicaPool(name: ModelName, model: tf.LayersModel, optimizer: FlatAdam) {
  const pool = await WorkerPool.start({
    name,
    architecture: ARCHITECTURES[name],
    seed: SEED,
    workers: 2,
    split,
  });
  await pool.load(await encodeReplica(model, optimizer));
  await pool.beginEpoch(0, 1e-3, null);
  return pool;
}

/** Every worker's trainable weights are `model`'s, bit for bit. */
async function assertWorkersHold(pool: WorkerPool, model: tf.LayersModel) {
  const states = (await pool.states()).map((bytes) => decodeCheckpoint(bytes, "test"));
  const ours = model.getWeights();
  for (const [worker, state] of states.entries()) {
    model.trainableWeights.forEach((weight) => {
      const i = model.weights.indexOf(weight);
      const [difference] = maxDifference(ours[i].dataSync(), state.weights[i].dataSync());
      assert.equal(difference, 0, `worker ${worker + 1}: ${weight.name} differs by ${difference}`);
    });
    tf.dispose([...state.weights, ...state.optimizer.map((n) => n.tensor)]);
  }
}

for (const name of ["baseline", "improved"] as ModelName[]) {
  Deno.test(`${name}: a step over two workers makes the single-process update`, async () => {
    const model = buildModel(name);
    const optimizer = FlatAdam.forModel(model, 1e-3);
    const pool = await replicaPool(name, model, optimizer);
    try {
      const batch = Array.from({ length: 24 }, (_, i) => 3 * i + 1);
      const summed = await pool.gradients(batch);

      // The same batch in this thread. The baseline's gradient is the whole
      // batch's; the improved model's is the sum over the same two shards,
      // each normalised by its own BatchNorm statistics and masked by its
      // worker's dropout stream.
      const gradientOf = (indices: number[], random: Random) =>
        withMathRandom(random, () =>
          shardGradients(
            model,
            pixelsOf(split, indices),
            Uint8Array.from(indices, (i) => split.labels[i]),
            batch.length,
          ).gradients);
      let expected: Float32Array;
      if (name === "baseline") {
        expected = gradientOf(batch, new Random(0));
      } else {
        const shards = shardBounds(batch.length, 2).map(([start, end], worker) =>
          gradientOf(
            batch.slice(start, end),
            new Random(workerStreamSeed(SEED, 0, worker, 2, 0)),
          )
        );
        expected = shards[0].map((value, i) => value + shards[1][i]);
      }
      const [worst, scale] = maxDifference(expected, summed.gradients);
      assert.ok(worst <= 1e-5 * scale, `gradients differ by ${worst} (largest ${scale})`);

      // Both workers apply the sum and stay identical to this thread's update
      // with the same gradient (Adam's first step, g/|g|, would magnify the
      // rounding differences above for gradients near zero).
      pool.apply(summed.gradients);
      optimizer.apply(summed.gradients);
      await assertWorkersHold(pool, model);
    } finally {
      pool.close();
      model.dispose();
    }
  });
}

Deno.test("a one-image batch (one worker idle) between full ones: every worker applies this thread's updates", async () => {
  const model = buildModel("baseline");
  const optimizer = FlatAdam.forModel(model, 1e-3);
  const pool = await replicaPool("baseline", model, optimizer);
  try {
    // As `step` does: each apply is not awaited, and the next batch's sum is
    // written into the same shared memory the idle worker may still be reading.
    const sums: Float32Array[] = [];
    for (const batch of [[7], [1, 2, 3, 4, 5, 6, 7, 8], [9], [10, 11, 12]]) {
      const { gradients } = await pool.gradients(batch);
      sums.push(gradients.slice());
      pool.apply(gradients);
    }
    for (const sum of sums) optimizer.apply(sum);
    await assertWorkersHold(pool, model);
  } finally {
    pool.close();
    model.dispose();
  }
});

Deno.test("a hung worker ends the wait with one sentence and stops every worker", async () => {
  const pool = await WorkerPool.start({
    name: "baseline",
    architecture: ARCHITECTURES.baseline,
    seed: 1,
    workers: 2,
    split,
    workerUrl: new URL("./fixtures/silent_worker.ts", import.meta.url),
    replyTimeoutMs: 3000,
  });
  await assert.rejects(
    () => pool.gradients([1, 2, 3, 4]),
    (error: Error) =>
      error instanceof WorkerFailure &&
      /^Training worker [12] of 2 failed: no reply to "gradients" within 3 s\.$/.test(
        error.message,
      ),
  );
  await assert.rejects(() => pool.beginEpoch(1, 1e-3, null), WorkerFailure);
  pool.close();
});

const quick = (epochs: number) => ({
  ...defaultConfig("improved", RECIPES.improved, 5),
  epochs,
  limit: 256,
  workers: 2,
});

Deno.test("a worker crash ends the run with one sentence; --resume continues from its checkpoint", async () => {
  await using straightTemp = await tempDir();
  await using crashedTemp = await tempDir();
  const [straight, crashed] = [straightTemp.path, crashedTemp.path];
  const reference = await trainModel(data, { config: quick(2), outDir: straight, command: "a" });
  // 256 images in batches of 64: each worker's fifth gradient request is
  // the first of epoch 2.
  await assert.rejects(
    () =>
      trainModel(data, {
        config: quick(2),
        outDir: crashed,
        command: "b",
        workerUrl: new URL("./fixtures/dying_worker.ts", import.meta.url),
      }),
    (error: Error) =>
      error instanceof TrainingError &&
      /^Training worker [12] of 2 failed: simulated crash\. The last checkpoint \(epoch 1\) is kept: --resume continues from it\.$/
        .test(error.message),
  );
  const resumed = await trainModel(data, {
    config: quick(2),
    outDir: crashed,
    command: "c",
    resume: true,
  });
  assert.deepEqual(
    resumed.metrics.history.map((r) => r.loss),
    reference.metrics.history.map((r) => r.loss),
  );
  assert.equal(resumed.metrics.test_loss, reference.metrics.test_loss);
  assert.equal(resumed.metrics.config.workers, 2);
});
