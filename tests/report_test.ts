import assert from "node:assert/strict";
import { join } from "node:path";
import { sharp } from "../deps.ts";
import { MetricsError, readMetrics } from "../report/inputs.ts";
import { writeReport } from "../report/main.ts";
import { heldOut } from "../report/markdown.ts";
import { tempDir } from "./temp_dir.ts";

function training(model: string, testAccuracy: number) {
  return {
    model,
    history: [1, 2, 3].map((epoch) => ({
      epoch,
      learning_rate: 1e-3,
      loss: 0.3 / epoch,
      accuracy: 0.95 + epoch / 100,
      val_loss: 0.2 / epoch,
      val_accuracy: 0.97 + epoch / 150,
      seconds: 60,
      images_per_s: 900 + epoch,
    })),
    test_accuracy: testAccuracy,
    test_loss: 0.0271,
    test_accuracy_augmented: 0.8123,
    train_seconds: 180,
    seed: 1,
    command: "test",
    date: "2026-01-01",
    data: { train: 54000, validation: 6000, test: 10000 },
  };
}

function testSet() {
  const confusion = Array.from(
    { length: 10 },
    (_, i) => Array.from({ length: 10 }, (_, j) => (i === j ? 990 : 1)),
  );
  const sample = (index: number, prediction: number) => ({
    index,
    label: [7, 2, 1][index] ?? 0,
    prediction,
    confidence: 0.9,
  });
  return {
    accuracy: 0.9876,
    images_per_s: 20000,
    confusion,
    samples: [sample(0, 7), sample(1, 2), sample(2, 1)],
    confident_mistakes: [sample(1, 3)],
  };
}

async function withMetrics(files: Record<string, unknown>, run: (dir: string) => Promise<void>) {
  await using dirTemp = await tempDir();
  const dir = dirTemp.path;
  await Deno.mkdir(join(dir, "metrics"));
  for (const [name, value] of Object.entries(files)) {
    await Deno.writeTextFile(
      join(dir, "metrics", name),
      typeof value === "string" ? value : JSON.stringify(value),
    );
  }
  await run(dir);
}

Deno.test("the report writes every plot as a real PNG and REPORT.md with the numbers given", async () => {
  await withMetrics({
    "baseline_metrics.json": training("baseline", 0.9912),
    "improved_metrics.json": training("improved", 0.9934),
    "improved_test.json": testSet(),
  }, async (dir) => {
    const written = await writeReport(dir, "deno task report --out test");
    const pngs = written.filter((path) => path.endsWith(".png")).map((path) =>
      path.split("/").at(-1)
    );
    assert.deepEqual(pngs.sort(), [
      "baseline_accuracy_curve.png",
      "comparison.png",
      "confusion_improved.png",
      "improved_accuracy_curve.png",
      "over_seeds.png",
      "predictions.png",
    ]);
    for (const path of written.filter((p) => p.endsWith(".png"))) {
      const meta = await sharp(path).metadata();
      assert.equal(meta.format, "png");
      assert.ok(meta.width! >= 600 && meta.height! >= 200, `${path}: ${meta.width}x${meta.height}`);
      assert.ok((await Deno.stat(path)).size > 10_000, `${path} is suspiciously small`);
    }
    const report = await Deno.readTextFile(join(dir, "REPORT.md"));
    for (const text of ["99.12%", "99.34%", "81.23%", "0.0271", "98.76%", "plots/comparison.png"]) {
      assert.ok(report.includes(text), `REPORT.md lacks ${text}`);
    }
    // 9,912 of 10,000 right: Wilson's interval 98.92% to 99.29% (worked by hand), seed 1, one run.
    assert.match(report, /\| baseline \| 99\.12% \(98\.92%–99\.29%\) \| 1 \| one run \|/);
  });
});

Deno.test("the report names how many images each run held out for validation", () => {
  const baseline = training("baseline", 0.99);
  const improved = training("improved", 0.99);
  assert.equal(heldOut([["baseline", baseline], ["improved", improved]]), "6,000");
  const robust = {
    ...training("robust", 0.995),
    data: { train: 59500, validation: 500, test: 10000 },
  };
  assert.equal(
    heldOut([["baseline", baseline], ["improved", improved], ["robust", robust]]),
    "6,000 (robust: 500)",
  );
});

