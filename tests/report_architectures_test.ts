import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  architecturesMarkdown,
  differenceOverSeeds,
  rowSize,
  trainedOn,
} from "../report/architectures.ts";
import { readMetrics, type ReportInputs, withRecipeRuns } from "../report/inputs.ts";
import { writeReport } from "../report/main.ts";
import { tempDir } from "./temp_dir.ts";

const seedsFile = (model: string, accuracies: number[]) => ({
  model,
  seeds: accuracies.map((_, i) => 42 + i),
  runs: accuracies.map((test_accuracy, i) => ({
    seed: 42 + i,
    dir: i === 0 ? "results" : `results/seeds/seed-${42 + i}`,
    test_accuracy,
  })),
  summary: {},
});

const testSet = (accuracy: number) => ({
  accuracy,
  images_per_s: 1,
  confusion: Array.from({ length: 10 }, () => new Array(10).fill(0)),
  samples: [],
  confident_mistakes: [],
});

/** A training run's metrics file, as far as the report reads it. */
const trainingMetrics = (test_accuracy: number, fields: Record<string, unknown> = {}) => ({
  history: [{ loss: 1, accuracy: 1, val_loss: 1, val_accuracy: 1 }],
  test_accuracy,
  test_loss: 0.1,
  test_accuracy_augmented: 0.99,
  ...fields,
});

function inputs(): ReportInputs {
  return {
    training: {},
    testSets: {},
    seeds: {
      robust: seedsFile("robust", [0.9950, 0.9955, 0.9948]),
      // Better than robust by 0.10, 0.05 and 0.12 points on the same seeds.
      resnet: seedsFile("resnet", [0.9960, 0.9960, 0.9960]),
      // Better on one seed, worse on another.
      vit: seedsFile("vit", [0.9900, 0.9980, 0.9940]),
    },
    seedRuns: {},
    ensembleRuns: [{ seed: 42, test: testSet(0.9970) }],
  } as unknown as ReportInputs;
}

Deno.test("the families' table: differences from the robust CNN pair seeds, with a t interval and a verdict", () => {
  const given = inputs();
  const resnet = differenceOverSeeds(given, "resnet", "robust")!;
  const differences = [0.0010, 0.0005, 0.0012];
  const mean = differences.reduce((a, b) => a + b) / 3;
  const sd = Math.sqrt(differences.reduce((s, d) => s + (d - mean) ** 2, 0) / 2);
  assert.ok(Math.abs(resnet.mean - mean) < 1e-12);
  // Student's t with 2 degrees of freedom: 4.303.
  assert.ok(Math.abs(resnet.ci95!.low - (mean - 4.303 * sd / Math.sqrt(3))) < 1e-5);
  const markdown = architecturesMarkdown(given)!;
  const row = (label: string) =>
    markdown.split("\n").find((line) => line.startsWith(`| ${label}`))!;
  assert.match(
    row("residual CNN"),
    /\| 99\.60% ± 0\.00% \(3 seeds\) \| \+0\.09 \(\+0\.00 to \+0\.18\), over 3 seeds: resnet better \|/,
  );
  assert.match(row("vision transformer"), /within noise/);
  // The ensemble has one seed and no predictions here: its difference has no interval.
  assert.match(row("ensemble"), /\| 99\.70% \(1 seed\) \| \+0\.20 \(one seed\) \|/);
  assert.equal(
    architecturesMarkdown({ ...given, seeds: { robust: given.seeds.robust }, ensembleRuns: [] }),
    undefined,
  );
});

Deno.test("seconds an epoch name what the convolutions ran on, im2col for native runs before oneDNN", () => {
  const history = [{ epoch: 1, seconds: 60 }, { epoch: 2, seconds: 80 }];
  const given = inputs();
  given.training = {
    robust: { history, engine: "native" },
    resnet: { history, engine: "native", convolutions: "oneDNN 2.6" },
    vit: { history, engine: "wasm" },
  } as unknown as ReportInputs["training"];
  const markdown = architecturesMarkdown(given)!;
  const cells = (label: string) =>
    markdown.split("\n").find((line) => line.startsWith(`| ${label}`))!.split(" | ");
  assert.equal(cells("robust CNN")[4], "70 (im2col)");
  assert.equal(cells("residual CNN")[4], "70 (oneDNN)");
  assert.equal(cells("vision transformer")[4], "70 (wasm)");
  assert.match(markdown, /^Two more families beside the robust CNN/m);
  assert.equal(trainedOn({ convolutions: "im2col + BLIS", engine: "native" } as never), "im2col");
});

