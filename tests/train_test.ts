import assert from "node:assert/strict";
import { join } from "node:path";
import { tf } from "../deps_tfjs.ts";
import { loadMnist, pixelsOf } from "../data/mnist.ts";
import { useWasmBackend } from "../kernels/backend.ts";
import { buildModel } from "../models/architectures.ts";
import { loadLayersModel } from "../models/layers_io.ts";
import { NAMED_RECIPES, RECIPES } from "../train/recipes.ts";
import {
  beginsFinishingRecipe,
  defaultConfig,
  type Metrics,
  outputPaths,
  TrainingError,
  trainModel,
  withArchitecture,
} from "../train/run.ts";
import { evaluate, trainStep } from "../train/steps.ts";
import { FlatAdam } from "../train/adam.ts";
import { Random } from "../util/random.ts";
import { tempDir } from "./temp_dir.ts";
import { resumeMatchesStraight } from "./resume.ts";
import { beginsRecipe, sameRecipe } from "../train/seeds.ts";

await useWasmBackend();
const data = await loadMnist();
const indices = Array.from({ length: 128 }, (_, i) => i);
const pixels = pixelsOf(data.train, indices);
const labels = data.train.labels.slice(0, 128);

Deno.test("training steps lower the loss without leaking tensors", () => {
  for (const name of ["baseline", "improved"] as const) {
    const model = buildModel(name);
    const optimizer = FlatAdam.forModel(model, 1e-3);
    const losses = [trainStep(model, optimizer, pixels, labels).loss];
    const tensorsAfterFirst = tf.memory().numTensors;
    for (let step = 0; step < 12; step++) {
      losses.push(trainStep(model, optimizer, pixels, labels).loss);
    }
    assert.equal(tf.memory().numTensors, tensorsAfterFirst, `${name} leaks tensors per step`);
    assert.ok(losses.at(-1)! < losses[0] * 0.7, `${name}: loss ${losses[0]} -> ${losses.at(-1)}`);
    const before = tf.memory().numTensors;
    evaluate(model, { images: data.test.images, labels: data.test.labels, count: 300 });
    assert.equal(tf.memory().numTensors, before, `${name} evaluation leaks tensors`);
    model.dispose();
  }
});

Deno.test("FlatAdam makes tfjs Adam's updates and reads and writes its state", async () => {
  const random = new Random(5);
  const shapes = [[3, 4], [7], [2, 2, 3]];
  const initial = shapes.map((shape) =>
    Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => random.uniform(-1, 1))
  );
  const ours = shapes.map((shape, i) => tf.variable(tf.tensor(initial[i], shape)));
  const theirs = shapes.map((shape, i) => tf.variable(tf.tensor(initial[i], shape)));
  const flat = new FlatAdam(ours, 0.01);
  const reference = tf.train.adam(0.01);
  for (let step = 0; step < 5; step++) {
    const gradients = Float32Array.from({ length: flat.size }, () => random.uniform(-2, 2));
    flat.apply(gradients);
    let offset = 0;
    reference.applyGradients(theirs.map((variable) => {
      const tensor = tf.tensor(gradients.slice(offset, offset + variable.size), variable.shape);
      offset += variable.size;
      return { name: variable.name, tensor };
    }));
  }
  ours.forEach((variable, i) => {
    const difference = tf.max(tf.abs(tf.sub(variable, theirs[i]))).dataSync()[0];
    assert.ok(difference < 1e-6, `variable ${i} differs by ${difference}`);
  });
  // State in tfjs Adam's layout, both ways.
  const state = await reference.getWeights();
  assert.deepEqual(
    (await flat.getWeights()).map((n) => n.tensor.shape),
    state.map((n) => n.tensor.shape),
  );
  const restored = new FlatAdam(ours, 0.01);
  await restored.setWeights(state);
  assert.equal(restored.iterations, 5);
  const before = tf.memory().numTensors;
  const gradients = new Float32Array(flat.size).fill(0.5);
  flat.apply(gradients);
  const afterFlat = ours.map((v) => v.dataSync().slice());
  ours.forEach((variable, i) => variable.assign(theirs[i]));
  restored.apply(gradients);
  ours.forEach((variable, i) =>
    variable.dataSync().forEach((value, j) =>
      assert.ok(Math.abs(value - afterFlat[i][j]) < 1e-6, "restored state steps like the original")
    )
  );
  assert.equal(tf.memory().numTensors, before, "apply leaks tensors");
  assert.throws(() => flat.apply(new Float32Array(3)), /Expected 31 gradient values, got 3/);
  tf.dispose([...ours, ...theirs, ...state.map((n) => n.tensor)]);
  reference.dispose();
});