Deno.test("missing or malformed metrics files are named in one sentence", async () => {
  await withMetrics({ "baseline_metrics.json": "{ broken" }, async (dir) => {
    await assert.rejects(
      () => readMetrics(join(dir, "metrics")),
      (error: Error) =>
        error instanceof MetricsError &&
        error.message ===
          `Metrics file ${join(dir, "metrics", "baseline_metrics.json")} is not valid JSON.`,
    );
  });
  await withMetrics({ "baseline_metrics.json": { history: [] } }, async (dir) => {
    await assert.rejects(() => readMetrics(join(dir, "metrics")), {
      message: /baseline_metrics\.json is malformed: it has no per-epoch history\.$/,
    });
  });
  await withMetrics({
    "baseline_metrics.json": training("baseline", 0.99),
    "baseline_test.json": { accuracy: 1 },
  }, async (dir) => {
    await assert.rejects(() => readMetrics(join(dir, "metrics")), {
      message: /baseline_test\.json is malformed: it has no 10x10 confusion matrix\.$/,
    });
  });
  for (
    const [robustness, problem] of [
      [{ models: {}, families: {} }, /it has no "config" with the number of images\.$/],
      [
        { models: {}, families: {}, config: { images: 10, seed: 0 }, paired: 3 },
        /its "paired" has no list of comparisons\.$/,
      ],
    ] as const
  ) {
    await withMetrics({
      "baseline_metrics.json": training("baseline", 0.99),
      "robustness.json": robustness,
    }, async (dir) => {
      await assert.rejects(() => readMetrics(join(dir, "metrics")), { message: problem });
    });
  }
  await withMetrics({}, async (dir) => {
    await assert.rejects(() => readMetrics(join(dir, "metrics")), {
      message: /holds no <model>_metrics\.json files/,
    });
    await assert.rejects(() => readMetrics(join(dir, "nowhere")), {
      message: /There is no metrics folder .*nowhere/,
    });
  });
});

function ablationVariant(
  name: string,
  test: number,
  robustness: { rotation: number; shift: number; mnist_c: number },
) {
  return {
    name,
    description: `${name} variant`,
    architecture: { batchNorm: false, convDropout: 0, denseDropout: 0 },
    augmentation: null,
    test_accuracy: test,
    test_loss: 0.03,
    test_accuracy_augmented: test - 0.1,
    train_val_gap: 0.004,
    epochs_to_99: 2,
    history: [1, 2, 3].map((epoch) => ({
      epoch,
      loss: 0.1 / epoch,
      accuracy: 0.97 + epoch / 200,
      val_loss: 0.05,
      val_accuracy: 0.98 + epoch / 400,
    })),
    train_seconds: 300,
    robustness,
  };
}

Deno.test("the report's ablation section: plots and sentences from ablation.json's numbers", async () => {
  await withMetrics({
    "baseline_metrics.json": training("baseline", 0.99),
    "ablation.json": {
      command: "deno task ablate --epochs 3",
      date: "2026-01-01",
      settings: {
        epochs: 3,
        seed: 4,
        batchSize: 64,
        learningRate: 1e-3,
        learningRateDecay: 0.75,
        evalImages: 10000,
      },
      versions: {},
      rotation_sweep: [
        { variant: "improved_rotation_0", degrees: 0 },
        { variant: "improved", degrees: 36 },
      ],
      variants: [
        ablationVariant("baseline", 0.9901, { rotation: 0.70, shift: 0.65, mnist_c: 0.84 }),
        ablationVariant("baseline_augment", 0.9888, {
          rotation: 0.9123,
          shift: 0.9456,
          mnist_c: 0.80,
        }),
        ablationVariant("improved_rotation_0", 0.9931, {
          rotation: 0.80,
          shift: 0.95,
          mnist_c: 0.6,
        }),
        ablationVariant("improved", 0.9917, { rotation: 0.93, shift: 0.96, mnist_c: 0.58 }),
      ],
    },
  }, async (dir) => {
    const written = await writeReport(dir, "deno task report");
    for (
      const [file, minWidth] of [["ablation.png", 900], ["ablation_rotation.png", 500]] as const
    ) {
      const path = join(dir, "plots", file);
      assert.ok(written.includes(path), `${file} not written`);
      const meta = await sharp(path).metadata();
      assert.equal(meta.format, "png");
      assert.ok(
        meta.width! >= minWidth && meta.height! >= 300,
        `${file}: ${meta.width}x${meta.height}`,
      );
    }
    const report = await Deno.readTextFile(join(dir, "REPORT.md"));
    // Augmentation's contribution: 91.23% − 70.00% rotation, 94.56% − 65.00% shift.
    for (
      const text of [
        "## Ablation",
        "+21.23 points",
        "+29.56 points",
        "99.31%",
        "0° gives 99.31% clean",
        "−0.33 points from a single small CNN",
      ]
    ) {
      assert.ok(report.includes(text), `REPORT.md lacks ${text}`);
    }
  });
  await withMetrics({
    "baseline_metrics.json": training("baseline", 0.99),
    "ablation.json": { settings: {}, variants: [{ name: "x" }] },
  }, async (dir) => {
    await assert.rejects(() => readMetrics(join(dir, "metrics")), {
      message: /ablation\.json is malformed: variant 1 lacks a name or a test accuracy\.$/,
    });
  });
});

