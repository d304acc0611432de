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
import { tempDir } from "./temp_dir.ts";

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

Deno.test("a two-variant ablation completes, and resumes without retraining what is done", async () => {
  await using outTemp = await tempDir("ablation-test-");
  const outDir = outTemp.path;
  const settings = {
    ...ABLATION_SCHEDULE,
    epochs: 1,
    seed: 3,
    limit: 256,
    workers: 2,
    evalImages: 100,
  };
  const variants = ["baseline", "baseline_dropout"].map((name) => variantByName(name)!);
  const trained: string[] = [];
  const skipped: string[] = [];
  const hooks = {
    variant: (variant: { name: string }) => {
      trained.push(variant.name);
      return {};
    },
    skipped: (variant: { name: string }) => skipped.push(variant.name),
  };
  const path = `${outDir}/metrics/ablation.json`;
  const first = await runAblation(data, { outDir, variants, settings, command: "first", hooks });
  assert.deepEqual(first.variants.map((r) => r.name), ["baseline", "baseline_dropout"]);
  for (const result of first.variants) {
    assert.equal(result.history.length, 1);
    for (
      const value of [
        result.test_accuracy,
        result.robustness!.rotation,
        result.robustness!.shift,
        result.robustness!.mnist_c,
      ]
    ) {
      assert.ok(value > 0.1 && value <= 1, `${result.name}: ${value}`);
    }
  }
  assert.deepEqual(trained, ["baseline", "baseline_dropout"]);

  // Interrupted after the second variant trained but before it was recorded.
  const file: AblationFile = JSON.parse(await Deno.readTextFile(path));
  file.variants = file.variants.slice(0, 1);
  await Deno.writeTextFile(path, JSON.stringify(file));
  const resumed = await runAblation(data, {
    outDir,
    variants,
    settings,
    command: "again",
    hooks,
  });
  assert.deepEqual(trained, ["baseline", "baseline_dropout"], "nothing was trained again");
  assert.deepEqual(skipped, ["baseline"]);
  assert.deepEqual(
    resumed.variants.map((r) => r.test_accuracy),
    first.variants.map((r) => r.test_accuracy),
  );
  assert.deepEqual(resumed.variants[1].robustness, first.variants[1].robustness);

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