Deno.test("with one seed, the difference from the robust CNN is paired over the test images", () => {
  const labels = Array.from({ length: 1000 }, (_, i) => i % 10);
  const predict = (wrong: number[]) =>
    labels.map((label, i) => (wrong.includes(i) ? (label + 1) % 10 : label)).join("");
  const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);
  const given = {
    ...inputs(),
    // The ensemble errs on 10 digits, the robust CNN on 40 others: 3 points better.
    // The committee (several seeds' models in one file) errs on the robust CNN's 40 and 5 more.
    testSets: {
      ensemble: { ...testSet(0.99), predictions: predict(range(0, 10)) },
      robust: { ...testSet(0.96), predictions: predict(range(500, 40)) },
      committee: { ...testSet(0.955), predictions: predict(range(500, 45)) },
    },
  } as unknown as ReportInputs;
  const markdown = architecturesMarkdown(given, labels)!;
  const row = (label: string) =>
    markdown.split("\n").find((line) => line.startsWith(`| ${label}`))!;
  assert.match(
    row("ensemble"),
    /\| \+3\.00 \(\+[0-9.]+ to \+[0-9.]+\), one seed, over test images: ensemble better \|/,
  );
  // Paired with no seed's run, but over the test images with the robust CNN's first seed.
  assert.match(
    row("committee"),
    /\| 95\.50% \(one file\) \| −0\.50 \(−[0-9.]+ to −[0-9.]+\), one seed, over test images: robust better \|/,
  );
});

Deno.test("readMetrics reads the ensemble's test metrics from every seed's folder", async () => {
  await using dir = await tempDir();
  const metrics = join(dir.path, "results", "metrics");
  await Deno.mkdir(metrics, { recursive: true });
  await Deno.mkdir(join(dir.path, "results", "seeds", "seed-43", "metrics"), { recursive: true });
  await Deno.writeTextFile(
    join(metrics, "robust_seeds.json"),
    JSON.stringify(seedsFile("robust", [0.995, 0.996])),
  );
  await Deno.writeTextFile(join(metrics, "ensemble_test.json"), JSON.stringify(testSet(0.997)));
  await Deno.writeTextFile(
    join(dir.path, "results", "seeds", "seed-43", "metrics", "ensemble_test.json"),
    JSON.stringify(testSet(0.998)),
  );
  await Deno.writeTextFile(
    join(metrics, "robust_metrics.json"),
    JSON.stringify(trainingMetrics(0.995)),
  );
  const read = await readMetrics(metrics);
  assert.deepEqual(read.ensembleRuns.map((run) => [run.seed, run.test.accuracy]), [[42, 0.997], [
    43,
    0.998,
  ]]);
});

Deno.test("runs on a named recipe in a folder below the results join the families' table, and only it", async () => {
  await using dir = await tempDir();
  const results = join(dir.path, "results");
  const training = (test_accuracy: number, config: Record<string, unknown>) =>
    JSON.stringify(trainingMetrics(test_accuracy, { config }));
  const write = async (folder: string, file: string, text: string) => {
    await Deno.mkdir(join(results, folder), { recursive: true });
    await Deno.writeTextFile(join(results, folder, file), text);
  };
  await write("metrics", "robust_metrics.json", training(0.995, {}));
  await write("metrics", "robust_seeds.json", JSON.stringify(seedsFile("robust", [0.995, 0.996])));
  await write(
    "metrics",
    "robustness.json",
    JSON.stringify({ models: {}, families: {}, config: { images: 1 } }),
  );
  await write("clean/metrics", "vgg_metrics.json", training(0.997, { recipeName: "clean" }));
  await write(
    "clean/metrics",
    "vgg_seeds.json",
    JSON.stringify({
      ...seedsFile("vgg", [0.9975, 0.9985]),
      runs: [
        { seed: 42, dir: "results/clean", test_accuracy: 0.9975 },
        { seed: 43, dir: "results/clean/seeds/seed-43", test_accuracy: 0.9985 },
      ],
    }),
  );
  const cleanRobustness = {
    clean: 0.99,
    clean_mean_confidence: 1,
    families: {},
    summary: { families: { rotation: 0.9 }, mnist_c_mean: 0.95, worst: null },
  };
  await write(
    "clean/metrics",
    "robustness.json",
    JSON.stringify({ models: { vgg: cleanRobustness }, families: {}, config: { images: 1 } }),
  );
  // A run on its model's own recipe one level down is another run of a row, not a row.
  await write("other/metrics", "resnet_metrics.json", training(0.5, {}));
  await Deno.mkdir(join(results, "empty"));
  const given = await readMetrics(join(results, "metrics"));
  const families = await withRecipeRuns(given, results);
  assert.deepEqual(Object.keys(families.training).sort(), ["robust", "vgg:clean"]);
  assert.deepEqual(families.robustness?.models["vgg:clean"], cleanRobustness);
  // The inputs the plots are drawn from keep their own keys.
  assert.deepEqual(Object.keys(given.training), ["robust"]);
  assert.deepEqual(Object.keys(given.robustness!.models), []);
  const row = architecturesMarkdown(families)!.split("\n")
    .find((line) => line.startsWith("| VGG-style CNN, clean recipe"));
  assert.match(
    row!,
    /\| 99\.80% ± 0\.07% \(2 seeds\) \| \+0\.25 \(.*\), over 2 seeds: vgg \(clean\) better \|/,
  );
  assert.match(row!, /\| 95\.00% \| – \| 90\.00% \|/, "its MNIST-C mean, worst and rotation");

  // A second recipe of the same architecture gets a row of its own, after its architecture's,
  // named after it where the report has no words for it.
  await write("other-recipe/metrics", "vgg_metrics.json", training(0.99, { recipeName: "other" }));
  await write("metrics", "vgg_metrics.json", training(0.996, {}));
  const both = await withRecipeRuns(await readMetrics(join(results, "metrics")), results);
  const labels = architecturesMarkdown(both)!.split("\n").filter((line) =>
    /^\| [A-Za-z]/.test(line)
  )
    .map((line) => line.split(" | ")[0].slice(2));
  assert.deepEqual(labels.slice(1), [
    "robust CNN (plain, 6 convs)",
    "VGG-style CNN (pairs of convs, 2× wider)",
    "VGG-style CNN, clean recipe (geometry only)",
    "VGG-style CNN (pairs of convs, 2× wider), other recipe",
  ]);
});