const quick = (epochs: number) => ({
  ...defaultConfig("improved", RECIPES.improved, 7),
  epochs,
  limit: 192,
  batchSize: 64,
});

Deno.test("a run writes a loadable model, metrics and a checkpoint; the same seed repeats it", async () => {
  await using aTemp = await tempDir("mnist-train-test-");
  await using bTemp = await tempDir("mnist-train-test-");
  const [a, b] = [aTemp.path, bTemp.path];
  const first = await trainModel(data, { config: quick(1), outDir: a, command: "test" });
  const second = await trainModel(data, { config: quick(1), outDir: b, command: "test" });
  assert.deepEqual(
    first.metrics.history.map(({ loss, accuracy, val_loss }) => ({ loss, accuracy, val_loss })),
    second.metrics.history.map(({ loss, accuracy, val_loss }) => ({ loss, accuracy, val_loss })),
  );
  const metrics: Metrics = JSON.parse(
    await Deno.readTextFile(join(a, "metrics", "improved_metrics.json")),
  );
  assert.equal(metrics.seed, 7);
  assert.equal(metrics.history.length, 1);
  assert.deepEqual(metrics.data, { train: 192, validation: 192, test: 192 });
  for (const key of ["test_accuracy", "test_loss", "test_accuracy_augmented"] as const) {
    assert.ok(metrics[key] >= 0 && Number.isFinite(metrics[key]));
  }
  assert.ok(metrics.versions["@tensorflow/tfjs"]);
  const model = await loadLayersModel(join(a, "models", "improved"));
  assert.equal(model.countParams(), 422314);
  model.dispose();
  await Deno.stat(outputPaths(a, "improved").checkpoint);
});

Deno.test("--resume continues a stopped run exactly where it stopped", async () => {
  const { continued } = await resumeMatchesStraight(data, quick, 2, 1, async (outDir) => {
    await assert.rejects(
      () => trainModel(data, { config: quick(2), outDir, command: "third", resume: true }),
      { message: /^Nothing to resume: the run in .* already finished 2 of 2 epochs/ },
    );
  });
  assert.equal(continued.metrics.command, "first (resumed as: second)");
});

Deno.test("a run trained before its recipe gained a finishing stage goes on into it as if trained with it", async () => {
  const finish = { fromEpoch: 2, learningRate: 5e-4, learningRateDecay: 0.5, augmentation: null };
  // Epoch 1 is the same under both recipes; epochs 2 and 3 are the stage's.
  const config = (epochs: number) => ({
    ...quick(epochs),
    workers: 2,
    ...(epochs === 1 ? { recipeName: "start" } : { finish, recipeName: "with-stage" }),
  });
  const { continued } = await resumeMatchesStraight(data, config, 3, 1);
  assert.deepEqual(continued.metrics.config.finish, finish);
  assert.equal(
    continued.metrics.config.recipeName,
    "with-stage",
    "it becomes the recipe it went on into",
  );
  assert.deepEqual(continued.metrics.history.map((r) => r.learning_rate), [1e-3, 5e-4, 2.5e-4]);
});

Deno.test("a named recipe replaces the model's schedule and augmentation, and its runs are not the model's own", () => {
  const own = defaultConfig("robust", RECIPES.robust, 3);
  const clean = defaultConfig("robust", RECIPES.robust, 3, {
    name: "clean",
    recipe: NAMED_RECIPES.clean,
  });
  assert.equal(clean.recipeName, "clean");
  assert.equal(clean.finish, undefined);
  assert.equal(clean.augmentation?.appearance, undefined, "geometry only");
  assert.ok(clean.augmentation!.rotation < own.augmentation!.rotation);
  assert.equal(clean.epochs, own.epochs);
  // A clean run is neither read as the robust recipe nor continued into its finishing stage.
  assert.ok(!sameRecipe(clean, own));
  assert.ok(!beginsRecipe(clean, 2, own));
});

