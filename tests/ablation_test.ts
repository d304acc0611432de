import assert from "node:assert/strict";
import { loadMnist } from "../data/mnist.ts";
import { useWasmBackend } from "../kernels/backend.ts";
import { buildCnn } from "../models/architectures.ts";
import { AblationError, type AblationFile, runAblation } from "../ablation/run.ts";
import {
  ABLATION_SCHEDULE,
  ROTATION_SWEEP,
  variantByName,
  VARIANTS,
} from "../ablation/variants.ts";
import { ablationMarkdown, differenceText } from "../report/ablation.ts";
import { tempDir } from "./temp_dir.ts";
import type { GridClient } from "../grid/queue.ts";
import { runSpec } from "../grid/run.ts";
import type { RunResult, RunSpec } from "../grid/spec.ts";

await useWasmBackend();
const data = await loadMnist();

function layerSummary(architecture: (typeof VARIANTS)[number]["architecture"]) {
  const model = buildCnn(architecture, "probe");
  const classes = model.layers.map((layer) => layer.getClassName());
  const dropoutRates = model.layers
    .map((layer, i) => ({ layer, before: model.layers[i - 1]?.getClassName() }))
    .filter(({ layer }) => layer.getClassName() === "Dropout")
    .map(({ layer, before }) => ({
      rate: (layer.getConfig() as { rate: number }).rate,
      after: before,
    }));
  model.dispose();
  return { batchNorms: classes.filter((c) => c === "BatchNormalization").length, dropoutRates };
}

Deno.test("ablation variants build the layers they name", () => {
  const expected: Record<
    string,
    { batchNorms: number; conv: number | null; dense: number | null }
  > = {
    baseline: { batchNorms: 0, conv: null, dense: null },
    baseline_bn: { batchNorms: 3, conv: null, dense: null },
    baseline_dropout: { batchNorms: 0, conv: 0.25, dense: 0.5 },
    baseline_augment: { batchNorms: 0, conv: null, dense: null },
    improved: { batchNorms: 3, conv: 0.25, dense: 0.5 },
    improved_conv_dropout: { batchNorms: 3, conv: 0.25, dense: null },
    improved_dense_dropout: { batchNorms: 3, conv: null, dense: 0.5 },
  };
  for (const [name, want] of Object.entries(expected)) {
    const { batchNorms, dropoutRates } = layerSummary(variantByName(name)!.architecture);
    assert.equal(batchNorms, want.batchNorms, `${name}: BatchNorm layers`);
    // Conv-block dropout follows each pooling layer; dense-block dropout the dense block's ReLU.
    const afterPool = dropoutRates.filter((d) => d.after === "MaxPooling2D").map((d) => d.rate);
    const afterDense = dropoutRates.filter((d) => d.after !== "MaxPooling2D").map((d) => d.rate);
    assert.deepEqual(
      afterPool,
      want.conv === null ? [] : [want.conv, want.conv],
      `${name}: conv dropout`,
    );
    assert.deepEqual(afterDense, want.dense === null ? [] : [want.dense], `${name}: dense dropout`);
  }
  // Augmentation where stated; the sweep varies rotation only.
  assert.equal(variantByName("baseline")!.augmentation, null);
  assert.equal(variantByName("baseline_augment")!.augmentation?.rotation, 0.1);
  for (const { variant, degrees } of ROTATION_SWEEP) {
    const augmentation = variantByName(variant)!.augmentation!;
    assert.ok(Math.abs(augmentation.rotation * 360 - degrees) < 1e-9, variant);
    assert.equal(augmentation.translation, 0.1);
    assert.equal(augmentation.zoom, 0.1);
  }
});