Deno.test("a turned model's folder joins the table as one row, its seeds paired with the robust CNN's", async () => {
  await using dir = await tempDir();
  const results = join(dir.path, "results");
  const write = async (folder: string, file: string, value: unknown) => {
    await Deno.mkdir(join(results, folder), { recursive: true });
    await Deno.writeTextFile(join(results, folder, file), JSON.stringify(value));
  };
  await write("metrics", "robust_metrics.json", trainingMetrics(0.995, { config: {} }));
  await write("metrics", "robust_seeds.json", seedsFile("robust", [0.995, 0.996]));
  await write("metrics", "robustness.json", { models: {}, families: {}, config: { images: 1 } });
  const turnedRobustness = {
    clean: 0.997,
    clean_mean_confidence: 1,
    families: {},
    summary: { families: { rotation: 0.98, elastic: 0.9 }, mnist_c_mean: 0.985, worst: null },
  };
  // Seed 43's folder first on disk order or not, the lowest seed's figures are the row's.
  for (
    const [folder, seed, accuracy] of [["turned/seeds/seed-43", 43, 0.998], [
      "turned",
      42,
      0.997,
    ]] as const
  ) {
    await write(`${folder}/metrics`, "turn_training.json", { seed });
    await write(`${folder}/metrics`, "turned_test.json", testSet(accuracy));
    await write(`${folder}/metrics`, "robustness.json", {
      models: { turned: { ...turnedRobustness, clean: accuracy } },
      families: {},
      config: { images: 1 },
    });
  }
  // A named recipe's VGG with a turn in front, in its own folder: the seed is its run's.
  for (
    const [folder, seed, accuracy] of [["shift", 42, 0.993], [
      "shift/seeds/seed-43",
      43,
      0.994,
    ]] as const
  ) {
    await write(
      `${folder}/metrics`,
      "vgg_metrics.json",
      trainingMetrics(accuracy - 0.001, { seed, config: { recipeName: "mild-shift" } }),
    );
    await write(`${folder}/metrics`, "turned_test.json", testSet(accuracy));
    await write(`${folder}/metrics`, "robustness.json", {
      models: { turned: { ...turnedRobustness, clean: accuracy } },
      families: {},
      config: { images: 1 },
    });
  }
  // Another architecture's run on the mild recipe with a turn in front: a row of its own,
  // not the angle network's mild VGG's nor a VGG's "turned:mild".
  await write(
    "gap/metrics",
    "vgg-gap_metrics.json",
    trainingMetrics(0.995, { seed: 42, config: { recipeName: "mild" } }),
  );
  await write("gap/metrics", "turned_test.json", testSet(0.996));
  const families = await withRecipeRuns(await readMetrics(join(results, "metrics")), results);
  assert.deepEqual(Object.keys(families.turnedRuns!).sort(), [
    "turned",
    "turned:mild-shift",
    "turned:vgg-gap:mild",
  ]);
  assert.deepEqual(families.turnedRuns?.["turned:vgg-gap:mild"].map((run) => run.seed), [42]);
  assert.deepEqual(families.turnedRuns?.turned.map((run) => run.seed), [42, 43]);
  assert.deepEqual(families.turnedRuns?.["turned:mild-shift"].map((run) => run.seed), [42, 43]);
  assert.equal(families.robustness?.models.turned.clean, 0.997);
  assert.equal(families.robustness?.models["turned:mild-shift"].clean, 0.993);
  const lines = architecturesMarkdown(families)!.split("\n");
  const row = lines.find((line) =>
    line.startsWith("| VGG-style CNN, mild recipe, behind a learned turn")
  );
  assert.match(row!, /\| 99\.75% ± 0\.07% \(2 seeds\) \| \+0\.20 \(.*\), over 2 seeds/);
  assert.match(
    row!,
    /\| 98\.50% \| – \| 98\.00% \| 90\.00% \|/,
    "MNIST-C mean, worst, rotation, elastic",
  );
  const labels = lines.filter((line) => /^\| [A-Za-z]/.test(line)).map((line) =>
    line.split(" | ")[0].slice(2)
  );
  assert.deepEqual(labels.slice(1), [
    "robust CNN (plain, 6 convs)",
    "VGG-style CNN, mild-shift recipe (mild, then 5 epochs with ±4.2 px shifts)",
    "VGG-style CNN with a global average head (no Flatten), mild recipe",
    "VGG-style CNN, mild recipe, behind a learned turn (one ONNX file)",
    "VGG-style CNN, mild-shift recipe (mild, then 5 epochs with ±4.2 px shifts), behind a learned turn (one ONNX file)",
    "VGG-style CNN with a global average head (no Flatten), mild recipe, behind a learned turn (one ONNX file)",
  ]);
  const shifted = lines.find((line) => line.startsWith(`| ${labels.at(-2)}`));
  assert.match(shifted!, /\| 99\.35% ± 0\.07% \(2 seeds\) \| −0\.20 \(.*\), over 2 seeds/);
  // A turned model beside a run on the model's own recipe has no row to take: said, not
  // filed as the angle network's ("turned"), whose row it would have replaced.
  await write("own/metrics", "vgg_metrics.json", trainingMetrics(0.99, { seed: 42, config: {} }));
  await write("own/metrics", "turned_test.json", testSet(0.991));
  await assert.rejects(
    withRecipeRuns(await readMetrics(join(results, "metrics")), results),
    (error: Error) =>
      error.message ===
        `${
          join(results, "own")
        } holds a turned model's test set beside no run on a named recipe, so the report cannot tell which row it is: keep a turned model beside its angle network's run or one named recipe's run.`,
  );
  // The whole report is refused before a plot is written.
  await assert.rejects(writeReport(results, "deno task report"), /cannot tell which row it is/);
  assert.equal(existsSync(join(results, "plots")), false);
  assert.equal(existsSync(join(results, "REPORT.md")), false);
});