Deno.test("the light recipe is the robust one with the appearance families half as often, and is not read as it", () => {
  const own = defaultConfig("vgg", RECIPES.vgg, 3);
  const light = defaultConfig("vgg", RECIPES.vgg, 3, {
    name: "light",
    recipe: NAMED_RECIPES.light,
  });
  const share = (config: typeof own) => 1 - config.augmentation!.appearance!.cleanShare;
  assert.ok(Math.abs(share(light) - share(own) / 2) < 1e-9, "corrupted share halved");
  assert.deepEqual(
    { ...light.augmentation, appearance: { ...light.augmentation!.appearance, cleanShare: 0 } },
    { ...own.augmentation, appearance: { ...own.augmentation!.appearance, cleanShare: 0 } },
    "nothing else in the augmentation changes",
  );
  assert.deepEqual(light.finish, own.finish);
  assert.ok(!sameRecipe(light, own));
  assert.ok(!beginsRecipe(light, 2, own));
});

/** A model's configuration on a named recipe, as `train:vgg --recipe NAME` makes the VGG's. */
const named = (name: string, model: "vgg" | "vgg-gap" = "vgg") =>
  defaultConfig(model, RECIPES[model], 3, { name, recipe: NAMED_RECIPES[name] });

Deno.test("the mild recipe is the clean one with the robust recipe's appearance families", () => {
  const [mild, clean, own] = [named("mild"), named("clean"), defaultConfig("vgg", RECIPES.vgg, 3)];
  assert.deepEqual({ ...mild.augmentation, appearance: undefined }, {
    ...clean.augmentation,
    appearance: undefined,
  });
  assert.deepEqual(mild.augmentation!.appearance, own.augmentation!.appearance);
  assert.equal(mild.finish, undefined);
  assert.ok(!sameRecipe(mild, clean) && !sameRecipe(mild, own));
});

Deno.test("mild-turn and mild-robust are the mild recipe's epochs, then a stage on wide rotations that a finished mild run goes on into", () => {
  const [mild, own] = [named("mild"), defaultConfig("vgg", RECIPES.vgg, 3)];
  for (const name of ["mild-turn", "mild-robust"]) {
    const turned = named(name);
    assert.equal(turned.epochs, mild.epochs + 5);
    assert.equal(turned.finish!.fromEpoch, mild.epochs + 1);
    assert.deepEqual({ ...turned.finish, augmentation: undefined, fromEpoch: undefined }, {
      ...own.finish,
      augmentation: undefined,
      fromEpoch: undefined,
    }, `${name}: the robust recipe's stage settings`);
    assert.ok(sameRecipe({ ...turned, finish: undefined }, mild), `${name}: mild before the stage`);
    assert.ok(beginsRecipe(mild, mild.epochs, turned), `${name}: a finished mild run is its start`);
    assert.ok(!sameRecipe(turned, mild) && !beginsRecipe(own, 2, turned));
    assert.equal(turned.finish!.augmentation!.rotation, own.augmentation!.rotation, "36°");
  }
  const turn = named("mild-turn").finish!.augmentation!;
  assert.deepEqual(
    { ...turn, rotation: 0 },
    { ...mild.augmentation, rotation: 0 },
    "only rotation",
  );
  assert.deepEqual(named("mild-robust").finish!.augmentation, own.augmentation);
});

Deno.test("mild-shift is the mild recipe's epochs, then a stage on its augmentation with the robust recipe's shifts; mild-shift-stroke the same with the robust stage's appearance", () => {
  const [mild, shift, own] = [
    named("mild"),
    named("mild-shift"),
    defaultConfig("vgg", RECIPES.vgg, 3),
  ];
  assert.ok(beginsRecipe(mild, mild.epochs, shift), "a finished mild run is its start");
  assert.equal(shift.finish!.fromEpoch, mild.epochs + 1);
  assert.deepEqual(
    { ...shift.finish, augmentation: undefined, fromEpoch: undefined },
    { ...own.finish, augmentation: undefined, fromEpoch: undefined },
    "the robust recipe's stage settings",
  );
  const stage = shift.finish!.augmentation!;
  assert.equal(stage.translation, own.augmentation!.translation, "±4.2 px");
  assert.notEqual(stage.translation, mild.augmentation!.translation);
  assert.deepEqual(
    { ...stage, translation: 0 },
    { ...mild.augmentation, translation: 0 },
    "only shifts",
  );
  // mild-shift-stroke: the same stage with the robust recipe's own stage's appearance.
  const stroke = named("mild-shift-stroke");
  assert.ok(beginsRecipe(mild, mild.epochs, stroke), "a finished mild run is its start too");
  assert.deepEqual({ ...stroke.finish, augmentation: undefined }, {
    ...shift.finish,
    augmentation: undefined,
  });
  assert.deepEqual(stroke.finish!.augmentation, {
    ...stage,
    appearance: own.finish!.augmentation!.appearance,
  });
  assert.notDeepEqual(stroke.finish!.augmentation!.appearance, stage.appearance);
});