Deno.test("learning curves add the last step's weights when the run averaged them", async () => {
  const { curveSpec } = await import("../report/specs.ts");
  const history = training("baseline", 0.99).history;
  const splits = (records: typeof history) =>
    new Set(curveSpec("m", records).data.values.map((value) => value.split));
  assert.deepEqual([...splits(history)], ["training", "validation"]);
  const averaged = history.map((record, i) => ({
    ...record,
    ...(i > 0 && { val_accuracy_live: record.val_accuracy - 0.001 }),
  }));
  const live = curveSpec("m", averaged).data.values.filter((value) =>
    value.split === "validation, last step's weights"
  );
  assert.deepEqual(live.map((value) => [value.epoch, value.metric]), [[2, "accuracy"], [
    3,
    "accuracy",
  ]]);
  assert.ok(Math.abs(live[0].value - (averaged[1].val_accuracy - 0.001)) < 1e-12);
});

Deno.test("paired tests and seeds: McNemar and bootstrap on the predictions, 'within noise' when it holds zero", async () => {
  const { loadTestSet } = await import("../data/mnist.ts");
  const { pairedMarkdown } = await import("../report/paired.ts");
  const labels = (await loadTestSet()).labels;
  // b errs on the first 100 images, a on the same 100 plus 60 more, c on 100 other ones.
  const wrong = (skip: number[]) =>
    Array.from(labels, (label, i) => (skip.includes(i) ? (label + 1) % 10 : label)).join("");
  const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);
  const withPredictions = (predictions: string) => ({ ...testSet(), predictions });
  const inputs = {
    training: {},
    seeds: {},
    seedRuns: {},
    ensembleRuns: [],
    testSets: {
      a: withPredictions(wrong(range(0, 160))),
      b: withPredictions(wrong(range(0, 100))),
      c: withPredictions(wrong(range(200, 100))),
    },
  };
  const markdown = pairedMarkdown(inputs, labels);
  const row = (pair: string) =>
    markdown.split("\n").find((line) => line.startsWith(`| ${pair} |`))!;
  // a − b: 0 right only in a, 60 only in b: p = 2 · 2^-60.
  assert.match(row("a − b"), /\| −0\.60 points \|.*\| 0 \/ 60 \| 1\.7e-18 \| b better \|$/);
  // b − c: 100 against 100 discordant images, no difference: within noise.
  assert.match(row("b − c"), /\| \+0\.00 points \|.*\| 100 \/ 100 \| 1\.000 \| within noise \|$/);

  // Over seeds: the summary's interval and each run's binomial interval are printed.
  const run = (seed: number, accuracy: number) => ({
    seed,
    dir: "results",
    test_accuracy: accuracy,
    test_images: 10000,
    test_ci95: { low: accuracy - 0.002, high: accuracy + 0.002 },
  });
  const seeded = pairedMarkdown(
    {
      ...inputs,
      testSets: {},
      seeds: {
        m: {
          seeds: [1, 2],
          runs: [run(1, 0.99), run(2, 0.992)],
          summary: {
            test_accuracy: { n: 2, mean: 0.991, std: 0.0014, ci95: { low: 0.978, high: 1.004 } },
          },
        },
      },
    } as unknown as Parameters<typeof pairedMarkdown>[0],
  );
  assert.match(
    seeded,
    /\| m \| 1, 2 \| 99\.00% \(98\.80%–99\.20%\); 99\.20% \(99\.00%–99\.40%\) \| 99\.10% ± 0\.14 \|/,
  );
});