Deno.test("a turn in front of another classifier has the angle network's weights plus that classifier's, and no arithmetic or speed of its own", () => {
  const given = inputs();
  given.bench = {
    parameters: { vgg: 289_066, turned: 746_475 },
    multiply_adds: { vgg: 22_050_560, turned: 50_147_456 },
    infer_onnx: { vgg: 3_426, turned: 2_584 },
  } as unknown as ReportInputs["bench"];
  given.training["vgg-gap:mild"] = trainingMetrics(0.996, {
    parameters: { total: 157_994 },
  }) as unknown as ReportInputs["training"][string];
  // The bench's turned model is the VGG behind the angle network: the VGG's turned rows are its.
  for (const key of ["turned", "turned:mild-shift"]) {
    assert.deepEqual(rowSize(given, key), {
      parameters: 746_475,
      multiplyAdds: 50_147_456,
      imagesPerSecond: 2_584,
    });
  }
  // vgg-gap is not in this bench: its weights from its run.
  assert.deepEqual(rowSize(given, "turned:vgg-gap:mild"), {
    parameters: 746_475 - 289_066 + 157_994,
    multiplyAdds: undefined,
    imagesPerSecond: undefined,
  });
  assert.equal(rowSize(given, "vgg-gap:mild").parameters, 157_994);
  assert.equal(rowSize(given, "vgg-gap:mild").multiplyAdds, undefined);
});