Deno.test("mild-mix-shift is the mild-mix recipe's epochs, then mild-shift's stage", () => {
  const [mix, shift, mixShift] = [named("mild-mix"), named("mild-shift"), named("mild-mix-shift")];
  assert.ok(beginsRecipe(mix, mix.epochs, mixShift), "a finished mild-mix run is its start");
  assert.ok(!beginsRecipe(named("mild"), mix.epochs, mixShift), "a mild run is not");
  assert.deepEqual(mixShift.augmentation, mix.augmentation);
  assert.deepEqual(mixShift.finish, shift.finish, "mild-shift's stage, settings and augmentation");
  assert.equal(mixShift.epochs, shift.epochs);
});

Deno.test("mild-mix-midshift is mild-mix-shift with the stage's shifts halfway to the robust recipe's", () => {
  const [mix, mixMild, mixShift, mid] = [
    named("mild-mix"),
    named("mild-mix-mild"),
    named("mild-mix-shift"),
    named("mild-mix-midshift"),
  ];
  assert.ok(beginsRecipe(mix, mix.epochs, mid), "a finished mild-mix run is its start");
  const [narrow, wide, half] = [mixMild, mixShift, mid].map((c) => c.finish!.augmentation!);
  assert.ok(Math.abs(half.translation - (narrow.translation + wide.translation) / 2) < 1e-12);
  assert.ok(narrow.translation < half.translation && half.translation < wide.translation);
  assert.deepEqual({ ...half, translation: 0 }, { ...wide, translation: 0 }, "only shifts");
  assert.deepEqual(
    { ...mid.finish, augmentation: undefined },
    { ...mixShift.finish, augmentation: undefined },
  );
});

Deno.test("mild-mix is the mild recipe with a wide-rotation share and nothing else", () => {
  const [mix, mild] = [named("mild-mix"), named("mild")];
  assert.deepEqual({ ...mix.augmentation, wide: undefined }, {
    ...mild.augmentation,
    wide: undefined,
  });
  assert.ok(mix.augmentation!.wide && !mild.augmentation!.wide);
  assert.equal(mix.finish, undefined);
  assert.ok(!sameRecipe(mix, mild) && !beginsRecipe(mild, 2, mix));
});

Deno.test("mild-mix-settle, -mild, -again and -stroke are mild-mix's epochs, then a stage that a finished mild-mix run goes on into", () => {
  const [mix, mild, own] = [named("mild-mix"), named("mild"), defaultConfig("vgg", RECIPES.vgg, 3)];
  for (const name of ["mild-mix-settle", "mild-mix-mild", "mild-mix-again", "mild-mix-stroke"]) {
    const finished = named(name);
    assert.equal(finished.epochs, mix.epochs + 5);
    assert.deepEqual({ ...finished.finish, augmentation: undefined, fromEpoch: undefined }, {
      ...own.finish,
      augmentation: undefined,
      fromEpoch: undefined,
    }, `${name}: the robust recipe's stage settings`);
    assert.ok(
      beginsRecipe(mix, mix.epochs, finished),
      `${name}: a finished mild-mix run is its start`,
    );
    assert.ok(!beginsRecipe(mild, mild.epochs, finished), `${name}: a mild run is not`);
  }
  const settle = named("mild-mix-settle").finish!.augmentation!;
  assert.deepEqual(
    { ...settle, rotation: 0 },
    { ...mild.augmentation, rotation: 0 },
    "mild but rotation",
  );
  assert.equal(settle.rotation, own.finish!.augmentation!.rotation, "the robust stage's 20°");
  assert.deepEqual(named("mild-mix-mild").finish!.augmentation, mild.augmentation);
  assert.deepEqual(named("mild-mix-again").finish!.augmentation, mix.augmentation);
  assert.deepEqual(named("mild-mix-stroke").finish, {
    ...own.finish,
    fromEpoch: mix.epochs + 1,
  }, "the robust recipe's own stage");
});