Deno.test("a two-variant, two-seed ablation completes, resumes per run, and summarises over seeds", async () => {
  await using outTemp = await tempDir("ablation-test-");
  const outDir = outTemp.path;
  const settings = {
    ...ABLATION_SCHEDULE,
    epochs: 1,
    seed: 3,
    seeds: [3, 4],
    limit: 256,
    workers: 2,
    evalImages: 100,
  };
  const variants = ["baseline", "baseline_dropout"].map((name) => variantByName(name)!);
  const trained: string[] = [];
  const skipped: string[] = [];
  const hooks = {
    variant: (variant: { name: string }, _i: number, _n: number, _r: boolean, seed: number) => {
      trained.push(`${variant.name}@${seed}`);
      return {};
    },
    skipped: (variant: { name: string }, seed: number) => skipped.push(`${variant.name}@${seed}`),
    robustness: (names: string[]) => {
      measured.push(names);
      return {};
    },
  };
  const measured: string[][] = [];
  const path = `${outDir}/metrics/ablation.json`;
  const first = await runAblation(data, { outDir, variants, settings, command: "first", hooks });
  assert.deepEqual(first.variants.map((r) => r.name), ["baseline", "baseline_dropout"]);
  assert.deepEqual(first.runs!.map((r) => `${r.name}@${r.seed}`), [
    "baseline@3",
    "baseline_dropout@3",
    "baseline@4",
    "baseline_dropout@4",
  ]);
  for (const result of first.runs!) {
    assert.equal(result.history.length, 1);
    // One epoch on 256 images: above chance on clean digits, measured on the rest.
    assert.ok(
      result.test_accuracy > 0.15,
      `${result.name}@${result.seed}: ${result.test_accuracy}`,
    );
    for (
      const value of [
        result.test_accuracy,
        result.robustness!.rotation,
        result.robustness!.shift,
        result.robustness!.mnist_c,
      ]
    ) {
      assert.ok(value > 0 && value <= 1, `${result.name}: ${value}`);
    }
    // The exported model's answers for every test image score as the trained model did.
    // (with --limit 256, the first 256 test images, as training's test accuracy).
    const answers = result.predictions!;
    assert.equal(answers.length, 256);
    const right = [...answers].filter((digit, i) => Number(digit) === data.test.labels[i]).length;
    assert.ok(
      Math.abs(right / 256 - result.test_accuracy) <= 1 / 256,
      `${result.name}@${result.seed}: ONNX ${right / 256}, tfjs ${result.test_accuracy}`,
    );
  }
  assert.deepEqual(trained, [
    "baseline@3",
    "baseline_dropout@3",
    "baseline@4",
    "baseline_dropout@4",
  ]);
  // Each seed is measured once its variants are trained, before the next seed starts.
  assert.deepEqual(measured, [
    ["baseline-seed3", "baseline_dropout-seed3"],
    ["baseline-seed4", "baseline_dropout-seed4"],
  ]);
  // Each variant's entry is the mean over its seeds; its spread the same numbers summarised.
  const baselineRuns = first.runs!.filter((r) => r.name === "baseline");
  const mean = (baselineRuns[0].test_accuracy + baselineRuns[1].test_accuracy) / 2;
  assert.ok(Math.abs(first.variants[0].test_accuracy - mean) < 1e-12);
  assert.equal(first.spread!.baseline.test_accuracy!.n, 2);
  assert.ok(Math.abs(first.spread!.baseline.test_accuracy!.mean - mean) < 1e-12);
  assert.match(
    ablationMarkdown(first),
    /seeds 3, 4 \(tables: mean ± standard deviation over seeds\)/,
  );

  // Interrupted after the last run trained but before it was recorded.
  const file: AblationFile = JSON.parse(await Deno.readTextFile(path));
  file.runs = file.runs!.slice(0, 3);
  // ... by an earlier version, which kept no answers: they are read again from the ONNX files.
  for (const run of file.runs) delete run.predictions;
  await Deno.writeTextFile(path, JSON.stringify(file));
  const resumed = await runAblation(data, { outDir, variants, settings, command: "again", hooks });
  assert.equal(trained.length, 4, "nothing was trained again");
  assert.deepEqual(skipped, ["baseline@3", "baseline_dropout@3", "baseline@4"]);
  assert.deepEqual(
    resumed.runs!.map((r) => r.test_accuracy),
    first.runs!.map((r) => r.test_accuracy),
  );
  assert.deepEqual(resumed.runs![3].robustness, first.runs![3].robustness);
  assert.deepEqual(
    resumed.runs!.map((r) => r.predictions),
    first.runs!.map((r) => r.predictions),
  );

  // A fresh clone of an interrupted study: a run trained but never measured, its model gone,
  // and a run whose metrics were written but not its model: both are trained again.
  const unmeasured: AblationFile = JSON.parse(await Deno.readTextFile(path));
  unmeasured.runs![0].robustness = null;
  unmeasured.runs = unmeasured.runs!.filter((r) =>
    !(r.name === "baseline_dropout" && r.seed === 4)
  );
  await Deno.writeTextFile(path, JSON.stringify(unmeasured));
  await Deno.remove(`${outDir}/ablation/onnx/baseline-seed3.onnx`);
  for (const model of ["seed-3/models/baseline", "seed-4/models/baseline_dropout"]) {
    await Deno.remove(`${outDir}/ablation/${model}`, { recursive: true });
  }
  const again = await runAblation(data, { outDir, variants, settings, command: "again", hooks });
  assert.deepEqual(trained.slice(4), ["baseline@3", "baseline_dropout@4"]);
  assert.ok(again.runs!.every((r) => r.robustness !== null && r.predictions !== undefined));

  await assert.rejects(
    () =>
      runAblation(data, {
        outDir,
        variants,
        settings: { ...settings, epochs: 2 },
        command: "other",
      }),
    (error: Error) =>
      error instanceof AblationError &&
      /holds an ablation with other settings/.test(error.message),
  );
});