Deno.test("each ablation step: its difference over seeds and McNemar's test on every seed's answers", async () => {
  const { loadTestSet } = await import("../data/mnist.ts");
  const { stepsTable } = await import("../report/ablation.ts");
  const labels = (await loadTestSet()).labels;
  const wrong = (from: number, count: number) =>
    Array.from(labels, (label, i) => (i >= from && i < from + count ? (label + 1) % 10 : label))
      .join("");
  const robustness = { rotation: 0.7, shift: 0.7, mnist_c: 0.8 };
  const run = (name: string, seed: number, predictions: string) => ({
    ...ablationVariant(
      name,
      1 - [...predictions].filter((p, i) => Number(p) !== labels[i]).length / labels.length,
      robustness,
    ),
    seed,
    predictions,
  });
  // Seed 1: baseline errs on 100 images, baseline_bn on 40 of them; seed 2: both on the same 50.
  const file = {
    command: "deno task ablate",
    date: "2026-01-01",
    settings: {
      epochs: 1,
      seed: 1,
      seeds: [1, 2],
      batchSize: 64,
      learningRate: 1e-3,
      learningRateDecay: 0.75,
      weightAverageDecay: 0,
      workers: 1,
      evalImages: 10000,
    },
    versions: {},
    rotation_sweep: [],
    variants: [],
    runs: [
      run("baseline", 1, wrong(0, 100)),
      run("baseline_bn", 1, wrong(0, 40)),
      run("baseline", 2, wrong(0, 50)),
      run("baseline_bn", 2, wrong(0, 50)),
    ],
  };
  const table = stepsTable(file, labels)!;
  const row = table.split("\n").find((line) => line.startsWith("| baseline_bn − baseline |"))!;
  // Seed 1: 60 images only baseline_bn gets right, none only baseline: p = 2 · 2^-60.
  assert.match(row, /seed 1: 60 \/ 0, p 1\.7e-18; seed 2: 0 \/ 0, p 1\.000 \|$/);
  // Differences +0.60 and 0 points: mean +0.30, and two seeds' t interval (12.71 · 0.3) holds zero.
  assert.match(
    row,
    /\+0\.30 points \(95% interval −3\.51 points to \+4\.11 points over 2 seeds: within noise\)/,
  );
  // Without the answers, only the difference over seeds.
  const bare = stepsTable(
    { ...file, runs: file.runs.map(({ predictions: _, ...r }) => r) },
    labels,
  )!;
  assert.match(bare, /\| baseline_bn − baseline \| \+0\.30 points .* \| – \|/);
});

Deno.test("robustness families in the report: each pair of models with its paired interval", async () => {
  const { pairedMarkdown } = await import("../report/paired.ts");
  const comparison = (family: string, difference: number, low: number, high: number) => ({
    a: "baseline",
    b: "robust",
    family,
    difference,
    ci95: { low, high },
  });
  const markdown = pairedMarkdown({
    training: {},
    seeds: {},
    seedRuns: {},
    ensembleRuns: [],
    testSets: {},
    robustness: {
      models: {},
      families: {},
      config: { images: 10000, seed: 0 },
      command: "deno task eval:robustness",
      paired: {
        bootstrap: { seed: 1, resamples: 2000 },
        comparisons: [
          comparison("rotation", -0.205, -0.21, -0.2),
          comparison("mnist_c", 0.001, -0.002, 0.004),
        ],
      },
    },
  });
  assert.match(markdown, /\| family \| baseline − robust \|/);
  assert.match(markdown, /\| rotation \| −20\.5 \(−21\.0 to −20\.0\) \|/);
  assert.match(markdown, /\| MNIST-C mean \| \+0\.1 \(−0\.2 to \+0\.4\), within noise \|/);
});