Deno.test("mild-stroke is the mild recipe's epochs, then the robust recipe's own stage, for either VGG", () => {
  const [mild, own] = [named("mild"), defaultConfig("vgg", RECIPES.vgg, 3)];
  const stroke = named("mild-stroke");
  assert.equal(stroke.epochs, mild.epochs + 5);
  assert.deepEqual(stroke.finish, { ...own.finish, fromEpoch: mild.epochs + 1 });
  assert.ok(sameRecipe({ ...stroke, finish: undefined }, mild), "mild before the stage");
  assert.ok(beginsRecipe(mild, mild.epochs, stroke), "a finished mild run is its start");
  assert.ok(!beginsRecipe(named("mild-mix"), mild.epochs, stroke), "a mild-mix run is not");
  // The same for the global-average VGG (the architecture itself is checked on the weights).
  assert.ok(beginsRecipe(named("mild", "vgg-gap"), mild.epochs, named("mild-stroke", "vgg-gap")));
});

Deno.test("only a run that stopped before either stage begins is taken as the start of the recipe", () => {
  const finish = { fromEpoch: 3, learningRate: 1e-4, learningRateDecay: 0.7, augmentation: null };
  const recipe = { ...quick(4), finish };
  assert.ok(beginsRecipe(quick(2), 2, recipe));
  assert.ok(!beginsRecipe(quick(3), 3, recipe), "its third epoch trained without the stage");
  assert.ok(!beginsRecipe({ ...quick(2), learningRateDecay: 0.5 }, 2, recipe), "another recipe");
  assert.ok(!beginsRecipe(recipe, 2, recipe), "a run with the stage is the recipe itself");
  // A stage whose settings changed before the run reached it: the epochs done are alike.
  const earlier = { ...quick(4), finish: { ...finish, learningRate: 3e-4 } };
  assert.ok(beginsRecipe(earlier, 2, recipe));
  assert.ok(beginsRecipe({ ...earlier, finish: { ...finish, fromEpoch: 4 } }, 2, recipe));
  assert.ok(!beginsRecipe(earlier, 3, recipe), "its third epoch trained in the other stage");
  assert.ok(!beginsRecipe({ ...recipe, finish: { ...finish, fromEpoch: 2 } }, 2, recipe), "begun");
  // Checkpoints written before runs named their architecture leave it out.
  assert.ok(beginsFinishingRecipe(quick(2), 2, withArchitecture(recipe)));
});

Deno.test("a diverging run stops with one sentence and writes no model or metrics", async () => {
  await using dirTemp = await tempDir("mnist-train-test-");
  const dir = dirTemp.path;
  await assert.rejects(
    () =>
      trainModel(data, {
        config: { ...quick(1), learningRate: Infinity, model: "baseline", augment: false },
        outDir: dir,
        command: "test",
      }),
    (error: Error) =>
      error instanceof TrainingError &&
      /^Training diverged: the loss became NaN at epoch 1/.test(error.message),
  );
  const paths = outputPaths(dir, "baseline");
  await assert.rejects(() => Deno.stat(paths.metrics), Deno.errors.NotFound);
  await assert.rejects(() => Deno.stat(paths.modelDir), Deno.errors.NotFound);
});

Deno.test("weight averaging: the update rule, evaluation on the averages, exact resume", async () => {
  const { WeightAverage } = await import("../train/weight_average.ts");
  const model = buildModel("baseline");
  const kernel = model.trainableWeights[0];
  const start = kernel.read().dataSync().slice();
  const average = new WeightAverage(model, 0.75);
  kernel.write(tf.onesLike(kernel.read()));
  average.update();
  const before = tf.memory().numTensors;
  const seen = average.with(() => kernel.read().dataSync().slice());
  assert.equal(tf.memory().numTensors, before, "with() leaks tensors");
  // The first update uses d = min(0.75, 1/10): the average follows the weights quickly.
  seen.forEach((value, i) => assert.ok(Math.abs(value - (0.1 * start[i] + 0.9)) < 1e-6));
  for (let n = 1; n < 40; n++) average.update();
  // After 40 updates the decay has reached 0.75, and the average has converged to the ones.
  assert.ok(
    average.with(() => kernel.read().dataSync().every((value) => Math.abs(value - 1) < 1e-3)),
  );
  assert.ok(kernel.read().dataSync().every((value) => value === 1), "live weights restored");
  average.dispose();
  model.dispose();

  await resumeMatchesStraight(
    data,
    (epochs) => ({ ...quick(epochs), weightAverageDecay: 0.9 }),
    2,
    1,
  );
});