Deno.test("differences over seeds: 'within noise' exactly when the interval holds zero", () => {
  const run = (name: string, seed: number, test_accuracy: number) => ({
    name,
    seed,
    description: name,
    architecture: { batchNorm: false, convDropout: 0, denseDropout: 0 },
    augmentation: null,
    test_accuracy,
    test_loss: 0,
    test_accuracy_augmented: 0,
    train_val_gap: 0,
    epochs_to_99: null,
    history: [],
    train_seconds: 0,
    robustness: null,
  });
  const file = {
    command: "test",
    date: "",
    versions: {},
    rotation_sweep: [],
    settings: { ...ABLATION_SCHEDULE, seed: 1, seeds: [1, 2, 3], workers: 1, evalImages: 1 },
    variants: [],
    runs: [
      run("a", 1, 0.990),
      run("a", 2, 0.992),
      run("a", 3, 0.991),
      run("noisy", 1, 0.991),
      run("noisy", 2, 0.991),
      run("noisy", 3, 0.992),
      run("better", 1, 0.995),
      run("better", 2, 0.996),
      run("better", 3, 0.996),
    ],
  } as AblationFile;
  // a − noisy: −0.1, +0.1, −0.1 points: the interval holds zero.
  assert.match(
    differenceText(file, "a", "noisy", "test_accuracy"),
    /over 3 seeds: within noise\)$/,
  );
  // better − a: +0.5, +0.4, +0.5 points: clearly not.
  const clear = differenceText(file, "better", "a", "test_accuracy");
  assert.match(
    clear,
    /^\+0\.47 points \(95% interval \+0\.\d\d points to \+0\.\d\d points over 3 seeds\)$/,
  );
  // Seeds that agree to the image give no spread (only float rounding): no interval, no claim.
  const accuracy: Record<string, number[]> = {
    noisy: [0.9883, 0.9874, 0.9883],
    a: [0.9876, 0.9867, 0.9876],
  };
  const level = {
    ...file,
    runs: file.runs!.map((r) =>
      accuracy[r.name] ? { ...r, test_accuracy: accuracy[r.name][r.seed! - 1] } : r
    ),
  };
  assert.equal(
    differenceText(level, "noisy", "a", "test_accuracy"),
    "+0.07 points (the same on all 3 seeds: no spread to make an interval from)",
  );
  // A single common seed gives no interval.
  const single = { ...file, runs: file.runs!.filter((r) => r.seed === 1) };
  assert.match(differenceText(single, "better", "a", "test_accuracy"), /one seed, no interval/);
});

Deno.test("a queued run is read from its job, not from the metrics a worker on this machine wrote before its ONNX file", async () => {
  await using outTemp = await tempDir("ablation-queue-test-");
  const settings = {
    ...ABLATION_SCHEDULE,
    epochs: 1,
    seed: 3,
    seeds: [3],
    limit: 256,
    workers: 1,
    evalImages: 50,
  };
  const results = new Map<string, Promise<RunResult>>();
  // A worker on this machine, caught between writing its metrics and its ONNX file.
  const queue = {
    async submit(specs: RunSpec[]) {
      for (const spec of specs) {
        results.set(
          spec.id,
          runSpec(data, spec).then(async (result) => {
            await Deno.remove(spec.onnxPath!);
            return result;
          }),
        );
      }
      await Promise.all(results.values());
    },
    result: (spec: RunSpec) => results.get(spec.id)!,
    following: <T>(work: Promise<T>) => work,
  } as unknown as GridClient;
  const file = await runAblation(data, {
    outDir: outTemp.path,
    variants: [variantByName("baseline")!],
    settings,
    command: "queued",
    queue,
  });
  assert.equal(file.runs!.length, 1);
  assert.notEqual(file.runs![0].robustness, null, "measured on the ONNX file the job returned");
  assert.equal(typeof file.runs![0].predictions, "string");
});