Deno.test("the models over seeds: one value per seed where a model has several, its one run where not", async () => {
  const { measuresOverSeeds } = await import("../report/over_seeds.ts");
  const summary = (mnistC: number) => ({
    families: { rotation: 0.9, shift_x: 0.8 },
    mnist_c_mean: mnistC,
    worst: null,
  });
  const robustness = (model: string, mnistC: number) => ({
    models: {
      [model]: { clean: 0.99, clean_mean_confidence: 0.9, families: {}, summary: summary(mnistC) },
    },
    families: {},
    config: { images: 10000, seed: 0 },
    command: "deno task eval:robustness",
  });
  const run = (seed: number, accuracy: number) => ({ seed, test_accuracy: accuracy });
  const inputs = {
    training: { a: training("a", 0.99), b: training("b", 0.98) },
    testSets: {},
    robustness: {
      ...robustness("a", 0.5),
      models: { ...robustness("a", 0.5).models, ...robustness("b", 0.7).models },
    },
    seeds: { b: { seeds: [1, 2], runs: [run(1, 0.981), run(2, 0.983)] } },
    seedRuns: {
      b: [{ seed: 1, robustness: robustness("b", 0.7) }, {
        seed: 2,
        robustness: robustness("b", 0.74),
      }],
    },
  } as unknown as Parameters<typeof measuresOverSeeds>[0];
  const of = (model: string, measure: string) =>
    measuresOverSeeds(inputs).find((m) => m.model === model && m.measure === measure)?.values;
  assert.deepEqual(of("a", "clean test"), [0.99]);
  assert.deepEqual(of("a", "MNIST-C mean"), [0.5]);
  assert.deepEqual(of("b", "clean test"), [0.981, 0.983]);
  assert.deepEqual(of("b", "MNIST-C mean"), [0.7, 0.74]);
  assert.deepEqual(of("b", "shift x"), [0.8, 0.8]);
  // A family the suite did not measure has no bar.
  assert.equal(of("b", "elastic"), undefined);
});

Deno.test("robustness families over seeds: per-seed differences with a t interval, 'within noise' when it holds zero", async () => {
  const { familiesOverSeedsMarkdown } = await import("../report/paired.ts");
  const file = (summaries: Record<string, [number, number, number]>) => ({
    models: Object.fromEntries(
      Object.entries(summaries).map(([model, [rotation, noise, mnistC]]) => [model, {
        clean: 0.99,
        clean_mean_confidence: 0.9,
        families: {},
        summary: { families: { rotation, noise }, mnist_c_mean: mnistC, worst: null },
      }]),
    ),
    families: {},
    config: { images: 10000, seed: 0 },
    command: "deno task eval:robustness",
  });
  // Seed by seed: a − b on rotation is +10 and +10.2 points (an interval above zero),
  // on noise −1 and +1 (an interval around zero), on MNIST-C +5 on both (no spread).
  const seed1 = file({ a: [0.9, 0.5, 0.8], b: [0.8, 0.51, 0.75] });
  const seed2 = file({ a: [0.902, 0.52, 0.85], b: [0.8, 0.51, 0.8] });
  const inputs = {
    training: {},
    testSets: {},
    robustness: { ...seed1, families: { rotation: {}, noise: {} } },
    seeds: {},
    seedRuns: {
      a: [{ seed: 1, robustness: seed1 }, { seed: 2, robustness: seed2 }],
      b: [{ seed: 1, robustness: seed1 }, { seed: 2, robustness: seed2 }, { seed: 3 }],
    },
  } as unknown as Parameters<typeof familiesOverSeedsMarkdown>[0];
  const markdown = familiesOverSeedsMarkdown(inputs)!;
  const row = (name: string) =>
    markdown.split("\n").find((line) => line.startsWith(`| ${name} |`))?.split("|")[2].trim();
  // Mean +10.1, std 0.1·√2, t(0.975, 1) = 12.706: +10.1 ± 12.706 · 0.1 = +8.8 to +11.4.
  assert.equal(row("rotation"), "+10.1 (+8.8 to +11.4)");
  assert.equal(row("noise"), "+0.0 (−12.7 to +12.7), within noise");
  assert.equal(row("MNIST-C mean"), "+5.0 (every seed)");
  assert.match(markdown, /a − b: seeds 1, 2;/);
  // One common seed is no comparison over seeds.
  const oneSeed = {
    ...inputs,
    seedRuns: { a: inputs.seedRuns.a, b: [{ seed: 1, robustness: seed1 }] },
  };
  assert.equal(familiesOverSeedsMarkdown(oneSeed), undefined);
});