Deno.test("weight averaging with decay 1: the plain mean since it started, from a chosen epoch", async () => {
  const { WeightAverage } = await import("../train/weight_average.ts");
  const model = buildModel("baseline");
  const kernel = model.trainableWeights[0];
  const fill = (value: number) => kernel.write(tf.fill(kernel.shape as number[], value));
  const average = new WeightAverage(model, 1);
  fill(5);
  average.update();
  fill(9);
  average.restart();
  assert.equal(average.updates, 0);
  assert.ok(average.with(() => kernel.read().dataSync().every((value) => value === 9)));
  for (const value of [1, 2, 6]) {
    fill(value);
    average.update();
  }
  // (1 + 2 + 6) / 3: the weights before the restart count for nothing.
  assert.ok(
    average.with(() => kernel.read().dataSync().every((value) => Math.abs(value - 3) < 1e-6)),
  );
  average.dispose();
  model.dispose();

  const config = (epochs: number) => ({
    ...quick(epochs),
    weightAverageDecay: 1,
    weightAverageStart: 2,
  });
  // Resumed at the start epoch itself, the run restarts the average as the straight one did.
  const { reference } = await resumeMatchesStraight(data, config, 3, 1);
  const live = reference.metrics.history.map((record) => record.val_accuracy_live);
  assert.equal(live[0], undefined, "before the start epoch the live weights are evaluated");
  assert.ok(live.slice(1).every((accuracy) => accuracy !== undefined));
});

Deno.test("BatchNorm statistics: exact ones replace the moving averages until those converge", async () => {
  const { setExactStatistics, statisticsUnconverged, stepsToConverge } = await import(
    "../train/batch_norm_stats.ts"
  );
  assert.equal(stepsToConverge(0.99), 688); // 0.99^688 < 1e-3 < 0.99^687
  const model = buildModel("improved");
  assert.ok(statisticsUnconverged(model, 100));
  assert.ok(!statisticsUnconverged(model, 5000));
  assert.ok(!statisticsUnconverged(buildModel("baseline"), 0), "no BatchNorm, nothing to converge");
  const before = tf.memory().numTensors;
  setExactStatistics(model, pixels, new Random(1));
  assert.equal(tf.memory().numTensors, before, "leaks tensors");
  // The first BatchNorm now holds the exact statistics of the first convolution's output.
  const [conv, norm] = model.layers;
  const expected = tf.tidy(() => {
    const { mean, variance } = tf.moments(
      conv.apply(tf.tensor4d(pixels, [128, 28, 28, 1])) as tf.Tensor,
      [0, 1, 2],
    );
    return [mean.dataSync().slice(), variance.dataSync().slice()];
  });
  const [, , movingMean, movingVariance] = norm.getWeights().map((w) => w.dataSync());
  expected[0].forEach((v, i) => assert.ok(Math.abs(v - movingMean[i]) < 1e-6));
  expected[1].forEach((v, i) => assert.ok(Math.abs(v - movingVariance[i]) < 1e-6));
  model.dispose();
});

Deno.test("BatchNorm statistics: taken with dropout active, as training sees them, and seeded", async () => {
  const { setExactStatistics } = await import("../train/batch_norm_stats.ts");
  const model = buildModel("improved");
  const norms = model.layers.filter((layer) => layer.getClassName() === "BatchNormalization");
  const statistics = (seed: number) => {
    setExactStatistics(model, pixels, new Random(seed));
    return norms.map((norm) => norm.getWeights().slice(2).map((w) => w.dataSync().slice()));
  };
  const first = statistics(3);
  assert.deepEqual(statistics(3), first, "the same dropout stream gives the same statistics");
  assert.notDeepEqual(statistics(4), first, "the statistics depend on the dropout masks");
  // The second BatchNorm follows a dropout of 0.25: in training its inputs
  // keep their mean and gain variance, which inference-mode statistics miss.
  const secondNorm = model.layers.indexOf(norms[1]);
  const [inferenceMean, inferenceVariance] = tf.tidy(() => {
    let x: tf.Tensor = tf.tensor4d(pixels, [128, 28, 28, 1]);
    for (const layer of model.layers.slice(0, secondNorm)) x = layer.apply(x) as tf.Tensor;
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    return [mean.dataSync() as Float32Array, variance.dataSync() as Float32Array];
  });
  const [mean, variance] = first[1] as Float32Array[];
  const larger = variance.filter((v, i) => v > inferenceVariance[i]).length;
  assert.ok(larger > 0.9 * variance.length, `${larger} of ${variance.length} variances larger`);
  const spread = Math.sqrt(inferenceVariance.reduce((a, b) => a + b, 0) / variance.length);
  mean.forEach((m, i) => assert.ok(Math.abs(m - inferenceMean[i]) < 0.1 * spread));
  model.dispose();
});