Deno.test("the robust model's targets: each measure over its seeds against goal and resolution, the deployment floor from one bench run", async () => {
  const { robustMarkdown } = await import("../report/robust.ts");
  const summary = (mnistC: number, stripe: number, rotation: number) => ({
    families: { rotation, "mnist_c/stripe": stripe },
    mnist_c_mean: mnistC,
    worst: null,
  });
  const file = (summaries: Record<string, ReturnType<typeof summary>>) => ({
    models: Object.fromEntries(
      Object.entries(summaries).map(([model, s]) => [model, {
        clean: 0.99,
        clean_mean_confidence: 0.9,
        families: {},
        summary: s,
      }]),
    ),
    families: { rotation: {}, "mnist_c/stripe": {} },
    config: { images: 10000, seed: 0 },
    command: "deno task eval:robustness",
  });
  const references = { baseline: summary(0.86, 0.9, 0.74), improved: summary(0.58, 0.3, 0.955) };
  const seedFile = (mnistC: number, stripe: number) =>
    file({ ...references, robust: summary(mnistC, stripe, 0.94) });
  const inputs = (onnx: Record<string, number>) =>
    ({
      training: {},
      testSets: {},
      robustness: seedFile(0.96, 0.85),
      seeds: {
        robust: {
          command: "deno task train:robust --seeds 2",
          seeds: [42, 43],
          runs: [{ seed: 42, test_accuracy: 0.991 }, { seed: 43, test_accuracy: 0.993 }],
        },
      },
      seedRuns: {
        robust: [
          { seed: 42, robustness: seedFile(0.96, 0.85) },
          { seed: 43, robustness: seedFile(0.94, 0.75) },
        ],
        // The improved model over its own seeds: rotation 95.5% and 97.5%.
        improved: [
          { seed: 42, robustness: seedFile(0.96, 0.85) },
          {
            seed: 43,
            robustness: file({ ...references, improved: summary(0.58, 0.3, 0.975) }),
          },
        ],
      },
      bench: { command: "deno task bench", infer_onnx: onnx },
    }) as unknown as Parameters<typeof robustMarkdown>[0];
  const markdown = robustMarkdown(inputs({ improved: 10000, robust: 6000 }));
  assert.match(
    markdown,
    /Each figure is the mean over 2 seeds .* `deno task train:robust --seeds 2`/,
  );
  // Means 99.20% clean, 95.00% MNIST-C, 80.00% worst: the first misses both bars, the second meets both.
  assert.match(
    markdown,
    /\| clean test accuracy \| 99\.10%, 99\.30% \| 99\.20% \| 99\.6%: not met \| 99\.5%: not met \|/,
  );
  assert.match(
    markdown,
    /\| MNIST-C mean \| 96\.00%, 94\.00% \| 95\.00% \| 95\.0%: met \| 90\.0%: met \|/,
  );
  assert.match(
    markdown,
    /\| MNIST-C worst corruption \| 85\.00%, 75\.00% \| 80\.00% \| 80\.0%: met \| – \|/,
  );
  assert.match(
    markdown,
    /\| ONNX Runtime images\/s \(one `deno task bench` run\) \| 6,000 \(improved 10,000\) \| 0\.60× improved \| 0\.50× improved: met \| 0\.50× improved: met \|/,
  );
  // Rotation 94% is more than a point below the improved model's mean over its seeds, 96.5%.
  assert.match(
    markdown,
    /more than 1 point below the better of baseline and improved: rotation \(94\.0% against improved's 96\.5%\)/,
  );
  const slow = robustMarkdown(inputs({ improved: 10000, robust: 4000 }));
  assert.match(
    slow,
    /\| 0\.40× improved \| 0\.50× improved: not met \| 0\.50× improved: not met \|/,
  );
  // Without a bench run there is no floor row rather than a made-up one.
  assert.doesNotMatch(robustMarkdown(inputs({})), /ONNX Runtime images\/s/);
});
